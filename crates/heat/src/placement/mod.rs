//! Placement: from each object's class decision and the tiers' capacities, the moves to make
//! now and the moves that must wait, each with its reason. A plan, not an action: the mover
//! turns each [`Move`] into a copy-verify-switch-retire job, and `--dry-run` shows the plan.
//!
//! Owned here: the class → tier mapping ([`ClassTiers`]), capacity accounting that never
//! overfills a tier, eviction of the coldest objects to make room, minimum residency, and
//! the move budget of one pass. Pure and deterministic: same input, same plan.
//!
//! How a pass goes:
//! 1. An object whose tier is in its class's list stays, and so does one its decision holds
//!    in place (`recent_write`: written recently, not read enough to tell). Otherwise it
//!    wants the first tier of that list. An object on an undeclared tier waits with
//!    `unknown_tier`. Under a `[[policy]]` the class's list is narrowed to the tiers the
//!    policy allows ([`crate::policy`]); an object on a tier its policy forbids moves with
//!    reason `policy`, minimum residency notwithstanding, and evictions send an object only
//!    to a tier its own policy allows.
//! 2. Tiers already over capacity shed their coldest objects first (`capacity_full_demote`).
//! 3. Spike promotions (hottest first), then other promotions (hottest first), then demotions
//!    (coldest first), until the budget of `max_moves` is spent (`move_budget_exhausted`).
//! 4. A demotion before the current tier's minimum residency waits (`min_residency_hold`).
//!    Promotions ignore residency: a burst of demand is served at once.
//! 5. Room on the target: free space first, then space that moves already planned out of
//!    that tier will free, then eviction of objects of a *colder class* than the newcomer,
//!    coldest first (lowest baseline rate, then oldest last access), past their residency,
//!    each to its own class's tier below, or else to the next tier down, if that has free
//!    space (`capacity_full_demote`). Objects of the same class never evict each other, so
//!    a pass cannot start a ping-pong. If that is not enough, the move waits
//!    (`tier_full_wait`) and nothing is evicted for it.
//!
//! Capacity accounting: bytes arriving on a tier count from the start of the move; bytes
//! leaving count only once that move is done. A move that relies on space another move
//! frees lists that move in [`Move::after`], and the executor must finish those first; with
//! that, no tier ever holds more than its capacity, even while moves run (a tier that is
//! already over capacity never holds more than it did). `tests/placement.rs` checks this
//! against random schedules of random plans.

mod pass;

// `strata eval`'s `rules` policy orders moves as the planner does without it; its tests
// check that order against this one.
#[cfg(test)]
pub(crate) use pass::{wanted_order, Wanted};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::classify::{Class, Decision, Reason};
use crate::policy::PolicySet;
use crate::units::{human_bytes, human_duration_ms};

/// Victims examined at most per room search, so one pass's work stays bounded.
const MAX_VICTIM_SCAN: usize = 4096;

/// A tier as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierState {
    /// Tier name.
    pub name: String,
    /// Capacity in bytes; `None` is unlimited.
    pub capacity: Option<u64>,
    /// Bytes stored on it now (including moves still running into it).
    pub used_bytes: u64,
    /// How long an object stays before it may be demoted from it (ms).
    pub min_residency_ms: i64,
}

/// Which tiers each class may live on, as indices into the tier list (hot → cold). The first
/// tier of a list is where an object of that class goes when it is on no tier of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassTiers {
    /// Tiers for hot objects.
    pub hot: Vec<usize>,
    /// Tiers for warm objects.
    pub warm: Vec<usize>,
    /// Tiers for cold objects.
    pub cold: Vec<usize>,
}

impl ClassTiers {
    /// The default for `count` tiers: hot on the first, cold on the last, warm on the ones
    /// between. With two tiers warm objects may stay on either (they move only when their
    /// class changes); with one, everything is on it.
    pub fn default_for(count: usize) -> Self {
        let last = count.saturating_sub(1);
        let warm = match count {
            0 | 1 => vec![0],
            2 => vec![0, 1],
            _ => (1..last).collect(),
        };
        ClassTiers {
            hot: vec![0],
            warm,
            cold: vec![last],
        }
    }

