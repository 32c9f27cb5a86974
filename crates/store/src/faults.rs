//! Fault injection: a store that misbehaves on purpose, for tests. **A testing aid: never
//! set it on a real run.**
//!
//! [`Store::with_faults`](crate::Store::with_faults) puts a [`FaultPlan`] (a list of
//! [`FaultRule`]s) in front of every [`Store`](crate::Store) and [`Upload`](crate::Upload)
//! method of a store, whatever its backend (local files, memory, S3): a store layer
//! (`FaultStore`, in `faults_layer.rs`), the outermost of the stack [`crate::layers`]
//! composes, so local stores, which bypass OpenDAL, get it too. A store without a plan has
//! no such layer and pays nothing.
//!
//! A rule says which **operation** it applies to, which **paths** (all by default), **when**
//! it fires and what it does (its **effect**):
//!
//! | operation | methods |
//! |---|---|
//! | `read` | [`Store::read_range`](crate::Store::read_range), [`Store::read_all`](crate::Store::read_all) |
//! | `write` | [`Upload::write_at`](crate::Upload::write_at) |
//! | `readback` | [`Upload::read_back`](crate::Upload::read_back) |
//! | `publish` | [`Upload::publish`](crate::Upload::publish), [`Upload::publish_group`](crate::Upload::publish_group) |
//! | `put` | [`Store::write_atomic`](crate::Store::write_atomic) |
//! | `stat`, `list`, `delete` | [`Store::stat`](crate::Store::stat), [`Store::list`](crate::Store::list), [`Store::delete`](crate::Store::delete) |
//!
//! | effect | operations | what happens |
//! |---|---|---|
//! | `flip[=OFFSET]` | read, readback, write, put | one bit of the call's data is flipped: on the way in for write and put, on the way out for read and readback. Without an offset, the byte and bit are derived from the path and offset of the call (deterministic); with one, bit 0 of that byte of the call's data (the last byte if the data is shorter) |
//! | `truncate[=BYTES]` | read, readback, write, put | that many bytes (default 1) are dropped from the end of the call's data |
//! | `lose` | write, publish, put, delete | success is reported and nothing happens: a lost write leaves whatever bytes were there; a lost publish or put leaves *no object* under the name (the staged copy is dropped, an older object deleted); a lost delete leaves the object |
//! | `error[=retryable\|permanent]` | all | the call fails with a [`StoreError::Backend`] that says it was injected (default `retryable`) |
//! | `latency=DURATION` | all | the call sleeps (`500us`, `20ms`, `2s`, `1m`), then goes on |
//!
//! **When**: every matching call (`every`, the default), only the Nth (`nth=N`, counted from
//! 1), the first N (`first=N`), or each call with probability P (`p=0.01` or `p=1%`,
//! `seed=S`, default 0). Probability rules are deterministic whatever the order calls
//! arrive in: the draw is a hash of the seed, the rule, the path, the offset and how many
//! times that same (path, offset) was seen before, so a re-sent chunk gets a fresh draw and
//! the same run with the same seed fails the same chunks. Counting (`nth`, `first`) is per
//! rule over the calls that match its operation and paths, per store.
//!
//! **Paths** (`path=PATTERN`): a pattern with `*` or `?` is a glob (`*` and `?` do not cross
//! `/`, `**` does); a glob without `/` is matched against the file name, one with `/`
//! against the whole relative path. A pattern without wildcards matches any path that
//! contains it. Listings have no path, so `list` rules take no `path=`.
//!
//! Every rule that matches a call fires (and is counted): their latencies are slept, then
//! the first error among them is returned; otherwise `lose` wins, and `flip` and `truncate`
//! apply in plan order. [`Faults::fired`] counts how many times each rule fired, for tests.
//!
//! # The `STRATA_FAULTS` syntax
//!
//! The `strata` binary reads a plan from the environment variable [`FAULTS_ENV`]
//! (`STRATA_FAULTS`), prints a warning line when it is set, and fails with exit status 2
//! when it is malformed:
//!
//! ```text
//! STRATA_FAULTS = RULE [";" RULE]...
//! RULE    = SIDE ":" OP ":" EFFECT [":" OPTION]...
//! SIDE    = src | dst | any
//! OP      = read | write | readback | publish | put | stat | list | delete
//! EFFECT  = flip[=OFFSET] | truncate[=BYTES] | lose | error[=retryable|permanent]
//!         | latency=DURATION
//! OPTION  = every | nth=N | first=N | p=PROBABILITY | seed=N | path=PATTERN
//! ```
//!
//! for example `dst:write:flip:nth=3;src:read:error:first=2;dst:publish:lose:path=*.bin`.
//! `src` is the store a command reads from and `dst` the one it writes to or checks, by
//! role: `strata migrate SRC DST`, `strata repair DST --from SRC`, `strata verify DST`,
//! `strata inspect PATH` (a source); in `strata serve`, a move's source tier is `src`, its
//! target tier `dst`, and client requests get the `any` rules only
//! ([`crate::layers`]). `any` is every store. At
//! most one of `every`, `nth`, `first`, `p` per rule; `seed` only with `p`. Values cannot
//! contain `:` or `;`. Blank rules are ignored; an unset or blank variable means no faults.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;

