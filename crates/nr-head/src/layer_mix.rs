//! A learned softmax-weighted mix of several hidden layers (ELMo-style scalar mix).

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

/// `mix(x) = sum_l softmax(w)_l * x[:, l]` over the layer axis. The logits `w` start at zero, so a
/// fresh mix is the plain mean of the layers and training moves weight to the useful ones.
#[derive(Module, Debug)]
pub struct LayerMix {
    /// Mixing logits `[layers]`.
    pub logits: Param<Tensor<1>>,
}

impl LayerMix {
    /// A mix of `layers` layers with equal weights.
    pub fn new(layers: usize, device: &Device) -> Self {
        Self {
            logits: Param::from_tensor(Tensor::zeros([layers], device)),
        }
    }

    /// The current mixing weights `softmax(w)` `[layers]`.
    pub fn weights(&self) -> Tensor<1> {
        softmax(self.logits.val(), 0)
    }

    /// `[batch, layers, tokens, H]` -> `[batch, tokens, H]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let [b, l, t, h] = x.dims();
        let w = self.weights().reshape([1, l, 1, 1]);
        (x * w).sum_dim(1).reshape([b, t, h])
    }
}
