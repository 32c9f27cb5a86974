-- How far `strata serve` has consumed each partition of an access-event stream (a Kafka
-- topic given with `--events kafka://HOST:PORT/TOPIC`): the offset of the next record to
-- read. Written in the same transaction as the access statistics that include the
-- records before it (`TieringCatalog::save_access_stats_at`), so after a crash or a
-- restart the service resumes exactly where its stored statistics end: no event counted
-- twice, none lost (exactly once at the application level).
--
-- `source`: the stream as the service names it, `kafka://HOST:PORT/TOPIC` (never with
-- credentials); `partition`: the Kafka partition; `next_offset`: the offset of the first
-- record not yet in the statistics.

CREATE TABLE stream_offsets (
    source      TEXT    NOT NULL,
    partition   INTEGER NOT NULL CHECK (partition >= 0),
    next_offset INTEGER NOT NULL CHECK (next_offset >= 0),
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (source, partition)
) WITHOUT ROWID;