use crate::error::StoreError;

/// The environment variable the `strata` binary reads a [`FaultPlan`] from.
pub const FAULTS_ENV: &str = "STRATA_FAULTS";

/// The store operations a [`FaultRule`] can apply to (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// `Store::read_range` and `Store::read_all`.
    Read,
    /// `Upload::write_at`.
    Write,
    /// `Upload::read_back`.
    ReadBack,
    /// `Upload::publish` and `Upload::publish_group`.
    Publish,
    /// `Store::write_atomic`.
    Put,
    /// `Store::stat`.
    Stat,
    /// `Store::list`.
    List,
    /// `Store::delete`.
    Delete,
}

impl FaultOp {
    /// Every operation, in the order the syntax lists them.
    pub const ALL: [FaultOp; 8] = [
        FaultOp::Read,
        FaultOp::Write,
        FaultOp::ReadBack,
        FaultOp::Publish,
        FaultOp::Put,
        FaultOp::Stat,
        FaultOp::List,
        FaultOp::Delete,
    ];

    /// The name used in the `STRATA_FAULTS` syntax.
    pub fn name(self) -> &'static str {
        match self {
            FaultOp::Read => "read",
            FaultOp::Write => "write",
            FaultOp::ReadBack => "readback",
            FaultOp::Publish => "publish",
            FaultOp::Put => "put",
            FaultOp::Stat => "stat",
            FaultOp::List => "list",
            FaultOp::Delete => "delete",
        }
    }

    /// Whether the operation carries data that `flip` and `truncate` can damage.
    fn carries_data(self) -> bool {
        matches!(
            self,
            FaultOp::Read | FaultOp::ReadBack | FaultOp::Write | FaultOp::Put
        )
    }

    /// Whether `lose` means something for the operation.
    fn can_lose(self) -> bool {
        matches!(
            self,
            FaultOp::Write | FaultOp::Publish | FaultOp::Put | FaultOp::Delete
        )
    }

    /// The effect names this operation accepts, for messages.
    fn accepted_effects(self) -> &'static str {
        match self {
            FaultOp::Read | FaultOp::ReadBack => "flip, truncate, error, latency",
            FaultOp::Write | FaultOp::Put => "flip, truncate, lose, error, latency",
            FaultOp::Publish | FaultOp::Delete => "lose, error, latency",
            FaultOp::Stat | FaultOp::List => "error, latency",
        }
    }
}

impl fmt::Display for FaultOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which store of a command a rule applies to (used by the `strata` binary; see
/// [`FaultPlan::for_side`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FaultSide {
    /// The store a command reads from (`strata migrate`'s SRC, `repair --from SRC`).
    Src,
    /// The store a command writes to or checks (`strata migrate`'s DST, `verify DST`).
    Dst,
    /// Every store.
    #[default]
    Any,
}

impl FaultSide {
    fn name(self) -> &'static str {
        match self {
            FaultSide::Src => "src",
            FaultSide::Dst => "dst",
            FaultSide::Any => "any",
        }
    }
}

