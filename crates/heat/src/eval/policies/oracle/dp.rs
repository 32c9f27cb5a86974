//! The per-object dynamic program: the cheapest tier for every window of one object's
//! lives, under the replay's prices and rules.
//!
//! The state of an object in a window is its tier and when it arrived there (minimum
//! residency makes the arrival time matter: a demotion at boundary `j` needs
//! `j·W − arrival ≥ min_residency` of the tier, the replay's
//! [`crate::placement::residency_holds`]). Instead of a state per (tier, age), each tier
//! keeps its list of *arrivals* (at a boundary, or the birth), and a value is stored as a
//! key relative to the tier's running sum of window costs: the value of having arrived on
//! tier `t` at `k` and stayed to window `m` is `key_k + P_t(m)`, so the cheapest way to be on
//! `t` is a running minimum of keys, and the cheapest way that may leave `t` downwards is a
//! running minimum over the arrivals old enough (a pointer moving forward in arrival
//! order). A boundary costs O(tiers²), whatever the residencies and the window count.
//!
//! Moves are made at window boundaries only. A tier with no minimum residency may be
//! passed through at one boundary (moving up to it and down again at once), as the replay
//! allows.

use crate::cost::CostModel;
use crate::eval::TAIL_WINDOWS;
use crate::placement::residency_holds;

use super::windows::{Segment, FIRST_WRITE};

/// No arrival.
const NONE: u32 = u32::MAX;

/// A move the oracle makes: at the boundary that starts `window`, or right after the
/// first request of the object's life number `life` (which falls in `window`), to `tier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Move {
    /// The window of the boundary, or of the appearance.
    pub(super) window: u32,
    /// The target tier.
    pub(super) tier: u8,
    /// Whether the move is at the object's appearance rather than at a boundary.
    pub(super) at_birth: bool,
    /// The object's life (0 for its first appearance, 1 after its first delete, ...).
    pub(super) life: u32,
}

/// A stay: windows `first..=last` on `tier`, present at each window's start (what counts
/// against a capacity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stay {
    /// The tier.
    pub(super) tier: u8,
    /// The first window.
    pub(super) first: u32,
    /// The last window.
    pub(super) last: u32,
}

/// The prices and rules of one replay, per tier, as the DP uses them.
#[derive(Clone, Debug)]
pub(super) struct Model {
    tiers: usize,
    default_tier: usize,
    window_ms: i64,
    last_window: u32,
    storage_per_byte_ms: Vec<f64>,
    /// Per read: request, latency and miss penalty.
    per_read: Vec<f64>,
    /// Per byte read or moved out: retrieval and egress.
    per_byte: Vec<f64>,
    per_request: Vec<f64>,
    residency_ms: Vec<i64>,
    /// Whether some tier other than the coldest has no minimum residency (moves may then
    /// chain through it at one boundary).
    chains: bool,
}

impl Model {
    /// The model of a replay on `prices`, with these residencies (ms, per tier).
    pub(super) fn new(
        prices: &CostModel,
        residency_ms: Vec<i64>,
        default_tier: usize,
        window_ms: i64,
        last_window: u32,
    ) -> Self {
        let o = &prices.objectives;
        let tiers = prices.tiers.len();
        let chains = residency_ms
            .iter()
            .take(tiers.saturating_sub(1))
            .any(|&r| r <= 0);
        Model {
            tiers,
            default_tier: default_tier.min(tiers.saturating_sub(1)),
            window_ms: window_ms.max(1),
            last_window,
            storage_per_byte_ms: prices.tiers.iter().map(|p| p.storage_per_byte_ms).collect(),
            per_read: prices
                .tiers
                .iter()
                .map(|p| {
                    let miss = if p.misses_objective {
                        o.miss_penalty
                    } else {
                        0.0
                    };
                    p.per_request + p.read_latency_ms * o.latency_price_per_ms + miss
                })
                .collect(),
            per_byte: prices
                .tiers
                .iter()
                .map(|p| p.retrieval_per_byte + p.egress_per_byte)
                .collect(),
            per_request: prices.tiers.iter().map(|p| p.per_request).collect(),
            residency_ms,
            chains,
        }
    }

    /// The last window of the replay.
    pub(super) fn last_window(&self) -> u32 {
        self.last_window
    }

    /// Moving an object of `size` bytes from `from` to `to`: a read of it on the source and
    /// a write request on the target.
    fn move_cost(&self, size: f64, from: usize, to: usize) -> f64 {
        size * self.per_byte[from] + self.per_request[from] + self.per_request[to]
    }

