//! Host arrays of a training batch turned into tensors.

use burn::tensor::{Device, Tensor, TensorData};

use super::targets::TrainTargets;
use crate::vectors::Vectors;

/// Rows of a `[n, dim]` array as a `[rows, dim]` tensor.
pub fn rows_tensor(data: &[f32], dim: usize, rows: &[usize], device: &Device) -> Tensor<2> {
    let mut out = Vec::with_capacity(rows.len() * dim);
    for &r in rows {
        out.extend_from_slice(&data[r * dim..(r + 1) * dim]);
    }
    Tensor::from_data(TensorData::new(out, [rows.len(), dim]), device)
}

/// Targets of one batch as tensors.
pub struct TargetBatch {
    /// Teacher embeddings of the human rewrites `[B, D]`.
    pub teacher_query: Tensor<2>,
    /// Rows that have a positive passage, and its embedding `[P, D]` for those rows.
    pub positive_rows: Vec<usize>,
    pub positives: Option<Tensor<2>>,
    /// Hard negatives of the rows with a positive `[P, K, D]`, with mask `[P, K]` (1 = use).
    pub negatives: Option<(Tensor<3>, Tensor<2>)>,
    /// Teacher candidates `[B, K, D]` and teacher scores `[B, K]`.
    pub candidates: Tensor<3>,
    pub teacher_scores: Tensor<2>,
}

/// Builds the target tensors of `rows`. Hard negatives are the teacher's candidates minus the gold
/// passage; with `margin`, candidates whose teacher score is within `margin` of the positive's are
/// masked as likely false negatives. With `top1_as_positive`, a row without gold takes the
/// teacher's top-1 candidate as its positive.
pub fn target_batch(
    y: &TrainTargets,
    passages: &Vectors,
    rows: &[usize],
    margin: Option<f32>,
    top1_as_positive: bool,
    device: &Device,
) -> TargetBatch {
    let d = passages.dim;
    let k = y.candidates.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let b = rows.len();
    let mut cand = vec![0.0f32; b * k * d];
    let mut tscores = vec![0.0f32; b * k];
    let mut positive_rows = Vec::new();
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    let mut neg_mask = Vec::new();
    for (bi, &r) in rows.iter().enumerate() {
        let list = &y.candidates[r];
        for (ki, &(p, s)) in list.iter().enumerate() {
            cand[(bi * k + ki) * d..(bi * k + ki + 1) * d].copy_from_slice(passages.row(p));
            tscores[bi * k + ki] = s;
        }
        // Short lists (tiny corpora) repeat their last candidate with its score.
        for ki in list.len()..k {
            if let Some(&(p, s)) = list.last() {
                cand[(bi * k + ki) * d..(bi * k + ki + 1) * d].copy_from_slice(passages.row(p));
                tscores[bi * k + ki] = s;
            }
        }
        if let Some(p) = nr_losses::positive_passage(y.positive[r], list, top1_as_positive) {
            positive_rows.push(bi);
            pos.extend_from_slice(passages.row(p));
            let pos_score = list.iter().find(|c| c.0 == p).map(|c| c.1);
            let mut keep = nr_losses::hard_negative_keep(list, p, pos_score, margin);
            keep.resize(k, false);
            for (ki, &kept) in keep.iter().enumerate() {
                let src = list.get(ki).map_or(p, |c| c.0);
                neg.extend_from_slice(passages.row(src));
                neg_mask.push(if kept { 1.0 } else { 0.0 });
            }
        }
    }
    let p = positive_rows.len();
    TargetBatch {
        teacher_query: rows_tensor(&y.teacher_query, y.dim, rows, device),
        positives: (p > 0).then(|| Tensor::from_data(TensorData::new(pos, [p, d]), device)),
        negatives: (p > 0).then(|| {
            (
                Tensor::from_data(TensorData::new(neg, [p, k, d]), device),
                Tensor::from_data(TensorData::new(neg_mask, [p, k]), device),
            )
        }),
        positive_rows,
        candidates: Tensor::from_data(TensorData::new(cand, [b, k, d]), device),
        teacher_scores: Tensor::from_data(TensorData::new(tscores, [b, k]), device),
    }
}
