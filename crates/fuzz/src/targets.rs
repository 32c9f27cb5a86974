//! The targets: each runs one parser on arbitrary bytes and checks the promise it makes
//! about what it accepts. A target panics (the fuzzers' signal) only when the parser
//! panicked or accepted something it cannot give back.

use std::io::Write;

use strata_codec::compress::{decode_frame, read_header};
use strata_codec::format::encrypted::{
    read_encrypted_header, Cipher, EncryptionKey, KeyRing, TAG_LEN,
};
use strata_codec::format::fragment::{decode_tail, FragmentHeader, FRAGMENT_HEADER_LEN};
use strata_codec::format::packed::{LayoutMarker, PackedIndex};
use strata_codec::format::parity_map::ParityMap;
use strata_codec::format::replica_sums::ReplicaSums;
use strata_codec::format::tier_object::FrameTable;
use strata_codec::DatasetManifest;
use strata_heat::trace::{TraceFormat, TraceOptions, TraceReader};
use strata_heat::{AccessTracker, TieringConfig, TrackerConfig};
use strata_store::chaos::ChaosRequest;
use strata_store::StoreUri;

/// Requests a trace target reads at most: a record may stand for many requests (an ARC
/// line is a run of blocks), and the point is the parser, not the replay.
const TRACE_REQUESTS: usize = 20_000;

/// A chunk frame: decoding either fails or gives bytes of the declared length and hash.
pub fn frame(data: &[u8]) {
    let header = read_header(data);
    if let Ok(raw) = decode_frame(data) {
        let header = header.expect("a frame that decodes has a header that reads");
        assert_eq!(raw.len() as u64, header.raw_len, "decoded length");
        assert_eq!(
            *blake3::hash(&raw).as_bytes(),
            header.raw_hash,
            "decoded hash"
        );
    }
}

/// The key the encrypted-frame seeds are sealed with ([`crate::seeds`]), so that mutations
/// of a seed reach the decryption and the inner frame's checks.
pub fn fuzz_keys() -> KeyRing {
    KeyRing::new(
        Cipher::XChaCha20Poly1305,
        EncryptionKey::new([7; 32]),
        vec![EncryptionKey::new([8; 32])],
    )
}

/// An encrypted frame: opening either fails or gives exactly the sealed length less the
/// tag, from a header that reads; what opens is then an ordinary frame's input.
pub fn encrypted_frame(data: &[u8]) {
    let header = read_encrypted_header(data);
    if let Ok(inner) = fuzz_keys().open(data) {
        let header = header.expect("a frame that opens has a header that reads");
        assert_eq!(inner.len() as u64 + TAG_LEN as u64, header.sealed_len);
        frame(&inner);
    }
}

/// A dataset manifest: one that parses and checks is written and read back unchanged.
pub fn manifest(data: &[u8]) {
    let Ok(manifest) = DatasetManifest::from_json(data) else {
        return;
    };
    if manifest.check().is_err() {
        return;
    }
    let _ = manifest.b3sums_text();
    let mut again = DatasetManifest::from_json(&manifest.to_json())
        .expect("a manifest written from a checked one reads back");
    // A legacy manifest (no self-hash) is sealed when written again.
    again.self_hash.clone_from(&manifest.self_hash);
    assert_eq!(again, manifest, "manifest round trip");
}

/// A packed index: one that parses is sealed again and reads back to the same index.
pub fn packed_index(data: &[u8]) {
    let Ok(index) = PackedIndex::from_json(data) else {
        return;
    };
    let json = index.to_json().expect("an index serialises");
    let again = PackedIndex::from_json(&json).expect("a sealed index reads back");
    assert_eq!(again.files, index.files, "index round trip");
    assert_eq!(again.root_hash, index.root_hash);
    assert_eq!(again.chunk_size, index.chunk_size);
}

/// A packed layout marker (which says whether a dataset is encrypted): one that parses
/// writes back to a marker that parses to the same.
pub fn layout_marker(data: &[u8]) {
    let Ok(marker) = LayoutMarker::from_json(data) else {
        return;
    };
    let again = LayoutMarker::from_json(&marker.to_json()).expect("a written marker reads back");
    assert_eq!(again, marker, "layout marker round trip");
}

/// A parity map: one that parses is sealed again and reads back to the same map.
pub fn parity_map(data: &[u8]) {
    let Ok(map) = ParityMap::from_json(data) else {
        return;
    };
    let _ = map.spec();
    let json = map.to_json().expect("a map serialises");
    let again = ParityMap::from_json(&json).expect("a sealed map reads back");
    assert_eq!(again.groups, map.groups, "parity map round trip");
}

/// A packed tier object's tail. The first 8 bytes say how much longer the object is than
/// the bytes given (so the table may point anywhere in it); the rest is the tail. Every
/// frame of a table that parses lies inside the object, and ranges map to frames in it.
pub fn tier_object(data: &[u8]) {
    let (extra, tail) = split_u64(data);
    let stored_len = (tail.len() as u64).saturating_add(extra % (1 << 40));
    let Ok(table) = FrameTable::parse(tail, stored_len) else {
        return;
    };
    for entry in &table.frames {
        let end = entry.offset.checked_add(entry.len).expect("frame end fits");
        assert!(end <= stored_len, "a frame past the object's end");
    }
    if table.raw_len > 0 && !table.frames.is_empty() {
        let (first, last) = table.frames_for(0, table.raw_len);
        assert!(first <= last && last < table.frames.len());
        let (start, end) = table.raw_range(last);
        assert!(start <= end && end <= table.raw_len);
    }
}

