//! Trace readers (`strata_heat::trace`): every format on small hand-made files, compressed
//! and not, their errors on truncated and corrupt input, id stability, time handling, the
//! summary, and each real trace of `shared/data/traces` read whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_heat::trace::{
    summarize, TraceError, TraceFormat, TraceOptions, TraceReader, TraceRequest, TraceSummary,
    BLOCK_EXTENT, DEFAULT_OBJECT_SIZE,
};
use strata_heat::Op;
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write a test trace");
    path
}

fn with_format(format: TraceFormat) -> TraceOptions {
    TraceOptions {
        format: Some(format),
        ..TraceOptions::default()
    }
}

/// Every request of a trace and the key of each, in order; panics on an error.
fn read(path: &Path, options: &TraceOptions) -> (Vec<TraceRequest>, Vec<String>) {
    let mut reader = TraceReader::open(path, options).unwrap_or_else(|e| panic!("{e}"));
    let requests: Vec<TraceRequest> = reader
        .by_ref()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let keys = requests
        .iter()
        .map(|r| {
            reader
                .key(r.object)
                .expect("every id has a key")
                .to_string()
        })
        .collect();
    (requests, keys)
}

/// The first error reading a trace, from opening it or from its requests.
fn first_error(path: &Path, options: &TraceOptions) -> TraceError {
    match TraceReader::open(path, options) {
        Err(e) => e,
        Ok(mut reader) => reader
            .find_map(Result::err)
            .expect("the trace should not read cleanly"),
    }
}

fn times(requests: &[TraceRequest]) -> Vec<i64> {
    requests.iter().map(|r| r.time_ms).collect()
}

fn oracle_record(time: u32, id: u64, size: u32) -> Vec<u8> {
    let mut record = Vec::with_capacity(24);
    record.extend_from_slice(&time.to_le_bytes());
    record.extend_from_slice(&id.to_le_bytes());
    record.extend_from_slice(&size.to_le_bytes());
    record.extend_from_slice(&(-1i64).to_le_bytes());
    record
}

fn cache2k_keys(keys: &[i32]) -> Vec<u8> {
    keys.iter().flat_map(|k| k.to_be_bytes()).collect()
}

#[derive(Clone, Copy, Debug)]
enum Codec {
    Zstd,
    Xz,
    Gzip,
    Bzip2,
}

const CODECS: [(Codec, &str); 4] = [
    (Codec::Zstd, "zst"),
    (Codec::Xz, "xz"),
    (Codec::Gzip, "gz"),
    (Codec::Bzip2, "bz2"),
];

fn compress(codec: Codec, bytes: &[u8]) -> Vec<u8> {
    match codec {
        Codec::Zstd => zstd::encode_all(bytes, 3).expect("zstd"),
        Codec::Xz => {
            let mut out = liblzma::write::XzEncoder::new(Vec::new(), 6);
            out.write_all(bytes).expect("xz");
            out.finish().expect("xz")
        }
        Codec::Gzip => {
            let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            out.write_all(bytes).expect("gzip");
            out.finish().expect("gzip")
        }
        Codec::Bzip2 => {
            let mut out = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(6));
            out.write_all(bytes).expect("bzip2");
            out.finish().expect("bzip2")
        }
    }
}

// ---- each format on a hand-made file ----

#[test]
fn oracle_general_reads_little_endian_records_with_times_from_the_first() {
    let dir = TempDir::new().unwrap();
    let bytes = [
        oracle_record(1_000, 42, 512),
        oracle_record(1_003, 7, 0),
        oracle_record(1_010, 42, 4096),
    ]
    .concat();
    let path = write(&dir, "t.oracleGeneral.bin", &bytes);
    let (requests, keys) = read(&path, &TraceOptions::default());
    assert_eq!(keys, ["42", "7", "42"]);
    assert_eq!(times(&requests), [0, 3_000, 10_000]);
    let objects: Vec<u32> = requests.iter().map(|r| r.object).collect();
    assert_eq!(objects, [0, 1, 0]);
    // A size of 0 is libCacheSim's "unknown".
    let sizes: Vec<Option<u64>> = requests.iter().map(|r| r.size).collect();
    assert_eq!(sizes, [Some(512), None, Some(4096)]);
    assert!(requests.iter().all(|r| r.op == Op::Read));
}

