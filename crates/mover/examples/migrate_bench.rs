//! A migration of one local directory to another through the mover alone (no CLI, no
//! service), for profiling the copy pipeline with a short build:
//! `cargo run --release -p strata-mover --example migrate_bench -- SRC DST [CHUNK_BYTES]`.
//! Prints the wall time, the bytes copied and the rate. DST and `DST.db` must not exist.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use strata_catalog::SqliteCatalog;
use strata_mover::{DatasetSource, MigrateOptions, MigrationJob, Progress, TargetLayout};
use strata_store::{S3Options, Store, StoreUri};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    strata_store::allocator::tune_for_spans();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst, rest @ ..] = args.as_slice() else {
        return Err("usage: migrate_bench SRC DST [CHUNK_BYTES]".into());
    };
    let mut options = MigrateOptions {
        settle: strata_mover::SettleOptions {
            settle: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    // MIGRATE_BENCH_VERIFY=sent|cache|device: as `strata migrate --verify`.
    if let Ok(mode) = std::env::var("MIGRATE_BENCH_VERIFY") {
        options.verify = mode.parse()?;
    }
    if let Some(chunk) = rest.first() {
        options.chunk_size = chunk.parse()?;
    }
    let s3 = S3Options::default();
    let source = Store::open(&StoreUri::parse(src)?, &s3).await?;
    let source = DatasetSource::open(source, None).await?;
    let destination = Store::open(&StoreUri::parse(dst)?, &s3).await?;
    let catalog = Arc::new(SqliteCatalog::open(Path::new(&format!("{dst}.db"))).await?);
    let job = MigrationJob::new(source, destination, options, TargetLayout::Plain, None)?;
    let began = Instant::now();
    let report = job.copy(catalog, Arc::new(Progress::default())).await?;
    let secs = began.elapsed().as_secs_f64();
    let bytes = report.bytes;
    println!(
        "{secs:.2} s, {bytes} bytes, {:.0} MB/s",
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
