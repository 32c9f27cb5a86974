//! One job state machine for every job the catalog records.
//!
//! A dataset migration (`strata migrate`) and a tier move of `strata serve` (a re-encode is
//! a move from a tier to itself) live through the same states, [`JobState`], and the
//! catalog changes a job's state only along the transitions of its [`JobKind`]
//! ([`JobKind::allows`]): every engine checks them in the transaction that writes the new
//! state, and refuses the others with [`crate::CatalogError::IllegalTransition`]. That is what
//! keeps a stale worker (a process that lost a race, an operator's retry arriving late) from
//! moving a job backwards: a move whose placement has switched can only finish, a finished
//! move never runs again, a cancelled one runs again only through a retry that plans it anew.
//!
//! | from \ to | planned | copying | verifying | switching | retiring | done | failed | cancelled | skipped |
//! |---|---|---|---|---|---|---|---|---|---|
//! | planned | both | both | | | | | both | both | move |
//! | copying | both | both | both | | | migration | both | both | move |
//! | verifying | both | both | both | move | move | both | both | both | move |
//! | switching | move | move | | move | move | | move | move | move |
//! | retiring | | | | | move | move | | move | |
//! | done | migration | migration | | | | migration | | | |
//! | failed, cancelled | both | migration | | | | | both | both | |
//! | skipped | move | | | | | | | | move |
//!
//! Why the differences: a migration re-run resumes whatever state its job is in (a done
//! job is checked again, a failed one goes on where it stopped), because its destination
//! is rebuilt from the plan; a move changes which copy of an object is current, so once its
//! switch is committed (`retiring`) the only way is forward, and a move that ended runs
//! again only as a new attempt (`planned`); the one way out of `retiring` besides `done` is
//! the object's own delete, which cancels every move of it. A re-encode (a move from a tier to itself) is
//! done once verified: its new encoding replaces the old inside the tier, with no switch.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::UnknownState;

/// Where a job is in its life. Stored as its lowercase name (see [`JobState::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Recorded (a migration: its plan is written); nothing copied yet.
    Planned,
    /// Bytes are being copied (and, for a migration, each chunk verified).
    Copying,
    /// The copy is being read back and checked as a whole.
    Verifying,
    /// A move: about to make the new copy current (one transaction).
    Switching,
    /// A move: switched; the old copy is being deleted.
    Retiring,
    /// Complete and verified (a move: the object is on its target, the old copy gone).
    Done,
    /// Stopped on an error; running it again (a migration) or `retry` (a move) resumes it.
    Failed,
    /// Stopped by an operator (or, for a move, because the object was deleted).
    Cancelled,
    /// A move not done on purpose (e.g. `object_changing`: written during the move).
    Skipped,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 9] = [
        JobState::Planned,
        JobState::Copying,
        JobState::Verifying,
        JobState::Switching,
        JobState::Retiring,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Skipped,
    ];

    /// The name stored in the catalog and printed to the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Planned => "planned",
            JobState::Copying => "copying",
            JobState::Verifying => "verifying",
            JobState::Switching => "switching",
            JobState::Retiring => "retiring",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Skipped => "skipped",
        }
    }

    /// Whether the job still has work to do (for a move: at most one such job per object).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Planned
                | JobState::Copying
                | JobState::Verifying
                | JobState::Switching
                | JobState::Retiring
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = UnknownState;

    /// Any state's name; a row of a given kind is read with [`JobKind::parse_state`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState {
                kind: "job",
                value: s.to_owned(),
            })
    }
}

/// What a job does, which decides the states it uses and the transitions it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// A dataset migration (`strata migrate`): planned, copying, verifying, done, or ended.
    Migration,
    /// A tier move or re-encode of `strata serve`: copy, verify, switch, retire.
    Move,
}