#[test]
fn cache2k_reads_big_endian_i32_keys_without_a_clock() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "web.trace", &cache2k_keys(&[5, -5, 5, 70_000]));
    let mut reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
    assert_eq!(reader.format(), TraceFormat::Cache2k);
    assert!(!reader.has_clock());
    let requests: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    let keys: Vec<&str> = requests
        .iter()
        .map(|r| reader.key(r.object).unwrap())
        .collect();
    assert_eq!(keys, ["5", "-5", "5", "70000"]);
    assert_eq!(times(&requests), [0, 1_000, 2_000, 3_000]);
    assert_eq!(reader.objects(), 3);
}

#[test]
fn arc_lines_are_one_request_per_block_of_the_run() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "p.lis", b"10 3 0 0\n\n11 1 0 1\r\n100 0 0 2\n");
    let (requests, keys) = read(&path, &TraceOptions::default());
    assert_eq!(keys, ["10", "11", "12", "11"]);
    assert_eq!(times(&requests), [0, 1_000, 2_000, 3_000]);
    assert!(requests.iter().all(|r| r.size == Some(512)));
}

#[test]
fn lirs_skips_star_markers_and_blank_lines() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "multi.trace", b"3\n*\n\n 4 \n3\n");
    let mut reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
    assert_eq!(reader.format(), TraceFormat::Lirs);
    let requests: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    let keys: Vec<&str> = requests
        .iter()
        .map(|r| reader.key(r.object).unwrap())
        .collect();
    assert_eq!(keys, ["3", "4", "3"]);
}

#[test]
fn msr_requests_become_one_request_per_extent_of_their_disk() {
    let dir = TempDir::new().unwrap();
    // Filetime ticks are 100 ns: 10,000 ticks per millisecond.
    let csv = "128166385295514663,hm,0,Read,4095,2,100\n\
               128166385295614663,hm,1,Write,8192,4096,100\n\
               128166385295514663,hm,0,Read,4096,0,100\n";
    let path = write(&dir, "msr-sample.csv", csv.as_bytes());
    let (requests, keys) = read(&path, &TraceOptions::default());
    assert_eq!(keys, ["hm/0/0", "hm/0/1", "hm/1/2", "hm/0/1"]);
    // The third line's clock is 10 ms behind the second: held, not negative.
    assert_eq!(times(&requests), [0, 0, 10, 10]);
    let ops: Vec<Op> = requests.iter().map(|r| r.op).collect();
    assert_eq!(ops, [Op::Read, Op::Read, Op::Write, Op::Read]);
    assert!(requests.iter().all(|r| r.size == Some(BLOCK_EXTENT)));
}

#[test]
fn cloudphysics_reads_scsi_opcodes_and_512_byte_sectors() {
    let dir = TempDir::new().unwrap();
    let csv = "version,time,op,size,lbn\n1,100,28,512,8\n1,101,2a,8192,7\n1,103,88,512,0\n";
    let path = write(&dir, "cloudPhysicsIO.csv", csv.as_bytes());
    let (requests, keys) = read(&path, &TraceOptions::default());
    // Sector 8 is byte 4,096 (extent 1); sectors 7.. cover bytes 3,584..11,775 (extents 0-2).
    assert_eq!(keys, ["1", "0", "1", "2", "0"]);
    assert_eq!(times(&requests), [0, 1_000, 1_000, 1_000, 3_000]);
    let ops: Vec<Op> = requests.iter().map(|r| r.op).collect();
    assert_eq!(ops, [Op::Read, Op::Write, Op::Write, Op::Write, Op::Read]);
}

#[test]
fn tencent_objects_are_a_photo_in_one_format_and_size() {
    let dir = TempDir::new().unwrap();
    let lines = "20160201164604 abc 5 m 12903 1 PHONE 1\n\
                 20160201164605 abc 0 m 3000 1 PC 1\n\
                 20160201164607 abc 5 m 0 0 PHONE 9\n";
    let path = write(&dir, "tencent_photos", lines.as_bytes());
    let (requests, keys) = read(&path, &TraceOptions::default());
    assert_eq!(keys, ["abc/5/m", "abc/0/m", "abc/5/m"]);
    assert_eq!(times(&requests), [0, 1_000, 3_000]);
    let sizes: Vec<Option<u64>> = requests.iter().map(|r| r.size).collect();
    assert_eq!(sizes, [Some(12_903), Some(3_000), None]);
}

