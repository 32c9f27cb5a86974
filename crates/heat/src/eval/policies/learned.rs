//! `learned`: the forecast ([`crate::forecast`]), trained walk-forward on the replay's own
//! past, and a per-object choice of tier by expected cost ([`crate::optimise`]).
//!
//! - **At each window boundary** the forecaster learns from the window that ended: the
//!   boosted trees of next-window reads (retrained every few windows) and the life table of
//!   idle time ([`crate::forecast::IdleModel`]). Every object then takes the tier with the
//!   least expected cost over the stay it would commit to ([`cheapest_tier_for`]): the
//!   target's minimum residency, at least [`crate::optimise::AMORTISE_WINDOWS`] windows.
//!   What it expects over a stay of `H` windows: the trees' forecast for the next window
//!   (objects active within the forecaster's horizon; before the first model, the reads of
//!   the last window), plus, for the windows after, the chance of a read in them (the life
//!   table) × the reads of a window in which an object of its class is read. A tier slower
//!   than the latency objective is charged its first read and the move back up (this
//!   policy recalls an object on its first read there), so archiving pays only where the
//!   life table says a read is unlikely for long enough.
//!   A demotion that choice makes waits when the life table's look-ahead
//!   ([`DemotionTable`]) says a read comes before the storage it saves pays for it.
//!   An idle object the choice leaves where it is is judged again over a long stay (the
//!   windows seen, at most 256), with a scan not seen yet counted once for the stay
//!   ([`UnseenEvent`]) rather than in each window (`Learned::idle_demotion`).
//! - **On a read** of an object not on the fastest tier, it moves up at once if the reads
//!   it is expected to get before the next boundary (its class's reads per read window,
//!   less those it already had in this one) pay for the storage there until the boundary
//!   (at least the target's minimum residency) and the moves up and back, and such
//!   promotions of its class have paid so far (`PromotionLedger`, `ledger.rs`).
//! - No chance of a read is taken below [`SCAN_REACH`] / (n + 2) after `n` windows.
//! - **Predicted "read"**: of two scores of an active object ([`ReadScore`]: the trees'
//!   forecast, and the read table's chance of a read in the next window ([`ReadTable`])),
//!   the one whose cut, chosen on an evenly spaced sample of the policy's past forecasts and
//!   what followed them, did best on the last two windows of that sample, at its cut chosen
//!   on the whole sample: the best F1 among the cuts with precision of at least 0.6 and
//!   accuracy of at least 95%, else the most accurate cut ([`ScoredPairs::choose`]; out of
//!   sample; the trees with the model's own threshold until a thousand are scored; no
//!   prediction before the first model). Precision above one half is what puts accuracy
//!   above the base rate; the margin is for drift between the windows scored and the next.
//!   The scores change no placement: the tier choice reads the trees' forecast only.

use crate::config::TieringConfig;
use crate::cost::TierPrices;
use crate::eval::{CostModel, EvalError, Policy, Predictions, PrepareContext, ReplayState};
use crate::forecast::idle::{DemotionTable, UnseenEvent, DEMOTION_AGES};
use crate::forecast::read_score::{Forecasts, ReadScore, ScoredPairs};
use crate::forecast::read_table::{ReadSignals, ReadTable};
use crate::forecast::FEATURES;
use crate::forecast::{ForecastSettings, Forecaster, IdleModel};

use super::ledger::{PromotionLedger, Stay};
use crate::optimise::object::{move_cost, read_cost, window_cost};
use crate::optimise::{cheapest_tier_for, Demand, Horizon, Outlook};
use crate::placement::residency_holds;
use crate::stats::Op;
use crate::trace::TraceRequest;