/// What a rule does when it fires (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultEffect {
    /// Flip one bit of the call's data: at bit 0 of byte `at` of the data (the last byte if
    /// the data is shorter), or at a byte and bit derived from the call when `None`.
    Flip {
        /// Byte offset within the call's data.
        at: Option<u64>,
    },
    /// Drop `bytes` bytes from the end of the call's data (all of it if it is shorter).
    Truncate {
        /// How many bytes to drop.
        bytes: u64,
    },
    /// Report success and do nothing (write: the bytes stay what they were; publish and
    /// put: no object is left under the name; delete: the object stays).
    Lose,
    /// Fail with an injected [`StoreError::Backend`].
    Error {
        /// Whether the error says a retry can help.
        retryable: bool,
    },
    /// Sleep this long, then carry on.
    Latency(Duration),
}

impl fmt::Display for FaultEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultEffect::Flip { at: None } => f.write_str("flip"),
            FaultEffect::Flip { at: Some(at) } => write!(f, "flip={at}"),
            FaultEffect::Truncate { bytes } => write!(f, "truncate={bytes}"),
            FaultEffect::Lose => f.write_str("lose"),
            FaultEffect::Error { retryable: true } => f.write_str("error=retryable"),
            FaultEffect::Error { retryable: false } => f.write_str("error=permanent"),
            FaultEffect::Latency(d) => write!(f, "latency={}", show_duration(*d)),
        }
    }
}

/// When a rule fires, among the calls that match its operation and paths.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultTrigger {
    /// Every matching call.
    Every,
    /// Only the Nth matching call, counted from 1 (0 never fires).
    Nth(u64),
    /// The first N matching calls.
    First(u64),
    /// Each matching call with probability `p` (clamped to 0..=1), drawn deterministically
    /// from `seed` and the call (see the [module docs](self)).
    Probability {
        /// Chance of firing per call.
        p: f64,
        /// Seed of the draws.
        seed: u64,
    },
}

/// One fault: an operation, the paths it applies to, when it fires and what it does.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    side: FaultSide,
    op: FaultOp,
    effect: FaultEffect,
    trigger: FaultTrigger,
    path: Option<String>,
}

impl FaultRule {
    /// A rule firing on every `op` call of every path. An effect the operation cannot have
    /// (`flip` on `stat`, `lose` on `read`, ...) is an error saying which ones it can.
    pub fn new(op: FaultOp, effect: FaultEffect) -> Result<FaultRule, FaultSpecError> {
        let rule = FaultRule {
            side: FaultSide::Any,
            op,
            effect,
            trigger: FaultTrigger::Every,
            path: None,
        };
        let allowed = match effect {
            FaultEffect::Flip { .. } | FaultEffect::Truncate { .. } => op.carries_data(),
            FaultEffect::Lose => op.can_lose(),
            FaultEffect::Error { .. } | FaultEffect::Latency(_) => true,
        };
        if !allowed {
            return Err(FaultSpecError::new(
                &rule.to_string(),
                &effect.to_string(),
                format!("effect `{effect}` does not apply to `{op}`"),
                format!("`{op}` accepts the effects {}", op.accepted_effects()),
            ));
        }
        Ok(rule)
    }

    /// The same rule for another store of a command (default [`FaultSide::Any`]).
    pub fn side(mut self, side: FaultSide) -> FaultRule {
        self.side = side;
        self
    }

    /// The same rule, firing on the Nth matching call only (counted from 1).
    pub fn nth(self, n: u64) -> FaultRule {
        self.trigger(FaultTrigger::Nth(n))
    }

    /// The same rule, firing on the first `n` matching calls.
    pub fn first(self, n: u64) -> FaultRule {
        self.trigger(FaultTrigger::First(n))
    }

    /// The same rule, firing with probability `p` per matching call, drawn from `seed`.
    pub fn probability(self, p: f64, seed: u64) -> FaultRule {
        self.trigger(FaultTrigger::Probability { p, seed })
    }

