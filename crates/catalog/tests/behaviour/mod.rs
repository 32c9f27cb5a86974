//! The catalog behaviour suite: the [`Catalog`] contract, checked through `&dyn Catalog`
//! only, so that every engine (SQLite now, PostgreSQL later) runs the same tests. Each
//! check expects a fresh, empty catalog.
//!
//! An engine's test file includes this module and expands [`behaviour_suite!`] with an
//! async expression that opens a fresh catalog.

use strata_catalog::{
    Catalog, CatalogError, FileFinishClaim, FileState, FileUpdate, FinishClaim, JobSpec, JobState,
    PlannedFile, VerifiedChunk, WorkerRecord,
};

/// One `#[tokio::test]` per check, each on a fresh catalog from `$open` (an async block
/// returning `(guard, catalog)`; the guard, e.g. a temporary directory, lives as long as
/// the test).
#[macro_export]
macro_rules! behaviour_suite {
    ($open:expr) => {
        $crate::behaviour_suite!(@tests $open;
            create_and_find, uniqueness_and_input_checks, plan_replace, file_updates,
            chunk_upserts_are_idempotent, listing_order_and_progress, state_round_trip, a_job_never_moves_backwards,
            missing_jobs_are_reported, delete_job_removes_everything, large_plan,
            ranges_of_files_and_their_chunks,
            replanning_a_changed_file_resets_only_that_file, workers_announce_refresh_and_leave,
            one_task_finishes_a_job, one_range_task_finishes_a_split_file);
    };
    (@tests $open:expr; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (_guard, catalog) = $open.await;
                behaviour::$check(&catalog).await;
            }
        )*
    };
}

pub fn spec(source: &str, destination: &str) -> JobSpec {
    JobSpec {
        source: source.into(),
        destination: destination.into(),
        chunk_size: 4,
        options_json: r#"{"verify":true}"#.into(),
    }
}

pub fn file(index: u32, size: u64) -> PlannedFile {
    PlannedFile {
        index,
        path: format!("dir/file-{index}.dat"),
        size,
        mtime_ns: Some(1_700_000_000_000_000_000 + i64::from(index)),
        mode: Some(0o644),
    }
}

pub fn chunk(file_index: u32, chunk_index: u64, fill: u8) -> VerifiedChunk {
    VerifiedChunk {
        file_index,
        chunk_index,
        chaining_value: [fill; 32],
    }
}

pub fn update(index: u32, state: FileState, fill: Option<u8>, error: Option<&str>) -> FileUpdate {
    FileUpdate {
        index,
        state,
        hash: fill.map(|fill| [fill; 32]),
        error: error.map(str::to_owned),
    }
}

pub async fn create_and_find(catalog: &dyn Catalog) {
    let id = catalog
        .create_job(&spec("file:///a", "s3://b/c"))
        .await
        .unwrap();
    let found = catalog
        .find_job("file:///a", "s3://b/c")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.source, "file:///a");
    assert_eq!(found.destination, "s3://b/c");
    assert_eq!(found.state, JobState::Planned);
    assert_eq!(found.chunk_size, 4);
    assert_eq!(
        (found.files_total, found.files_done, found.files_failed),
        (0, 0, 0)
    );
    assert_eq!((found.bytes_total, found.bytes_done), (0, 0));
    assert!(found.created_at > 1_600_000_000);
    assert!(found.updated_at >= found.created_at);
    assert_eq!(
        (found.root_hash.as_deref(), found.last_error.as_deref()),
        (None, None)
    );
    assert_eq!(catalog.job(id).await.unwrap(), Some(found));
    assert_eq!(catalog.job_options(id).await.unwrap(), r#"{"verify":true}"#);

    assert_eq!(
        catalog.find_job("s3://b/c", "file:///a").await.unwrap(),
        None
    );
    assert_eq!(catalog.find_job("file:///a", "s3://b").await.unwrap(), None);
    assert_eq!(catalog.job(id + 1000).await.unwrap(), None);
}

