//! Catalog integrity: row checksums, the report of a full check, and what a rebuild from a
//! destination's manifest imports.
//!
//! # Row checksums
//!
//! Every row of the migration tables (`jobs`, `files`, `verified_chunks`) carries a
//! `checksum` column (migration `0003_row_checksums.sql`): the first [`CHECKSUM_LEN`] bytes
//! of keyed BLAKE3 with one key per table, `blake3::derive_key(context, b"")` of the
//! table's context string (so a row copied into another table, or a row of one table
//! passed off as another's, does not verify), over a canonical encoding of the row's
//! meaningful columns *including its key* (job id, file index, chunk index: a row moved
//! to another position does not verify either).
//!
//! The encoding is injective: each value is written as a one-byte type tag (`n` NULL, `i`
//! 64-bit integer, `s` text, `b` blob) followed, for integers, by 8 little-endian bytes and,
//! for text and blobs, by the length as 8 little-endian bytes and the bytes. The columns
//! covered, in order:
//!
//! | table | columns |
//! |---|---|
//! | `jobs` | id, source, destination, chunk_size, options_json, created_at, state, root_hash, last_error |
//! | `files` | job_id, file_index, path, size, mtime_ns, mode, state, hash, error |
//! | `verified_chunks` | job_id, file_index, chunk_index, chaining_value |
//!
//! Only `jobs.updated_at` is left out: it changes on every write and decides nothing.
//!
//! The checksum is written by every insert and update and checked by every read that
//! returns rows (a job, a plan, verified chunks); a row that fails is
//! [`CatalogError::CorruptRow`](crate::CatalogError::CorruptRow), and the call returns
//! nothing from it. The progress totals of a job summary (`strata status`) are SQL sums
//! over the plan that are not checked row by row; nothing is decided from them, and
//! `strata catalog check` checks every row.
//!
//! This detects damage (bit rot, a torn write SQLite did not notice, a hand edit); it is not
//! a signature: the keys are derived from public strings, so someone who edits the
//! database on purpose can also recompute the checksums.
//!
//! Rows written before the migration existed get their checksum when the migration is
//! applied (in the same transaction: they are trusted as they are then, as they were
//! before). After that, a row without a checksum is corrupt like a row with a wrong one.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Serialize;

use crate::model::{JobId, PlannedFile};

/// Bytes of a row checksum (128 bits: ample to detect damage, half the space of a full
/// BLAKE3 hash on tables that can hold millions of rows).
pub const CHECKSUM_LEN: usize = 16;

/// A row checksum.
pub(crate) type RowChecksum = [u8; CHECKSUM_LEN];

/// A table's checksum key, derived once from its context string.
struct TableKey {
    context: &'static str,
    key: OnceLock<[u8; 32]>,
}

impl TableKey {
    const fn new(context: &'static str) -> Self {
        TableKey {
            context,
            key: OnceLock::new(),
        }
    }

    fn get(&self) -> &[u8; 32] {
        self.key
            .get_or_init(|| blake3::derive_key(self.context, b""))
    }
}

static JOBS_KEY: TableKey = TableKey::new("strata catalog 2025-01 row checksum v1: jobs");
static FILES_KEY: TableKey = TableKey::new("strata catalog 2025-01 row checksum v1: files");
static CHUNKS_KEY: TableKey =
    TableKey::new("strata catalog 2025-01 row checksum v1: verified_chunks");

/// The canonical encoding of a row, gathered, then hashed in one call (a row is a few
/// dozen bytes: one keyed hash of a buffer is about twice as fast as many small updates).
struct RowHasher {
    key: &'static TableKey,
    encoded: Vec<u8>,
}

impl RowHasher {
    fn new(key: &'static TableKey) -> Self {
        RowHasher {
            key,
            encoded: Vec::with_capacity(160),
        }
    }

    fn int(&mut self, value: i64) -> &mut Self {
        self.encoded.push(b'i');
        self.encoded.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn bytes(&mut self, tag: &[u8; 1], value: &[u8]) -> &mut Self {
        self.encoded.extend_from_slice(tag);
        self.encoded
            .extend_from_slice(&(value.len() as u64).to_le_bytes());
        self.encoded.extend_from_slice(value);
        self
    }

    fn text(&mut self, value: &str) -> &mut Self {
        self.bytes(b"s", value.as_bytes())
    }

    fn null(&mut self) -> &mut Self {
        self.encoded.push(b'n');
        self
    }

    fn opt_int(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            Some(value) => self.int(value),
            None => self.null(),
        }
    }

    fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    fn opt_blob(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(value) => self.bytes(b"b", value),
            None => self.null(),
        }
    }

    fn finish(&self) -> RowChecksum {
        let hash = blake3::keyed_hash(self.key.get(), &self.encoded);
        let mut out = [0; CHECKSUM_LEN];
        out.copy_from_slice(&hash.as_bytes()[..CHECKSUM_LEN]);
        out
    }
}

/// The checksummed columns of a `jobs` row, as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobColumns<'a> {
    pub id: i64,
    pub source: &'a str,
    pub destination: &'a str,
    pub chunk_size: i64,
    pub options_json: &'a str,
    pub created_at: i64,
    pub state: &'a str,
    pub root_hash: Option<&'a str>,
    pub last_error: Option<&'a str>,
}

impl JobColumns<'_> {
    /// The row's checksum.
    pub fn checksum(&self) -> RowChecksum {
        RowHasher::new(&JOBS_KEY)
            .int(self.id)
            .text(self.source)
            .text(self.destination)
            .int(self.chunk_size)
            .text(self.options_json)
            .int(self.created_at)
            .text(self.state)
            .opt_text(self.root_hash)
            .opt_text(self.last_error)
            .finish()
    }
}

/// The checksummed columns of a `files` row, as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileColumns<'a> {
    pub job_id: i64,
    pub file_index: i64,
    pub path: &'a str,
    pub size: i64,
    pub mtime_ns: Option<i64>,
    pub mode: Option<i64>,
    pub state: &'a str,
    pub hash: Option<&'a [u8]>,
    pub error: Option<&'a str>,
}

impl FileColumns<'_> {
    /// The row's checksum.
    pub fn checksum(&self) -> RowChecksum {
        RowHasher::new(&FILES_KEY)
            .int(self.job_id)
            .int(self.file_index)
            .text(self.path)
            .int(self.size)
            .opt_int(self.mtime_ns)
            .opt_int(self.mode)
            .text(self.state)
            .opt_blob(self.hash)
            .opt_text(self.error)
            .finish()
    }
}

/// The checksum of a `verified_chunks` row.
pub(crate) fn chunk_checksum(
    job_id: i64,
    file_index: i64,
    chunk_index: i64,
    chaining_value: &[u8],
) -> RowChecksum {
    RowHasher::new(&CHUNKS_KEY)
        .int(job_id)
        .int(file_index)
        .int(chunk_index)
        .bytes(b"b", chaining_value)
        .finish()
}

