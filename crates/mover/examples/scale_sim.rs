//! Projects the scaling of `strata worker` to many nodes: a discrete-event simulation of a
//! distributed migration, calibrated with what one machine measures (issue 14).
//!
//! The model has what a distributed job shares and what each node does alone:
//!
//! - the **queue** (NATS JetStream): one server, first come first served; each task
//!   visits it twice (fetched, then acknowledged), `--queue-us` in all;
//! - the **catalog** (SQLite or PostgreSQL): one server, first come first served; each
//!   task's records (its verified chunks, its files done, the finish claim) take
//!   `--catalog-us` of it;
//! - **N workers**, each working a task for `--task-ms` (log-normal with coefficient of
//!   variation `--task-cv`; a fraction `--slow-fraction` of the nodes is `--slow-factor`
//!   times slower), each also writing a heartbeat to the catalog every
//!   `--heartbeat-every-s` seconds that takes `--heartbeat-us` of it: the share of the
//!   catalog the heartbeats of N workers take is taken from what the tasks get.
//!
//! A job of `--tasks` tasks runs at 1 worker and at each N of `--workers`; speed-up is
//! T(1) / T(N), efficiency speed-up / N. The busy share of the queue and the catalog says
//! which one a larger N meets first. Deterministic (`--seed`).
//!
//! ```text
//! cargo run --release -p strata-mover --example scale_sim -- \
//!     --task-ms 2000 --catalog-us 900 --queue-us 250 --tasks 200000 \
//!     --workers 1,2,4,8,100,1000
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the simulation is told.
#[derive(Clone, Debug)]
struct Model {
    task_ms: f64,
    task_cv: f64,
    catalog_us: f64,
    queue_us: f64,
    tasks: u64,
    slow_fraction: f64,
    slow_factor: f64,
    heartbeat_us: f64,
    heartbeat_every_s: f64,
    seed: u64,
}

/// One run's outcome.
#[derive(Debug)]
struct Run {
    makespan_s: f64,
    queue_busy: f64,
    catalog_busy: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// The worker asks the queue for a task.
    Fetch,
    /// The worker's task is done; its records go to the catalog.
    Record,
    /// The records are in; the task is acknowledged.
    Ack,
}

/// Times in nanoseconds, so the event heap orders integers.
fn ns(ms: f64) -> u64 {
    (ms * 1e6).max(0.0) as u64
}

/// A log-normal factor of mean 1 and coefficient of variation `cv`.
fn spread(rng: &mut StdRng, cv: f64) -> f64 {
    if cv <= 0.0 {
        return 1.0;
    }
    let sigma2 = (1.0 + cv * cv).ln();
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (sigma2.sqrt() * normal - sigma2 / 2.0).exp()
}

fn simulate(model: &Model, workers: usize) -> Run {
    let mut rng = StdRng::seed_from_u64(model.seed);
    let slow = (workers as f64 * model.slow_fraction).round() as usize;
    let speed: Vec<f64> = (0..workers)
        .map(|w| if w < slow { model.slow_factor } else { 1.0 })
        .collect();
    let half_queue = ns(model.queue_us / 2e3);
    // The heartbeats' share of the catalog: what is left serves the tasks, slower.
    let heartbeat_share =
        (workers as f64 / model.heartbeat_every_s.max(1e-3) * model.heartbeat_us / 1e6).min(0.99);
    let catalog = ns(model.catalog_us / 1e3 / (1.0 - heartbeat_share));
    let (mut queue_free, mut catalog_free) = (0u64, 0u64);
    let (mut queue_busy, mut catalog_busy) = (0u64, 0u64);
    let mut left = model.tasks;
    let mut end = 0u64;
    let mut events: BinaryHeap<Reverse<(u64, usize, Step)>> =
        (0..workers).map(|w| Reverse((0, w, Step::Fetch))).collect();
    // Events are handled in time order, so each server serves its visitors in the order
    // they arrive: its next start is the later of the arrival and its last finish.
    while let Some(Reverse((at, worker, step))) = events.pop() {
        match step {
            Step::Fetch if left == 0 => end = end.max(at),
            Step::Fetch => {
                left -= 1;
                let start = at.max(queue_free);
                queue_free = start + half_queue;
                queue_busy += half_queue;
                let work = model.task_ms * speed[worker] * spread(&mut rng, model.task_cv);
                events.push(Reverse((queue_free + ns(work), worker, Step::Record)));
            }
            Step::Record => {
                let start = at.max(catalog_free);
                catalog_free = start + catalog;
                catalog_busy += catalog;
                events.push(Reverse((catalog_free, worker, Step::Ack)));
            }
            Step::Ack => {
                let start = at.max(queue_free);
                queue_free = start + half_queue;
                queue_busy += half_queue;
                events.push(Reverse((queue_free, worker, Step::Fetch)));
            }
        }
    }
    let makespan = end.max(1) as f64;
    Run {
        makespan_s: makespan / 1e9,
        queue_busy: queue_busy as f64 / makespan,
        catalog_busy: catalog_busy as f64 / makespan,
    }
}

