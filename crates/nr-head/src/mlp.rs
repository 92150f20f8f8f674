//! The MLP head's projection: Linear -> GELU -> dropout -> Linear.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Gelu, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Two linear maps with an exact (erf) GELU between them and dropout on the hidden layer.
#[derive(Module, Debug)]
pub struct Mlp {
    pub up: Linear,
    pub activation: Gelu,
    pub dropout: Dropout,
    pub down: Linear,
}

impl Mlp {
    /// `input -> hidden -> output`; `dropout` must be in `[0, 1)` (checked by the config).
    pub fn new(input: usize, hidden: usize, output: usize, dropout: f64, device: &Device) -> Self {
        Self {
            up: LinearConfig::new(input, hidden).init(device),
            activation: Gelu::new(),
            dropout: DropoutConfig::new(dropout).init(),
            down: LinearConfig::new(hidden, output).init(device),
        }
    }

    /// `[.., input]` -> `[.., output]`: a pooled batch `[batch, input]`, or every token
    /// `[batch, tokens, input]` (`token_mlp`).
    pub fn forward<const R: usize>(&self, x: Tensor<R>) -> Tensor<R> {
        let h = self.activation.forward(self.up.forward(x));
        self.down.forward(self.dropout.forward(h))
    }
}