    /// A segment's requests served on `tier`.
    fn requests_cost(&self, tier: usize, segment: &Segment) -> f64 {
        f64::from(segment.reads) * self.per_read[tier]
            + segment.read_bytes as f64 * self.per_byte[tier]
            + f64::from(segment.writes) * self.per_request[tier]
    }

    /// The first request of a life's first segment, served on `tier`.
    fn first_cost(&self, tier: usize, segment: &Segment) -> f64 {
        if segment.first_read_bytes == FIRST_WRITE {
            self.per_request[tier]
        } else {
            self.per_read[tier] + segment.first_read_bytes as f64 * self.per_byte[tier]
        }
    }

    /// The censoring tail on `tier`: stored [`TAIL_WINDOWS`] more windows, the last
    /// window's reads (of the whole object) and writes repeated as often.
    fn tail_cost(&self, tier: usize, size: f64, tail: Tail) -> f64 {
        let windows = f64::from(TAIL_WINDOWS);
        windows
            * (self.window_ms as f64 * size * self.storage_per_byte_ms[tier]
                + tail.reads as f64 * (self.per_read[tier] + size * self.per_byte[tier])
                + tail.writes as f64 * self.per_request[tier])
    }
}

/// What the object did in the last window (all its lives), repeated in the censoring tail.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Tail {
    /// Reads.
    pub(super) reads: u64,
    /// Writes.
    pub(super) writes: u64,
}

/// Extra prices on (tier, window) cells for the capacity's Lagrangian relaxation: a price
/// per byte present at the window's start, and cells the object may not use at all.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Penalty<'a> {
    /// Per tier, per window: dollars per byte (empty for a tier without a price).
    pub(super) per_byte: &'a [Vec<f64>],
    /// (window, tier) cells forbidden to this object, sorted by window.
    pub(super) forbidden: &'a [(u32, u8)],
}

impl Penalty<'_> {
    fn price(&self, tier: usize, window: u32) -> f64 {
        self.per_byte
            .get(tier)
            .and_then(|prices| prices.get(window as usize))
            .copied()
            .unwrap_or(0.0)
    }
}

/// One object's optimum.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Solution {
    /// Its cost with the penalty's prices.
    pub(super) value: f64,
    /// Its cost at the replay's prices.
    pub(super) cost: f64,
}

#[derive(Clone, Copy, Debug)]
struct Arrival {
    key: f64,
    time_ms: i64,
    from: u32,
    window: u32,
    tier: u8,
    /// Made right after the life's first request.
    at_birth: bool,
}

#[derive(Clone, Debug)]
struct Track {
    /// Arrivals on the tier, in time order.
    list: Vec<u32>,
    /// Cheapest key of all arrivals.
    all: (f64, u32),
    /// Cheapest key of the arrivals that may leave downwards now.
    free: (f64, u32),
    /// First arrival of `list` not yet in `free`.
    next_free: usize,
    /// Window costs summed since the life's birth window.
    prefix: f64,
}

impl Track {
    fn new() -> Self {
        Track {
            list: Vec::new(),
            all: (f64::INFINITY, NONE),
            free: (f64::INFINITY, NONE),
            next_free: 0,
            prefix: 0.0,
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.all = (f64::INFINITY, NONE);
        self.free = (f64::INFINITY, NONE);
        self.next_free = 0;
    }
}

/// The DP with buffers reused from object to object.
#[derive(Clone, Debug, Default)]
pub(super) struct Solver {
    arrivals: Vec<Arrival>,
    tracks: Vec<Track>,
    candidates: Vec<(f64, u32)>,
    ids: Vec<u32>,
    path: Vec<u32>,
}

/// One life of an object: its segments, first to last.
struct Life<'a> {
    /// Its number among the object's lives.
    number: u32,
    segments: &'a [Segment],
    /// Alive at the replay's end (no delete): the tail is charged on its last tier.
    to_end: bool,
}

impl Solver {
    /// The cheapest schedule of one object (all its lives), appending its moves to `moves`
    /// and its stays after each life's first window to `stays`.
    pub(super) fn solve(
        &mut self,
        model: &Model,
        segments: &[Segment],
        size: u64,
        penalty: Penalty<'_>,
        moves: &mut Vec<Move>,
        stays: &mut Vec<Stay>,
    ) -> Solution {
        let tail = object_tail(segments, model.last_window);
        let mut total = Solution::default();
        let mut rest = segments;
        let mut number = 0;
        while let Some(first) = rest.iter().position(Segment::starts_life) {
            let after = &rest[first..];
            let end = after
                .iter()
                .position(Segment::ends_life)
                .map_or(after.len(), |i| i + 1);
            let life = Life {
                number,
                segments: &after[..end],
                to_end: end == after.len() && !after[end - 1].ends_life(),
            };
            let one = self.solve_life(model, &life, size as f64, tail, penalty, moves, stays);
            total.value += one.value;
            total.cost += one.cost;
            rest = &after[end..];
            number += 1;
        }
        total
    }