    /// The tiers of a class.
    pub fn tiers_for(&self, class: Class) -> &[usize] {
        match class {
            Class::Hot => &self.hot,
            Class::Warm => &self.warm,
            Class::Cold => &self.cold,
        }
    }
}

/// An object as the planner sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectState {
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The tier it is on.
    pub tier: String,
    /// When it was placed on that tier (ms since the Unix epoch).
    pub placed_at_ms: i64,
    /// Its class decision.
    pub decision: Decision,
}

/// The numbers a move was planned from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoveInputs {
    /// The object's class decision.
    pub decision: Decision,
    /// When it was placed on its current tier.
    pub placed_at_ms: i64,
    /// Bytes committed on the target tier when the move was planned (before it).
    pub target_used_bytes: u64,
    /// The target tier's capacity.
    pub target_capacity: Option<u64>,
    /// For an eviction: the key it makes room for (`None` when the tier was over capacity).
    pub made_room_for: Option<String>,
    /// The name of the `[[policy]]` governing the object, when one does: it decided the move
    /// (reason `policy`) or limited where it could go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A move to make.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Move {
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Tier it leaves.
    pub from: String,
    /// Tier it goes to.
    pub to: String,
    /// Why.
    pub reason: Reason,
    /// One sentence for `strata explain`.
    pub explanation: String,
    /// Indices (in [`PlacementPlan::moves`]) of moves that must be done before this one
    /// starts, because it uses the space they free.
    pub after: Vec<usize>,
    /// What it was decided from.
    pub inputs: MoveInputs,
}

/// A move that is wanted but cannot be made now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Tier it stays on.
    pub on: String,
    /// Tier it wants (empty when its tier is unknown and its class has no tier).
    pub wanted: String,
    /// Why it waits.
    pub reason: Reason,
    /// One sentence for `strata explain`.
    pub explanation: String,
    /// When the wait ends by itself, if known (minimum residency).
    pub until_ms: Option<i64>,
    /// The object's class decision.
    pub decision: Decision,
}

/// A tier's bytes after the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierProjection {
    /// Tier name.
    pub name: String,
    /// Capacity in bytes; `None` is unlimited.
    pub capacity: Option<u64>,
    /// Bytes on it before the plan.
    pub used_bytes: u64,
    /// Bytes the plan moves in.
    pub incoming_bytes: u64,
    /// Bytes the plan moves out.
    pub outgoing_bytes: u64,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacementPlan {
    /// When it was planned.
    pub now_ms: i64,
    /// Moves, in an order that respects [`Move::after`].
    pub moves: Vec<Move>,
    /// Wanted moves that wait, with their reasons.
    pub waits: Vec<Wait>,
    /// Objects already on a tier of their class.
    pub in_place: usize,
    /// Tiers' bytes before and after.
    pub tiers: Vec<TierProjection>,
}

/// Why a planner could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlannerError {
    /// No tier at all.
    #[error("no tiers: declare at least one tier")]
    NoTiers,
    /// Two tiers with one name.
    #[error("tier {0:?} is declared twice")]
    DuplicateTier(String),
    /// A class with no tier.
    #[error("class {0} has no tier")]
    EmptyClass(Class),
    /// A class list naming a tier that does not exist.
    #[error("class {class} lists tier index {index}, but there are only {count} tiers")]
    TierOutOfRange {
        /// The class.
        class: Class,
        /// The bad index.
        index: usize,
        /// How many tiers there are.
        count: usize,
    },
}

/// Plans placements for a fixed set of tiers.
#[derive(Clone, Debug, PartialEq)]
pub struct Planner {
    tiers: Vec<TierState>,
    classes: ClassTiers,
    max_moves: usize,
    by_name: HashMap<String, usize>,
    explain: bool,
    policies: PolicySet,
}

