//! Fault injection (`Store::with_faults`): every effect on memory, local and S3 (moto)
//! stores, the counters, the `STRATA_FAULTS` parser, and deterministic probability rules.

#[macro_use]
mod common;

use bytes::Bytes;
use common::{data, fixture, Fixture, Kind};
use strata_store::faults::{
    FaultEffect, FaultOp, FaultPlan, FaultRule, FaultSide, FaultTrigger, FAULTS_ENV,
};
use strata_store::{PendingPublish, Store, StoreError};

behaviours!(
    read_flip_changes_one_bit_on_the_way_out,
    read_truncate_drops_the_tail,
    write_flip_changes_one_bit_on_the_way_in,
    lost_writes_leave_what_was_there,
    truncated_writes_leave_a_gap,
    lost_publish_leaves_no_object,
    lost_publish_in_a_group_leaves_no_object,
    put_faults,
    lost_delete_keeps_the_object,
    injected_errors_say_so_on_every_operation,
    latency_then_the_call_goes_on,
    path_patterns_select_files,
    counting_triggers,
    no_plan_and_empty_plan_change_nothing,
    chaos_rules_come_and_go_over_a_fixed_plan,
);

fn plan(spec: &str) -> FaultPlan {
    FaultPlan::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

async fn put(store: &Store, rel: &str, bytes: &[u8]) {
    store
        .write_atomic(rel, Bytes::copy_from_slice(bytes))
        .await
        .unwrap_or_else(|e| panic!("write {rel}: {e}"));
}

/// Indices of the bits where `a` and `b` differ (same length).
fn differing_bits(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    let mut bits = Vec::new();
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        for bit in 0..8 {
            if (x ^ y) & (1 << bit) != 0 {
                bits.push(i * 8 + bit);
            }
        }
    }
    bits
}

fn fired(store: &Store) -> Vec<u64> {
    store.faults().expect("a plan is set").fired_counts()
}