    #[allow(clippy::too_many_arguments)]
    fn solve_life(
        &mut self,
        model: &Model,
        life: &Life<'_>,
        size: f64,
        tail: Tail,
        penalty: Penalty<'_>,
        moves: &mut Vec<Move>,
        stays: &mut Vec<Stay>,
    ) -> Solution {
        let (birth, last) = match (life.segments.first(), life.segments.last()) {
            (Some(&b), Some(&l)) => (b, l),
            _ => return Solution::default(),
        };
        let end_window = if life.to_end {
            model.last_window
        } else {
            last.window
        };
        let cost = |tier: usize, window: u32, segment: Option<&Segment>, from_ms: i64| {
            let start_ms = i64::from(window) * model.window_ms;
            let stop_ms = match segment {
                Some(s) if s.ends_life() => s.deleted_ms,
                _ => start_ms + model.window_ms,
            };
            let mut c = (stop_ms - from_ms.max(start_ms)).max(0) as f64
                * size
                * model.storage_per_byte_ms[tier];
            if let Some(s) = segment {
                c += model.requests_cost(tier, s);
            }
            if life.to_end && window == model.last_window {
                c += model.tail_cost(tier, size, tail);
            }
            c
        };
        self.reset(model.tiers);
        let d = model.default_tier;
        // The first request is served where the object appears; right after it the
        // object may move, and the rest of the window is served where it is then.
        let first = model.first_cost(d, &birth);
        self.arrive(d, first, birth.born_ms, NONE, birth.window, false);
        self.epoch(model, size, birth.born_ms, birth.window, penalty, true);
        for (t, track) in self.tracks.iter_mut().enumerate() {
            let moved_in = if t == d {
                0.0
            } else {
                penalty.price(t, birth.window)
            };
            track.prefix += cost(t, birth.window, Some(&birth), birth.born_ms)
                - model.first_cost(t, &birth)
                + moved_in * size;
        }
        let mut next_segment = 1;
        for window in birth.window + 1..=end_window {
            let segment = life
                .segments
                .get(next_segment)
                .filter(|s| s.window == window);
            if segment.is_some() {
                next_segment += 1;
            }
            let now_ms = i64::from(window) * model.window_ms;
            self.epoch(model, size, now_ms, window, penalty, false);
            for (t, track) in self.tracks.iter_mut().enumerate() {
                track.prefix +=
                    cost(t, window, segment, i64::MIN) + penalty.price(t, window) * size;
            }
        }
        let (tier, id) = self.cheapest_end();
        let value = self.tracks[tier].all.0 + self.tracks[tier].prefix;
        let priced = !penalty.per_byte.is_empty();
        let span = (life.number, birth.window, end_window);
        let charged = self.trace_back(id, span, moves, stays, |stay| {
            if !priced {
                return 0.0;
            }
            let prices: f64 = (stay.first..=stay.last)
                .map(|w| penalty.price(usize::from(stay.tier), w))
                .sum();
            prices * size
        });
        Solution {
            value,
            cost: value - charged,
        }
    }

    fn reset(&mut self, tiers: usize) {
        self.arrivals.clear();
        self.tracks.resize_with(tiers, Track::new);
        for track in &mut self.tracks {
            track.clear();
            track.prefix = 0.0;
        }
    }

    /// Records an arrival worth `value` on `tier` (its key is relative to the tier's
    /// prefix).
    fn arrive(
        &mut self,
        tier: usize,
        value: f64,
        time_ms: i64,
        from: u32,
        window: u32,
        at_birth: bool,
    ) -> u32 {
        let id = self.arrivals.len() as u32;
        let track = &mut self.tracks[tier];
        let key = value - track.prefix;
        self.arrivals.push(Arrival {
            key,
            time_ms,
            from,
            window,
            tier: tier as u8,
            at_birth,
        });
        track.list.push(id);
        if key < track.all.0 {
            track.all = (key, id);
        }
        id
    }

