//! Keeps `docs/FORMATS.md` true: each worked example in the document (a fenced block after
//! `<!-- example: NAME -->`) is compared with what the real encoder writes for the input
//! the document describes, so editing the code or the document without the other fails.
//! Each format's reader is also given an unknown version and a damaged or truncated record,
//! and must refuse it with an error that says what is wrong.

use strata_codec::compress::{decode_frame, encode_frame, read_header, Codec, Filter, FrameError};
use strata_codec::format::encrypted::{
    read_encrypted_header, seal_with_nonce, Cipher, EncryptedError, EncryptionKey, KeyId, KeyRing,
};
use strata_codec::format::fragment::{
    decode_tail, encode_tail, FragmentError, FragmentHeader, StripeSums,
};
use strata_codec::format::model::{model_file_name, model_version_of};
use strata_codec::format::packed::{
    chunk_key, keyed_object_name, pack_key, ChunkLocator, DatasetEncryption, IndexedFile,
    LayoutMarker, PackedIndex, OBJECT_NAME_CONTEXT,
};
use strata_codec::format::parity_map::{group_id, parity_key, ParityGroup, ParityMap, ShardRef};
use strata_codec::format::replica_sums::{ReplicaSums, ReplicaSumsError};
use strata_codec::format::tier_marker::{marker_layout, tier_marker};
use strata_codec::format::tier_object::{
    assemble, check_encrypted_frame, encrypted_table_entry, encrypted_tail, FrameTable, TailError,
    PACKED_CHUNK,
};
use strata_codec::hash::ChunkLayout;
use strata_codec::manifest::{DatasetManifest, ManifestError, ManifestFile};
use strata_codec::parity::ParitySpec;

const FORMATS_MD: &str = include_str!("../../../docs/FORMATS.md");