    /// The same rule with another trigger.
    pub fn trigger(mut self, trigger: FaultTrigger) -> FaultRule {
        self.trigger = trigger;
        self
    }

    /// The same rule, only for paths matching `pattern` (a glob or a substring, see the
    /// [module docs](self)).
    pub fn path(mut self, pattern: impl Into<String>) -> FaultRule {
        self.path = Some(pattern.into());
        self
    }

    fn matches(&self, op: FaultOp, rel: &str) -> bool {
        self.op == op
            && match &self.path {
                None => true,
                Some(pattern) => path_matches(pattern, rel),
            }
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.side.name(), self.op, self.effect)?;
        match self.trigger {
            FaultTrigger::Every => {}
            FaultTrigger::Nth(n) => write!(f, ":nth={n}")?,
            FaultTrigger::First(n) => write!(f, ":first={n}")?,
            FaultTrigger::Probability { p, seed } => write!(f, ":p={p}:seed={seed}")?,
        }
        if let Some(path) = &self.path {
            write!(f, ":path={path}")?;
        }
        Ok(())
    }
}

/// A list of [`FaultRule`]s; give it to [`Store::with_faults`](crate::Store::with_faults).
/// Its `Display` is the `STRATA_FAULTS` syntax, which [`FaultPlan::parse`] reads back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// A plan without rules (a store given it behaves normally).
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    /// The plan with `rule` appended. Every rule that matches a call fires, in order.
    pub fn rule(mut self, rule: FaultRule) -> FaultPlan {
        self.rules.push(rule);
        self
    }

    /// The rules, in order (the indices [`Faults::fired`] takes).
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// True without rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules for one store of a command: those naming `side`, and those for `any`.
    pub fn for_side(&self, side: FaultSide) -> FaultPlan {
        FaultPlan {
            rules: self
                .rules
                .iter()
                .filter(|r| r.side == side || r.side == FaultSide::Any)
                .cloned()
                .collect(),
        }
    }

    /// Parses the `STRATA_FAULTS` syntax (see the [module docs](self)). Blank text is an
    /// empty plan; anything malformed is an error naming the bad token and what is
    /// accepted there.
    pub fn parse(spec: &str) -> Result<FaultPlan, FaultSpecError> {
        let mut plan = FaultPlan::new();
        for text in spec.split(';').map(str::trim).filter(|t| !t.is_empty()) {
            plan.rules.push(parse_rule(text)?);
        }
        Ok(plan)
    }

    /// The plan in [`FAULTS_ENV`], or `None` when it is unset or blank.
    pub fn from_env() -> Result<Option<FaultPlan>, FaultSpecError> {
        match std::env::var(FAULTS_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(FaultSpecError::new(
                "",
                FAULTS_ENV,
                "the value is not valid UTF-8".into(),
                "ASCII rules such as dst:write:flip:nth=3".into(),
            )),
            Ok(text) => {
                let plan = FaultPlan::parse(&text)?;
                Ok((!plan.is_empty()).then_some(plan))
            }
        }
    }
}

impl FromStr for FaultPlan {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<FaultPlan, FaultSpecError> {
        FaultPlan::parse(s)
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

/// A malformed fault specification: which rule, which token, what is wrong and what is
/// accepted there. One line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {FAULTS_ENV}: {reason} (in rule `{rule}`); {accepted}; the syntax is \
     SIDE:OP:EFFECT[:OPTION]... with rules separated by `;`, e.g. \
     `dst:write:flip:nth=3;src:read:error:first=2` (see strata_store::faults); fix it or \
     unset {FAULTS_ENV}"
)]
pub struct FaultSpecError {
    rule: String,
    token: String,
    reason: String,
    accepted: String,
}

impl FaultSpecError {
    fn new(rule: &str, token: &str, reason: String, accepted: String) -> FaultSpecError {
        FaultSpecError {
            rule: crate::error::one_line(rule),
            token: crate::error::one_line(token),
            reason: crate::error::one_line(&reason),
            accepted,
        }
    }

