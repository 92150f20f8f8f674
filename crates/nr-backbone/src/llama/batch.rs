//! Left-padded batches: token ids, per-row positions and the additive causal + padding mask.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::model::MASKED;

/// Model inputs for one forward pass over a left-padded batch.
#[derive(Debug, Clone)]
pub struct PaddedBatch {
    pub ids: Tensor<2, Int>,
    pub positions: Tensor<2, Int>,
    /// Additive mask `[batch, 1, seq, seq]`.
    pub mask: Tensor<4>,
    /// Padding columns on the left of each row.
    pub pad: Vec<usize>,
    /// Columns of the padded batch.
    pub seq_len: usize,
}

impl PaddedBatch {
    /// Left-pads `seqs` with `pad_id` to the longest row.
    pub fn new(seqs: &[Vec<u32>], pad_id: u32, device: &Device) -> Self {
        let b = seqs.len();
        let s = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * s);
        let mut positions = Vec::with_capacity(b * s);
        let mut mask = Vec::with_capacity(b * s * s);
        let mut pad = Vec::with_capacity(b);
        for seq in seqs {
            let p = s - seq.len();
            pad.push(p);
            ids.extend(std::iter::repeat_n(pad_id as i64, p));
            ids.extend(seq.iter().map(|&t| t as i64));
            positions.extend((0..s).map(|t| t.saturating_sub(p) as i64));
            for i in 0..s {
                // Real queries see real keys up to themselves; padding queries see only themselves,
                // so their rows stay finite (their outputs are never read).
                mask.extend((0..s).map(|j| {
                    if (j >= p && j <= i) || (i < p && j == i) {
                        0.0
                    } else {
                        MASKED
                    }
                }));
            }
        }
        Self {
            ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
            positions: Tensor::from_data(TensorData::new(positions, [b, s]), device),
            mask: Tensor::from_data(TensorData::new(mask, [b, 1, s, s]), device),
            pad,
            seq_len: s,
        }
    }
}

/// Inputs of one generation step: one new token per row, attending to every valid cached key.
pub fn step_inputs(
    tokens: &[u32],
    positions: &[usize],
    key_valid: &[Vec<bool>],
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<4>) {
    let b = tokens.len();
    let k = key_valid.first().map_or(0, Vec::len);
    let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    let pos: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
    let mask: Vec<f32> = key_valid
        .iter()
        .flatten()
        .map(|&ok| if ok { 0.0 } else { MASKED })
        .collect();
    (
        Tensor::from_data(TensorData::new(ids, [b, 1]), device),
        Tensor::from_data(TensorData::new(pos, [b, 1]), device),
        Tensor::from_data(TensorData::new(mask, [b, 1, 1, k]), device),
    )
}
