//! One planning pass: the rules are in the parent module's doc; this file keeps the books.

use std::cmp::Ordering;

use super::{
    residency_holds, residency_text, usage_text, Move, MoveInputs, ObjectState, PlacementPlan,
    Planner, TierProjection, Wait, MAX_VICTIM_SCAN,
};
use crate::classify::{Decision, Reason};

/// Orders objects coldest first: colder class, then lower baseline rate, then older last
/// access (never accessed is oldest).
fn cmp_coldness(a: &Decision, b: &Decision) -> Ordering {
    a.class
        .cmp(&b.class)
        .then(
            a.inputs
                .slow_rate_per_hour
                .total_cmp(&b.inputs.slow_rate_per_hour),
        )
        .then(
            a.inputs
                .last_access_ms
                .unwrap_or(i64::MIN)
                .cmp(&b.inputs.last_access_ms.unwrap_or(i64::MIN)),
        )
}

/// A wanted move, as a pass orders them: the object's decision, its tier, the tier it
/// wants, and its key (anything ordered the way the keys are).
pub(crate) struct Wanted<'a, K> {
    pub(crate) decision: &'a Decision,
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) key: K,
}

impl<K> Wanted<'_, K> {
    /// 0: a spike promotion; 1: another promotion; 2: a demotion.
    fn phase(&self) -> u8 {
        match (self.to < self.from, self.decision.is_spike()) {
            (true, true) => 0,
            (true, false) => 1,
            (false, _) => 2,
        }
    }
}

/// The order in which a pass considers wanted moves: spike promotions (fastest first), other
/// promotions (hottest first), demotions (coldest first). Keys break ties so that the plan
/// does not depend on the input order. (`strata eval`'s `rules` policy orders moves so,
/// to make only the ones a pass's budget reaches; its tests compare.)
pub(crate) fn wanted_order<K: Ord>(a: &Wanted<'_, K>, b: &Wanted<'_, K>) -> Ordering {
    let (da, db) = (a.decision, b.decision);
    a.phase()
        .cmp(&b.phase())
        .then_with(|| match a.phase() {
            0 => db
                .inputs
                .fast_rate_per_hour
                .total_cmp(&da.inputs.fast_rate_per_hour),
            1 => cmp_coldness(db, da),
            _ => cmp_coldness(da, db),
        })
        .then_with(|| a.key.cmp(&b.key))
}

/// Space a planned move out of a tier will free, not yet promised to another move.
struct Pending {
    move_index: usize,
    bytes: u64,
}

/// One tier's accounts during the pass.
struct Book {
    capacity: Option<u64>,
    min_residency_ms: i64,
    used_at_start: u64,
    /// Bytes on the tier, less the bytes of outgoing moves promised to incoming ones.
    used: u64,
    incoming: u64,
    outgoing: u64,
    pending: Vec<Pending>,
}

impl Book {
    fn committed(&self) -> u64 {
        self.used.saturating_add(self.incoming)
    }

    fn free(&self) -> u64 {
        match self.capacity {
            Some(capacity) => capacity.saturating_sub(self.committed()),
            None => u64::MAX,
        }
    }

    fn pending_bytes(&self) -> u64 {
        self.pending
            .iter()
            .fold(0u64, |sum, p| sum.saturating_add(p.bytes))
    }

    /// Promises `bytes` of pending space; returns the moves it comes from.
    fn claim(&mut self, mut bytes: u64) -> Vec<usize> {
        let mut from = Vec::new();
        for pending in &mut self.pending {
            if bytes == 0 {
                break;
            }
            if pending.bytes == 0 {
                continue;
            }
            let take = pending.bytes.min(bytes);
            pending.bytes -= take;
            bytes -= take;
            self.used = self.used.saturating_sub(take);
            from.push(pending.move_index);
        }
        from
    }
}

/// A wanted move.
struct Candidate {
    object: usize,
    from: usize,
    to: usize,
    /// Its policy forbids `from`: it moves with reason `policy`, residency notwithstanding.
    forced: bool,
}

