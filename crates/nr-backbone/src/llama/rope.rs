//! Rotary position embeddings in the HF ("rotate half") layout.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// The rotation angle of frequency `i` (of `head_dim / 2`) at position `pos`: the inverse
/// frequency in f64 then rounded, like HF's float32 `inv_freq * position` up to rounding.
pub(crate) fn angle(i: usize, pos: usize, head_dim: usize, theta: f64) -> f32 {
    let inv_freq = 1.0 / theta.powf((2 * i) as f64 / head_dim as f64);
    (inv_freq as f32) * (pos as f32)
}

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
                    let angle = angle(i, pos, head_dim, theta);
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

    /// The cos/sin of `positions` `[batch, seq]`, gathered once per forward pass for all layers.
    pub fn angles(&self, positions: &Tensor<2, Int>) -> RopeAngles {
        let [b, s] = positions.dims();
        let d = self.cos.dims()[1];
        let flat = positions.clone().reshape([b * s]);
        let cos = self
            .cos
            .clone()
            .select(0, flat.clone())
            .reshape([b, 1, s, d]);
        let sin = self.sin.clone().select(0, flat).reshape([b, 1, s, d]);
        // rotate_half(x) * sin == swap_halves(x) * [-sin_lo, sin_hi]: fold the sign into sin.
        let half = d / 2;
        let signed_sin = Tensor::cat(
            vec![
                sin.clone().narrow(3, 0, half).neg(),
                sin.narrow(3, half, half),
            ],
            3,
        );
        RopeAngles { cos, signed_sin }
    }
}

/// cos and sign-folded sin `[batch, 1, seq, head_dim]` of one batch's positions.
#[derive(Debug, Clone)]
pub struct RopeAngles {
    cos: Tensor<4>,
    signed_sin: Tensor<4>,
}

impl RopeAngles {
    /// cos and sign-folded sin, each `[batch, 1, seq, head_dim]`, for a pass that rotates rows on
    /// the host.
    pub(crate) fn into_parts(self) -> (Tensor<4>, Tensor<4>) {
        (self.cos, self.signed_sin)
    }

    /// Rotates `x` `[batch, heads, seq, head_dim]`: `x * cos + rotate_half(x) * sin`.
    pub fn rotate(&self, x: Tensor<4>) -> Tensor<4> {
        let half = x.dims()[3] / 2;
        let swapped = Tensor::cat(
            vec![
                x.clone().narrow(3, half, half),
                x.clone().narrow(3, 0, half),
            ],
            3,
        );
        x * self.cos.clone() + swapped * self.signed_sin.clone()
    }
}
