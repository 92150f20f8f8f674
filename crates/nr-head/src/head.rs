//! The head module: layer mixing, optional input LayerNorm, the configured projection, L2
//! normalisation.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::config::{HeadConfig, HeadKind};
use crate::error::HeadError;
use crate::layer_mix::LayerMix;
use crate::mapper::Mapper;
use crate::mlp::Mlp;
use crate::pooling::{l2_normalize, masked_mean};
use crate::token_pool::{AttentionPool, TokenPooling, weighted_sum};

/// The projection of one head kind.
// A head holds exactly one projection, so the size gap between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Projection {
    /// Pooled `[batch, H]` -> `[batch, D]`.
    Linear(Linear),
    /// Pooled `[batch, H]` -> hidden -> `[batch, D]`.
    Mlp(Mlp),
    /// Tokens `[batch, tokens, H]` -> `[batch, D]`.
    Mapper(Mapper),
}

/// A projection head: hidden states of one or more LLM layers in, a unit vector in the teacher's
/// space out. Built by [`HeadConfig::init`], saved and loaded with [`Head::save`] / [`Head::load`].
#[derive(Module, Debug)]
pub struct Head {
    /// The settings this head was built from (not a parameter).
    #[module(skip)]
    config: HeadConfig,
    /// Mixes the input layers when the config has `layers > 1`.
    pub mix: Option<LayerMix>,
    /// Attention pooling of the tokens (linear, mlp with `token_pooling = attention`).
    pub token_pool: Option<AttentionPool>,
    /// LayerNorm of the pooled input (linear, mlp) or of every token (mapper).
    pub input_norm: Option<LayerNorm>,
    pub projection: Projection,
}

impl HeadConfig {
    /// A freshly initialised head on `device` (an autodiff device to train it). Call
    /// `device.seed(..)` first for reproducible weights. Fails on an invalid config.
    pub fn init(&self, device: &Device) -> Result<Head, HeadError> {
        self.validate()?;
        let (input, output) = (self.input_dim, self.output_dim);
        let projection = match self.kind {
            HeadKind::Linear => Projection::Linear(LinearConfig::new(input, output).init(device)),
            HeadKind::Mlp => {
                Projection::Mlp(Mlp::new(input, self.hidden, output, self.dropout, device))
            }
            HeadKind::Mapper => Projection::Mapper(Mapper::new(self, device)),
        };
        Ok(Head {
            config: self.clone(),
            mix: (self.layers > 1).then(|| LayerMix::new(self.layers, device)),
            token_pool: (self.token_pooling == TokenPooling::Attention)
                .then(|| AttentionPool::new(input, device)),
            input_norm: self
                .input_layernorm
                .then(|| LayerNormConfig::new(input).init(device)),
            projection,
        })
    }
}

impl Head {
    /// The settings this head was built from.
    pub fn config(&self) -> &HeadConfig {
        &self.config
    }

    /// `hidden [batch, layers, tokens, H]` and `mask [batch, tokens]` (1 = real token, 0 =
    /// padding) -> unit vectors `[batch, D]`.
    ///
    /// `layers` must equal the config's `layers` (1 for a single layer: `hidden.unsqueeze_dim(1)`).
    /// Linear and MLP heads read the masked mean of the tokens, which for single-vector sources
    /// (last token, mean pooled by the caller) is that vector with `tokens = 1`; the mapper attends
    /// over all real tokens. Padding never changes the result.
    pub fn forward(&self, hidden: Tensor<4>, mask: Tensor<2>) -> Result<Tensor<2>, HeadError> {
        let [b, l, t, h] = hidden.dims();
        let c = &self.config;
        if b == 0 || t == 0 || l != c.layers || h != c.input_dim {
            return Err(HeadError::Input {
                tensor: "hidden",
                found: vec![b, l, t, h],
                expected: format!("[batch >= 1, {}, tokens >= 1, {}]", c.layers, c.input_dim),
            });
        }
        if mask.dims() != [b, t] {
            return Err(HeadError::Input {
                tensor: "mask",
                found: mask.dims().to_vec(),
                expected: format!("[{b}, {t}] (batch, tokens of hidden)"),
            });
        }
        let tokens = match &self.mix {
            Some(mix) => mix.forward(hidden),
            None => hidden.reshape([b, t, h]),
        };
        let out = match &self.projection {
            Projection::Mapper(mapper) => {
                let tokens = match &self.input_norm {
                    Some(norm) => norm.forward(tokens),
                    None => tokens,
                };
                mapper.forward(tokens, mask)
            }
            Projection::Linear(linear) => linear.forward(self.pooled(tokens, mask)),
            Projection::Mlp(mlp) if c.token_mlp => self.mlp_then_pooled(mlp, tokens, mask),
            Projection::Mlp(mlp) => mlp.forward(self.pooled(tokens, mask)),
        };
        Ok(l2_normalize(out))
    }

    /// Masked mean (or attention pool) of the tokens, then the input LayerNorm when configured.
    fn pooled(&self, tokens: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let v = match &self.token_pool {
            Some(pool) => pool.forward(tokens, mask),
            None => masked_mean(tokens, mask),
        };
        match &self.input_norm {
            Some(norm) => norm.forward(v),
            None => v,
        }
    }

    /// `token_mlp`: the input LayerNorm and the MLP on every token, then the tokens' mean (or
    /// their attention weights, scored on the input tokens) pools the MLP's outputs.
    fn mlp_then_pooled(&self, mlp: &Mlp, tokens: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let weights = self
            .token_pool
            .as_ref()
            .map(|pool| pool.weights(tokens.clone(), mask.clone()));
        let tokens = match &self.input_norm {
            Some(norm) => norm.forward(tokens),
            None => tokens,
        };
        let out = mlp.forward(tokens);
        match weights {
            Some(w) => weighted_sum(out, w),
            None => masked_mean(out, mask),
        }
    }
}
