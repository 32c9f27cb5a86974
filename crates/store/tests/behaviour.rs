//! One behaviour suite, run against every kind of store: memory, local (temp dir), two
//! real S3 servers on loopback (moto and SeaweedFS), Azurite, fake-gcs-server and Swift.

#[macro_use]
mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{data, fixture, Fixture, Kind};
use strata_store::{Entry, ListWarning, StoreError};

/// Every behaviour, on every store kind, SeaweedFS and Swift included.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        behaviours!($($name),*);
        seaweedfs_behaviours!($($name),*);
        swift_behaviours!($($name),*);
    };
}

suite!(
    list_is_recursive_sorted_and_skips_metadata,
    stat_finds_files_and_reports_missing_ones,
    read_range_at_odd_offsets,
    write_atomic_replaces_content,
    upload_out_of_order_chunks_then_publish,
    abort_leaves_nothing_under_final_name,
    empty_file_uploads_and_lists,
    delete_is_idempotent,
    invalid_relative_paths_are_rejected,
    short_reads_are_errors,
);

async fn put(fx: &Fixture, rel: &str, bytes: &[u8]) {
    fx.store
        .write_atomic(rel, Bytes::copy_from_slice(bytes))
        .await
        .unwrap_or_else(|e| panic!("write {rel}: {e}"));
}

async fn list(fx: &Fixture) -> (Vec<Entry>, Vec<ListWarning>) {
    let mut warnings = Vec::new();
    let entries = fx
        .store
        .list(&mut |w| warnings.push(w))
        .await
        .expect("list");
    (entries, warnings)
}

async fn list_is_recursive_sorted_and_skips_metadata(fx: Fixture) {
    let files = [
        ("z.txt", 3usize),
        ("a/b/c/deep.bin", 1000),
        ("a.txt", 5),
        ("a/b.txt", 7),
        ("a/.strata/not-top-level", 2),
        ("dir with space/é.txt", 4),
        (".hidden", 1),
    ];
    for (i, (path, len)) in files.iter().enumerate() {
        put(&fx, path, &data(*len, i as u64)).await;
    }
    put(&fx, ".strata/manifest.json", b"{}").await;
    put(&fx, ".strata/staging/x.part", b"partial").await;

    let (entries, warnings) = list(&fx).await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut expected: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
    expected.sort();
    assert_eq!(paths, expected);
    for (path, len) in files {
        let entry = entries.iter().find(|e| e.path == path).expect("listed");
        assert_eq!(entry.size, len as u64, "{path}");
    }
    if fx.kind == Kind::Local {
        assert!(entries
            .iter()
            .all(|e| e.mode.is_some() && e.mtime.is_some()));
    }
}

async fn stat_finds_files_and_reports_missing_ones(fx: Fixture) {
    put(&fx, "d/file.bin", &data(4321, 1)).await;
    let entry = fx
        .store
        .stat("d/file.bin")
        .await
        .expect("stat")
        .expect("present");
    assert_eq!(entry.path, "d/file.bin");
    assert_eq!(entry.size, 4321);
    if fx.kind != Kind::Memory {
        assert!(entry.mtime.is_some(), "{:?}: mtime missing", fx.kind);
    }
    assert!(fx.store.stat("d/missing").await.expect("stat").is_none());
    assert!(fx
        .store
        .stat("nowhere/at/all")
        .await
        .expect("stat")
        .is_none());
    assert!(fx
        .store
        .stat("d/file.bin/below")
        .await
        .expect("stat")
        .is_none());
}

async fn read_range_at_odd_offsets(fx: Fixture) {
    let content = data(100_003, 7);
    put(&fx, "r.bin", &content).await;
    for (offset, len) in [
        (0u64, 1u64),
        (1, 4095),
        (4097, 33_333),
        (99_999, 4),
        (12_345, 0),
    ] {
        let got = fx
            .store
            .read_range("r.bin", offset, len)
            .await
            .expect("read_range");
        let (o, l) = (offset as usize, len as usize);
        assert_eq!(&got[..], &content[o..o + l], "range {offset}+{len}");
    }
    let all = fx.store.read_all("r.bin").await.expect("read_all");
    assert_eq!(&all[..], &content[..]);
}

async fn write_atomic_replaces_content(fx: Fixture) {
    put(&fx, "meta/state.json", b"first version").await;
    assert_eq!(
        &fx.store.read_all("meta/state.json").await.unwrap()[..],
        b"first version"
    );
    put(&fx, "meta/state.json", b"second").await;
    assert_eq!(
        &fx.store.read_all("meta/state.json").await.unwrap()[..],
        b"second"
    );
    let (entries, _) = list(&fx).await;
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["meta/state.json"], "no temp files left behind");
    let missing = fx.store.read_all("meta/other.json").await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
    assert!(!missing.is_retryable());
}

