//! Valid inputs for each target, made by Strata's own encoders (and, for the formats Strata
//! only reads, written by hand after their specifications), so that mutations start from
//! what the parsers accept. `cargo run -p strata-fuzz --bin strata-fuzz-seeds -- DIR`
//! writes them as files for a fuzzer's input folder.

use strata_codec::compress::{encode_frame, Codec, Filter};
use strata_codec::format::fragment::{encode_tail, FragmentHeader, StripeSums};
use strata_codec::format::packed::{
    ChunkLocator, DatasetEncryption, IndexedFile, LayoutMarker, PackedIndex,
};
use strata_codec::format::parity_map::{group_id, ParityGroup, ParityMap, ShardRef};
use strata_codec::format::replica_sums::ReplicaSums;
use strata_codec::format::tier_object::assemble;
use strata_codec::{DatasetManifest, ManifestFile};
use strata_heat::trace::TraceFormat;

/// The example configuration the service ships.
const EXAMPLE_CONFIG: &str = include_str!("../../server/strata.example.toml");

/// A configuration with regions, an encrypted tier (with earlier keys) and `[[policy]]` blocks using every
/// field, so the `config` target's mutations reach the policy parser and its checks.
const POLICY_CONFIG: &str = r#"default_tier = "warm"

[[tier]]
name = "hot"
stores = ["/srv/hot-a", "/srv/hot-b"]
redundancy = "replicate:2"
cost_per_gb_month = 0.2
read_latency_ms = 0.5
region = "eu-west"
layout = "packed"
encryption = "xchacha20poly1305"
encryption_key_env = "STRATA_HOT_KEY"
encryption_previous_key_files = ["/etc/strata/hot-2025.key"]
encryption_previous_key_envs = ["STRATA_HOT_KEY_2024"]

[[tier]]
name = "warm"
cost_per_gb_month = 0.05
read_latency_ms = 5
region = "eu-west"

[[tier]]
name = "cold"
cost_per_gb_month = 0.01
read_latency_ms = 200
region = "us-east"

[[policy]]
name = "climate"
prefix = "climate/"
latency_objective_ms = 50
max_cost_per_gb_month = 0.2
min_redundancy = "replicate:2"
encryption_required = true
regions = ["eu-west"]

[[policy]]
prefix = "climate/scratch/"
min_redundancy = 0
pinned_tier = "warm"
"#;

/// The seeds of target `name` (none for an unknown name).
pub fn of(name: &str) -> Vec<Vec<u8>> {
    match name {
        "frame" => frames(),
        "encrypted_frame" => encrypted_frames(),
        "manifest" => vec![manifest().to_json()],
        "packed_index" => vec![packed_index()],
        "layout_marker" => layout_markers(),
        "parity_map" => vec![parity_map()],
        "tier_object" => tier_objects(),
        "fragment" => fragments(),
        "replica_sums" => vec![replica_sums()],
        "config" => vec![
            EXAMPLE_CONFIG.as_bytes().to_vec(),
            POLICY_CONFIG.as_bytes().to_vec(),
        ],
        "uri" => uris(),
        "key" => ["a/b.nc", "deep/er/key-1", "ünï/cödé"]
            .iter()
            .map(|k| k.as_bytes().to_vec())
            .collect(),
        "access_events" => vec![access_events()],
        "chaos_request" => chaos_requests(),
        "trace" => traces(),
        _ => Vec::new(),
    }
}

/// Frames sealed with the fuzz target's keys, under each cipher and the previous key.
fn encrypted_frames() -> Vec<Vec<u8>> {
    use strata_codec::format::encrypted::{Cipher, EncryptionKey, KeyRing};
    let raw = sample(500);
    let frame = encode_frame(&raw, Codec::Lz4, Filter::None);
    let current = crate::targets::fuzz_keys();
    let aes = KeyRing::new(Cipher::Aes256Gcm, EncryptionKey::new([7; 32]), Vec::new());
    let previous = KeyRing::new(
        Cipher::XChaCha20Poly1305,
        EncryptionKey::new([8; 32]),
        Vec::new(),
    );
    vec![
        current.seal(&frame),
        aes.seal(&frame),
        previous.seal(&frame),
        current.seal(b"not a frame inside"),
    ]
}

/// Bytes that compress, and some that do not.
fn sample(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
        .collect()
}

