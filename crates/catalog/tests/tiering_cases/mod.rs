//! The tiering tables through [`TieringCatalog`], the same on every engine: object writes
//! and generations, one current placement, deletes that leave retiring copies, the move
//! life cycle with its idempotency key, access statistics and decisions, access history
//! (`history.rs`), API tokens, the S3 front door's object metadata (`s3_meta.rs`), and
//! durability across a reopen. A test binary that declares
//! `mod tiering_cases;` provides `TieringGuard`, `TieringEngine`, `open_tiering()` (a fresh,
//! empty catalog) and `reopen_tiering(&guard)` (the same catalog opened again).

use strata_catalog::{ApiToken, Revoked, TokenCatalog};
use strata_catalog::{
    ChunkHashes, CopyStart, CreatedMove, DecisionRecord, JobState, MoveFilter, MoveSpec,
    ObjectWrite, PlacementState, RetriedMove, SwitchOutcome, TieringCatalog,
};

use super::{open_tiering, reopen_tiering, TieringEngine, TieringGuard};

mod history;
mod s3_meta;

/// A write of a one-chunk object (whose one chunk value is its hash).
pub fn write(key: &str, tier: &str, fill: u8, now_ms: i64) -> ObjectWrite {
    let size = 100 + u64::from(fill);
    let hash = [fill; 32];
    ObjectWrite {
        key: key.into(),
        tier: tier.into(),
        size,
        hash,
        chunk_hashes: ChunkHashes::new(vec![hash], size, &hash).unwrap(),
        now_ms,
    }
}

pub fn spec(key: &str, generation: i64, from: &str, to: &str) -> MoveSpec {
    MoveSpec {
        idempotency_key: format!("{key}@{generation}:{from}->{to}"),
        key: key.into(),
        from_tier: from.into(),
        to_tier: to.into(),
        generation,
        size: 101,
        reason: "reactive_access_spike".into(),
        explanation: "promote warm → hot".into(),
        inputs_json: r#"{"count_1h":30}"#.into(),
        after: vec![],
    }
}

/// A catalog holding object `k` (generation 1 on `warm`) and a planned move of it to `hot`.
async fn planned_move() -> (TieringGuard, TieringEngine, strata_catalog::MoveJob) {
    let (dir, catalog) = open_tiering().await;
    catalog
        .commit_write(&write("k", "warm", 1, 10))
        .await
        .unwrap();
    let CreatedMove::Created(job) = catalog
        .create_move(&spec("k", 1, "warm", "hot"), 20)
        .await
        .unwrap()
    else {
        panic!("expected a new job")
    };
    (dir, catalog, job)
}

#[tokio::test]
async fn writes_create_then_bump_the_generation() {
    let (_dir, catalog) = open_tiering().await;
    catalog.begin_write("a/b", "warm", 1).await.unwrap();
    assert_eq!(catalog.write_intents().await.unwrap().len(), 1);
    let first = catalog
        .commit_write(&write("a/b", "warm", 1, 10))
        .await
        .unwrap();
    assert_eq!((first.object.generation, first.tier.as_str()), (1, "warm"));
    assert!(catalog.write_intents().await.unwrap().is_empty());

    let second = catalog
        .commit_write(&write("a/b", "warm", 2, 20))
        .await
        .unwrap();
    assert_eq!(second.object.generation, 2);
    assert_eq!(second.object.created_ms, 10);
    assert_eq!(second.object.hash, [2; 32]);
    assert_eq!(
        second.placed_ms, 10,
        "rewriting in place keeps the placement time"
    );

    // A write to another tier than the current one is a caller bug.
    let err = catalog
        .commit_write(&write("a/b", "hot", 3, 30))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("current on tier"), "{err}");

    let all = catalog.placed_objects().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0], second);
}

