//! GGUF tensors as a [`WeightSource`]: de-quantised to `f32` in PyTorch layout.
//!
//! Names are the GGUF names (`token_embd.weight`, `blk.0.attn_q.weight`, ...); mapping them to HF
//! names and undoing llama.cpp's Q/K row permutation is the model loader's business.

use std::path::Path;

use super::dequant::{DequantError, dequantize};
use super::reader::GgufFile;
use crate::error::{BackboneError, Result};
use crate::weights::{HostTensor, WeightSource};

impl WeightSource for GgufFile {
    fn path(&self) -> &Path {
        GgufFile::path(self)
    }

    fn contains(&self, name: &str) -> bool {
        self.tensor_info(name).is_some()
    }

    /// The tensor with shape = GGUF dims reversed; GGUF stores the fastest dimension first, so
    /// the stored element order is already row-major for that shape.
    fn tensor(&self, name: &str) -> Result<HostTensor> {
        let info = self.tensor_info(name).ok_or_else(|| {
            BackboneError::missing(GgufFile::path(self), format!("tensor '{name}'"))
        })?;
        let data = dequantize(
            info.ggml_type,
            self.tensor_bytes(info),
            info.n_elements() as usize,
        )
        .map_err(|e| {
            let detail = format!("tensor '{name}': {e}");
            match e {
                DequantError::Unsupported(_) => {
                    BackboneError::unsupported(GgufFile::path(self), detail)
                }
                DequantError::Size { .. } => BackboneError::malformed(GgufFile::path(self), detail),
            }
        })?;
        Ok(HostTensor {
            data,
            shape: info.shape(),
        })
    }
}
