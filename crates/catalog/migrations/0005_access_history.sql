-- Access history of `strata serve`, the forecast's training data (`strata train`) and the
-- input of its predictions: per object and per hour, the reads, writes and bytes
-- transferred. Bounded: one row per object per hour with any access, written in batches
-- with the access statistics flush (each flush adds its counts to the hour's row), and
-- rows older than `[forecast] history` (default 30 days) pruned.
--
-- `hour_ms`: the start of the hour (ms since the Unix epoch, a multiple of 3,600,000) of
-- the accesses' own timestamps, so events reported late land in their hour.

CREATE TABLE access_history (
    key     TEXT    NOT NULL,
    hour_ms INTEGER NOT NULL,
    reads   INTEGER NOT NULL CHECK (reads >= 0),
    writes  INTEGER NOT NULL CHECK (writes >= 0),
    bytes   INTEGER NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (key, hour_ms)
) WITHOUT ROWID;

-- Pruning and reading by time.
CREATE INDEX access_history_by_hour ON access_history (hour_ms);
