//! Closed-form initialisation of a linear head: ridge regression from the (standardized, pooled,
//! layer-averaged) hidden states onto the teacher's embedding of each turn's human rewrite.
//!
//! With a few thousand training turns, a gradient-trained head memorises its inputs long before it
//! generalises; the ridge solution is the best linear map under an explicit penalty, found exactly.
//! It has no bias: a shared offset would add the same direction to every query vector and favour
//! passages near the mean of the teacher's space over those that match the question.

use anyhow::{Result, bail};
use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use nr_head::{Head, HeadConfig, HeadKind, Projection};
use rayon::prelude::*;

use super::targets::TrainTargets;
use crate::native::HeadInputs;

/// A dense row-major f64 matrix, just what the normal equations need.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(data.len(), rows * cols, "matrix data of the wrong length");
        Self { rows, cols, data }
    }

    pub fn at(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    /// `self^T other` (`[cols, other.cols]`), rows of the result computed in parallel.
    pub fn t_mul(&self, other: &Matrix) -> Matrix {
        assert_eq!(self.rows, other.rows);
        let (n, p, q) = (self.rows, self.cols, other.cols);
        let mut out = vec![0.0; p * q];
        out.par_chunks_mut(q).enumerate().for_each(|(i, row)| {
            for k in 0..n {
                let a = self.data[k * p + i];
                if a != 0.0 {
                    for (o, b) in row.iter_mut().zip(&other.data[k * q..(k + 1) * q]) {
                        *o += a * b;
                    }
                }
            }
        });
        Matrix::new(p, q, out)
    }
}

/// Solves `g x = b` for a symmetric positive definite `g` by Cholesky factorisation (`g = L L^T`,
/// then two triangular solves per column of `b`); `None` when `g` is not positive definite.
pub fn cholesky_solve(g: &Matrix, b: &Matrix) -> Option<Matrix> {
    let d = g.rows;
    let mut l = vec![0.0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            let v = g.at(i, j) - dot;
            if i == j {
                if v <= 0.0 {
                    return None;
                }
                l[i * d + i] = v.sqrt();
            } else {
                l[i * d + j] = v / l[j * d + j];
            }
        }
    }
    let k = b.cols;
    let mut x = b.data.clone();
    // Forward: L z = b.
    for i in 0..d {
        for c in 0..k {
            let s: f64 = (0..i).map(|j| l[i * d + j] * x[j * k + c]).sum();
            x[i * k + c] = (x[i * k + c] - s) / l[i * d + i];
        }
    }
    // Backward: L^T x = z.
    for i in (0..d).rev() {
        for c in 0..k {
            let s: f64 = (i + 1..d).map(|j| l[j * d + i] * x[j * k + c]).sum();
            x[i * k + c] = (x[i * k + c] - s) / l[i * d + i];
        }
    }
    Some(Matrix::new(d, k, x))
}

/// The head's input for each turn as the linear projection sees it when the layer mix has equal
/// weights: the mean over tokens and layers, then the input LayerNorm (unit gain, zero shift) when
/// the config has one. `[n, dim]`.
pub fn design_matrix(x: &HeadInputs, input_layernorm: bool) -> Matrix {
    let (n, dim) = (x.len(), x.dim);
    let mut rows = vec![0.0f64; n * dim];
    for i in 0..n {
        let turn = x.turn(i);
        let count = (turn.len() / dim) as f64;
        let row = &mut rows[i * dim..(i + 1) * dim];
        for block in turn.chunks(dim) {
            for (r, v) in row.iter_mut().zip(block) {
                *r += *v as f64 / count;
            }
        }
        if input_layernorm {
            let mean = row.iter().sum::<f64>() / dim as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / dim as f64;
            let scale = 1.0 / (var + 1e-5).sqrt();
            row.iter_mut().for_each(|v| *v = (*v - mean) * scale);
        }
    }
    Matrix::new(n, dim, rows)
}

/// Solves `(A^T A + lambda I) W = A^T Y` for each penalty: `W` is `[dim, out]`.
pub fn ridge_solutions(a: &Matrix, y: &Matrix, lambdas: &[f64]) -> Result<Vec<Matrix>> {
    let gram = a.t_mul(a);
    let rhs = a.t_mul(y);
    lambdas
        .iter()
        .map(|&lambda| {
            let mut g = gram.clone();
            for i in 0..g.rows {
                g.data[i * g.cols + i] += lambda;
            }
            match cholesky_solve(&g, &rhs) {
                Some(w) => Ok(w),
                None => bail!("ridge: the system with lambda {lambda} is not positive definite"),
            }
        })
        .collect()
}