/// Run-time chaos (`Store::with_chaos`) over a `STRATA_FAULTS` plan: rules added and
/// cleared while the store is in use, shared by its clones, the plan's rules and counters
/// untouched (a call chaos fails never reaches the plan).
async fn chaos_rules_come_and_go_over_a_fixed_plan(fx: Fixture) {
    use std::sync::Arc;
    use strata_store::chaos::{Chaos, ChaosRequest};
    let content = data(4_000, 7);
    put(&fx.store, "c/f.bin", &content).await;
    let chaos = Arc::new(Chaos::new());
    let store = fx
        .store
        .clone()
        .with_faults(plan("any:read:latency=1ms"))
        .with_chaos(Arc::clone(&chaos));
    let clone = store.clone();
    let rule = |body: &str| ChaosRequest::parse_json(body.as_bytes()).unwrap().rule;

    chaos.add(rule(r#"{"tier":"t","fault":"503","op":"read","count":1}"#));
    let err = clone.read_all("c/f.bin").await.expect_err("chaos 503");
    assert!(
        err.is_retryable() && err.to_string().contains("503"),
        "{err}"
    );
    assert_eq!(
        fired(&store),
        vec![0],
        "a call chaos failed never reached the plan"
    );
    assert_eq!(&store.read_all("c/f.bin").await.expect("read")[..], content);

    chaos.add(rule(r#"{"tier":"t","fault":"corrupt","count":1}"#));
    let got = store.read_all("c/f.bin").await.expect("read");
    assert_eq!(differing_bits(&got, &content).len(), 1);

    chaos.add(rule(
        r#"{"tier":"t","fault":"timeout","op":"stat","duration":"1h"}"#,
    ));
    assert!(store
        .stat("c/f.bin")
        .await
        .expect_err("timeout")
        .is_retryable());
    assert_eq!(chaos.clear(), 1);
    assert!(store.stat("c/f.bin").await.expect("stat").is_some());
    assert_eq!(&store.read_all("c/f.bin").await.expect("read")[..], content);
    assert_eq!(
        fired(&store),
        vec![3],
        "the plan fired on every read chaos let through"
    );
    assert_eq!(
        store.faults().unwrap().plan().to_string(),
        "any:read:latency=1ms"
    );
}

async fn read_flip_changes_one_bit_on_the_way_out(fx: Fixture) {
    let content = data(10_000, 1);
    put(&fx.store, "d/f.bin", &content).await;
    let faulty = fx
        .store
        .clone()
        .with_faults(plan("any:read:flip=5:first=1"));
    let got = faulty.read_range("d/f.bin", 100, 50).await.expect("read");
    assert_eq!(differing_bits(&got, &content[100..150]), vec![5 * 8]);
    // Only the first call: the second is intact, and so are reads without the plan.
    let again = faulty.read_range("d/f.bin", 100, 50).await.expect("read");
    assert_eq!(&again[..], &content[100..150]);
    assert_eq!(
        &fx.store.read_all("d/f.bin").await.expect("read")[..],
        content
    );
    assert_eq!(fired(&faulty), vec![1]);
    assert_eq!(faulty.faults().unwrap().matched(0), 2);

    // Without an offset, one bit somewhere, the same one for the same call.
    let faulty = fx.store.clone().with_faults(plan("any:read:flip"));
    let a = faulty.read_all("d/f.bin").await.expect("read");
    let b = faulty.read_all("d/f.bin").await.expect("read");
    assert_eq!(differing_bits(&a, &content).len(), 1);
    assert_eq!(a, b, "the flipped bit is derived from the call");
}

async fn read_truncate_drops_the_tail(fx: Fixture) {
    let content = data(4096, 2);
    put(&fx.store, "t.bin", &content).await;
    let faulty = fx.store.clone().with_faults(plan("any:read:truncate=3"));
    let got = faulty.read_all("t.bin").await.expect("read");
    assert_eq!(&got[..], &content[..4093]);
    let got = faulty.read_range("t.bin", 10, 2).await.expect("read");
    assert!(got.is_empty(), "more dropped than there was: nothing left");
    assert_eq!(fired(&faulty), vec![2]);
}

/// Writes `content` as `rel` in chunks of `chunk` bytes through `store`, then publishes.
async fn upload(store: &Store, rel: &str, content: &[u8], chunk: usize) -> Result<(), StoreError> {
    let upload = store
        .begin_upload(rel, content.len() as u64, false)
        .await
        .expect("begin upload");
    for (i, part) in content.chunks(chunk).enumerate() {
        upload
            .write_at((i * chunk) as u64, Bytes::copy_from_slice(part))
            .await?;
    }
    upload.publish(None, None).await
}

async fn write_flip_changes_one_bit_on_the_way_in(fx: Fixture) {
    let content = data(40_000, 3);
    let faulty = fx.store.clone().with_faults(plan("dst:write:flip:nth=2"));
    let upload = faulty
        .begin_upload("w/f.bin", content.len() as u64, false)
        .await
        .expect("begin");
    for (i, part) in content.chunks(10_000).enumerate() {
        upload
            .write_at((i * 10_000) as u64, Bytes::copy_from_slice(part))
            .await
            .expect("write");
    }
    if upload.supports_read_back() {
        // What `strata migrate` verifies before publishing: the second chunk is wrong.
        let first = upload.read_back(0, 10_000).await.expect("read back");
        let second = upload.read_back(10_000, 10_000).await.expect("read back");
        assert_eq!(&first[..], &content[..10_000]);
        assert_eq!(differing_bits(&second, &content[10_000..20_000]).len(), 1);
    }
    upload.publish(None, None).await.expect("publish");
    let stored = fx.store.read_all("w/f.bin").await.expect("read");
    let bits = differing_bits(&stored, &content);
    assert_eq!(bits.len(), 1, "one bit flipped");
    assert!(
        (10_000 * 8..20_000 * 8).contains(&bits[0]),
        "in the second chunk"
    );
    assert_eq!(fired(&faulty), vec![1]);
}

async fn lost_writes_leave_what_was_there(fx: Fixture) {
    let content = data(30_000, 4);
    let faulty = fx.store.clone().with_faults(plan("any:write:lose:nth=2"));
    let result = upload(&faulty, "l/f.bin", &content, 10_000).await;
    assert_eq!(fired(&faulty), vec![1]);
    match fx.kind {
        Kind::Local => {
            // The staged file was sized up front: the lost chunk reads as zeros.
            result.expect("publish succeeds: a lost write reports success");
            let stored = fx.store.read_all("l/f.bin").await.expect("read");
            assert_eq!(&stored[..10_000], &content[..10_000]);
            assert!(stored[10_000..20_000].iter().all(|&b| b == 0));
            assert_eq!(&stored[20_000..], &content[20_000..]);
        }
        Kind::Memory | Kind::S3 | Kind::Azblob | Kind::Gcs | Kind::SeaweedFs | Kind::Swift => {
            // Object stores write in sequence: the gap is caught at publish.
            let error = result.expect_err("incomplete upload");
            assert!(error.to_string().contains("incomplete"), "{error}");
            assert!(fx.store.stat("l/f.bin").await.expect("stat").is_none());
        }
    }
}

async fn truncated_writes_leave_a_gap(fx: Fixture) {
    let content = data(20_000, 5);
    let faulty = fx
        .store
        .clone()
        .with_faults(plan("any:write:truncate=100:first=1"));
    let result = upload(&faulty, "tr/f.bin", &content, 10_000).await;
    match fx.kind {
        Kind::Local => {
            result.expect("publish");
            let stored = fx.store.read_all("tr/f.bin").await.expect("read");
            assert_eq!(&stored[..9_900], &content[..9_900]);
            assert!(stored[9_900..10_000].iter().all(|&b| b == 0));
            assert_eq!(&stored[10_000..], &content[10_000..]);
        }
        Kind::Memory | Kind::S3 | Kind::Azblob | Kind::Gcs | Kind::SeaweedFs | Kind::Swift => {
            let error = result.expect_err("incomplete upload");
            assert!(error.to_string().contains("incomplete"), "{error}");
        }
    }
}

async fn lost_publish_leaves_no_object(fx: Fixture) {
    put(&fx.store, "p/old.bin", b"an older version").await;
    let faulty = fx
        .store
        .clone()
        .with_faults(plan("dst:publish:lose:path=old.bin"));
    let content = data(5_000, 6);
    upload(&faulty, "p/old.bin", &content, 2_000)
        .await
        .expect("a lost publish reports success");
    assert!(fx.store.stat("p/old.bin").await.expect("stat").is_none());
    // Other paths publish normally.
    upload(&faulty, "p/new.bin", &content, 2_000)
        .await
        .expect("publish");
    assert_eq!(
        &fx.store.read_all("p/new.bin").await.expect("read")[..],
        content
    );
    let (entries, _) = list(&fx.store).await;
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["p/new.bin"],
        "no staging file or object left behind"
    );
    assert_eq!(fired(&faulty), vec![1]);
}

async fn list(store: &Store) -> (Vec<strata_store::Entry>, Vec<strata_store::ListWarning>) {
    let mut warnings = Vec::new();
    let entries = store.list(&mut |w| warnings.push(w)).await.expect("list");
    (entries, warnings)
}

async fn lost_publish_in_a_group_leaves_no_object(fx: Fixture) {
    let faulty = fx.store.clone().with_faults(plan("any:publish:lose:nth=2"));
    let mut items = Vec::new();
    for i in 0..3u64 {
        let rel = format!("g/f{i}");
        let content = data(100, i);
        let upload = faulty.begin_upload(&rel, 100, false).await.expect("begin");
        upload
            .write_at(0, Bytes::from(content))
            .await
            .expect("write");
        items.push(PendingPublish {
            upload,
            mtime: None,
            mode: None,
        });
    }
    let results = strata_store::Upload::publish_group(items).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let (entries, _) = list(&fx.store).await;
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["g/f0", "g/f2"]);
    assert_eq!(fired(&faulty), vec![1]);
}

async fn put_faults(fx: Fixture) {
    let content = data(1_000, 7);
    put(&fx.store, "m/lost.json", b"old").await;
    let faulty = fx
        .store
        .clone()
        .with_faults(plan("any:put:lose:path=lost;any:put:flip=0:path=flipped"));
    put(&faulty, "m/lost.json", &content).await;
    assert!(fx.store.stat("m/lost.json").await.expect("stat").is_none());
    put(&faulty, "m/flipped.json", &content).await;
    let stored = fx.store.read_all("m/flipped.json").await.expect("read");
    assert_eq!(differing_bits(&stored, &content), vec![0]);
    put(&faulty, "m/fine.json", &content).await;
    assert_eq!(
        &fx.store.read_all("m/fine.json").await.expect("read")[..],
        content
    );
    assert_eq!(fired(&faulty), vec![1, 1]);
}

async fn lost_delete_keeps_the_object(fx: Fixture) {
    put(&fx.store, "keep", b"still here").await;
    let faulty = fx.store.clone().with_faults(plan("any:delete:lose"));
    faulty
        .delete("keep")
        .await
        .expect("a lost delete reports success");
    assert!(fx.store.stat("keep").await.expect("stat").is_some());
    assert_eq!(fired(&faulty), vec![1]);
}

async fn injected_errors_say_so_on_every_operation(fx: Fixture) {
    put(&fx.store, "e/f.bin", &data(100, 8)).await;
    let upload_to_publish = |store: Store| async move {
        let upload = store.begin_upload("e/up", 4, false).await.expect("begin");
        upload.write_at(0, Bytes::from_static(b"data")).await?;
        upload.publish(None, None).await
    };
    for (op, retryable) in [
        ("read", true),
        ("stat", false),
        ("list", true),
        ("delete", false),
        ("put", true),
        ("write", false),
        ("publish", true),
        ("readback", false),
    ] {
        let kind = if retryable { "retryable" } else { "permanent" };
        let spec = format!("any:{op}:error={kind}");
        let faulty = fx.store.clone().with_faults(plan(&spec));
        let result = match op {
            "read" => faulty.read_all("e/f.bin").await.map(drop),
            "stat" => faulty.stat("e/f.bin").await.map(drop),
            "list" => faulty.list(&mut |_| {}).await.map(drop),
            "delete" => faulty.delete("e/f.bin").await,
            "put" => faulty.write_atomic("e/g", Bytes::new()).await,
            "write" | "publish" => upload_to_publish(faulty.clone()).await,
            _ => {
                let upload = faulty.begin_upload("e/rb", 4, false).await.expect("begin");
                upload.read_back(0, 4).await.map(drop)
            }
        };
        let error = result.expect_err(&spec);
        let text = error.to_string();
        assert!(text.contains("injected fault"), "{spec}: {text}");
        assert!(text.contains(&spec), "names the rule: {text}");
        assert!(!text.contains('\n'), "one line: {text}");
        assert_eq!(error.is_retryable(), retryable, "{spec}");
        assert_eq!(fired(&faulty), vec![1], "{spec}");
    }
    // Nothing was published or deleted by the failed calls.
    assert!(fx.store.stat("e/f.bin").await.expect("stat").is_some());
    assert!(fx.store.stat("e/up").await.expect("stat").is_none());
    assert!(fx.store.stat("e/g").await.expect("stat").is_none());
}

async fn latency_then_the_call_goes_on(fx: Fixture) {
    let content = data(3_000, 9);
    let faulty = fx
        .store
        .clone()
        .with_faults(plan("any:read:latency=1ms;any:put:latency=500us"));
    put(&faulty, "slow.bin", &content).await;
    assert_eq!(
        &faulty.read_all("slow.bin").await.expect("read")[..],
        content
    );
    assert_eq!(fired(&faulty), vec![1, 1]);
}

async fn path_patterns_select_files(fx: Fixture) {
    for rel in ["a.bin", "x/b.bin", "x/c.txt", "logs/bin/d"] {
        put(&fx.store, rel, b"0123456789").await;
    }
    let read_all = |store: Store, rel: &'static str| async move {
        store.read_all(rel).await.map_err(|e| e.to_string())
    };
    let cases: [(&str, &[&str]); 8] = [
        ("*.bin", &["a.bin", "x/b.bin"]),
        ("x/*", &["x/b.bin", "x/c.txt"]),
        ("bin", &["a.bin", "x/b.bin", "logs/bin/d"]),
        ("**/d", &["logs/bin/d"]),
        ("logs/**", &["logs/bin/d"]),
        ("*/*", &["x/b.bin", "x/c.txt"]),
        ("?.bin", &["a.bin", "x/b.bin"]),
        ("x/?.*", &["x/b.bin", "x/c.txt"]),
    ];
    for (pattern, expected) in cases {
        let faulty = fx
            .store
            .clone()
            .with_faults(plan(&format!("any:read:error=permanent:path={pattern}")));
        let mut failed = Vec::new();
        for rel in ["a.bin", "x/b.bin", "x/c.txt", "logs/bin/d"] {
            if read_all(faulty.clone(), rel).await.is_err() {
                failed.push(rel);
            }
        }
        assert_eq!(failed, expected, "path={pattern}");
        assert_eq!(fired(&faulty), vec![expected.len() as u64]);
    }
}

async fn counting_triggers(fx: Fixture) {
    put(&fx.store, "c", b"x").await;
    let faulty = fx.store.clone().with_faults(plan(
        "any:stat:error:nth=3;any:stat:latency=1us:first=2;any:stat:latency=1us",
    ));
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(faulty.stat("c").await.is_ok());
    }
    assert_eq!(outcomes, [true, true, false, true, true, true]);
    let faults = faulty.faults().expect("plan");
    assert_eq!(
        faults.fired_counts(),
        vec![1, 2, 6],
        "every rule that matches fires"
    );
    assert_eq!(faults.matched(0), 6);
    assert_eq!(faults.total_fired(), 9);
    assert_eq!(faults.fired(99), 0);
    // Clones share the counters; another `with_faults` starts a fresh plan.
    let clone = faulty.clone();
    let _ = clone.stat("c").await;
    assert_eq!(faulty.faults().unwrap().matched(0), 7);
    let fresh = faulty.with_faults(plan("any:stat:error:nth=3"));
    assert_eq!(fired(&fresh), vec![0]);
}

