//! The tier layout marker of `strata serve`: `<tier store>/.strata/tier.json`, naming the
//! layout a tier's objects are written in (`docs/FORMATS.md`, "Tier layout marker").
//!
//! Written as compact JSON, `{"format":"strata-tier","layout":"packed","version":1}`
//! (members in byte order of their names), when a tier has no marker or holds nothing.
//! Read at start: only `layout` is looked at ([`marker_layout`]); `format` and `version`
//! are not checked, so a marker is recognised by a `layout` member of a known value.

/// Where a tier's layout marker lives in its store.
pub const TIER_MARKER_PATH: &str = ".strata/tier.json";
/// The `format` member of a tier marker.
pub const TIER_MARKER_FORMAT: &str = "strata-tier";
/// The marker version this build writes.
pub const TIER_MARKER_VERSION: u32 = 1;

/// The marker's bytes for a tier of `layout` (`plain` or `packed`, as `strata.toml`
/// writes it).
pub fn tier_marker(layout: &str) -> Vec<u8> {
    let marker = serde_json::json!({
        "format": TIER_MARKER_FORMAT,
        "version": TIER_MARKER_VERSION,
        "layout": layout,
    });
    marker.to_string().into_bytes()
}

/// The `layout` member of a marker, or `None` when the bytes are not a JSON object with a
/// string `layout` (then the file is not a Strata tier marker). The caller checks the name.
pub fn marker_layout(bytes: &[u8]) -> Option<String> {
    let marker: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Some(marker.get("layout")?.as_str()?.to_string())
}