    /// The token that could not be read.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The rule it is in.
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

const ACCEPTED_SIDES: &str = "accepted sides: src, dst, any";
const ACCEPTED_OPS: &str =
    "accepted operations: read, write, readback, publish, put, stat, list, delete";
const ACCEPTED_EFFECTS: &str = "accepted effects: flip[=OFFSET], truncate[=BYTES], lose, \
     error[=retryable|permanent], latency=DURATION";
const ACCEPTED_OPTIONS: &str =
    "accepted options: every, nth=N, first=N, p=PROBABILITY, seed=N, path=PATTERN";

fn parse_rule(text: &str) -> Result<FaultRule, FaultSpecError> {
    let fail = |token: &str, reason: String, accepted: &str| {
        FaultSpecError::new(text, token, reason, accepted.to_string())
    };
    let tokens: Vec<&str> = text.split(':').map(str::trim).collect();
    let side_token = tokens.first().copied().unwrap_or_default();
    let side = match side_token {
        "src" => FaultSide::Src,
        "dst" => FaultSide::Dst,
        "any" => FaultSide::Any,
        other => {
            return Err(fail(
                other,
                format!("unknown side `{other}`"),
                ACCEPTED_SIDES,
            ))
        }
    };
    let Some(&op_token) = tokens.get(1) else {
        return Err(fail(
            text,
            "the operation is missing (a rule is at least SIDE:OP:EFFECT)".into(),
            ACCEPTED_OPS,
        ));
    };
    let op = FaultOp::ALL
        .into_iter()
        .find(|op| op.name() == op_token)
        .ok_or_else(|| {
            fail(
                op_token,
                format!("unknown operation `{op_token}`"),
                ACCEPTED_OPS,
            )
        })?;
    let Some(&effect_token) = tokens.get(2) else {
        return Err(fail(
            text,
            "the effect is missing (a rule is at least SIDE:OP:EFFECT)".into(),
            ACCEPTED_EFFECTS,
        ));
    };
    let effect = parse_effect(effect_token)
        .map_err(|reason| fail(effect_token, reason, ACCEPTED_EFFECTS))?;
    let mut rule = FaultRule::new(op, effect)
        .map_err(|e| fail(effect_token, e.reason, &e.accepted))?
        .side(side);

    let mut trigger: Option<(FaultTrigger, &str)> = None;
    let mut seed: Option<(u64, &str)> = None;
    for &token in &tokens[3..] {
        let (reason, accepted) = match parse_option(op, token) {
            Err(why) => why,
            Ok(RuleOption::Trigger(t)) => match trigger.replace((t, token)) {
                None => continue,
                Some((_, earlier)) => (
                    format!("`{token}` conflicts with `{earlier}`: one trigger per rule"),
                    "one of every, nth=N, first=N, p=PROBABILITY",
                ),
            },
            Ok(RuleOption::Seed(n)) if seed.is_none() => {
                seed = Some((n, token));
                continue;
            }
            Ok(RuleOption::Path(p)) if rule.path.is_none() => {
                rule.path = Some(p);
                continue;
            }
            Ok(_) => (format!("`{token}` repeats an option"), ACCEPTED_OPTIONS),
        };
        return Err(fail(token, reason, accepted));
    }
    match (trigger, seed) {
        (Some((FaultTrigger::Probability { p, .. }, _)), Some((seed, _))) => {
            Ok(rule.probability(p, seed))
        }
        (_, Some((_, token))) => Err(fail(
            token,
            "seed= only applies to probability rules".into(),
            "seed=N together with p=PROBABILITY",
        )),
        (Some((t, _)), None) => Ok(rule.trigger(t)),
        (None, None) => Ok(rule),
    }
}

/// One `:OPTION` of a rule.
enum RuleOption {
    Trigger(FaultTrigger),
    Seed(u64),
    Path(String),
}

/// Reads one option of an `op` rule; an error is (what is wrong, what is accepted).
fn parse_option(op: FaultOp, token: &str) -> Result<RuleOption, (String, &'static str)> {
    let (key, value) = match token.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (token, None),
    };
    let whole = |v: &str, accepted| positive(v).map_err(|r| (format!("`{token}`: {r}"), accepted));
    Ok(match (key, value) {
        ("every", None) => RuleOption::Trigger(FaultTrigger::Every),
        ("nth", Some(v)) => RuleOption::Trigger(FaultTrigger::Nth(whole(v, "nth=N, N >= 1")?)),
        ("first", Some(v)) => {
            RuleOption::Trigger(FaultTrigger::First(whole(v, "first=N, N >= 1")?))
        }
        ("p", Some(v)) => RuleOption::Trigger(FaultTrigger::Probability {
            p: probability(v).map_err(|r| (r, "p=0.01 or p=1% (between 0 and 1)"))?,
            seed: 0,
        }),
        ("seed", Some(v)) => RuleOption::Seed(v.parse().map_err(|_| {
            (
                format!("seed `{v}` is not a whole number"),
                "seed=N with N a whole number",
            )
        })?),
        ("path", Some("")) => {
            return Err((
                "path= needs a pattern".into(),
                "path=PATTERN (a glob like *.bin or a substring of the path)",
            ))
        }
        ("path", Some(_)) if op == FaultOp::List => {
            return Err((
                "a listing has no path, so a list rule takes no path=".into(),
                "list rules accept every, nth=N, first=N, p=PROBABILITY, seed=N",
            ))
        }
        ("path", Some(v)) => RuleOption::Path(v.to_string()),
        ("every", Some(_)) => return Err(("`every` takes no value".into(), ACCEPTED_OPTIONS)),
        ("nth" | "first" | "p" | "seed" | "path", None) => {
            return Err((
                format!("`{key}` needs a value (`{key}=...`)"),
                ACCEPTED_OPTIONS,
            ))
        }
        _ => return Err((format!("unknown option `{token}`"), ACCEPTED_OPTIONS)),
    })
}

