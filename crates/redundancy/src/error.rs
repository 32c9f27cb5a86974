//! [`RedundancyError`] and [`DomainFault`]: what went wrong, on which domain, and what to do.

use std::fmt;

use strata_store::StoreError;

use crate::spec::Redundancy;

/// What was wrong with one replica or fragment on one domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The piece is not there.
    Missing,
    /// The piece is there but its bytes or its integrity record do not verify.
    Damaged,
    /// The domain did not answer (removed, unreadable, erroring).
    Unreachable,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Missing => "missing",
            FaultKind::Damaged => "damaged",
            FaultKind::Unreachable => "unreachable",
        })
    }
}

/// A replica or fragment found missing, damaged or unreachable: the caller schedules a
/// rebuild ([`crate::RedundantStore::repair`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainFault {
    /// Index of the domain in the tier's list.
    pub domain: usize,
    /// The domain's store ([`strata_store::Store::display`]).
    pub store: String,
    /// The piece's path on that domain.
    pub rel: String,
    /// What was wrong.
    pub kind: FaultKind,
    /// Details for the operator.
    pub detail: String,
}

impl fmt::Display for DomainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "domain {} ({}) {}: {}",
            self.domain, self.store, self.rel, self.kind
        )?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl DomainFault {
    /// The fault a store error means for a piece: not found is missing, a file that
    /// cannot be read as written is damaged, anything about the store itself unreachable.
    pub(crate) fn from_store(
        domain: usize,
        store: String,
        rel: &str,
        e: &StoreError,
    ) -> DomainFault {
        let kind = match e {
            StoreError::NotFound { .. } => FaultKind::Missing,
            StoreError::Damaged { .. } | StoreError::Io { .. } => FaultKind::Damaged,
            _ => FaultKind::Unreachable,
        };
        DomainFault {
            domain,
            store,
            rel: rel.to_string(),
            kind,
            detail: if kind == FaultKind::Missing {
                String::new()
            } else {
                e.to_string()
            },
        }
    }
}

/// A list of faults, one per line, for error messages.
pub(crate) struct Faults<'a>(pub &'a [DomainFault]);

impl fmt::Display for Faults<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fault in self.0 {
            write!(f, "\n  {fault}")?;
        }
        Ok(())
    }
}

/// Why a redundant store operation failed. Messages name the object, the domains'
/// stores and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RedundancyError {
    /// No domain holds any piece of the object.
    #[error("{rel} is not on any domain of the tier; check the key, or restore it from a copy")]
    Missing {
        /// The object.
        rel: String,
    },
    /// The object's path cannot be used.
    #[error("cannot store `{rel}`: {reason}")]
    InvalidRel {
        /// The object.
        rel: String,
        /// Why.
        reason: String,
    },
    /// The tier has fewer domains than the encoding needs.
    #[error("{rel}: redundancy {redundancy} needs {needed} domains, the tier has {have}; add stores to the tier or choose a smaller redundancy")]
    NotEnoughDomains {
        /// The object.
        rel: String,
        /// The encoding asked for.
        redundancy: Redundancy,
        /// Domains it needs.
        needed: usize,
        /// Domains the tier has.
        have: usize,
    },
    /// Fewer good pieces than a read needs.
    #[error("{rel} ({encoding}) cannot be read: {good} good pieces, {needed} needed; more domains are lost than it tolerates:{}\nbring the domains back (or restore the object from a copy), then run `strata scrub`", Faults(.faults))]
    TooFewGood {
        /// The object.
        rel: String,
        /// Its encoding.
        encoding: Redundancy,
        /// Good pieces found.
        good: usize,
        /// Pieces needed.
        needed: usize,
        /// What was wrong where.
        faults: Vec<DomainFault>,
    },
    /// Fewer good pieces than a repair needs.
    #[error("{rel} ({encoding}) cannot be repaired: {good} good pieces, {needed} needed:{}\nbring the domains back (or restore the object from a copy), then run `strata scrub` again", Faults(.faults))]
    Unrepairable {
        /// The object.
        rel: String,
        /// Its encoding.
        encoding: Redundancy,
        /// Good pieces found.
        good: usize,
        /// Pieces needed.
        needed: usize,
        /// What was wrong where.
        faults: Vec<DomainFault>,
    },
    /// A domain refused a write (or a delete); what this call wrote was removed.
    #[error("writing {rel} to domain {domain} ({store}) failed: {source}")]
    Write {
        /// The piece's path.
        rel: String,
        /// Index of the domain.
        domain: usize,
        /// The domain's store.
        store: String,
        /// The store's error (says what to do).
        #[source]
        source: StoreError,
    },
    /// Pieces just written did not read back as written; they were removed.
    #[error("{rel}: the {encoding} pieces just written did not verify:{}\ncheck those domains' disks, then retry", Faults(.faults))]
    NotVerified {
        /// The object.
        rel: String,
        /// The encoding written.
        encoding: Redundancy,
        /// What was wrong where.
        faults: Vec<DomainFault>,
    },
    /// A streaming write was given more or fewer bytes than it was begun for; nothing
    /// was published.
    #[error("{rel}: {written} bytes were sent for an object begun as {declared} bytes; nothing was published: send exactly the length given to begin_write (the old object, if any, is unchanged)")]
    Length {
        /// The object.
        rel: String,
        /// The length the write was begun with.
        declared: u64,
        /// The bytes sent (when too many: the count the last piece would have reached).
        written: u64,
    },
    /// The bytes read from the object's pieces (each verified against its own record) do
    /// not hash to the object's BLAKE3 as the caller knows it: the pieces were written
    /// from other bytes. Nothing was rewritten and the old pieces stay.
    #[error("{rel} ({encoding}): its pieces read back as BLAKE3 {got}, not the {expected} recorded for the object; nothing was rewritten and its pieces were left as they are: restore the object from a copy (or write it again), then run `strata scrub`")]
    NotTheObject {
        /// The object.
        rel: String,
        /// The encoding read.
        encoding: Redundancy,
        /// The BLAKE3 recorded for the object (hex).
        expected: String,
        /// The BLAKE3 of the bytes read (hex).
        got: String,
    },
    /// A domain could not be listed or an internal step failed.
    #[error("{rel}: {detail}")]
    Other {
        /// The object or prefix.
        rel: String,
        /// What failed and what to do.
        detail: String,
    },
}

impl RedundancyError {
    /// Whether the error means "no domain has this object".
    pub fn is_missing(&self) -> bool {
        matches!(self, RedundancyError::Missing { .. })
    }

    /// Whether more domains are lost than the encoding tolerates.
    pub fn is_too_few_good(&self) -> bool {
        matches!(
            self,
            RedundancyError::TooFewGood { .. } | RedundancyError::Unrepairable { .. }
        )
    }

    /// The faults the error lists, if any.
    pub fn faults(&self) -> &[DomainFault] {
        match self {
            RedundancyError::TooFewGood { faults, .. }
            | RedundancyError::Unrepairable { faults, .. }
            | RedundancyError::NotVerified { faults, .. } => faults,
            _ => &[],
        }
    }
}
