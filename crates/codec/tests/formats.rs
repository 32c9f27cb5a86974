//! Format sniffing on synthetic headers and on the real files of `shared/data/scientific`.

use std::io::Write;
use std::path::PathBuf;

use strata_codec::analyze::{sniff_format, Format, TypedRegion};

/// A FITS header of 80-character cards, padded to 2880 bytes.
fn fits_header(cards: &[&str]) -> Vec<u8> {
    let mut h = Vec::new();
    for c in cards.iter().chain(std::iter::once(&"END")) {
        h.extend_from_slice(format!("{c:<80}").as_bytes());
    }
    h.resize(h.len().div_ceil(2880) * 2880, b' ');
    h
}

#[test]
fn fits_bitpix_gives_the_width_and_the_data_region() {
    let mut file = fits_header(&[
        "SIMPLE  =                    T",
        "BITPIX  =                  -32 / float",
        "NAXIS   =                    2",
        "NAXIS1  =                  100",
        "NAXIS2  =                   50",
        "EXTEND  =                    T",
    ]);
    file.resize(2880 + 20_000usize.div_ceil(2880) * 2880, 0);
    file.extend(fits_header(&[
        "XTENSION= 'IMAGE   '",
        "BITPIX  =                   16",
        "NAXIS   =                    1",
        "NAXIS1  =                 1000",
        "PCOUNT  =                    0",
        "GCOUNT  =                    1",
    ]));
    let info = sniff_format(&file, Some("x.fits"));
    assert_eq!(info.format, Format::Fits { bitpix: -32 });
    assert_eq!(
        info.regions,
        vec![
            TypedRegion {
                start: 2880,
                len: 20_000,
                width: 4
            },
            TypedRegion {
                start: 2880 * 9,
                len: 2000,
                width: 2
            },
        ]
    );
    assert_eq!(info.element_width, Some(4));
    assert_eq!(info.width_at(2880, 4096), Some(4));
    assert_eq!(info.width_at(2880 * 9, 2000), Some(2));
}

/// A minimal NetCDF classic (CDF-1) header with one dimension and two variables.
fn netcdf_header() -> Vec<u8> {
    let mut h = b"CDF\x01".to_vec();
    let be = |h: &mut Vec<u8>, v: u32| h.extend_from_slice(&v.to_be_bytes());
    let name = |h: &mut Vec<u8>, s: &str| {
        h.extend_from_slice(&(s.len() as u32).to_be_bytes());
        h.extend_from_slice(s.as_bytes());
        h.resize(h.len().div_ceil(4) * 4, 0);
    };
    be(&mut h, 0); // numrecs
    be(&mut h, 0x0A); // dimensions
    be(&mut h, 1);
    name(&mut h, "x");
    be(&mut h, 1000);
    be(&mut h, 0); // no global attributes
    be(&mut h, 0);
    be(&mut h, 0x0B); // variables
    be(&mut h, 2);
    for (var, t, vsize, begin) in [("t", 3u32, 2000u32, 200u32), ("z", 6, 8000, 2200)] {
        name(&mut h, var);
        be(&mut h, 1); // one dimension: x
        be(&mut h, 0);
        be(&mut h, 0); // no attributes
        be(&mut h, 0);
        be(&mut h, t);
        be(&mut h, vsize);
        be(&mut h, begin);
    }
    h
}

#[test]
fn netcdf_classic_variable_types_give_regions() {
    let info = sniff_format(&netcdf_header(), None);
    assert_eq!(info.format, Format::NetCdfClassic { version: 1 });
    assert_eq!(
        info.regions,
        vec![
            TypedRegion {
                start: 200,
                len: 2000,
                width: 2
            },
            TypedRegion {
                start: 2200,
                len: 8000,
                width: 8
            },
        ]
    );
    assert!(
        info.detail.contains("t short") && info.detail.contains("z double"),
        "{}",
        info.detail
    );
    // A truncated header still names the format.
    assert_eq!(
        sniff_format(&netcdf_header()[..30], None).format,
        Format::NetCdfClassic { version: 1 }
    );
}

#[test]
fn npy_descr_gives_the_width() {
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (10, 3), }";
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    let info = sniff_format(&h, None);
    assert_eq!(info.format, Format::Npy);
    assert_eq!(info.element_width, Some(8));
    assert_eq!(
        info.regions[0],
        TypedRegion {
            start: h.len() as u64,
            len: 240,
            width: 8
        }
    );
}

