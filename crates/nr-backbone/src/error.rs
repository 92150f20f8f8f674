//! One error type for everything that loads or runs a frozen model.
//!
//! Every variant renders as a single line that names the file and the key or tensor at fault, so a
//! user can tell at once which input is broken.

use std::path::{Path, PathBuf};

/// Errors of model loading, tokenisation, templating and forward passes.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    /// The file could not be read (missing, permissions, ...).
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is readable but its content is malformed (truncated, wrong magic, bad offset, ...).
    #[error("{}: {detail}", path.display())]
    Malformed { path: PathBuf, detail: String },
    /// The file is well formed but asks for something this crate does not implement
    /// (unknown architecture, quantisation type, pooling mode, ...).
    #[error("{}: unsupported: {detail}", path.display())]
    Unsupported { path: PathBuf, detail: String },
    /// A required tensor or key is absent.
    #[error("{}: missing {what}", path.display())]
    Missing { path: PathBuf, what: String },
    /// A tensor's shape disagrees with the configuration.
    #[error("{}: tensor '{tensor}' has shape {found:?}, expected {expected:?}", path.display())]
    Shape {
        path: PathBuf,
        tensor: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// Tokeniser construction or encoding failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Chat template rendering failed.
    #[error("chat template: {0}")]
    Template(String),
    /// Bad runtime input (empty batch, layer index out of range, ...).
    #[error("{0}")]
    Input(String),
}

/// Result alias of this crate.
pub type Result<T, E = BackboneError> = std::result::Result<T, E>;

impl BackboneError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
    pub fn malformed(path: &Path, detail: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
    pub fn unsupported(path: &Path, detail: impl Into<String>) -> Self {
        Self::Unsupported {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
    pub fn missing(path: &Path, what: impl Into<String>) -> Self {
        Self::Missing {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}