/// Why a stored checksum does not vouch for its row, or `None` when it does.
pub(crate) fn mismatch(stored: Option<&[u8]>, computed: &RowChecksum) -> Option<String> {
    match stored {
        None => Some("the row has no checksum".into()),
        Some(stored) if stored == computed.as_slice() => None,
        Some(stored) if stored.len() != CHECKSUM_LEN => Some(format!(
            "its checksum has {} bytes, not {CHECKSUM_LEN}",
            stored.len()
        )),
        Some(stored) => Some(format!(
            "stored checksum {} but the row's values hash to {}",
            hex(stored),
            hex(computed)
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A row that fails its checksum, as [`CheckReport`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorruptRowReport {
    /// `jobs`, `files` or `verified_chunks`.
    pub table: String,
    /// The job the row belongs to (as recorded in the damaged row).
    pub job: JobId,
    /// The row, for the operator: e.g. `job 3, file 12 ("a/b.nc")`.
    pub row: String,
    /// What is wrong with it.
    pub detail: String,
}

/// What `strata catalog check` found in the catalog itself.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The catalog: its file, or its URL with the password redacted.
    pub catalog: PathBuf,
    /// Whether the database's own structure (pages, indexes) was checked: SQLite's
    /// `PRAGMA integrity_check` runs; PostgreSQL's pages are the server's to check (data
    /// checksums, `amcheck`), so a PostgreSQL report checks rows only.
    pub pages_checked: bool,
    /// Problems reported by SQLite's `PRAGMA integrity_check` (empty when it says `ok`),
    /// and tables that could not be read to the end.
    pub integrity: Vec<String>,
    /// Job rows checked.
    pub jobs_checked: u64,
    /// File rows checked.
    pub files_checked: u64,
    /// Verified-chunk rows checked.
    pub chunks_checked: u64,
    /// Rows that fail their checksum, at most [`CheckReport::LISTED_MAX`] of them.
    pub corrupt_rows: Vec<CorruptRowReport>,
    /// How many rows fail their checksum in all.
    pub corrupt_rows_total: u64,
}

impl CheckReport {
    /// The most corrupt rows a report lists (the total is always counted).
    pub const LISTED_MAX: usize = 1000;

    /// True when SQLite found no damage and every row verified.
    pub fn is_clean(&self) -> bool {
        self.integrity.is_empty() && self.corrupt_rows_total == 0
    }
}

/// A row of a checksummed table, as the full check reads it.
pub(crate) trait CheckedRow {
    /// `jobs`, `files` or `verified_chunks`.
    const TABLE: &'static str;
    /// The job the row belongs to (as the row records it).
    fn job(&self) -> JobId;
    /// The row, for the operator.
    fn describe(&self) -> String;
    /// Why the row does not verify, if it does not.
    fn damage(&self) -> Option<String>;
}

/// Collects the corrupt rows of a [`CheckReport`], the same for every engine.
#[derive(Default)]
pub(crate) struct Findings {
    /// Rows that fail, at most [`CheckReport::LISTED_MAX`].
    pub rows: Vec<CorruptRowReport>,
    /// Rows that fail, in all.
    pub total: u64,
    /// Problems of the database itself, and tables that could not be read to the end.
    pub integrity: Vec<String>,
}

impl Findings {
    /// Checks every row of `rows` (one table, read to the end); returns how many were read.
    /// A read that fails stops this table and is reported in [`Findings::integrity`].
    pub async fn scan<T: CheckedRow>(
        &mut self,
        rows: impl futures::Stream<Item = Result<T, sqlx::Error>>,
    ) -> u64 {
        use futures::StreamExt;
        let mut rows = std::pin::pin!(rows);
        let mut count = 0;
        while let Some(row) = rows.next().await {
            match row {
                Ok(raw) => {
                    count += 1;
                    if let Some(detail) = raw.damage() {
                        self.add(T::TABLE, raw.job(), raw.describe(), detail);
                    }
                }
                Err(err) => {
                    self.integrity
                        .push(format!("reading table {} stopped: {err}", T::TABLE));
                    break;
                }
            }
        }
        count
    }

    fn add(&mut self, table: &str, job: JobId, row: String, detail: String) {
        self.total += 1;
        if self.rows.len() < CheckReport::LISTED_MAX {
            self.rows.push(CorruptRowReport {
                table: table.into(),
                job,
                row,
                detail,
            });
        }
    }

    /// The report of a check of `catalog` that read `counts` rows of jobs, files and
    /// verified chunks, and checked its pages or not.
    pub fn report(self, catalog: PathBuf, pages_checked: bool, counts: [u64; 3]) -> CheckReport {
        CheckReport {
            catalog,
            pages_checked,
            integrity: self.integrity,
            jobs_checked: counts[0],
            files_checked: counts[1],
            chunks_checked: counts[2],
            corrupt_rows: self.rows,
            corrupt_rows_total: self.total,
        }
    }
}

/// One completed file of a job rebuilt from a destination's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedFile {
    /// The file as it was planned (index, path, size, mtime, mode).
    pub planned: PlannedFile,
    /// Its BLAKE3 hash, or `None` for a file that must be copied again (recorded as
    /// pending: missing or resized at the destination).
    pub hash: Option<[u8; 32]>,
    /// The chaining values of its chunks in order, for files of more than one chunk
    /// (recorded as verified chunks); empty otherwise.
    pub chunks: Vec<[u8; 32]>,
}

/// A job rebuilt from a destination's manifest, to import in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedJob {
    /// Display URI of the source (or a placeholder when it is not known).
    pub source: String,
    /// Display URI of the destination.
    pub destination: String,
    /// Chunk size of the manifest.
    pub chunk_size: u64,
    /// The job options, as JSON.
    pub options_json: String,
    /// The files, with indexes exactly `0..n`.
    pub files: Vec<CompletedFile>,
    /// The dataset root hash, set on the job when every file is complete.
    pub root_hash: String,
    /// Why the job is not complete, when some file is pending: the job is then recorded
    /// as failed with this message (running it again copies the pending files).
    pub incomplete: Option<String>,
}

/// A job an import removed because it recorded a migration to the same destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplacedJob {
    /// Its id.
    pub id: JobId,
    /// Its source, as recorded (the row may be damaged).
    pub source: String,
}

/// What [`crate::SqliteCatalog::import_completed_job`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedJob {
    /// The new job's id.
    pub job: JobId,
    /// Jobs to the same destination that were removed.
    pub replaced: Vec<ReplacedJob>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file<'a>(path: &'a str, hash: Option<&'a [u8]>) -> FileColumns<'a> {
        FileColumns {
            job_id: 1,
            file_index: 0,
            path,
            size: 10,
            mtime_ns: Some(5),
            mode: None,
            state: "done",
            hash,
            error: None,
        }
    }

    #[test]
    fn every_column_and_the_key_count() {
        let hash = [7u8; 32];
        let base = file("a", Some(&hash)).checksum();
        let variants = [
            FileColumns {
                job_id: 2,
                ..file("a", Some(&hash))
            },
            FileColumns {
                file_index: 1,
                ..file("a", Some(&hash))
            },
            file("b", Some(&hash)),
            FileColumns {
                size: 11,
                ..file("a", Some(&hash))
            },
            FileColumns {
                mtime_ns: None,
                ..file("a", Some(&hash))
            },
            FileColumns {
                mode: Some(5),
                ..file("a", Some(&hash))
            },
            FileColumns {
                state: "pending",
                ..file("a", Some(&hash))
            },
            file("a", None),
            file("a", Some(&[8u8; 32])),
            FileColumns {
                error: Some(""),
                ..file("a", Some(&hash))
            },
        ];
        for variant in variants {
            assert_ne!(variant.checksum(), base, "{variant:?}");
        }
        assert_eq!(file("a", Some(&hash)).checksum(), base);
    }

    #[test]
    fn tables_have_their_own_keys() {
        // The same values under another table's key do not verify.
        let value = [1u8; 32];
        let chunk = chunk_checksum(1, 0, 0, &value);
        let as_file = FileColumns {
            job_id: 1,
            file_index: 0,
            path: "",
            size: 0,
            mtime_ns: None,
            mode: None,
            state: "",
            hash: Some(&value),
            error: None,
        }
        .checksum();
        assert_ne!(chunk, as_file);
        assert_ne!(chunk_checksum(1, 0, 1, &value), chunk);
        assert_ne!(chunk_checksum(1, 1, 0, &value), chunk);
    }

    #[test]
    fn text_boundaries_are_part_of_the_encoding() {
        let job = |source: &'static str, destination: &'static str| JobColumns {
            id: 1,
            source,
            destination,
            chunk_size: 4,
            options_json: "{}",
            created_at: 0,
            state: "done",
            root_hash: None,
            last_error: None,
        };
        assert_ne!(job("ab", "c").checksum(), job("a", "bc").checksum());
        let none = JobColumns {
            root_hash: None,
            ..job("a", "b")
        };
        let empty = JobColumns {
            root_hash: Some(""),
            ..job("a", "b")
        };
        assert_ne!(none.checksum(), empty.checksum());
    }

    #[test]
    fn mismatches_are_explained() {
        let sum = chunk_checksum(1, 2, 3, &[0; 32]);
        assert_eq!(mismatch(Some(&sum), &sum), None);
        assert!(mismatch(None, &sum).unwrap().contains("no checksum"));
        assert!(mismatch(Some(&[1, 2]), &sum).unwrap().contains("2 bytes"));
        let mut other = sum;
        other[0] ^= 1;
        let detail = mismatch(Some(&other), &sum).unwrap();
        assert!(detail.contains(&hex(&other)) && detail.contains(&hex(&sum)));
    }
}
