-- Per-chunk BLAKE3 of every object version of `strata serve`, so that each read checks
-- every 1 MiB chunk before a byte of it is served (the object's hash alone can only be
-- checked once the whole object is read, after its bytes went out).
--
-- `chunk_hashes`: the BLAKE3 chaining value of each 1 MiB chunk of the object's raw bytes,
-- hashed at its offset (`blake3::hazmat`, as `crates/codec/src/hash.rs` does), concatenated
-- in chunk order, 32 bytes each; an object of one chunk has one value, its hash. Written
-- with the object's hash by every write. The binary checks on every load that the values
-- merge into `hash`.
--
-- Objects written before this migration have NULL: the service checks such an object whole
-- against its hash on its first read, before serving any byte, and fills the column in.
-- No CHECK on the length: the binary checks it and treats values that do not fit as absent.

ALTER TABLE objects ADD COLUMN chunk_hashes BLOB;