/// The text of the fenced block that follows `<!-- example: NAME -->`.
fn example(name: &str) -> String {
    let marker = format!("<!-- example: {name} -->");
    let at = FORMATS_MD
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/FORMATS.md has no example {name:?}"));
    let rest = &FORMATS_MD[at + marker.len()..];
    let open = rest.find("```").expect("a fenced block follows the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    let close = body.find("\n```").expect("the fenced block is closed");
    body[..close].to_string()
}

/// The bytes of an annotated hex example: `#` starts a comment, whitespace is ignored.
fn hex_example(name: &str) -> Vec<u8> {
    let digits: String = example(name)
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|part| part.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(&digits).unwrap_or_else(|e| panic!("example {name:?} is not hex: {e}"))
}

fn assert_bytes(name: &str, written: &[u8]) {
    assert_eq!(
        hex::encode(written),
        hex::encode(hex_example(name)),
        "the encoder and docs/FORMATS.md disagree on example {name:?}"
    );
}

fn assert_text(name: &str, written: &[u8]) {
    let written = String::from_utf8(written.to_vec()).expect("UTF-8");
    assert_eq!(
        written.trim_end_matches('\n'),
        example(name),
        "the encoder and docs/FORMATS.md disagree on example {name:?}"
    );
}

fn hash_hex(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

// ----- chunk frame -----

#[test]
fn frame_example_matches_the_encoder() {
    let frame = encode_frame(b"strata", Codec::None, Filter::None);
    assert_bytes("frame", &frame);
    assert_eq!(decode_frame(&frame).unwrap(), b"strata");
}

#[test]
fn frame_codec_and_filter_ids_are_the_documented_ones() {
    let data: Vec<u8> = (0..4096u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
    for (codec, filter, id, level, flags, filter_id, param) in [
        (Codec::Lz4, Filter::None, 1, 0, 0, 0, 0),
        (
            Codec::Zstd {
                level: 3,
                long: false,
            },
            Filter::None,
            2,
            3,
            0,
            0,
            0,
        ),
        (
            Codec::Zstd {
                level: -5,
                long: true,
            },
            Filter::None,
            2,
            0xfb,
            1,
            0,
            0,
        ),
        (
            Codec::Gzip { level: 6 },
            Filter::Shuffle { width: 4 },
            3,
            6,
            0,
            1,
            4,
        ),
        (Codec::Bzip2 { level: 9 }, Filter::None, 4, 9, 0, 0, 0),
        (
            Codec::Xz { level: 6 },
            Filter::Shuffle { width: 8 },
            5,
            6,
            0,
            1,
            8,
        ),
    ] {
        let frame = encode_frame(&data, codec, filter);
        assert_eq!(
            frame[5..10],
            [id, level, flags, filter_id, param],
            "{codec:?} {filter:?}"
        );
        let row = format!(
            "| {id} | {} |",
            codec.to_string().split(':').next().unwrap()
        );
        assert!(FORMATS_MD.contains(&row), "codec table lacks {row:?}");
    }
}

#[test]
fn a_frame_of_an_unknown_version_is_refused_as_such() {
    let mut frame = encode_frame(b"strata", Codec::None, Filter::None);
    frame[4] = 2;
    let err = read_header(&frame).unwrap_err();
    assert_eq!(err, FrameError::UnsupportedVersion(2));
    assert!(err.to_string().contains("upgrade Strata"), "{err}");
}

#[test]
fn a_truncated_or_damaged_frame_is_refused() {
    let frame = encode_frame(b"strata", Codec::None, Filter::None);
    assert!(matches!(
        decode_frame(&frame[..frame.len() - 1]),
        Err(FrameError::Truncated {
            needed: 70,
            got: 69
        })
    ));
    let mut bad = frame.clone();
    bad[14] ^= 1; // raw length: the header check catches it
    assert_eq!(decode_frame(&bad), Err(FrameError::HeaderChecksum));
    let mut bad = frame;
    bad[65] ^= 1; // payload
    assert_eq!(decode_frame(&bad), Err(FrameError::HashMismatch));
}

// ----- packed tier object -----

#[test]
fn tier_object_example_matches_the_encoder() {
    let frame = encode_frame(b"strata", Codec::None, Filter::None);
    let object = assemble(6, vec![frame.clone()]);
    let mut expected = hex_example("frame");
    expected.extend(hex_example("tier-object-tail"));
    assert_eq!(hex::encode(&object), hex::encode(&expected));
    let table = FrameTable::parse(&object, object.len() as u64).unwrap();
    assert_eq!((table.raw_len, table.chunk), (6, PACKED_CHUNK));
    assert_eq!(table.frames.len(), 1);
    assert_eq!(table.frames[0].len, frame.len() as u64);
}

#[test]
fn empty_tier_object_example_matches_the_encoder() {
    let object = assemble(0, Vec::new());
    assert_bytes("tier-object-empty", &object);
    let table = FrameTable::parse(&object, 32).unwrap();
    assert!(table.frames.is_empty());
}

#[test]
fn a_tier_object_of_an_unknown_version_is_refused_as_such() {
    let mut object = assemble(0, Vec::new());
    object[16] = 3;
    let Err(TailError::Damaged(why)) = FrameTable::parse(&object, 32) else {
        panic!("version 3 was accepted");
    };
    assert!(why.contains("version 3 is not supported"), "{why}");
    assert!(why.contains("upgrade Strata"), "{why}");
}

#[test]
fn a_truncated_or_damaged_tier_object_is_refused() {
    let frame = encode_frame(b"strata", Codec::None, Filter::None);
    let object = assemble(6, vec![frame]);
    let short = &object[..object.len() - 1];
    let Err(TailError::Damaged(why)) = FrameTable::parse(short, short.len() as u64) else {
        panic!("a truncated object was accepted");
    };
    assert!(why.contains("STPT"), "{why}");
    let mut bad = object.clone();
    bad[object.len() - 40] ^= 1; // the table's raw hash
    let Err(TailError::Damaged(why)) = FrameTable::parse(&bad, bad.len() as u64) else {
        panic!("a damaged table was accepted");
    };
    assert!(why.contains("does not match its check"), "{why}");
}

// ----- encrypted frame -----

/// The documented example's key (bytes 0x00..0x1f) and nonce (bytes 0x40..0x57).
fn example_key() -> EncryptionKey {
    EncryptionKey::new(std::array::from_fn(|i| i as u8))
}

fn example_nonce() -> [u8; 24] {
    std::array::from_fn(|i| 0x40 + i as u8)
}

fn example_sealed_frame() -> Vec<u8> {
    let frame = encode_frame(b"strata", Codec::None, Filter::None);
    seal_with_nonce(
        Cipher::XChaCha20Poly1305,
        &example_key(),
        example_nonce(),
        &frame,
    )
}

#[test]
fn encrypted_frame_example_matches_the_encoder() {
    let sealed = example_sealed_frame();
    assert_bytes("encrypted-frame", &sealed);
    let keys = KeyRing::new(Cipher::XChaCha20Poly1305, example_key(), Vec::new());
    assert_eq!(
        decode_frame(&keys.open(&sealed).unwrap()).unwrap(),
        b"strata"
    );
    assert_eq!(example_key().id().to_string(), example("encrypted-key-id"));
    assert_eq!(
        KeyId::of(&std::array::from_fn(|i| i as u8)),
        example_key().id()
    );
}

#[test]
fn an_aes_gcm_frame_uses_twelve_nonce_bytes_and_opens() {
    let frame = encode_frame(b"strata", Codec::None, Filter::None);
    let keys = KeyRing::new(Cipher::Aes256Gcm, example_key(), Vec::new());
    let sealed = keys.seal(&frame);
    let header = read_encrypted_header(&sealed).unwrap();
    assert_eq!(header.cipher, Cipher::Aes256Gcm);
    assert_eq!(header.nonce[12..], [0u8; 12]);
    assert_eq!(sealed[5], 2, "cipher id 2 is AES-256-GCM");
    assert_eq!(keys.open(&sealed).unwrap(), frame);
}

#[test]
fn an_encrypted_frame_of_an_unknown_version_or_key_is_refused_as_such() {
    let mut sealed = example_sealed_frame();
    sealed[4] = 2;
    let keys = KeyRing::new(Cipher::XChaCha20Poly1305, example_key(), Vec::new());
    let Err(EncryptedError::Damaged(why)) = keys.open(&sealed) else {
        panic!("version 2 was accepted");
    };
    assert!(
        why.contains("version 2") && why.contains("upgrade Strata"),
        "{why}"
    );
    let other = KeyRing::new(
        Cipher::XChaCha20Poly1305,
        EncryptionKey::new([0xee; 32]),
        Vec::new(),
    );
    let err = other.open(&example_sealed_frame()).unwrap_err();
    assert_eq!(err, EncryptedError::UnknownKey(example_key().id()));
    assert!(err.to_string().contains(&example("encrypted-key-id")));
}

#[test]
fn a_damaged_encrypted_frame_is_refused() {
    let keys = KeyRing::new(Cipher::XChaCha20Poly1305, example_key(), Vec::new());
    let sealed = example_sealed_frame();
    for at in [5usize, 9, 20, 45, 50, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[at] ^= 1;
        assert!(keys.open(&bad).is_err(), "a flip at byte {at} was accepted");
    }
    assert!(matches!(
        keys.open(&sealed[..40]),
        Err(EncryptedError::Damaged(_))
    ));
}

#[test]
fn encrypted_tier_object_example_matches_the_encoder() {
    let sealed = example_sealed_frame();
    let mut object = sealed.clone();
    object.extend(encrypted_tail(6, encrypted_table_entry(&sealed).to_vec()));
    let mut expected = hex_example("encrypted-frame");
    expected.extend(hex_example("encrypted-tier-object-tail"));
    assert_eq!(hex::encode(&object), hex::encode(&expected));
    let table = FrameTable::parse(&object, object.len() as u64).unwrap();
    assert!(table.encrypted);
    let keys = KeyRing::new(Cipher::XChaCha20Poly1305, example_key(), Vec::new());
    let entry = &table.frames[0];
    let frame = &object[..entry.len as usize];
    assert_eq!(
        check_encrypted_frame(frame, &entry.raw_hash, 6, &keys).unwrap(),
        b"strata"
    );
    // The table holds the encrypted frame's hash, never the raw chunk's.
    assert_ne!(entry.raw_hash, *blake3::hash(b"strata").as_bytes());
    let moved = check_encrypted_frame(frame, &[0; 32], 6, &keys).unwrap_err();
    assert!(
        moved.contains("not the one the frame table names"),
        "{moved}"
    );
}

// ----- dataset manifest -----

fn manifest_file(path: &str, data: &[u8], chunk_size: u64) -> ManifestFile {
    let layout = ChunkLayout::new(chunk_size, data.len() as u64).unwrap();
    let chunks = if layout.chunk_count() > 1 {
        (0..layout.chunk_count())
            .map(|i| {
                let (at, len) = layout.chunk_range(i);
                hex::encode(layout.chunk_value(i, &data[at as usize..(at + len) as usize]))
            })
            .collect()
    } else {
        Vec::new()
    };
    ManifestFile {
        path: path.into(),
        size: data.len() as u64,
        blake3: hash_hex(data),
        mtime_ns: Some(1_700_000_000_000_000_000),
        mode: Some(0o644),
        chunks,
    }
}

/// The dataset of the manifest example: `a.txt` holding `hello\n`, `big.bin` holding 1,500
/// bytes `x`, chunks of 1 KiB.
fn example_manifest() -> DatasetManifest {
    let mut manifest = DatasetManifest::new(
        1024,
        vec![
            manifest_file("big.bin", &[b'x'; 1500], 1024),
            manifest_file("a.txt", b"hello\n", 1024),
        ],
    );
    manifest.created_by = "strata 0.1.0".into();
    manifest
}

#[test]
fn manifest_example_matches_the_encoder() {
    let manifest = example_manifest();
    assert_text("manifest", &manifest.to_json());
    let back = DatasetManifest::from_json(example("manifest").as_bytes()).unwrap();
    assert_eq!(back.files, manifest.files);
}

#[test]
fn a_manifest_of_an_unknown_version_is_refused_as_such() {
    let newer = example("manifest").replace("\"version\": 1", "\"version\": 2");
    let err = DatasetManifest::from_json(newer.as_bytes()).unwrap_err();
    assert!(matches!(err, ManifestError::TooNew(2)), "{err}");
    assert!(err.to_string().contains("upgrade strata"), "{err}");
}

#[test]
fn a_truncated_or_damaged_manifest_is_refused() {
    let text = example("manifest");
    let err = DatasetManifest::from_json(&text.as_bytes()[..text.len() / 2]).unwrap_err();
    assert!(matches!(err, ManifestError::Malformed(_)), "{err}");
    let edited = text.replace("\"mode\": 420", "\"mode\": 493");
    let err = DatasetManifest::from_json(edited.as_bytes()).unwrap_err();
    assert!(matches!(err, ManifestError::SelfHash), "{err}");
}

#[test]
fn b3sums_example_matches_the_encoder() {
    assert_text("b3sums", example_manifest().b3sums_text().as_bytes());
}

// ----- packed layout -----

#[test]
fn layout_marker_example_matches_the_encoder() {
    assert_text("layout-marker", &LayoutMarker::packed(4 << 20).to_json());
}

#[test]
fn encrypted_layout_marker_and_keyed_name_examples_match_the_encoder() {
    let encryption = DatasetEncryption {
        cipher: Cipher::XChaCha20Poly1305.name().into(),
        key_id: example_key().id().to_string(),
    };
    let marker = LayoutMarker::packed_encrypted(4 << 20, encryption).to_json();
    assert_text("layout-marker-encrypted", &marker);
    assert_eq!(LayoutMarker::from_json(&marker).unwrap().version, 2);
    let keys = KeyRing::new(Cipher::XChaCha20Poly1305, example_key(), Vec::new());
    let name_key = keys.derive_subkey(OBJECT_NAME_CONTEXT);
    let name = chunk_key(&keyed_object_name(&name_key, b"strata"));
    assert_text("keyed-object-name", name.as_bytes());
    assert_ne!(name, chunk_key(&hash_hex(b"strata")));
}

/// The index of the example dataset stored packed: `a.txt` in a pack at offset 0,
/// `big.bin` as two chunk objects.
fn example_index() -> PackedIndex {
    let manifest = example_manifest();
    let big = &manifest.files[1];
    let pack = pack_key(&"1f".repeat(32));
    let files = vec![
        IndexedFile {
            path: "a.txt".into(),
            size: 6,
            blake3: hash_hex(b"hello\n"),
            mtime_ns: Some(1_700_000_000_000_000_000),
            mode: Some(0o644),
            chunks: vec![ChunkLocator {
                object: pack,
                offset: 0,
                len: 70,
                codec: "none".into(),
            }],
        },
        IndexedFile {
            path: big.path.clone(),
            size: big.size,
            blake3: big.blake3.clone(),
            mtime_ns: big.mtime_ns,
            mode: big.mode,
            chunks: vec![
                ChunkLocator {
                    object: chunk_key(&hash_hex(&[b'x'; 1024])),
                    offset: 0,
                    len: 83,
                    codec: "zstd:3+none".into(),
                },
                ChunkLocator {
                    object: chunk_key(&hash_hex(&[b'x'; 476])),
                    offset: 0,
                    len: 81,
                    codec: "zstd:3+none".into(),
                },
            ],
        },
    ];
    PackedIndex::new(1024, manifest.root_hash.clone(), files)
}

#[test]
fn packed_index_example_matches_the_encoder() {
    let index = example_index();
    assert_text("packed-index", &index.to_json().unwrap());
    let back = PackedIndex::from_json(example("packed-index").as_bytes()).unwrap();
    back.check_against(&example_manifest()).unwrap();
}

#[test]
fn a_packed_index_of_an_unknown_version_is_refused_as_such() {
    let newer = example("packed-index").replace("\"version\":1", "\"version\":2");
    let err = PackedIndex::from_json(newer.as_bytes()).unwrap_err();
    assert!(err.contains("index version 2 is newer"), "{err}");
    assert!(err.contains("upgrade strata"), "{err}");
}

#[test]
fn a_truncated_or_damaged_packed_index_is_refused() {
    let text = example("packed-index");
    let err = PackedIndex::from_json(&text.as_bytes()[..text.len() - 2]).unwrap_err();
    assert!(err.contains("not JSON"), "{err}");
    let edited = text.replace("\"offset\":0", "\"offset\":1");
    assert!(PackedIndex::from_json(edited.as_bytes())
        .unwrap_err()
        .contains("self-hash mismatch"));
}

// ----- parity map -----

fn example_parity_map() -> ParityMap {
    let members = vec![
        ShardRef {
            key: chunk_key(&hash_hex(&[b'x'; 1024])),
            len: 83,
            blake3: "aa".repeat(32),
        },
        ShardRef {
            key: chunk_key(&hash_hex(&[b'x'; 476])),
            len: 81,
            blake3: "bb".repeat(32),
        },
    ];
    let spec = ParitySpec { k: 2, m: 1 };
    let id = group_id(spec, 84, &members);
    ParityMap {
        format: "strata-parity-map".into(),
        version: 1,
        root_hash: example_manifest().root_hash,
        k: 2,
        m: 1,
        locations: 1,
        groups: vec![ParityGroup {
            id: id.clone(),
            shard_len: 84,
            members,
            parity: vec![ShardRef {
                key: parity_key(&id, 0),
                len: 84,
                blake3: "cc".repeat(32),
            }],
        }],
        self_hash: None,
    }
}

#[test]
fn parity_map_example_matches_the_encoder() {
    assert_text("parity-map", &example_parity_map().to_json().unwrap());
    ParityMap::from_json(example("parity-map").as_bytes()).unwrap();
}

#[test]
fn a_parity_map_of_an_unknown_version_is_refused_as_such() {
    let newer = example("parity-map").replace("\"version\": 1", "\"version\": 2");
    let err = ParityMap::from_json(newer.as_bytes()).unwrap_err();
    assert!(err.contains("parity map version 2 is newer"), "{err}");
}

#[test]
fn a_truncated_or_damaged_parity_map_is_refused() {
    let text = example("parity-map");
    let err = ParityMap::from_json(&text.as_bytes()[..text.len() / 2]).unwrap_err();
    assert!(err.contains("not JSON"), "{err}");
    let edited = text.replace("\"len\": 81", "\"len\": 80");
    assert!(ParityMap::from_json(edited.as_bytes())
        .unwrap_err()
        .contains("self-hash mismatch"));
}

// ----- tier layout marker -----

#[test]
fn tier_marker_example_matches_the_encoder() {
    assert_text("tier-marker", &tier_marker("packed"));
    assert_eq!(
        marker_layout(example("tier-marker").as_bytes()).as_deref(),
        Some("packed")
    );
}

#[test]
fn a_tier_marker_is_read_by_its_layout_alone() {
    // As documented: the version is not checked, a marker without a layout is not one.
    let newer = example("tier-marker").replace("\"version\":1", "\"version\":2");
    assert_eq!(marker_layout(newer.as_bytes()).as_deref(), Some("packed"));
    assert_eq!(marker_layout(b"{\"format\":\"strata-tier\"}"), None);
    assert_eq!(marker_layout(b"{\"format\":\"strata-tier\",\"lay"), None);
}

// ----- model files -----

#[test]
fn model_file_names_are_the_documented_ones() {
    for line in example("model-names").lines() {
        let (version, name) = line.split_once(' ').expect("`VERSION NAME`");
        let version = version.parse::<u64>().ok();
        assert_eq!(model_version_of(name.trim()), version, "{line}");
        if let Some(version) = version {
            assert_eq!(model_file_name(version), name.trim());
        }
    }
}

// ----- replica integrity record -----

#[test]
fn replica_sums_example_matches_the_encoder() {
    let sums = ReplicaSums::of(b"strata", 3);
    assert_bytes("replica-sums", &sums.encode());
    assert_eq!(
        ReplicaSums::decode(&hex_example("replica-sums")).unwrap(),
        sums
    );
    assert_eq!(hex::encode(sums.hashes[0]), hash_hex(b"strata"));
}

#[test]
fn replica_sums_refuse_unknown_versions_and_damage() {
    let mut bytes = ReplicaSums::of(b"strata", 3).encode();
    bytes[4] = 2;
    let err = ReplicaSums::decode(&bytes).unwrap_err();
    assert_eq!(err, ReplicaSumsError::Version(2));
    assert!(err.to_string().contains("upgrade Strata"), "{err}");
    let mut bytes = ReplicaSums::of(b"strata", 3).encode();
    bytes[30] ^= 1;
    assert!(ReplicaSums::decode(&bytes)
        .unwrap_err()
        .to_string()
        .contains("damaged"));
    assert!(ReplicaSums::decode(&bytes[..20]).is_err());
}

// ----- erasure-coded fragment -----

#[test]
fn fragment_example_matches_the_encoder() {
    let header = FragmentHeader::for_object(2, 1, 0, 6).unwrap();
    assert_eq!((header.shard_size, header.stripes), (4, 1));
    let mut fragment = header.encode().to_vec();
    fragment.extend_from_slice(b"stra");
    let sums = StripeSums {
        shard: *blake3::hash(b"stra").as_bytes(),
        stripe: *blake3::hash(b"strata").as_bytes(),
    };
    fragment.extend_from_slice(&encode_tail(&header, &[sums]));
    assert_bytes("fragment", &fragment);
    let example = hex_example("fragment");
    assert_eq!(FragmentHeader::decode(&example).unwrap(), header);
    let tail = &example[header.table_offset() as usize..];
    assert_eq!(decode_tail(&header, tail).unwrap(), vec![sums]);
}

#[test]
fn fragments_refuse_unknown_versions_and_damage() {
    let header = FragmentHeader::for_object(2, 1, 0, 6).unwrap();
    let mut bytes = header.encode();
    bytes[4] = 9;
    let err = FragmentHeader::decode(&bytes).unwrap_err();
    assert_eq!(err, FragmentError::Version(9));
    assert!(err.to_string().contains("upgrade Strata"), "{err}");
    let mut bytes = header.encode();
    bytes[7] = 3;
    assert!(FragmentHeader::decode(&bytes)
        .unwrap_err()
        .to_string()
        .contains("damaged"));
    let tail = encode_tail(
        &header,
        &[StripeSums {
            shard: [1; 32],
            stripe: [2; 32],
        }],
    );
    assert!(decode_tail(&header, &tail[1..]).is_err());
}