fn frames() -> Vec<Vec<u8>> {
    let raw = sample(3000);
    vec![
        encode_frame(&raw, Codec::None, Filter::None),
        encode_frame(&raw, Codec::Lz4, Filter::None),
        encode_frame(
            &raw,
            Codec::Zstd {
                level: 3,
                long: false,
            },
            Filter::Shuffle { width: 4 },
        ),
        encode_frame(&raw, Codec::Gzip { level: 6 }, Filter::None),
        encode_frame(&raw, Codec::Bzip2 { level: 1 }, Filter::None),
        encode_frame(&raw, Codec::Xz { level: 1 }, Filter::None),
    ]
}

fn hex_hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// A two-file manifest.
pub fn manifest() -> DatasetManifest {
    let files = ["a/one.nc", "b/two.h5"]
        .iter()
        .enumerate()
        .map(|(i, path)| ManifestFile {
            path: path.to_string(),
            size: 100 * (i as u64 + 1),
            blake3: hex_hash(path.as_bytes()),
            mtime_ns: Some(1_700_000_000_000_000_000),
            mode: Some(0o644),
            chunks: Vec::new(),
        })
        .collect();
    DatasetManifest::new(4 << 20, files)
}

fn packed_index() -> Vec<u8> {
    let manifest = manifest();
    let files = manifest
        .files
        .iter()
        .map(|file| IndexedFile {
            path: file.path.clone(),
            size: file.size,
            blake3: file.blake3.clone(),
            mtime_ns: file.mtime_ns,
            mode: file.mode,
            chunks: vec![ChunkLocator {
                object: format!("packs/{}", &file.blake3[..16]),
                offset: 0,
                len: file.size + 64,
                codec: "zstd:3".into(),
            }],
        })
        .collect();
    let index = PackedIndex::new(manifest.chunk_size, manifest.root_hash.clone(), files);
    index.to_json().unwrap_or_default()
}

fn layout_markers() -> Vec<Vec<u8>> {
    let encryption = DatasetEncryption {
        cipher: "aes-256-gcm".into(),
        key_id: "5d444be4b23adceb".into(),
    };
    vec![
        LayoutMarker::packed(4 << 20).to_json(),
        LayoutMarker::packed_encrypted(1 << 20, encryption).to_json(),
    ]
}

fn parity_map() -> Vec<u8> {
    let shard = |key: &str, len: u64| ShardRef {
        key: key.into(),
        len,
        blake3: hex_hash(key.as_bytes()),
    };
    let members = vec![shard("packs/a", 100), shard("packs/b", 64)];
    let spec = strata_codec::parity::ParitySpec { k: 2, m: 1 };
    let id = group_id(spec, 100, &members);
    let map = ParityMap {
        format: strata_codec::format::parity_map::PARITY_MAP_FORMAT.into(),
        version: strata_codec::format::parity_map::PARITY_MAP_VERSION,
        root_hash: manifest().root_hash,
        k: 2,
        m: 1,
        locations: 1,
        groups: vec![ParityGroup {
            id,
            shard_len: 100,
            members,
            parity: vec![shard("parity/p0", 100)],
        }],
        self_hash: None,
    };
    map.to_json().unwrap_or_default()
}

/// Packed tier objects, each prefixed with the 8 bytes the target reads as "the object is
/// this much longer than the tail given" (0: the whole object is given).
fn tier_objects() -> Vec<Vec<u8>> {
    let raw = sample(5000);
    let frames = vec![encode_frame(&raw, Codec::Lz4, Filter::None)];
    let mut whole = 0u64.to_le_bytes().to_vec();
    whole.extend(assemble(raw.len() as u64, frames));
    let mut empty = 0u64.to_le_bytes().to_vec();
    empty.extend(assemble(0, Vec::new()));
    vec![whole, empty]
}

/// Fragments: a header, the shard bytes (zeros), and the table and trailer.
fn fragments() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (k, m, len) in [(2u8, 1u8, 1000u64), (4, 2, 0), (3, 2, 70_000)] {
        let Ok(header) = FragmentHeader::for_object(k, m, 0, len) else {
            continue;
        };
        let mut bytes = header.encode().to_vec();
        let table: Vec<StripeSums> = (0..header.stripes)
            .map(|s| StripeSums {
                shard: *blake3::hash(&s.to_le_bytes()).as_bytes(),
                stripe: *blake3::hash(&(s + 1).to_le_bytes()).as_bytes(),
            })
            .collect();
        let shards: u64 = (0..header.stripes).map(|s| header.shard_len(s)).sum();
        bytes.resize(bytes.len() + shards.min(1 << 16) as usize, 0);
        bytes.extend(encode_tail(&header, &table));
        out.push(bytes);
    }
    out
}

