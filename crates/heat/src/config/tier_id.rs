//! [`TierId`]: a tier's typed identity within one configuration.

use serde::Serialize;

/// A tier's identity within one configuration: its position in `[[tier]]` (0 is the
/// hottest). A tier's name is resolved to its `TierId` once, where the name comes in (the
/// configuration, a catalog row, a request), so no later step looks a tier up by name
/// again, and a tier can never be confused with another count or position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TierId(u32);

impl TierId {
    /// The hottest tier (the first declared).
    pub const HOTTEST: TierId = TierId(0);

    /// The tier at `index` in the configuration's list.
    pub fn from_index(index: usize) -> TierId {
        // A configuration is a text file: it cannot hold 2^32 tiers.
        TierId(u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// Its position in the configuration's list (and in every per-tier vector).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for TierId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tier[{}]", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_id_is_its_position_and_shows_as_the_config_field() {
        let id = TierId::from_index(2);
        assert_eq!(id.index(), 2);
        assert_eq!(id.to_string(), "tier[2]");
        assert!(TierId::HOTTEST < id, "hotter tiers order first");
    }
}
