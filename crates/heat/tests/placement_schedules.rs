//! A randomised check of the placement invariants: on random tiers, objects and budgets,
//! every move starts from the object's tier, no object moves twice, dependencies point
//! backwards, the plan does not depend on input order, and no schedule of the moves that
//! respects `Move::after` overfills a tier.

use strata_heat::units::HOUR_MS;
use strata_heat::{ClassTiers, ObjectState, Planner, Reason};

mod common;
use common::*;

/// xorshift64*: deterministic scenarios.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_scenario(rng: &mut Rng) -> (Planner, Vec<ObjectState>) {
    let names = ["t0", "t1", "t2", "t3"];
    let count = 2 + rng.below(3) as usize;
    let mut objects = Vec::new();
    let mut used = vec![0u64; count];
    for i in 0..(5 + rng.below(40)) {
        let on = rng.below(count as u64) as usize;
        let size = rng.below(50);
        used[on] += size;
        let rate = rng.below(1000) as f64 / 10.0;
        let last = NOW - rng.below(48) as i64 * HOUR_MS;
        let d = match rng.below(4) {
            0 => hot(rate),
            1 => spike(rate * 10.0),
            2 => warm(rate, last),
            _ => cold(rate, if rng.below(5) == 0 { None } else { Some(last) }),
        };
        let placed_ago = rng.below(4) as i64 * HOUR_MS;
        objects.push(obj(&format!("k{i:03}"), size, names[on], placed_ago, d));
    }
    let tiers = (0..count)
        .map(|t| {
            // Some tiers full, some with room, some already over, some unlimited.
            let capacity = match rng.below(4) {
                0 => None,
                1 => Some(used[t]),
                2 => Some(used[t] + rng.below(100)),
                _ => Some(used[t].saturating_sub(rng.below(40))),
            };
            tier(names[t], capacity, used[t], rng.below(3) as i64 * HOUR_MS)
        })
        .collect();
    let classes = if rng.below(2) == 0 {
        ClassTiers::default_for(count)
    } else {
        ClassTiers {
            hot: vec![0],
            warm: vec![0, 1],
            cold: vec![count - 1],
        }
    };
    let planner = Planner::new(tiers, classes, 1 + rng.below(30) as usize).unwrap();
    (planner, objects)
}

#[test]
fn no_schedule_of_a_plan_overfills_a_tier() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let (mut moves_seen, mut evictions, mut full_waits, mut with_after) = (0, 0, 0, 0);
    for _ in 0..400 {
        let (planner, objects) = random_scenario(&mut rng);
        let plan = planner.plan(NOW, &objects);
        let tiers = planner.tiers();
        let index = |name: &str| tiers.iter().position(|t| t.name == name).unwrap();

        // Each object moves at most once, from where it is, somewhere else.
        let mut keys: Vec<&str> = plan.moves.iter().map(|m| m.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), plan.moves.len());
        assert!(plan.moves.len() <= planner.max_moves());
        for (i, m) in plan.moves.iter().enumerate() {
            let o = objects.iter().find(|o| o.key == m.key).unwrap();
            assert_eq!(m.from, o.tier);
            assert_ne!(m.from, m.to);
            assert!(
                m.after.iter().all(|&d| d < i),
                "dependencies point backwards"
            );
        }
        // Identical input, identical plan; input order does not matter.
        let mut reversed = objects.clone();
        reversed.reverse();
        assert_eq!(planner.plan(NOW, &reversed), plan);

        // Random schedules: a move may start once its dependencies are done; its bytes
        // arrive when it starts and leave the source when it is done.
        for _ in 0..20 {
            let mut used: Vec<u64> = tiers.iter().map(|t| t.used_bytes).collect();
            let start_ok: Vec<bool> = tiers
                .iter()
                .map(|t| t.capacity.is_none_or(|c| t.used_bytes <= c))
                .collect();
            let mut state = vec![0u8; plan.moves.len()]; // 0 waiting, 1 running, 2 done
            loop {
                let startable: Vec<usize> = (0..plan.moves.len())
                    .filter(|&i| {
                        state[i] == 0 && plan.moves[i].after.iter().all(|&d| state[d] == 2)
                    })
                    .collect();
                let running: Vec<usize> =
                    (0..plan.moves.len()).filter(|&i| state[i] == 1).collect();
                if startable.is_empty() && running.is_empty() {
                    break;
                }
                let pick = rng.below((startable.len() + running.len()) as u64) as usize;
                if pick < startable.len() {
                    let m = &plan.moves[startable[pick]];
                    let to = index(&m.to);
                    used[to] += m.size;
                    if let Some(cap) = tiers[to].capacity {
                        // A tier never holds more than its capacity, or, when it started
                        // over it, more than it started with.
                        let limit = if start_ok[to] {
                            cap
                        } else {
                            tiers[to].used_bytes
                        };
                        assert!(
                            used[to] <= limit,
                            "tier {} overfilled: {} > {limit}\n{plan:#?}",
                            m.to,
                            used[to]
                        );
                    }
                    state[startable[pick]] = 1;
                } else {
                    let i = running[pick - startable.len()];
                    used[index(&plan.moves[i].from)] -= plan.moves[i].size;
                    state[i] = 2;
                }
            }
            assert!(
                state.iter().all(|&s| s == 2),
                "every move can run: no dependency cycle"
            );
        }
        moves_seen += plan.moves.len();
        evictions += plan
            .moves
            .iter()
            .filter(|m| m.reason == Reason::CapacityFullDemote)
            .count();
        full_waits += plan
            .waits
            .iter()
            .filter(|w| w.reason == Reason::TierFullWait)
            .count();
        with_after += plan.moves.iter().filter(|m| !m.after.is_empty()).count();
    }
    // The scenarios exercise every part of the planner.
    println!("{moves_seen} moves, {evictions} evictions, {full_waits} full waits, {with_after} with dependencies");
    assert!(moves_seen > 500, "{moves_seen} moves");
    assert!(evictions > 50, "{evictions} evictions");
    assert!(full_waits > 50, "{full_waits} waits on full tiers");
    assert!(with_after > 50, "{with_after} moves with dependencies");
}
