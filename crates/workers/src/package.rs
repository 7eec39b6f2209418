//! The Python `tandem` package embedded in the binary (see `build.rs`),
//! written out once per version to a cache folder that workers import from.
//!
//! Writing it out, rather than asking researchers to `pip install` a matching
//! version, means a worker started by this server always speaks its
//! protocol; the interpreter needs only numpy and the environments' packages.

use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Writes the package under `cache` (if this version is not there yet) and
/// returns the folder to put on `PYTHONPATH`.
pub fn install(cache: &Path) -> std::io::Result<PathBuf> {
    let root = cache.join(format!("python-{HASH:016x}"));
    // Whatever is there must be exactly this package: the cache may sit in a
    // folder others can write to, and workers run what they find.
    if is_intact(&root) {
        return Ok(root);
    }
    let _ = std::fs::remove_dir_all(&root);
    create_private(cache)?;
    // Written beside and renamed into place, so a server starting at the same
    // time never imports half a package.
    let staging = cache.join(format!("python-{HASH:016x}.{}", std::process::id()));
    for (relative, bytes) in FILES {
        let path = staging.join("tandem").join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    match std::fs::rename(&staging, &root) {
        Ok(()) => Ok(root),
        // Another process put it there first.
        Err(_) if is_intact(&root) => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(root)
        }
        Err(e) => Err(e),
    }
}

/// Whether `root` holds exactly the embedded files.
fn is_intact(root: &Path) -> bool {
    FILES.iter().all(|(relative, bytes)| {
        std::fs::read(root.join("tandem").join(relative)).is_ok_and(|found| found == *bytes)
    })
}

/// Creates `folder` readable and writable by this user only.
fn create_private(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
    {
        Err(_) if folder.is_dir() => Ok(()),
        other => other,
    }
}

/// Where the package is cached by default: `$XDG_CACHE_HOME/tandem`,
/// `~/.cache/tandem`, or the temporary folder.
pub fn default_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tandem")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_is_written_once_and_importable_layout() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = install(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(root.join("tandem/__init__.py").exists());
        assert!(root.join("tandem/worker/__main__.py").exists());
        assert_eq!(install(dir.path()).ok(), Some(root));
    }
}
