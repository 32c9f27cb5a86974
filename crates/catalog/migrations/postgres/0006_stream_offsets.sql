-- PostgreSQL twin of ../0006_stream_offsets.sql (read the SQLite file for why each column
-- is there). Types: BIGINT for SQLite's 64-bit INTEGER; the partition is a Kafka partition
-- (32-bit).

CREATE TABLE stream_offsets (
    source      TEXT    NOT NULL,
    partition   INTEGER NOT NULL CHECK (partition >= 0),
    next_offset BIGINT  NOT NULL CHECK (next_offset >= 0),
    updated_ms  BIGINT  NOT NULL,
    PRIMARY KEY (source, partition)
);
