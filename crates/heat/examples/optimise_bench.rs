//! The optimiser's speed and the scalable method's gap to the exact one.
//!
//! Random placement problems on the example configuration's tiers (nvme 2 ms... see
//! `crates/server/strata.example.toml`) with capacity that binds: objects of 4 KiB to
//! 64 MiB (log-uniform), 0.001 to 100 expected reads per hour-long window (log-uniform),
//! on random tiers placed up to 120 days ago, a 30-day horizon; nvme's and disk's capacities
//! are set to half and two thirds of the bytes each object's cheapest tier alone would put
//! there.
//!
//! Prints: the Lagrangian method's time (CPU time of this thread, and wall time) on 10,000
//! and 1,000,000 objects with its cost, lower bound and gap; the MILP's time on 10,000
//! objects under a time limit (or the largest size it solved within it); and the
//! Lagrangian method's gap to the MILP's optimum on `--samples` random instances of 200 to
//! 2,000 objects.
//!
//! Run in release: `cargo run --release -p strata-heat --example optimise_bench
//! [--samples=20] [--milp-limit=SECONDS]`.

use std::time::{Duration, Instant};

use strata_heat::cost::CostModel;
use strata_heat::optimise::{
    solve_lagrangian, solve_milp, LagrangeOptions, ObjectSpec, Problem, Solution, TierSpec,
};
use strata_heat::units::{DAY_MS, HOUR_MS};
use strata_heat::TieringConfig;

const EXAMPLE_CONFIG: &str = include_str!("../../server/strata.example.toml");
const NOW: i64 = 1_767_225_600_000;

/// SplitMix64: reproducible instances.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn arg(name: &str) -> Option<f64> {
    std::env::args().find_map(|a| a.strip_prefix(name).and_then(|v| v.parse().ok()))
}

fn instance(config: &TieringConfig, objects: usize, seed: u64) -> Problem {
    let mut rng = Rng(seed);
    let count = config.tiers.len();
    let objects = (0..objects)
        .map(|_| {
            let size = 4096.0 * 16384f64.powf(rng.unit());
            let reads = 10f64.powf(rng.unit() * 5.0 - 3.0);
            let tier = (rng.unit() * count as f64) as usize % count;
            let placed = NOW - (rng.unit() * 120.0 * DAY_MS as f64) as i64;
            ObjectSpec::new(size as u64, tier, placed, reads)
        })
        .collect();
    let tiers = config
        .tiers
        .iter()
        .map(|tier| TierSpec {
            name: tier.name.clone(),
            capacity: None,
            min_residency_ms: tier.min_residency.as_millis() as i64,
        })
        .collect();
    let mut problem = Problem {
        model: CostModel::new(config),
        tiers,
        objects,
        now_ms: NOW,
        window_ms: HOUR_MS,
        horizon_windows: 720.0,
    };
    bind_capacity(&mut problem);
    problem
}

/// Half of what nvme would take with unlimited room, two thirds of disk's, never less than
/// what minimum residency holds there.
fn bind_capacity(problem: &mut Problem) {
    let count = problem.tiers.len();
    let (mut wanted, mut held) = (vec![0u64; count], vec![0u64; count]);
    for i in 0..problem.objects.len() {
        let allowed: Vec<usize> = (0..count).filter(|&t| problem.allowed(i, t)).collect();
        let best = allowed
            .iter()
            .copied()
            .min_by(|&a, &b| problem.cost(i, a).total_cmp(&problem.cost(i, b)))
            .unwrap_or(problem.objects[i].tier);
        wanted[best] += problem.objects[i].size;
        if let [only] = allowed[..] {
            held[only] += problem.objects[i].size;
        }
    }
    for (t, share) in [(0, 0.5), (1, 2.0 / 3.0)] {
        if t + 1 < count {
            let capacity = (wanted[t] as f64 * share) as u64;
            problem.tiers[t].capacity = Some(capacity.max(held[t]));
        }
    }
}

/// This thread's time on a CPU, seconds, if the system says.
fn cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status == 0 {
        now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
    } else {
        f64::NAN
    }
}

fn timed<T>(run: impl FnOnce() -> T) -> (T, f64, f64) {
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let out = run();
    (out, cpu_seconds() - cpu, wall.elapsed().as_secs_f64())
}

fn describe(solution: &Solution) -> String {
    format!(
        "cost ${:.2}, lower bound ${:.2}, gap {:.3}%",
        solution.cost,
        solution.lower_bound,
        solution.gap() * 100.0
    )
}