#[test]
fn generic_csv_reads_columns_in_any_order_with_quotes_and_extra_columns() {
    let dir = TempDir::new().unwrap();
    let csv = "\u{feff}bytes,extra,op,Time,key\n\
               10,x,read,1.5,a\n\
               ,y,WRITE,2.25,\"b,\"\"c\"\"\"\n\
               30,z,delete,3,a\n";
    let path = write(&dir, "mine.csv", csv.as_bytes());
    let mut reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
    assert_eq!(reader.format(), TraceFormat::Csv);
    assert!(reader.has_clock());
    let requests: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    let keys: Vec<&str> = requests
        .iter()
        .map(|r| reader.key(r.object).unwrap())
        .collect();
    assert_eq!(keys, ["a", "b,\"c\"", "a"]);
    assert_eq!(times(&requests), [0, 750, 1_500]);
    let ops: Vec<Op> = requests.iter().map(|r| r.op).collect();
    assert_eq!(ops, [Op::Read, Op::Write, Op::Delete]);
    let sizes: Vec<Option<u64>> = requests.iter().map(|r| r.size).collect();
    assert_eq!(sizes, [Some(10), None, Some(30)]);
}

#[test]
fn generic_csv_without_time_is_clockless_and_reads_by_default() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "keys.csv", b"key\nx\ny\nx\n");
    let mut reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
    assert!(!reader.has_clock());
    let requests: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(times(&requests), [0, 1_000, 2_000]);
    assert!(requests
        .iter()
        .all(|r| r.op == Op::Read && r.size.is_none()));
}

// ---- formats by name, by content, by --format ----

#[test]
fn formats_are_named_and_detected_from_file_names() {
    for format in TraceFormat::ALL {
        assert_eq!(TraceFormat::from_name(format.name()), Some(format));
    }
    assert_eq!(TraceFormat::from_name("MSR"), Some(TraceFormat::MsrCsv));
    assert_eq!(TraceFormat::from_name("parquet"), None);
    assert!(TraceFormat::names().contains("oracle-general, cloudphysics, msr, arc"));
    let cases = [
        (
            "cloudPhysicsIO.oracleGeneral.bin",
            Some(TraceFormat::OracleGeneral),
        ),
        ("cloudPhysicsIO.csv", Some(TraceFormat::CloudPhysicsCsv)),
        ("msr-cambridge1-sample.csv", Some(TraceFormat::MsrCsv)),
        ("arc_OLTP.lis.zst", Some(TraceFormat::ArcLis)),
        ("cache2k_web07.trace.xz", Some(TraceFormat::Cache2k)),
        ("lirs_multi1.trace.gz", Some(TraceFormat::Lirs)),
        (
            "tencent_cloud_photos-sample.bz2",
            Some(TraceFormat::TencentPhoto),
        ),
        ("accesses.csv.zst", Some(TraceFormat::Csv)),
        ("accesses.parquet", None),
    ];
    for (name, format) in cases {
        assert_eq!(TraceFormat::detect(Path::new(name)), format, "{name}");
    }
}

#[test]
fn a_generic_name_is_read_by_its_content() {
    let dir = TempDir::new().unwrap();
    let cases: [(&str, &[u8], TraceFormat); 5] = [
        (
            "a.csv",
            b"version,time,op,size,lbn\n1,1,28,512,0\n",
            TraceFormat::CloudPhysicsCsv,
        ),
        ("b.csv", b"1,hm,0,Read,0,512,1\n", TraceFormat::MsrCsv),
        ("c", b"1 2 0 0\n", TraceFormat::ArcLis),
        ("d.trace", b"17\n*\n", TraceFormat::Lirs),
        ("e.trace", &[0, 0, 0, 1], TraceFormat::Cache2k),
    ];
    for (name, bytes, format) in cases {
        let path = write(&dir, name, bytes);
        let reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
        assert_eq!(reader.format(), format, "{name}");
    }
    let path = write(&dir, "mystery.bin", &[0, 1, 2, 3]);
    let error = first_error(&path, &TraceOptions::default());
    assert!(error.reason.contains("--format"), "{error}");
    assert!(error.reason.contains(&TraceFormat::names()), "{error}");
}

