//! The one error type of nr-index: every message is one line and names the file (and field) at fault.

use std::path::PathBuf;

/// Why reading, writing or searching vectors failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The operating system refused a read or write.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A file is not what it should be: not Parquet, a missing or mistyped column, metadata that
    /// disagrees with the rest of the set.
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    /// Arguments that cannot describe valid vectors (a width mismatch, an empty set, ...).
    #[error("{0}")]
    Invalid(String),
    /// The HNSW library refused an operation.
    #[error("hnsw index {path}: {problem}")]
    Hnsw { path: PathBuf, problem: String },
}

impl IndexError {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        IndexError::Io {
            path: path.into(),
            cause,
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, problem: impl std::fmt::Display) -> Self {
        IndexError::File {
            path: path.into(),
            problem: problem.to_string(),
        }
    }
}

/// Result of nr-index.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
