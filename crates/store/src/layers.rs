//! The layers a store gets on top of its backend, composed in one place for the CLI and
//! the service alike: the fault plan of `STRATA_FAULTS` (a testing aid, [`crate::faults`])
//! and the bandwidth control ([`crate::bandwidth`]). [`Layers`] chooses which layers a
//! store gets; `stack` builds them, in this order from the caller down:
//!
//! 1. **fault injection** (`FaultStore`: run-time [`crate::chaos`] rules, then the fixed
//!    [`crate::faults`] plan), outermost: an injected error
//!    or latency happens before the call is admitted, so it costs no bandwidth and is not
//!    a sample of the path; a flip or truncation applies to exactly the bytes the caller
//!    gets or gives, and a lost call never reaches the layers below;
//! 2. **the throttle's gate** (`GatedStore`, [`crate::throttled`]): paces the bytes of
//!    every data transfer before the backend call, outside OpenDAL's timeouts;
//! 3. **metrics** (`MetricsStore`, [`crate::metrics_layer`]), when asked for
//!    ([`Store::with_metrics`]): counts what reaches the backend, after the throttle's
//!    waits and without the calls fault injection failed or lost on purpose;
//! 4. **the backend** (local files, or OpenDAL for S3 and memory), with, on S3 only,
//!    OpenDAL's own [`ThrottleLayer`](crate::ThrottleLayer) on its HTTP transport for
//!    request slots and one congestion sample per request, and OpenDAL's timeout and short
//!    retry layers inside it.
//!
//! Retry of whole operations is not a layer here: callers retry by
//! [`crate::StoreError::is_retryable`] with their own policy and context
//! (`strata_mover::retry::with_backoff`: which chunk, which job, what to report), which a
//! store layer cannot see; inside S3 stores OpenDAL's short retry layer retries single
//! requests.
//!
//! Which rules of a plan a store gets depends on its **side**: `src` is the store a
//! command reads from, `dst` the one it writes to or checks, and rules for `any` apply to
//! every store. The CLI names the side of each store it opens; the service gives a move's
//! source tier `src`, its target tier `dst`, and everything else (client reads and writes,
//! start-up checks, recovery) `any` only.

use std::sync::{Arc, OnceLock};

use strata_throttle::{Priority, Throttle};

use crate::access::{Access, Backend};
use crate::bandwidth::BandwidthControl;
use crate::chaos::Chaos;
use crate::faults::{FaultPlan, FaultSide, Faults, FAULTS_ENV};
use crate::faults_layer::{FaultSources, FaultStore};
use crate::metrics_layer::{MetricsStore, StoreMetrics};
use crate::throttled::{Gate, GatedStore};
use crate::Store;

/// The layers to put stores under. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Layers {
    faults: Option<FaultPlan>,
    bandwidth: Option<BandwidthControl>,
}

impl Layers {
    /// Layers with `faults` (when some) and `bandwidth` (when some).
    pub fn new(faults: Option<FaultPlan>, bandwidth: Option<BandwidthControl>) -> Layers {
        Layers { faults, bandwidth }
    }

    /// The bandwidth control, if any.
    pub fn bandwidth(&self) -> Option<&BandwidthControl> {
        self.bandwidth.as_ref()
    }

    /// These layers without the bandwidth control (for traffic that must not wait for the
    /// throttle, such as the service's client requests).
    pub fn unthrottled(&self) -> Layers {
        Layers {
            faults: self.faults.clone(),
            bandwidth: None,
        }
    }

    /// `store` under these layers: the plan's rules for `side` (and `any`), then the
    /// throttle. Each call starts fresh fault counters (`nth`, `first`), shared by the
    /// clones of the returned store.
    pub fn apply(&self, store: Store, side: FaultSide) -> Store {
        let store = match &self.faults {
            Some(plan) => store.with_faults(plan.for_side(side)),
            None => store,
        };
        match &self.bandwidth {
            Some(control) => control.apply(store),
            None => store,
        }
    }
}

