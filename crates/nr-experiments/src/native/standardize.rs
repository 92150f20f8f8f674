//! Per-dimension standardisation of head inputs with training statistics.
//!
//! LLM hidden states carry a few huge outlier dimensions shared by every token; left as they are,
//! they dominate the head's input and the conversation-specific variation is a small residue the head
//! can memorise but not generalise from. Subtracting the training mean and dividing by the training
//! standard deviation removes the shared offset. The statistics are saved in the encoder artifact, since
//! every input the head reads later must be transformed the same way.
//!
//! With several layers the statistics are, by default, those of the layers' mean, shared by every
//! layer ([`StandardizeScope::LayerMean`]): the uniform layer mix of standardised inputs is then
//! exactly the standardised layer mean. On the offline QReCC split this beat per-layer statistics
//! by +0.033 Recall@10 (docs/results.md): per-layer scaling blows up each layer's near-constant
//! dimensions, which carry noise once the layers are averaged.

use serde::{Deserialize, Serialize};

use super::inputs::{HeadInputs, TokenRows};

/// Which statistics standardise a head's inputs when it reads several layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandardizeScope {
    /// One mean and deviation per dimension, of the layers' mean, applied to every layer.
    #[default]
    LayerMean,
    /// One mean and deviation per layer and dimension.
    PerLayer,
}

/// Mean and standard deviation of each of the `layers * dim` input features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Statistics over every token of `x`, per layer or of the layers' mean (see [`StandardizeScope`]).
    /// `x` is read twice (mean, then variance), a turn at a time, so it may live on disk.
    pub fn fit<R: TokenRows + ?Sized>(x: &R, scope: StandardizeScope) -> Self {
        let w = x.layers() * x.dim();
        // The statistics' width, and each token's values in it.
        let (width, layers) = match scope {
            StandardizeScope::PerLayer => (w, 1),
            StandardizeScope::LayerMean => (x.dim(), x.layers()),
        };
        let row_values = |row: &[f32], out: &mut [f64]| {
            out.fill(0.0);
            for block in row.chunks(width) {
                out.iter_mut()
                    .zip(block)
                    .for_each(|(o, &v)| *o += v as f64 / layers as f64);
            }
        };
        let each_row = |visit: &mut dyn FnMut(&[f32])| {
            let mut scratch = Vec::new();
            for i in 0..x.len() {
                x.turn(i, &mut scratch).chunks(w).for_each(&mut *visit);
            }
        };
        let (mean, std) = mean_and_std(each_row, width, row_values);
        let repeat = w / width.max(1);
        Self {
            mean: mean.repeat(repeat),
            std: std.repeat(repeat),
        }
    }

    /// Standardises `x` in place.
    pub fn apply(&self, x: &mut HeadInputs) {
        self.apply_tokens(&mut x.data);
    }

    /// Standardises token rows `[tokens, layers, dim]` in place.
    pub fn apply_tokens(&self, data: &mut [f32]) {
        let w = self.mean.len();
        for row in data.chunks_mut(w) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

/// Per-column mean and standard deviation (floored at 1e-6) of `width` values per row, which
/// `values` reads from each row that `each_row` visits; two passes, no copy of the rows.
fn mean_and_std(
    each_row: impl Fn(&mut dyn FnMut(&[f32])),
    width: usize,
    values: impl Fn(&[f32], &mut [f64]),
) -> (Vec<f32>, Vec<f32>) {
    let mut buf = vec![0.0f64; width];
    let mut mean = vec![0.0f64; width];
    let mut n = 0usize;
    each_row(&mut |row| {
        values(row, &mut buf);
        mean.iter_mut().zip(&buf).for_each(|(m, v)| *m += v);
        n += 1;
    });
    let n = n.max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; width];
    each_row(&mut |row| {
        values(row, &mut buf);
        var.iter_mut()
            .zip(&buf)
            .zip(&mean)
            .for_each(|((s, v), m)| *s += (v - m).powi(2));
    });
    let std = var
        .iter()
        .map(|s| (s / n).sqrt().max(1e-6) as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_features_get_zero_mean_and_unit_variance() {
        // 3 tokens, 1 layer, 2 dims: dim 0 = [1, 2, 3] (mean 2, sd sqrt(2/3)), dim 1 constant 100.
        let mut x = HeadInputs {
            layers: 1,
            dim: 2,
            offsets: vec![0, 1, 3],
            data: vec![1., 100., 2., 100., 3., 100.],
        };
        let s = Standardizer::fit(&x, StandardizeScope::PerLayer);
        assert_eq!(
            s,
            Standardizer::fit(&x, StandardizeScope::LayerMean),
            "one layer: both scopes agree"
        );
        assert!((s.mean[0] - 2.0).abs() < 1e-6 && (s.mean[1] - 100.0).abs() < 1e-6);
        assert!((s.std[0] - (2.0f32 / 3.0).sqrt()).abs() < 1e-6);
        s.apply(&mut x);
        let sd = (2.0f32 / 3.0).sqrt();
        assert!(
            (x.data[0] + 1.0 / sd).abs() < 1e-5
                && x.data[2].abs() < 1e-6
                && (x.data[4] - 1.0 / sd).abs() < 1e-5
        );
        // A constant dimension becomes 0, not NaN.
        assert_eq!(x.data[1], 0.0);
    }

    #[test]
    fn layer_mean_scope_standardises_the_mean_of_the_layers() {
        // 2 tokens, 2 layers, 1 dim: layer values (1, 3) and (5, 11); layer means 2 and 8
        // (mean 5, sd 3), so both layers are shifted by 5 and divided by 3.
        let mut x = HeadInputs {
            layers: 2,
            dim: 1,
            offsets: vec![0, 1, 2],
            data: vec![1., 3., 5., 11.],
        };
        let s = Standardizer::fit(&x, StandardizeScope::LayerMean);
        assert_eq!(s.mean, vec![5.0, 5.0]);
        assert_eq!(s.std, vec![3.0, 3.0]);
        s.apply(&mut x);
        let means: Vec<f32> = x.data.chunks(2).map(|r| (r[0] + r[1]) / 2.0).collect();
        assert_eq!(
            means,
            vec![-1.0, 1.0],
            "the uniform mix of the standardised layers is the standardised mean"
        );
        // Per layer: layer 0 holds (1, 5) -> mean 3, sd 2; layer 1 holds (3, 11) -> mean 7, sd 4.
        let p = Standardizer::fit(
            &HeadInputs {
                layers: 2,
                dim: 1,
                offsets: vec![0, 1, 2],
                data: vec![1., 3., 5., 11.],
            },
            StandardizeScope::PerLayer,
        );
        assert_eq!((p.mean, p.std), (vec![3.0, 7.0], vec![2.0, 4.0]));
    }
}
