use std::time::Instant;
use strata_codec::compress::{Codec, Filter};
fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            files(&p, out)
        } else if !p.ends_with("SOURCE.txt") {
            out.push(p)
        }
    }
}
fn main() {
    let mut fs = vec![];
    files("/work/shared/data/scientific".as_ref(), &mut fs);
    let codecs = [
        Codec::Lz4,
        Codec::Zstd {
            level: 1,
            long: false,
        },
        Codec::Zstd {
            level: 3,
            long: false,
        },
        Codec::Zstd {
            level: 9,
            long: false,
        },
        Codec::Zstd {
            level: 19,
            long: false,
        },
        Codec::Gzip { level: 6 },
        Codec::Bzip2 { level: 9 },
        Codec::Xz { level: 6 },
        Codec::Xz { level: 9 },
    ];
    let filters = [
        Filter::None,
        Filter::Shuffle { width: 2 },
        Filter::Shuffle { width: 4 },
        Filter::Shuffle { width: 8 },
    ];
    for f in fs {
        let data = std::fs::read(&f).unwrap();
        let name = f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .chars()
            .take(28)
            .collect::<String>();
        for c in codecs {
            for fl in filters {
                let t = Instant::now();
                let mut z = 0usize;
                for ch in data.chunks(4 << 20) {
                    z += c.compress(&fl.apply(ch)).unwrap().len().min(ch.len());
                }
                let dt = t.elapsed().as_secs_f64();
                println!(
                    "{name}\t{}\t{c}\t{fl}\t{z}\t{:.1}",
                    data.len(),
                    data.len() as f64 / dt / 1e6
                );
            }
        }
    }
}
