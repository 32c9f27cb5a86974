//! The baseline policies of `strata eval`, and selection by name.
//!
//! | policy | moves | predicts "read in the next window" |
//! |---|---|---|
//! | `static` | never: everything stays on the default tier | never |
//! | `seed003` | at each window boundary, each object to its class's tier ([`seed003`]) | classified hot |
//! | `s3-intelligent` | frequent → infrequent → archive-instant by idle time, back on access ([`s3_intelligent`]) | on the frequent tier |
//! | `lru` | the first tier is an LRU cache ([`lru`]) | on the cache's tier |
//! | `rules` | Strata's planner: spikes at ingest, periodic passes ([`rules`]) | classified hot |
//! | `learned` | follows, walk-forward, one of two selections run as shadow replays: `learned-global` (one leader for all objects) and `learned-per-class` (one per class of objects: reads so far × size); each follows the expert that costs least so far, marked to market with the censoring tail, among the forecast placement and the five baselines, each a shadow replay of its own ([`selection`]); the two by name only | the forecast's |
//! | (`forecast`, an expert of `learned`; by name only, as `learned-forecast`) | each window, each object to its cheapest tier for its forecast reads and chance of a read (life table), a demotion waiting while a read is due before it pays, an idle object judged again over a long stay with an unseen scan counted once; up at once on an access when the burst pays and its class's promotions have ([`learned`]) | forecast reads ≥ threshold |
//! | `oracle` | the offline optimum's schedule, at window boundaries ([`oracle`]) | exactly the objects read |

mod backlog;
mod classes;
pub mod learned;
mod ledger;
pub mod lru;
pub mod oracle;
mod recency;
pub mod rules;
pub mod s3_intelligent;
pub mod seed003;
pub mod selection;
mod sleepers;
pub mod static_;

use super::Policy;
use crate::config::TieringConfig;

/// The policies available, in the order `all` runs them.
pub const POLICY_NAMES: [&str; 7] = [
    "static",
    "seed003",
    "s3-intelligent",
    "lru",
    "rules",
    "learned",
    "oracle",
];

/// Policies of issue 11 not built yet.
pub const PLANNED_POLICY_NAMES: [&str; 0] = [];

/// The policy called `name`, for a configuration.
pub fn make_policy(name: &str, config: &TieringConfig) -> Result<Box<dyn Policy>, String> {
    Ok(match name {
        "static" => Box::new(static_::Static),
        "seed003" => Box::new(seed003::Seed003::new(config)),
        "s3-intelligent" => Box::new(s3_intelligent::S3Intelligent::new(config)),
        "lru" => Box::new(lru::Lru::new(config)),
        "rules" => Box::new(rules::RulesPolicy::new(config)?),
        "learned" => Box::new(selection::Selection::with_mode(
            config,
            selection::Mode::Meta,
        )?),
        "learned-global" => Box::new(selection::Selection::with_mode(
            config,
            selection::Mode::Global,
        )?),
        "learned-per-class" => Box::new(selection::Selection::with_mode(
            config,
            selection::Mode::PerClass,
        )?),
        "learned-meta" => Box::new(selection::Selection::with_mode(
            config,
            selection::Mode::Meta,
        )?),
        "learned-forecast" => Box::new(learned::Learned::new(config)),
        "oracle" => Box::new(oracle::Oracle::new()),
        other => return Err(unknown_policy(other)),
    })
}

/// `--policy`: `all`, or names separated by commas (each once, in the order given).
pub fn parse_policy_list(text: &str) -> Result<Vec<&'static str>, String> {
    if text.trim() == "all" {
        return Ok(POLICY_NAMES.to_vec());
    }
    let mut names = Vec::new();
    for name in text.split(',').map(str::trim) {
        let Some(&known) = POLICY_NAMES.iter().find(|&&known| known == name) else {
            return Err(unknown_policy(name));
        };
        if !names.contains(&known) {
            names.push(known);
        }
    }
    Ok(names)
}

fn unknown_policy(name: &str) -> String {
    let available = POLICY_NAMES.join(", ");
    if PLANNED_POLICY_NAMES.contains(&name) {
        format!(
            "policy {name:?} is not available yet (issue 11 plans it); use all or one of \
             {available}"
        )
    } else {
        format!("unknown policy {name:?}; use all or one of {available}")
    }
}