impl Planner {
    /// Tiers ordered hot → cold, their class mapping, and the move budget of one pass.
    pub fn new(
        tiers: Vec<TierState>,
        classes: ClassTiers,
        max_moves: usize,
    ) -> Result<Self, PlannerError> {
        if tiers.is_empty() {
            return Err(PlannerError::NoTiers);
        }
        let mut by_name = HashMap::new();
        for (index, tier) in tiers.iter().enumerate() {
            if by_name.insert(tier.name.clone(), index).is_some() {
                return Err(PlannerError::DuplicateTier(tier.name.clone()));
            }
        }
        for class in [Class::Hot, Class::Warm, Class::Cold] {
            let list = classes.tiers_for(class);
            if list.is_empty() {
                return Err(PlannerError::EmptyClass(class));
            }
            if let Some(&index) = list.iter().find(|&&index| index >= tiers.len()) {
                return Err(PlannerError::TierOutOfRange {
                    class,
                    index,
                    count: tiers.len(),
                });
            }
        }
        Ok(Planner {
            tiers,
            classes,
            max_moves,
            by_name,
            explain: true,
            policies: PolicySet::default(),
        })
    }

    /// The same planner, placing every object only where its `[[policy]]` allows (see
    /// [`crate::policy`] for the rules). `policies` must be compiled against the same tiers.
    pub fn with_policies(mut self, policies: PolicySet) -> Self {
        self.policies = policies;
        self
    }

    /// The policies it places under.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The same planner, leaving every [`Move::explanation`] and [`Wait::explanation`]
    /// empty: the same plan, without the cost of its sentences (`strata eval` replays
    /// millions of decisions nobody reads).
    pub fn without_explanations(mut self) -> Self {
        self.explain = false;
        self
    }

    /// Whether moves and waits carry their sentence.
    pub fn explains(&self) -> bool {
        self.explain
    }

    /// The tiers, hot → cold.
    pub fn tiers(&self) -> &[TierState] {
        &self.tiers
    }

    /// Plans one full pass over `objects` at `now_ms`: relief of over-full tiers,
    /// promotions and demotions. The periodic pass (`rules.demotion_interval`).
    pub fn plan(&self, now_ms: i64, objects: &[ObjectState]) -> PlacementPlan {
        pass::run(self, now_ms, objects, pass::Scope::Full)
    }

    /// Plans only the promotions of spiking objects (decisions with reason
    /// `reactive_access_spike`), with the evictions they need; the reactive path, run as soon
    /// as the tracker reports spikes. Pass the spiking objects *and* the objects on their
    /// target tiers: the residents are the eviction candidates, and are moved only to make
    /// room.
    pub fn plan_spikes(&self, now_ms: i64, objects: &[ObjectState]) -> PlacementPlan {
        pass::run(self, now_ms, objects, pass::Scope::SpikesOnly)
    }

    /// The class → tier mapping.
    pub fn classes(&self) -> &ClassTiers {
        &self.classes
    }

    /// Moves planned at most per pass.
    pub fn max_moves(&self) -> usize {
        self.max_moves
    }

    pub(crate) fn tier_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

/// Whether minimum residency holds back a move from tier `from` to tier `to` (indices, hot
/// → cold) of an object placed at `placed_at_ms`: only demotions wait, until the object has
/// stayed `min_residency_ms` on `from`; promotions serve a burst of demand at once. The one
/// rule, used by the planner and by `strata eval`'s replay for every policy.
#[inline]
pub fn residency_holds(
    from: usize,
    to: usize,
    placed_at_ms: i64,
    min_residency_ms: i64,
    now_ms: i64,
) -> bool {
    to > from && now_ms.saturating_sub(placed_at_ms) < min_residency_ms
}

/// `used of capacity` for messages.
pub(crate) fn usage_text(used: u64, capacity: Option<u64>) -> String {
    match capacity {
        Some(capacity) => format!("used {} of {}", human_bytes(used), human_bytes(capacity)),
        None => format!("used {}, unlimited", human_bytes(used)),
    }
}

/// Explanation of a residency hold.
pub(crate) fn residency_text(tier: &str, min_residency_ms: i64, placed_ago_ms: i64) -> String {
    format!(
        "held on {tier}: placed {} ago, minimum residency {} ({} to go)",
        human_duration_ms(placed_ago_ms),
        human_duration_ms(min_residency_ms),
        human_duration_ms(min_residency_ms.saturating_sub(placed_ago_ms)),
    )
}
