//! What callers pass in, checked the same way on every engine: a new job's spec, a plan's
//! indexes and sizes, values that must fit a signed 64-bit column; and the clock the job
//! rows record.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::CatalogError;
use crate::model::{JobSpec, PlannedFile};

/// Files per multi-row `INSERT` (7 parameters each: within SQLite's 32,766 and
/// PostgreSQL's 65,535 parameters per statement).
pub(crate) const FILE_BATCH: usize = 1000;

/// Chunks per multi-row upsert (5 parameters each).
pub(crate) const CHUNK_BATCH: usize = 1000;

/// File updates per multi-row `UPDATE` (5 parameters each, and as many for the read of
/// the rows they change).
pub(crate) const UPDATE_BATCH: usize = 1000;

/// The chunk size of a new job as stored, after the checks [`Catalog::create_job`]
/// promises (not 0, at most `i64::MAX`, options that parse as JSON).
pub(crate) fn check_spec(spec: &JobSpec) -> Result<i64, CatalogError> {
    let chunk_size = to_signed(spec.chunk_size, "chunk size")?;
    if chunk_size == 0 {
        return Err(CatalogError::InvalidInput("chunk size is 0".into()));
    }
    if let Err(err) = serde_json::from_str::<serde_json::Value>(&spec.options_json) {
        return Err(CatalogError::InvalidInput(format!(
            "job options are not JSON ({err})"
        )));
    }
    Ok(chunk_size)
}

/// The plan in index order with each size converted, or why it is not a dense plan.
pub(crate) fn dense_plan(files: &[PlannedFile]) -> Result<Vec<(&PlannedFile, i64)>, CatalogError> {
    let count = files.len();
    let mut slots: Vec<Option<(&PlannedFile, i64)>> = vec![None; count];
    for file in files {
        let size = to_signed(file.size, "file size")?;
        let slot = usize::try_from(file.index)
            .ok()
            .and_then(|index| slots.get_mut(index))
            .ok_or_else(|| {
                CatalogError::InvalidInput(format!(
                    "plan index {} of {:?} is outside 0..{count}",
                    file.index, file.path
                ))
            })?;
        if slot.replace((file, size)).is_some() {
            return Err(CatalogError::InvalidInput(format!(
                "plan index {} is given twice (second time for {:?})",
                file.index, file.path
            )));
        }
    }
    // n files in n distinct slots below n: every slot is filled.
    Ok(slots.into_iter().flatten().collect())
}

pub(crate) fn to_signed(value: u64, what: &str) -> Result<i64, CatalogError> {
    i64::try_from(value)
        .map_err(|_| CatalogError::InvalidInput(format!("{what} {value} is above {}", i64::MAX)))
}

/// Now, in Unix seconds (0 for a clock set before 1970).
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A count or rate as both engines store it (signed 64-bit), saturating.
pub(crate) fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored count back to its unsigned type (the schemas' CHECKs keep them non-negative).
pub(crate) fn unsigned<T: TryFrom<i64> + Default>(value: i64) -> T {
    T::try_from(value).unwrap_or_default()
}