async fn upload_out_of_order_chunks_then_publish(fx: Fixture) {
    // 18 MiB + a bit: several 8 MiB multipart parts on S3.
    const CHUNK: usize = 1024 * 1024 + 17;
    let content = Bytes::from(data(18 * 1024 * 1024 + 4321, 42));
    let size = content.len() as u64;
    let upload = Arc::new(
        fx.store
            .begin_upload("out/big.bin", size, false)
            .await
            .expect("begin"),
    );
    assert!(!upload.resumed());
    let offsets: Vec<usize> = (0..content.len()).step_by(CHUNK).collect();
    // Windows of four chunks, each window written concurrently in reverse order.
    for window in offsets.chunks(4) {
        let mut tasks = Vec::new();
        for &offset in window.iter().rev() {
            let upload = Arc::clone(&upload);
            let chunk = content.slice(offset..(offset + CHUNK).min(content.len()));
            tasks.push(tokio::spawn(async move {
                upload.write_at(offset as u64, chunk).await
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("task").expect("write_at");
        }
    }
    // A retried chunk (already written) is harmless.
    upload
        .write_at(0, content.slice(0..CHUNK))
        .await
        .expect("rewrite");
    if upload.supports_read_back() {
        let back = upload
            .read_back(CHUNK as u64 - 3, 10)
            .await
            .expect("read back");
        assert_eq!(&back[..], &content[CHUNK - 3..CHUNK + 7]);
    }
    let past_end = upload.write_at(size - 1, Bytes::from_static(b"xx")).await;
    assert!(past_end.is_err(), "writing past the size must fail");

    assert!(
        fx.store.stat("out/big.bin").await.unwrap().is_none(),
        "visible before publish"
    );
    let upload = Arc::try_unwrap(upload).expect("sole owner");
    upload.publish(None, Some(0o640)).await.expect("publish");

    let entry = fx
        .store
        .stat("out/big.bin")
        .await
        .unwrap()
        .expect("published");
    assert_eq!(entry.size, size);
    let back = fx.store.read_all("out/big.bin").await.expect("read back");
    assert!(back == content, "published bytes differ");
    let (entries, _) = list(&fx).await;
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["out/big.bin"], "staging must not be listed");
}

async fn abort_leaves_nothing_under_final_name(fx: Fixture) {
    let content = Bytes::from(data(3 * 1024 * 1024, 3));
    let upload = fx
        .store
        .begin_upload("x/aborted.bin", content.len() as u64, false)
        .await
        .expect("begin");
    upload
        .write_at(0, content.slice(0..1024 * 1024))
        .await
        .expect("write");
    upload.abort().await.expect("abort");
    assert!(fx.store.stat("x/aborted.bin").await.unwrap().is_none());
    let (entries, _) = list(&fx).await;
    assert!(entries.is_empty(), "{entries:?}");
    if let Some(root) = fx.store.local_root() {
        let staging = root.join(".strata/staging");
        let left: Vec<_> = std::fs::read_dir(&staging)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "staging files left: {left:?}");
    }
}

async fn empty_file_uploads_and_lists(fx: Fixture) {
    let upload = fx
        .store
        .begin_upload("e/empty", 0, true)
        .await
        .expect("begin");
    upload.publish(None, None).await.expect("publish");
    let entry = fx.store.stat("e/empty").await.unwrap().expect("published");
    assert_eq!(entry.size, 0);
    if fx.kind == Kind::Local {
        // No mode given: the usual mode of a new file, not the owner-only staging mode.
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022);
        assert_eq!(entry.mode, Some(0o666 & !umask), "{entry:?}");
    }
    assert!(fx.store.read_all("e/empty").await.unwrap().is_empty());
    let (entries, _) = list(&fx).await;
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].path.as_str(), entries[0].size), ("e/empty", 0));
}

async fn delete_is_idempotent(fx: Fixture) {
    put(&fx, "del/me", b"bye").await;
    put(&fx, "del/keep", b"stay").await;
    fx.store.delete("del/me").await.expect("delete");
    assert!(fx.store.stat("del/me").await.unwrap().is_none());
    fx.store
        .delete("del/me")
        .await
        .expect("second delete succeeds");
    let (entries, _) = list(&fx).await;
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["del/keep"]);
}

async fn invalid_relative_paths_are_rejected(fx: Fixture) {
    for bad in [
        "",
        "/abs",
        "a//b",
        "a/../b",
        "./a",
        "a/.",
        "nul\0byte",
        "trailing/",
    ] {
        let err = fx.store.stat(bad).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidPath { .. }),
            "{bad:?}: {err}"
        );
        let err = fx
            .store
            .write_atomic(bad, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidPath { .. }),
            "{bad:?}: {err}"
        );
        assert!(
            fx.store.begin_upload(bad, 1, false).await.is_err(),
            "{bad:?}"
        );
    }
}

async fn short_reads_are_errors(fx: Fixture) {
    put(&fx, "short", b"0123456789").await;
    let err = fx.store.read_range("short", 5, 10).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(fx.store.read_range("short", u64::MAX, 2).await.is_err());
}
