//! Scale check, ignored by default: a million-file plan through every bulk call, with
//! timings printed (no assertions on them; the machine decides). Run it with
//! `cargo test --release -p strata-catalog --test scale -- --ignored --nocapture`
//! (`STRATA_SCALE_FILES` changes the file count).

use std::time::Instant;

use strata_catalog::{
    Catalog, FileState, FileUpdate, JobSpec, PlannedFile, SqliteCatalog, VerifiedChunk,
};

#[tokio::test]
#[ignore = "slow; run in release to measure"]
async fn million_file_plan() {
    let files: u32 = std::env::var("STRATA_SCALE_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let spec = JobSpec {
        source: "file:///climate".into(),
        destination: "s3://archive/climate".into(),
        chunk_size: 4 << 20,
        options_json: "{}".into(),
    };
    let id = catalog.create_job(&spec).await.unwrap();
    let plan: Vec<_> = (0..files)
        .map(|i| PlannedFile {
            index: i,
            path: format!("run-{:04}/output/data-{i:08}.nc", i / 1000),
            size: u64::from(i) * 1000 + 17,
            mtime_ns: Some(1_700_000_000_000_000_000),
            mode: Some(0o644),
        })
        .collect();

    let timed = Instant::now();
    catalog.replace_plan(id, &plan).await.unwrap();
    println!("replace_plan, {files} files: {:?}", timed.elapsed());
    let timed = Instant::now();
    catalog.replace_plan(id, &plan).await.unwrap();
    println!("replace_plan over an existing plan: {:?}", timed.elapsed());
    let timed = Instant::now();
    assert_eq!(catalog.load_files(id).await.unwrap().len(), plan.len());
    println!("load_files: {:?}", timed.elapsed());
    let timed = Instant::now();
    assert!(catalog.job(id).await.unwrap().is_some());
    println!("job summary: {:?}", timed.elapsed());

    let updates: Vec<_> = (0..files.min(100_000))
        .map(|index| FileUpdate {
            index,
            state: FileState::Done,
            hash: Some([1; 32]),
            error: None,
        })
        .collect();
    let timed = Instant::now();
    catalog.update_files(id, &updates).await.unwrap();
    println!(
        "update_files, {} files: {:?}",
        updates.len(),
        timed.elapsed()
    );

    // The mover's rhythm: a few hundred chunks per call.
    let calls = 200u32;
    let timed = Instant::now();
    for call in 0..calls {
        let chunks: Vec<_> = (0..300u32)
            .map(|k| VerifiedChunk {
                file_index: (call * 300 + k) % files,
                chunk_index: 0,
                chaining_value: [2; 32],
            })
            .collect();
        catalog.record_verified_chunks(id, &chunks).await.unwrap();
    }
    println!(
        "record_verified_chunks, 300 chunks: {:?} per call",
        timed.elapsed() / calls
    );

    let timed = Instant::now();
    let report = catalog.check().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    println!(
        "check (integrity_check and every row checksum): {:?}",
        timed.elapsed()
    );

    catalog.close().await;
    let timed = Instant::now();
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let size = std::fs::metadata(&path).unwrap().len() >> 20;
    println!("reopen with quick_check, {size} MiB: {:?}", timed.elapsed());
    let timed = Instant::now();
    catalog.delete_job(id).await.unwrap();
    println!("delete_job: {:?}", timed.elapsed());
}
