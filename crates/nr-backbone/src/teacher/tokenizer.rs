//! The teacher's WordPiece tokenizer (`tokenizer.json` through the `tokenizers` crate), truncating
//! as sentence-transformers does.

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{BackboneError, Result};

/// Turns texts into token ids (`[CLS] ... [SEP]`), at most `max_len` of them.
pub struct TeacherTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    max_len: usize,
    pad_id: u32,
}

impl TeacherTokenizer {
    /// Loads `tokenizer.json`, replacing whatever truncation and padding it stores (MiniLM's file says
    /// 128 and fixed padding) with truncation to `max_len` tokens and no padding.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self> {
        if !path.is_file() {
            let (dir, name) = (
                path.parent().unwrap_or(path),
                path.file_name().unwrap_or_default(),
            );
            return Err(BackboneError::missing(dir, name.to_string_lossy()));
        }
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| BackboneError::malformed(path, format!("cannot load tokenizer: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| BackboneError::malformed(path, format!("truncation to {max_len}: {e}")))?;
        let pad_id = inner.token_to_id("[PAD]").unwrap_or(0);
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            max_len,
            pad_id,
        })
    }

    /// Longest output in tokens, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The id padding positions are filled with (masked out, so its value does not matter).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Number of ids the tokenizer can produce, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of each text with `prefix` prepended (an instruction or `"query: "`; empty for
    /// none). Texts are tokenised in parallel by the tokenizer's own thread pool.
    pub fn encode(&self, texts: &[&str], prefix: &str) -> Result<Vec<Vec<u32>>> {
        let encodings = if prefix.is_empty() {
            self.inner.encode_batch_fast(texts.to_vec(), true)
        } else {
            let prefixed: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
            self.inner.encode_batch_fast(prefixed, true)
        }
        .map_err(|e| BackboneError::Tokenizer(format!("{}: {e}", self.path.display())))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }
}