fn replica_sums() -> Vec<u8> {
    ReplicaSums {
        copies: 2,
        len: 10_000,
        chunk_size: 4096,
        hashes: (0..3u8).map(|i| *blake3::hash(&[i]).as_bytes()).collect(),
    }
    .encode()
}

fn uris() -> Vec<Vec<u8>> {
    [
        "/data/set",
        "file:///data/set",
        "s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1",
        "s3://bucket",
        "memory://scratch",
        "relative/dir",
        "azblob://data/a%20b?endpoint=http://127.0.0.1:10000/devstoreaccount1&account=devstoreaccount1",
        "gs://my_bucket.example/x?endpoint=http://127.0.0.1:4443",
        "swift://my_data/x%20y?endpoint=http://127.0.0.1:8080/v1/AUTH_test",
    ]
    .iter()
    .map(|u| u.as_bytes().to_vec())
    .collect()
}

fn chaos_requests() -> Vec<Vec<u8>> {
    [
        r#"{"tier":"warm","fault":"503","retry_after":"2s","count":3}"#,
        r#"{"tier":"hot","fault":"latency","latency":"200ms","op":"read","duration":"30s"}"#,
        r#"{"tier":"cold","fault":"corrupt","op":"readback","count":1,"duration":"1h"}"#,
        r#"{"tier":"hot","fault":"timeout","op":"put","count":5}"#,
        r#"{"tier":"warm","fault":"429","duration":"500ms"}"#,
    ]
    .iter()
    .map(|body| body.as_bytes().to_vec())
    .collect()
}

fn access_events() -> Vec<u8> {
    b"{\"key\":\"a/b.nc\",\"op\":\"read\",\"ts\":1767225600000,\"bytes\":4096}\n\
      {\"key\":\"a/c.nc\",\"op\":\"write\",\"ts\":1767225600001}\n\
      \n\
      {\"key\":\"x\",\"op\":\"delete\",\"ts\":1767225600002,\"client\":\"c1\"}\n"
        .to_vec()
}

/// One small trace of each format, prefixed with the byte that picks the format.
fn traces() -> Vec<Vec<u8>> {
    TraceFormat::ALL
        .iter()
        .enumerate()
        .map(|(i, format)| {
            let mut out = vec![i as u8];
            out.extend(trace_body(*format));
            out
        })
        .collect()
}

fn trace_body(format: TraceFormat) -> Vec<u8> {
    match format {
        TraceFormat::OracleGeneral => {
            let mut out = Vec::new();
            for (t, id, size) in [(1u32, 7u64, 4096u32), (2, 8, 0), (5, 7, 4096)] {
                out.extend(t.to_le_bytes());
                out.extend(id.to_le_bytes());
                out.extend(size.to_le_bytes());
                out.extend((-1i64).to_le_bytes());
            }
            out
        }
        TraceFormat::CloudPhysicsCsv => {
            b"version,time,op,size,lbn\n1,0.5,28,4096,100\n1,1.5,2a,8192,200\n".to_vec()
        }
        TraceFormat::MsrCsv => b"128166372003061629,hm,1,Read,383496192,32768,1000\n\
             128166372016382155,hm,1,Write,3221225472,4096,2000\n"
            .to_vec(),
        TraceFormat::ArcLis => b"100 4 0 1\n200 1 0 2\n100 2 0 3\n".to_vec(),
        TraceFormat::Cache2k => [1i32, 2, 1, 3]
            .iter()
            .flat_map(|k| k.to_be_bytes())
            .collect(),
        TraceFormat::Lirs => b"1\n2\n*\n1\n\n3\n".to_vec(),
        TraceFormat::TencentPhoto => {
            b"20160201164203 b6b6a6e5 0 l 12345 1 PC 10\n20160201164204 c7 5 m 999 0 mobile 20\n"
                .to_vec()
        }
        TraceFormat::Csv => b"time,key,op,bytes\n0,a,read,10\n1.5,\"b,c\",write,20\n".to_vec(),
    }
}