async fn no_plan_and_empty_plan_change_nothing(fx: Fixture) {
    let content = data(2_000, 10);
    let store = fx.store.clone().with_faults(FaultPlan::new());
    assert!(store.faults().is_none());
    assert!(fx.store.faults().is_none());
    upload(&store, "n/f", &content, 500).await.expect("upload");
    assert_eq!(&store.read_all("n/f").await.expect("read")[..], content);
    // Rules for other operations or paths leave these calls alone.
    let store = fx
        .store
        .clone()
        .with_faults(plan("any:delete:error;any:read:flip:path=elsewhere"));
    assert_eq!(&store.read_all("n/f").await.expect("read")[..], content);
    assert_eq!(fired(&store), vec![0, 0]);
}

// ---------------------------------------------------------------------------------------
// Local only: the staged bytes of a multi-chunk upload, read back

#[tokio::test]
async fn readback_faults_on_a_local_store() {
    let fx = fixture(Kind::Local).await;
    let faulty = fx.store.clone().with_faults(plan(
        "src:readback:flip=2:nth=1;src:readback:truncate=10:nth=2",
    ));
    let upload = faulty.begin_upload("rb", 100, false).await.expect("begin");
    let content = data(100, 11);
    upload
        .write_at(0, Bytes::from(content.clone()))
        .await
        .expect("write");
    let flipped = upload.read_back(0, 100).await.expect("read back");
    assert_eq!(differing_bits(&flipped, &content), vec![16]);
    let short = upload.read_back(0, 100).await.expect("read back");
    assert_eq!(&short[..], &content[..90]);
    let fine = upload.read_back(0, 100).await.expect("read back");
    assert_eq!(&fine[..], content);
    upload.publish(None, None).await.expect("publish");
    assert_eq!(&fx.store.read_all("rb").await.expect("read")[..], content);
    assert_eq!(fired(&faulty), vec![1, 1]);
}