pub async fn uniqueness_and_input_checks(catalog: &dyn Catalog) {
    let first = catalog.create_job(&spec("src", "dst")).await.unwrap();
    match catalog.create_job(&spec("src", "dst")).await {
        Err(CatalogError::JobExists {
            id,
            source_uri,
            destination_uri,
        }) => {
            assert_eq!(
                (id, source_uri.as_str(), destination_uri.as_str()),
                (first, "src", "dst")
            );
        }
        other => panic!("expected JobExists, got {other:?}"),
    }
    let second = catalog.create_job(&spec("src", "dst2")).await.unwrap();
    assert_ne!(first, second);

    let mut zero_chunks = spec("x", "y");
    zero_chunks.chunk_size = 0;
    let huge_chunks = JobSpec {
        chunk_size: u64::MAX,
        ..spec("x", "y")
    };
    let not_json = JobSpec {
        options_json: "verify=true".into(),
        ..spec("x", "y")
    };
    for bad in [zero_chunks, huge_chunks, not_json] {
        let err = catalog.create_job(&bad).await.unwrap_err();
        assert!(matches!(err, CatalogError::InvalidInput(_)), "{err:?}");
    }
    assert_eq!(catalog.find_job("x", "y").await.unwrap(), None);

    // Ids are never reused, even after a delete.
    catalog.delete_job(second).await.unwrap();
    let third = catalog.create_job(&spec("src", "dst2")).await.unwrap();
    assert!(third > second, "{third} reuses a deleted id {second}");
}

pub async fn plan_replace(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    // Any order in, index order out.
    catalog
        .replace_plan(id, &[file(2, 30), file(0, 10), file(1, 20)])
        .await
        .unwrap();
    let files = catalog.load_files(id).await.unwrap();
    assert_eq!(
        files.iter().map(|f| f.planned.clone()).collect::<Vec<_>>(),
        vec![file(0, 10), file(1, 20), file(2, 30)]
    );
    assert!(files
        .iter()
        .all(|f| f.state == FileState::Pending && f.hash.is_none() && f.error.is_none()));
    let optional_unset = PlannedFile {
        mtime_ns: None,
        mode: None,
        ..file(0, 0)
    };

    catalog
        .update_files(id, &[update(0, FileState::Done, Some(1), None)])
        .await
        .unwrap();
    catalog
        .record_verified_chunks(id, &[chunk(1, 0, 7), chunk(2, 3, 7)])
        .await
        .unwrap();

    // A replacement drops the old files and every chunk verified against them.
    catalog
        .replace_plan(id, &[file(1, 5), optional_unset.clone()])
        .await
        .unwrap();
    let files = catalog.load_files(id).await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].planned, optional_unset);
    assert_eq!(files[1].planned, file(1, 5));
    assert!(files
        .iter()
        .all(|f| f.state == FileState::Pending && f.hash.is_none()));
    assert!(catalog.verified_chunks(id).await.unwrap().is_empty());

    // Plans that are not exactly 0..n, or that cannot be stored, change nothing.
    let bad_plans = [
        vec![file(0, 1), file(2, 1)],
        vec![file(0, 1), file(0, 2)],
        vec![file(1, 1)],
        vec![file(0, u64::MAX)],
    ];
    for bad in &bad_plans {
        let err = catalog.replace_plan(id, bad).await.unwrap_err();
        assert!(matches!(err, CatalogError::InvalidInput(_)), "{err:?}");
    }
    assert_eq!(catalog.load_files(id).await.unwrap(), files);

    catalog.replace_plan(id, &[]).await.unwrap();
    assert!(catalog.load_files(id).await.unwrap().is_empty());
}

