//! `--codec` and `--link-rate`, shared by `migrate --layout packed` and `inspect`.

use clap::Args;
use strata_codec::analyze::Objective;
use strata_codec::compress::CodecSpec;

use crate::units::parse_link_rate;

/// How chunks are compressed.
#[derive(Args, Debug, Clone)]
pub struct CodecArgs {
    /// Codec policy: `auto` (fastest end to end for --link-rate), `max` (smallest, any
    /// speed), or a fixed choice like `zstd:19`, `zstd:3:long`, `lz4`, `xz:6`, `none`,
    /// optionally with a filter: `zstd:3+shuffle4`.
    #[arg(long, default_value = "auto")]
    pub codec: String,
    /// Link rate `auto` optimises for, in bits per second (1G = 1 Gbit/s = 125 MB/s).
    #[arg(long, default_value = "1G", value_parser = parse_link_rate)]
    pub link_rate: f64,
}

impl CodecArgs {
    /// The selector's objective, or a clear error for a bad `--codec`.
    pub fn objective(&self) -> anyhow::Result<Objective> {
        let spec = CodecSpec::parse(&self.codec).map_err(|e| anyhow::anyhow!("--codec: {e}"))?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        Ok(Objective::from_spec(spec, self.link_rate, workers))
    }
}
