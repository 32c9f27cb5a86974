//! Chaos: faults switched on and off while a process runs (the service's `POST /v1/chaos`
//! and `strata chaos`), where [`crate::faults`] is a plan fixed at start-up
//! (`STRATA_FAULTS`). A [`Chaos`] is a set of [`ChaosRule`]s shared by every store it is
//! given to ([`crate::Store::with_chaos`]): the service gives one to all the stores of a
//! tier, so a rule reaches client requests and moves alike. Rules are added and cleared at
//! run time; the stores are not rebuilt and a `STRATA_FAULTS` plan under them stays as it
//! was. Both are applied by the same store layer (`faults_layer.rs`), chaos first.
//!
//! A rule has a **fault**, the **operation** it applies to (every operation by default;
//! `corrupt` reads by default) and a **limit**: a number of operations (`count`), a
//! duration, or both (whichever ends first); a rule without a limit is refused, so that
//! nobody leaves a tier failing by accident. The faults look like what a real store does:
//!
//! | fault | what the call does |
//! |---|---|
//! | `latency` | sleeps the given time, then goes on |
//! | `429`, `503` | fails like an S3 answer of that status: retryable, with the `Retry-After` given as [`crate::StoreError::RetryLater`], else a retryable [`crate::StoreError::Backend`] naming the status |
//! | `timeout` | fails as a timed-out call (retryable) |
//! | `corrupt` | flips one bit of the call's data (reads: on the way out; writes: on the way in) |
//!
//! The request body of `POST /v1/chaos` is parsed here ([`ChaosRequest::parse_json`]), so
//! its fuzz target needs no service.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::faults::FaultOp;

/// The longest a rule may last (a day): chaos is for drills, not for a configuration.
pub const MAX_CHAOS_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The longest injected latency or `Retry-After` (five minutes).
pub const MAX_CHAOS_DELAY: Duration = Duration::from_secs(300);

/// What a chaos rule does to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChaosFault {
    /// Sleep, then go on.
    Latency(Duration),
    /// Fail like an HTTP answer of `status` (429 or 503), with its `Retry-After`.
    Status {
        /// 429 or 503.
        status: u16,
        /// The `Retry-After` the "server" sent, if any.
        retry_after: Option<Duration>,
    },
    /// Fail as a timed-out call.
    Timeout,
    /// Flip one bit of the call's data.
    Corrupt,
}

impl ChaosFault {
    /// The fault's name in the API and in metrics (`latency`, `429`, `503`, `timeout`,
    /// `corrupt`).
    pub fn name(&self) -> &'static str {
        match self {
            ChaosFault::Latency(_) => "latency",
            ChaosFault::Status { status: 429, .. } => "429",
            ChaosFault::Status { .. } => "503",
            ChaosFault::Timeout => "timeout",
            ChaosFault::Corrupt => "corrupt",
        }
    }
}

/// Every fault name, in the order the API lists them.
pub const CHAOS_FAULTS: [&str; 5] = ["latency", "429", "503", "timeout", "corrupt"];

/// One rule: a fault, the operation it applies to, and when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosRule {
    /// What happens.
    pub fault: ChaosFault,
    /// The operation it applies to; `None`: every operation.
    pub op: Option<FaultOp>,
    /// Ends after this many faulty calls.
    pub count: Option<u64>,
    /// Ends this long after it was added.
    pub duration: Option<Duration>,
}

/// The body of `POST /v1/chaos`, checked: which tier, and the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosRequest {
    /// The tier whose stores get the rule.
    pub tier: String,
    /// The rule.
    pub rule: ChaosRule,
}

/// The JSON of `POST /v1/chaos`, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChaosBody {
    tier: String,
    fault: String,
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    latency: Option<String>,
    #[serde(default)]
    retry_after: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    duration: Option<String>,
}

