//! Rotary position embeddings in the HF ("rotate half") layout.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Precomputed cos/sin tables `[max_positions, head_dim]` (each frequency repeated over both halves).
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor<2>,
    sin: Tensor<2>,
    max_positions: usize,
}

impl Rope {
    /// Tables for positions `0..max_positions` with base `theta`.
    pub fn new(head_dim: usize, theta: f64, max_positions: usize, device: &Device) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(max_positions * head_dim);
        let mut sin = Vec::with_capacity(max_positions * head_dim);
        for pos in 0..max_positions {
            for _half in 0..2 {
                for i in 0..half {
                    // Computed in f64 then rounded, like HF's float32 inv_freq * position up to rounding.
                    let inv_freq = 1.0 / theta.powf((2 * i) as f64 / head_dim as f64);
                    let angle = (inv_freq as f32) * (pos as f32);
                    cos.push(angle.cos());
                    sin.push(angle.sin());
                }
            }
        }
        let shape = [max_positions, head_dim];
        Self {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
            max_positions,
        }
    }

    /// Largest position (exclusive) the tables cover.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Rotates `x` `[batch, heads, seq, head_dim]` by the angles of `positions` `[batch, seq]`.
    pub fn apply(&self, x: Tensor<4>, positions: &Tensor<2, Int>) -> Tensor<4> {
        let [b, _, s, d] = x.dims();
        let flat = positions.clone().reshape([b * s]);
        let cos = self.cos.clone().select(0, flat.clone()).reshape([b, 1, s, d]);
        let sin = self.sin.clone().select(0, flat).reshape([b, 1, s, d]);
        let half = d / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * cos + rotated * sin
    }
}
