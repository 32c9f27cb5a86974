//! Recency over object ids: lists ([`RecencyLists`]), a few doubly linked lists threaded
//! through shared vectors, each object in at most one list, O(1) to touch, remove or take
//! the least recently used, no allocation per operation once the vectors have grown; and a
//! log ([`RecencyLog`]) for a reader that only walks from the most recent.

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
    #[cfg(test)]
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

/// Objects in order of their last touch, read only from the most recent: an append-only
/// log of touches, an object's entry live while it is its latest. Why not a linked list: a
/// touch there rewrites the object's old neighbours (two cache misses per touch, and
/// `strata eval` touches once per read); here it writes one slot and appends. Dead entries
/// are dropped when they outnumber the live ones, so the log stays proportional to the
/// objects in it.
#[derive(Clone, Debug, Default)]
pub(super) struct RecencyLog {
    /// Touched objects, oldest first (dead entries included).
    log: Vec<u32>,
    /// Per object id, 1 + the position of its live entry (0: none).
    latest: Vec<u32>,
    /// Live entries.
    live: usize,
}

impl RecencyLog {
    /// Makes `object` the most recent.
    pub(super) fn touch(&mut self, object: u32) {
        let index = object as usize;
        if self.latest.len() <= index {
            self.latest.resize(index + 1, 0);
        }
        if self.log.len() >= 2 * self.live + 1024 {
            self.compact();
        }
        if self.latest[index] == 0 {
            self.live += 1;
        }
        self.log.push(object);
        self.latest[index] = self.log.len() as u32;
    }

    /// Takes `object` out, if it is in.
    pub(super) fn remove(&mut self, object: u32) {
        if let Some(latest) = self.latest.get_mut(object as usize) {
            if *latest != 0 {
                *latest = 0;
                self.live -= 1;
            }
        }
    }

    /// Where the cache line of `object`'s slot is: a touch writes it.
    pub(super) fn slot(&self, object: u32) -> Option<&u32> {
        self.latest.get(object as usize)
    }

    /// The objects in it, most recent first.
    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.log
            .iter()
            .enumerate()
            .rev()
            .filter(|&(at, &object)| self.latest[object as usize] as usize == at + 1)
            .map(|(_, &object)| object)
    }

    /// Drops the dead entries, keeping the order of the live ones.
    fn compact(&mut self) {
        let mut kept = 0;
        for at in 0..self.log.len() {
            let object = self.log[at];
            if self.latest[object as usize] as usize == at + 1 {
                self.log[kept] = object;
                kept += 1;
                self.latest[object as usize] = kept as u32;
            }
        }
        self.log.truncate(kept);
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

    /// Touches and removals, enough of them that the log drops its dead entries several
    /// times, walk as a recency list of the same operations does.
    #[test]
    fn the_log_walks_objects_as_a_recency_list_does() {
        let mut log = RecencyLog::default();
        let mut lists = RecencyLists::new(1);
        for step in 0..20_000u32 {
            let object = (step * 7919) % 613;
            if step % 11 == 0 {
                log.remove(object);
                lists.remove(object);
            } else {
                log.touch(object);
                lists.touch(0, object);
            }
            if step % 997 == 0 {
                assert_eq!(
                    log.iter().collect::<Vec<_>>(),
                    lists.iter(0).collect::<Vec<_>>(),
                    "after {step} steps"
                );
            }
        }
        assert_eq!(
            log.iter().collect::<Vec<_>>(),
            lists.iter(0).collect::<Vec<_>>()
        );
        assert!(log.log.len() <= 2 * log.live + 1024);
    }
}
