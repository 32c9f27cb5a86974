//! What redundancy a tier's objects get: the tier's own `redundancy` over its `stores`,
//! overridden by class from `[redundancy]` where the tier has enough failure domains.
//!
//! A configuration that cannot keep its promise is refused at start-up, naming the field:
//! a value that is not `none`, `replicate:N` or `ec:K+M`, or a tier whose own redundancy
//! needs more domains than it lists. A class value that needs more domains than a tier has
//! does not apply to that tier (its objects keep the tier's own redundancy), as the
//! issue's design says; a class value no tier can hold is refused, since it would never
//! apply anywhere and is surely a mistake.

use std::str::FromStr;

use strata_heat::{Class, TieringConfig};
use strata_redundancy::Redundancy;

use crate::error::ServeError;

/// A tier's redundancy policy.
#[derive(Debug, Clone, PartialEq)]
pub struct TierRedundancy {
    /// The tier's own `redundancy`: what objects get unless their class says otherwise.
    pub default: Redundancy,
    /// By class (cold, warm, hot), the `[redundancy]` values this tier can hold.
    pub by_class: [Option<Redundancy>; 3],
    /// How many failure domains the tier has.
    pub domains: usize,
}

impl TierRedundancy {
    /// The policy of `config.tiers[index]`, checked; `None` for a tier with one `store`,
    /// redundancy `none` and no class value it can hold (its objects stay plain files of
    /// its store, as before redundancy existed).
    pub fn of(config: &TieringConfig, index: usize) -> Result<Option<TierRedundancy>, ServeError> {
        let tier = &config.tiers[index];
        let field = format!("tier[{index}].redundancy");
        let default = parse(&tier.redundancy, &field)?;
        let domains = tier.domains().len();
        if default.domains_needed() > domains {
            return Err(ServeError::Config {
                field,
                reason: format!(
                    "tier {:?}: {default} keeps each object on {} failure domains, and the \
                     tier lists {domains}; list at least {} stores in `stores` (each on its own \
                     disk or bucket), or ask for less redundancy",
                    tier.name,
                    default.domains_needed(),
                    default.domains_needed()
                ),
            });
        }
        let by_class = class_values(config)?
            .map(|value| value.filter(|redundancy| redundancy.domains_needed() <= domains));
        let single = tier.stores.is_empty() && default == Redundancy::None;
        if single && by_class.iter().all(Option::is_none) {
            return Ok(None);
        }
        Ok(Some(TierRedundancy {
            default,
            by_class,
            domains,
        }))
    }

    /// The redundancy an object of `class` should have here.
    pub fn wanted(&self, class: Class) -> Redundancy {
        self.by_class[class_slot(class)].unwrap_or(self.default)
    }
}

fn class_slot(class: Class) -> usize {
    match class {
        Class::Cold => 0,
        Class::Warm => 1,
        Class::Hot => 2,
    }
}

/// `[redundancy]` parsed, by class slot; a value no tier has the domains for is refused.
fn class_values(config: &TieringConfig) -> Result<[Option<Redundancy>; 3], ServeError> {
    let mut values = [None; 3];
    let most = config
        .tiers
        .iter()
        .map(|tier| tier.domains().len())
        .max()
        .unwrap_or(0);
    for (class, text) in config.redundancy.entries() {
        let field = format!("redundancy.{class}");
        let value = parse(text, &field)?;
        if value.domains_needed() > most {
            return Err(ServeError::Config {
                field,
                reason: format!(
                    "{value} keeps each object on {} failure domains, and no tier lists that \
                     many stores (the most is {most}); list more `stores` on a tier, or ask \
                     for less redundancy",
                    value.domains_needed()
                ),
            });
        }
        let slot = match class {
            "hot" => 2,
            "warm" => 1,
            _ => 0,
        };
        values[slot] = Some(value);
    }
    Ok(values)
}

fn parse(text: &str, field: &str) -> Result<Redundancy, ServeError> {
    Redundancy::from_str(text).map_err(|reason| ServeError::Config {
        field: field.to_string(),
        reason,
    })
}