#[test]
fn an_explicit_format_overrides_the_name() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "misnamed.csv", &cache2k_keys(&[1, 2]));
    let (_, keys) = read(&path, &with_format(TraceFormat::Cache2k));
    assert_eq!(keys, ["1", "2"]);
}

// ---- compression ----

#[test]
fn every_compression_reads_like_the_plain_file_by_extension_or_magic() {
    let dir = TempDir::new().unwrap();
    let plain: [(&str, Vec<u8>); 3] = [
        (
            "t.csv",
            b"key,time,op\na,1,read\nb,2,write\na,4,delete\n".to_vec(),
        ),
        (
            "t.oracleGeneral.bin",
            [oracle_record(9, 1, 10), oracle_record(12, 2, 0)].concat(),
        ),
        ("t.lis", b"5 2 0 0\n9 1 0 1\n".to_vec()),
    ];
    for (name, bytes) in &plain {
        let path = write(&dir, name, bytes);
        let format = TraceFormat::detect(&path);
        let expected = read(&path, &TraceOptions::default());
        for (codec, extension) in CODECS {
            let compressed = compress(codec, bytes);
            let named = write(&dir, &format!("{name}.{extension}"), &compressed);
            assert_eq!(
                read(&named, &TraceOptions::default()),
                expected,
                "{codec:?}"
            );
            // Without the extension the magic bytes say the codec.
            let unnamed = write(&dir, &format!("{codec:?}-{name}"), &compressed);
            let options = TraceOptions {
                format,
                ..TraceOptions::default()
            };
            assert_eq!(read(&unnamed, &options), expected, "{codec:?} by magic");
        }
    }
}

#[test]
fn a_compression_extension_that_lies_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "keys.csv.gz", b"key\na\n");
    let error = first_error(&path, &TraceOptions::default());
    assert!(error.reason.contains("gzip"), "{error}");
    assert!(error.reason.contains("rename"), "{error}");
}

#[test]
fn a_cut_compressed_stream_is_an_error_not_a_short_trace() {
    let dir = TempDir::new().unwrap();
    let mut text = String::from("key,time\n");
    for i in 0..20_000 {
        text.push_str(&format!("object-{},{i}\n", i % 977));
    }
    for (codec, extension) in CODECS {
        let compressed = compress(codec, text.as_bytes());
        let cut = &compressed[..compressed.len() * 2 / 3];
        let path = write(&dir, &format!("cut.csv.{extension}"), cut);
        let error = first_error(&path, &TraceOptions::default());
        assert!(
            error.reason.contains("cut short: re-fetch"),
            "{codec:?}: {error}"
        );
    }
}

// ---- truncated and corrupt input ----

#[test]
fn a_truncated_binary_record_names_the_record_and_its_byte_offset() {
    let dir = TempDir::new().unwrap();
    let mut bytes = [oracle_record(1, 1, 1), oracle_record(2, 2, 2)].concat();
    bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
    let path = write(&dir, "t.oracleGeneral.bin", &bytes);
    let error = first_error(&path, &TraceOptions::default());
    assert_eq!(error.location, "record 3 (byte 48)");
    assert!(
        error
            .reason
            .contains("truncated final record: 5 of its 24 bytes"),
        "{error}"
    );
    assert!(error.to_string().contains("t.oracleGeneral.bin"), "{error}");

    let path = write(&dir, "cache2k.trace", &[0, 0, 0, 1, 0, 0]);
    let error = first_error(&path, &TraceOptions::default());
    assert_eq!(error.location, "record 2 (byte 4)");
    assert!(error.reason.contains("2 of its 4 bytes"), "{error}");
}

