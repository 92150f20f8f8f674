//! One error type for building, running, saving and loading heads.
//!
//! Every variant renders as one line naming the file (when there is one) and the field or tensor
//! at fault.

use std::path::{Path, PathBuf};

/// Why a head could not be built, run, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// A configuration value is out of range (`field` names it, e.g. `mapper_heads`).
    #[error("head config: {field}: {detail}")]
    Config { field: &'static str, detail: String },
    /// A tensor given to `forward` has the wrong shape.
    #[error("head input: {tensor} has shape {found:?}, expected {expected}")]
    Input {
        tensor: &'static str,
        found: Vec<usize>,
        expected: String,
    },
    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file is readable but malformed (bad JSON, not a safetensors file, missing tensors, ...).
    #[error("{}: {detail}", path.display())]
    Malformed { path: PathBuf, detail: String },
    /// The head was made for another backbone or teacher than the one it is loaded against.
    #[error("{}: {field} is {found} in the head but {expected} in the running setup ({why})", path.display())]
    Mismatch {
        path: PathBuf,
        field: &'static str,
        found: String,
        expected: String,
        why: &'static str,
    },
}

impl HeadError {
    pub(crate) fn io(path: &Path, error: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    pub(crate) fn malformed(path: &Path, detail: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub(crate) fn config(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Config {
            field,
            detail: detail.into(),
        }
    }
}
