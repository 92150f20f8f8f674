//! Turning token states into one sentence vector, as sentence-transformers' `Pooling` and
//! `Normalize` modules do.

use std::path::Path;

use burn::tensor::{Bool, Tensor};
use serde::Deserialize;

use super::config::read_json;
use crate::error::{BackboneError, Result};

/// How the token states of one text are reduced to a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the real (unpadded) tokens: MiniLM, e5.
    Mean,
    /// The first token's (`[CLS]`) state: bge.
    Cls,
    /// Element-wise maximum over the real tokens.
    Max,
    /// Sum over the real tokens divided by the square root of their count.
    MeanSqrtLen,
}

/// `1_Pooling/config.json` as sentence-transformers writes it.
#[derive(Deserialize)]
struct PoolingFile {
    word_embedding_dimension: Option<usize>,
    /// Newer spelling: one mode by name.
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
    #[serde(default = "yes")]
    include_prompt: bool,
}

fn yes() -> bool {
    true
}

impl Pooling {
    /// Reads a sentence-transformers pooling config; exactly one supported mode must be on.
    pub fn from_config_file(path: &Path, hidden_size: usize) -> Result<Self> {
        let file: PoolingFile = read_json(path)?;
        if let Some(dim) = file.word_embedding_dimension
            && dim != hidden_size
        {
            return Err(BackboneError::malformed(
                path,
                format!(
                    "'word_embedding_dimension' {dim} differs from the model's hidden_size {hidden_size}"
                ),
            ));
        }
        if !file.include_prompt {
            return Err(BackboneError::unsupported(path, "'include_prompt': false"));
        }
        if let Some(name) = &file.pooling_mode {
            return match name.as_str() {
                "mean" => Ok(Self::Mean),
                "cls" => Ok(Self::Cls),
                "max" => Ok(Self::Max),
                "mean_sqrt_len_tokens" => Ok(Self::MeanSqrtLen),
                other => Err(BackboneError::unsupported(
                    path,
                    format!("'pooling_mode' '{other}'"),
                )),
            };
        }
        if file.pooling_mode_weightedmean_tokens || file.pooling_mode_lasttoken {
            return Err(BackboneError::unsupported(
                path,
                "weighted-mean or last-token pooling",
            ));
        }
        let on: Vec<Self> = [
            (file.pooling_mode_mean_tokens, Self::Mean),
            (file.pooling_mode_cls_token, Self::Cls),
            (file.pooling_mode_max_tokens, Self::Max),
            (file.pooling_mode_mean_sqrt_len_tokens, Self::MeanSqrtLen),
        ]
        .into_iter()
        .filter_map(|(flag, mode)| flag.then_some(mode))
        .collect();
        match on.as_slice() {
            [mode] => Ok(*mode),
            [] => Err(BackboneError::malformed(
                path,
                "no pooling_mode_* flag is true",
            )),
            _ => Err(BackboneError::unsupported(
                path,
                "several pooling modes at once (concatenated pooling)",
            )),
        }
    }

    /// Pools `hidden` `[batch, seq, dim]` over the tokens where `mask` `[batch, seq]` is 1.0
    /// (0.0 on padding), giving `[batch, dim]`.
    pub fn pool(self, hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [batch, seq, dim] = hidden.dims();
        match self {
            Self::Cls => hidden.narrow(1, 0, 1).reshape([batch, dim]),
            Self::Mean | Self::MeanSqrtLen => {
                let weights: Tensor<3> = mask.clone().reshape([batch, seq, 1]);
                let summed = (hidden * weights).sum_dim(1).reshape([batch, dim]);
                let count = mask.sum_dim(1).clamp_min(1e-9);
                let divisor = if self == Self::Mean {
                    count
                } else {
                    count.sqrt()
                };
                summed / divisor
            }
            Self::Max => {
                let padding: Tensor<3, Bool> = mask
                    .reshape([batch, seq, 1])
                    .equal_elem(0.0)
                    .expand([batch, seq, dim]);
                // sentence-transformers fills padding with -1e9 before the max.
                hidden
                    .mask_fill(padding, -1e9)
                    .max_dim(1)
                    .reshape([batch, dim])
            }
        }
    }
}

/// Scales each row of `x` `[batch, dim]` to unit L2 norm (norms clamped at 1e-12, as
/// `torch.nn.functional.normalize`).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
