//! Chunk frames: byte-identical round trips for every codec, filter and awkward size;
//! damage of every kind detected with its own error; arbitrary input never panics and
//! never decodes to wrong bytes; incompressible data grows by the header at most.

use proptest::prelude::*;
use strata_codec::compress::{
    decode_frame, encode_frame, read_header, Codec, Filter, FrameError, FRAME_HEADER_LEN,
};

fn codecs() -> Vec<Codec> {
    vec![
        Codec::None,
        Codec::Lz4,
        Codec::Zstd {
            level: 1,
            long: false,
        },
        Codec::Zstd {
            level: 19,
            long: true,
        },
        Codec::Zstd {
            level: -5,
            long: false,
        },
        Codec::Gzip { level: 6 },
        Codec::Bzip2 { level: 1 },
        Codec::Xz { level: 1 },
    ]
}

fn filters() -> Vec<Filter> {
    vec![
        Filter::None,
        Filter::Shuffle { width: 2 },
        Filter::Shuffle { width: 4 },
        Filter::Shuffle { width: 8 },
    ]
}

/// Typed-looking data: slowly varying little-endian integers with some noise.
fn typed(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 4 < 2 {
                (x % 7) as u8
            } else {
                (i / 512) as u8
            }
        })
        .collect()
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random()).collect()
}

#[test]
fn every_codec_and_filter_round_trips_at_boundary_sizes() {
    let data = typed(70_000, 7);
    let sizes = [
        0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1023, 1024, 1025, 65_536, 70_000,
    ];
    for codec in codecs() {
        for filter in filters() {
            for &n in &sizes {
                let frame = encode_frame(&data[..n], codec, filter);
                assert!(frame.len() <= n + FRAME_HEADER_LEN, "{codec} {filter} {n}");
                let back =
                    decode_frame(&frame).unwrap_or_else(|e| panic!("{codec} {filter} {n}: {e}"));
                assert_eq!(back, &data[..n], "{codec} {filter} {n}");
            }
        }
    }
}

#[test]
fn compressible_data_is_stored_compressed_with_the_requested_codec() {
    let data = typed(100_000, 3);
    for codec in codecs().into_iter().filter(|c| *c != Codec::None) {
        let frame = encode_frame(&data, codec, Filter::Shuffle { width: 4 });
        let h = read_header(&frame).unwrap();
        assert_eq!(h.codec, codec.clamped());
        assert_eq!(h.filter, Filter::Shuffle { width: 4 });
        assert_eq!(h.raw_len, 100_000);
        assert_eq!(h.raw_hash, *blake3::hash(&data).as_bytes());
        assert!(frame.len() < data.len() / 2, "{codec}: {}", frame.len());
    }
}

#[test]
fn random_data_passes_raw_and_grows_by_the_header_at_most() {
    for n in [0, 1, 100, 4096, 1 << 20] {
        let data = random(n, n as u64);
        for codec in codecs() {
            let frame = encode_frame(&data, codec, Filter::Shuffle { width: 8 });
            assert_eq!(frame.len(), n + FRAME_HEADER_LEN, "{codec} {n}");
            let h = read_header(&frame).unwrap();
            assert_eq!((h.codec, h.filter), (Codec::None, Filter::None));
            assert_eq!(decode_frame(&frame).unwrap(), data);
        }
    }
}