struct Pass<'a> {
    planner: &'a Planner,
    now_ms: i64,
    objects: &'a [ObjectState],
    tier_of: Vec<Option<usize>>,
    /// Per object, the index of the `[[policy]]` governing it.
    policy_of: Vec<Option<usize>>,
    books: Vec<Book>,
    moving: Vec<bool>,
    /// Objects on each tier, coldest first.
    by_tier: Vec<Vec<usize>>,
    /// Per tier, how many of `by_tier`'s first entries are known to be moving already.
    skip: Vec<usize>,
    moves: Vec<Move>,
    waits: Vec<Wait>,
}

/// Which wanted moves a pass plans.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Everything.
    Full,
    /// Spike promotions only (and the evictions they need).
    SpikesOnly,
}

pub(super) fn run(
    planner: &Planner,
    now_ms: i64,
    objects: &[ObjectState],
    scope: Scope,
) -> PlacementPlan {
    let tiers = planner.tiers();
    let books = tiers
        .iter()
        .map(|tier| Book {
            capacity: tier.capacity,
            min_residency_ms: tier.min_residency_ms.max(0),
            used_at_start: tier.used_bytes,
            used: tier.used_bytes,
            incoming: 0,
            outgoing: 0,
            pending: Vec::new(),
        })
        .collect();
    let mut pass = Pass {
        planner,
        now_ms,
        objects,
        tier_of: objects
            .iter()
            .map(|o| planner.tier_index(&o.tier))
            .collect(),
        policy_of: objects
            .iter()
            .map(|o| planner.policies().matching(&o.key))
            .collect(),
        books,
        moving: vec![false; objects.len()],
        by_tier: vec![Vec::new(); tiers.len()],
        skip: vec![0; tiers.len()],
        moves: Vec::new(),
        waits: Vec::new(),
    };

    let mut in_place = 0;
    let mut candidates = Vec::new();
    let policies = planner.policies();
    for (index, object) in objects.iter().enumerate() {
        let policy = pass.policy_of[index];
        let wanted =
            policies.accepted_tiers(policy, planner.classes().tiers_for(object.decision.class));
        match pass.tier_of[index] {
            None if scope == Scope::SpikesOnly && !object.decision.is_spike() => {}
            None => pass.wait_unknown_tier(index, wanted.first().copied()),
            Some(from) => {
                pass.by_tier[from].push(index);
                let forced = !policies.allows(policy, from);
                match wanted.first() {
                    _ if object.decision.holds_in_place() && !forced => in_place += 1,
                    Some(&to) if !wanted.contains(&from) => candidates.push(Candidate {
                        object: index,
                        from,
                        to,
                        forced,
                    }),
                    _ => in_place += 1,
                }
            }
        }
    }
    for list in &mut pass.by_tier {
        list.sort_by(|&a, &b| {
            cmp_coldness(&objects[a].decision, &objects[b].decision)
                .then_with(|| objects[a].key.cmp(&objects[b].key))
        });
    }

    if scope == Scope::Full {
        for tier in 0..tiers.len() {
            pass.relieve_overfull(tier);
        }
    }

    let wanted = |c: &Candidate| Wanted {
        decision: &objects[c.object].decision,
        from: c.from,
        to: c.to,
        key: objects[c.object].key.as_str(),
    };
    candidates.sort_by(|a, b| wanted_order(&wanted(a), &wanted(b)));
    if scope == Scope::SpikesOnly {
        candidates.retain(|c| wanted(c).phase() == 0);
    }
    for candidate in candidates {
        if !pass.moving[candidate.object] {
            pass.consider(candidate);
        }
    }

    PlacementPlan {
        now_ms,
        moves: pass.moves,
        waits: pass.waits,
        in_place,
        tiers: tiers
            .iter()
            .zip(&pass.books)
            .map(|(tier, book)| TierProjection {
                name: tier.name.clone(),
                capacity: book.capacity,
                used_bytes: book.used_at_start,
                incoming_bytes: book.incoming,
                outgoing_bytes: book.outgoing,
            })
            .collect(),
    }
}