// ---------------------------------------------------------------------------------------
// Probability rules

/// Which of `calls` (path, offset) reads fail under `spec`, calling them in that order.
async fn failing_reads(store: &Store, spec: &str, calls: &[(String, u64)]) -> Vec<(String, u64)> {
    let faulty = store.clone().with_faults(plan(spec));
    let mut failed = Vec::new();
    for (rel, offset) in calls {
        if faulty.read_range(rel, *offset, 1).await.is_err() {
            failed.push((rel.clone(), *offset));
        }
    }
    failed.sort();
    failed
}

#[tokio::test]
async fn probability_rules_are_deterministic_whatever_the_order() {
    let fx = fixture(Kind::Memory).await;
    put(&fx.store, "a", &data(4096, 1)).await;
    put(&fx.store, "b", &data(4096, 2)).await;
    let calls: Vec<(String, u64)> = (0..4096u64)
        .map(|i| ((if i % 2 == 0 { "a" } else { "b" }).to_string(), i / 2))
        .collect();
    let mut reversed = calls.clone();
    reversed.reverse();

    let spec = "any:read:error=permanent:p=0.05:seed=42";
    let first = failing_reads(&fx.store, spec, &calls).await;
    let again = failing_reads(&fx.store, spec, &reversed).await;
    assert_eq!(
        first, again,
        "same seed, same calls: same failures, in any order"
    );
    // About 5% of 4096 (205); the draw is deterministic, so this is not flaky.
    assert!((150..260).contains(&first.len()), "{}", first.len());

    let other_seed = failing_reads(&fx.store, "any:read:error=permanent:p=5%:seed=7", &calls).await;
    assert_ne!(first, other_seed, "another seed draws other calls");
    assert!((150..260).contains(&other_seed.len()));

    assert!(failing_reads(&fx.store, "any:read:error:p=0", &calls)
        .await
        .is_empty());
    assert_eq!(
        failing_reads(&fx.store, "any:read:error:p=1", &calls)
            .await
            .len(),
        calls.len()
    );
}