    /// A moment the object may move at (`now_ms`, in `window`: the boundary that starts
    /// it, or right after the life's first request): the cheapest arrival on each tier.
    fn epoch(
        &mut self,
        model: &Model,
        size: f64,
        now_ms: i64,
        window: u32,
        penalty: Penalty<'_>,
        at_birth: bool,
    ) {
        let tiers = model.tiers;
        for (t, track) in self.tracks.iter_mut().enumerate() {
            while let Some(&id) = track.list.get(track.next_free) {
                let arrival = &self.arrivals[id as usize];
                if residency_holds(t, t + 1, arrival.time_ms, model.residency_ms[t], now_ms) {
                    break;
                }
                if arrival.key < track.free.0 {
                    track.free = (arrival.key, id);
                }
                track.next_free += 1;
            }
        }
        self.candidates.clear();
        for u in 0..tiers {
            let mut best = (f64::INFINITY, NONE);
            for (t, track) in self.tracks.iter().enumerate() {
                // Promotions are never held; a demotion leaves from an old enough arrival.
                let source = match u.cmp(&t) {
                    std::cmp::Ordering::Less => track.all,
                    std::cmp::Ordering::Greater => track.free,
                    std::cmp::Ordering::Equal => continue,
                };
                let value = source.0 + track.prefix + model.move_cost(size, t, u);
                if value < best.0 {
                    best = (value, source.1);
                }
            }
            self.candidates.push(best);
        }
        let forbidden = |tier: usize| {
            penalty
                .forbidden
                .iter()
                .any(|&(w, t)| w == window && usize::from(t) == tier)
        };
        self.ids.clear();
        for u in 0..tiers {
            let (mut value, mut from) = self.candidates[u];
            if model.chains {
                // Through a tier without residency at this same boundary: from an arrival
                // made just now on a hotter tier.
                for t in 0..u {
                    let via = self.ids[t];
                    if via != NONE && model.residency_ms[t] <= 0 {
                        let through = self.candidates[t].0 + model.move_cost(size, t, u);
                        if through < value {
                            (value, from) = (through, via);
                        }
                    }
                }
                self.candidates[u] = (value, from);
            }
            if forbidden(u) {
                // At the appearance the object on the default tier does not count against
                // the window's capacity (appearances are never refused): it may stay.
                if !at_birth {
                    self.tracks[u].clear();
                }
                value = f64::INFINITY;
            }
            let id = if value.is_finite() {
                self.arrive(u, value, now_ms, from, window, at_birth)
            } else {
                NONE
            };
            self.ids.push(id);
        }
    }

    /// The tier and arrival of the cheapest end state.
    fn cheapest_end(&self) -> (usize, u32) {
        let mut best = (f64::INFINITY, 0, NONE);
        for (t, track) in self.tracks.iter().enumerate() {
            let value = track.all.0 + track.prefix;
            if value < best.0 {
                best = (value, t, track.all.1);
            }
        }
        (best.1, best.2)
    }

    /// Writes the moves and stays of the path ending at arrival `id` (of life `number`,
    /// from `birth_window` to `end_window`); returns the sum of `charge` over the stays.
    fn trace_back(
        &mut self,
        id: u32,
        (number, birth_window, end_window): (u32, u32, u32),
        moves: &mut Vec<Move>,
        stays: &mut Vec<Stay>,
        mut charge: impl FnMut(&Stay) -> f64,
    ) -> f64 {
        self.path.clear();
        let mut at = id;
        while let Some(arrival) = self.arrivals.get(at as usize) {
            self.path.push(at);
            at = arrival.from;
        }
        let mut charged = 0.0;
        let count = self.path.len();
        for i in (0..count).rev() {
            let arrival = self.arrivals[self.path[i] as usize];
            let is_birth = i + 1 == count;
            if !is_birth {
                moves.push(Move {
                    window: arrival.window,
                    tier: arrival.tier,
                    at_birth: arrival.at_birth,
                    life: number,
                });
            }
            // Counted on a tier from the start of the window after the appearance, or
            // from the appearance itself when it moved right after it.
            let first = if is_birth {
                birth_window + 1
            } else {
                arrival.window
            };
            let last = match i.checked_sub(1) {
                Some(next) => self.arrivals[self.path[next] as usize]
                    .window
                    .saturating_sub(1),
                None => end_window,
            };
            if first <= last {
                let stay = Stay {
                    tier: arrival.tier,
                    first,
                    last,
                };
                charged += charge(&stay);
                stays.push(stay);
            }
        }
        charged
    }
}

/// The object's reads and writes in the last window, over all its lives (what the
/// replay's tail repeats).
fn object_tail(segments: &[Segment], last_window: u32) -> Tail {
    segments
        .iter()
        .rev()
        .take_while(|s| s.window == last_window)
        .fold(Tail::default(), |tail, s| Tail {
            reads: tail.reads + u64::from(s.reads),
            writes: tail.writes + u64::from(s.writes),
        })
}
