//! The AFL++ entry point: `strata-fuzz-afl TARGET` runs one target on each input AFL++
//! gives it (persistent mode). Built only with `cargo afl build --features afl`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = strata_fuzz::target(&name) else {
        let names: Vec<&str> = strata_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!(
            "strata-fuzz-afl: unknown target {name:?}; give one of: {}",
            names.join(", ")
        );
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| {
        (target.run)(data);
    });
}
