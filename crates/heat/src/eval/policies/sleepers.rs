//! Objects asleep until a time, for the class-rule policies' passes (see `classes`).

use std::collections::{BTreeMap, VecDeque};

/// Buckets the wheel keeps ahead of the earliest one; later ones wait in an ordered map
/// (a sleep of 90 days in buckets of an hour is 2,160 buckets).
const WHEEL_BUCKETS: i64 = 1 << 14;

/// A sleeper: the time it wakes, and the object.
type Sleeper = (i64, u32);

/// Objects asleep until a time, in buckets of `every_ms` keyed by the bucket's end (bucket
/// `k` holds the times in `((k - 1)·every_ms, k·every_ms]`): a wake-up at a multiple of
/// `every_ms` takes whole buckets without looking at a time; at any other time, the one
/// bucket it cuts is sorted out. Objects wake in order of (time, id), as a heap would give
/// them: an order a policy may depend on (`seed003` moves in it).
///
/// The buckets are a wheel (a queue indexed by the bucket's key less the first one's), so
/// that adding is an index, not a search of an ordered map; bucket keys too far ahead for
/// the wheel wait in a map. A bucket's vector is reused once emptied (most passes add a
/// few objects to a bucket and take one bucket).
#[derive(Clone, Debug)]
pub(super) struct Sleepers {
    every_ms: i64,
    /// The key of `wheel[0]`: the one after the last wake-up's, so every key before it
    /// was taken (`i64::MIN` before the first wake-up: until then all wait in `far`).
    first: i64,
    wheel: VecDeque<Vec<Sleeper>>,
    /// Keys at least `WHEEL_BUCKETS` after `first` when added.
    far: BTreeMap<i64, Vec<Sleeper>>,
    /// Emptied buckets' vectors.
    spare: Vec<Vec<Sleeper>>,
    /// Scratch space, kept to save an allocation per wake-up.
    pub(super) due: Vec<Sleeper>,
}

impl Sleepers {
    /// Sleepers in buckets of `every_ms` (wake-ups at its multiples are cheapest).
    pub(super) fn new(every_ms: i64) -> Self {
        Sleepers {
            every_ms: every_ms.max(1),
            first: i64::MIN,
            wheel: VecDeque::new(),
            far: BTreeMap::new(),
            spare: Vec::new(),
            due: Vec::new(),
        }
    }

    /// Puts `object` to sleep until `until_ms`.
    pub(super) fn push(&mut self, until_ms: i64, object: u32) {
        let end =
            until_ms.div_euclid(self.every_ms) + i64::from(until_ms.rem_euclid(self.every_ms) != 0);
        // A key already taken goes to the first bucket: the next wake-up takes it, as it
        // would have taken its own.
        let offset = end.saturating_sub(self.first).max(0);
        if offset >= WHEEL_BUCKETS {
            self.far.entry(end).or_default().push((until_ms, object));
            return;
        }
        let offset = offset as usize;
        while self.wheel.len() <= offset {
            let bucket = self.spare.pop().unwrap_or_default();
            self.wheel.push_back(bucket);
        }
        self.wheel[offset].push((until_ms, object));
    }

    /// Moves the sleepers due by `now_ms` into `due`, in order of (time, id).
    pub(super) fn take_due(&mut self, now_ms: i64, due: &mut Vec<Sleeper>) {
        let whole = now_ms.div_euclid(self.every_ms);
        while self.first <= whole {
            let Some(mut bucket) = self.wheel.pop_front() else {
                self.first = whole.saturating_add(1);
                break;
            };
            due.append(&mut bucket);
            self.spare.push(bucket);
            self.first += 1;
        }
        while let Some(bucket) = self.far.first_entry() {
            if *bucket.key() > whole {
                break;
            }
            due.extend(bucket.remove());
        }
        if now_ms.rem_euclid(self.every_ms) != 0 {
            let cut = whole.saturating_add(1);
            if self.first == cut {
                if let Some(bucket) = self.wheel.front_mut() {
                    due.extend(bucket.iter().filter(|&&(until, _)| until <= now_ms));
                    bucket.retain(|&(until, _)| until > now_ms);
                }
            }
            if let Some(bucket) = self.far.get_mut(&cut) {
                due.extend(bucket.iter().filter(|&&(until, _)| until <= now_ms));
                bucket.retain(|&(until, _)| until > now_ms);
                if bucket.is_empty() {
                    self.far.remove(&cut);
                }
            }
        }
        due.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sleepers added at varied times (some past, some far ahead) between wake-ups at
    /// multiples of the bucket and between them wake in order of (time, id) at the first
    /// wake-up at or after their time, as from a sorted set.
    #[test]
    fn sleepers_wake_at_their_time_in_order_of_time_and_id() {
        let every = 100;
        let mut sleepers = Sleepers::new(every);
        let mut model = std::collections::BTreeSet::new();
        let mut now = 0;
        let mut object = 0u32;
        for step in 0..400i64 {
            for k in 0..(step % 7) {
                let until = match k {
                    0 => now - 50,
                    1 => now + every * (WHEEL_BUCKETS + step),
                    2 => i64::MAX,
                    _ => now + (step * 37 + k * 53) % (5 * every),
                };
                sleepers.push(until, object);
                model.insert((until, object));
                object += 1;
            }
            now += if step % 3 == 0 { every } else { 37 + step % 50 };
            if step == 200 {
                now += every * 2 * WHEEL_BUCKETS;
            }
            let mut due = Vec::new();
            sleepers.take_due(now, &mut due);
            let expected: Vec<Sleeper> = model.iter().copied().filter(|&(u, _)| u <= now).collect();
            model.retain(|&(u, _)| u > now);
            assert_eq!(due, expected, "at {now}");
        }
    }
}