/// What `{"tier": ..., "fault": ...}` accepts, for error messages.
const CHAOS_SYNTAX: &str = "send {\"tier\": NAME, \"fault\": \"latency\"|\"429\"|\"503\"|\
     \"timeout\"|\"corrupt\", \"op\": read|write|readback|publish|put|stat|list|delete \
     (optional), \"latency\": \"200ms\" (latency only), \"retry_after\": \"2s\" (429 and 503 \
     only, optional), \"count\": N and/or \"duration\": \"30s\"}";

impl ChaosRequest {
    /// Parses and checks a `POST /v1/chaos` body; the error says what is wrong and what is
    /// accepted. The tier name is not checked against any configuration here.
    pub fn parse_json(body: &[u8]) -> Result<ChaosRequest, String> {
        let body: ChaosBody = serde_json::from_slice(body)
            .map_err(|err| format!("the chaos request is not valid: {err}; {CHAOS_SYNTAX}"))?;
        let bad = |what: String| format!("{what}; {CHAOS_SYNTAX}");
        if body.tier.trim().is_empty() {
            return Err(bad("\"tier\" is empty".into()));
        }
        let fault = fault_of(&body).map_err(bad)?;
        let op = op_of(body.op.as_deref(), fault).map_err(bad)?;
        let duration =
            delay("duration", body.duration.as_deref(), MAX_CHAOS_DURATION).map_err(bad)?;
        match (body.count, duration) {
            (None, None) => {
                return Err(bad(
                    "a chaos rule needs an end: \"count\" (operations) or \"duration\"".into(),
                ))
            }
            (Some(0), _) => return Err(bad("\"count\" must be at least 1".into())),
            _ => {}
        }
        Ok(ChaosRequest {
            tier: body.tier,
            rule: ChaosRule {
                fault,
                op,
                count: body.count,
                duration,
            },
        })
    }
}

/// The fault a body names, with its latency or `Retry-After`.
fn fault_of(body: &ChaosBody) -> Result<ChaosFault, String> {
    let latency = delay("latency", body.latency.as_deref(), MAX_CHAOS_DELAY)?;
    let retry_after = delay("retry_after", body.retry_after.as_deref(), MAX_CHAOS_DELAY)?;
    Ok(match (body.fault.as_str(), latency, retry_after) {
        ("latency", Some(d), None) => ChaosFault::Latency(d),
        ("latency", None, _) => return Err("a latency fault needs \"latency\"".into()),
        ("429", None, after) => ChaosFault::Status {
            status: 429,
            retry_after: after,
        },
        ("503", None, after) => ChaosFault::Status {
            status: 503,
            retry_after: after,
        },
        ("timeout", None, None) => ChaosFault::Timeout,
        ("corrupt", None, None) => ChaosFault::Corrupt,
        (name, _, _) if CHAOS_FAULTS.contains(&name) => {
            return Err(format!(
                "\"latency\" goes with the latency fault and \"retry_after\" with 429 and 503 \
                 only, not with `{name}`"
            ))
        }
        (name, _, _) => return Err(format!("unknown fault `{name}`")),
    })
}

/// The operation a rule applies to (`None`: every one; corruption: reads by default, and
/// only operations that carry data).
fn op_of(name: Option<&str>, fault: ChaosFault) -> Result<Option<FaultOp>, String> {
    let op = match name {
        None if fault == ChaosFault::Corrupt => Some(FaultOp::Read),
        None => None,
        Some(name) => Some(
            FaultOp::ALL
                .into_iter()
                .find(|op| op.name() == name)
                .ok_or_else(|| format!("unknown op `{name}`"))?,
        ),
    };
    let carries_data = matches!(
        op,
        Some(FaultOp::Read | FaultOp::ReadBack | FaultOp::Write | FaultOp::Put)
    );
    if fault == ChaosFault::Corrupt && !carries_data {
        return Err(
            "corrupt applies to operations that carry data: read, readback, write, put".into(),
        );
    }
    Ok(op)
}