/// The learned policy.
pub struct Learned {
    prices: CostModel,
    /// `prices` with the reads of tiers slower than the objective weighted by how much
    /// more often objects placed there were read than the life table expected.
    judged: CostModel,
    /// Reads the life table expected of objects on slow tiers, window by window.
    slow_expected: f64,
    /// Windows in which an object on a slow tier was read.
    slow_read: f64,
    /// The look-ahead of demotions, as of the boundary it was computed at.
    demotions: Option<DemotionTable>,
    /// What promotions on access have paid so far, per class.
    ledger: PromotionLedger,
    forecaster: Option<Forecaster>,
    settings: ForecastSettings,
    /// Per object: the trees' forecast for the current window (NaN: none).
    forecast: Vec<f32>,
    /// Per object: the read table's chance of a read in the current window, for the objects
    /// the trees forecast (NaN for the others).
    table_chance: Vec<f32>,
    /// The read table, counted walk-forward.
    read_table: ReadTable,
    /// Forecasts of past windows and whether their object was then read, the most recent
    /// [`SCORED_PAIRS`]: out of sample, unlike the training rows.
    scored: ScoredPairs,
    /// Windows predicted with each score of [`ReadScore::ALL`], for the notes.
    windows_by_score: [u32; ReadScore::ALL.len()],
}

/// The least precision of "read" on past forecasts: above one half, with a margin for the
/// drift from the windows scored to the one predicted.
const MIN_PRECISION: f64 = 0.6;

/// The least accuracy of "read" on past forecasts the threshold aims for (the floor of
/// issue 11); where no cut reaches it, the most accurate cut is taken.
const MIN_ACCURACY: f64 = 0.95;

/// Past (forecast, outcome) pairs kept to choose the "read" threshold.
const SCORED_PAIRS: usize = 200_000;

/// The windows whose forecasts [`SCORED_PAIRS`] spans at least.
const SCORED_WINDOWS: usize = 8;

impl Learned {
    /// The policy on `config`'s tiers and prices.
    pub fn new(config: &TieringConfig) -> Self {
        Learned {
            prices: CostModel::new(config),
            judged: CostModel::new(config),
            slow_expected: 0.0,
            slow_read: 0.0,
            demotions: None,
            ledger: PromotionLedger::default(),
            forecaster: None,
            settings: ForecastSettings::default(),
            forecast: Vec::new(),
            table_chance: Vec::new(),
            read_table: ReadTable::default(),
            scored: ScoredPairs::new(SCORED_PAIRS),
            windows_by_score: [0; ReadScore::ALL.len()],
        }
    }

    /// The boundary's choice for one object, whose next-window reads are `next`.
    fn place(
        &self,
        forecaster: &Forecaster,
        table: &DemotionTable,
        long: &UnseenEvent,
        state: &mut ReplayState,
        object: u32,
        next: f64,
    ) {
        let Some(from) = state.tier_of(object) else {
            return;
        };
        let store = forecaster.store();
        let idle = forecaster.idle();
        let now = state.now_ms();
        let per_read_window = idle.reads_when_read(store.reads(object));
        // The chance of a read in the next window is the life table's; a forecast of reads
        // raises it (the trees forecast counts: a small count is no small chance).
        let any_next = idle
            .read_probability(store, object, now, 1.0)
            .max(next.clamp(0.0, 1.0));
        let outlook = |windows: f64| {
            let later = if windows > 1.0 {
                idle.read_probability(store, object, now + state.window_ms(), windows - 1.0)
            } else {
                0.0
            };
            Outlook {
                reads: next + later * per_read_window,
                any_read: 1.0 - (1.0 - any_next) * (1.0 - later),
            }
        };
        let demand = Demand {
            size: state.size(object),
            from,
            placed_at_ms: state.placed_at_ms(object).unwrap_or(i64::MIN),
            reads_per_window: next,
        };
        let min_residency = |tier| state.min_residency_ms(tier);
        let horizon = Horizon {
            now_ms: now,
            window_ms: state.window_ms(),
            max_windows: f64::from(idle.boundaries()),
            recall_to: Some(0),
            cold_read_floor: unseen_event_floor(idle),
        };
        let choice = cheapest_tier_for(&self.judged, &demand, &horizon, &min_residency, outlook);
        // A demotion the look-ahead says would come before a read it does not pay for waits.
        let early = choice.tier > from
            && self.read_again_first(forecaster, table, state, object, choice.tier);
        let to = if choice.tier != from && !early {
            Some(choice.tier)
        } else {
            self.idle_demotion(forecaster, table, long, state, object, next)
        };
        if let Some(to) = to {
            // A refusal (capacity) leaves the object; it is reconsidered next window.
            let _ = state.move_object(object, to);
        }
    }

