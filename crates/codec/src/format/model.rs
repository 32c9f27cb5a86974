//! Where `strata train` keeps its models: `<data_dir>/models/model-NNNNNN.json`
//! (`docs/FORMATS.md`, "Forecast model files"). The file's JSON is strata-heat's
//! `ForecastModel` (its own `format_version`) plus a `strata_model` member written by
//! `strata_server::forecast::store`; this module owns only the names.

/// The directory under the data dir that holds the models.
pub const MODELS_DIR: &str = "models";

/// The file name of model `version`: `model-` then the version in at least six decimal
/// digits, zero-padded, then `.json`.
pub fn model_file_name(version: u64) -> String {
    format!("model-{version:06}.json")
}

/// The version a model file name carries, or `None` for any other name (temporary files
/// `.model-<pid>.json.tmp` among them).
pub fn model_version_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("model-")?.strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