fn parse_effect(token: &str) -> Result<FaultEffect, String> {
    let (name, value) = match token.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (token, None),
    };
    Ok(match (name, value) {
        ("flip", None) => FaultEffect::Flip { at: None },
        ("flip", Some(v)) => FaultEffect::Flip {
            at: Some(
                v.parse()
                    .map_err(|_| format!("flip offset `{v}` is not a whole number of bytes"))?,
            ),
        },
        ("truncate", None) => FaultEffect::Truncate { bytes: 1 },
        ("truncate", Some(v)) => FaultEffect::Truncate {
            bytes: positive(v).map_err(|r| format!("`{token}`: {r}"))?,
        },
        ("lose", None) => FaultEffect::Lose,
        ("error", None | Some("retryable")) => FaultEffect::Error { retryable: true },
        ("error", Some("permanent")) => FaultEffect::Error { retryable: false },
        ("error", Some(v)) => {
            return Err(format!(
                "error kind `{v}` is neither `retryable` nor `permanent`"
            ))
        }
        ("latency", Some(v)) => FaultEffect::Latency(duration(v)?),
        ("latency", None) => return Err("latency needs a duration (`latency=20ms`)".into()),
        ("lose", Some(_)) => return Err("`lose` takes no value".into()),
        _ => return Err(format!("unknown effect `{token}`")),
    })
}

fn positive(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

fn probability(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (text, 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=1.0).contains(&(p / scale)) => Ok(p / scale),
        _ => Err(format!("probability `{text}` is not between 0 and 1")),
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("duration `{text}` is not a whole number with a unit (ns, us, ms, s, m)");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let nanos_per = match unit {
        "ns" => 1u64,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => return Err(bad()),
    };
    let nanos = n
        .checked_mul(nanos_per)
        .ok_or_else(|| format!("duration `{text}` is too long"))?;
    Ok(Duration::from_nanos(nanos))
}

fn show_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos.is_multiple_of(1_000_000_000) {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

// ---------------------------------------------------------------------------------------
// Path patterns

fn path_matches(pattern: &str, rel: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return rel.contains(pattern);
    }
    let subject = if pattern.contains('/') {
        rel
    } else {
        rel.rsplit('/').next().unwrap_or(rel)
    };
    glob(pattern, subject)
}

#[derive(Clone, Copy)]
enum Tok {
    Lit(char),
    One,
    Star,
    DoubleStar,
}

/// Glob match by dynamic programming (no backtracking blow-up, no recursion).
fn glob(pattern: &str, text: &str) -> bool {
    let mut toks = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                Tok::DoubleStar
            }
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    let n = text.len();
    // next[j]: toks[i + 1..] matches text[j..]; cur[j]: toks[i..] matches text[j..].
    let mut next = vec![false; n + 1];
    next[n] = true;
    for tok in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        for j in (0..=n).rev() {
            let here = text.get(j).copied();
            cur[j] = match tok {
                Tok::Lit(c) => here == Some(*c) && next[j + 1],
                Tok::One => here.is_some_and(|h| h != '/') && next[j + 1],
                Tok::Star => next[j] || (here.is_some_and(|h| h != '/') && cur[j + 1]),
                Tok::DoubleStar => next[j] || (here.is_some() && cur[j + 1]),
            };
        }
        next = cur;
    }
    next[0]
}