#[test]
fn damage_is_detected_with_the_right_error() {
    let data = typed(50_000, 11);
    let frame = encode_frame(
        &data,
        Codec::Zstd {
            level: 3,
            long: false,
        },
        Filter::None,
    );
    let flip = |at: usize, bit: u8| {
        let mut f = frame.clone();
        f[at] ^= 1 << bit;
        decode_frame(&f)
    };
    assert!(matches!(flip(0, 0), Err(FrameError::BadMagic { .. })));
    assert!(matches!(flip(4, 1), Err(FrameError::UnsupportedVersion(_))));
    for at in 5..FRAME_HEADER_LEN {
        assert_eq!(flip(at, 3), Err(FrameError::HeaderChecksum), "byte {at}");
    }
    // In the payload: the codec rejects it, or it decodes to the wrong length or hash.
    for at in (FRAME_HEADER_LEN..frame.len()).step_by(97) {
        match flip(at, 5) {
            Err(
                FrameError::Corrupt { .. }
                | FrameError::HashMismatch
                | FrameError::RawLengthMismatch { .. },
            ) => {}
            other => panic!("payload byte {at}: {other:?}"),
        }
    }
    for cut in [
        0,
        3,
        10,
        FRAME_HEADER_LEN - 1,
        FRAME_HEADER_LEN,
        frame.len() - 1,
    ] {
        match decode_frame(&frame[..cut]) {
            Err(FrameError::Truncated { needed, got }) => {
                assert_eq!(got, cut as u64);
                assert!(needed > got);
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let mut longer = frame.clone();
    longer.push(0);
    assert!(matches!(
        decode_frame(&longer),
        Err(FrameError::LengthMismatch(_))
    ));
    assert!(matches!(
        decode_frame(b"PK\x03\x04rest"),
        Err(FrameError::BadMagic { .. })
    ));
}

#[test]
fn a_raw_frame_with_a_damaged_payload_fails_its_hash() {
    let data = random(10_000, 5);
    let mut frame = encode_frame(&data, Codec::None, Filter::None);
    frame[FRAME_HEADER_LEN + 500] ^= 0x40;
    assert_eq!(decode_frame(&frame), Err(FrameError::HashMismatch));
}

#[test]
fn errors_say_what_to_do() {
    let frame = encode_frame(b"hello hello hello hello", Codec::Lz4, Filter::None);
    let msg = decode_frame(&frame[..20]).unwrap_err().to_string();
    assert!(
        msg.contains("truncated") && msg.contains("refetch"),
        "{msg}"
    );
}

fn arb_codec() -> impl Strategy<Value = Codec> {
    prop::sample::select(codecs())
}

fn arb_filter() -> impl Strategy<Value = Filter> {
    prop::sample::select(filters())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_is_byte_identical(
        codec in arb_codec(),
        filter in arb_filter(),
        len in 0usize..3000,
        chunk in prop::sample::select(vec![1usize, 7, 64, 1000, 4096]),
        seed in any::<u64>(),
        typed_data in any::<bool>(),
    ) {
        let data = if typed_data { typed(len, seed) } else { random(len, seed) };
        for piece in data.chunks(chunk) {
            let frame = encode_frame(piece, codec, filter);
            prop_assert!(frame.len() <= piece.len() + FRAME_HEADER_LEN);
            prop_assert_eq!(decode_frame(&frame).unwrap(), piece);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_frame(&bytes);
        let mut with_magic = b"STF1\x01".to_vec();
        with_magic.extend_from_slice(&bytes);
        prop_assert!(decode_frame(&with_magic).is_err());
    }

    #[test]
    fn mutated_frames_fail_or_decode_to_the_original(
        codec in arb_codec(),
        filter in arb_filter(),
        len in 0usize..2000,
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let data = typed(len, seed);
        let mut frame = encode_frame(&data, codec, filter);
        for (at, value) in &edits {
            let i = at.index(frame.len());
            frame[i] = *value;
        }
        if let Some(c) = cut {
            frame.truncate(c.index(frame.len() + 1));
        }
        // Either an error, or exactly the original bytes (an edit may write what was there).
        if let Ok(back) = decode_frame(&frame) {
            prop_assert_eq!(back, data);
        }
    }

    #[test]
    fn payload_mutations_behind_a_valid_header_never_give_wrong_bytes(
        codec in arb_codec(),
        len in 1usize..2000,
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let data = typed(len, seed);
        let mut frame = encode_frame(&data, codec, Filter::Shuffle { width: 4 });
        let payload = frame.len() - FRAME_HEADER_LEN;
        prop_assume!(payload > 0);
        frame[FRAME_HEADER_LEN + at.index(payload)] ^= xor;
        // Some payload bytes carry no data (a gzip header's timestamp, say); changing them
        // may decode fine, but only ever to the original bytes.
        if let Ok(back) = decode_frame(&frame) {
            prop_assert_eq!(back, data);
        }
    }
}
