//! Head settings.
//!
//! The config is one flat table tagged by `kind`, so an experiment manifest's `[head]` table (and a
//! grid override such as `head.kind = ["linear", "mlp"]`) stays simple: every kind accepts every
//! key, and a key a kind does not use is ignored by that kind (documented per field). Unknown keys
//! are rejected, so a typo is an error rather than a silent default. Deserialising validates the
//! values (see [`HeadConfig::validate`]).

use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::token_pool::TokenPooling;

/// The three head architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// One linear map of the pooled hidden state.
    Linear,
    /// Linear -> GELU -> dropout -> Linear on the pooled hidden state.
    Mlp,
    /// A small pre-LN transformer over the token states, then pooling and a linear map.
    Mapper,
}

/// How the mapper turns its token states into one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MapperPooling {
    /// A learned query attends over the real tokens (multi-head cross-attention).
    #[default]
    Query,
    /// Mean over the real tokens.
    Mean,
}

/// Everything needed to build a head; saved in the head's JSON sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawHeadConfig")]
pub struct HeadConfig {
    pub kind: HeadKind,
    /// Width `H` of the LLM hidden states.
    pub input_dim: usize,
    /// Width `D` of the teacher embeddings (the head's output).
    pub output_dim: usize,
    /// Hidden layers the head reads, mixed by a learned softmax weighting
    /// ([`LayerMix`](crate::LayerMix)); 1 = a single layer, no mixing.
    pub layers: usize,
    /// MLP hidden width, or the mapper's feed-forward width. Unused by `linear`.
    pub hidden: usize,
    /// Dropout probability of the MLP (after GELU) and inside the mapper. Unused by `linear`.
    pub dropout: f64,
    /// LayerNorm on the head's input: the pooled vector (linear, mlp) or every token (mapper).
    pub input_layernorm: bool,
    /// Transformer blocks of the mapper (the paper: 2).
    pub mapper_layers: usize,
    /// Attention heads of the mapper (the paper: 8); must divide the mapper width.
    pub mapper_heads: usize,
    /// Model width of the mapper; `None` = `output_dim`.
    pub mapper_width: Option<usize>,
    /// How the mapper pools its tokens.
    pub mapper_pooling: MapperPooling,
    /// How linear and MLP heads pool the tokens they read (mean or learned attention).
    pub token_pooling: TokenPooling,
    /// MLP heads: run the MLP on every token and pool its outputs (a token-wise MLP before
    /// pooling) instead of pooling the tokens first. Attention weights still come from the input
    /// tokens. Only `mlp` accepts it: a linear map commutes with pooling.
    pub token_mlp: bool,
}

/// The wire form, with defaults, checked by [`HeadConfig::validate`] on the way in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeadConfig {
    kind: HeadKind,
    input_dim: usize,
    output_dim: usize,
    #[serde(default = "defaults::layers")]
    layers: usize,
    #[serde(default = "defaults::hidden")]
    hidden: usize,
    #[serde(default)]
    dropout: f64,
    #[serde(default)]
    input_layernorm: bool,
    #[serde(default = "defaults::mapper_layers")]
    mapper_layers: usize,
    #[serde(default = "defaults::mapper_heads")]
    mapper_heads: usize,
    #[serde(default)]
    mapper_width: Option<usize>,
    #[serde(default)]
    mapper_pooling: MapperPooling,
    #[serde(default)]
    token_pooling: TokenPooling,
    #[serde(default)]
    token_mlp: bool,
}

mod defaults {
    pub fn layers() -> usize {
        1
    }
    pub fn hidden() -> usize {
        1024
    }
    pub fn mapper_layers() -> usize {
        2
    }
    pub fn mapper_heads() -> usize {
        8
    }
}

impl TryFrom<RawHeadConfig> for HeadConfig {
    type Error = HeadError;

    fn try_from(r: RawHeadConfig) -> Result<Self, HeadError> {
        let config = HeadConfig {
            kind: r.kind,
            input_dim: r.input_dim,
            output_dim: r.output_dim,
            layers: r.layers,
            hidden: r.hidden,
            dropout: r.dropout,
            input_layernorm: r.input_layernorm,
            mapper_layers: r.mapper_layers,
            mapper_heads: r.mapper_heads,
            mapper_width: r.mapper_width,
            mapper_pooling: r.mapper_pooling,
            token_pooling: r.token_pooling,
            token_mlp: r.token_mlp,
        };
        config.validate()?;
        Ok(config)
    }
}

impl HeadConfig {
    /// A head of `kind` reading width `input_dim` and writing width `output_dim`, with the
    /// defaults of a manifest that names only the kind: one layer, hidden 1024, no dropout, no
    /// input LayerNorm, a 2-block 8-head mapper of width `output_dim` pooling by a learned query.
    pub fn new(kind: HeadKind, input_dim: usize, output_dim: usize) -> Self {
        Self {
            kind,
            input_dim,
            output_dim,
            layers: defaults::layers(),
            hidden: defaults::hidden(),
            dropout: 0.0,
            input_layernorm: false,
            mapper_layers: defaults::mapper_layers(),
            mapper_heads: defaults::mapper_heads(),
            mapper_width: None,
            mapper_pooling: MapperPooling::Query,
            token_pooling: TokenPooling::Mean,
            token_mlp: false,
        }
    }

    /// The mapper's model width (`mapper_width`, else `output_dim`).
    pub fn mapper_width(&self) -> usize {
        self.mapper_width.unwrap_or(self.output_dim)
    }

    /// Checks the values that would otherwise fail (or panic) inside burn: positive sizes, a
    /// dropout probability in `[0, 1)`, mapper heads dividing the mapper width.
    pub fn validate(&self) -> Result<(), HeadError> {
        let positive = [
            ("input_dim", self.input_dim),
            ("output_dim", self.output_dim),
            ("layers", self.layers),
            ("hidden", self.hidden),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(HeadError::config(field, "must be positive"));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(HeadError::config(
                "dropout",
                format!("{} is not in [0, 1)", self.dropout),
            ));
        }
        if self.kind == HeadKind::Mapper && self.token_pooling != TokenPooling::Mean {
            return Err(HeadError::config(
                "token_pooling",
                "applies to linear and mlp heads (the mapper pools by mapper_pooling)",
            ));
        }
        if self.token_mlp && self.kind != HeadKind::Mlp {
            return Err(HeadError::config(
                "token_mlp",
                "applies to mlp heads (a linear map commutes with pooling; the mapper has its own)",
            ));
        }
        if self.kind == HeadKind::Mapper {
            let width = self.mapper_width();
            if self.mapper_layers == 0 {
                return Err(HeadError::config("mapper_layers", "must be positive"));
            }
            if width == 0 {
                return Err(HeadError::config("mapper_width", "must be positive"));
            }
            if self.mapper_heads == 0 || !width.is_multiple_of(self.mapper_heads) {
                return Err(HeadError::config(
                    "mapper_heads",
                    format!(
                        "{} does not divide the mapper width {width}",
                        self.mapper_heads
                    ),
                ));
            }
        }
        Ok(())
    }
}
