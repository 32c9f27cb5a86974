//! Access events from a Kafka topic (`--events kafka://HOST:PORT/TOPIC`), with rskafka:
//! every partition of the topic assigned explicitly (no consumer group), each record's
//! value one or more NDJSON records.
//!
//! Exactly once at the application level: each partition starts at the offset stored in
//! the catalog (`stream_offsets`), else at its earliest record; after a reconnection in
//! the same process, at the offset it had ingested up to ([`super::Positions`]: the catalog's
//! lags by up to a flush, and resuming from it would count those records twice). A fetched batch is
//! ingested together with the offset after its last record ([`BatchOrigin::reaches`]),
//! and the statistics flush writes that offset in the transaction of the statistics that
//! include the batch. After a crash or a restart the service therefore reads again
//! exactly the records whose counts were not stored.
//!
//! A stored offset past the partition's end (the topic was deleted and created again, or
//! a broker without persistence restarted) cannot be resumed: the partition is read from
//! its earliest record again, and the log says so.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::BackoffConfig;
use strata_catalog::StreamOffset;
use tokio::task::JoinSet;

use super::{append_record, EventSource, Positions, SourceCounters};
use crate::access::{ingest_batch, BatchOrigin};
use crate::state::AppState;

/// Most bytes one fetch asks for.
const FETCH_MAX_BYTES: i32 = 8 << 20;
/// How long the broker may hold a fetch open waiting for records.
const FETCH_MAX_WAIT_MS: i32 = 200;
/// How long rskafka retries a request before the error comes back to the supervisor
/// (which logs it and connects again).
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// Consumes every partition of the source's topic until one of them fails; returns why.
pub async fn consume(
    state: &Arc<AppState>,
    source: &EventSource,
    counters: &Arc<SourceCounters>,
    positions: &Positions,
) -> Result<(), String> {
    let label = source.to_string();
    let client = ClientBuilder::new(vec![source.server.clone()])
        .client_id("strata-serve")
        .backoff_config(BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
            deadline: Some(REQUEST_DEADLINE),
        })
        .build()
        .await
        .map_err(|err| format!("cannot connect to Kafka at {}: {err}", source.server))?;
    let topics = client
        .list_topics()
        .await
        .map_err(|err| format!("cannot list the topics of {}: {err}", source.server))?;
    let Some(topic) = topics.into_iter().find(|topic| topic.name == source.name) else {
        return Err(format!(
            "topic {} does not exist on {}; create it (the service waits for it)",
            source.name, source.server
        ));
    };
    let mut stored: BTreeMap<i32, i64> = state
        .catalog
        .stream_offsets(&label)
        .await
        .map_err(|err| format!("cannot read the stored offsets of {label}: {err}"))?
        .into_iter()
        .map(|offset| (offset.partition, offset.next_offset))
        .collect();
    // What this process ingested is at or past what the catalog has.
    stored.extend(positions.all());
    let mut partitions = JoinSet::new();
    for partition in topic.partitions {
        let client = client
            .partition_client(source.name.clone(), partition, UnknownTopicHandling::Error)
            .await
            .map_err(|err| format!("cannot reach partition {partition} of {label}: {err}"))?;
        let reader = PartitionReader {
            state: Arc::clone(state),
            counters: Arc::clone(counters),
            label: label.clone(),
            client,
            stored: stored.get(&partition).copied(),
            positions: positions.clone(),
        };
        partitions.spawn(reader.run());
    }
    counters.up.store(true, Ordering::Relaxed);
    tracing::info!(source = %label, partitions = partitions.len(), resumed = stored.len(),
        "consuming access events");
    match partitions.join_next().await {
        Some(Ok(ended)) => ended,
        Some(Err(err)) => Err(format!("a partition reader stopped: {err}")),
        None => Err(format!("topic {} has no partitions", source.name)),
    }
}

/// One partition's consumer.
struct PartitionReader {
    state: Arc<AppState>,
    counters: Arc<SourceCounters>,
    label: String,
    client: PartitionClient,
    /// The offset to resume from, if any.
    stored: Option<i64>,
    /// Where the ingested position is kept for a reconnection.
    positions: Positions,
}

impl PartitionReader {
    /// Fetches and ingests until a fetch fails; returns why.
    async fn run(self) -> Result<(), String> {
        let partition = self.client.partition();
        let mut offset = match self.stored {
            Some(offset) => offset,
            None => self.earliest().await?,
        };
        let mut batch = Vec::new();
        loop {
            // rskafka retries a broker that is down for several of its deadlines (its
            // connection and request retries nest): give up sooner and let the supervisor
            // say so and reconnect.
            let fetch = self
                .client
                .fetch_records(offset, 1..FETCH_MAX_BYTES, FETCH_MAX_WAIT_MS);
            let Ok(fetched) = tokio::time::timeout(REQUEST_DEADLINE * 2, fetch).await else {
                return Err(format!(
                    "no answer to a fetch of partition {partition} within {:?}",
                    REQUEST_DEADLINE * 2
                ));
            };
            let records = match fetched {
                // A partition that ends before the position (Tansu answers so where Kafka
                // answers `OffsetOutOfRange`) was reset too.
                Ok((records, high_watermark)) if records.is_empty() && high_watermark < offset => {
                    offset = self.restart_after_reset(offset).await?;
                    continue;
                }
                Ok((records, _)) => records,
                Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                }) => {
                    offset = self.restart_after_reset(offset).await?;
                    continue;
                }
                Err(err) => {
                    return Err(format!(
                        "fetching partition {partition} at offset {offset} failed: {err}"
                    ))
                }
            };
            let Some(last) = records.last() else {
                continue;
            };
            let next_offset = last.offset + 1;
            batch.clear();
            for record in &records {
                if let Some(value) = &record.record.value {
                    append_record(&mut batch, value);
                }
            }
            let origin = BatchOrigin {
                counters: &self.counters,
                log_rejects: true,
                reaches: Some(StreamOffset {
                    source: self.label.clone(),
                    partition,
                    next_offset,
                }),
            };
            ingest_batch(&self.state, &batch, origin);
            // No await since the ingest: a cancelled reader never leaves the two apart.
            self.positions.set(partition, next_offset);
            offset = next_offset;
        }
    }

    async fn earliest(&self) -> Result<i64, String> {
        self.client
            .get_offset(OffsetAt::Earliest)
            .await
            .map_err(|err| {
                format!(
                    "cannot find the first offset of partition {}: {err}",
                    self.client.partition()
                )
            })
    }

    /// The offset to read from after `offset` was refused as out of range: the earliest
    /// when `offset` is past the end (the partition was reset), else (`offset` was
    /// removed by retention) also the earliest, the first record still kept.
    async fn restart_after_reset(&self, offset: i64) -> Result<i64, String> {
        let earliest = self.earliest().await?;
        tracing::warn!(source = %self.label, partition = self.client.partition(),
            stored = offset, earliest,
            "the stored offset is not in the partition (topic recreated, broker reset or \
             records expired); reading from its earliest record");
        Ok(earliest)
    }
}
