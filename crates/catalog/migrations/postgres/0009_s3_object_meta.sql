-- PostgreSQL twin of ../0009_s3_object_meta.sql (read the SQLite file for why each column
-- is there and why the table is separate). Types: BYTEA for SQLite's BLOB, BIGINT for its
-- 64-bit INTEGER. `key` compares bytewise (`COLLATE "C"`), as SQLite's TEXT and the
-- service's index do, so a range of keys (a listing's page) is the same range everywhere.

CREATE TABLE s3_object_meta (
    key           TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    hash          BYTEA   NOT NULL CHECK (length(hash) = 32),
    etag          TEXT    NOT NULL,
    content_type  TEXT,
    metadata      TEXT    NOT NULL,
    written_ms    BIGINT  NOT NULL
);
