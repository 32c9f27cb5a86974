-- Migration jobs, their planned files and the chunks verified so far.
--
-- Portable column semantics (a PostgreSQL engine mirrors them with BIGINT, TEXT, BYTEA):
-- sizes, indexes and times are signed 64-bit integers, states are lowercase text checked by
-- the binary (no CHECK list, so that a later migration can add a state without rebuilding
-- the table), hashes are 32-byte blobs.

-- Marks the file as a Strata catalog ('STRA'), so that the binary refuses to write into a
-- database that belongs to another application.
PRAGMA application_id = 1398035009;

CREATE TABLE jobs (
    -- AUTOINCREMENT: ids are never reused, even after a job is deleted.
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT    NOT NULL,
    destination  TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    chunk_size   INTEGER NOT NULL CHECK (chunk_size > 0),
    options_json TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    root_hash    TEXT,
    last_error   TEXT,
    UNIQUE (source, destination)
);

CREATE INDEX jobs_by_creation ON jobs (created_at, id);

-- Foreign keys without cascades: the binary deletes children first, explicitly, which is
-- several times faster for a million files than a cascade run row by row.
--
-- WITHOUT ROWID: the primary key is the only access path, so the rows live in its b-tree
-- instead of a second one.
CREATE TABLE files (
    job_id     INTEGER NOT NULL REFERENCES jobs (id),
    file_index INTEGER NOT NULL CHECK (file_index >= 0),
    path       TEXT    NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    mtime_ns   INTEGER,
    mode       INTEGER,
    state      TEXT    NOT NULL DEFAULT 'pending',
    hash       BLOB    CHECK (hash IS NULL OR length(hash) = 32),
    error      TEXT,
    PRIMARY KEY (job_id, file_index)
) WITHOUT ROWID;

CREATE TABLE verified_chunks (
    job_id         INTEGER NOT NULL,
    file_index     INTEGER NOT NULL,
    chunk_index    INTEGER NOT NULL CHECK (chunk_index >= 0),
    chaining_value BLOB    NOT NULL CHECK (length(chaining_value) = 32),
    PRIMARY KEY (job_id, file_index, chunk_index),
    FOREIGN KEY (job_id, file_index) REFERENCES files (job_id, file_index)
) WITHOUT ROWID;
