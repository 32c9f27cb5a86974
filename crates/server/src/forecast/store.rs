//! The model store: `<data_dir>/models/model-000007.json`, one file per trained model,
//! versions growing by one, the newest in force, the last [`MODELS_KEPT`] kept.
//!
//! A file is strata-heat's model JSON ([`ForecastModel`], which checks its own format
//! version and features on load) with one more top-level field, `strata_model`
//! ([`ModelInfo`]): the version, the window the model was trained for, where it learned
//! and its training metrics. A model is written under a temporary name in the same
//! directory and linked to its final name, which fails if another training took the
//! version meanwhile (then the next version is tried): a reader never sees half a file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use strata_codec::format::model::{model_file_name, model_version_of};
use strata_heat::forecast::ForecastModel;

/// The directory under the data dir (names: `strata_codec::format::model`).
pub use strata_codec::format::model::MODELS_DIR;

/// Models kept (older ones are deleted after a training).
pub const MODELS_KEPT: usize = 5;

/// What a model is and what training measured, stored with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The version (1, 2, ...), also in the file name.
    pub version: u64,
    /// When training ended, ms since the Unix epoch.
    pub trained_at_ms: i64,
    /// What it learned from (`access history of CATALOG`, `trace FILE`).
    pub source: String,
    /// The window its features and target are counted in, ms.
    pub window_ms: i64,
    /// Wall time of the training, seconds.
    pub training_seconds: f64,
    /// Labelled rows (object, window) trained on.
    pub rows: usize,
    /// Distinct objects in the history.
    pub objects: u32,
    /// Window boundaries labelled.
    pub windows: u32,
    /// Share of rows whose object was read in the next window.
    pub positive_share: f64,
    /// Root mean squared error of the predicted reads on the training rows.
    pub rmse: f64,
    /// F1 of "read" at the threshold.
    pub f1: f64,
    /// Of the training rows predicted "read", the share that were read: the confidence of
    /// a "read" forecast.
    pub precision: f64,
    /// Of the training rows predicted "not read", the share that were not: the confidence
    /// of a "not read" forecast.
    pub negative_predictive_value: f64,
    /// Predicted reads at or above this mean "read".
    pub threshold: f64,
}

/// A model in force.
#[derive(Debug)]
pub struct LoadedModel {
    /// The trees.
    pub model: ForecastModel,
    /// Its information.
    pub info: ModelInfo,
    /// Its file.
    pub path: PathBuf,
}

/// A model written.
#[derive(Clone, Debug, Serialize)]
pub struct SavedModel {
    /// Its version.
    pub version: u64,
    /// Its file.
    pub path: PathBuf,
    /// The file's size, bytes.
    pub size_bytes: u64,
}

/// `<data_dir>/models`.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(MODELS_DIR)
}

/// The file name of a version.
pub fn file_name(version: u64) -> String {
    model_file_name(version)
}

fn version_of(name: &str) -> Option<u64> {
    model_version_of(name)
}

/// The model files in `dir`, oldest version first (none when the directory is missing).
pub fn versions(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            version_of(name.to_str()?).map(|version| (version, entry.path()))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The newest model file, if any.
pub fn newest(dir: &Path) -> Result<Option<(u64, PathBuf)>, String> {
    versions(dir)
        .map(|mut found| found.pop())
        .map_err(|err| format!("cannot list the model directory {}: {err}", dir.display()))
}

/// Loads a model file: the trees (their format and features checked) and its information.
pub fn load(path: &Path) -> Result<LoadedModel, String> {
    let model = ForecastModel::load(path).map_err(|err| err.to_string())?;
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("model file {}: cannot read it: {err}", path.display()))?;
    #[derive(Deserialize)]
    struct Envelope {
        strata_model: Option<ModelInfo>,
    }
    let info = serde_json::from_str::<Envelope>(&text)
        .ok()
        .and_then(|envelope| envelope.strata_model)
        .ok_or_else(|| {
            format!(
                "model file {}: it has no readable `strata_model` (window, version, metrics), \
                 so it was not written by `strata train`; train a new one with `strata train`",
                path.display()
            )
        })?;
    Ok(LoadedModel {
        model,
        info,
        path: path.to_path_buf(),
    })
}

/// Writes `model` with `info` as the next version in `dir` (created if needed), deletes
/// versions beyond the last [`MODELS_KEPT`], and says what was written. `info.version` is
/// set to the version written.
pub fn save(dir: &Path, model: &ForecastModel, info: &mut ModelInfo) -> Result<SavedModel, String> {
    let fail = |what: &str, err: &dyn std::fmt::Display| {
        format!(
            "cannot {what} in the model directory {}: {err}; check that it is writable",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(|err| fail("create it", &err))?;
    let mut version = versions(dir)
        .map_err(|err| fail("list it", &err))?
        .last()
        .map_or(1, |(v, _)| v + 1);
    let temp = dir.join(format!(".model-{}.json.tmp", std::process::id()));
    loop {
        info.version = version;
        let mut json = serde_json::to_value(model).map_err(|err| fail("encode the model", &err))?;
        let meta = serde_json::to_value(&*info).map_err(|err| fail("encode the model", &err))?;
        if let Some(object) = json.as_object_mut() {
            object.insert("strata_model".to_string(), meta);
        }
        let text = serde_json::to_vec(&json).map_err(|err| fail("encode the model", &err))?;
        write_synced(&temp, &text).map_err(|err| fail("write a model", &err))?;
        let path = dir.join(file_name(version));
        match std::fs::hard_link(&temp, &path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&temp);
                prune(dir);
                return Ok(SavedModel {
                    version,
                    path,
                    size_bytes: text.len() as u64,
                });
            }
            // Another training took this version meanwhile: take the next.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => version += 1,
            Err(err) => {
                let _ = std::fs::remove_file(&temp);
                return Err(fail("name the model file", &err));
            }
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Deletes all but the last [`MODELS_KEPT`] versions (a failure only costs disk space).
fn prune(dir: &Path) {
    let Ok(found) = versions(dir) else {
        return;
    };
    let excess = found.len().saturating_sub(MODELS_KEPT);
    for (_, path) in &found[..excess] {
        if let Err(err) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), %err, "cannot delete an old model");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_model_files_count_as_versions() {
        assert_eq!(version_of("model-000007.json"), Some(7));
        assert_eq!(version_of("model-1234567.json"), Some(1_234_567));
        assert_eq!(version_of("model-.json"), None);
        assert_eq!(version_of("model-00x7.json"), None);
        assert_eq!(version_of(".model-12.json.tmp"), None);
        assert_eq!(file_name(7), "model-000007.json");
    }
}
