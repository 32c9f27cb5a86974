-- API tokens of `strata serve` (`strata token create|list|revoke`).
--
-- Only a hash of each token is kept (`hash`: the 32-byte BLAKE3 of the token's secret part):
-- a token is 256 random bits, so one fast hash is as hard to invert as the token is to
-- guess, and no password hashing (salt, work factor) is needed. A copy of this table lets
-- nobody call the API.
--
-- `id`: the public half of the token (it appears in the token, the audit log and `strata
-- token list`); `scope`: read, write or admin; `prefix`: object keys the token is limited
-- to (NULL: all); times are ms since the Unix epoch (`expires_ms` NULL: never; `revoked_ms`
-- NULL: in force). Rows are never deleted: once a token has existed the service keeps
-- requiring one, so revoking every token cannot reopen it by accident.
CREATE TABLE api_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    hash        BLOB    NOT NULL CHECK (length(hash) = 32),
    scope       TEXT    NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    prefix      TEXT,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER,
    revoked_ms  INTEGER
);