    /// A demotion of an idle `object` judged over the long stay `long` (the windows the
    /// life table has evidence for), where the tier choice judges 4 windows: the colder
    /// tier whose storage saved in the windows the object is expected to stay unread most
    /// exceeds the chance of a read within the stay times what that read costs there (with
    /// the move back to the fastest tier), and the move down. The chance of a read is the
    /// life table's and the trees' forecast, and an event not seen yet, such as a scan,
    /// counted once for the stay ([`UnseenEvent`]) rather than [`unseen_event_floor`] in
    /// every window: an object a scan reads is moved back up at that read, so later events
    /// cost it no more reads there. Why: the oracle's saving on the traces stretched to 180
    /// days is archiving objects right after their last read; with the floor in every
    /// window of a 4-window stay, an object of 1 MiB on the example configuration's prices
    /// (windows of 1.8 days) is not archived before about window 67 of 100.
    /// Priced at the configuration's prices, as the look-ahead ([`DemotionTable`]) that then
    /// holds it back prices it. (Weighing the slow tiers' reads as the tier choice does,
    /// by how far they exceeded the life table, cost 0.4% more on `lirs_multi1` stretched
    /// to 180 days: docs/BENCHMARKS.md, session 18.)
    fn idle_demotion(
        &self,
        forecaster: &Forecaster,
        table: &DemotionTable,
        long: &UnseenEvent,
        state: &ReplayState,
        object: u32,
        next: f64,
    ) -> Option<usize> {
        let from = state.tier_of(object)?;
        let now = state.now_ms();
        let placed = state.placed_at_ms(object).unwrap_or(i64::MIN);
        let tiers = &self.prices.tiers;
        let mut best = None;
        let mut best_net = 0.0;
        for to in from + 1..tiers.len() {
            if residency_holds(from, to, placed, state.min_residency_ms(from), now) {
                continue;
            }
            let net = self.long_stay_net(forecaster, long, state, object, next, from, to)
                - move_cost(&tiers[from], &tiers[to], state.size(object));
            if net > best_net {
                best_net = net;
                best = Some(to);
            }
        }
        best.filter(|&to| !self.read_again_first(forecaster, table, state, object, to))
    }

    /// What keeping an idle `object` on the colder tier `lower` rather than on `upper` is
    /// expected to save over the long stay `long`, moves aside: the storage saved in the
    /// windows it stays unread, less the chance of a read within the stay times that read
    /// on `lower` and the move back to the fastest tier (0 for an object read in the window
    /// that ended: not idle).
    #[allow(clippy::too_many_arguments)]
    fn long_stay_net(
        &self,
        forecaster: &Forecaster,
        long: &UnseenEvent,
        state: &ReplayState,
        object: u32,
        next: f64,
        upper: usize,
        lower: usize,
    ) -> f64 {
        let store = forecaster.store();
        let now = state.now_ms();
        let window_ms = state.window_ms();
        let idle = store
            .last_read_ms(object)
            .is_some_and(|last| now - last >= window_ms);
        let tiers = &self.prices.tiers;
        let (Some(up), Some(down)) = (tiers.get(upper), tiers.get(lower)) else {
            return 0.0;
        };
        if !idle {
            return 0.0;
        }
        let life = forecaster
            .idle()
            .read_probability(store, object, now, long.windows)
            .max(next.clamp(0.0, 1.0));
        let any = 1.0 - (1.0 - life) * (1.0 - long.chance);
        let unread = long.unread * (1.0 - life);
        let size = state.size(object);
        let prices = &self.prices;
        let saving = window_cost(prices, up, size, window_ms, 0.0)
            - window_cost(prices, down, size, window_ms, 0.0);
        let read = read_cost(prices, down, size as f64) - read_cost(prices, &tiers[0], size as f64)
            + move_cost(down, &tiers[0], size);
        unread * saving - any * read
    }

