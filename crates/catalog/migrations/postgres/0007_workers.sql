-- PostgreSQL twin of ../0007_workers.sql (read the SQLite file for why each table and
-- column is there). Types: BIGINT for SQLite's 64-bit INTEGER.

CREATE TABLE workers (
    id            TEXT    NOT NULL PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           BIGINT  NOT NULL,
    cores         BIGINT  NOT NULL CHECK (cores >= 0),
    bandwidth_cap BIGINT  CHECK (bandwidth_cap IS NULL OR bandwidth_cap >= 0),
    throughput    BIGINT  NOT NULL CHECK (throughput >= 0),
    bytes_done    BIGINT  NOT NULL CHECK (bytes_done >= 0),
    tasks_done    BIGINT  NOT NULL CHECK (tasks_done >= 0),
    started_at    BIGINT  NOT NULL,
    heartbeat_at  BIGINT  NOT NULL,
    job_id        BIGINT,
    task          TEXT
);

CREATE TABLE job_finishers (
    job_id     BIGINT  NOT NULL PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    run        TEXT    NOT NULL,
    task       TEXT    NOT NULL,
    worker     TEXT    NOT NULL,
    claimed_at BIGINT  NOT NULL
);
