//! What the `learned` policy's promotions on access have paid so far, per class of object
//! (its reads so far, in powers of two): a walk-forward check of its own rule. Every
//! promotion the rule asks for opens a stay (until the next boundary, at least the
//! target's minimum residency): the moves up and back are charged at once, the extra
//! storage as the stay goes on (at each boundary, so that a stay the trace's end cuts
//! short is charged what it cost), and each read within it is credited with what it
//! saved. Stays are kept for promotions held back too, so a class whose promotions stopped
//! paying is still watched and comes back when they would pay again. Memory: 25 bytes per
//! object.

use crate::forecast::idle::CLASSES;

/// Per class, the balance of the promotions asked for; per object, its open stay.
#[derive(Clone, Debug, Default)]
pub(super) struct PromotionLedger {
    balance: [f64; CLASSES],
    /// Per object: its class + 1 while a stay is open (0: none), the stay's end, what a
    /// read in it saves, its extra storage per ms, and the time it is charged up to.
    class: Vec<u8>,
    until_ms: Vec<i64>,
    per_read: Vec<f32>,
    per_ms: Vec<f32>,
    charged_ms: Vec<i64>,
}

fn class_of(reads: u32) -> usize {
    ((32 - reads.leading_zeros()) as usize).min(CLASSES - 1)
}

/// A promotion asked for, for [`PromotionLedger::open`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Stay {
    /// The object's reads so far.
    pub reads: u32,
    /// The moves up and back.
    pub moves: f64,
    /// Extra storage per ms on the target.
    pub per_ms: f64,
    /// What each read on the target saves.
    pub per_read: f64,
    /// When the stay ends.
    pub until_ms: i64,
}

impl PromotionLedger {
    /// Whether promotions of objects with `reads` reads so far have paid for themselves
    /// so far (or none was judged yet).
    pub(super) fn allows(&self, reads: u32) -> bool {
        self.balance[class_of(reads)] >= 0.0
    }

    /// Whether `object` has a stay open at `now_ms`.
    pub(super) fn is_open(&self, object: u32, now_ms: i64) -> bool {
        let index = object as usize;
        self.class.get(index).is_some_and(|&class| class > 0) && self.until_ms[index] > now_ms
    }

    /// A promotion of `object` asked for at `now_ms`: its moves are charged now.
    pub(super) fn open(&mut self, object: u32, now_ms: i64, stay: Stay) {
        let index = object as usize;
        if self.class.len() <= index {
            self.class.resize(index + 1, 0);
            self.until_ms.resize(index + 1, 0);
            self.per_read.resize(index + 1, 0.0);
            self.per_ms.resize(index + 1, 0.0);
            self.charged_ms.resize(index + 1, 0);
        }
        let class = class_of(stay.reads);
        self.balance[class] -= stay.moves;
        self.class[index] = class as u8 + 1;
        self.until_ms[index] = stay.until_ms;
        self.per_read[index] = stay.per_read as f32;
        self.per_ms[index] = stay.per_ms as f32;
        self.charged_ms[index] = now_ms;
    }

    /// A read of `object` at `now_ms`: credits its open stay, if any.
    pub(super) fn read(&mut self, object: u32, now_ms: i64) {
        let index = object as usize;
        let Some(&class) = self.class.get(index).filter(|&&class| class > 0) else {
            return;
        };
        if self.until_ms[index] > now_ms {
            self.balance[usize::from(class) - 1] += f64::from(self.per_read[index]);
        }
    }

    /// Charges every open stay's storage up to `now_ms` (or its end), and closes the
    /// stays that ended.
    pub(super) fn accrue(&mut self, now_ms: i64) {
        for index in 0..self.class.len() {
            let class = self.class[index];
            if class == 0 {
                continue;
            }
            let end = self.until_ms[index].min(now_ms);
            let elapsed = (end - self.charged_ms[index]).max(0) as f64;
            self.balance[usize::from(class) - 1] -= f64::from(self.per_ms[index]) * elapsed;
            self.charged_ms[index] = end;
            if self.until_ms[index] <= now_ms {
                self.class[index] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stay(reads: u32, moves: f64, per_ms: f64, until_ms: i64) -> Stay {
        Stay {
            reads,
            moves,
            per_ms,
            per_read: 1.0,
            until_ms,
        }
    }

    #[test]
    fn promotions_of_a_class_stop_when_they_lose_and_resume_when_they_would_pay() {
        let mut ledger = PromotionLedger::default();
        assert!(ledger.allows(1));
        // Object 0 (one read so far) promoted at 0 for 100 ms, 0.03 a ms of storage, read
        // once within its stay.
        ledger.open(0, 0, stay(1, 0.0, 0.03, 100));
        assert!(ledger.is_open(0, 50));
        ledger.read(0, 50);
        assert!(
            ledger.allows(1),
            "storage is charged as it goes: nothing yet"
        );
        ledger.accrue(100);
        assert!(!ledger.allows(1), "paid 1 of 3");
        assert!(!ledger.is_open(0, 100));
        // Another class is judged apart.
        assert!(ledger.allows(40));
        // A read after the stay is not credited.
        ledger.read(0, 150);
        assert!(!ledger.allows(1));
        // A stay asked for (held back or not) whose reads pay brings the class back; a
        // stay cut short (the boundary at 210) is charged up to it only.
        ledger.open(1, 200, stay(1, 0.5, 0.01, 1_000));
        for time in 200..204 {
            ledger.read(1, time);
        }
        ledger.accrue(210);
        assert!(ledger.allows(1), "paid 1 + 4 of 3 + 0.5 + 0.1");
        assert!(ledger.is_open(1, 210));
    }
}
