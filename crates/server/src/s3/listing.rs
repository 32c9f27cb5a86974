//! ListObjectsV2 and ListObjects over the service's in-memory index: keys in order,
//! `prefix`, `delimiter` (keys past the delimiter rolled up into common prefixes),
//! `max-keys` (at most 1000) and continuation tokens, with `encoding-type=url` as the
//! AWS CLI asks for it.
//!
//! A continuation token is the hex of the last key or common prefix the page returned
//! (relative to the bucket): opaque to clients, and checked when it comes back.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3s::dto::{
    CommonPrefix, EncodingType, ListObjectsInput, ListObjectsOutput, ListObjectsV2Input,
    ListObjectsV2Output, Object, ObjectStorageClass,
};
use s3s::{s3_error, S3Result};

use super::front::{timestamp, StrataS3};
use super::meta::derived_etag;

/// Largest page, as S3's.
const MAX_KEYS: usize = 1000;

/// Index entries read per look-up while a page is assembled.
const SCAN_BATCH: usize = 1000;

/// What `encoding-type=url` leaves as is (S3 and botocore's decoding agree on these).
const URL_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// One page of a listing, keys relative to the bucket.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// Objects: key, size, ETag, last write.
    pub objects: Vec<(String, u64, String, i64)>,
    /// Common prefixes, each ending with the delimiter.
    pub prefixes: Vec<String>,
    /// Where the next page starts (after this key or prefix), when there is one.
    pub next: Option<String>,
}

/// The page after `after` (bucket-relative) of keys starting `prefix` in the bucket whose
/// key prefix is `bucket_prefix`, with each object's ETag ([`with_etags`]).
pub async fn page(
    front: &StrataS3,
    bucket_prefix: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max_keys: usize,
) -> S3Result<Page> {
    let full_prefix = format!("{bucket_prefix}{prefix}");
    let mut cursor = after.map(|after| format!("{bucket_prefix}{after}"));
    let mut page = Page::default();
    let mut hashes = Vec::new();
    let delimiter = delimiter.filter(|delimiter| !delimiter.is_empty());
    'scan: loop {
        let (batch, _) = front
            .state
            .index
            .list(&full_prefix, cursor.as_deref(), SCAN_BATCH);
        if batch.is_empty() {
            break;
        }
        for (key, entry) in batch {
            let relative = &key[bucket_prefix.len()..];
            if page.objects.len() + page.prefixes.len() == max_keys {
                page.next = Some(last_returned(&page));
                break 'scan;
            }
            let rolled = delimiter.and_then(|delimiter| {
                let rest = &relative[prefix.len()..];
                rest.find(delimiter)
                    .map(|at| relative[..prefix.len() + at + delimiter.len()].to_string())
            });
            if let Some(common) = rolled {
                // Past every key under this prefix: the largest character sorts after
                // anything a key can hold there.
                cursor = Some(format!("{bucket_prefix}{common}{}", char::MAX));
                page.prefixes.push(common);
                continue 'scan;
            }
            page.objects.push((
                relative.to_string(),
                entry.size,
                derived_etag(&entry),
                entry.mtime_ms,
            ));
            hashes.push(entry.hash);
            cursor = Some(key);
        }
    }
    with_etags(front, bucket_prefix, page, &hashes).await
}

/// `page` with the recorded ETag of each object whose row describes its content (`hashes`,
/// in the order of `page.objects`), read in one query for the page's range of keys; the
/// others keep their derived ETag.
async fn with_etags(
    front: &StrataS3,
    bucket_prefix: &str,
    mut page: Page,
    hashes: &[[u8; 32]],
) -> S3Result<Page> {
    let (Some(first), Some(last)) = (page.objects.first(), page.objects.last()) else {
        return Ok(page);
    };
    let rows = front
        .rows_between(
            &format!("{bucket_prefix}{}", first.0),
            &format!("{bucket_prefix}{}", last.0),
        )
        .await?;
    for (object, hash) in page.objects.iter_mut().zip(hashes) {
        if let Some(row) = rows.get(&format!("{bucket_prefix}{}", object.0)) {
            if row.hash == *hash {
                object.2.clone_from(&row.etag);
            }
        }
    }
    Ok(page)
}

/// The last key or common prefix of `page`, as the place the next page starts after.
fn last_returned(page: &Page) -> String {
    let last_object = page.objects.last().map(|object| object.0.as_str());
    let last_prefix = page
        .prefixes
        .last()
        .map(|prefix| format!("{prefix}{}", char::MAX));
    match (last_object, last_prefix) {
        (Some(object), Some(prefix)) => object.max(prefix.as_str()).to_string(),
        (Some(object), None) => object.to_string(),
        (None, Some(prefix)) => prefix,
        (None, None) => String::new(),
    }
}

