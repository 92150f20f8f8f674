//! Alignment: pull the student's vector onto the teacher's embedding of the human rewrite.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{LossError, shape};

/// Smallest vector norm divided by when computing a cosine.
const COS_EPS: f64 = 1e-8;

/// Which distance the alignment loss uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlignmentKind {
    /// `1 - cos(s, t)`.
    #[default]
    Cosine,
    /// Squared Euclidean distance `||s - t||^2` (summed over the dimension, so for unit vectors
    /// it equals `2 (1 - cos)`).
    Mse,
}

/// Alignment loss of `student [B, D]` against `teacher [B, D]` (the teacher's embedding of each
/// turn's human rewrite), averaged over the batch:
///
/// - cosine: `L = (1/B) sum_i (1 - <s_i, t_i> / (max(|s_i|, 1e-8) max(|t_i|, 1e-8)))`
/// - mse:    `L = (1/B) sum_i sum_d (s_id - t_id)^2`
///
/// Both are 0 for identical vectors. Returns a one-element tensor.
pub fn alignment(
    student: Tensor<2>,
    teacher: Tensor<2>,
    kind: AlignmentKind,
) -> Result<Tensor<1>, LossError> {
    let dims = student.dims();
    if dims[0] == 0 || dims[1] == 0 {
        return Err(shape("student", &dims, "[batch >= 1, D >= 1]".into()));
    }
    if teacher.dims() != dims {
        return Err(shape(
            "teacher",
            &teacher.dims(),
            format!("{dims:?} (as student)"),
        ));
    }
    Ok(match kind {
        AlignmentKind::Cosine => (cosine(student, teacher).neg() + 1.0).mean(),
        AlignmentKind::Mse => (student - teacher).square().sum_dim(1).mean(),
    })
}

/// Row-wise cosine `[B, D] x [B, D] -> [B]`.
pub(crate) fn cosine(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let eps2 = COS_EPS * COS_EPS;
    let dot = (a.clone() * b.clone()).sum_dim(1);
    let na = a.square().sum_dim(1).clamp_min(eps2).sqrt();
    let nb = b.square().sum_dim(1).clamp_min(eps2).sqrt();
    (dot / (na * nb)).squeeze_dim(1)
}
