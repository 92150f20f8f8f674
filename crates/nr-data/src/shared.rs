//! Where the project's shared data and reference fixtures live: `../shared` beside the checkout
//! (override with `NR_SHARED`). Every test, benchmark and example finds its files through
//! [`shared_path`], so moving the folder is one environment variable.

use std::path::{Path, PathBuf};

/// The shared folder: `NR_SHARED` when set, else `../shared` beside the repository.
pub fn shared_root() -> PathBuf {
    std::env::var_os("NR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// A file or folder of the shared folder, e.g. `data/qrecc-offline/qrels_test.txt` or
/// `fixtures/minilm_reference.json`.
///
/// # Panics
/// When it does not exist, with a message saying where it was looked for: tests never skip
/// silently for want of data.
pub fn shared_path(relative: &str) -> PathBuf {
    let p = shared_root().join(relative);
    assert!(
        p.exists(),
        "{} is missing (the shared data sits beside the checkout in ../shared; set NR_SHARED to read it elsewhere)",
        p.display()
    );
    p
}

/// A file of the offline QReCC benchmark (`data/qrecc-offline/NAME`).
pub fn qrecc_offline(name: &str) -> PathBuf {
    shared_path(&format!("data/qrecc-offline/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_folder_holds_the_offline_benchmark() {
        assert!(qrecc_offline("qrels_test.txt").is_file());
        assert!(shared_root().join("fixtures").is_dir());
    }
}