/// A continuation token for `after`.
pub fn token(after: &str) -> String {
    hex::encode(after)
}

/// The place a continuation token stands for; `InvalidArgument` for anything else.
pub fn untoken(token: &str) -> S3Result<String> {
    hex::decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "the continuation token is not one this service gave; start the listing again \
                 without it"
            )
        })
}

fn page_size(max_keys: Option<i32>) -> S3Result<usize> {
    match max_keys {
        None => Ok(MAX_KEYS),
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "max-keys is {n}; give a number from 0 to 1000"
        )),
        Some(n) => Ok(usize::try_from(n).unwrap_or(MAX_KEYS).min(MAX_KEYS)),
    }
}

/// Text as the listing shows it: percent-encoded with `encoding-type=url`.
pub(crate) fn shown(text: String, url: bool) -> String {
    if url {
        utf8_percent_encode(&text, URL_KEEP).to_string()
    } else {
        text
    }
}

fn contents(page: &Page, url: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = page
        .objects
        .iter()
        .map(|(key, size, etag, mtime_ms)| Object {
            key: Some(shown(key.clone(), url)),
            size: i64::try_from(*size).ok(),
            e_tag: Some(s3s::dto::ETag::Strong(etag.clone())),
            last_modified: Some(timestamp(*mtime_ms)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            ..Object::default()
        })
        .collect();
    let prefixes = page
        .prefixes
        .iter()
        .map(|prefix| CommonPrefix {
            prefix: Some(shown(prefix.clone(), url)),
        })
        .collect();
    (objects, prefixes)
}

pub(crate) fn wants_url(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|encoding| encoding.as_str() == EncodingType::URL)
}

/// ListObjectsV2.
pub async fn list_v2(front: &StrataS3, input: ListObjectsV2Input) -> S3Result<ListObjectsV2Output> {
    let bucket_prefix = front.buckets.prefix(&input.bucket)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max_keys = page_size(input.max_keys)?;
    let after = match &input.continuation_token {
        Some(token) => Some(untoken(token)?),
        None => input.start_after.clone(),
    };
    let page = page(
        front,
        &bucket_prefix,
        &prefix,
        input.delimiter.as_deref(),
        after.as_deref(),
        max_keys,
    )
    .await?;
    let url = wants_url(input.encoding_type.as_ref());
    let (objects, prefixes) = contents(&page, url);
    Ok(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(shown(prefix, url)),
        delimiter: input.delimiter.map(|delimiter| shown(delimiter, url)),
        max_keys: i32::try_from(max_keys).ok(),
        key_count: i32::try_from(objects.len() + prefixes.len()).ok(),
        continuation_token: input.continuation_token,
        start_after: input.start_after.map(|after| shown(after, url)),
        is_truncated: Some(page.next.is_some()),
        next_continuation_token: page.next.as_deref().map(token),
        contents: Some(objects),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..ListObjectsV2Output::default()
    })
}

/// ListObjects (version 1): the same pages, `marker` for the place to start after.
pub async fn list_v1(front: &StrataS3, input: ListObjectsInput) -> S3Result<ListObjectsOutput> {
    let bucket_prefix = front.buckets.prefix(&input.bucket)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max_keys = page_size(input.max_keys)?;
    let page = page(
        front,
        &bucket_prefix,
        &prefix,
        input.delimiter.as_deref(),
        input.marker.as_deref(),
        max_keys,
    )
    .await?;
    let url = wants_url(input.encoding_type.as_ref());
    let (objects, prefixes) = contents(&page, url);
    Ok(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(shown(prefix, url)),
        delimiter: input.delimiter.map(|delimiter| shown(delimiter, url)),
        marker: input.marker.map(|marker| shown(marker, url)),
        max_keys: i32::try_from(max_keys).ok(),
        is_truncated: Some(page.next.is_some()),
        next_marker: page.next.map(|next| shown(next, url)),
        contents: Some(objects),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..ListObjectsOutput::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_strangers() {
        let after = format!("a/b{}", char::MAX);
        assert_eq!(untoken(&token(&after)).unwrap(), after);
        assert!(untoken("not hex").is_err());
        assert!(untoken("ff").is_err());
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(shown("a b+c/d".to_string(), true), "a%20b%2Bc/d");
        assert_eq!(shown("a b".to_string(), false), "a b");
    }
}