/// The optional duration `field` holds, at most `max`.
fn delay(field: &str, text: Option<&str>, max: Duration) -> Result<Option<Duration>, String> {
    text.map(|t| parse_delay(t, max).map_err(|e| format!("{field}: {e}")))
        .transpose()
}

/// A duration such as `500ms`, `2s`, `1m` or `1h`, at most `max`.
fn parse_delay(text: &str, max: Duration) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("`{text}` is not a whole number with a unit (ms, s, m, h)");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let millis_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let duration = Duration::from_millis(n.saturating_mul(millis_per));
    if duration > max {
        return Err(format!("`{text}` is longer than {}s", max.as_secs()));
    }
    Ok(duration)
}

/// A rule in force.
#[derive(Debug)]
struct ActiveRule {
    id: u64,
    rule: ChaosRule,
    expires: Option<Instant>,
    /// Faulty calls left (`count`); `u64::MAX` without a count.
    remaining: AtomicU64,
    injected: AtomicU64,
}

impl ActiveRule {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| now < at) && self.remaining.load(Ordering::Relaxed) > 0
    }

    /// Takes one call from the rule's count: whether it fires.
    fn take(&self, op: FaultOp, now: Instant) -> bool {
        if self.rule.op.is_some_and(|only| only != op) || !self.live(now) {
            return false;
        }
        let taken = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if taken {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }
}

/// A rule as [`Chaos::active`] shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ChaosRuleStatus {
    /// The rule's id (unique in the process).
    pub id: u64,
    /// `latency`, `429`, `503`, `timeout` or `corrupt`.
    pub fault: &'static str,
    /// The operation; `null`: every one.
    pub op: Option<&'static str>,
    /// The injected latency, in milliseconds.
    pub latency_ms: Option<u128>,
    /// The `Retry-After` of a 429 or 503, in seconds.
    pub retry_after_s: Option<f64>,
    /// Faulty calls left; `null`: no count.
    pub remaining: Option<u64>,
    /// Milliseconds until the rule ends; `null`: no duration.
    pub expires_in_ms: Option<u128>,
    /// Calls it made faulty so far.
    pub injected: u64,
}

/// The chaos rules of a set of stores (a tier's, in the service), and the counts of what
/// they injected. Shared through an `Arc`; cheap to consult when empty.
#[derive(Debug, Default)]
pub struct Chaos {
    rules: RwLock<Vec<Arc<ActiveRule>>>,
    /// Faulty calls by fault name, over every rule ever added (for metrics).
    injected: RwLock<BTreeMap<&'static str, u64>>,
}

/// Rule ids, unique in the process (the API shows them; tiers share the sequence).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Chaos {
    /// No rules.
    pub fn new() -> Chaos {
        Chaos::default()
    }

    /// Adds `rule`, in force at once; returns its id.
    pub fn add(&self, rule: ChaosRule) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let active = ActiveRule {
            id,
            expires: rule.duration.map(|d| Instant::now() + d),
            remaining: AtomicU64::new(rule.count.unwrap_or(u64::MAX)),
            injected: AtomicU64::new(0),
            rule,
        };
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        rules.push(Arc::new(active));
        id
    }

    /// Removes every rule; returns how many were in force.
    pub fn clear(&self) -> usize {
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let live = rules.iter().filter(|r| r.live(now)).count();
        rules.clear();
        live
    }

    /// The rules in force (ended ones are dropped here).
    pub fn active(&self) -> Vec<ChaosRuleStatus> {
        let now = Instant::now();
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        rules.retain(|r| r.live(now));
        rules.iter().map(|r| status_of(r, now)).collect()
    }

    /// Faulty calls so far by fault name (every name listed, zeros included).
    pub fn injected(&self) -> Vec<(&'static str, u64)> {
        let counts = self.injected.read().unwrap_or_else(|e| e.into_inner());
        CHAOS_FAULTS
            .iter()
            .map(|name| (*name, counts.get(name).copied().unwrap_or(0)))
            .collect()
    }

    /// Applies the rules to an `op` call: sleeps the latencies that fired, then fails with
    /// the first error that fired; `Ok(true)` when the call's data is to be corrupted.
    pub(crate) async fn inject(
        &self,
        op: FaultOp,
        shown: impl FnOnce() -> String,
    ) -> Result<bool, StoreError> {
        let fired: Vec<ChaosFault> = {
            let rules = self.rules.read().unwrap_or_else(|e| e.into_inner());
            if rules.is_empty() {
                return Ok(false);
            }
            let now = Instant::now();
            rules
                .iter()
                .filter(|r| r.take(op, now))
                .map(|r| r.rule.fault)
                .collect()
        };
        if fired.is_empty() {
            return Ok(false);
        }
        {
            let mut counts = self.injected.write().unwrap_or_else(|e| e.into_inner());
            for fault in &fired {
                *counts.entry(fault.name()).or_default() += 1;
            }
        }
        for fault in &fired {
            if let ChaosFault::Latency(d) = fault {
                tokio::time::sleep(*d).await;
            }
        }
        if let Some(error) = fired.iter().find_map(|f| injected_error(*f, op)) {
            return Err(error(shown()));
        }
        Ok(fired.contains(&ChaosFault::Corrupt))
    }
}