impl JobKind {
    /// The name used in messages: "job" or "move job".
    pub fn noun(self) -> &'static str {
        match self {
            JobKind::Migration => "job",
            JobKind::Move => "move job",
        }
    }

    /// Whether a job of this kind can be in `state` at all.
    pub fn uses(self, state: JobState) -> bool {
        match self {
            JobKind::Migration => !matches!(
                state,
                JobState::Switching | JobState::Retiring | JobState::Skipped
            ),
            JobKind::Move => true,
        }
    }

    /// A stored state name, refused when it is not a state of this kind.
    pub fn parse_state(self, text: &str) -> Result<JobState, UnknownState> {
        let unknown = || UnknownState {
            kind: self.noun(),
            value: text.to_owned(),
        };
        let state: JobState = text.parse().map_err(|_| unknown())?;
        if self.uses(state) {
            Ok(state)
        } else {
            Err(unknown())
        }
    }

    /// Whether a job of this kind may go from `from` to `to` (see the module's table).
    pub fn allows(self, from: JobState, to: JobState) -> bool {
        use JobState::*;
        if !self.uses(from) || !self.uses(to) {
            return false;
        }
        match self {
            JobKind::Migration => match from {
                // A re-run resumes from any state; only a job being copied or checked can
                // end, and only a copied one can be done.
                Planned => matches!(to, Planned | Copying | Failed | Cancelled),
                Copying | Verifying => to != Switching && to != Retiring,
                Done => matches!(to, Planned | Copying | Done),
                Failed | Cancelled => matches!(to, Planned | Copying | Failed | Cancelled),
                Switching | Retiring | Skipped => false,
            },
            JobKind::Move => match from {
                Planned => matches!(to, Planned | Copying | Failed | Cancelled | Skipped),
                Copying => matches!(
                    to,
                    Planned | Copying | Verifying | Failed | Cancelled | Skipped
                ),
                // Retiring: the switch committed in the transaction that ends this step;
                // done: a re-encode, whose new encoding replaces the old inside the tier.
                Verifying => true,
                // Not switched yet: it may still copy again or end without switching.
                Switching => !matches!(to, Verifying | Done),
                // Switched: the only way is forward, unless the object is deleted.
                Retiring => matches!(to, Retiring | Done | Cancelled),
                Done => false,
                Failed | Cancelled => matches!(to, Planned | Failed | Cancelled),
                Skipped => matches!(to, Planned | Skipped),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_text_and_json() {
        for state in JobState::ALL {
            assert_eq!(state.to_string().parse::<JobState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap_or_default();
            assert_eq!(json, format!("\"{state}\""));
        }
        let err = "Done".parse::<JobState>().unwrap_err();
        assert_eq!(err.to_string(), "unknown job state \"Done\"");
    }

    #[test]
    fn a_migration_row_never_holds_a_move_only_state() {
        for name in ["switching", "retiring", "skipped"] {
            let err = JobKind::Migration.parse_state(name).unwrap_err();
            assert_eq!(err.to_string(), format!("unknown job state {name:?}"));
            assert!(JobKind::Move.parse_state(name).is_ok());
        }
        let err = JobKind::Move.parse_state("paused").unwrap_err();
        assert_eq!(err.to_string(), "unknown move job state \"paused\"");
    }

    #[test]
    fn a_switched_move_only_goes_forward() {
        use JobState::*;
        for to in JobState::ALL {
            assert_eq!(
                JobKind::Move.allows(Retiring, to),
                matches!(to, Retiring | Done | Cancelled),
                "retiring -> {to}"
            );
            assert!(!JobKind::Move.allows(Done, to), "done -> {to}");
        }
        // A move that ended runs again only as a new attempt.
        assert!(JobKind::Move.allows(Cancelled, Planned));
        assert!(!JobKind::Move.allows(Cancelled, Copying));
        assert!(!JobKind::Move.allows(Failed, Switching));
        // Not switched yet: a restart copies again, or it ends.
        assert!(JobKind::Move.allows(Switching, Copying));
        assert!(JobKind::Move.allows(Switching, Skipped));
    }

    #[test]
    fn a_migration_resumes_from_any_state_but_ends_only_while_running() {
        use JobState::*;
        for from in [Planned, Copying, Verifying, Done, Failed, Cancelled] {
            assert!(
                JobKind::Migration.allows(from, Copying),
                "{from} -> copying"
            );
            assert!(
                JobKind::Migration.allows(from, Planned),
                "{from} -> planned"
            );
        }
        assert!(JobKind::Migration.allows(Copying, Done));
        assert!(!JobKind::Migration.allows(Planned, Done));
        assert!(!JobKind::Migration.allows(Failed, Done));
        assert!(!JobKind::Migration.allows(Done, Failed));
        assert!(!JobKind::Migration.allows(Copying, Switching));
    }
}