fn bgzf(payload: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(payload).unwrap();
    let body = e.finish().unwrap();
    let mut b = vec![
        0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
    ];
    b.extend_from_slice(&((body.len() + 25) as u16).to_le_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(&[0; 8]);
    b
}

#[test]
fn magic_numbers() {
    let hdf5 = b"\x89HDF\r\n\x1a\n\0\0\0\0".to_vec();
    let mut nc4 = hdf5.clone();
    nc4.extend_from_slice(b"....._NCProperties....");
    let mut userblock = vec![0u8; 512];
    userblock.extend_from_slice(&hdf5);
    let mut root = b"root\0\0\xf3\0\0\0\0\x64".to_vec();
    root.resize(33, 0);
    root.extend_from_slice(&505u32.to_be_bytes());
    let cases: Vec<(Vec<u8>, Option<&str>, Format)> = vec![
        (hdf5.clone(), None, Format::Hdf5),
        (hdf5, Some("a/b.nc"), Format::NetCdf4),
        (nc4, None, Format::NetCdf4),
        (userblock, None, Format::Hdf5),
        (
            b"GRIB\0\0\0\x02rest".to_vec(),
            None,
            Format::Grib { edition: 2 },
        ),
        (
            b"GRIB\0\x0d\x0e\x01".to_vec(),
            None,
            Format::Grib { edition: 1 },
        ),
        (root, None, Format::Root { compression: 505 }),
        (b"CRAM\x03\x00".to_vec(), None, Format::Cram),
        (bgzf(b"BAM\x01\0\0\0\0"), None, Format::Bam),
        (bgzf(b"##fileformat=VCFv4.2"), None, Format::Bgzf),
        (vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3], None, Format::Gzip),
        (vec![0x28, 0xb5, 0x2f, 0xfd, 0x24], None, Format::Zstd),
        (b"\xfd7zXZ\0\0".to_vec(), None, Format::Xz),
        (b"BZh91AY&SY".to_vec(), None, Format::Bzip2),
        (b"PK\x03\x04\x14\0".to_vec(), None, Format::Zip),
        (vec![0xff, 0xd8, 0xff, 0xe0], None, Format::Jpeg),
        (b"\x89PNG\r\n\x1a\n\0\0".to_vec(), None, Format::Png),
        (
            b"{\n \"zarr_format\": 2\n}".to_vec(),
            Some("d.zarr/.zgroup"),
            Format::ZarrMeta,
        ),
    ];
    for (head, path, want) in cases {
        assert_eq!(sniff_format(&head, path).format, want, "{want:?}");
    }
    assert!(Format::Bam
        .compressed_inside()
        .unwrap()
        .contains("BAM (BGZF)"));
    assert!(Format::Fits { bitpix: 16 }.compressed_inside().is_none());
}

#[test]
fn blosc_chunks_inside_zarr_and_pp_records() {
    let mut blosc = vec![2, 1, 0x21, 4];
    for v in [4096u32, 4096, 100] {
        blosc.extend_from_slice(&v.to_le_bytes());
    }
    blosc.resize(100, 7);
    let info = sniff_format(&blosc, Some("data.zarr/0.0.0"));
    assert_eq!(
        info.format,
        Format::Blosc {
            compressor: 1,
            typesize: 4
        }
    );
    assert_eq!(info.format.to_string(), "Blosc/lz4 (typesize 4)");
    assert_eq!(
        sniff_format(&blosc[..64], Some("elsewhere/x")).format,
        Format::Unknown
    );

    let mut pp = 256u32.to_be_bytes().to_vec();
    pp.resize(260, 0);
    pp.extend_from_slice(&256u32.to_be_bytes());
    pp.extend_from_slice(&4096u32.to_be_bytes());
    let info = sniff_format(&pp, None);
    assert_eq!(info.format, Format::MetOfficePp);
    assert_eq!(info.element_width, Some(4));
}

#[test]
fn damaged_headers_never_panic() {
    let fits = fits_header(&[
        "SIMPLE  =                    T",
        "BITPIX  =                  -64",
        "NAXIS   = 99999999999999999999",
    ]);
    let mut inputs = vec![
        fits,
        netcdf_header(),
        b"\x93NUMPY\x02".to_vec(),
        b"root".to_vec(),
    ];
    inputs.push(bgzf(b"BA"));
    for input in inputs {
        for cut in 0..input.len().min(400) {
            let _ = sniff_format(&input[..cut], None);
            let mut bad = input.clone();
            bad[cut] ^= 0xff;
            let _ = sniff_format(&bad, Some("x.zarr/0.0"));
        }
    }
}

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("STRATA_SCIENTIFIC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/scientific")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: no scientific data at {}", dir.display());
        None
    }
}