// ---------------------------------------------------------------------------------------
// The active plan of a store

/// A [`FaultPlan`] in force on a store (from [`Store::with_faults`](crate::Store::with_faults)),
/// with its counters. Shared by the store's clones and its uploads.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    /// Per rule: matching calls seen, times fired.
    counters: Vec<(AtomicU64, AtomicU64)>,
    /// Per probability rule and (path, offset): how many calls were drawn for it.
    draws: Mutex<HashMap<(usize, String, u64), u64>>,
}

impl Faults {
    pub(crate) fn new(plan: FaultPlan) -> Faults {
        let counters = plan
            .rules
            .iter()
            .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
            .collect();
        Faults {
            plan,
            counters,
            draws: Mutex::new(HashMap::new()),
        }
    }

    /// The plan in force.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// How many times rule `rule` (its index in the plan) fired; 0 for an unknown index.
    pub fn fired(&self, rule: usize) -> u64 {
        self.counters
            .get(rule)
            .map_or(0, |(_, fired)| fired.load(Ordering::Relaxed))
    }

    /// How many calls matched rule `rule`'s operation and paths, fired or not.
    pub fn matched(&self, rule: usize) -> u64 {
        self.counters
            .get(rule)
            .map_or(0, |(seen, _)| seen.load(Ordering::Relaxed))
    }

    /// How many times each rule fired, in plan order.
    pub fn fired_counts(&self) -> Vec<u64> {
        (0..self.counters.len()).map(|i| self.fired(i)).collect()
    }

    /// How many times any rule fired.
    pub fn total_fired(&self) -> u64 {
        self.fired_counts().iter().sum()
    }

    /// The rules that fire on this call (counting it), in plan order.
    fn decide(&self, op: FaultOp, rel: &str, offset: u64) -> Vec<Fired> {
        let mut fired = Vec::new();
        for (index, rule) in self.plan.rules.iter().enumerate() {
            if !rule.matches(op, rel) {
                continue;
            }
            let Some((seen, count)) = self.counters.get(index) else {
                continue;
            };
            let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
            let (fires, salt) = match rule.trigger {
                FaultTrigger::Every => (true, draw(0, index, rel, offset, 0)),
                FaultTrigger::Nth(k) => (n == k, draw(0, index, rel, offset, 0)),
                FaultTrigger::First(k) => (n <= k, draw(0, index, rel, offset, 0)),
                FaultTrigger::Probability { p, seed } => {
                    let occurrence = {
                        let mut draws = self.draws.lock().unwrap_or_else(|e| e.into_inner());
                        let slot = draws.entry((index, rel.to_string(), offset)).or_insert(0);
                        *slot += 1;
                        *slot
                    };
                    let salt = draw(seed, index, rel, offset, occurrence);
                    // 53 random bits as a number in [0, 1).
                    let unit = (salt >> 11) as f64 / (1u64 << 53) as f64;
                    (unit < p, salt)
                }
            };
            if fires {
                count.fetch_add(1, Ordering::Relaxed);
                fired.push(Fired {
                    rule: index,
                    effect: rule.effect,
                    salt,
                });
            }
        }
        fired
    }

