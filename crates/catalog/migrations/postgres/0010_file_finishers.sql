-- PostgreSQL twin of ../0010_file_finishers.sql (read the SQLite file for why the table and
-- each column are there). Types: BIGINT for SQLite's 64-bit INTEGER.

CREATE TABLE file_finishers (
    job_id     BIGINT  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    file_index BIGINT  NOT NULL CHECK (file_index >= 0),
    run        TEXT    NOT NULL,
    task       TEXT    NOT NULL,
    worker     TEXT    NOT NULL,
    claimed_at BIGINT  NOT NULL,
    PRIMARY KEY (job_id, file_index)
);
