-- PostgreSQL twin of ../0005_access_history.sql: per object and per hour, the reads,
-- writes and bytes of `strata serve` (see the SQLite file).

CREATE TABLE access_history (
    key     TEXT    NOT NULL,
    hour_ms BIGINT  NOT NULL,
    reads   BIGINT  NOT NULL CHECK (reads >= 0),
    writes  BIGINT  NOT NULL CHECK (writes >= 0),
    bytes   BIGINT  NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (key, hour_ms)
);

CREATE INDEX access_history_by_hour ON access_history (hour_ms);