    fn injected_error(&self, fired: &Fired, shown: &str, retryable: bool) -> StoreError {
        let rule = self
            .plan
            .rules
            .get(fired.rule)
            .map(ToString::to_string)
            .unwrap_or_default();
        let kind = if retryable { "transient" } else { "permanent" };
        StoreError::Backend {
            path: shown.to_string(),
            detail: format!(
                "injected fault: a {kind} failure from fault rule `{rule}` ({FAULTS_ENV} is a \
                 testing aid; unset it for real runs)"
            ),
            retryable,
        }
    }
}

/// A hash of a call, for probability draws and flip positions.
fn draw(seed: u64, rule: usize, rel: &str, offset: u64, occurrence: u64) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.to_le_bytes());
    hasher.update(&(rule as u64).to_le_bytes());
    hasher.update(&(rel.len() as u64).to_le_bytes());
    hasher.update(rel.as_bytes());
    hasher.update(&offset.to_le_bytes());
    hasher.update(&occurrence.to_le_bytes());
    let bytes = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

#[derive(Clone, Copy, Debug)]
struct Fired {
    rule: usize,
    effect: FaultEffect,
    salt: u64,
}

/// The rules that fired on one call, after their latency and errors were applied.
#[derive(Debug)]
pub(crate) struct Injected {
    fired: Vec<Fired>,
}

impl Injected {
    /// True when the call must report success and do nothing.
    pub(crate) fn lose(&self) -> bool {
        self.fired.iter().any(|f| f.effect == FaultEffect::Lose)
    }

    /// The call's data after the `flip` and `truncate` rules that fired, in plan order.
    pub(crate) fn mangle(&self, data: Bytes) -> Bytes {
        let mut data = data;
        for fired in &self.fired {
            match fired.effect {
                FaultEffect::Flip { at } if !data.is_empty() => {
                    let len = data.len();
                    let (byte, bit) = match at {
                        Some(at) => (usize::try_from(at).unwrap_or(usize::MAX).min(len - 1), 0),
                        None => (
                            usize::try_from(fired.salt % len as u64).unwrap_or(0),
                            (fired.salt >> 32) % 8,
                        ),
                    };
                    let mut owned = data.to_vec();
                    if let Some(b) = owned.get_mut(byte) {
                        *b ^= 1 << bit;
                    }
                    data = Bytes::from(owned);
                }
                FaultEffect::Truncate { bytes } => {
                    let drop = usize::try_from(bytes).unwrap_or(usize::MAX).min(data.len());
                    data.truncate(data.len() - drop);
                }
                _ => {}
            }
        }
        data
    }
}

/// Applies the rules of `faults` that fire on an `op` call of `rel` at `offset`: sleeps
/// their latencies, then returns the first injected error. `Ok(None)` when nothing fired (or
/// there is no plan); otherwise what fired, for [`Injected::lose`] and
/// [`Injected::mangle`]. `shown` names the path in errors.
pub(crate) async fn inject(
    faults: Option<&Faults>,
    op: FaultOp,
    rel: &str,
    offset: u64,
    shown: impl FnOnce() -> String,
) -> Result<Option<Injected>, StoreError> {
    let Some(faults) = faults else {
        return Ok(None);
    };
    let fired = faults.decide(op, rel, offset);
    if fired.is_empty() {
        return Ok(None);
    }
    // Every latency that fired is slept, then the first error that fired is returned.
    for f in &fired {
        if let FaultEffect::Latency(d) = f.effect {
            tokio::time::sleep(d).await;
        }
    }
    for f in &fired {
        if let FaultEffect::Error { retryable } = f.effect {
            return Err(faults.injected_error(f, &shown(), retryable));
        }
    }
    Ok(Some(Injected { fired }))
}

/// `data` after the faults in `injected`, if any.
pub(crate) fn mangled(injected: &Option<Injected>, data: Bytes) -> Bytes {
    match injected {
        Some(injected) => injected.mangle(data),
        None => data,
    }
}

/// Whether `injected` says the call is lost.
pub(crate) fn lost(injected: &Option<Injected>) -> bool {
    injected.as_ref().is_some_and(Injected::lose)
}
