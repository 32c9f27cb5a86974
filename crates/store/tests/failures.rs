//! Failure paths and local-only behaviour: bad URIs, dead endpoints, refused credentials,
//! missing buckets, odd local files, resumed uploads, and secrets kept out of output.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use common::{data, free_port, moto, moto_with_auth, test_s3_options, unique};
use strata_store::{ListWarningKind, S3Options, Store, StoreError, StoreScheme, StoreUri, Upload};

const SECRET: &str = "Sup3rS3cretValueNeverPrinted";
const KEY_ID: &str = "AKIANEVERPRINTED";

async fn open(uri: &str, s3: &S3Options) -> Store {
    let uri = StoreUri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
    Store::open(&uri, s3).await.expect("open")
}

fn secret_options() -> S3Options {
    S3Options {
        access_key_id: Some(KEY_ID.into()),
        secret_access_key: Some(SECRET.into()),
        session_token: Some(format!("token-{SECRET}")),
        ..S3Options::default()
    }
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(!text.contains(KEY_ID), "access key id leaked: {text}");
}

#[test]
fn invalid_uris_say_what_is_accepted() {
    let cases = [
        "",
        "   ",
        "ftp://host/dir",
        "http://example.com/x",
        "s3://",
        "s3:///prefix",
        "s3://Bad_Bucket",
        "s3://ab",
        "s3://-bucket",
        "s3://192.168.1.1",
        "s3://bucket/a/../b",
        "s3://bucket/a//b",
        "s3://bucket?unknown=1",
        "s3://bucket?endpoint=ftp://host",
        "s3://bucket?endpoint=not-a-url",
        "s3://bucket?path_style=maybe",
        "s3://bucket?region=us%20east",
        "s3://bucket?region=a&region=b",
        "memory://bad name!",
        "file://relative/path",
        "file:///tmp/x?query=1",
        "with\0nul",
    ];
    for input in cases {
        let err = StoreUri::parse(input).expect_err(input);
        assert!(
            matches!(err, StoreError::InvalidUri { .. }),
            "{input:?}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("accepted:") && msg.contains("s3://bucket"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(!err.is_retryable());
    }
}

#[test]
fn credentials_in_uris_are_rejected_and_redacted() {
    let cases = [
        format!("s3://{KEY_ID}:{SECRET}@bucket/prefix"),
        format!("s3://bucket?secret_access_key={SECRET}"),
        format!("s3://bucket?access_key_id={KEY_ID}&region=us-east-1"),
        format!("s3://bucket?aws_session_token={SECRET}"),
        format!("s3://bucket?endpoint=http://{KEY_ID}:{SECRET}@127.0.0.1:9000"),
    ];
    for input in &cases {
        let err = StoreUri::parse(input).expect_err(input);
        assert!(matches!(err, StoreError::InvalidUri { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("AWS_ACCESS_KEY_ID"), "{msg}");
        assert_no_secret(&msg);
        assert_no_secret(&format!("{err:?}"));
    }
}

#[test]
fn valid_uris_parse_and_round_trip() {
    let cwd = std::env::current_dir().expect("cwd");
    let rel = StoreUri::parse("some/rel/dir").expect("relative path");
    assert_eq!(rel.scheme(), StoreScheme::File);
    assert_eq!(rel.local_path(), Some(cwd.join("some/rel/dir").as_path()));

    let abs = StoreUri::parse("/data/./x/").expect("absolute path");
    assert_eq!(abs.local_path(), Some(Path::new("/data/x")));

    let file = StoreUri::parse("file:///tmp/a%20b/c").expect("file URI");
    assert_eq!(file.local_path(), Some(Path::new("/tmp/a b/c")));

    let s3 = StoreUri::parse(
        "S3://my.bucket-1/a/b c/?endpoint=http://127.0.0.1:9000/&region=eu-west-1&path_style=false",
    )
    .expect("s3 URI");
    assert_eq!(s3.scheme(), StoreScheme::S3);
    assert_eq!(s3.bucket(), Some("my.bucket-1"));
    assert_eq!(s3.prefix(), "a/b c");
    assert_eq!(s3.endpoint(), Some("http://127.0.0.1:9000"));
    assert_eq!(s3.region(), Some("eu-west-1"));
    assert_eq!(s3.path_style(), Some(false));

    let bare = StoreUri::parse("s3://bucket").expect("bucket only");
    assert_eq!(
        (bare.bucket(), bare.prefix(), bare.endpoint()),
        (Some("bucket"), "", None)
    );

    let mem = StoreUri::parse("memory://").expect("memory");
    assert_eq!(mem.memory_name(), Some(strata_store::DEFAULT_MEMORY_NAME));
    let mem = StoreUri::parse("memory://n1/p/q").expect("memory with prefix");
    assert_eq!((mem.memory_name(), mem.prefix()), (Some("n1"), "p/q"));

    for uri in [&rel, &abs, &file, &s3, &bare, &mem] {
        let again = StoreUri::parse(&uri.to_string()).expect("display parses");
        assert_eq!(&again, uri, "round trip of {uri}");
    }
}

#[test]
fn s3_options_read_the_standard_variables() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        S3Options::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    };
    let opts = env(&[
        ("AWS_ENDPOINT_URL", "http://general:1"),
        ("AWS_ENDPOINT_URL_S3", "http://s3-specific:2"),
        ("AWS_DEFAULT_REGION", "eu-west-3"),
        ("AWS_ACCESS_KEY_ID", "id"),
        ("AWS_SECRET_ACCESS_KEY", "sk"),
        ("AWS_SESSION_TOKEN", ""),
        ("STRATA_S3_PATH_STYLE", "FALSE"),
    ]);
    assert_eq!(opts.endpoint.as_deref(), Some("http://s3-specific:2"));
    assert_eq!(opts.region.as_deref(), Some("eu-west-3"));
    assert_eq!(opts.path_style, Some(false));
    assert!(opts.has_credentials());
    assert_eq!(opts.session_token, None, "empty means unset");

    let opts = env(&[
        ("AWS_REGION", "us-west-2"),
        ("AWS_DEFAULT_REGION", "x"),
        ("STRATA_S3_PATH_STYLE", "what"),
    ]);
    assert_eq!(opts.region.as_deref(), Some("us-west-2"));
    assert_eq!(opts.path_style, None);
    assert!(!opts.has_credentials());
}

#[tokio::test]
async fn secrets_never_appear_in_debug_or_display() {
    let opts = secret_options();
    let debug = format!("{opts:?}");
    assert_no_secret(&debug);
    assert!(debug.contains("<redacted>"), "{debug}");

    let store = open("s3://some-bucket/p?endpoint=http://127.0.0.1:9", &opts).await;
    assert_no_secret(&format!("{store:?}"));
    assert_no_secret(&store.display());
    let err = store
        .check_reachable()
        .await
        .expect_err("nothing listens on port 9");
    assert_no_secret(&err.to_string());
    assert_no_secret(&format!("{err:?}"));
}

#[tokio::test]
async fn unreachable_endpoint_fails_fast() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let store = open(
        &format!("s3://bucket?endpoint={endpoint}"),
        &test_s3_options(),
    )
    .await;
    let started = Instant::now();
    let err = store.check_reachable().await.expect_err("nothing listens");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    match &err {
        StoreError::Unreachable { endpoint: e, .. } => assert_eq!(e, &endpoint),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(err.to_string().contains(&endpoint), "{err}");
}

#[tokio::test]
async fn silent_endpoint_times_out_as_unreachable() {
    // Accepts connections (the kernel does, from the backlog) but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let store = open(
        &format!("s3://bucket?endpoint={endpoint}"),
        &test_s3_options(),
    )
    .await;
    let started = Instant::now();
    let err = store.check_reachable().await.expect_err("no answer");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());
    drop(listener);
}

