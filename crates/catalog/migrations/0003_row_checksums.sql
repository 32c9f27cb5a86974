-- Row checksums for the migration tables: a catalog whose rows were altered or damaged
-- behind its back is detected on read and not trusted.
--
-- `checksum` is 16 bytes of BLAKE3, keyed per table, over a canonical encoding of the
-- row's meaningful columns and its key (the format is documented in
-- crates/catalog/src/integrity.rs). SQL cannot compute BLAKE3, so the binary writes it on
-- every insert and update and checks it on every read.
--
-- Rows that exist when this migration is applied get their checksum from the binary right
-- after it, in the same transaction (SqliteCatalog's back-fill): an upgraded catalog has
-- no row without one, and from then on a NULL checksum means damage.
--
-- No CHECK on the length: the binary checks it, and reports a wrong length as damage of
-- that row instead of refusing to open the whole file.

ALTER TABLE jobs ADD COLUMN checksum BLOB;

ALTER TABLE files ADD COLUMN checksum BLOB;

ALTER TABLE verified_chunks ADD COLUMN checksum BLOB;
