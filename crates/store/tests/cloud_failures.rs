//! Failure paths of the Azure Blob and GCS stores, against Azurite and fake-gcs-server:
//! a missing container or bucket, refused or unusable credentials (never printed), an
//! emulator killed while a store is in use, settings that are missing.

#[macro_use]
mod common;

use bytes::Bytes;
use common::{azurite, fake_gcs, test_s3_options, AZURITE_ACCOUNT};
use strata_store::testing::emulators::{Emulator, EmulatorKind};
use strata_store::{AzblobOptions, GcsOptions, S3Options, Store, StoreError, StoreUri};

async fn open(uri: &str, options: &S3Options) -> Result<Store, StoreError> {
    Store::open(&StoreUri::parse(uri).expect("test URI parses"), options).await
}

#[tokio::test]
async fn a_missing_container_says_so() {
    let uri = format!(
        "azblob://no-such-container?endpoint={}",
        azurite().endpoint()
    );
    let store = open(&uri, &test_s3_options()).await.expect("open");
    let err = store.check_reachable().await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("the container of azblob://no-such-container"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_bucket_says_so() {
    let uri = format!("gs://no-such-bucket?endpoint={}", fake_gcs().endpoint());
    let store = open(&uri, &test_s3_options()).await.expect("open");
    let err = store.check_reachable().await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the bucket of gs://no-such-bucket"),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_account_key_is_refused_without_printing_it() {
    let azurite = azurite();
    let container = azurite.new_namespace();
    // Valid base64, wrong key: Azurite checks the SharedKey signature.
    let wrong_key = "V1JPTkdLRVlXUk9OR0tFWVdST05HS0VZV1JPTkdLRVk=";
    let options = S3Options {
        azblob: AzblobOptions {
            account: Some(AZURITE_ACCOUNT.into()),
            account_key: Some(wrong_key.into()),
            ..AzblobOptions::default()
        },
        ..S3Options::default()
    };
    let uri = format!("azblob://{container}?endpoint={}", azurite.endpoint());
    let store = open(&uri, &options).await.expect("open");
    for err in [
        store.check_reachable().await.unwrap_err(),
        store
            .write_atomic("f.txt", Bytes::from_static(b"x"))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Auth { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("AZURE_STORAGE_KEY"), "{text}");
        assert!(text.contains(&format!("azblob://{container}")), "{text}");
        assert!(!text.contains(wrong_key), "{text}");
        assert!(!format!("{err:?}").contains(wrong_key));
    }
    assert!(!format!("{store:?}").contains(wrong_key));
}

#[tokio::test]
async fn an_unusable_gcs_key_file_is_named_not_printed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("key.json");
    std::fs::write(
        &key_file,
        r#"{"type": "service_account", "private_key": "SECRET-PEM"#,
    )
    .expect("write key file");
    let options = S3Options {
        gcs: GcsOptions {
            credential_path: Some(key_file.display().to_string()),
            ..GcsOptions::default()
        },
        ..S3Options::default()
    };
    let bucket = fake_gcs().new_namespace();
    let uri = format!("gs://{bucket}?endpoint={}", fake_gcs().endpoint());
    let err = match open(&uri, &options).await {
        Err(err) => err,
        Ok(store) => store.check_reachable().await.unwrap_err(),
    };
    let text = err.to_string();
    assert!(text.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{text}");
    assert!(text.contains("key.json"), "{text}");
    assert!(!text.contains("SECRET-PEM"), "{text}");
}

#[tokio::test]
async fn an_azure_store_without_account_or_endpoint_says_what_to_set() {
    let err = open("azblob://data", &S3Options::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUri { .. }), "{err}");
    assert!(err.to_string().contains("AZURE_STORAGE_ACCOUNT"), "{err}");
}

/// Writes a file, kills the emulator, and checks that reading it and probing the store
/// both fail as unreachable, retryable, naming the URI (and the file read).
async fn killed_emulator_is_reported_unreachable(kind: EmulatorKind, scheme: &str) {
    let emulator = Emulator::dedicated(kind);
    let namespace = emulator.new_namespace();
    let endpoint = emulator.endpoint();
    let uri = format!("{scheme}://{namespace}/p?endpoint={endpoint}");
    let store = open(&uri, &test_s3_options()).await.expect("open");
    store
        .write_atomic("a.bin", Bytes::from_static(b"before the crash"))
        .await
        .expect("write while the emulator runs");
    emulator.kill();
    let read = store.read_all("a.bin").await.unwrap_err();
    let probe = store.check_reachable().await.unwrap_err();
    let shown = StoreUri::parse(&uri).unwrap().to_string();
    for (err, names) in [(read, format!("{shown}/a.bin")), (probe, shown)] {
        assert!(matches!(err, StoreError::Unreachable { .. }), "{err}");
        assert!(err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains(&names), "{text}");
    }
}

#[tokio::test]
async fn azurite_killed_mid_test_is_reported_unreachable() {
    killed_emulator_is_reported_unreachable(EmulatorKind::Azurite, "azblob").await;
}

#[tokio::test]
async fn fake_gcs_killed_mid_test_is_reported_unreachable() {
    killed_emulator_is_reported_unreachable(EmulatorKind::FakeGcs, "gs").await;
}
