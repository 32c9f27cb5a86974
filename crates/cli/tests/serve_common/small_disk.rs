//! A small tmpfs for tests of full disks.

use std::path::{Path, PathBuf};

/// A tmpfs of `size` mounted at `at` until dropped (the tests run as root): a disk that
/// fills up.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts it (asserts root).
    pub fn mount(at: &Path, size: &str) -> SmallDisk {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "this test mounts a small tmpfs and needs root (CI and the dev machines run as root)"
        );
        std::fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs on {}", at.display());
        SmallDisk(at.to_path_buf())
    }

    /// Free bytes on it.
    pub fn free(&self) -> u64 {
        let path = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
        let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stats) }, 0);
        stats.f_bavail as u64 * stats.f_frsize as u64
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
