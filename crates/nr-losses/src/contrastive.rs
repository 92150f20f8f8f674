//! Contrastive loss (InfoNCE): the student's vector must score its gold passage above in-batch
//! passages and the teacher's hard negatives.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Tensor};

use crate::error::{LossError, positive, shape};

/// Logit given to a masked-out candidate: `exp` of it is exactly 0 next to any real logit, and
/// unlike `-inf` it can never turn a gradient into NaN.
pub const MASKED_LOGIT: f32 = -1.0e9;

/// In-batch columns whose positive has cosine above this with the row's own positive are the same
/// passage (reached by two turns of a batch) and are not used as negatives.
pub const SAME_PASSAGE_COS: f32 = 1.0 - 1e-6;

/// The teacher's hard negatives of each row: candidate vectors `[B, K, D]` and a keep mask
/// `[B, K]` (1 = a negative, 0 = ignore: the gold passage itself, a likely false negative, or
/// padding of a short list). See [`crate::hard_negative_keep`] to build the mask.
#[derive(Debug, Clone)]
pub struct HardNegatives {
    pub vectors: Tensor<3>,
    pub keep: Tensor<2>,
}

/// InfoNCE settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InfoNce {
    /// Temperature `tau` dividing every score.
    pub temperature: f32,
    /// Use the other rows' positives as negatives.
    pub in_batch: bool,
}

impl InfoNce {
    /// InfoNCE of `student [B, D]` against `positives [B, D]` (row `i`'s gold passage) and,
    /// optionally, hard negatives. With scores `z_ij = <s_i, x_j> / tau`:
    ///
    /// `L = (1/B) sum_i ( -z_i+ + log( exp(z_i+) + sum_{n in N_i} exp(z_in) ) )`
    ///
    /// where `N_i` holds the other rows' positives (with `in_batch`, skipping any that is the
    /// same passage as row `i`'s, see [`SAME_PASSAGE_COS`]) and row `i`'s hard negatives whose
    /// keep mask is 1. Scores are dot products: pass unit vectors for cosine scores. A row with
    /// no negative contributes 0. Returns a one-element tensor.
    pub fn loss(
        &self,
        student: Tensor<2>,
        positives: Tensor<2>,
        hard: Option<HardNegatives>,
    ) -> Result<Tensor<1>, LossError> {
        positive("temperature", self.temperature)?;
        let [b, d] = student.dims();
        if b == 0 || d == 0 {
            return Err(shape("student", &[b, d], "[batch >= 1, D >= 1]".into()));
        }
        if positives.dims() != [b, d] {
            return Err(shape(
                "positives",
                &positives.dims(),
                format!("[{b}, {d}] (as student)"),
            ));
        }
        let tau = self.temperature as f64;
        let mut columns = vec![(student.clone() * positives.clone()).sum_dim(1) / tau];
        if self.in_batch {
            let scores = student.clone().matmul(positives.clone().transpose()) / tau;
            columns.push(scores.mask_fill(same_passage(positives), MASKED_LOGIT));
        }
        if let Some(HardNegatives { vectors, keep }) = hard {
            let [hb, k, hd] = vectors.dims();
            if hb != b || hd != d {
                return Err(shape(
                    "hard negative vectors",
                    &[hb, k, hd],
                    format!("[{b}, K, {d}]"),
                ));
            }
            if keep.dims() != [b, k] {
                return Err(shape(
                    "hard negative keep mask",
                    &keep.dims(),
                    format!("[{b}, {k}]"),
                ));
            }
            if k > 0 {
                let scores = vectors.matmul(student.reshape([b, d, 1])).reshape([b, k]) / tau;
                columns.push(scores.mask_fill(keep.lower_equal_elem(0.5), MASKED_LOGIT));
            }
        }
        let logits = Tensor::cat(columns, 1);
        Ok(log_softmax(logits, 1).narrow(1, 0, 1).neg().mean())
    }
}

/// `[B, B]` mask of positive pairs that are the same passage (the diagonal included).
fn same_passage(positives: Tensor<2>) -> Tensor<2, Bool> {
    let p = positives.detach();
    let norm = p.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    let unit = p / norm;
    unit.clone()
        .matmul(unit.transpose())
        .greater_equal_elem(SAME_PASSAGE_COS)
}