#[tokio::test]
async fn wrong_credentials_are_auth_errors() {
    // Moto accepts any key by default; this instance has authentication turned on, so an
    // unknown key gets 403 InvalidAccessKeyId, like AWS.
    let moto = moto_with_auth();
    let store = open(
        &format!("s3://any-bucket/p?endpoint={}", moto.endpoint()),
        &secret_options(),
    )
    .await;
    let err = store.check_reachable().await.expect_err("unknown key");
    assert!(matches!(err, StoreError::Auth { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(msg.contains("AWS_SECRET_ACCESS_KEY"), "{msg}");
    assert!(msg.contains("InvalidAccessKeyId"), "{msg}");
    assert_no_secret(&msg);
}

#[tokio::test]
async fn missing_bucket_is_not_found() {
    let store = open(
        &format!(
            "s3://{}?endpoint={}",
            unique("no-such-bucket"),
            moto().endpoint()
        ),
        &test_s3_options(),
    )
    .await;
    let err = store.check_reachable().await.expect_err("no bucket");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let err = store.list(&mut |_| {}).await.expect_err("no bucket");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn memory_stores_are_shared_by_name_and_isolated_by_prefix() {
    let name = unique("shared");
    let a = open(&format!("memory://{name}/p1"), &S3Options::default()).await;
    let a_again = open(&format!("memory://{name}/p1"), &S3Options::default()).await;
    let b = open(&format!("memory://{name}/p2"), &S3Options::default()).await;
    a.write_atomic("f", Bytes::from_static(b"one"))
        .await
        .unwrap();
    b.write_atomic("g", Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(&a_again.read_all("f").await.unwrap()[..], b"one");
    let names = |entries: Vec<strata_store::Entry>| -> Vec<String> {
        entries.into_iter().map(|e| e.path).collect()
    };
    assert_eq!(names(a.list(&mut |_| {}).await.unwrap()), ["f"]);
    assert_eq!(names(b.list(&mut |_| {}).await.unwrap()), ["g"]);
    a.check_reachable()
        .await
        .expect("memory is always reachable");
}

#[tokio::test]
async fn incomplete_object_upload_is_not_published() {
    let store = open(
        &format!("memory://{}", unique("incomplete")),
        &S3Options::default(),
    )
    .await;
    let upload = store.begin_upload("f", 10, false).await.unwrap();
    upload
        .write_at(5, Bytes::from_static(b"56789"))
        .await
        .unwrap();
    let err = upload
        .publish(None, None)
        .await
        .expect_err("bytes 0..5 missing");
    assert!(err.to_string().contains("incomplete"), "{err}");
    assert!(store.stat("f").await.unwrap().is_none());
}

#[tokio::test]
async fn local_listing_reports_odd_files_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.txt"), b"a").unwrap();
    std::fs::write(root.join("sub/b.txt"), b"bb").unwrap();
    symlink(root.join("a.txt"), root.join("link-to-a")).unwrap();
    symlink("..", root.join("sub/loop")).unwrap();
    symlink(root.join("nowhere"), root.join("dangling")).unwrap();
    let fifo = std::ffi::CString::new(root.join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    std::fs::write(root.join(OsStr::from_bytes(b"bad-\xff-name")), b"x").unwrap();
    std::fs::write(root.join("locked.txt"), b"secret").unwrap();
    set_mode(&root.join("locked.txt"), 0o000);
    std::fs::create_dir(root.join("locked-dir")).unwrap();
    std::fs::write(root.join("locked-dir/inner"), b"i").unwrap();
    set_mode(&root.join("locked-dir"), 0o000);
    std::fs::create_dir_all(root.join(".strata/staging")).unwrap();
    std::fs::write(root.join(".strata/staging/x.part"), b"p").unwrap();

    let store = open(&root.display().to_string(), &S3Options::default()).await;
    let mut warnings = Vec::new();
    let entries = store
        .list(&mut |w| warnings.push(w))
        .await
        .expect("list goes on");
    set_mode(&root.join("locked-dir"), 0o755);

    // Root can read anything: permission bits only bite for other users.
    let privileged = unsafe { libc::geteuid() } == 0;
    let mut expected = vec!["a.txt", "link-to-a", "sub/b.txt"];
    if privileged {
        expected.extend(["locked-dir/inner", "locked.txt"]);
        expected.sort();
    }
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, expected);

    let has = |path: &str, kind: ListWarningKind| {
        warnings.iter().any(|w| w.path == path && w.kind == kind)
    };
    assert!(
        has("sub/loop", ListWarningKind::SymlinkLoop),
        "{warnings:#?}"
    );
    assert!(has("pipe", ListWarningKind::SpecialFile), "{warnings:#?}");
    assert!(
        has("dangling", ListWarningKind::Unreadable),
        "{warnings:#?}"
    );
    assert!(
        has("bad-\u{fffd}-name", ListWarningKind::InvalidName),
        "{warnings:#?}"
    );
    if !privileged {
        assert!(
            has("locked.txt", ListWarningKind::Unreadable),
            "{warnings:#?}"
        );
        assert!(
            has("locked-dir", ListWarningKind::Unreadable),
            "{warnings:#?}"
        );
    }
    assert!(warnings
        .iter()
        .all(|w| !w.message.is_empty() && !w.message.contains('\n')));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn local_root_must_be_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();

    let store = open(&file.display().to_string(), &S3Options::default()).await;
    let err = store.list(&mut |_| {}).await.expect_err("a file");
    assert!(matches!(err, StoreError::NotADirectory { .. }), "{err:?}");
    assert!(
        err.to_string().contains("migrate copies directories"),
        "{err}"
    );
    let err = store.check_reachable().await.expect_err("a file");
    assert!(matches!(err, StoreError::NotADirectory { .. }), "{err:?}");

    let missing = open(
        &dir.path().join("missing").display().to_string(),
        &S3Options::default(),
    )
    .await;
    let err = missing.list(&mut |_| {}).await.expect_err("missing");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    missing.ensure_root().await.expect("create");
    assert!(missing
        .list(&mut |_| {})
        .await
        .expect("now empty")
        .is_empty());
}

#[tokio::test]
async fn local_upload_resumes_after_interruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().display().to_string(), &S3Options::default()).await;
    let content = Bytes::from(data(300_000, 9));
    let size = content.len() as u64;
    let chunk = |i: usize| content.slice(i * 100_000..(i + 1) * 100_000);

    let first = store
        .begin_upload("deep/dir/file.bin", size, true)
        .await
        .unwrap();
    assert!(!first.resumed(), "nothing to resume yet");
    first.write_at(0, chunk(0)).await.unwrap();
    first.write_at(200_000, chunk(2)).await.unwrap();
    first.sync().await.unwrap();
    drop::<Upload>(first); // crash: neither published nor aborted

    assert!(store.stat("deep/dir/file.bin").await.unwrap().is_none());
    let wrong_size = store
        .begin_upload("deep/dir/file.bin", size + 1, true)
        .await
        .unwrap();
    assert!(
        !wrong_size.resumed(),
        "a staging file of another size is not reused"
    );
    wrong_size.abort().await.unwrap();

    let first = store
        .begin_upload("deep/dir/file.bin", size, false)
        .await
        .unwrap();
    first.write_at(0, chunk(0)).await.unwrap();
    first.write_at(200_000, chunk(2)).await.unwrap();
    drop(first);
    let resumed = store
        .begin_upload("deep/dir/file.bin", size, true)
        .await
        .unwrap();
    assert!(resumed.resumed());
    assert_eq!(resumed.read_back(0, 100_000).await.unwrap(), chunk(0));
    assert_eq!(resumed.read_back(200_000, 100_000).await.unwrap(), chunk(2));
    resumed.write_at(100_000, chunk(1)).await.unwrap();

    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    resumed.publish(Some(mtime), Some(0o604)).await.unwrap();
    let path = dir.path().join("deep/dir/file.bin");
    assert_eq!(std::fs::read(&path).unwrap(), content);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o604);
    assert_eq!(meta.modified().unwrap(), mtime);
    let entry = store.stat("deep/dir/file.bin").await.unwrap().unwrap();
    assert_eq!(
        (entry.size, entry.mode, entry.mtime),
        (size, Some(0o604), Some(mtime))
    );
    let staging = std::fs::read_dir(dir.path().join(".strata/staging"))
        .unwrap()
        .count();
    assert_eq!(staging, 0, "staging file moved, not copied");
}

#[test]
fn error_messages_are_one_line_and_say_what_to_do() {
    let cases = [
        (
            StoreError::NoSpace {
                path: "/dst/f".into(),
            },
            "free space and re-run",
            false,
        ),
        (
            StoreError::NotFound {
                path: "/src".into(),
            },
            "check the path",
            false,
        ),
        (
            StoreError::PermissionDenied { path: "/x".into() },
            "ownership or mode",
            false,
        ),
        (
            StoreError::Unreachable {
                endpoint: "http://h:1".into(),
                detail: "refused".into(),
            },
            "check that the server is running",
            true,
        ),
        (
            StoreError::Auth {
                uri: "s3://b".into(),
                detail: "InvalidAccessKeyId".into(),
            },
            "AWS_ACCESS_KEY_ID",
            false,
        ),
        (
            StoreError::Backend {
                path: "k".into(),
                detail: "503".into(),
                retryable: true,
            },
            "re-run",
            true,
        ),
    ];
    for (err, advice, retryable) in cases {
        let msg = err.to_string();
        assert!(msg.contains(advice), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert_eq!(err.is_retryable(), retryable, "{msg}");
    }
    let no_space = StoreError::NoSpace {
        path: "/dst/f".into(),
    }
    .to_string();
    assert_eq!(
        no_space,
        "destination disk is full while writing /dst/f; free space and re-run the same command to resume"
    );
}

/// Found by `no_panics::uri_like_inputs_never_panic`: the URI as shown (percent-decoded by
/// the redaction of credentials) put a newline in the message.
#[test]
fn a_uri_error_stays_on_one_line_with_control_characters_escaped() {
    let err = StoreUri::parse("s3://?=@%0a").unwrap_err().to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.starts_with("invalid store URI `s3://?=@\\n`"), "{err}");
}

/// Found by the fuzz target `uri` (crates/fuzz): a file URI whose path holds bytes that
/// are not UTF-8 printed them as U+FFFD, so it named another path once printed (and two
/// such datasets named one job).
#[test]
fn a_file_uri_with_bytes_that_are_not_utf8_prints_to_the_same_path() {
    let uri = StoreUri::parse("file:///data/set-%A5/x%EF%BF%BD").unwrap();
    let printed = uri.to_string();
    assert_eq!(printed, "file:///data/set-%A5/x%EF%BF%BD");
    assert_eq!(StoreUri::parse(&printed).unwrap(), uri);
    let other = StoreUri::parse("file:///data/set-%A6/x%EF%BF%BD").unwrap();
    assert_ne!(other.to_string(), printed);
}

mod no_panics {
    use proptest::prelude::*;
    use strata_store::StoreUri;

    proptest! {
        #[test]
        fn uri_parsing_never_panics_and_valid_uris_round_trip(input in "\\PC{0,80}") {
            if let Ok(uri) = StoreUri::parse(&input) {
                let again = StoreUri::parse(&uri.to_string());
                prop_assert_eq!(again.ok(), Some(uri));
            }
        }

        #[test]
        fn uri_like_inputs_never_panic(
            scheme in "(s3|S3|file|memory|ftp|)",
            rest in "[a-z0-9.@:/?&=%#_ -]{0,60}",
        ) {
            let input = format!("{scheme}://{rest}");
            if let Ok(uri) = StoreUri::parse(&input) {
                let again = StoreUri::parse(&uri.to_string());
                prop_assert_eq!(again.ok(), Some(uri));
            } else if let Err(err) = StoreUri::parse(&input) {
                prop_assert!(!err.to_string().contains('\n'));
            }
        }
    }
}
