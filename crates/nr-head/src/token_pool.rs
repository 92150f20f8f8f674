//! How linear and MLP heads turn the token states of a turn into one vector: the mean, or a learned
//! attention over the tokens.

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Token pooling of linear and MLP heads (the mapper has its own, `mapper_pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenPooling {
    /// Mean over the real tokens.
    #[default]
    Mean,
    /// A learned softmax weighting of the real tokens ([`AttentionPool`]).
    Attention,
}

/// `pool(x) = sum_t softmax_t(w . x_t) x_t` over the real tokens: one learned score vector `w`
/// (H parameters), so a head can weigh the tokens that carry the query (names, the question's
/// content words) above the template's. `w` starts at zero, so a fresh pool is the masked mean and
/// training moves weight from there; a single token passes through unchanged.
#[derive(Module, Debug)]
pub struct AttentionPool {
    /// Score vector `[H]`.
    pub score: Param<Tensor<1>>,
}

impl AttentionPool {
    /// A pool over tokens of width `width`, equal weights at first.
    pub fn new(width: usize, device: &Device) -> Self {
        Self {
            score: Param::from_tensor(Tensor::zeros([width], device)),
        }
    }

    /// The tokens' weights `[batch, tokens]`: a softmax over the real ones, 0 on padding (a row
    /// without real tokens gets all zeros, as [`masked_mean`](crate::masked_mean) gives).
    pub fn weights(&self, x: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [b, t, h] = x.dims();
        let scores = (x * self.score.val().reshape([1, 1, h]))
            .sum_dim(2)
            .reshape([b, t]);
        // Padding gets -1e9 before the softmax (exp underflows to exactly 0 in f32).
        let scores = scores + (mask.clone() - 1.0) * 1e9;
        softmax(scores, 1) * mask
    }

    /// `x [batch, tokens, H]`, `mask [batch, tokens]` (1 = real token) -> `[batch, H]`.
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let weights = self.weights(x.clone(), mask);
        weighted_sum(x, weights)
    }
}

/// `sum_t w[b, t] x[b, t, :]`: `x [batch, tokens, D]` pooled by `weights [batch, tokens]` (those
/// of [`AttentionPool::weights`], which may have scored other vectors of the same tokens).
pub(crate) fn weighted_sum(x: Tensor<3>, weights: Tensor<2>) -> Tensor<2> {
    let [b, t, d] = x.dims();
    (x * weights.reshape([b, t, 1])).sum_dim(1).reshape([b, d])
}