#[tokio::test]
async fn a_group_commit_records_its_rows_with_the_next_groups_intents() {
    let (_dir, catalog) = open_tiering().await;
    catalog
        .commit_write(&write("elsewhere", "hot", 9, 5))
        .await
        .unwrap();
    let intents = |keys: &[&str], tier: &str| -> Vec<(String, String)> {
        keys.iter().map(|k| (k.to_string(), tier.into())).collect()
    };
    catalog
        .begin_writes(&intents(&["g/a", "g/b"], "warm"), 10)
        .await
        .unwrap();
    // The group: two writes, and one refused by its checks (current on another tier).
    let group = [
        write("g/a", "warm", 1, 20),
        write("elsewhere", "warm", 2, 20),
        write("g/b", "warm", 3, 20),
    ];
    let results = catalog
        .commit_writes_and_begin(&group, &intents(&["g/c", "g/d"], "warm"), 20)
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap().object.hash, [1; 32]);
    let refused = results[1].as_ref().unwrap_err().to_string();
    assert!(refused.contains("current on tier"), "{refused}");
    assert_eq!(results[2].as_ref().unwrap().object.generation, 1);
    // The group's intents are dropped, the next group's recorded, in the same commit.
    let mut left: Vec<(String, i64)> = catalog
        .write_intents()
        .await
        .unwrap()
        .into_iter()
        .map(|intent| (intent.key, intent.started_ms))
        .collect();
    left.sort();
    assert_eq!(left, vec![("g/c".into(), 20), ("g/d".into(), 20)]);
    let placed = catalog.placed_object("elsewhere").await.unwrap().unwrap();
    assert_eq!(
        (placed.tier.as_str(), placed.object.hash),
        ("hot", [9; 32]),
        "a refused write changes nothing"
    );
    // The next group's commit, with no group after it.
    let results = catalog
        .commit_writes_and_begin(
            &[write("g/c", "warm", 4, 30), write("g/d", "warm", 5, 30)],
            &[],
            30,
        )
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(catalog.write_intents().await.unwrap().is_empty());
    assert_eq!(catalog.placed_objects().await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_batch_records_each_write_as_one_commit_would() {
    let (_dir, catalog) = open_tiering().await;
    catalog
        .commit_write(&write("old", "warm", 1, 10))
        .await
        .unwrap();
    catalog
        .commit_write(&write("gone", "warm", 1, 10))
        .await
        .unwrap();
    catalog.delete_object("gone", 11).await.unwrap();
    let intents: Vec<(String, String)> = ["old", "new", "gone", "bad", "new"]
        .iter()
        .map(|k| (k.to_string(), "warm".to_string()))
        .collect();
    catalog.begin_writes(&intents, 12).await.unwrap();
    let mut bad = write("bad", "warm", 4, 20);
    bad.hash = [5; 32];
    let batch = [
        write("old", "warm", 2, 20),
        write("new", "warm", 3, 20),
        write("gone", "warm", 6, 20),
        bad,
    ];
    let results = catalog
        .commit_writes_and_begin(&batch, &[], 20)
        .await
        .unwrap();
    let replaced = results[0].as_ref().unwrap();
    assert_eq!(
        (
            replaced.object.generation,
            replaced.object.created_ms,
            replaced.placed_ms
        ),
        (2, 10, 10),
        "a replacement bumps the generation and keeps its creation and placement times"
    );
    let new = results[1].as_ref().unwrap();
    assert_eq!((new.object.generation, new.object.created_ms), (1, 20));
    let in_the_way = results[2].as_ref().unwrap_err().to_string();
    assert!(in_the_way.contains("retiring copy"), "{in_the_way}");
    let refused = results[3].as_ref().unwrap_err().to_string();
    assert!(refused.contains("chunk values"), "{refused}");
    for key in ["old", "new"] {
        let stored = catalog.placed_object(key).await.unwrap().unwrap();
        let answered = results.iter().flatten().find(|p| p.object.key == key);
        assert_eq!(
            Some(&stored),
            answered,
            "{key}: the row is what was answered"
        );
    }
    assert!(catalog.placed_object("gone").await.unwrap().is_none());
    assert!(catalog.placed_object("bad").await.unwrap().is_none());
    let mut left: Vec<String> = catalog
        .write_intents()
        .await
        .unwrap()
        .into_iter()
        .map(|intent| intent.key)
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["bad", "gone"],
        "only the recorded writes drop their intents"
    );

    // A key written twice in one batch: the second write sees the first.
    let twice = [write("new", "warm", 7, 30), write("new", "warm", 8, 31)];
    let results = catalog.commit_writes(&twice).await.unwrap();
    let generations: Vec<i64> = results
        .iter()
        .map(|r| r.as_ref().unwrap().object.generation)
        .collect();
    assert_eq!(generations, [2, 3]);
    let stored = catalog.placed_object("new").await.unwrap().unwrap();
    assert_eq!((stored.object.hash, stored.object.generation), ([8; 32], 3));
}

