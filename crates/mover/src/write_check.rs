//! What a migration reads back to prove the bytes it wrote (`strata migrate --verify`).
//!
//! Every mode hashes the bytes as they are read from the source and sent; the modes differ
//! in what is read back from the staged destination file before it is published, and so
//! in what a match proves:
//!
//! | mode | read back | a match proves | does not catch |
//! |---|---|---|---|
//! | `sent` | nothing | the hash recorded is that of the bytes handed to the destination | a write the destination lost or bent |
//! | `cache` | the staged file, through the page cache | the file holds those bytes at their offsets (short, misplaced or lost writes, another writer) | corruption on the way to the device or on it |
//! | `device` | the staged file with direct I/O (`O_DIRECT`: written out first, then read past the page cache) | the bytes came back from the device | a device that acknowledges and then loses its volatile cache |
//!
//! Object-store destinations cannot read a multipart upload back before it completes, so
//! there every mode is `sent` (the report says so); `strata verify DEST` re-reads the
//! published objects.

use std::fmt;
use std::str::FromStr;

/// What a migration reads back before publishing (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteCheck {
    /// Nothing read back: the hash of the bytes sent.
    Sent,
    /// The staged file read back through the page cache.
    #[default]
    Cache,
    /// The staged file read back with direct I/O, past the page cache, from the device.
    Device,
}

/// The modes as the command line spells them.
pub const WRITE_CHECKS: &str = "sent, cache, device";

impl WriteCheck {
    /// The mode's name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteCheck::Sent => "sent",
            WriteCheck::Cache => "cache",
            WriteCheck::Device => "device",
        }
    }

    /// Whether staged chunks are read back at all.
    pub fn reads_back(self) -> bool {
        self != WriteCheck::Sent
    }
}

impl fmt::Display for WriteCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WriteCheck {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sent" => Ok(WriteCheck::Sent),
            "cache" => Ok(WriteCheck::Cache),
            "device" => Ok(WriteCheck::Device),
            other => Err(format!(
                "unknown verification mode `{other}`; valid: {WRITE_CHECKS}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_parses_back_from_its_name() {
        for mode in [WriteCheck::Sent, WriteCheck::Cache, WriteCheck::Device] {
            assert_eq!(mode.as_str().parse::<WriteCheck>(), Ok(mode));
        }
        assert_eq!(WriteCheck::default(), WriteCheck::Cache);
    }

    #[test]
    fn an_unknown_mode_names_the_valid_ones() {
        let error = "disk".parse::<WriteCheck>().unwrap_err();
        assert!(
            error.contains("`disk`") && error.contains(WRITE_CHECKS),
            "{error}"
        );
    }
}
