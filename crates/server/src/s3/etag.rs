//! ETags as S3 clients expect them: the MD5 (hex) of the body for a single PUT, and
//! `MD5(MD5(part 1) ‖ … ‖ MD5(part N))-N` for a multipart upload, computed as the bytes
//! stream. They are kept in the catalog with the content they describe ([`super::meta`]).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use md5::{Digest, Md5};

use crate::state::lock;

/// A stream that passes its bytes on unchanged and folds them into an MD5, readable
/// (through the shared [`Md5Sink`]) once the stream has ended.
pub struct Md5Stream<S> {
    inner: S,
    sink: Md5Sink,
}

/// The MD5 an [`Md5Stream`] computes, shared with whoever reads it when the stream ends.
#[derive(Clone, Default)]
pub struct Md5Sink(Arc<Mutex<Md5>>);

impl Md5Sink {
    /// The MD5 of every byte passed so far, hex.
    pub fn hex(&self) -> String {
        hex::encode(lock(&self.0).clone().finalize())
    }
}

impl<S> Md5Stream<S> {
    /// `inner`, hashed into `sink` as it is read.
    pub fn new(inner: S, sink: Md5Sink) -> Self {
        Md5Stream { inner, sink }
    }
}

impl<S, E> Stream for Md5Stream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &polled {
            lock(&self.sink.0).update(bytes);
        }
        polled
    }
}

/// The ETag of a multipart upload from its parts' MD5s (hex), in part order.
pub fn multipart_etag(part_md5s: &[String]) -> Result<String, hex::FromHexError> {
    let mut md5 = Md5::new();
    for part in part_md5s {
        md5.update(hex::decode(part)?);
    }
    Ok(format!(
        "{}-{}",
        hex::encode(md5.finalize()),
        part_md5s.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etag_is_md5_of_md5s() {
        // Two parts "a" and "b": MD5(MD5("a") ‖ MD5("b")), then the count.
        let parts = [
            hex::encode(Md5::digest(b"a")),
            hex::encode(Md5::digest(b"b")),
        ];
        let mut joined = Vec::new();
        joined.extend_from_slice(&Md5::digest(b"a"));
        joined.extend_from_slice(&Md5::digest(b"b"));
        let expected = format!("{}-2", hex::encode(Md5::digest(&joined)));
        assert_eq!(multipart_etag(&parts).unwrap(), expected);
        assert!(multipart_etag(&["zz".to_string()]).is_err());
    }

    #[test]
    fn md5_stream_hashes_what_passes() {
        let sink = Md5Sink::default();
        let chunks = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        let stream = Md5Stream::new(chunks, sink.clone());
        let collected: Vec<_> =
            futures::executor::block_on(futures::StreamExt::collect::<Vec<_>>(stream));
        assert_eq!(collected.len(), 2);
        assert_eq!(sink.hex(), "5eb63bbbe01eeed093cb22bb8f5acdc3");
    }
}