#[tokio::test]
async fn delete_leaves_retiring_copies_until_removed() {
    let (_dir, catalog) = open_tiering().await;
    catalog
        .commit_write(&write("k", "warm", 1, 10))
        .await
        .unwrap();
    let retiring = catalog.delete_object("k", 20).await.unwrap().unwrap();
    assert_eq!(retiring.len(), 1);
    assert_eq!(retiring[0].state, PlacementState::Retiring);
    assert!(catalog.placed_object("k").await.unwrap().is_none());
    assert_eq!(catalog.placements_in_flight().await.unwrap().len(), 1);
    // A new write on that tier must wait for the cleanup.
    assert!(catalog
        .commit_write(&write("k", "warm", 2, 30))
        .await
        .is_err());
    assert!(catalog
        .remove_placement("k", "warm", PlacementState::Retiring)
        .await
        .unwrap());
    assert!(catalog.placements_in_flight().await.unwrap().is_empty());
    assert!(catalog.delete_object("k", 40).await.unwrap().is_none());
    let again = catalog
        .commit_write(&write("k", "warm", 2, 50))
        .await
        .unwrap();
    assert_eq!(again.object.generation, 1, "a new object starts over");
}

#[tokio::test]
async fn a_move_copies_switches_and_retires() {
    let (_dir, catalog, job) = planned_move().await;
    assert_eq!(job.state, JobState::Planned);
    // Same idempotency key: the same job.
    match catalog
        .create_move(&spec("k", 1, "warm", "hot"), 21)
        .await
        .unwrap()
    {
        CreatedMove::Existing(existing) => assert_eq!(existing.id, job.id),
        other => panic!("{other:?}"),
    }
    // Another move of the same object while this one is unfinished: refused.
    match catalog
        .create_move(&spec("k", 1, "warm", "cold"), 22)
        .await
        .unwrap()
    {
        CreatedMove::ObjectBusy(active) => assert_eq!(active.id, job.id),
        other => panic!("{other:?}"),
    }

    let CopyStart::Started(started) = catalog.start_copy(job.id, 30).await.unwrap() else {
        panic!("copy should start")
    };
    assert_eq!((started.state, started.attempts), (JobState::Copying, 1));
    let placements = catalog.placements("k").await.unwrap();
    assert_eq!(placements.len(), 2);
    // Restarting the copy (after a crash) keeps the one copying row.
    assert!(matches!(
        catalog.start_copy(job.id, 31).await.unwrap(),
        CopyStart::Started(ref j) if j.attempts == 2
    ));

    catalog
        .set_move_state(job.id, JobState::Verifying, None, 40)
        .await
        .unwrap();
    assert_eq!(
        catalog.switch_placement(job.id, 50).await.unwrap(),
        SwitchOutcome::Switched
    );
    let placed = catalog.placed_object("k").await.unwrap().unwrap();
    assert_eq!((placed.tier.as_str(), placed.placed_ms), ("hot", 50));
    let in_flight = catalog.placements_in_flight().await.unwrap();
    assert_eq!(in_flight.len(), 1);
    assert_eq!(
        (in_flight[0].tier.as_str(), in_flight[0].state),
        ("warm", PlacementState::Retiring)
    );
    catalog.finish_move(job.id, 60).await.unwrap();
    assert!(catalog.placements_in_flight().await.unwrap().is_empty());
    let done = catalog.move_job(job.id).await.unwrap().unwrap();
    assert_eq!((done.state, done.finished_ms), (JobState::Done, Some(60)));
    assert_eq!(
        catalog.move_counts().await.unwrap(),
        vec![(JobState::Done, 1)]
    );
}

