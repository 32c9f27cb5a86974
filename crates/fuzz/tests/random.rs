//! Every target on random bytes and on random mutations of its seeds (proptest). The
//! number of cases per target is proptest's default (256) unless `PROPTEST_CASES` says
//! otherwise; the longer run in docs/BENCHMARKS.md sets it. A failing case is shrunk and
//! printed; add it to `corpus/<target>/` when the parser is fixed.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use strata_fuzz::{seeds, Target, TARGETS};

/// One change to an input.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
    Truncate { at: usize },
    Splice { at: usize, from: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (at, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (at, 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, any::<usize>(), 1usize..32).prop_map(|(at, from, len)| Mutation::Splice {
            at,
            from,
            len
        }),
    ]
}

fn apply(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = data.len();
        let pos = |at: usize| if len == 0 { 0 } else { at % len };
        match m {
            Mutation::Flip { at, bit } if len > 0 => data[pos(*at)] ^= 1 << bit,
            Mutation::Set { at, byte } if len > 0 => data[pos(*at)] = *byte,
            Mutation::Insert { at, bytes } => {
                let at = if len == 0 { 0 } else { at % (len + 1) };
                data.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove { at, len: n } if len > 0 => {
                let at = pos(*at);
                data.drain(at..(at + n).min(len));
            }
            Mutation::Truncate { at } => data.truncate(if len == 0 { 0 } else { at % len }),
            Mutation::Splice { at, from, len: n } if len > 0 => {
                let from = pos(*from);
                let piece: Vec<u8> = data[from..(from + n).min(len)].to_vec();
                let at = pos(*at);
                data.splice(at..at, piece);
            }
            _ => {}
        }
    }
    data
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    })
}

/// Random bytes into `target`.
fn random_bytes(target: &Target) {
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..512), |data| {
            (target.run)(&data);
            Ok(())
        })
        .unwrap_or_else(|err| panic!("target {}: {err}", target.name));
}

/// Random mutations of `target`'s seeds into it.
fn mutated_seeds(target: &Target) {
    let seeds = seeds::of(target.name);
    assert!(!seeds.is_empty(), "target {} has no seeds", target.name);
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..6));
    runner()
        .run(&strategy, |(seed, mutations)| {
            (target.run)(&apply(seeds[seed].clone(), &mutations));
            Ok(())
        })
        .unwrap_or_else(|err| panic!("target {}: {err}", target.name));
}

#[test]
fn every_seed_is_accepted_whole_by_its_target() {
    for target in TARGETS {
        for seed in seeds::of(target.name) {
            (target.run)(&seed);
        }
    }
}

macro_rules! fuzz_tests {
    ($($name:ident),* $(,)?) => {
        mod random_bytes {
            $(#[test]
            fn $name() {
                super::random_bytes(strata_fuzz::target(stringify!($name)).unwrap());
            })*
        }
        mod mutated_seeds {
            $(#[test]
            fn $name() {
                super::mutated_seeds(strata_fuzz::target(stringify!($name)).unwrap());
            })*
        }
    };
}

fuzz_tests!(
    frame,
    encrypted_frame,
    manifest,
    packed_index,
    layout_marker,
    parity_map,
    tier_object,
    fragment,
    replica_sums,
    config,
    uri,
    key,
    access_events,
    chaos_request,
    trace,
);

#[test]
fn every_target_has_its_tests() {
    let listed = [
        "frame",
        "encrypted_frame",
        "manifest",
        "packed_index",
        "layout_marker",
        "parity_map",
        "tier_object",
        "fragment",
        "replica_sums",
        "config",
        "uri",
        "key",
        "access_events",
        "chaos_request",
        "trace",
    ];
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        names, listed,
        "a target added to TARGETS needs its line in fuzz_tests!"
    );
}
