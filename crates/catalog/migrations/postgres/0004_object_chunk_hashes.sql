-- PostgreSQL twin of ../0004_object_chunk_hashes.sql: per-chunk BLAKE3 of every object
-- version of `strata serve` (see the SQLite file for the format).

ALTER TABLE objects ADD COLUMN chunk_hashes BYTEA;
