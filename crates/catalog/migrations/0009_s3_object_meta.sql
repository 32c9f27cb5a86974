-- What the S3 front door (`strata serve --s3-listen`) keeps of an object written through
-- it, beside the object's own row: the S3 ETag its client saw (the MD5 hex of a PutObject's
-- body, or `MD5(part MD5s)-N` of a multipart upload), its `Content-Type` and its
-- `x-amz-meta-*` user metadata.
--
-- A table of its own, not columns of `objects`: the object row is written by the group
-- commit of every write path, and S3's metadata belongs to one front end. The row is written
-- after the object is committed, so it can be missing (a crash between the two writes) or
-- stale (an overwrite or delete through `/v1/objects`): `hash` is the BLAKE3 of the content
-- it describes, and the front door uses the row only while it equals the object's current
-- hash (otherwise the derived ETag: never a wrong one). Stale rows are removed by the front
-- door's cleanup loop.
--
-- `key`: the service key; `hash`: 32 bytes; `etag`: unquoted; `content_type`: NULL when
-- the client gave none; `metadata`: a JSON object of the user metadata (names lowercase,
-- without `x-amz-meta-`); `written_ms`: ms since the Unix epoch.
CREATE TABLE s3_object_meta (
    key           TEXT    NOT NULL PRIMARY KEY,
    hash          BLOB    NOT NULL CHECK (length(hash) = 32),
    etag          TEXT    NOT NULL,
    content_type  TEXT,
    metadata      TEXT    NOT NULL,
    written_ms    INTEGER NOT NULL
);
