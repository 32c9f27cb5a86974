//! # strata-fuzz
//!
//! The fuzz targets of every parser that reads outside input: what a store, a trace file,
//! a configuration file or a client hands Strata. Each target takes arbitrary bytes and
//! must neither panic nor accept what it cannot give back: where a parser accepts its
//! input, the target checks that what it parsed survives its own encoding (a manifest
//! read is written and read again to the same value, a URI printed parses to the same
//! URI, a frame that decodes yields bytes with the hash it declares).
//!
//! Three ways run them, all on the same functions ([`TARGETS`]):
//!
//! - in CI, `tests/random.rs` feeds each target random bytes and random mutations of its
//!   seeds (proptest; `PROPTEST_CASES` sets how many), and `tests/corpora.rs` replays
//!   every file of `corpus/<target>/` (seeds, and inputs the fuzzers found);
//! - coverage-guided, with AFL++ on the stable toolchain: `cargo afl build --features afl
//!   -p strata-fuzz` and `cargo afl fuzz -i corpus/<target> -o OUT
//!   target/debug/strata-fuzz-afl <target>` (see `README.md` here);
//! - the service's HTTP parser is fuzzed against a running service, in the server
//!   crate's `tests/http_fuzz.rs`, since it needs one.
//!
//! The seeds ([`seeds`]) are valid inputs made by Strata's own encoders, so mutations start
//! from the shapes the parsers accept.

pub mod seeds;
pub mod targets;

/// One fuzz target: a parser of outside input, by name.
pub struct Target {
    /// The name: the corpus folder (`corpus/<name>`) and the AFL binary's argument.
    pub name: &'static str,
    /// What it parses, for reports.
    pub what: &'static str,
    /// Runs the parser on `data`; panics only if the parser broke a promise (it panicked,
    /// or accepted bytes it cannot give back).
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "frame",
        what: "chunk frames (docs/FORMATS.md, chunk frame)",
        run: targets::frame,
    },
    Target {
        name: "encrypted_frame",
        what: "encrypted frames (docs/FORMATS.md, encrypted frame)",
        run: targets::encrypted_frame,
    },
    Target {
        name: "manifest",
        what: "dataset manifests",
        run: targets::manifest,
    },
    Target {
        name: "packed_index",
        what: "packed layout indexes (sealed JSON)",
        run: targets::packed_index,
    },
    Target {
        name: "layout_marker",
        what: "packed layout markers (plain and encrypted)",
        run: targets::layout_marker,
    },
    Target {
        name: "parity_map",
        what: "parity maps (sealed JSON)",
        run: targets::parity_map,
    },
    Target {
        name: "tier_object",
        what: "packed tier objects' frame tables and trailers",
        run: targets::tier_object,
    },
    Target {
        name: "fragment",
        what: "erasure-coded fragments' headers, tables and trailers",
        run: targets::fragment,
    },
    Target {
        name: "replica_sums",
        what: "replicas' integrity records",
        run: targets::replica_sums,
    },
    Target {
        name: "config",
        what: "strata.toml",
        run: targets::config,
    },
    Target {
        name: "uri",
        what: "store URIs",
        run: targets::uri,
    },
    Target {
        name: "key",
        what: "object keys",
        run: targets::key,
    },
    Target {
        name: "access_events",
        what: "access-event NDJSON",
        run: targets::access_events,
    },
    Target {
        name: "chaos_request",
        what: "POST /v1/chaos bodies (chaos rules)",
        run: targets::chaos_request,
    },
    Target {
        name: "trace",
        what: "trace files, every format (the first byte picks it)",
        run: targets::trace,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