#[test]
fn corrupt_text_lines_are_named_with_what_is_wrong() {
    let dir = TempDir::new().unwrap();
    let cases: [(&str, &str, &str, &str); 10] = [
        (
            "a.lirs.trace",
            "1\n2\nx7\n",
            "line 3",
            "`x7` is not a LIRS key",
        ),
        (
            "b.lis",
            "1 2 0 0\n1 -2 0 0\n",
            "line 2",
            "unsigned integers",
        ),
        ("c.lis", "1 99999999999 0 0\n", "line 1", "probably damaged"),
        (
            "d.csv",
            "key,op\na,read\nb,fetch\n",
            "line 3",
            "unknown op `fetch`",
        ),
        (
            "e.csv",
            "key,time\na,soon\n",
            "line 2",
            "not a number of seconds",
        ),
        ("f.csv", "key,bytes\n\"a,1\n", "line 2", "no closing quote"),
        ("g.csv", "key,bytes\na\n", "line 2", "1 fields"),
        (
            "msr.csv",
            "1,hm,0,Trim,0,512,1\n",
            "line 1",
            "unknown request type `Trim`",
        ),
        (
            "cloudphysics.csv",
            "version,time,op,size,lbn\n1,1,35,512,0\n",
            "line 2",
            "SCSI opcode `35`",
        ),
        (
            "tencent",
            "2016020116460 abc 5 m 1 1 PC 1\n",
            "line 1",
            "yyyyMMddHHmmss",
        ),
    ];
    for (name, text, location, reason) in cases {
        let path = write(&dir, name, text.as_bytes());
        let error = first_error(&path, &TraceOptions::default());
        assert_eq!(error.location, location, "{name}: {error}");
        assert!(error.reason.contains(reason), "{name}: {error}");
    }
}

#[test]
fn a_csv_without_a_key_column_is_refused_naming_the_columns() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "t.csv", b"name,time\na,1\n");
    let error = first_error(&path, &TraceOptions::default());
    assert_eq!(error.location, "line 1");
    assert!(error.reason.contains("no `key` column"), "{error}");
    assert!(error.reason.contains("`time` (seconds)"), "{error}");

    let path = write(&dir, "cp.csv", b"version,time,op,size\n");
    let error = first_error(&path, &with_format(TraceFormat::CloudPhysicsCsv));
    assert!(error.reason.contains("no `lbn` column"), "{error}");
}

#[test]
fn an_empty_trace_is_an_error_in_every_format() {
    let dir = TempDir::new().unwrap();
    for format in TraceFormat::ALL {
        let path = write(&dir, &format!("empty-{}", format.name()), b"");
        let error = first_error(&path, &with_format(format));
        assert!(
            error.reason.contains("empty") || error.reason.contains("no request"),
            "{error}"
        );
    }
    // A header alone, or markers alone, hold no request either.
    let path = write(&dir, "header.csv", b"key,time\n");
    assert!(first_error(&path, &TraceOptions::default())
        .reason
        .contains("no request"));
    let path = write(&dir, "only-markers.lirs", b"*\n*\n");
    assert!(first_error(&path, &with_format(TraceFormat::Lirs))
        .reason
        .contains("no request"));
}

#[test]
fn a_missing_file_and_a_bad_time_scale_are_refused() {
    let dir = TempDir::new().unwrap();
    let error = first_error(&dir.path().join("absent.csv"), &TraceOptions::default());
    assert!(error.reason.contains("cannot open"), "{error}");
    let path = write(&dir, "k.csv", b"key\na\n");
    for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let options = TraceOptions {
            time_scale: scale,
            ..TraceOptions::default()
        };
        assert!(first_error(&path, &options).reason.contains("time scale"));
    }
}

/// xorshift64*: deterministic noise for the corruption test.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_and_mangled_bytes_never_panic_in_any_format() {
    let dir = TempDir::new().unwrap();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let seeds: [&[u8]; 4] = [
        b"key,time,op,bytes\n\"a\",1,read,5\nb,2,write,\n",
        b"1,hm,0,Read,0,512,1\n2,hm,1,Write,4096,8192,1\n",
        b"20160201164604 abc 5 m 12903 1 PHONE 1\n",
        b"10 3 0 0\n*\n7\n",
    ];
    for round in 0..200 {
        let mut bytes = seeds[round % seeds.len()].to_vec();
        for _ in 0..(noise.next() % 6) {
            let at = (noise.next() as usize) % bytes.len();
            bytes[at] = noise.next() as u8;
        }
        if round % 5 == 0 {
            bytes = (0..noise.next() % 100)
                .map(|_| noise.next() as u8)
                .collect();
        }
        let path = write(&dir, "noise", &bytes);
        for format in TraceFormat::ALL {
            if let Ok(reader) = TraceReader::open(&path, &with_format(format)) {
                // Errors are fine; a panic or an endless stream is not.
                assert!(reader.take(1 << 26).count() < 1 << 26);
            }
        }
    }
}

