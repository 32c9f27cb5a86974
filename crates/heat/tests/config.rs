//! `strata.toml`: defaults, the shipped example, and the errors an operator sees.

use std::path::Path;
use std::time::Duration;

use strata_heat::config::{ClassesConfig, Layout, TieringConfig, DEFAULT_LISTEN};
use strata_heat::{ClassTiers, ConfigError};

/// The error lines of a refused configuration.
fn errors(text: &str) -> Vec<String> {
    match TieringConfig::parse(text) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(err) => err.field_errors().iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn empty_file_is_the_local_default() {
    let config = TieringConfig::parse("").unwrap();
    assert_eq!(config, TieringConfig::default_local("./strata-data"));
    assert_eq!(config, TieringConfig::default());
    assert_eq!(config.server.listen, DEFAULT_LISTEN);
    assert_eq!(config.default_tier, "warm");
    let names: Vec<&str> = config.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["hot", "warm", "cold"]);
    let hot = &config.tiers[0];
    assert_eq!(
        Path::new(&hot.store),
        Path::new("./strata-data/tiers/hot"),
        "local tiers live under <data_dir>/tiers/<name>"
    );
    assert_eq!(hot.layout, Layout::Plain);
    assert_eq!(hot.codec, "auto");
    assert_eq!(hot.capacity, None);
    assert!(config.tiers[0].cost_per_gb_month > config.tiers[1].cost_per_gb_month);
    assert!(config.tiers[1].cost_per_gb_month > config.tiers[2].cost_per_gb_month);
    assert!(config.tiers[0].read_latency_ms < config.tiers[2].read_latency_ms);
    assert_eq!(config.class_tiers(), ClassTiers::default_for(3));
    assert_eq!(config.classes.warm, ["warm"]);

    let r = &config.rules;
    assert_eq!((r.hot_per_day, r.warm_per_day), (100, 10));
    assert_eq!(r.hot_within, Duration::from_secs(3600));
    assert_eq!(r.warm_within, Duration::from_secs(86_400));
    assert_eq!(config.tracking.flush_interval, Duration::from_secs(5));
    let rules = config.classification_rules();
    assert_eq!(rules, strata_heat::Rules::default());
}

#[test]
fn data_dir_moves_the_default_tiers() {
    let config = TieringConfig::parse("[server]\ndata_dir = \"/srv/strata\"\n").unwrap();
    assert_eq!(config.server.data_dir, Path::new("/srv/strata"));
    assert_eq!(
        Path::new(&config.tiers[2].store),
        Path::new("/srv/strata/tiers/cold")
    );
}

#[test]
fn shipped_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("strata.example.toml");
    let config = TieringConfig::load(&path).unwrap();
    assert_eq!(config.default_tier, "disk");
    assert_eq!(config.server.listen, "127.0.0.1:7070");
    let names: Vec<&str> = config.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["nvme", "disk", "archive"]);
    let nvme = config.tier("nvme").unwrap();
    assert_eq!(nvme.capacity, Some(2 << 40));
    assert_eq!(nvme.min_residency, Duration::from_secs(3600));
    let disk = config.tier("disk").unwrap();
    assert_eq!(disk.layout, Layout::Packed);
    assert_eq!(
        disk.read_latency_ms, 8.0,
        "integers are accepted for numbers"
    );
    let archive = config.tier("archive").unwrap();
    assert!(archive
        .store
        .starts_with("s3://archive-bucket/strata?endpoint="));
    assert_eq!(archive.codec, "zstd:19");
    assert_eq!(archive.capacity, None, "\"unlimited\"");
    assert_eq!(archive.min_residency, Duration::from_secs(90 * 86_400));
    assert_eq!(archive.egress_cost_per_gb, 0.09);
    assert_eq!(config.tier_index("archive"), Some(2));
    let classes = config.class_tiers();
    assert_eq!(
        (classes.hot, classes.warm, classes.cold),
        (vec![0], vec![1], vec![2])
    );
    let planner = config.planner(|_| 0).unwrap();
    assert_eq!(planner.tiers()[0].capacity, Some(2 << 40));
    let tracker = config.tracker_config();
    assert_eq!(tracker.max_clock_skew_ms, 300_000);
}

#[test]
fn partial_tiers_take_defaults() {
    let config = TieringConfig::parse(
        r#"
default_tier = "fast"
[[tier]]
name = "fast"
capacity = 1073741824
[[tier]]
name = "slow"
"#,
    )
    .unwrap();
    assert_eq!(config.tiers[0].capacity, Some(1 << 30));
    assert_eq!(
        Path::new(&config.tiers[1].store),
        Path::new("./strata-data/tiers/slow")
    );
    assert_eq!(config.tiers[1].min_residency, Duration::ZERO);
    // Two tiers: warm objects may stay on either.
    assert_eq!(
        config.classes,
        ClassesConfig {
            hot: vec!["fast".into()],
            warm: vec!["fast".into(), "slow".into()],
            cold: vec!["slow".into()],
        }
    );
}

#[test]
fn bad_size_names_the_field_and_the_fix() {
    let text = "[[tier]]\nname = \"a\"\n[[tier]]\nname = \"b\"\n[[tier]]\nname = \"warm\"\ncapacity = \"12X\"\n";
    let errs = errors(text);
    assert_eq!(
        errs,
        ["tier[2].capacity: \"12X\" is not a size; write it like 500G (line 7, column 12)"]
    );
}