fn status_of(rule: &ActiveRule, now: Instant) -> ChaosRuleStatus {
    let (latency_ms, retry_after_s) = match rule.rule.fault {
        ChaosFault::Latency(d) => (Some(d.as_millis()), None),
        ChaosFault::Status { retry_after, .. } => (None, retry_after.map(|d| d.as_secs_f64())),
        _ => (None, None),
    };
    ChaosRuleStatus {
        id: rule.id,
        fault: rule.rule.fault.name(),
        op: rule.rule.op.map(FaultOp::name),
        latency_ms,
        retry_after_s,
        remaining: rule
            .rule
            .count
            .map(|_| rule.remaining.load(Ordering::Relaxed)),
        expires_in_ms: rule
            .expires
            .map(|at| at.saturating_duration_since(now).as_millis()),
        injected: rule.injected.load(Ordering::Relaxed),
    }
}

/// The error an error fault makes, given the path as shown.
fn injected_error(fault: ChaosFault, op: FaultOp) -> Option<Box<dyn FnOnce(String) -> StoreError>> {
    let note = "(injected by chaos: `strata chaos clear` ends it)";
    match fault {
        ChaosFault::Status {
            status,
            retry_after,
        } => {
            let reason = if status == 429 {
                "429 Too Many Requests (SlowDown)"
            } else {
                "503 Service Unavailable"
            };
            let detail = format!("HTTP {reason} on {op} {note}");
            Some(Box::new(move |path| match retry_after {
                Some(after) => StoreError::RetryLater {
                    path,
                    detail,
                    after,
                },
                None => StoreError::Backend {
                    path,
                    detail,
                    retryable: true,
                },
            }))
        }
        ChaosFault::Timeout => Some(Box::new(move |path| StoreError::Io {
            path,
            source: io::Error::new(io::ErrorKind::TimedOut, format!("{op} timed out {note}")),
        })),
        ChaosFault::Latency(_) | ChaosFault::Corrupt => None,
    }
}

