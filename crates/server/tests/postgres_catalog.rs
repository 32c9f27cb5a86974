//! The service on a PostgreSQL catalog (`ServeOptions::shared_catalog`, a real server from
//! `strata-testsupport`): objects written and read, a spike moved through the whole move
//! life cycle, and a restart that finds both in the shared catalog and nothing in the
//! data dir's SQLite file.

mod common;

use std::time::Duration;

use common::*;
use strata_catalog::{PostgresCatalog, PostgresUrl, TieringCatalog};
use strata_server::ServeOptions;
use strata_testsupport::postgres;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_keeps_its_state_in_a_shared_postgres_catalog() {
    let url = PostgresUrl::parse(&postgres::shared().fresh_database()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = ServeOptions::new(config(dir.path(), TEST_RULES));
    options.shared_catalog = Some(url.clone());
    let mut server = start_options(dir, options).await;
    assert!(server
        .server
        .as_ref()
        .unwrap()
        .catalog_path()
        .starts_with("postgres://"));

    let data = bytes(200_000, 3);
    assert!(server.put("runs/a.nc", &data).await.status().is_success());
    assert_eq!(server.object("runs/a.nc").await, data);
    assert_eq!(server.tier_of("runs/a.nc").await, "warm");
    server.reads("runs/a.nc", 30).await;
    eventually(WAIT, "the spike's move to finish", || async {
        let jobs = server.json("/v1/jobs?key=runs/a.nc").await;
        jobs["jobs"]
            .as_array()
            .and_then(|jobs| jobs.first().cloned())
            .filter(|job| job["state"] == "done")
    })
    .await;
    assert_eq!(server.tier_of("runs/a.nc").await, "hot");
    let dir = server.stop().await;

    // The shared catalog holds the object on its new tier; the data dir has no catalog.
    let catalog = PostgresCatalog::open(&url).await.unwrap();
    let placed = catalog.placed_object("runs/a.nc").await.unwrap().unwrap();
    assert_eq!(placed.tier, "hot");
    assert_eq!(placed.object.size, data.len() as u64);
    catalog.close().await;
    assert!(!dir.path().join("catalog.db").exists());

    // A restart on the same catalog serves it.
    let mut options = ServeOptions::new(config(dir.path(), TEST_RULES));
    options.shared_catalog = Some(url);
    let mut server = start_options(dir, options).await;
    assert_eq!(server.object("runs/a.nc").await, data);
    assert_eq!(server.tier_of("runs/a.nc").await, "hot");
    server.stop().await;
}