    /// Whether a demotion of `object` to `to` would be better made later: for some
    /// look-ahead the chance of a read within it, times what a read costs there (with the
    /// move back to the fastest tier), exceeds the storage saved in the windows it stays
    /// unread ([`DemotionTable`]). The choice of tier looks at the next few windows only;
    /// this keeps up an object whose class is read again at older idle ages.
    fn read_again_first(
        &self,
        forecaster: &Forecaster,
        table: &DemotionTable,
        state: &ReplayState,
        object: u32,
        to: usize,
    ) -> bool {
        let (Some(from), Some(last)) = (
            state.tier_of(object),
            forecaster.store().last_read_ms(object),
        ) else {
            return false;
        };
        let size = state.size(object);
        let tiers = &self.prices.tiers;
        let saving = self.extra_storage(&tiers[to], &tiers[from], size, state.window_ms());
        let risk = self.read(&tiers[to], size) - self.read(&tiers[0], size)
            + move_cost(&tiers[to], &tiers[0], size)
            + move_cost(&tiers[from], &tiers[to], size);
        let age = ((state.now_ms() - last).max(0) / state.window_ms()) as u64;
        saving < table.threshold(forecaster.store().reads(object), age) * risk
    }

    /// On a read or a write: moves the object up at once when the reads it is expected to
    /// get before the next boundary pay for it (after a read, the rest of its burst; after
    /// a write, the life table's chance of a read of an object just accessed), and when such
    /// promotions of its class have paid so far ([`PromotionLedger`]).
    fn promote_on_access(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        let object = request.object;
        let now = state.now_ms();
        let Some((to, stay)) = self.promotion(state, request) else {
            return;
        };
        if self.ledger.is_open(object, now) {
            // Asked for already in this stay (held back): judged once.
            return;
        }
        let allowed = self.ledger.allows(stay.reads);
        self.ledger.open(object, now, stay);
        if allowed {
            let _ = state.move_object(object, to);
        }
    }

    /// The promotion the rule of [`Learned::promote_on_access`] asks for, if any: the
    /// target and the stay it opens.
    fn promotion(&self, state: &ReplayState, request: &TraceRequest) -> Option<(usize, Stay)> {
        let object = request.object;
        let forecaster = self.forecaster.as_ref()?;
        let from = state.tier_of(object).filter(|&tier| tier > 0)?;
        let store = forecaster.store();
        let now = state.now_ms();
        let window_ms = state.window_ms();
        let window = u32::try_from(now / window_ms).unwrap_or(u32::MAX);
        let idle = forecaster.idle();
        // As at boundaries, no chance of a read is taken below the unseen-event floor.
        let floor = unseen_event_floor(idle);
        let more = if request.op == Op::Read {
            let so_far = store.reads_in_window(object, window);
            let before = store.reads(object).saturating_sub(so_far);
            idle.more_reads(before, so_far).max(floor)
        } else {
            let reads = store.reads(object);
            idle.read_probability_at(reads, 0, 1.0).max(floor) * idle.reads_when_read(reads)
        };
        if more <= 0.0 {
            return None;
        }
        let size = state.size(object);
        let until_boundary = (i64::from(window) + 1) * window_ms - now;
        let source = &self.prices.tiers[from];
        let mut best = None;
        let mut best_gain = 0.0;
        for (to, target) in self.prices.tiers.iter().enumerate().take(from) {
            let stay_ms = until_boundary.max(state.min_residency_ms(to));
            let stay = Stay {
                reads: store.reads(object),
                moves: move_cost(source, target, size) + move_cost(target, source, size),
                per_ms: self.extra_storage(source, target, size, 1),
                per_read: self.read(source, size) - self.read(target, size),
                until_ms: now + stay_ms,
            };
            let gain = more * stay.per_read - stay.per_ms * stay_ms as f64 - stay.moves;
            if gain > best_gain {
                best_gain = gain;
                best = Some((to, stay));
            }
        }
        best
    }

    /// Adds the life table's chance of a read in the window that starts for every object on
    /// a slow tier, and weighs the slow tiers' reads in `judged` by how far the reads seen
    /// there exceeded what was expected (never below 1: a life table measured on the past
    /// cannot foresee a scan of objects idle for longer than it has seen).
    fn calibrate(&mut self, forecaster: &Forecaster, state: &ReplayState, now_ms: i64) {
        let store = forecaster.store();
        for object in 0..store.len() {
            let slow = state
                .tier_of(object)
                .is_some_and(|tier| self.prices.tiers[tier].misses_objective);
            if slow {
                self.slow_expected += forecaster
                    .idle()
                    .read_probability(store, object, now_ms, 1.0);
            }
        }
        let weight = ((self.slow_read + 1.0) / (self.slow_expected + 1.0)).max(1.0);
        self.judged = self.prices.clone();
        self.judged.objectives.miss_penalty *= weight;
        for (judged, base) in self.judged.tiers.iter_mut().zip(&self.prices.tiers) {
            if base.misses_objective {
                judged.retrieval_per_byte = base.retrieval_per_byte * weight;
                judged.egress_per_byte = base.egress_per_byte * weight;
                judged.read_latency_ms = base.read_latency_ms * weight;
            }
        }
    }