/// The move's side of the one job state machine (`strata_catalog::lifecycle`): once the
/// switch is committed the move only goes forward, and a finished move never runs again.
#[tokio::test]
async fn a_switched_move_only_goes_forward() {
    let (_dir, catalog, job) = planned_move().await;
    let refused = |result: Result<(), strata_catalog::CatalogError>, from, to| {
        let err = result.expect_err("a backward transition must be refused");
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "move job {} is {from} and cannot become {to}",
                job.id
            )),
            "{message}"
        );
    };
    // Not copied yet: nothing to verify.
    refused(
        catalog
            .set_move_state(job.id, JobState::Verifying, None, 25)
            .await,
        JobState::Planned,
        JobState::Verifying,
    );
    assert!(matches!(
        catalog.start_copy(job.id, 30).await.unwrap(),
        CopyStart::Started(_)
    ));
    catalog
        .set_move_state(job.id, JobState::Verifying, None, 40)
        .await
        .unwrap();
    assert_eq!(
        catalog.switch_placement(job.id, 50).await.unwrap(),
        SwitchOutcome::Switched
    );
    // Switched: a late failure, a re-plan or a restarted copy would undo a committed
    // switch; all are refused and the placement stays.
    refused(
        catalog
            .end_move(job.id, JobState::Failed, Some("late"), 55)
            .await,
        JobState::Retiring,
        JobState::Failed,
    );
    refused(
        catalog.end_move(job.id, JobState::Planned, None, 55).await,
        JobState::Retiring,
        JobState::Planned,
    );
    assert!(matches!(
        catalog.start_copy(job.id, 56).await.unwrap(),
        CopyStart::NotStartable(JobState::Retiring)
    ));
    let placed = catalog.placed_object("k").await.unwrap().unwrap();
    assert_eq!(placed.tier, "hot");
    assert_eq!(catalog.placements("k").await.unwrap().len(), 2);
    catalog.finish_move(job.id, 60).await.unwrap();
    // Done: it never runs again.
    refused(
        catalog
            .set_move_state(job.id, JobState::Copying, None, 70)
            .await,
        JobState::Done,
        JobState::Copying,
    );
    assert!(matches!(
        catalog.retry_move(job.id, 71).await.unwrap(),
        RetriedMove::NotRetryable(JobState::Done)
    ));
    let done = catalog.move_job(job.id).await.unwrap().unwrap();
    assert_eq!((done.state, done.finished_ms), (JobState::Done, Some(60)));
}

#[tokio::test]
async fn a_write_during_the_move_stops_the_switch() {
    let (_dir, catalog, job) = planned_move().await;
    assert!(matches!(
        catalog.start_copy(job.id, 30).await.unwrap(),
        CopyStart::Started(_)
    ));
    catalog
        .commit_write(&write("k", "warm", 2, 35))
        .await
        .unwrap();
    assert_eq!(
        catalog.switch_placement(job.id, 40).await.unwrap(),
        SwitchOutcome::ObjectChanged(2)
    );
    assert_eq!(
        catalog.placed_object("k").await.unwrap().unwrap().tier,
        "warm"
    );
    catalog
        .end_move(
            job.id,
            JobState::Skipped,
            Some("object_changing: written during its move"),
            50,
        )
        .await
        .unwrap();
    assert_eq!(catalog.placements("k").await.unwrap().len(), 1);
    let skipped = catalog.move_job(job.id).await.unwrap().unwrap();
    assert_eq!(skipped.state, JobState::Skipped);
    assert!(skipped.last_error.unwrap().starts_with("object_changing"));
    // A new generation is a new move; the skipped one can be retried too, once it is alone.
    assert!(matches!(
        catalog.start_copy(job.id, 60).await.unwrap(),
        CopyStart::NotStartable(JobState::Skipped)
    ));
    assert!(matches!(
        catalog.retry_move(job.id, 70).await.unwrap(),
        RetriedMove::Retried(_)
    ));
    assert!(matches!(
        catalog.start_copy(job.id, 80).await.unwrap(),
        CopyStart::ObjectChanged(2)
    ));
}

