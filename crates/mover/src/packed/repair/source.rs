//! Rebuilding bad objects of a packed store from a plain copy of the dataset
//! (`strata repair DST --from SRC`, step 4 of [`super`]).

use bytes::Bytes;
use strata_codec::compress::{decode_frame, encode_frame, read_header, Codec, CodecSpec, Filter};
use strata_store::Store;

use crate::packed::format::{pack_key, ChunkLocator, PackedIndex};
use crate::packed::parity::{files_using, ShardRef, StoredObject};
use crate::plan::layout;
use crate::retry::retry_store;

/// New bytes for a bad object, made from the source.
pub(super) struct SourceFix {
    /// Where they go: the same key, or a new content address.
    pub(super) key: String,
    pub(super) bytes: Vec<u8>,
    /// Index entries to point at the new bytes (file, chunk, locator); empty when the
    /// bytes are identical in length and place to what the index records.
    pub(super) relocate: Vec<(usize, usize, ChunkLocator)>,
}

/// The codec and filter a chunk was stored with: from its index label, else from the old
/// frame's header, else none.
pub(super) fn codec_of(label: &str, old_frame: Option<&[u8]>) -> (Codec, Filter) {
    if let Ok(CodecSpec::Fixed { codec, filter }) = CodecSpec::parse(label) {
        return (codec, filter.unwrap_or(Filter::None));
    }
    if let Some(header) = old_frame.and_then(|f| read_header(f).ok()) {
        return (header.codec, header.filter);
    }
    (Codec::None, Filter::None)
}

pub(super) fn label_of(index: &PackedIndex, file: usize, chunk: usize) -> String {
    index.files[file].chunks[chunk].codec.clone()
}

pub(super) async fn chunk_from_source(
    source: &Store,
    index: &PackedIndex,
    object: &StoredObject,
    old: Option<&[u8]>,
    recorded: Option<&ShardRef>,
) -> Result<SourceFix, (Vec<String>, String)> {
    let name = object
        .key
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut tried = Vec::new();
    let mut raw = None;
    for u in &object.uses {
        let file = &index.files[u.file];
        let (offset, len) = layout(index.chunk_size, file.size).chunk_range(u.chunk as u64);
        match retry_store(|| source.read_range(&file.path, offset, len)).await {
            Ok(data) if blake3::hash(&data).to_hex().as_str() == name => {
                raw = Some((data, u));
                break;
            }
            Ok(_) => tried.push(format!(
                "{}: the source's bytes {offset}..{} differ from the manifest",
                file.path,
                offset + len
            )),
            Err(error) => tried.push(format!("{}: {error}", file.path)),
        }
    }
    let Some((raw, first)) = raw else {
        return Err((vec![], tried.join("; ")));
    };
    let label = label_of(index, first.file, first.chunk);
    let (codec, filter) = codec_of(&label, old);
    let frame = tokio::task::spawn_blocking(move || {
        let frame = encode_frame(&raw, codec, filter);
        decode_frame(&frame).map(|_| frame)
    })
    .await
    .map_err(|e| (vec![], e.to_string()))?
    .map_err(|e| (vec![], format!("the re-encoded frame does not decode: {e}")))?;
    let same_bytes = recorded.is_none_or(|r| blake3::hash(&frame).to_hex().as_str() == r.blake3);
    let relocate = if frame.len() as u64 == object.len && same_bytes {
        vec![]
    } else {
        let len = frame.len() as u64;
        object
            .uses
            .iter()
            .map(|u| {
                let locator = ChunkLocator {
                    object: object.key.clone(),
                    offset: 0,
                    len,
                    codec: label.clone(),
                };
                (u.file, u.chunk, locator)
            })
            .collect()
    };
    Ok(SourceFix {
        key: object.key.clone(),
        bytes: frame,
        relocate,
    })
}

/// Rebuild a pack: frames that still decode to their file are kept, the others are
/// framed again from the source. All or nothing: when a damaged frame cannot be rebuilt,
/// nothing is written and the files whose frames are damaged are returned.
pub(super) async fn pack_from_source(
    source: &Store,
    index: &PackedIndex,
    object: &StoredObject,
    old: Option<&[u8]>,
) -> Result<SourceFix, (Vec<String>, String)> {
    let mut uses = object.uses.clone();
    uses.sort_by_key(|u| (u.offset, u.file));
    let mut frames: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for u in &uses {
        let file = &index.files[u.file];
        let old_frame = old.and_then(|o| o.get(u.offset as usize..(u.offset + u.len) as usize));
        if let Some(frame) = old_frame.filter(|f| frame_holds(f, &file.blake3)) {
            frames.push((u.file, u.chunk, frame.to_vec()));
            continue;
        }
        let data = if file.size == 0 {
            Ok(Bytes::new())
        } else {
            retry_store(|| source.read_range(&file.path, 0, file.size)).await
        };
        match data {
            Ok(data) if blake3::hash(&data).to_hex().as_str() == file.blake3 => {
                let (codec, filter) = codec_of(&label_of(index, u.file, u.chunk), old_frame);
                let frame = tokio::task::spawn_blocking(move || encode_frame(&data, codec, filter))
                    .await
                    .map_err(|e| (vec![file.path.clone()], e.to_string()))?;
                frames.push((u.file, u.chunk, frame));
            }
            Ok(_) => failed.push((
                file.path.clone(),
                "the source file differs from the manifest".to_string(),
            )),
            Err(error) => failed.push((file.path.clone(), error.to_string())),
        }
    }
    if !failed.is_empty() {
        let reason = failed
            .iter()
            .map(|(p, r)| format!("{p}: {r}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut paths: Vec<String> = failed.into_iter().map(|(p, _)| p).collect();
        paths.sort();
        paths.dedup();
        return Err((paths, reason));
    }
    let mut pack = Vec::new();
    let mut relocate = Vec::new();
    for (file, chunk, frame) in frames {
        relocate.push((
            file,
            chunk,
            ChunkLocator {
                object: String::new(),
                offset: pack.len() as u64,
                len: frame.len() as u64,
                codec: label_of(index, file, chunk),
            },
        ));
        pack.extend_from_slice(&frame);
    }
    let key = pack_key(&blake3::hash(&pack).to_hex());
    if key == object.key {
        relocate.clear();
    }
    for (_, _, locator) in &mut relocate {
        locator.object = key.clone();
    }
    Ok(SourceFix {
        key,
        bytes: pack,
        relocate,
    })
}

/// Whether `frame` decodes to the content of a one-chunk file with hash `blake3_hex`.
pub(super) fn frame_holds(frame: &[u8], blake3_hex: &str) -> bool {
    decode_frame(frame).is_ok_and(|raw| blake3::hash(&raw).to_hex().as_str() == blake3_hex)
}

/// The files a bad object actually damages: all its files when it is gone, else those
/// whose frame in it no longer decodes (a bit flip in a pack damages one file, not all).
pub(super) fn damaged_files(
    index: &PackedIndex,
    object: &StoredObject,
    old: Option<&[u8]>,
) -> Vec<String> {
    let Some(old) = old else {
        return files_using(index, object);
    };
    let name = object.key.rsplit('/').next().unwrap_or_default();
    let mut paths: Vec<String> = object
        .uses
        .iter()
        .filter(|u| {
            let frame = old.get(u.offset as usize..(u.offset + u.len) as usize);
            let intact = frame.is_some_and(|f| {
                decode_frame(f).is_ok()
                    && (object.key.starts_with("packs/")
                        || read_header(f).is_ok_and(|h| hex::encode(h.raw_hash) == name))
            });
            !intact
        })
        .map(|u| index.files[u.file].path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
