//! Embeds the schema migrations: writes `$OUT_DIR/migrations.rs` listing every
//! `migrations/NNNN_name.sql` (SQLite) and `migrations/postgres/NNNN_name.sql` (PostgreSQL)
//! with `include_str!`, read by `src/migrations.rs`. This replaces `sqlx::migrate!`, whose
//! procedural macro brought a second build of sqlx and of SQLite's C sources (for the host)
//! into every build. Adding a file to either directory rebuilds the crate.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut code = String::new();
    for (name, dir) in [
        ("SQLITE", "migrations"),
        ("POSTGRES", "migrations/postgres"),
    ] {
        let dir = Path::new(&root).join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        writeln!(
            code,
            "/// The files of `{}`: (file name, SQL).",
            dir.display()
        )
        .unwrap();
        writeln!(code, "pub(crate) const {name}: &[(&str, &str)] = &[").unwrap();
        for file in files {
            let path = dir.join(&file);
            println!("cargo:rerun-if-changed={}", path.display());
            writeln!(code, "    ({file:?}, include_str!({:?})),", path.display()).unwrap();
        }
        writeln!(code, "];").unwrap();
    }
    std::fs::write(Path::new(&out).join("migrations.rs"), code).expect("write migrations.rs");
}