pub async fn file_updates(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    catalog
        .replace_plan(id, &[file(0, 1), file(1, 1), file(2, 1), file(3, 1)])
        .await
        .unwrap();
    catalog
        .update_files(
            id,
            &[
                update(0, FileState::Done, Some(0xaa), None),
                update(1, FileState::Failed, None, Some("permission denied")),
                update(2, FileState::Done, Some(1), None),
                // A later update of the same file wins.
                update(2, FileState::Skipped, Some(2), None),
            ],
        )
        .await
        .unwrap();
    let files = catalog.load_files(id).await.unwrap();
    let got: Vec<_> = files
        .iter()
        .map(|f| (f.state, f.hash, f.error.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (FileState::Done, Some([0xaa; 32]), None),
            (FileState::Failed, None, Some("permission denied")),
            (FileState::Skipped, Some([2; 32]), None),
            (FileState::Pending, None, None),
        ]
    );

    // Back to pending clears hash and error.
    catalog
        .update_files(id, &[update(1, FileState::Pending, None, None)])
        .await
        .unwrap();
    let files = catalog.load_files(id).await.unwrap();
    assert_eq!(
        (files[1].state, files[1].error.as_deref()),
        (FileState::Pending, None)
    );

    // An unknown index fails the whole batch.
    let err = catalog
        .update_files(
            id,
            &[
                update(3, FileState::Done, Some(3), None),
                update(4, FileState::Done, None, None),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, CatalogError::UnknownFile { id: e, index: 4 } if e == id),
        "{err:?}"
    );
    assert_eq!(
        catalog.load_files(id).await.unwrap()[3].state,
        FileState::Pending
    );

    catalog.update_files(id, &[]).await.unwrap();
}

pub async fn chunk_upserts_are_idempotent(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    catalog
        .replace_plan(id, &[file(0, 100), file(1, 100)])
        .await
        .unwrap();
    let batch = [
        chunk(1, 2, 12),
        chunk(0, 1, 1),
        chunk(0, 0, 0),
        chunk(1, 0, 10),
    ];
    catalog.record_verified_chunks(id, &batch).await.unwrap();
    catalog.record_verified_chunks(id, &batch).await.unwrap();
    let expected = vec![
        chunk(0, 0, 0),
        chunk(0, 1, 1),
        chunk(1, 0, 10),
        chunk(1, 2, 12),
    ];
    assert_eq!(catalog.verified_chunks(id).await.unwrap(), expected);

    // A new value replaces the old one, and within one call the last value wins.
    catalog
        .record_verified_chunks(id, &[chunk(0, 1, 50), chunk(0, 1, 51), chunk(0, 2, 2)])
        .await
        .unwrap();
    let expected = vec![
        chunk(0, 0, 0),
        chunk(0, 1, 51),
        chunk(0, 2, 2),
        chunk(1, 0, 10),
        chunk(1, 2, 12),
    ];
    assert_eq!(catalog.verified_chunks(id).await.unwrap(), expected);

    // A chunk of a file outside the plan fails the whole batch.
    let err = catalog
        .record_verified_chunks(id, &[chunk(0, 9, 9), chunk(7, 0, 7)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, CatalogError::UnknownFile { index: 7, .. }),
        "{err:?}"
    );
    assert_eq!(catalog.verified_chunks(id).await.unwrap(), expected);

    // Forgetting one file's chunks leaves the others'.
    catalog.forget_chunks(id, 0).await.unwrap();
    catalog.forget_chunks(id, 0).await.unwrap();
    assert_eq!(
        catalog.verified_chunks(id).await.unwrap(),
        vec![chunk(1, 0, 10), chunk(1, 2, 12)]
    );
    catalog.record_verified_chunks(id, &[]).await.unwrap();

    // Chunks belong to their job only.
    let other = catalog.create_job(&spec("a", "c")).await.unwrap();
    catalog.replace_plan(other, &[file(0, 4)]).await.unwrap();
    catalog
        .record_verified_chunks(other, &[chunk(0, 0, 99)])
        .await
        .unwrap();
    assert_eq!(catalog.verified_chunks(id).await.unwrap().len(), 2);
    assert_eq!(
        catalog.verified_chunks(other).await.unwrap(),
        vec![chunk(0, 0, 99)]
    );
}

