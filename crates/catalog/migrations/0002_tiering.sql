-- Tiering state of `strata serve`: the objects it serves, where their bytes are, the writes
-- in flight, access statistics, move jobs and the decisions behind them.
--
-- Same portable conventions as 0001: signed 64-bit integers, lowercase text states checked
-- by the binary, 32-byte hash blobs. Times are milliseconds since the Unix epoch (`_ms`).
--
-- The rule that makes a crash harmless: a row that names bytes on a tier is written
-- *before* the bytes (a write intent, a `copying` placement), and removed only *after* the
-- bytes are gone (a `retiring` placement), so every byte on a tier is accounted for by a
-- row, and recovery knows what to finish or clean up.

-- One row per object the service holds. `generation` grows by one on every write, so a
-- move can tell that the bytes it copied are still the object's.
CREATE TABLE objects (
    key        TEXT    NOT NULL PRIMARY KEY,
    size       INTEGER NOT NULL CHECK (size >= 0),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    mtime_ms   INTEGER NOT NULL,
    generation INTEGER NOT NULL CHECK (generation > 0),
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Copies of objects on tiers. `current`: the copy reads are served from (exactly one per
-- live object); `copying`: a move is writing it; `retiring`: it is being deleted (after a
-- move switched away from it, or after the object was deleted). No foreign key to
-- `objects`: a deleted object's copies outlive its row until their bytes are gone.
CREATE TABLE placements (
    key        TEXT    NOT NULL,
    tier       TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    job_id     INTEGER,
    placed_ms  INTEGER NOT NULL,
    PRIMARY KEY (key, tier)
) WITHOUT ROWID;

CREATE UNIQUE INDEX placements_one_current ON placements (key) WHERE state = 'current';
CREATE INDEX placements_in_flight ON placements (state, key) WHERE state <> 'current';

-- A write about to replace (or create) the bytes of `key` on `tier`. Recorded before the
-- bytes are written, removed in the transaction that records the new object version.
CREATE TABLE write_intents (
    key        TEXT    NOT NULL,
    tier       TEXT    NOT NULL,
    started_ms INTEGER NOT NULL,
    PRIMARY KEY (key, tier)
) WITHOUT ROWID;

-- Per-object access statistics: strata-heat's persisted form (`AccessStats::encode_json`,
-- versioned inside the JSON), written in batches by the service's flush.
CREATE TABLE access_stats (
    key        TEXT    NOT NULL PRIMARY KEY,
    stats_json TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- One move of one object between tiers: copy, verify, switch, retire. The idempotency key
-- names the move (object, generation, placement, target), so planning the same move twice
-- finds the first job instead of making a second.
CREATE TABLE move_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    key             TEXT    NOT NULL,
    from_tier       TEXT    NOT NULL,
    to_tier         TEXT    NOT NULL,
    generation      INTEGER NOT NULL,
    size            INTEGER NOT NULL CHECK (size >= 0),
    state           TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    explanation     TEXT    NOT NULL,
    inputs_json     TEXT    NOT NULL,
    after_json      TEXT    NOT NULL DEFAULT '[]',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    finished_ms     INTEGER
);

CREATE INDEX move_jobs_by_key ON move_jobs (key, id);
-- At most one unfinished move per object.
CREATE UNIQUE INDEX move_jobs_one_active ON move_jobs (key)
    WHERE state IN ('planned', 'copying', 'verifying', 'switching', 'retiring');

-- Why objects are where they are: each class decision or placement action, with the
-- numbers it was made from, for `strata explain`.
CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL,
    ts_ms       INTEGER NOT NULL,
    class       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    explanation TEXT    NOT NULL,
    inputs_json TEXT    NOT NULL,
    job_id      INTEGER
);

CREATE INDEX decisions_by_key ON decisions (key, id);