#[test]
fn real_files_are_recognised() {
    let Some(dir) = data_dir() else {
        return;
    };
    use Format::*;
    let expected: Vec<(&str, Format, Option<u8>)> = vec![
        ("fits/HorseHead.fits", Fits { bitpix: 16 }, Some(2)),
        ("fits/M13_blue_0001.fits", Fits { bitpix: 16 }, Some(2)),
        ("fits/gc_2mass_k.fits", Fits { bitpix: 16 }, Some(2)),
        ("fits/gc_bolocam_gps.fits", Fits { bitpix: -32 }, Some(4)),
        ("fits/go1520110607.fits", Fits { bitpix: 8 }, Some(4)),
        (
            "fits/kplr010666592-2009131110544_slc.fits",
            Fits { bitpix: 8 },
            None,
        ),
        (
            "fits/spitzer_example_image.fits",
            Fits { bitpix: -32 },
            Some(4),
        ),
        (
            "genomics/GCF_000001405.39_GRCh38.p13_genomic_subsample.gff.gz",
            Gzip,
            None,
        ),
        ("genomics/hg38.fa", Fasta, None),
        ("genomics/pbmc1k_cell1.bam", Bam, None),
        ("genomics/test-haploidX.vcf", Vcf, None),
        ("genomics/yeast_RNASeq_excerpt_sequence.fastq", Fastq, None),
        ("grib/era5-2mt-2019-03-uk.grib", Grib { edition: 1 }, None),
        ("hdf5/atmospheric_muons_sample.h5", Hdf5, None),
        ("hdf5/yeast_RNASeq_excerpt_withbarcodes.h5ad", Hdf5, Some(4)),
        ("hep/muon_cc_events.root", Root { compression: 101 }, None),
        (
            "hep/nanoAOD_2015_CMS_Open_Data_ttbar.root",
            Root { compression: 101 },
            None,
        ),
        (
            "hep/uproot-HZZ-uncompressed.root",
            Root { compression: 100 },
            None,
        ),
        ("netcdf/E1_north_america.nc", NetCdf4, None),
        ("netcdf/air.mon.mean.nc", NetCdf4, Some(4)),
        (
            "netcdf/eraint_uvz.nc",
            NetCdfClassic { version: 2 },
            Some(2),
        ),
        (
            "netcdf/ta_day_IPSL-CM6A-LR_historical_r1i1p1f1_gr_19500101-20141231.nc",
            NetCdf4,
            Some(4),
        ),
        ("pp/uk_hires.pp", MetOfficePp, Some(4)),
        ("zarr/zarr_dataset_subset.zarr/.zarray", ZarrMeta, None),
        ("zarr/zarr_dataset_subset.zarr/.zattrs", ZarrMeta, None),
        ("zarr/zarr_dataset_subset.zarr/.zgroup", ZarrMeta, None),
        (
            "zarr/zarr_dataset_subset.zarr/0.0.0",
            Blosc {
                compressor: 1,
                typesize: 1,
            },
            None,
        ),
        (
            "zarr/zarr_dataset_subset.zarr/0.1.0",
            Blosc {
                compressor: 1,
                typesize: 1,
            },
            None,
        ),
        (
            "zarr/zarr_dataset_subset.zarr/0.2.0",
            Blosc {
                compressor: 1,
                typesize: 1,
            },
            None,
        ),
    ];
    for (path, format, width) in expected {
        let data = std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let head = &data[..data.len().min(1 << 20)];
        let info = sniff_format(head, Some(path));
        assert_eq!(info.format, format, "{path}: {}", info.detail);
        assert_eq!(info.element_width, width, "{path}: {}", info.detail);
        // Without the path hint, only Zarr metadata (plain JSON) and Zarr's Blosc chunks
        // (no magic) need it; NetCDF-4 needs either the hint or its marker attributes.
        let blind = sniff_format(head, None).format;
        match format {
            ZarrMeta => assert_eq!(blind, Text, "{path}"),
            Blosc { .. } => {}
            NetCdf4 => assert!(matches!(blind, NetCdf4 | Hdf5), "{path}"),
            _ => assert_eq!(blind, format, "{path}"),
        }
    }
}