#[tokio::test]
async fn deleting_an_object_cancels_its_move() {
    let (_dir, catalog, job) = planned_move().await;
    catalog.start_copy(job.id, 30).await.unwrap();
    let retiring = catalog.delete_object("k", 40).await.unwrap().unwrap();
    assert_eq!(retiring.len(), 2, "the current copy and the move's copy");
    let job = catalog.move_job(job.id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    let active = catalog
        .move_jobs(&MoveFilter {
            active_only: true,
            ..MoveFilter::default()
        })
        .await
        .unwrap();
    assert!(active.is_empty());
}

#[tokio::test]
async fn access_stats_and_decisions_survive_a_reopen() {
    let (dir, catalog) = open_tiering().await;
    catalog
        .save_access_stats(&[("a", "{\"v\":1}"), ("b", "{\"v\":1}")], &[], 10)
        .await
        .unwrap();
    catalog
        .save_access_stats(&[("a", "{\"v\":1,\"x\":2}")], &["b"], 20)
        .await
        .unwrap();
    catalog
        .commit_write(&write("a", "warm", 1, 10))
        .await
        .unwrap();
    let decisions: Vec<DecisionRecord> = (0..5)
        .map(|i| DecisionRecord {
            key: "a".into(),
            ts_ms: i,
            class: "hot".into(),
            reason: "rule_hot_recent".into(),
            action: "stay:warm".into(),
            explanation: format!("decision {i}"),
            inputs_json: "{}".into(),
            job_id: None,
        })
        .collect();
    catalog.record_decisions(&decisions).await.unwrap();
    catalog
        .record_decisions(&[DecisionRecord {
            key: "gone".into(),
            ..decisions[0].clone()
        }])
        .await
        .unwrap();
    assert_eq!(catalog.prune_decisions(3).await.unwrap(), 3);
    let CreatedMove::Created(job) = catalog
        .create_move(&spec("a", 1, "warm", "hot"), 20)
        .await
        .unwrap()
    else {
        panic!()
    };
    catalog.close().await;

    let catalog = reopen_tiering(&dir).await;
    assert_eq!(
        catalog.access_stats().await.unwrap(),
        vec![("a".to_string(), "{\"v\":1,\"x\":2}".to_string())]
    );
    let kept = catalog.decisions("a", 10).await.unwrap();
    assert_eq!(
        kept.iter().map(|d| d.ts_ms).collect::<Vec<_>>(),
        vec![4, 3, 2]
    );
    assert!(catalog.decisions("gone", 10).await.unwrap().is_empty());
    let jobs = catalog.move_jobs(&MoveFilter::default()).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, job.id);
    assert_eq!(jobs[0].inputs_json, r#"{"count_1h":30}"#);
}

fn token(id: &str, scope: strata_catalog::TokenScope, prefix: Option<&str>) -> ApiToken {
    ApiToken {
        id: id.into(),
        hash: [id.len() as u8; 32],
        scope,
        prefix: prefix.map(str::to_string),
        created_ms: 100,
        expires_ms: Some(5_000),
        revoked_ms: None,
    }
}

#[tokio::test]
async fn tokens_are_kept_listed_revoked_and_survive_a_reopen() {
    use strata_catalog::TokenScope::{Admin, Read};
    let (guard, catalog) = open_tiering().await;
    assert!(!catalog.has_tokens().await.unwrap());
    let reader = token("r1", Read, Some("docs/"));
    catalog.create_token(&reader).await.unwrap();
    catalog
        .create_token(&token("admin2", Admin, None))
        .await
        .unwrap();
    assert!(catalog.has_tokens().await.unwrap());
    let err = catalog.create_token(&reader).await.unwrap_err();
    assert!(err.to_string().contains("r1 exists already"), "{err}");
    assert_eq!(catalog.token("r1").await.unwrap(), Some(reader.clone()));
    assert_eq!(catalog.token("none").await.unwrap(), None);

    assert_eq!(catalog.revoke_token("r1", 700).await.unwrap(), Revoked::Now);
    assert_eq!(
        catalog.revoke_token("r1", 900).await.unwrap(),
        Revoked::Already(700)
    );
    assert_eq!(
        catalog.revoke_token("none", 900).await.unwrap(),
        Revoked::Unknown
    );
    catalog.close().await;
    let catalog = reopen_tiering(&guard).await;
    let listed = catalog.tokens().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["admin2", "r1"]);
    let revoked = &listed[1];
    assert_eq!((revoked.revoked_ms, revoked.hash), (Some(700), reader.hash));
    assert!(!revoked.in_force(200));
    assert!(listed[0].in_force(4_999) && !listed[0].in_force(5_000));
    // Revoking every token does not reopen the service: tokens stay required.
    catalog.revoke_token("admin2", 1_000).await.unwrap();
    assert!(catalog.has_tokens().await.unwrap());
}