impl Pass<'_> {
    fn tier_name(&self, tier: usize) -> &str {
        &self.planner.tiers()[tier].name
    }

    fn budget_left(&self) -> usize {
        self.planner.max_moves().saturating_sub(self.moves.len())
    }

    fn placed_ago(&self, object: usize) -> i64 {
        self.now_ms
            .saturating_sub(self.objects[object].placed_at_ms)
    }

    /// Sheds the coldest objects of a tier that holds more than its capacity.
    fn relieve_overfull(&mut self, tier: usize) {
        let Some(capacity) = self.books[tier].capacity else {
            return;
        };
        let excess = self.books[tier].committed().saturating_sub(capacity);
        if excess == 0 {
            return;
        }
        let budget = self.budget_left();
        if let Some(victims) = self.find_victims(tier, excess, None, budget, true) {
            for (victim, to) in victims {
                self.emit(
                    victim,
                    tier,
                    to,
                    Reason::CapacityFullDemote,
                    Vec::new(),
                    None,
                );
            }
            let book = &mut self.books[tier];
            let shed = book.pending_bytes().min(excess);
            book.claim(shed);
        }
    }

    /// Plans one wanted move, or records why it waits.
    fn consider(&mut self, c: Candidate) {
        let objects = self.objects;
        let object = &objects[c.object];
        let min_residency = self.books[c.from].min_residency_ms;
        if !c.forced
            && residency_holds(
                c.from,
                c.to,
                object.placed_at_ms,
                min_residency,
                self.now_ms,
            )
        {
            let ago = self.placed_ago(c.object);
            let text = if self.planner.explains() {
                format!(
                    "{}; wants {}: {}",
                    residency_text(self.tier_name(c.from), min_residency, ago),
                    self.tier_name(c.to),
                    object.decision.explain()
                )
            } else {
                String::new()
            };
            let until = object.placed_at_ms.saturating_add(min_residency);
            self.wait(
                c.object,
                c.from,
                Some(c.to),
                Reason::MinResidencyHold,
                text,
                Some(until),
            );
            return;
        }
        let budget = self.budget_left();
        if budget == 0 {
            let text = if self.planner.explains() {
                format!(
                    "move budget of {} per pass reached; waiting to move from {} to {}: {}",
                    self.planner.max_moves(),
                    self.tier_name(c.from),
                    self.tier_name(c.to),
                    object.decision.explain()
                )
            } else {
                String::new()
            };
            self.wait(
                c.object,
                c.from,
                Some(c.to),
                Reason::MoveBudgetExhausted,
                text,
                None,
            );
            return;
        }
        let reason = if c.forced {
            Reason::Policy
        } else {
            object.decision.reason
        };
        let Some(victims) =
            self.find_victims(c.to, object.size, Some(&object.decision), budget - 1, false)
        else {
            let book = &self.books[c.to];
            let text = if self.planner.explains() {
                format!(
                    "tier {} full ({}); waiting to move from {}: {}",
                    self.tier_name(c.to),
                    usage_text(book.committed(), book.capacity),
                    self.tier_name(c.from),
                    object.decision.explain()
                )
            } else {
                String::new()
            };
            self.wait(
                c.object,
                c.from,
                Some(c.to),
                Reason::TierFullWait,
                text,
                None,
            );
            return;
        };
        for (victim, to) in victims {
            let key = object.key.clone();
            self.emit(
                victim,
                c.to,
                to,
                Reason::CapacityFullDemote,
                Vec::new(),
                Some(key),
            );
        }
        let book = &mut self.books[c.to];
        let short = object.size.saturating_sub(book.free());
        let mut after = book.claim(short);
        after.sort_unstable();
        after.dedup();
        self.emit(c.object, c.from, c.to, reason, after, None);
    }

    /// Finds objects to move off `tier` so that `bytes` more fit, counting free space and
    /// space already being freed first. `Some(vec![])` when no eviction is needed; `None`
    /// when not enough can be freed (unless `partial`, which takes what it finds).
    fn find_victims(
        &mut self,
        tier: usize,
        bytes: u64,
        colder_than: Option<&Decision>,
        budget: usize,
        partial: bool,
    ) -> Option<Vec<(usize, usize)>> {
        let book = &self.books[tier];
        let mut need = bytes.saturating_sub(book.free());
        if need == 0 {
            return Some(Vec::new());
        }
        need = need.saturating_sub(book.pending_bytes());
        if need == 0 {
            return Some(Vec::new());
        }
        let min_residency = book.min_residency_ms;
        let list = &self.by_tier[tier];
        while self.skip[tier] < list.len() && self.moving[list[self.skip[tier]]] {
            self.skip[tier] += 1;
        }
        let mut reserved = vec![0u64; self.books.len()];
        let mut victims = Vec::new();
        let mut freed = 0u64;
        for &victim in list[self.skip[tier]..].iter().take(MAX_VICTIM_SCAN) {
            let candidate = &self.objects[victim];
            if let Some(newcomer) = colder_than {
                // Only a colder class makes room; sorted coldest first, so stop here.
                if candidate.decision.class >= newcomer.class {
                    break;
                }
            }
            if victims.len() >= budget {
                break;
            }
            // A victim always goes down, so its residency holds it like any demotion.
            let held = residency_holds(
                tier,
                tier + 1,
                candidate.placed_at_ms,
                min_residency,
                self.now_ms,
            );
            if self.moving[victim] || candidate.size == 0 || held {
                continue;
            }
            let Some(to) = self.eviction_target(victim, tier, &reserved) else {
                continue;
            };
            reserved[to] = reserved[to].saturating_add(candidate.size);
            victims.push((victim, to));
            freed = freed.saturating_add(candidate.size);
            if freed >= need {
                return Some(victims);
            }
        }
        (partial && !victims.is_empty()).then_some(victims)
    }

    /// Where an evicted object goes: its class's first tier below `tier`, or else the next
    /// tier down; whichever has free space for it (no cascading evictions).
    /// Only tiers the object's policy allows.
    fn eviction_target(&self, object: usize, tier: usize, reserved: &[u64]) -> Option<usize> {
        let size = self.objects[object].size;
        let (policies, policy) = (self.planner.policies(), self.policy_of[object]);
        let class_tiers = self
            .planner
            .classes()
            .tiers_for(self.objects[object].decision.class);
        let own = policies
            .accepted_tiers(policy, class_tiers)
            .iter()
            .copied()
            .find(|&t| t > tier);
        [own, Some(tier + 1)]
            .into_iter()
            .flatten()
            .filter(|&t| t < self.books.len() && policies.allows(policy, t))
            .find(|&t| self.books[t].free().saturating_sub(reserved[t]) >= size)
    }

    /// Adds a move to the plan and books its bytes.
    fn emit(
        &mut self,
        object: usize,
        from: usize,
        to: usize,
        reason: Reason,
        after: Vec<usize>,
        made_room_for: Option<String>,
    ) {
        let (objects, tiers) = (self.objects, self.planner.tiers());
        let o = &objects[object];
        let (from_name, to_name) = (tiers[from].name.as_str(), tiers[to].name.as_str());
        let policies = self.planner.policies();
        let policy = self.policy_of[object].and_then(|index| policies.get(index));
        let explanation = if !self.planner.explains() {
            String::new()
        } else if reason == Reason::Policy {
            let forbids = policies
                .forbids_text(self.policy_of[object], from)
                .unwrap_or_default();
            format!(
                "move {from_name} → {to_name}: {forbids} ({})",
                o.decision.explain()
            )
        } else if reason == Reason::CapacityFullDemote {
            let book = &self.books[from];
            let why = match &made_room_for {
                Some(key) => format!(
                    "to make room for {key}: tier {from_name} full ({})",
                    usage_text(book.committed(), book.capacity)
                ),
                None => format!(
                    "tier {from_name} over capacity ({})",
                    usage_text(book.committed(), book.capacity)
                ),
            };
            format!(
                "demote {from_name} → {to_name} {why}; among its coldest objects ({})",
                o.decision.explain()
            )
        } else {
            let verb = if to < from { "promote" } else { "demote" };
            format!("{verb} {from_name} → {to_name}: {}", o.decision.explain())
        };
        let explanation = match policy {
            Some(policy) if self.planner.explains() && reason != Reason::Policy => {
                format!("{explanation}; within {}", policy.label())
            }
            _ => explanation,
        };
        let target = &self.books[to];
        let inputs = MoveInputs {
            decision: o.decision,
            placed_at_ms: o.placed_at_ms,
            target_used_bytes: target.committed(),
            target_capacity: target.capacity,
            made_room_for,
            policy: policy.map(|policy| policy.config().name.clone()),
        };
        let size = o.size;
        let index = self.moves.len();
        self.moves.push(Move {
            key: o.key.clone(),
            size,
            from: from_name.to_string(),
            to: to_name.to_string(),
            reason,
            explanation,
            after,
            inputs,
        });
        self.moving[object] = true;
        let target = &mut self.books[to];
        target.incoming = target.incoming.saturating_add(size);
        let source = &mut self.books[from];
        source.outgoing = source.outgoing.saturating_add(size);
        source.pending.push(Pending {
            move_index: index,
            bytes: size,
        });
    }

    fn wait(
        &mut self,
        object: usize,
        on: usize,
        wanted: Option<usize>,
        reason: Reason,
        explanation: String,
        until_ms: Option<i64>,
    ) {
        let o = &self.objects[object];
        self.waits.push(Wait {
            key: o.key.clone(),
            size: o.size,
            on: self.tier_name(on).to_string(),
            wanted: wanted
                .map(|t| self.tier_name(t).to_string())
                .unwrap_or_default(),
            reason,
            explanation,
            until_ms,
            decision: o.decision,
        });
    }

    fn wait_unknown_tier(&mut self, object: usize, wanted: Option<usize>) {
        let o = &self.objects[object];
        self.waits.push(Wait {
            key: o.key.clone(),
            size: o.size,
            on: o.tier.clone(),
            wanted: wanted
                .map(|t| self.tier_name(t).to_string())
                .unwrap_or_default(),
            reason: Reason::UnknownTier,
            explanation: format!(
                "on tier {:?}, which the configuration does not declare; left in place ({})",
                o.tier,
                o.decision.explain()
            ),
            until_ms: None,
            decision: o.decision,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;

    #[test]
    fn claims_take_pending_space_in_order_and_record_sources() {
        let mut book = Book {
            capacity: Some(100),
            min_residency_ms: 0,
            used_at_start: 100,
            used: 100,
            incoming: 0,
            outgoing: 0,
            pending: vec![
                Pending {
                    move_index: 3,
                    bytes: 10,
                },
                Pending {
                    move_index: 5,
                    bytes: 30,
                },
            ],
        };
        assert_eq!(book.claim(25), vec![3, 5]);
        assert_eq!(book.used, 75);
        assert_eq!(book.pending_bytes(), 15);
        assert_eq!(book.claim(0), Vec::<usize>::new());
    }

    #[test]
    fn coldness_orders_class_then_rate_then_age() {
        let rules = crate::classify::Rules::default();
        let mk = |class, slow, last: Option<i64>| Decision {
            class,
            reason: Reason::RuleCold,
            inputs: crate::classify::DecisionInputs {
                now_ms: 0,
                count_1h: 0,
                count_24h: 0,
                count_7d: 0,
                fast_rate_per_hour: 0.0,
                slow_rate_per_hour: slow,
                last_access_ms: last,
                last_access_age_ms: None,
                last_write_age_ms: None,
                rules,
            },
        };
        let cold = mk(Class::Cold, 5.0, Some(10));
        let warm = mk(Class::Warm, 0.0, None);
        assert_eq!(cmp_coldness(&cold, &warm), Ordering::Less);
        let slower = mk(Class::Cold, 1.0, Some(10));
        assert_eq!(cmp_coldness(&slower, &cold), Ordering::Less);
        let never = mk(Class::Cold, 5.0, None);
        assert_eq!(cmp_coldness(&never, &cold), Ordering::Less);
    }
}