    /// Keeps an evenly spaced sample of the forecasts of the window that just ended (at
    /// most [`SCORED_PAIRS`] / [`SCORED_WINDOWS`]) with whether their object was read. A
    /// window's forecasts are in object order, and ids come in order of first access: the
    /// last ones alone would be the newest objects only.
    fn score_last_window(&mut self, forecaster: &Forecaster, now_ms: i64) {
        let store = forecaster.store();
        let forecasts = self.forecast.iter().filter(|reads| !reads.is_nan()).count();
        let stride = forecasts.div_ceil(SCORED_PAIRS / SCORED_WINDOWS).max(1);
        let scored = self
            .forecast
            .iter()
            .enumerate()
            .filter(|(_, reads)| !reads.is_nan())
            .step_by(stride);
        for (object, &forecast) in scored {
            let read = store.reads_in_last_window(object as u32, now_ms) > 0;
            let forecasts = Forecasts {
                trees: f64::from(forecast),
                table: f64::from(self.table_chance[object]),
            };
            self.scored.push(forecasts, read);
        }
        self.scored.trim();
    }

    /// The rule "read" is predicted with, chosen on past forecasts and what followed them
    /// (the model's own threshold, fitted on its training rows, is optimistic out of sample:
    /// its precision there fell below one half, and with it the accuracy below the base
    /// rate): the score and cut of [`ScoredPairs::choose`] with [`MIN_PRECISION`] and
    /// [`MIN_ACCURACY`]; the trees at the model's threshold until a thousand pairs are scored.
    fn read_rule(&self, model_threshold: f64) -> (ReadScore, f64) {
        if self.scored.len() < 1_000 {
            return (ReadScore::Trees, model_threshold);
        }
        self.scored
            .choose(&ReadScore::ALL, MIN_PRECISION, MIN_ACCURACY)
            .map_or((ReadScore::Trees, model_threshold), |rule| {
                (rule.score, rule.cut.threshold)
            })
    }

    fn read(&self, p: &TierPrices, size: u64) -> f64 {
        read_cost(&self.prices, p, size as f64)
    }

    /// What keeping `size` bytes on `target` rather than `source` costs for `ms`.
    fn extra_storage(&self, source: &TierPrices, target: &TierPrices, size: u64, ms: i64) -> f64 {
        window_cost(&self.prices, target, size, ms, 0.0)
            - window_cost(&self.prices, source, size, ms, 0.0)
    }
}

/// The look-ahead of demotions is computed at every boundary up to this many, then at
/// every [`DEMOTIONS_EVERY`]th: it costs a few hundred thousand steps, and with many windows
/// seen one more changes it little (a replay may have up to 100,000 windows).
const DEMOTIONS_ALWAYS: u32 = 256;
const DEMOTIONS_EVERY: u32 = 16;

/// The share of idle objects an event not seen yet (a scan) is taken to read: the mean of a
/// uniform prior on its reach. Chosen over all the traces of `../shared/data/traces`
/// (docs/BENCHMARKS.md): at 1 (every idle object read) nothing was ever archived within
/// their 100 windows; at 0.25 the scan of cloudPhysicsIO cost 19% to 33% more.
pub const SCAN_REACH: f64 = 0.5;

/// The least chance of a read per window this policy assumes of any object: Laplace's rule
/// over the windows seen, since an event not seen in `n` windows (a scan of idle objects)
/// may still come once in `n + 2`, and reach [`SCAN_REACH`] of them.
fn unseen_event_floor(idle: &IdleModel) -> f64 {
    SCAN_REACH / (f64::from(idle.boundaries()) + 2.0)
}

impl Policy for Learned {
    fn name(&self) -> &str {
        "learned"
    }