/// `data` with one bit flipped (the middle byte's lowest), when `corrupt`.
pub(crate) fn corrupted(corrupt: bool, data: Bytes) -> Bytes {
    if !corrupt || data.is_empty() {
        return data;
    }
    let mut owned = data.to_vec();
    let middle = owned.len() / 2;
    owned[middle] ^= 1;
    Bytes::from(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Result<ChaosRule, String> {
        ChaosRequest::parse_json(text.as_bytes()).map(|r| r.rule)
    }

    #[test]
    fn requests_parse_into_rules() {
        let r = rule(r#"{"tier":"warm","fault":"503","retry_after":"2s","count":3}"#).unwrap();
        assert_eq!(
            r.fault,
            ChaosFault::Status {
                status: 503,
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!((r.op, r.count, r.duration), (None, Some(3), None));
        let r = rule(r#"{"tier":"warm","fault":"corrupt","duration":"1m"}"#).unwrap();
        assert_eq!(r.op, Some(FaultOp::Read));
        assert_eq!(r.duration, Some(Duration::from_secs(60)));
        let r = rule(r#"{"tier":"t","fault":"latency","latency":"20ms","op":"put","count":1}"#)
            .unwrap();
        assert_eq!(r.fault, ChaosFault::Latency(Duration::from_millis(20)));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (body, says) in [
            (r#"{"tier":"warm","fault":"503"}"#, "needs an end"),
            (
                r#"{"tier":"warm","fault":"500","count":1}"#,
                "unknown fault `500`",
            ),
            (
                r#"{"tier":"warm","fault":"latency","count":1}"#,
                "needs \"latency\"",
            ),
            (
                r#"{"tier":"","fault":"503","count":1}"#,
                "\"tier\" is empty",
            ),
            (r#"{"tier":"w","fault":"503","count":0}"#, "at least 1"),
            (
                r#"{"tier":"w","fault":"503","op":"rename","count":1}"#,
                "unknown op",
            ),
            (
                r#"{"tier":"w","fault":"corrupt","op":"stat","count":1}"#,
                "carry data",
            ),
            (
                r#"{"tier":"w","fault":"503","duration":"2d"}"#,
                "not a whole number",
            ),
            (
                r#"{"tier":"w","fault":"503","duration":"48h"}"#,
                "longer than",
            ),
            (
                r#"{"tier":"w","fault":"timeout","retry_after":"1s","count":1}"#,
                "not with",
            ),
            (
                r#"{"tier":"w","fault":"503","count":1,"extra":1}"#,
                "unknown field",
            ),
            ("not json", "not valid"),
        ] {
            let err = rule(body).unwrap_err();
            assert!(err.contains(says), "{body}: {err}");
            assert!(err.contains("\"fault\""), "{err}");
        }
    }

    #[tokio::test]
    async fn a_rule_ends_after_its_count_and_clear_ends_all() {
        let chaos = Chaos::new();
        chaos.add(rule(r#"{"tier":"w","fault":"503","count":2}"#).unwrap());
        let shown = || "objects/k".to_string();
        for _ in 0..2 {
            let err = chaos.inject(FaultOp::Read, shown).await.unwrap_err();
            assert!(
                err.is_retryable() && err.to_string().contains("503"),
                "{err}"
            );
        }
        assert!(!chaos.inject(FaultOp::Read, shown).await.unwrap());
        assert!(chaos.active().is_empty());
        chaos
            .add(rule(r#"{"tier":"w","fault":"429","retry_after":"3s","duration":"1h"}"#).unwrap());
        let err = chaos.inject(FaultOp::Stat, shown).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(chaos.active().len(), 1);
        assert_eq!(chaos.clear(), 1);
        assert!(chaos.inject(FaultOp::Stat, shown).await.is_ok());
        let counts: BTreeMap<_, _> = chaos.injected().into_iter().collect();
        assert_eq!((counts["503"], counts["429"], counts["corrupt"]), (2, 1, 0));
    }

    #[tokio::test]
    async fn a_rule_ends_after_its_duration() {
        let chaos = Chaos::new();
        chaos.add(ChaosRule {
            fault: ChaosFault::Timeout,
            op: Some(FaultOp::Read),
            count: None,
            duration: Some(Duration::from_millis(1)),
        });
        std::thread::sleep(Duration::from_millis(5));
        assert!(chaos.inject(FaultOp::Read, String::new).await.is_ok());
        assert!(chaos.active().is_empty());
    }

    #[test]
    fn corruption_flips_one_bit() {
        let data = Bytes::from_static(b"abcd");
        let out = corrupted(true, data.clone());
        let differing: u32 = data
            .iter()
            .zip(out.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(differing, 1);
        assert_eq!(corrupted(false, data.clone()), data);
    }
}
