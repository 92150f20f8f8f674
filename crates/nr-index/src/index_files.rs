//! The files every saved index has beside its own: `NAME.json` (what it indexes), `NAME.ids` (row
//! -> id, one per line) and, when it re-scores, `NAME.f16` (the vectors in f16).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::{IndexError, Result};

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Sidecar paths of an index file: what it indexes (`.json`) and its row ids (`.ids`).
pub fn sidecar_paths(path: &Path) -> (PathBuf, PathBuf) {
    (with_suffix(path, ".json"), with_suffix(path, ".ids"))
}

/// Path of an index file's f16 re-scoring vectors (`.f16`).
pub fn rescore_path(path: &Path) -> PathBuf {
    with_suffix(path, ".f16")
}

/// Writes `ids` to `path` atomically, one per line.
pub(crate) fn write_ids(path: &Path, ids: &[String]) -> Result<()> {
    let mut text = String::with_capacity(ids.len() * 16);
    for id in ids {
        if id.contains('\n') {
            return Err(IndexError::Invalid(format!("id {id:?} holds a line break")));
        }
        text.push_str(id);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Reads the ids of `path`, which must hold `rows` of them.
pub(crate) fn read_ids(path: &Path, rows: usize) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| IndexError::io(path, e))?;
    let ids = std::io::BufReader::new(file)
        .lines()
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| IndexError::io(path, e))?;
    if ids.len() != rows {
        return Err(IndexError::file(
            path,
            format!("{} ids, the sidecar says {rows} rows", ids.len()),
        ));
    }
    Ok(ids)
}

/// Reads the sidecar `json` as `T`.
pub(crate) fn read_sidecar<T: serde::de::DeserializeOwned>(json: &Path) -> Result<T> {
    let text = std::fs::read_to_string(json).map_err(|e| IndexError::io(json, e))?;
    serde_json::from_str(&text)
        .map_err(|e| IndexError::file(json, format!("not an index sidecar: {e}")))
}

/// Writes the sidecar `value` to `json` atomically.
pub(crate) fn write_sidecar(json: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("sidecar serialises");
    write_atomic(json, text.as_bytes())
}
