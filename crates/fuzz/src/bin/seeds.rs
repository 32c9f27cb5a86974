//! `strata-fuzz-seeds DIR`: writes every target's seeds as `DIR/<target>/seed-N`, the input
//! folders of a fuzzing run (the repository's `corpus/` was made this way).

use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: strata-fuzz-seeds DIR (writes DIR/<target>/seed-N)");
        std::process::exit(2);
    };
    for target in strata_fuzz::TARGETS {
        let folder = dir.join(target.name);
        if let Err(err) = std::fs::create_dir_all(&folder) {
            eprintln!(
                "strata-fuzz-seeds: cannot create {}: {err}",
                folder.display()
            );
            std::process::exit(1);
        }
        for (i, seed) in strata_fuzz::seeds::of(target.name).iter().enumerate() {
            let path = folder.join(format!("seed-{i}"));
            if let Err(err) = std::fs::write(&path, seed) {
                eprintln!("strata-fuzz-seeds: cannot write {}: {err}", path.display());
                std::process::exit(1);
            }
        }
    }
}
