//! Recency lists over object ids: a few doubly linked lists threaded through shared
//! vectors, each object in at most one list, O(1) to touch, remove or take the least
//! recently used, no allocation per operation once the vectors have grown.

/// No object.
const NIL: u32 = u32::MAX;
/// In no list.
const NONE: u8 = u8::MAX;

#[derive(Clone, Copy, Debug)]
struct Ends {
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
}

/// `lists` recency lists over object ids.
#[derive(Clone, Debug)]
pub(super) struct RecencyLists {
    prev: Vec<u32>,
    next: Vec<u32>,
    list: Vec<u8>,
    ends: Vec<Ends>,
}

impl RecencyLists {
    pub(super) fn new(lists: usize) -> Self {
        RecencyLists {
            prev: Vec::new(),
            next: Vec::new(),
            list: Vec::new(),
            ends: vec![
                Ends {
                    head: NIL,
                    tail: NIL
                };
                lists
            ],
        }
    }

    /// The list an object is in.
    pub(super) fn list_of(&self, object: u32) -> Option<usize> {
        self.list
            .get(object as usize)
            .filter(|&&list| list != NONE)
            .map(|&list| usize::from(list))
    }

    /// Makes `object` the most recent of `list` (taking it out of any list it was in).
    pub(super) fn touch(&mut self, list: usize, object: u32) {
        let index = object as usize;
        if self.list.len() <= index {
            self.prev.resize(index + 1, NIL);
            self.next.resize(index + 1, NIL);
            self.list.resize(index + 1, NONE);
        }
        self.remove(object);
        let ends = &mut self.ends[list];
        self.prev[index] = NIL;
        self.next[index] = ends.head;
        if ends.head != NIL {
            self.prev[ends.head as usize] = object;
        } else {
            ends.tail = object;
        }
        ends.head = object;
        self.list[index] = list as u8;
    }

    /// Takes `object` out of its list, if any.
    pub(super) fn remove(&mut self, object: u32) {
        let Some(list) = self.list_of(object) else {
            return;
        };
        let index = object as usize;
        let (prev, next) = (self.prev[index], self.next[index]);
        let ends = &mut self.ends[list];
        if prev == NIL {
            ends.head = next;
        } else {
            self.next[prev as usize] = next;
        }
        if next == NIL {
            ends.tail = prev;
        } else {
            self.prev[next as usize] = prev;
        }
        self.list[index] = NONE;
    }

    /// The least recently used object of `list`.
    pub(super) fn oldest(&self, list: usize) -> Option<u32> {
        let tail = self.ends[list].tail;
        (tail != NIL).then_some(tail)
    }

    /// The object used just before `object` in its list.
    pub(super) fn newer(&self, object: u32) -> Option<u32> {
        let prev = *self.prev.get(object as usize)?;
        (prev != NIL && self.list_of(object).is_some()).then_some(prev)
    }

    /// The objects of `list`, most recent first.
    pub(super) fn iter(&self, list: usize) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.ends[list].head;
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let object = at;
            at = self.next[object as usize];
            Some(object)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_recency_order_and_membership() {
        let mut lists = RecencyLists::new(2);
        lists.touch(0, 3);
        lists.touch(0, 1);
        lists.touch(1, 7);
        lists.touch(0, 3);
        assert_eq!(lists.iter(0).collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(lists.oldest(0), Some(1));
        assert_eq!(lists.newer(1), Some(3));
        assert_eq!(lists.newer(3), None);
        lists.touch(1, 1);
        assert_eq!(lists.iter(0).collect::<Vec<_>>(), vec![3]);
        assert_eq!(lists.iter(1).collect::<Vec<_>>(), vec![1, 7]);
        lists.remove(3);
        assert_eq!(lists.oldest(0), None);
        assert_eq!(lists.list_of(3), None);
        assert_eq!(lists.list_of(7), Some(1));
    }
}
