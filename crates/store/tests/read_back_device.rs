//! `Upload::read_back_from_device`: staged bytes read back with direct I/O, past the page
//! cache (what `strata migrate --verify device` relies on).

use bytes::Bytes;
use strata_store::{S3Options, Store, StoreUri};

async fn open(uri: &str) -> Store {
    Store::open(&StoreUri::parse(uri).unwrap(), &S3Options::default())
        .await
        .unwrap()
}

fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 7 % 251) as u8)
        .collect::<Vec<_>>()
        .into()
}

#[tokio::test]
async fn unaligned_ranges_read_back_the_bytes_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().to_str().unwrap()).await;
    // Not a multiple of the 4 KiB direct-I/O alignment, so the last range ends mid-block.
    let size = (1 << 20) + 1234;
    let data = pattern(size);
    let upload = store
        .begin_upload("d/f.bin", size as u64, false)
        .await
        .unwrap();
    upload.write_at(0, data.slice(..5000)).await.unwrap();
    upload.write_at(5000, data.slice(5000..)).await.unwrap();
    for (offset, len) in [
        (0, size),
        (1, 4095),
        (4095, 2),
        (5000, 70_000),
        (size - 1234, 1234),
        (size - 1, 1),
    ] {
        let back = upload
            .read_back_from_device(offset as u64, len as u64)
            .await
            .unwrap_or_else(|e| panic!("{offset}+{len}: {e}"));
        assert_eq!(back, data.slice(offset..offset + len), "{offset}+{len}");
    }
    upload.publish(None, None).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("d/f.bin")).unwrap(), data);
}

#[tokio::test]
async fn a_range_past_the_end_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().to_str().unwrap()).await;
    let upload = store.begin_upload("h.bin", 4, false).await.unwrap();
    upload
        .write_at(0, Bytes::from_static(b"abcd"))
        .await
        .unwrap();
    let error = upload
        .read_back_from_device(2, 4)
        .await
        .expect_err("past the end");
    assert!(error.to_string().contains("h.bin"), "{error}");
    upload.abort().await.unwrap();
}

#[tokio::test]
async fn an_object_store_upload_cannot_be_read_back() {
    let store = open("memory://read-back-device").await;
    let upload = store.begin_upload("f.bin", 10, false).await.unwrap();
    upload
        .write_at(0, Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    let error = upload.read_back_from_device(0, 10).await.unwrap_err();
    assert!(
        error.to_string().contains("cannot read an upload back"),
        "{error}"
    );
    upload.abort().await.unwrap();
}
