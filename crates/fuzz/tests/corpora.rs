//! Replays every file of `corpus/<target>/` through its target: the seeds, and every input
//! a fuzzer found that once broke a parser (kept so the fix stays fixed).

use std::path::Path;

use strata_fuzz::TARGETS;

#[test]
fn every_corpus_file_replays_without_a_broken_promise() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut replayed = 0;
    for target in TARGETS {
        let folder = root.join(target.name);
        let entries = std::fs::read_dir(&folder).unwrap_or_else(|err| {
            panic!("{}: {err} (every target has a corpus)", folder.display())
        });
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| (target.run)(&data));
            assert!(
                outcome.is_ok(),
                "{} broke target {}",
                path.display(),
                target.name
            );
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len(), "only {replayed} corpus files");
}
