//! The layers of the service's tier stores ([`strata_store::Layers`]), from its
//! configuration: the `[bandwidth]` policy of moves and the `STRATA_FAULTS` plan.
//!
//! **Moves are throttled, client requests are not.** The limit exists so that background
//! traffic (moves; later re-encodes and repairs) leaves the disks and the network to the
//! service's users. A client GET or PUT put behind the same token bucket would queue behind
//! a move's megabytes and its latency would depend on the move backlog; a cap on client
//! traffic belongs in front of the service (a proxy), not in its placement engine. So each
//! tier gets an unthrottled store for requests and a throttled one for moves
//! ([`crate::tiers::MoveStores`]); both share the tier's fault counters only where they are
//! the same side.
//!
//! **Fault sides in the service**: a move's source tier is `src`, its target tier `dst`;
//! client requests, start-up checks and recovery get the rules for `any` only. So
//! `dst:put:error:first=1` fails the first copy a move writes and nothing a client does.

use serde::Serialize;
use strata_heat::TieringConfig;
use strata_store::faults::FaultPlan;
use strata_store::{BandwidthControl, BandwidthPolicy, Layers};

use crate::error::ServeError;

/// The layers for the tier stores, and the bandwidth control of moves when `[bandwidth]`
/// is configured.
pub fn store_layers(
    config: &TieringConfig,
    faults: Option<FaultPlan>,
) -> Result<(Layers, Option<BandwidthControl>), ServeError> {
    let bandwidth = match &config.bandwidth {
        None => None,
        Some(section) => {
            let policy = BandwidthPolicy {
                limit: section.limit.clone(),
                limit_source: "[bandwidth] limit".to_string(),
                limit_file: None,
                class: section.priority,
                congestion_control: section.congestion_control,
            };
            let control = BandwidthControl::new(policy).map_err(|err| ServeError::Config {
                field: "bandwidth.limit".to_string(),
                reason: err.to_string(),
            })?;
            Some(control)
        }
    };
    Ok((Layers::new(faults, bandwidth.clone()), bandwidth))
}

/// The moves' throttle as `/healthz` shows it.
#[derive(Debug, Serialize)]
pub struct BandwidthHealth {
    /// Where the limit in force comes from (`[bandwidth] limit`, or no cap).
    pub limit_source: String,
    /// The priority class of moves.
    pub priority: String,
    /// Whether congestion control applies (S3 tiers only).
    pub congestion_control: bool,
    /// Bytes admitted through the throttle so far, all tiers, by lane.
    pub read_bytes: u64,
    /// See `read_bytes`.
    pub write_bytes: u64,
    /// Each throttled tier store's throttle: the limit in force (`limit`), caps and bytes
    /// per lane. Tiers a throttle could never slow (local, no limit) are not listed.
    pub stores: Vec<strata_store::bandwidth::StoreThrottleStatus>,
}

/// The throttle's part of `/healthz`: `None` without `[bandwidth]`.
pub fn health(control: Option<&BandwidthControl>) -> Option<BandwidthHealth> {
    let control = control?;
    let status = control.status();
    let sum = |lane: fn(&strata_store::ThrottleStatus) -> u64| {
        status.stores.iter().map(|s| lane(&s.status)).sum()
    };
    Some(BandwidthHealth {
        limit_source: status.limit_source.clone(),
        priority: status.priority.clone(),
        congestion_control: status.congestion_control,
        read_bytes: sum(|s| s.read.admitted_bytes),
        write_bytes: sum(|s| s.write.admitted_bytes),
        stores: status.stores,
    })
}