pub async fn listing_order_and_progress(catalog: &dyn Catalog) {
    let first = catalog.create_job(&spec("one", "x")).await.unwrap();
    let second = catalog.create_job(&spec("two", "x")).await.unwrap();
    let third = catalog.create_job(&spec("three", "x")).await.unwrap();
    let ids: Vec<_> = catalog
        .list_jobs()
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, vec![third, second, first]);

    // Chunk size 4. Sizes: done 10, skipped 5, failed 7, pending 10 with chunks 0 and 2
    // verified (4 bytes, and the 2-byte tail), pending 3 with nothing verified.
    catalog
        .replace_plan(
            second,
            &[file(0, 10), file(1, 5), file(2, 7), file(3, 10), file(4, 3)],
        )
        .await
        .unwrap();
    catalog
        .update_files(
            second,
            &[
                update(0, FileState::Done, Some(0), None),
                update(1, FileState::Skipped, Some(1), None),
                update(2, FileState::Failed, None, Some("gone")),
            ],
        )
        .await
        .unwrap();
    catalog
        .record_verified_chunks(
            second,
            &[
                chunk(3, 0, 0),
                chunk(3, 2, 2),
                chunk(2, 0, 0),
                chunk(0, 1, 0),
            ],
        )
        .await
        .unwrap();
    let job = catalog.job(second).await.unwrap().unwrap();
    assert_eq!(
        (job.files_total, job.files_done, job.files_failed),
        (5, 2, 1)
    );
    assert_eq!(job.bytes_total, 35);
    assert_eq!(job.bytes_done, 10 + 5 + 4 + 2);
    let listed = catalog.list_jobs().await.unwrap();
    assert_eq!(listed[1], job);
    assert_eq!(listed[0].files_total, 0);
}

pub async fn state_round_trip(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    // A life: copied, checked, done; then a re-run that fails and one that resumes.
    for state in [
        JobState::Copying,
        JobState::Verifying,
        JobState::Done,
        JobState::Copying,
        JobState::Failed,
        JobState::Copying,
    ] {
        catalog.set_job_state(id, state, None, None).await.unwrap();
        assert_eq!(catalog.job(id).await.unwrap().unwrap().state, state);
    }
    catalog
        .set_job_state(id, JobState::Failed, Some("destination full"), None)
        .await
        .unwrap();
    let job = catalog.job(id).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.last_error.as_deref()),
        (JobState::Failed, Some("destination full"))
    );
    catalog
        .set_job_state(id, JobState::Copying, None, None)
        .await
        .unwrap();
    catalog
        .set_job_state(id, JobState::Done, None, Some("af1349b9f5f9a1a6"))
        .await
        .unwrap();
    let job = catalog.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.last_error, None, "None clears the last error");
    assert_eq!(job.root_hash.as_deref(), Some("af1349b9f5f9a1a6"));
}

pub async fn a_job_never_moves_backwards(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    let refused = |result: Result<(), CatalogError>, from: JobState, to: JobState| {
        let Err(err) = result else {
            panic!("{from} -> {to} should be refused")
        };
        assert!(
            matches!(err, CatalogError::IllegalTransition { id: i, from: f, to: t, .. }
                if i == id && f == from && t == to),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("job {id} is {from} and cannot become {to}")),
            "{message}"
        );
    };
    // Never copied: it cannot be done.
    refused(
        catalog
            .set_job_state(id, JobState::Done, None, Some("ff"))
            .await,
        JobState::Planned,
        JobState::Done,
    );
    // A move's state is not a migration's.
    refused(
        catalog
            .set_job_state(id, JobState::Switching, None, None)
            .await,
        JobState::Planned,
        JobState::Switching,
    );
    let job = catalog.job(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.root_hash), (JobState::Planned, None));
    catalog
        .set_job_state(id, JobState::Copying, None, None)
        .await
        .unwrap();
    catalog
        .set_job_state(id, JobState::Done, None, Some("ab"))
        .await
        .unwrap();
    // A late failure from a run that lost the race does not undo a done job.
    refused(
        catalog
            .set_job_state(id, JobState::Failed, Some("late"), None)
            .await,
        JobState::Done,
        JobState::Failed,
    );
    let job = catalog.job(id).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.root_hash.as_deref(), job.last_error),
        (JobState::Done, Some("ab"), None)
    );
}

