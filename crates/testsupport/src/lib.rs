//! # strata-testsupport
//!
//! Test-only helpers that several crates' tests share (a dev-dependency only, never in
//! the `strata` binary): real servers started on 127.0.0.1 by the test itself.
//!
//! - [`postgres`]: a PostgreSQL server per test binary, a fresh database per test.
//!
//! A crate of its own rather than a feature of `strata-catalog`: the catalog, CLI and
//! service tests all need it, it has nothing to do with the catalog's code, and a
//! dev-only crate cannot leak into a release build.

pub mod postgres;
