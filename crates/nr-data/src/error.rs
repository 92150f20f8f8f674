//! The one error type of nr-data: every variant names the file (and line, turn or field) at fault.

use std::path::PathBuf;

/// Why reading or writing a data file failed. Messages are one line and name the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused a read or write. The I/O error is part of the message (not a
    /// separate `source`), so `{:#}` chains print it once.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A QReCC file is not a JSON list of turns (bad JSON, or not a list).
    #[error("{path}: {problem}")]
    QreccShape { path: PathBuf, problem: String },
    /// One turn of a QReCC file has a missing, mistyped or unknown field.
    #[error("{path}: turn {index}: field `{field}`: {problem}")]
    QreccField {
        path: PathBuf,
        index: usize,
        field: String,
        problem: String,
    },
    /// A line of a line-oriented file (jsonl collection, qrels, run) is malformed.
    #[error("{path}:{line}: {problem}")]
    Line {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    /// A file or folder is unusable as a whole (no `.jsonl` files, a duplicate id, ...).
    #[error("{path}: {problem}")]
    Content { path: PathBuf, problem: String },
    /// A cache file could not be written, or its contents were rejected by the caller.
    #[error("cache {path}: {problem}")]
    Cache { path: PathBuf, problem: String },
    /// Arguments that cannot describe valid data (e.g. a tensor whose data length does not match its shape).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            cause: source,
        }
    }
}

/// Result type of nr-data.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
