-- PostgreSQL twin of ../0003_row_checksums.sql: the row checksum columns (format in
-- crates/catalog/src/integrity.rs). A PostgreSQL catalog is created at the current schema,
-- so it has no row written before this migration and needs no back-fill: a NULL checksum
-- is damage from the start.

ALTER TABLE jobs ADD COLUMN checksum BYTEA;

ALTER TABLE files ADD COLUMN checksum BYTEA;

ALTER TABLE verified_chunks ADD COLUMN checksum BYTEA;
