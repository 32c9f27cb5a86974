//! Swift stores against a real one-node Swift cluster, beyond the behaviour suite: token
//! renewal, large objects at the container's top (listed and deleted without their
//! segments), and the failure paths (a missing
//! container, a refused key or token, the cluster killed), each error naming the
//! container and never a credential.

#[macro_use]
mod common;

use bytes::Bytes;
use common::data;
use strata_store::testing::swift::{swift, SwiftServer, SWIFT_USER};
use strata_store::{S3Options, Store, StoreError, StoreUri, SwiftOptions};

async fn open(uri: &str, swift: SwiftOptions) -> Result<Store, StoreError> {
    let options = S3Options {
        swift,
        ..S3Options::default()
    };
    Store::open(&StoreUri::parse(uri).expect("test URI parses"), &options).await
}

#[tokio::test]
async fn a_refused_token_is_renewed_through_v1_authentication() {
    let server = swift();
    let container = server.new_container();
    // A stale token first: the store must authenticate again and carry on.
    let options = SwiftOptions {
        token: Some("AUTH_tkSTALE0000".into()),
        storage_url: Some(server.storage_url()),
        ..server.options()
    };
    let store = open(&format!("swift://{container}"), options)
        .await
        .expect("open");
    store
        .write_atomic("renewed.txt", Bytes::from_static(b"after a 401"))
        .await
        .expect("write after renewal");
    let back = store.read_all("renewed.txt").await.expect("read");
    assert_eq!(&back[..], b"after a 401");
}

#[tokio::test]
async fn a_token_and_storage_url_alone_work() {
    let server = swift();
    let container = server.new_container();
    let options = SwiftOptions {
        token: Some(server.token().expect("token")),
        storage_url: Some(server.storage_url()),
        ..SwiftOptions::default()
    };
    let store = open(&format!("swift://{container}/p"), options)
        .await
        .expect("open");
    store.check_reachable().await.expect("reachable");
    store
        .write_atomic("t.bin", Bytes::from_static(b"token only"))
        .await
        .expect("write");
    assert_eq!(store.stat("t.bin").await.unwrap().expect("there").size, 10);
}

#[tokio::test]
async fn large_objects_at_the_container_top_list_without_their_segments() {
    let server = swift();
    let container = server.new_container();
    let store = open(&format!("swift://{container}"), server.options())
        .await
        .expect("open");
    // Over the 8 MiB part size: a static large object whose segments OpenDAL keeps under
    // `.segments/` in the same container.
    let content = Bytes::from(data(9 * 1024 * 1024 + 11, 5));
    let upload = store
        .begin_upload("big.bin", content.len() as u64, false)
        .await
        .expect("begin");
    upload.write_at(0, content.clone()).await.expect("write");
    upload.publish(None, None).await.expect("publish");
    let back = store.read_all("big.bin").await.expect("read");
    assert!(back == content, "the large object's bytes differ");
    let entries = store.list(&mut |_| {}).await.expect("list");
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["big.bin"], "segments must not be listed");
    let stored = server.object_names(&container);
    assert!(
        stored
            .iter()
            .any(|name| name.starts_with(".segments/big.bin")),
        "the object went up as a large object: {stored:?}"
    );
    // Deleting it removes its segments too, and a plain object is deleted as before.
    store
        .write_atomic("small.txt", Bytes::from_static(b"plain"))
        .await
        .expect("write");
    store
        .delete("big.bin")
        .await
        .expect("delete the large object");
    store
        .delete("small.txt")
        .await
        .expect("delete the plain object");
    store
        .delete("big.bin")
        .await
        .expect("deleting again is no error");
    assert!(store.list(&mut |_| {}).await.expect("list").is_empty());
    assert_eq!(server.object_names(&container), Vec::<String>::new());
}

#[tokio::test]
async fn a_missing_container_says_so() {
    let store = open("swift://no-such-container", swift().options())
        .await
        .expect("open");
    let err = store.check_reachable().await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the container of swift://no-such-container"),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_refused_naming_the_container_not_the_key() {
    let server = swift();
    let container = server.new_container();
    let wrong = "WRONG-SECRET-KEY";
    let options = SwiftOptions {
        key: Some(wrong.into()),
        ..server.options()
    };
    let store = open(&format!("swift://{container}"), options)
        .await
        .expect("open");
    for err in [
        store.check_reachable().await.unwrap_err(),
        store
            .write_atomic("f.txt", Bytes::from_static(b"x"))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Auth { .. }), "{err}");
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(&format!("swift://{container}")), "{text}");
        assert!(text.contains(SWIFT_USER), "{text}");
        assert!(text.contains("ST_KEY"), "{text}");
        assert!(!text.contains(wrong), "{text}");
        assert!(!format!("{err:?}").contains(wrong));
    }
    assert!(!format!("{store:?}").contains(wrong));
}

#[tokio::test]
async fn a_bad_token_without_v1_credentials_is_refused() {
    let server = swift();
    let container = server.new_container();
    let options = SwiftOptions {
        token: Some("AUTH_tkSECRETBAD".into()),
        storage_url: Some(server.storage_url()),
        ..SwiftOptions::default()
    };
    let store = open(&format!("swift://{container}"), options)
        .await
        .expect("open");
    let err = store.check_reachable().await.unwrap_err();
    assert!(matches!(err, StoreError::Auth { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("swift://{container}")), "{text}");
    assert!(text.contains("OS_AUTH_TOKEN"), "{text}");
    assert!(!text.contains("SECRETBAD"), "{text}");
}

#[tokio::test]
async fn no_credentials_say_what_to_set() {
    let err = open("swift://data", SwiftOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Auth { .. }), "{err}");
    assert!(
        err.to_string().contains("ST_AUTH, ST_USER and ST_KEY"),
        "{err}"
    );
}

#[tokio::test]
async fn a_killed_cluster_is_reported_unreachable() {
    let server = SwiftServer::dedicated();
    let container = server.new_container();
    let uri = format!("swift://{container}/p");
    let store = open(&uri, server.options()).await.expect("open");
    store
        .write_atomic("a.bin", Bytes::from_static(b"before the crash"))
        .await
        .expect("write while Swift runs");
    server.kill();
    let read = store.read_all("a.bin").await.unwrap_err();
    let probe = store.check_reachable().await.unwrap_err();
    for (err, names) in [(read, format!("{uri}/a.bin")), (probe, uri.clone())] {
        assert!(matches!(err, StoreError::Unreachable { .. }), "{err}");
        assert!(err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(&names), "{text}");
    }
}

#[tokio::test]
async fn authentication_against_a_dead_auth_url_is_reported_unreachable() {
    let port = strata_store::testing::free_port();
    let options = SwiftOptions {
        auth_url: Some(format!("http://127.0.0.1:{port}/auth/v1.0")),
        user: Some(SWIFT_USER.into()),
        key: Some("k".into()),
        ..SwiftOptions::default()
    };
    let store = open("swift://gone", options).await.expect("open");
    let err = store.check_reachable().await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("swift://gone"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}