/// The layers one store is under: what [`stack`] composes over its backend.
#[derive(Clone, Default)]
pub(crate) struct StoreLayers {
    /// Injected faults (a testing aid).
    pub(crate) faults: Option<Arc<Faults>>,
    /// Faults switched on and off at run time ([`crate::chaos`]).
    pub(crate) chaos: Option<Arc<Chaos>>,
    /// The throttle of data transfers and their class.
    pub(crate) throttle: Option<(Throttle, Priority)>,
    /// Counters of the backend's calls.
    pub(crate) metrics: Option<Arc<StoreMetrics>>,
}

/// `base` (a backend as opened) under `layers`, from the caller down: faults, the
/// throttle's gate, metrics, then the backend (with, where it speaks HTTP, the sensing
/// layer on its transport). The one place layers are composed (see the module doc for the
/// order and why).
pub(crate) fn stack(base: &Arc<dyn Backend>, layers: &StoreLayers) -> Arc<dyn Access> {
    let sensing = layers
        .throttle
        .as_ref()
        .and_then(|(t, c)| base.with_sensing(t, *c));
    // Without a sensing layer, the gate takes the slots and reports the samples.
    let gate_samples = sensing.is_none();
    let mut access = sensing.unwrap_or_else(|| Arc::clone(base) as Arc<dyn Access>);
    if let Some(metrics) = &layers.metrics {
        access = Arc::new(MetricsStore::new(access, Arc::clone(metrics)));
    }
    if let Some((throttle, class)) = &layers.throttle {
        let gate = Gate::new(throttle.clone(), *class, gate_samples);
        access = Arc::new(GatedStore::new(access, gate));
    }
    if layers.faults.is_some() || layers.chaos.is_some() {
        let sources = FaultSources {
            chaos: layers.chaos.clone(),
            faults: layers.faults.clone(),
        };
        access = Arc::new(FaultStore::new(access, sources));
    }
    access
}

/// The fault plan in `STRATA_FAULTS`, read once per process; `None` when it is unset. The
/// first call warns on standard error that faults are active, so that nobody runs with them
/// by accident; a malformed value is an error (the message names the bad token).
pub fn env_fault_plan() -> Result<Option<&'static FaultPlan>, String> {
    static PLAN: OnceLock<Result<Option<FaultPlan>, String>> = OnceLock::new();
    let plan = PLAN.get_or_init(|| {
        let plan = FaultPlan::from_env().map_err(|e| e.to_string())?;
        if let Some(plan) = &plan {
            eprintln!(
                "warning: fault injection active: {FAULTS_ENV}={plan} (stores will fail on \
                 purpose; a testing aid, unset {FAULTS_ENV} for real runs)"
            );
        }
        Ok(plan)
    });
    plan.as_ref()
        .map(Option::as_ref)
        .map_err(|message| message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bandwidth::BandwidthPolicy;
    use crate::faults::{FaultEffect, FaultOp, FaultRule};

    #[tokio::test]
    async fn layers_put_a_store_under_its_sides_faults_and_the_throttle() {
        let dir = tempfile::tempdir().unwrap();
        let uri = crate::StoreUri::parse(dir.path().to_str().unwrap()).unwrap();
        let store = Store::open(&uri, &crate::S3Options::default())
            .await
            .unwrap();
        let rule = |side| {
            FaultRule::new(FaultOp::Put, FaultEffect::Error { retryable: false })
                .unwrap()
                .side(side)
        };
        let plan = FaultPlan::new()
            .rule(rule(FaultSide::Dst))
            .rule(rule(FaultSide::Any));
        let control = BandwidthControl::new(BandwidthPolicy {
            limit: Some(strata_throttle::Schedule::parse("4M").unwrap()),
            limit_source: "[bandwidth] limit".into(),
            limit_file: None,
            class: strata_throttle::Priority::Background,
            congestion_control: true,
        })
        .unwrap();
        let layers = Layers::new(Some(plan), Some(control));
        let dst = layers.apply(store.clone(), FaultSide::Dst);
        assert_eq!(dst.faults().map(|f| f.plan().rules().len()), Some(2));
        let (throttle, class) = dst.throttle().expect("throttled");
        assert_eq!(class, strata_throttle::Priority::Background);
        assert_eq!(throttle.limit().to_string(), "4M");
        let src = layers.unthrottled().apply(store, FaultSide::Src);
        assert_eq!(src.faults().map(|f| f.plan().rules().len()), Some(1));
        assert!(src.throttle().is_none());
    }
}