pub async fn missing_jobs_are_reported(catalog: &dyn Catalog) {
    let missing = 4242;
    let not_found = |result: Result<(), CatalogError>| {
        assert!(
            matches!(result, Err(CatalogError::JobNotFound { id, .. }) if id == missing),
            "{result:?}"
        );
    };
    assert_eq!(catalog.job(missing).await.unwrap(), None);
    not_found(catalog.job_options(missing).await.map(drop));
    not_found(catalog.replace_plan(missing, &[file(0, 1)]).await);
    not_found(catalog.load_files(missing).await.map(drop));
    not_found(catalog.update_files(missing, &[]).await);
    not_found(catalog.record_verified_chunks(missing, &[]).await);
    not_found(catalog.verified_chunks(missing).await.map(drop));
    not_found(catalog.load_file_range(missing, 0..4).await.map(drop));
    not_found(
        catalog
            .verified_chunks_of_files(missing, 0..4)
            .await
            .map(drop),
    );
    not_found(catalog.forget_chunks(missing, 0).await);
    not_found(
        catalog
            .set_job_state(missing, JobState::Done, None, None)
            .await,
    );
    not_found(catalog.delete_job(missing).await);
    let message = catalog.delete_job(missing).await.unwrap_err().to_string();
    assert!(message.contains("no job 4242"), "{message}");
}

pub async fn delete_job_removes_everything(catalog: &dyn Catalog) {
    let keep = catalog.create_job(&spec("keep", "x")).await.unwrap();
    let gone = catalog.create_job(&spec("gone", "x")).await.unwrap();
    for id in [keep, gone] {
        catalog
            .replace_plan(id, &[file(0, 8), file(1, 8)])
            .await
            .unwrap();
        catalog
            .record_verified_chunks(id, &[chunk(0, 0, 1), chunk(1, 1, 1)])
            .await
            .unwrap();
    }
    catalog.delete_job(gone).await.unwrap();
    assert_eq!(catalog.find_job("gone", "x").await.unwrap(), None);
    assert!(matches!(
        catalog.load_files(gone).await,
        Err(CatalogError::JobNotFound { .. })
    ));
    assert_eq!(catalog.load_files(keep).await.unwrap().len(), 2);
    assert_eq!(catalog.verified_chunks(keep).await.unwrap().len(), 2);
    assert_eq!(catalog.list_jobs().await.unwrap().len(), 1);
    // The pair is free again.
    catalog.create_job(&spec("gone", "x")).await.unwrap();
}

/// A task's share of a plan: the files of an index range and their verified chunks, and
/// nothing of the other files.
pub async fn ranges_of_files_and_their_chunks(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    let plan: Vec<_> = (0..10).map(|i| file(i, 8)).collect();
    catalog.replace_plan(id, &plan).await.unwrap();
    let chunks = [
        chunk(2, 0, 1),
        chunk(5, 0, 2),
        chunk(5, 1, 3),
        chunk(8, 1, 4),
    ];
    catalog.record_verified_chunks(id, &chunks).await.unwrap();
    let files = catalog.load_file_range(id, 3..7).await.unwrap();
    let indexes: Vec<u32> = files.iter().map(|f| f.planned.index).collect();
    assert_eq!(indexes, [3, 4, 5, 6]);
    assert_eq!(files[2].planned, plan[5]);
    assert_eq!(
        catalog.verified_chunks_of_files(id, 4..9).await.unwrap(),
        [chunk(5, 0, 2), chunk(5, 1, 3), chunk(8, 1, 4)]
    );
    // Past the plan: nothing, which a worker reads as a task of an older plan.
    assert!(catalog
        .load_file_range(id, 10..12)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(catalog.load_file_range(id, 8..12).await.unwrap().len(), 2);
    assert!(catalog
        .verified_chunks_of_files(id, 0..2)
        .await
        .unwrap()
        .is_empty());
}

pub async fn large_plan(catalog: &dyn Catalog) {
    const FILES: u32 = 100_000;
    let id = catalog.create_job(&spec("big", "x")).await.unwrap();
    let plan: Vec<_> = (0..FILES).map(|i| file(i, u64::from(i % 1000))).collect();
    catalog.replace_plan(id, &plan).await.unwrap();
    let files = catalog.load_files(id).await.unwrap();
    assert_eq!(files.len(), plan.len());
    assert_eq!(files[77_777].planned, plan[77_777]);
    let job = catalog.job(id).await.unwrap().unwrap();
    assert_eq!(job.files_total, u64::from(FILES));
    assert_eq!(job.bytes_total, plan.iter().map(|f| f.size).sum::<u64>());

    let updates: Vec<_> = (0..FILES / 2)
        .map(|i| update(i, FileState::Done, Some(1), None))
        .collect();
    catalog.update_files(id, &updates).await.unwrap();
    let job = catalog.job(id).await.unwrap().unwrap();
    assert_eq!(job.files_done, u64::from(FILES / 2));
}

/// A file whose source changed during the copy is planned again alone: its new size and
/// time are recorded, it is pending, and its old chunk values are gone; nothing else moves.
pub async fn replanning_a_changed_file_resets_only_that_file(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("a", "b")).await.unwrap();
    catalog
        .replace_plan(id, &[file(0, 8), file(1, 8)])
        .await
        .unwrap();
    catalog
        .record_verified_chunks(id, &[chunk(0, 0, 1), chunk(0, 1, 2), chunk(1, 0, 3)])
        .await
        .unwrap();
    catalog
        .update_files(id, &[update(0, FileState::Failed, None, Some("x"))])
        .await
        .unwrap();

    let mut grown = file(0, 12);
    grown.mtime_ns = Some(1_800_000_000_000_000_000);
    grown.mode = Some(0o600);
    catalog.replan_file(id, &grown).await.unwrap();
    let files = catalog.load_files(id).await.unwrap();
    assert_eq!(files[0].planned, grown);
    assert_eq!(files[0].state, FileState::Pending);
    assert_eq!((files[0].hash, files[0].error.clone()), (None, None));
    assert_eq!(files[1].planned, file(1, 8));
    assert_eq!(
        catalog.verified_chunks(id).await.unwrap(),
        vec![chunk(1, 0, 3)]
    );

    // Another path at that index, or an index outside the plan, changes nothing.
    let mut other = file(1, 5);
    other.index = 0;
    let err = catalog.replan_file(id, &other).await.unwrap_err();
    assert!(matches!(err, CatalogError::InvalidInput(_)), "{err:?}");
    let err = catalog.replan_file(id, &file(9, 5)).await.unwrap_err();
    assert!(
        matches!(err, CatalogError::UnknownFile { index: 9, .. }),
        "{err:?}"
    );
    assert_eq!(catalog.load_files(id).await.unwrap()[0].planned, grown);
}