/// A linear head of `config` on `device` whose projection is `w` (`[dim, out]`) with a zero bias
/// and whose layer mix is uniform.
pub fn linear_head(config: &HeadConfig, w: &Matrix, device: &Device) -> Result<Head> {
    if config.kind != HeadKind::Linear {
        bail!(
            "training.init = \"ridge\" needs head.kind = \"linear\" (found {:?})",
            config.kind
        );
    }
    let mut head = config.init(device)?;
    let data: Vec<f32> = w.data.iter().map(|&v| v as f32).collect();
    let Projection::Linear(linear) = &mut head.projection else {
        unreachable!("kind checked above")
    };
    linear.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(data, [w.rows, w.cols]),
        device,
    ));
    linear.bias = linear
        .bias
        .take()
        .map(|_| Param::from_tensor(Tensor::zeros([w.cols], device)));
    Ok(head)
}

/// The teacher's rewrite embeddings `[n, out]` (alignment targets) as a matrix.
pub fn target_matrix(y: &TrainTargets) -> Matrix {
    let n = y.teacher_query.len() / y.dim.max(1);
    Matrix::new(
        n,
        y.dim,
        y.teacher_query.iter().map(|&v| v as f64).collect(),
    )
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_an_exact_linear_map_and_shrinks_with_the_penalty() {
        // Y = A W* exactly; with lambda -> 0 the solution is W*, a large lambda shrinks it.
        let a = Matrix::new(4, 2, vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, -1.0]);
        let w_true = Matrix::new(2, 3, vec![1.0, 2.0, 0.0, -1.0, 0.5, 3.0]);
        // y = a w_true, by hand: rows (1,2,0), (-1,0.5,3), (0,2.5,3), (3,3.5,-3).
        let y = Matrix::new(
            4,
            3,
            vec![1.0, 2.0, 0.0, -1.0, 0.5, 3.0, 0.0, 2.5, 3.0, 3.0, 3.5, -3.0],
        );
        let sols = ridge_solutions(&a, &y, &[1e-9, 1e3]).unwrap();
        let max_diff = sols[0]
            .data
            .iter()
            .zip(&w_true.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(max_diff < 1e-6, "{:?}", sols[0]);
        let norm = |m: &Matrix| m.data.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(norm(&sols[1]) < 0.05 * norm(&w_true));
        // Hand check with one feature: w = sum(a y) / (sum(a^2) + lambda) = (1*2 + 2*4) / (1 + 4 + 5) = 1.
        let a1 = Matrix::new(2, 1, vec![1.0, 2.0]);
        let y1 = Matrix::new(2, 1, vec![2.0, 4.0]);
        assert!((ridge_solutions(&a1, &y1, &[5.0]).unwrap()[0].at(0, 0) - 1.0).abs() < 1e-12);
        // A matrix that is not positive definite is refused.
        assert!(
            cholesky_solve(
                &Matrix::new(2, 2, vec![1.0, 2.0, 2.0, 1.0]),
                &Matrix::new(2, 1, vec![1.0, 1.0])
            )
            .is_none()
        );
    }

    #[test]
    fn design_rows_average_tokens_and_layers_then_normalise() {
        // One turn, 2 tokens x 2 layers x dim 2: mean = ((1+3+5+7)/4, (2+4+6+8)/4) = (4, 5).
        let x = HeadInputs {
            layers: 2,
            dim: 2,
            offsets: vec![0, 2],
            data: vec![1., 2., 3., 4., 5., 6., 7., 8.],
        };
        let a = design_matrix(&x, false);
        assert_eq!((a.at(0, 0), a.at(0, 1)), (4.0, 5.0));
        let n = design_matrix(&x, true);
        // LayerNorm of (4, 5): mean 4.5, variance 0.25 -> (-1, 1) up to the epsilon.
        assert!((n.at(0, 0) + 1.0).abs() < 1e-3 && (n.at(0, 1) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn the_linear_head_applies_the_solution() {
        let device = Device::flex();
        let mut config = HeadConfig::new(HeadKind::Linear, 2, 2);
        config.input_layernorm = false;
        let w = Matrix::new(2, 2, vec![2.0, 0.0, 0.0, 1.0]);
        let head = linear_head(&config, &w, &device).unwrap();
        let hidden =
            Tensor::<4>::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 1, 1, 2]), &device);
        let mask = Tensor::<2>::ones([1, 1], &device);
        let out = head
            .forward(hidden, mask)
            .unwrap()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        // (3, 4) W = (6, 4), normalised: (0.832, 0.555).
        let norm = (36.0f32 + 16.0).sqrt();
        assert!(
            (out[0] - 6.0 / norm).abs() < 1e-6 && (out[1] - 4.0 / norm).abs() < 1e-6,
            "{out:?}"
        );
    }
}
