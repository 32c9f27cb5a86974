//! `default_catalog_path` reads the environment, so all its cases run in this one test
//! (integration test files are separate processes; nothing else here touches the env).

use std::path::PathBuf;

use strata_catalog::{default_catalog_path, CATALOG_ENV};

#[test]
fn strata_catalog_overrides_the_data_dir() {
    std::env::set_var(CATALOG_ENV, "/srv/strata/jobs.db");
    assert_eq!(
        default_catalog_path().unwrap(),
        PathBuf::from("/srv/strata/jobs.db")
    );

    // Empty means unset.
    std::env::set_var(CATALOG_ENV, "");
    #[cfg(target_os = "linux")]
    {
        std::env::set_var("XDG_DATA_HOME", "/data/home");
        assert_eq!(
            default_catalog_path().unwrap(),
            PathBuf::from("/data/home/strata/catalog.db")
        );
        std::env::remove_var("XDG_DATA_HOME");
        std::env::set_var("HOME", "/home/someone");
        assert_eq!(
            default_catalog_path().unwrap(),
            PathBuf::from("/home/someone/.local/share/strata/catalog.db")
        );
    }
    std::env::remove_var(CATALOG_ENV);
    assert!(default_catalog_path()
        .unwrap()
        .ends_with("strata/catalog.db"));
}