fn main() {
    let config = TieringConfig::parse(EXAMPLE_CONFIG).expect("the example config parses");
    let limit = Duration::from_secs_f64(arg("--milp-limit=").unwrap_or(300.0));
    if let (Some(n), Some(seed)) = (arg("--milp-child="), arg("--seed=")) {
        return milp_child(&config, n as usize, seed as u64, limit);
    }
    let samples = arg("--samples=").map_or(20, |n| n as usize);
    let options = LagrangeOptions::default();
    println!("Lagrangian method (prices for capacity + repair):");
    for n in [10_000, 1_000_000] {
        let problem = instance(&config, n, n as u64);
        let (solved, cpu, wall) = timed(|| solve_lagrangian(&problem, &options));
        match solved {
            Ok(s) => println!(
                "  {n:>9} objects: {cpu:.2} s CPU, {wall:.2} s wall; {}",
                describe(&s)
            ),
            Err(err) => println!("  {n:>9} objects: failed: {err}"),
        }
    }
    println!(
        "MILP (good_lp + microlp), at most {} s each:",
        limit.as_secs()
    );
    for n in [10_000, 5_000, 2_000, 1_000] {
        match milp_in_child(n, n as u64, limit) {
            Some(line) => {
                println!("  {n:>9} objects: {}", milp_text(&line));
                if line.starts_with("optimal") {
                    break;
                }
            }
            None => println!(
                "  {n:>9} objects: no answer within {} s (stopped)",
                limit.as_secs()
            ),
        }
    }
    sample_gaps(&config, samples, limit, &options);
}

/// `--milp-child=N --seed=S`: solves one instance and prints `optimal|limit COST BOUND
/// CPU WALL`.
fn milp_child(config: &TieringConfig, n: usize, seed: u64, limit: Duration) {
    let problem = instance(config, n, seed);
    let (solved, cpu, wall) = timed(|| solve_milp(&problem, Some(limit)));
    match solved {
        Ok(s) if s.lower_bound.is_finite() => {
            println!("optimal {} {} {cpu} {wall}", s.cost, s.lower_bound)
        }
        Ok(s) => println!("limit {} NaN {cpu} {wall}", s.cost),
        Err(err) => println!("error {err}"),
    }
}

/// Runs the MILP in a child process, so that a solve that overruns (microlp checks its
/// time limit only between branch-and-bound nodes) can be stopped; its answer line, `None`
/// if stopped.
fn milp_in_child(n: usize, seed: u64, limit: Duration) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let mut child = std::process::Command::new(exe)
        .arg(format!("--milp-child={n}"))
        .arg(format!("--seed={seed}"))
        .arg(format!("--milp-limit={}", limit.as_secs_f64()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + limit + Duration::from_secs(5);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut line = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut()?, &mut line).ok()?;
    Some(line.trim().to_string())
}

/// The line of a child for people.
fn milp_text(line: &str) -> String {
    let number = |text: &str| text.parse::<f64>().unwrap_or(f64::NAN);
    match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["optimal", cost, _, cpu, wall] => format!(
            "optimal, ${:.2}, in {:.2} s CPU, {:.2} s wall",
            number(cost),
            number(cpu),
            number(wall)
        ),
        ["limit", cost, ..] => format!("not proven optimal within the limit (best ${cost})"),
        _ => line.to_string(),
    }
}

/// The MILP's proven optimum and wall time for the instance `(n, seed)`.
fn milp_optimum(n: usize, seed: u64, limit: Duration) -> Option<(f64, f64)> {
    let line = milp_in_child(n, seed, limit)?;
    match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["optimal", cost, _, _, wall] => Some((cost.parse().ok()?, wall.parse().ok()?)),
        _ => None,
    }
}

/// The Lagrangian method against the MILP on random instances of 200 to 2,000 objects.
fn sample_gaps(config: &TieringConfig, samples: usize, limit: Duration, options: &LagrangeOptions) {
    println!("Gap of the Lagrangian method to the MILP, {samples} instances of 200-2,000 objects:");
    let mut rng = Rng(2026);
    let mut gaps = Vec::new();
    let (mut milp_time, mut lagrange_time) = (0.0, 0.0);
    for sample in 0..samples {
        let n = 200 + (rng.unit() * 1800.0) as usize;
        let seed = rng.next() >> 12;
        let problem = instance(config, n, seed);
        let (found, _, found_wall) = timed(|| solve_lagrangian(&problem, options));
        let (Some((exact, exact_wall)), Ok(found)) = (milp_optimum(n, seed, limit), found) else {
            println!(
                "  #{sample:<2} {n:>5} objects: skipped (no proven MILP optimum within the limit)"
            );
            continue;
        };
        milp_time += exact_wall;
        lagrange_time += found_wall;
        let gap = (found.cost - exact) / exact;
        gaps.push(gap);
        println!(
            "  #{sample:<2} {n:>5} objects: MILP ${exact:.4} in {exact_wall:.2} s, Lagrangian ${:.4} in {found_wall:.3} s: {:.3}% above (its own bound says <= {:.3}%)",
            found.cost,
            gap * 100.0,
            found.gap() * 100.0
        );
    }
    if gaps.is_empty() {
        return;
    }
    gaps.sort_by(f64::total_cmp);
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    println!(
        "  {} instances: gap mean {:.3}%, median {:.3}%, worst {:.3}%; MILP {:.1} s, Lagrangian {:.2} s in all (wall)",
        gaps.len(),
        mean * 100.0,
        gaps[gaps.len() / 2] * 100.0,
        gaps[gaps.len() - 1] * 100.0,
        milp_time,
        lagrange_time
    );
}