// ---- ids, times, summary ----

#[test]
fn two_readers_of_a_file_give_the_same_ids_in_the_same_order() {
    let dir = TempDir::new().unwrap();
    let mut text = String::from("key,time\n");
    for i in 0..5_000u64 {
        text.push_str(&format!("k{},{i}\n", (i * 7_919) % 1_237));
    }
    let path = write(&dir, "t.csv", text.as_bytes());
    let first = read(&path, &TraceOptions::default());
    let second = read(&path, &TraceOptions::default());
    assert_eq!(first, second);
    // Ids are dense, in order of first appearance.
    let mut next = 0;
    for request in &first.0 {
        assert!(request.object <= next);
        if request.object == next {
            next += 1;
        }
    }
    assert_eq!(next, 1_237);
}

#[test]
fn a_clockless_trace_runs_one_time_scale_per_request() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "l.lirs", b"1\n2\n*\n1\n");
    let options = TraceOptions {
        format: None,
        time_scale: 60.0,
    };
    let (requests, _) = read(&path, &options);
    assert_eq!(times(&requests), [0, 60_000, 120_000]);
    let options = TraceOptions {
        format: None,
        time_scale: 0.25,
    };
    let (requests, _) = read(&path, &options);
    assert_eq!(times(&requests), [0, 250, 500]);
}

#[test]
fn a_clock_that_steps_back_is_held_and_scaled_never_negative_never_decreasing() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "t.csv", b"key,time\na,10\nb,12\nc,11\nd,9\ne,15\n");
    let (requests, _) = read(&path, &TraceOptions::default());
    assert_eq!(times(&requests), [0, 2_000, 2_000, 2_000, 5_000]);
    let options = TraceOptions {
        format: None,
        time_scale: 2.0,
    };
    let (requests, _) = read(&path, &options);
    assert_eq!(times(&requests), [0, 4_000, 4_000, 4_000, 10_000]);
}

#[test]
fn the_summary_counts_ops_and_keeps_each_objects_largest_size() {
    let dir = TempDir::new().unwrap();
    let csv =
        "key,time,op,bytes\na,0,write,100\nb,1,read,\na,2,read,300\na,3,read,200\nc,5,delete,\n";
    let path = write(&dir, "t.csv", csv.as_bytes());
    let summary = summarize(&path, &TraceOptions::default()).unwrap();
    assert_eq!(summary.format, TraceFormat::Csv);
    assert!(summary.has_clock);
    assert_eq!((summary.requests, summary.objects), (5, 3));
    assert_eq!(
        summary.sizes,
        [300, DEFAULT_OBJECT_SIZE, DEFAULT_OBJECT_SIZE]
    );
    assert_eq!(summary.span_ms, 5_000);
    assert_eq!((summary.reads, summary.writes, summary.deletes), (3, 1, 1));

    let path = write(&dir, "bad.csv", b"key,op\na,read\nb,teleport\n");
    let error = summarize(&path, &TraceOptions::default()).unwrap_err();
    assert_eq!(error.location, "line 3");
}

// ---- the real traces ----

/// The shared trace folder (`STRATA_TRACE_DATA`, else next to the checkout); `None`, and a
/// note, when it is absent.
fn trace_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("STRATA_TRACE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/traces")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: no traces at {}", dir.display());
        None
    }
}

/// What a real trace must read as: counts computed independently of this reader.
struct Expected {
    format: TraceFormat,
    requests: u64,
    objects: u32,
    clock: bool,
}

/// Reads a real trace whole, checks it against `expected`, and returns its summary (`None`
/// when the trace folder is absent).
fn check_real(name: &str, expected: Expected) -> Option<TraceSummary> {
    let path = trace_dir()?.join(name);
    let summary = summarize(&path, &TraceOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.format, expected.format, "{name}");
    assert_eq!(summary.has_clock, expected.clock, "{name}");
    let counts = (summary.requests, summary.objects);
    assert_eq!(counts, (expected.requests, expected.objects), "{name}");
    assert_eq!(summary.sizes.len(), expected.objects as usize);
    let ops = summary.reads + summary.writes + summary.deletes;
    assert_eq!(ops, expected.requests, "{name}");
    if !expected.clock {
        let last = (expected.requests as i64 - 1) * 1_000;
        assert_eq!(summary.span_ms, last, "{name}");
    }
    Some(summary)
}