#[tokio::test]
async fn a_repeated_call_gets_a_fresh_draw() {
    // A chunk written again after a flip must not be doomed to fail forever: each repeat
    // of the same (path, offset) draws anew, deterministically.
    let fx = fixture(Kind::Memory).await;
    put(&fx.store, "r", b"x").await;
    let faulty = fx
        .store
        .clone()
        .with_faults(plan("any:read:error:p=0.5:seed=3"));
    let mut outcomes = Vec::new();
    for _ in 0..64 {
        outcomes.push(faulty.read_range("r", 0, 1).await.is_ok());
    }
    assert!(outcomes.contains(&true) && outcomes.contains(&false));
    let again = fx
        .store
        .clone()
        .with_faults(plan("any:read:error:p=0.5:seed=3"));
    let mut repeat = Vec::new();
    for _ in 0..64 {
        repeat.push(again.read_range("r", 0, 1).await.is_ok());
    }
    assert_eq!(outcomes, repeat);
}

// ---------------------------------------------------------------------------------------
// The STRATA_FAULTS parser

#[test]
fn valid_specs_parse_to_the_rules_they_name() {
    let flip = |at| FaultEffect::Flip { at };
    let rule = |op, effect| FaultRule::new(op, effect).expect("valid");
    let cases: Vec<(&str, FaultPlan)> = vec![
        (
            "dst:write:flip:nth=3;src:read:error:first=2;dst:publish:lose:path=*.bin",
            FaultPlan::new()
                .rule(rule(FaultOp::Write, flip(None)).side(FaultSide::Dst).nth(3))
                .rule(
                    rule(FaultOp::Read, FaultEffect::Error { retryable: true })
                        .side(FaultSide::Src)
                        .first(2),
                )
                .rule(
                    rule(FaultOp::Publish, FaultEffect::Lose)
                        .side(FaultSide::Dst)
                        .path("*.bin"),
                ),
        ),
        (
            " any:readback:flip=17:every ; ; dst:put:truncate ",
            FaultPlan::new()
                .rule(rule(FaultOp::ReadBack, flip(Some(17))))
                .rule(rule(FaultOp::Put, FaultEffect::Truncate { bytes: 1 }).side(FaultSide::Dst)),
        ),
        (
            "src:stat:error=permanent;any:list:latency=20ms:p=1%:seed=9;dst:delete:lose",
            FaultPlan::new()
                .rule(
                    rule(FaultOp::Stat, FaultEffect::Error { retryable: false })
                        .side(FaultSide::Src),
                )
                .rule(
                    rule(
                        FaultOp::List,
                        FaultEffect::Latency(std::time::Duration::from_millis(20)),
                    )
                    .probability(0.01, 9),
                )
                .rule(rule(FaultOp::Delete, FaultEffect::Lose).side(FaultSide::Dst)),
        ),
        ("", FaultPlan::new()),
        ("  ;  ", FaultPlan::new()),
    ];
    for (spec, expected) in cases {
        let parsed = plan(spec);
        assert_eq!(parsed, expected, "{spec}");
        // Display writes the same syntax back.
        assert_eq!(plan(&parsed.to_string()), parsed, "{parsed}");
        assert_eq!(spec.parse::<FaultPlan>().as_ref(), Ok(&parsed));
    }
    let parsed = plan("dst:write:truncate=4096:p=0.25:seed=5:path=big/");
    assert_eq!(
        parsed.to_string(),
        "dst:write:truncate=4096:p=0.25:seed=5:path=big/"
    );
    assert_eq!(
        parsed.rules()[0],
        rule(FaultOp::Write, FaultEffect::Truncate { bytes: 4096 })
            .side(FaultSide::Dst)
            .trigger(FaultTrigger::Probability { p: 0.25, seed: 5 })
            .path("big/")
    );
}