fn worker(id: &str, heartbeat_at: i64, task: Option<(i64, &str)>) -> WorkerRecord {
    WorkerRecord {
        id: id.into(),
        host: "node-1".into(),
        pid: 42,
        cores: 8,
        bandwidth_cap: Some(20 << 20),
        throughput: 1 << 20,
        bytes_done: 5 << 20,
        tasks_done: 3,
        started_at: 1_700_000_000,
        heartbeat_at,
        job: task.map(|(job, _)| job),
        task: task.map(|(_, t)| t.to_string()),
    }
}

pub async fn workers_announce_refresh_and_leave(catalog: &dyn Catalog) {
    assert!(catalog.workers().await.unwrap().is_empty());
    let b = worker("b", 1_700_000_001, None);
    catalog.record_worker(&b).await.unwrap();
    catalog
        .record_worker(&worker("a", 1_700_000_001, None))
        .await
        .unwrap();
    let beat = worker("b", 1_700_000_009, Some((7, "files 0-31")));
    catalog.record_worker(&beat).await.unwrap();
    let listed = catalog.workers().await.unwrap();
    assert_eq!(listed.len(), 2, "a heartbeat replaces the worker's row");
    assert_eq!(listed[0].id, "a", "ordered by id");
    assert_eq!(listed[1], beat, "every field round-trips");
    catalog.remove_worker("b").await.unwrap();
    catalog.remove_worker("never-there").await.unwrap();
    let ids: Vec<_> = catalog
        .workers()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(ids, vec!["a".to_string()]);
}