/// An erasure-coded fragment: a header that reads describes a possible fragment, and the
/// table after it is checked against it.
pub fn fragment(data: &[u8]) {
    let Ok(header) = FragmentHeader::decode(data) else {
        return;
    };
    assert_eq!(&header.encode()[..], &data[..FRAGMENT_HEADER_LEN as usize]);
    for s in 0..header.stripes.min(64) {
        let bytes = header.stripe_bytes(s);
        assert!(bytes.start <= bytes.end && bytes.end <= header.len);
        let _ = header.shard_len(s);
    }
    let tail_len = header.tail_len();
    let rest = &data[FRAGMENT_HEADER_LEN as usize..];
    if tail_len <= rest.len() as u64 {
        let tail = &rest[rest.len() - tail_len as usize..];
        if let Ok(sums) = decode_tail(&header, tail) {
            assert_eq!(
                sums.len() as u64,
                header.stripes as u64,
                "one entry a stripe"
            );
        }
    }
}

/// A replica's integrity record: one that reads encodes back to the same bytes.
pub fn replica_sums(data: &[u8]) {
    if let Ok(sums) = ReplicaSums::decode(data) {
        assert_eq!(sums.encode(), data, "replica sums round trip");
    }
}

/// `strata.toml`: parsing never panics, whatever the text; a configuration that parses has
/// no `[[policy]]` that allows no tier, and a key equal to a policy's prefix is governed by
/// that policy (the longest matching prefix).
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(config) = TieringConfig::parse(&text) else {
        return;
    };
    let set = config.policy_set();
    assert!(
        set.refusals().is_empty(),
        "a parsed configuration has a policy that allows no tier"
    );
    for policy in &config.policies {
        let governing = set.policy_for(&policy.prefix).map(|p| &p.config().prefix);
        assert_eq!(
            governing,
            Some(&policy.prefix),
            "the longest prefix governs"
        );
    }
}

/// A store URI: one that parses prints to a URI that parses to the same.
pub fn uri(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(uri) = StoreUri::parse(&text) {
        let printed = uri.to_string();
        let again = StoreUri::parse(&printed).expect("a printed URI parses");
        assert_eq!(again, uri, "URI round trip through {printed:?}");
    }
}

/// A `POST /v1/chaos` body: parsing never panics, and a rule it accepts has an end (a
/// count of at least 1 or a duration) and an operation wherever it corrupts data.
pub fn chaos_request(data: &[u8]) {
    if let Ok(request) = ChaosRequest::parse_json(data) {
        let rule = request.rule;
        assert!(!request.tier.trim().is_empty(), "a rule for no tier");
        assert!(
            rule.count.is_some_and(|n| n >= 1) || rule.duration.is_some(),
            "a rule without an end: {rule:?}"
        );
        if rule.fault == strata_store::chaos::ChaosFault::Corrupt {
            assert!(rule.op.is_some(), "corruption of every operation: {rule:?}");
        }
    }
}

/// An object key: the access-event parser and the key check agree on what a key is.
pub fn key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let accepted = strata_heat::event::check_key(&text).is_ok();
    let line = event_line(&text);
    let mut tracker = AccessTracker::new(TrackerConfig::default());
    let (_, report) = tracker.ingest_ndjson(1_767_225_600_000, line.as_bytes());
    assert_eq!(
        report.accepted == 1,
        accepted,
        "an event for key {text:?} accepted {} times, check_key says {accepted}",
        report.accepted
    );
}

/// Access-event NDJSON: every non-blank line is accepted or rejected, never both, never
/// lost; rejected lines are reported in order.
pub fn access_events(data: &[u8]) {
    let mut tracker = AccessTracker::new(TrackerConfig::default());
    let (_, report) = tracker.ingest_ndjson(1_767_225_600_000, data);
    let lines = data
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count();
    assert_eq!(
        report.accepted + report.rejected,
        lines,
        "every line counted once"
    );
    assert!(report.errors.windows(2).all(|w| w[0].line < w[1].line));
}

/// A trace file of the format the first byte picks (modulo the formats), read to the end
/// or to its first error, which must name a place in the file.
pub fn trace(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let format = TraceFormat::ALL[pick as usize % TraceFormat::ALL.len()];
    let mut file = tempfile::Builder::new()
        .prefix("strata-fuzz-trace")
        .tempfile()
        .expect("a temporary file");
    file.write_all(body).expect("the trace is written");
    let options = TraceOptions {
        format: Some(format),
        time_scale: 1.0,
    };
    let Ok(reader) = TraceReader::open(file.path(), &options) else {
        return;
    };
    for request in reader.take(TRACE_REQUESTS) {
        match request {
            Ok(request) => assert!(request.time_ms >= 0 || format_has_clock(format)),
            Err(err) => {
                assert!(!err.to_string().is_empty());
                break;
            }
        }
    }
}

/// Whether a format carries its own clock (whose times may be anything finite).
fn format_has_clock(format: TraceFormat) -> bool {
    !matches!(
        format,
        TraceFormat::ArcLis | TraceFormat::Cache2k | TraceFormat::Lirs
    )
}

/// The first 8 bytes as a little-endian number (0 if fewer), and the rest.
fn split_u64(data: &[u8]) -> (u64, &[u8]) {
    match data.split_first_chunk::<8>() {
        Some((head, rest)) => (u64::from_le_bytes(*head), rest),
        None => (0, data),
    }
}

/// One access event for `key`, as an NDJSON line.
fn event_line(key: &str) -> String {
    let event = serde_json::json!({"key": key, "op": "read", "ts": 1_767_225_600_000i64});
    format!("{event}\n")
}