#[test]
fn bad_duration_names_the_field() {
    let errs = errors("[[tier]]\nname = \"warm\"\nmin_residency = \"3 fortnights\"\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("tier[0].min_residency: \"3 fortnights\" is not a duration"),
        "{errs:?}"
    );
    let errs = errors("[rules]\nhot_within = -5\n");
    assert!(
        errs[0].starts_with("rules.hot_within: -5 is not a duration"),
        "{errs:?}"
    );
}

#[test]
fn unknown_keys_are_refused() {
    let errs = errors("[rules]\nhot_per_dy = 5\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("rules"), "{errs:?}");
    assert!(errs[0].contains("unknown field `hot_per_dy`"), "{errs:?}");
    assert!(
        errs[0].contains("hot_per_day"),
        "the message lists the known keys: {errs:?}"
    );
    assert!(errs[0].contains("line 2"), "{errs:?}");

    let errs = errors("[[tiers]]\nname = \"x\"\n");
    assert!(errs[0].contains("unknown field `tiers`"), "{errs:?}");
    let errs = errors("[[tier]]\nname = \"warm\"\nspeed = 3\n");
    assert!(errs[0].starts_with("tier[0]"), "{errs:?}");
    assert!(errs[0].contains("unknown field `speed`"), "{errs:?}");
}

#[test]
fn wrong_types_and_syntax_say_where() {
    let errs = errors("[[tier]]\nname = \"warm\"\ncost_per_gb_month = \"cheap\"\n");
    assert!(
        errs[0].starts_with("tier[0].cost_per_gb_month: "),
        "{errs:?}"
    );
    assert!(errs[0].contains("line 3"), "{errs:?}");
    let errs = errors("[[tier]]\nname = \"warm\"\nlayout = \"pcked\"\n");
    assert!(errs[0].starts_with("tier[0].layout: "), "{errs:?}");
    assert!(errs[0].contains("plain"), "{errs:?}");
    let errs = errors("[rules\nhot_per_day = 5\n");
    assert!(errs[0].starts_with("line 1, column"), "{errs:?}");
}

#[test]
fn cross_field_problems_are_all_reported() {
    let errs = errors(
        r#"
default_tier = "nowhere"
[server]
listen = "localhost"
[[tier]]
name = "hot"
store = "s3://key:secret@bucket/x"
[[tier]]
name = "hot"
codec = "zstd:fast"
cost_per_gb_month = -1
[[tier]]
store = "ftp://host/x"
[rules]
warm_per_day = 500
spike_factor = 30
[classes]
cold = ["glacier"]
"#,
    );
    let expected_starts = [
        "server.listen: \"localhost\" is not an address",
        "tier[0].store: credentials are not accepted",
        "tier[1].name: \"hot\" is already the name of tier[0]",
        "tier[1].codec: \"zstd:fast\" is not a codec policy",
        "tier[1].cost_per_gb_month: -1 must be a number, 0 or more",
        "tier[2].name: missing; every tier needs a name",
        "tier[2].store: ftp:// is not a supported store",
        "default_tier: \"nowhere\" is not a declared tier; use one of hot, hot, tier2",
        "rules.warm_per_day: 500 is above hot_per_day (100)",
        "rules.spike_factor: 30 can never be reached: a burst lifts the recent rate at most 24x",
        "classes.cold[0]: \"glacier\" is not a declared tier",
    ];
    assert_eq!(errs.len(), expected_starts.len(), "{errs:#?}");
    for (err, start) in errs.iter().zip(expected_starts) {
        assert!(
            err.starts_with(start),
            "{err:?} should start with {start:?}"
        );
    }
}

#[test]
fn no_tiers_and_empty_classes_are_refused() {
    let errs = errors("tier = []\n");
    assert!(errs[0].starts_with("tier: no tiers declared"), "{errs:?}");
    let errs = errors("[classes]\nhot = []\n");
    assert!(errs[0].starts_with("classes.hot: is empty"), "{errs:?}");
    let errs = errors("[[tier]]\nname = \"a\"\n");
    assert_eq!(
        errs,
        ["default_tier: \"warm\" is not a declared tier; use one of a"],
        "the implicit default tier must exist too"
    );
}

#[test]
fn rule_sanity() {
    let errs = errors("[rules]\nfast_half_life = \"24h\"\nslow_half_life = \"1h\"\n");
    assert!(
        errs.iter().any(|e| e.starts_with("rules.slow_half_life")),
        "{errs:?}"
    );
    let errs = errors("[rules]\nspike_factor = 1\nspike_min_events = 0\nmax_moves_per_pass = 0\n");
    assert_eq!(errs.len(), 3, "{errs:?}");
    let errs = errors("[rules]\nhot_within = \"2d\"\n");
    assert!(
        errs[0].starts_with("rules.warm_within: is shorter than hot_within"),
        "{errs:?}"
    );
    let errs = errors("[tracking]\nflush_interval = \"10ms\"\n");
    assert!(errs[0].starts_with("tracking.flush_interval"), "{errs:?}");
}

#[test]
fn read_errors_name_the_file() {
    let err = TieringConfig::load(Path::new("/nonexistent/strata.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string().contains("/nonexistent/strata.toml"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("strata-heat-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("strata.toml");
    std::fs::write(&file, "[rules]\nhot_per_day = \"many\"\n").unwrap();
    let err = TieringConfig::load(&file).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("invalid configuration "), "{text}");
    assert!(text.contains("strata.toml: rules.hot_per_day"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}