    fn prepare(&mut self, context: &PrepareContext<'_, '_>) -> Result<(), EvalError> {
        self.forecaster = Some(Forecaster::new(context.window_ms, self.settings));
        Ok(())
    }

    fn depends_on_prices(&self) -> bool {
        true
    }

    fn notes(&self) -> Option<String> {
        let windows: Vec<String> = ReadScore::ALL
            .iter()
            .zip(&self.windows_by_score)
            .filter(|(_, &windows)| windows > 0)
            .map(|(score, windows)| format!("{} {windows}", score.name()))
            .collect();
        Some(format!("read predicted by: {}", windows.join(", ")))
    }

    fn on_request(&mut self, state: &mut ReplayState, request: &TraceRequest) {
        let forecaster = self
            .forecaster
            .get_or_insert_with(|| Forecaster::new(state.window_ms(), self.settings));
        if request.op == Op::Read {
            let slow = state
                .tier_of(request.object)
                .is_some_and(|tier| self.prices.tiers[tier].misses_objective);
            let window = u32::try_from(request.time_ms / state.window_ms()).unwrap_or(u32::MAX);
            if slow && forecaster.store().reads_in_window(request.object, window) == 0 {
                self.slow_read += 1.0;
            }
        }
        if request.op == Op::Read {
            self.ledger.read(request.object, request.time_ms);
        }
        forecaster.record(request);
        if request.op != Op::Delete {
            self.promote_on_access(state, request);
        }
    }

    fn on_window(&mut self, state: &mut ReplayState, now_ms: i64, predictions: &mut Predictions) {
        let mut forecaster = self
            .forecaster
            .take()
            .unwrap_or_else(|| Forecaster::new(state.window_ms(), self.settings));
        forecaster.boundary(now_ms, |object| state.size(object));
        let objects = forecaster.store().len();
        self.score_last_window(&forecaster, now_ms);
        self.forecast.clear();
        self.forecast.resize(objects as usize, f32::NAN);
        self.table_chance.clear();
        self.table_chance.resize(objects as usize, f32::NAN);
        self.read_table.label(forecaster.store(), now_ms);
        let rule = forecaster
            .model()
            .map(|model| self.read_rule(model.threshold));
        let threshold = rule.map(|(_, threshold)| threshold);
        if let Some((score, threshold)) = rule {
            if let Some(slot) = ReadScore::ALL.iter().position(|&s| s == score) {
                self.windows_by_score[slot] += 1;
            }
            let (_, rows) = forecaster.rows();
            let predicted = &forecaster.forecast().predicted;
            for (&(object, trees), row) in predicted.iter().zip(rows.chunks_exact(FEATURES)) {
                let neighbours = self.read_table.neighbours_read(object);
                let signals = ReadSignals::from_row(trees, row, neighbours);
                let forecasts = Forecasts {
                    trees,
                    table: self.read_table.take(object, &signals),
                };
                if score.of(&forecasts) >= threshold {
                    predictions.will_read(object);
                }
                self.forecast[object as usize] = trees as f32;
                self.table_chance[object as usize] = forecasts.table as f32;
            }
        }
        self.calibrate(&forecaster, state, now_ms);
        self.ledger.accrue(now_ms);
        let boundaries = forecaster.idle().boundaries();
        let table = match self.demotions.take() {
            Some(table)
                if boundaries > DEMOTIONS_ALWAYS && !boundaries.is_multiple_of(DEMOTIONS_EVERY) =>
            {
                table
            }
            _ => forecaster.idle().demotion_table(boundaries),
        };
        let store = forecaster.store();
        let long = UnseenEvent::over(boundaries, boundaries.min(DEMOTION_AGES as u32), SCAN_REACH);
        for object in 0..objects {
            let known = self.forecast[object as usize];
            let next = if known.is_nan() {
                if threshold.is_none() {
                    f64::from(store.reads_in_last_window(object, now_ms))
                } else {
                    let per = forecaster.idle().reads_when_read(store.reads(object));
                    forecaster
                        .idle()
                        .read_probability(store, object, now_ms, 1.0)
                        * per
                }
            } else {
                f64::from(known)
            };
            self.place(&forecaster, &table, &long, state, object, next);
        }
        self.demotions = Some(table);
        self.forecaster = Some(forecaster);
    }
}
