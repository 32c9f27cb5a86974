//! [`Health`]: what a full check found, piece by piece.

use crate::error::{DomainFault, FaultKind};
use crate::spec::Redundancy;

/// The state of one replica or fragment after reading it in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PieceState {
    /// Every byte verified.
    Good,
    /// Not there.
    Missing,
    /// There, but it does not verify (why).
    Damaged(String),
    /// The domain did not answer (why).
    Unreachable(String),
    /// A plain file without an integrity record (legacy): read, but nothing to verify.
    Unverified,
}

impl PieceState {
    pub(crate) fn from_fault(fault: &DomainFault) -> PieceState {
        match fault.kind {
            FaultKind::Missing => PieceState::Missing,
            FaultKind::Damaged => PieceState::Damaged(fault.detail.clone()),
            FaultKind::Unreachable => PieceState::Unreachable(fault.detail.clone()),
        }
    }

    /// Whether the piece can serve reads.
    pub fn is_usable(&self) -> bool {
        matches!(self, PieceState::Good | PieceState::Unverified)
    }
}

/// One replica or fragment of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceHealth {
    /// Index of the domain in the tier's list.
    pub domain: usize,
    /// The domain's store.
    pub store: String,
    /// The piece's path on the domain.
    pub path: String,
    /// The fragment index (EC), `None` for replicas.
    pub index: Option<usize>,
    /// What a full read found.
    pub state: PieceState,
}

impl PieceHealth {
    /// The piece as a fault, unless it is usable.
    pub fn fault(&self) -> Option<DomainFault> {
        let (kind, detail) = match &self.state {
            PieceState::Good | PieceState::Unverified => return None,
            PieceState::Missing => (FaultKind::Missing, String::new()),
            PieceState::Damaged(d) => (FaultKind::Damaged, d.clone()),
            PieceState::Unreachable(d) => (FaultKind::Unreachable, d.clone()),
        };
        Some(DomainFault {
            domain: self.domain,
            store: self.store.clone(),
            rel: self.path.clone(),
            kind,
            detail,
        })
    }
}

/// What [`crate::RedundantStore::check`] found: every piece of the object's encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The object.
    pub rel: String,
    /// Its encoding.
    pub encoding: Redundancy,
    /// Its length.
    pub len: u64,
    /// Each replica or fragment the encoding has.
    pub pieces: Vec<PieceHealth>,
}

impl Health {
    /// Pieces that verified (or, for legacy files, were there).
    pub fn good(&self) -> usize {
        self.pieces.iter().filter(|p| p.state.is_usable()).count()
    }

    /// Good pieces a read needs.
    pub fn needed(&self) -> usize {
        self.encoding.pieces_needed_to_read()
    }

    /// Whether the object can be read.
    pub fn is_readable(&self) -> bool {
        self.good() >= self.needed()
    }

    /// Whether every piece is good.
    pub fn is_healthy(&self) -> bool {
        self.pieces.iter().all(|p| p.state.is_usable())
    }

    /// The pieces that are not good.
    pub fn faults(&self) -> Vec<DomainFault> {
        self.pieces.iter().filter_map(PieceHealth::fault).collect()
    }
}

/// What [`crate::RedundantStore::repair`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairOutcome {
    /// Pieces rewritten and verified (as they were found).
    pub repaired: Vec<DomainFault>,
    /// Pieces that could not be rewritten (the write's error in `detail`).
    pub not_repaired: Vec<DomainFault>,
}

/// What [`crate::RedundantStore::settle`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettleOutcome {
    /// The encoding kept, `None` when nothing readable was found (then nothing is removed).
    pub kept: Option<Redundancy>,
    /// `(domain, path)` of every piece removed.
    pub removed: Vec<(usize, String)>,
}
