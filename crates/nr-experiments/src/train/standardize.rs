//! Per-dimension standardisation of head inputs with training statistics.
//!
//! LLM hidden states carry a few huge outlier dimensions shared by every token; left as they are,
//! they dominate the head's input and the conversation-specific variation is a small residue the head
//! can memorise but not generalise from. Subtracting the training mean and dividing by the training
//! standard deviation (per layer and dimension) removes the shared offset. The statistics are saved
//! beside the head, since every input it reads later must be transformed the same way.

use serde::{Deserialize, Serialize};

use super::examples::HeadInputs;

/// Mean and standard deviation of each of the `layers * dim` input features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Statistics over every token of `x`.
    pub fn fit(x: &HeadInputs) -> Self {
        let w = x.layers * x.dim;
        let n = (x.data.len() / w.max(1)).max(1) as f64;
        let mut mean = vec![0.0f64; w];
        for row in x.data.chunks(w) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; w];
        for row in x.data.chunks(w) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (*v as f64 - m).powi(2);
            }
        }
        let std = var.iter().map(|s| ((s / n).sqrt().max(1e-6)) as f32).collect();
        Self { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    /// Standardises `x` in place.
    pub fn apply(&self, x: &mut HeadInputs) {
        let w = self.mean.len();
        for row in x.data.chunks_mut(w) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_features_get_zero_mean_and_unit_variance() {
        // 3 tokens, 1 layer, 2 dims: dim 0 = [1, 2, 3] (mean 2, sd sqrt(2/3)), dim 1 constant 100.
        let mut x = HeadInputs { layers: 1, dim: 2, offsets: vec![0, 1, 3], data: vec![1., 100., 2., 100., 3., 100.] };
        let s = Standardizer::fit(&x);
        assert!((s.mean[0] - 2.0).abs() < 1e-6 && (s.mean[1] - 100.0).abs() < 1e-6);
        assert!((s.std[0] - (2.0f32 / 3.0).sqrt()).abs() < 1e-6);
        s.apply(&mut x);
        let sd = (2.0f32 / 3.0).sqrt();
        assert!((x.data[0] + 1.0 / sd).abs() < 1e-5 && x.data[2].abs() < 1e-6 && (x.data[4] - 1.0 / sd).abs() < 1e-5);
        // A constant dimension becomes 0, not NaN.
        assert_eq!(x.data[1], 0.0);
    }
}