// The expected counts were computed with Python in the trace folder (python3 -c '...'):
// ARC:     n=b=0; s=set()
//          for l in zstd-decompressed lines: f=l.split(); a,c=int(f[0]),int(f[1]); n+=c;
//          s.update(range(a,a+c))                                  -> n, len(s)
// cache2k: d=lzma.open(F).read(); k=struct.unpack('>%di'%(len(d)//4),d) -> len(k), len(set(k))
// oracle:  r=[struct.unpack_from('<IQIq',d,i) for i in range(0,len(d),24)]
//          -> len(r), len({x[1] for x in r}), r[-1][0]-r[0][0]
// LIRS:    l=[x for x in gzip lines if x.strip() not in ('','*')] -> len(l), len(set(l))
// MSR and CloudPhysics (off = Offset, or lbn*512): first=off//4096;
//          last=(off+max(size,1)-1)//4096; n+=last-first+1; s.update((host,disk,e) for e in
//          range(first,last+1))                                     -> n, len(s)
// Tencent: f=l.split() per line -> lines, len({(f[1],f[2],f[3])})

#[test]
fn real_arc_oltp_reads_whole() {
    let expected = Expected {
        format: TraceFormat::ArcLis,
        requests: 914_145,
        objects: 186_880,
        clock: false,
    };
    check_real("arc_OLTP.lis.zst", expected);
}

#[test]
fn real_arc_p3_reads_whole() {
    let expected = Expected {
        format: TraceFormat::ArcLis,
        requests: 3_912_296,
        objects: 762_543,
        clock: false,
    };
    check_real("arc_P3.lis.zst", expected);
}

#[test]
fn real_cache2k_web07_reads_whole() {
    let expected = Expected {
        format: TraceFormat::Cache2k,
        requests: 76_118,
        objects: 20_484,
        clock: false,
    };
    check_real("cache2k_web07.trace.xz", expected);
}

#[test]
fn real_cloudphysics_csv_reads_whole() {
    let expected = Expected {
        format: TraceFormat::CloudPhysicsCsv,
        requests: 1_141_869,
        objects: 269_210,
        clock: true,
    };
    if let Some(summary) = check_real("cloudPhysicsIO.csv", expected) {
        // Opcode 28 (read) and 2a (write) extents; the clock runs 7,200 s.
        assert_eq!((summary.reads, summary.writes), (485_700, 656_169));
        assert_eq!(summary.span_ms, 7_200_000);
        assert!(summary.sizes.iter().all(|&size| size == BLOCK_EXTENT));
    }
}

#[test]
fn real_cloudphysics_oracle_general_reads_whole() {
    let expected = Expected {
        format: TraceFormat::OracleGeneral,
        requests: 113_872,
        objects: 48_974,
        clock: true,
    };
    if let Some(summary) = check_real("cloudPhysicsIO.oracleGeneral.bin", expected) {
        assert_eq!(summary.span_ms, 7_200_000);
    }
}

#[test]
fn real_lirs_multi1_reads_whole() {
    let expected = Expected {
        format: TraceFormat::Lirs,
        requests: 15_858,
        objects: 2_606,
        clock: false,
    };
    check_real("lirs_multi1.trace.gz", expected);
}

#[test]
fn real_msr_cambridge_sample_reads_whole() {
    let expected = Expected {
        format: TraceFormat::MsrCsv,
        requests: 2_473,
        objects: 1_917,
        clock: true,
    };
    if let Some(summary) = check_real("msr-cambridge1-sample.csv", expected) {
        assert_eq!(summary.reads, 1_537);
    }
}

#[test]
fn real_tencent_photo_sample_reads_whole() {
    let expected = Expected {
        format: TraceFormat::TencentPhoto,
        requests: 10_000,
        objects: 9_694,
        clock: true,
    };
    if let Some(summary) = check_real("tencent_cloud_photos-sample.bz2", expected) {
        // 20160201164604 to 20160201164615.
        assert_eq!(summary.span_ms, 11_000);
    }
}