pub async fn one_task_finishes_a_job(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("s", "d")).await.unwrap();
    catalog
        .replace_plan(id, &[file(0, 8), file(1, 8)])
        .await
        .unwrap();
    let claim =
        |run: &'static str, task: &'static str| catalog.claim_job_finish(id, run, task, "w");
    assert_eq!(
        claim("r1", "t0").await.unwrap(),
        FinishClaim::NotYet { pending: 2 }
    );
    catalog
        .update_files(id, &[update(0, FileState::Done, Some(1), None)])
        .await
        .unwrap();
    assert_eq!(
        claim("r1", "t0").await.unwrap(),
        FinishClaim::NotYet { pending: 1 }
    );
    catalog
        .update_files(id, &[update(1, FileState::Failed, None, Some("gone"))])
        .await
        .unwrap();
    assert_eq!(
        claim("r1", "t1").await.unwrap(),
        FinishClaim::Yours { failed: 1 }
    );
    assert_eq!(
        claim("r1", "t0").await.unwrap(),
        FinishClaim::Taken,
        "one finisher per run"
    );
    assert_eq!(
        claim("r1", "t1").await.unwrap(),
        FinishClaim::Yours { failed: 1 },
        "a redelivery of the finisher's task takes the claim over"
    );
    assert_eq!(
        claim("r2", "t9").await.unwrap(),
        FinishClaim::Yours { failed: 1 },
        "a later run of the job is finished again"
    );
    catalog
        .set_job_state(id, JobState::Copying, None, None)
        .await
        .unwrap();
    catalog
        .set_job_state(id, JobState::Done, None, Some("root"))
        .await
        .unwrap();
    assert_eq!(claim("r2", "t9").await.unwrap(), FinishClaim::AlreadyDone);
    match catalog.claim_job_finish(id + 100, "r", "t", "w").await {
        Err(CatalogError::JobNotFound { .. }) => {}
        other => panic!("expected JobNotFound, got {other:?}"),
    }
}

/// A file of three chunks (the suite's chunk size is 4 bytes) copied by range tasks:
/// finished by the first task that finds every chunk verified, by that task's
/// redelivery, never by another task of the run.
pub async fn one_range_task_finishes_a_split_file(catalog: &dyn Catalog) {
    let id = catalog.create_job(&spec("s", "d")).await.unwrap();
    catalog
        .replace_plan(id, &[file(0, 8), file(1, 10)])
        .await
        .unwrap();
    let claim =
        |run: &'static str, task: &'static str| catalog.claim_file_finish(id, 1, run, task, "w");
    assert_eq!(
        claim("r1", "t0").await.unwrap(),
        FileFinishClaim::NotYet { missing: 3 }
    );
    catalog
        .record_verified_chunks(id, &[chunk(1, 0, 1), chunk(1, 2, 3), chunk(0, 1, 9)])
        .await
        .unwrap();
    assert_eq!(
        claim("r1", "t2").await.unwrap(),
        FileFinishClaim::NotYet { missing: 1 },
        "another file's chunks do not count"
    );
    catalog
        .record_verified_chunks(id, &[chunk(1, 1, 2)])
        .await
        .unwrap();
    assert_eq!(claim("r1", "t1").await.unwrap(), FileFinishClaim::Yours);
    assert_eq!(
        claim("r1", "t2").await.unwrap(),
        FileFinishClaim::Taken,
        "one finisher per file and run"
    );
    assert_eq!(
        claim("r1", "t1").await.unwrap(),
        FileFinishClaim::Yours,
        "a redelivery of the finisher's task takes the claim over"
    );
    assert_eq!(
        claim("r2", "t5").await.unwrap(),
        FileFinishClaim::Yours,
        "a later run of the job finishes it again"
    );
    assert_eq!(
        catalog.claim_job_finish(id, "r2", "t5", "w").await.unwrap(),
        FinishClaim::NotYet { pending: 2 },
        "a claimed file is still pending for the job until it is recorded done"
    );
    catalog
        .update_files(id, &[update(1, FileState::Done, Some(7), None)])
        .await
        .unwrap();
    assert_eq!(
        claim("r2", "t5").await.unwrap(),
        FileFinishClaim::AlreadyFinished
    );
    match catalog.claim_file_finish(id, 9, "r", "t", "w").await {
        Err(CatalogError::UnknownFile { index: 9, .. }) => {}
        other => panic!("expected UnknownFile, got {other:?}"),
    }
    match catalog.claim_file_finish(id + 100, 0, "r", "t", "w").await {
        Err(CatalogError::JobNotFound { .. }) => {}
        other => panic!("expected JobNotFound, got {other:?}"),
    }
    catalog.delete_job(id).await.unwrap();
}
