-- PostgreSQL twin of ../0008_api_tokens.sql (read the SQLite file for why each column is
-- there). Types: BYTEA for SQLite's BLOB, BIGINT for its 64-bit INTEGER.

CREATE TABLE api_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    hash        BYTEA   NOT NULL CHECK (length(hash) = 32),
    scope       TEXT    NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    prefix      TEXT,
    created_ms  BIGINT  NOT NULL,
    expires_ms  BIGINT,
    revoked_ms  BIGINT
);
