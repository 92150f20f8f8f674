//! The mapper head's projection: a small pre-LN transformer over the token states (the paper's
//! 2 blocks, 8 heads), then pooling and a linear map.
//!
//! The tokens carry no position embedding: the LLM's hidden states already encode position.

use burn::module::{Module, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};

use crate::config::{HeadConfig, MapperPooling};
use crate::pooling::masked_mean;

/// Standard deviation of the initial pooling query.
const QUERY_INIT_STD: f64 = 0.02;

/// Attention pooling: one learned query attends over the tokens (multi-head, padding masked).
#[derive(Module, Debug)]
pub struct QueryPooling {
    /// The learned query `[width]`.
    pub query: Param<Tensor<1>>,
    pub attention: MultiHeadAttention,
}

/// Input projection -> pre-LN transformer blocks -> final LayerNorm -> pooling -> output projection.
#[derive(Module, Debug)]
pub struct Mapper {
    /// `H -> width`.
    pub input: Linear,
    pub encoder: TransformerEncoder,
    /// The final LayerNorm a pre-LN stack needs on its output.
    pub norm: LayerNorm,
    /// Present when pooling by a learned query; mean pooling otherwise.
    pub query_pooling: Option<QueryPooling>,
    /// `width -> D`.
    pub output: Linear,
}

impl Mapper {
    /// A mapper for a validated `config`.
    pub fn new(config: &HeadConfig, device: &Device) -> Self {
        let width = config.mapper_width();
        let encoder = TransformerEncoderConfig::new(
            width,
            config.hidden,
            config.mapper_heads,
            config.mapper_layers,
        )
        .with_norm_first(true)
        .with_dropout(config.dropout)
        .init(device);
        let query_pooling = (config.mapper_pooling == MapperPooling::Query).then(|| QueryPooling {
            query: Param::from_tensor(Tensor::random(
                [width],
                Distribution::Normal(0.0, QUERY_INIT_STD),
                device,
            )),
            attention: MultiHeadAttentionConfig::new(width, config.mapper_heads)
                .with_dropout(config.dropout)
                .init(device),
        });
        Self {
            input: LinearConfig::new(config.input_dim, width).init(device),
            encoder,
            norm: LayerNormConfig::new(width).init(device),
            query_pooling,
            output: LinearConfig::new(width, config.output_dim).init(device),
        }
    }

    /// `x [batch, tokens, H]`, `mask [batch, tokens]` (1 = real token) -> `[batch, D]`, not
    /// normalised. Padding tokens are never attended to (as keys), so they do not change the result.
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [b, _, _] = x.dims();
        let pad = mask.clone().lower_equal_elem(0.5);
        let h = self.input.forward(x);
        let h = self
            .encoder
            .forward(TransformerEncoderInput::new(h).mask_pad(pad.clone()));
        let h = self.norm.forward(h);
        let pooled = match &self.query_pooling {
            Some(pool) => {
                let [width] = pool.query.val().dims();
                let query = pool
                    .query
                    .val()
                    .reshape([1, 1, width])
                    .expand([b, 1, width]);
                let input = MhaInput::new(query, h.clone(), h).mask_pad(pad);
                pool.attention.forward(input).context.reshape([b, width])
            }
            None => masked_mean(h, mask),
        };
        self.output.forward(pooled)
    }
}
