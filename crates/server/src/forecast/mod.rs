//! The forecast in the service: the access history it learns from ([`history`]), the
//! model store (`<data_dir>/models`, [`store`]), training on the history or a trace
//! ([`train`], `POST /v1/model/train`, `strata train`), predictions of the next window per
//! object ([`predict`], `GET /v1/predictions/{key}`, `strata explain`), and the proactive
//! cycle that moves objects by them ([`proactive`]).
//!
//! The newest model file is the one in force: it is loaded at start, after a training, and
//! whenever a newer file appears (`strata train` run beside the service). Without a usable
//! model (none yet, a damaged file, another format) the service decides by the rules
//! alone: it logs that once per file, and `/healthz`, `explain`, `predict` and the
//! proactive cycle say so, naming the file and `strata train`.

pub mod history;
pub mod predict;
pub mod proactive;
pub mod store;
pub mod train;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use strata_heat::units::{human_duration_ms, HOUR_MS};

use crate::state::lock;
use history::HistoryBuffer;
use store::LoadedModel;

/// The model slot: what the newest file gave.
#[derive(Debug, Default)]
enum Slot {
    /// Not looked yet.
    #[default]
    Unknown,
    /// No model file.
    Missing,
    /// The newest file, usable.
    Loaded(Arc<LoadedModel>),
    /// The newest file, unusable, and why.
    Unusable { version: u64, reason: String },
}

/// What the proactive cycle did last.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CycleStatus {
    /// Its interval, ms (`None`: off).
    pub interval_ms: Option<i64>,
    /// When it last ran.
    pub last_run_ms: Option<i64>,
    /// Objects forecast in the last run.
    pub forecast: usize,
    /// Moves it queued in the last run.
    pub moves: usize,
    /// One sentence on the last run.
    pub status: String,
}

/// The forecast's shared state.
#[derive(Debug)]
pub struct ForecastState {
    /// Counts not yet in the catalog.
    pub history: Mutex<HistoryBuffer>,
    /// When the history was last pruned (ms).
    pub last_prune_ms: AtomicI64,
    /// One training at a time.
    pub training: tokio::sync::Mutex<()>,
    /// The proactive cycle's last run.
    pub cycle: Mutex<CycleStatus>,
    dir: PathBuf,
    slot: Mutex<Slot>,
}

impl ForecastState {
    /// The state of a service whose data dir is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        ForecastState {
            history: Mutex::new(HistoryBuffer::default()),
            last_prune_ms: AtomicI64::new(0),
            training: tokio::sync::Mutex::new(()),
            cycle: Mutex::new(CycleStatus::default()),
            dir: store::models_dir(data_dir),
            slot: Mutex::new(Slot::Unknown),
        }
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model in force, loading the newest file if it changed; otherwise why there is
    /// none, as a sentence that names the file and what to do.
    pub fn model(&self) -> Result<Arc<LoadedModel>, String> {
        let newest = store::newest(&self.dir);
        let mut slot = lock(&self.slot);
        let current = match &*slot {
            Slot::Loaded(model) => Some(model.info.version),
            Slot::Unusable { version, .. } => Some(*version),
            Slot::Missing => None,
            Slot::Unknown => Some(u64::MAX),
        };
        match newest {
            Err(reason) => return Err(self.fallback(&reason)),
            Ok(None) => {
                if !matches!(*slot, Slot::Missing) {
                    tracing::warn!(dir = %self.dir.display(),
                        "no forecast model: decisions fall back to the rules; run `strata train`");
                    *slot = Slot::Missing;
                }
            }
            Ok(Some((version, path))) if current != Some(version) => {
                *slot = match load_usable(&path) {
                    Ok(model) => {
                        tracing::info!(version, path = %path.display(), "forecast model loaded");
                        Slot::Loaded(Arc::new(model))
                    }
                    Err(reason) => {
                        tracing::error!(%reason, "forecast model unusable: decisions fall \
                            back to the rules; run `strata train`");
                        Slot::Unusable { version, reason }
                    }
                };
            }
            Ok(Some(_)) => {}
        }
        match &*slot {
            Slot::Loaded(model) => Ok(Arc::clone(model)),
            Slot::Unusable { reason, .. } => Err(self.fallback(reason)),
            Slot::Missing | Slot::Unknown => {
                Err(self.fallback(&format!("no forecast model in {}", self.dir.display())))
            }
        }
    }

    fn fallback(&self, reason: &str) -> String {
        format!(
            "{reason}; decisions fall back to the rules: run `strata train` (or POST \
             /v1/model/train) to write a model"
        )
    }

    /// The forecast's part of `/healthz`: the model in force, or why decisions fall back
    /// to the rules, and the proactive cycle's last run.
    pub fn health(&self) -> serde_json::Value {
        let model = match self.model() {
            Ok(model) => serde_json::json!({
                "version": model.info.version,
                "file": model.path,
                "window_ms": model.info.window_ms,
                "trained_at_ms": model.info.trained_at_ms,
                "fallback": null,
            }),
            Err(reason) => serde_json::json!({ "version": null, "fallback": reason }),
        };
        serde_json::json!({ "model": model, "proactive": *lock(&self.cycle) })
    }
}

/// Loads a model file the service can use: its window must be whole hours' worth of the
/// hourly history (at least one hour).
fn load_usable(path: &Path) -> Result<LoadedModel, String> {
    let model = store::load(path)?;
    if model.info.window_ms < HOUR_MS {
        return Err(format!(
            "model file {}: it was trained for windows of {}, shorter than the access \
             history's hour; train it with --window 1h or longer",
            path.display(),
            human_duration_ms(model.info.window_ms)
        ));
    }
    Ok(model)
}