#[test]
fn malformed_specs_name_the_bad_token_and_what_is_accepted() {
    // (spec, the bad token as quoted in the message, what the message lists as accepted)
    let cases = [
        ("dest:write:flip", "`dest`", "accepted sides: src, dst, any"),
        ("dst", "operation is missing", "accepted operations"),
        ("dst:write", "effect is missing", "accepted effects"),
        (
            "dst:wirte:flip",
            "`wirte`",
            "accepted operations: read, write, readback",
        ),
        (
            "dst:write:smash",
            "`smash`",
            "accepted effects: flip[=OFFSET]",
        ),
        (
            "dst:read:lose",
            "`lose` does not apply to `read`",
            "`read` accepts the effects flip, truncate, error, latency",
        ),
        (
            "dst:stat:flip",
            "`flip` does not apply to `stat`",
            "`stat` accepts the effects error, latency",
        ),
        (
            "dst:publish:truncate",
            "`truncate=1` does not apply",
            "lose, error, latency",
        ),
        ("dst:write:flip=x", "`x`", "accepted effects"),
        (
            "dst:write:truncate=0",
            "`truncate=0`: must be at least 1",
            "accepted effects",
        ),
        ("dst:write:error=maybe", "`maybe`", "accepted effects"),
        ("dst:write:latency", "needs a duration", "latency=DURATION"),
        ("dst:write:latency=5", "`5`", "accepted effects"),
        (
            "dst:write:lose=1",
            "`lose` takes no value",
            "accepted effects",
        ),
        (
            "dst:write:flip:nth=0",
            "`nth=0`: must be at least 1",
            "nth=N, N >= 1",
        ),
        (
            "dst:write:flip:first=-1",
            "`-1` is not a whole number",
            "first=N",
        ),
        (
            "dst:write:flip:nth=2:first=3",
            "`first=3` conflicts with `nth=2`",
            "one of every",
        ),
        (
            "dst:write:flip:p=1.5",
            "`1.5` is not between 0 and 1",
            "p=0.01 or p=1%",
        ),
        ("dst:write:flip:p=NaN", "`NaN`", "p=0.01"),
        (
            "dst:write:flip:seed=4",
            "seed= only applies to probability rules",
            "together with p=",
        ),
        ("dst:write:flip:p=0.1:seed=x", "seed `x`", "seed=N"),
        (
            "dst:write:flip:path=",
            "path= needs a pattern",
            "path=PATTERN",
        ),
        (
            "dst:write:flip:path=a:path=b",
            "`path=b` repeats an option",
            "accepted options",
        ),
        (
            "any:list:error:path=x",
            "a list rule takes no path=",
            "list rules accept",
        ),
        (
            "dst:write:flip:often",
            "unknown option `often`",
            "accepted options: every, nth=N",
        ),
        (
            "dst:write:flip:nth",
            "`nth` needs a value",
            "accepted options",
        ),
        (
            "dst:write:flip:every=2",
            "`every` takes no value",
            "accepted options",
        ),
        ("dst:write:flip;src:read:oops", "`oops`", "accepted effects"),
    ];
    for (spec, reason, accepted) in cases {
        let error = FaultPlan::parse(spec).expect_err(spec);
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("invalid {FAULTS_ENV}: ")),
            "{text}"
        );
        assert!(text.contains(reason), "{spec}: `{reason}` not in: {text}");
        assert!(
            text.contains(accepted),
            "{spec}: `{accepted}` not in: {text}"
        );
        assert!(text.contains("SIDE:OP:EFFECT"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        assert!(spec.contains(error.rule()), "{spec}: rule {}", error.rule());
    }
    // Any input at all: an error or a plan, never a panic.
    for spec in [
        "::::",
        ":",
        ";:;",
        "dst:write:flip=99999999999999999999",
        "any:read:latency=99999999999999999m",
        "dst:write:flip:p=%",
        "é:ü:ß",
        "dst:write:flip:path=**",
    ] {
        let _ = FaultPlan::parse(spec);
    }
}

#[test]
fn rules_are_checked_when_built_too() {
    let error = FaultRule::new(FaultOp::List, FaultEffect::Lose).expect_err("lose on list");
    assert!(
        error
            .to_string()
            .contains("`list` accepts the effects error, latency"),
        "{error}"
    );
    assert_eq!(error.token(), "lose");
    assert!(FaultRule::new(FaultOp::Put, FaultEffect::Flip { at: None }).is_ok());
}

#[test]
fn each_store_of_a_command_gets_its_side() {
    let all = plan("src:read:error;dst:write:flip;any:stat:latency=1ms");
    assert_eq!(
        all.for_side(FaultSide::Src),
        plan("src:read:error;any:stat:latency=1ms")
    );
    assert_eq!(
        all.for_side(FaultSide::Dst),
        plan("dst:write:flip;any:stat:latency=1ms")
    );
    assert_eq!(all.for_side(FaultSide::Any), plan("any:stat:latency=1ms"));
}