/// What holds `run` back, in words.
fn bottleneck(run: &Run, efficiency: f64) -> &'static str {
    if efficiency >= 0.9 {
        "none (>= 90%)"
    } else if run.catalog_busy >= 0.9 && run.catalog_busy >= run.queue_busy {
        "catalog"
    } else if run.queue_busy >= 0.9 {
        "queue"
    } else {
        "tail (too few tasks per worker, or slow nodes)"
    }
}

fn parse_args() -> Result<(Model, Vec<usize>), String> {
    let mut model = Model {
        task_ms: 2000.0,
        task_cv: 0.3,
        catalog_us: 1000.0,
        queue_us: 250.0,
        tasks: 200_000,
        slow_fraction: 0.0,
        slow_factor: 2.0,
        heartbeat_us: 0.0,
        heartbeat_every_s: 2.0,
        seed: 1,
    };
    let mut workers = vec![1, 2, 4, 8, 100, 1000];
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| format!("{flag} takes a number, not {value:?}"))
        };
        match flag.as_str() {
            "--task-ms" => model.task_ms = number()?,
            "--task-cv" => model.task_cv = number()?,
            "--catalog-us" => model.catalog_us = number()?,
            "--queue-us" => model.queue_us = number()?,
            "--tasks" => model.tasks = number()? as u64,
            "--slow-fraction" => model.slow_fraction = number()?,
            "--slow-factor" => model.slow_factor = number()?,
            "--heartbeat-us" => model.heartbeat_us = number()?,
            "--heartbeat-every-s" => model.heartbeat_every_s = number()?,
            "--seed" => model.seed = number()? as u64,
            "--workers" => {
                workers = value
                    .split(',')
                    .map(|w| {
                        w.trim()
                            .parse::<usize>()
                            .map_err(|_| format!("bad --workers {w:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if workers.contains(&0) || model.tasks == 0 {
        return Err("--workers and --tasks must be at least 1".into());
    }
    Ok((model, workers))
}

fn main() {
    let (model, workers) = match parse_args() {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("scale_sim: {error}");
            std::process::exit(2);
        }
    };
    println!("{model:?}");
    let one = simulate(&model, 1);
    println!("| workers | job time | speed-up | efficiency | queue busy | catalog busy | what limits it |");
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for &n in &workers {
        let run = simulate(&model, n);
        let speedup = one.makespan_s / run.makespan_s;
        let efficiency = speedup / n as f64;
        println!(
            "| {n} | {:.1} s | {speedup:.1} | {:.1}% | {:.0}% | {:.0}% | {} |",
            run.makespan_s,
            efficiency * 100.0,
            run.queue_busy * 100.0,
            run.catalog_busy * 100.0,
            bottleneck(&run, efficiency)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            task_ms: 100.0,
            task_cv: 0.0,
            catalog_us: 1000.0,
            queue_us: 0.0,
            tasks: 1000,
            slow_fraction: 0.0,
            slow_factor: 1.0,
            heartbeat_us: 0.0,
            heartbeat_every_s: 2.0,
            seed: 7,
        }
    }

    #[test]
    fn one_worker_takes_every_step_of_every_task_in_turn() {
        let run = simulate(&model(), 1);
        assert!((run.makespan_s - 1000.0 * 0.101).abs() < 1e-6, "{run:?}");
    }

    #[test]
    fn a_shared_catalog_caps_the_job_at_its_rate() {
        // 1 ms of catalog per task: 1,000 tasks can never take less than 1 s.
        let run = simulate(&model(), 1000);
        assert!(run.makespan_s >= 1.0 - 1e-9, "{run:?}");
        assert!(run.catalog_busy > 0.9, "{run:?}");
        let few = simulate(&model(), 10);
        assert!((few.makespan_s - 100.0 * 0.101).abs() < 0.05, "{few:?}");
    }

    #[test]
    fn heartbeats_take_their_share_of_the_catalog() {
        // 1,000 workers beating every 2 s at 1 ms each take half the catalog: the tasks'
        // 1 ms records then take 2 ms of it, so 1,000 tasks take at least 2 s.
        let beating = Model {
            heartbeat_us: 1000.0,
            ..model()
        };
        let run = simulate(&beating, 1000);
        assert!(run.makespan_s >= 2.0 - 1e-9, "{run:?}");
        let alone = simulate(&model(), 1000);
        assert!(run.makespan_s > alone.makespan_s * 1.5, "{run:?} {alone:?}");
    }
}
