//! Atomic file writes for every file nr-index writes: a temporary sibling, synced, then renamed
//! over the final name, so a reader or a rerun never sees half a file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{IndexError, Result};

/// The temporary name a file is written under before it is renamed into place (not `*.parquet`,
/// so readers of a folder never pick it up).
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Syncs `file`, written at `tmp`, and renames it to `path`.
pub(crate) fn commit(file: File, tmp: &Path, path: &Path) -> Result<()> {
    file.sync_all().map_err(|e| IndexError::io(tmp, e))?;
    drop(file);
    std::fs::rename(tmp, path).map_err(|e| IndexError::io(path, e))
}

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let mut f = File::create(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| IndexError::io(&tmp, e))?;
    commit(f, &tmp, path)
}
