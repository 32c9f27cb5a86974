//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time but only tracks the files it already knows.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
