//! The configured loss terms of one batch, from nr-losses.

use anyhow::Result;
use burn::tensor::{Int, Tensor, TensorData};
use nr_losses::{
    ALIGN, CONTRASTIVE, HardNegatives, InfoNce, RANK, TotalLoss, alignment, candidate_scores,
    rank_distill,
};

use super::batch::TargetBatch;
use crate::manifest::{LossSpec, LossTerm};

/// The weighted sum of the manifest's loss terms for student vectors `[B, D]`; `None` when no term
/// applies to the batch (only the contrastive term is used and no turn of it has a gold passage).
pub fn batch_losses(
    student: Tensor<2>,
    y: &TargetBatch,
    spec: &LossSpec,
) -> Result<Option<TotalLoss>> {
    let uses = |t: LossTerm| spec.use_terms.contains(&t);
    let mut parts = Vec::new();
    if uses(LossTerm::Align) {
        parts.push((
            ALIGN,
            spec.align_weight,
            alignment(student.clone(), y.teacher_query.clone(), spec.align_kind)?,
        ));
    }
    if uses(LossTerm::Contrastive)
        && let (Some(positives), Some((vectors, keep))) = (&y.positives, &y.negatives)
    {
        let device = student.device();
        let rows: Vec<i64> = y.positive_rows.iter().map(|&r| r as i64).collect();
        let idx =
            Tensor::<1, Int>::from_data(TensorData::new(rows, [y.positive_rows.len()]), &device);
        let s = student.clone().select(0, idx);
        let loss = InfoNce {
            temperature: spec.temperature,
            in_batch: true,
        }
        .loss(
            s,
            positives.clone(),
            Some(HardNegatives {
                vectors: vectors.clone(),
                keep: keep.clone(),
            }),
        )?;
        parts.push((CONTRASTIVE, spec.contrastive_weight, loss));
    }
    if uses(LossTerm::Rank) {
        let scores = candidate_scores(student, y.candidates.clone())?;
        let loss = rank_distill(
            scores,
            y.teacher_scores.clone(),
            spec.rank_temperature_student,
            spec.rank_temperature_teacher,
        )?;
        parts.push((RANK, spec.rank_weight, loss));
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(TotalLoss::weighted_sum(parts)?))
}
