//! Grouping tokenised texts into padded batches.
//!
//! A batch costs as much as its longest row times its size, so texts are sorted by length and cut
//! into consecutive runs ("buckets") before padding: rows of one batch then have nearly equal
//! lengths and little compute goes to padding. Results are put back in the caller's order.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::error::{BackboneError, Result};

/// Indices of `lengths` grouped into batches of at most `batch_size`, longest texts first, so that
/// each batch holds texts of similar length. Ties keep their input order. Every index appears in
/// exactly one batch.
pub fn length_buckets(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// Token-id rows right-padded to one length, ready to go to the device.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    /// Row-major `[batch, seq]` ids; padding positions hold `pad_id`.
    pub ids: Vec<i64>,
    /// Real (unpadded) length of each row.
    pub lengths: Vec<usize>,
    /// Length of the longest row: every row is padded to it.
    pub seq: usize,
}

impl PaddedBatch {
    /// Pads `rows` to the longest one with `pad_id`. Rows must be non-empty (a tokenised text always
    /// holds at least `[CLS]` and `[SEP]`).
    pub fn new<R: AsRef<[u32]>>(rows: &[R], pad_id: u32) -> Result<Self> {
        if rows.is_empty() {
            return Err(BackboneError::Input("teacher: empty batch".into()));
        }
        let lengths: Vec<usize> = rows.iter().map(|r| r.as_ref().len()).collect();
        if let Some(i) = lengths.iter().position(|&n| n == 0) {
            return Err(BackboneError::Input(format!(
                "teacher: row {i} of the batch has no tokens"
            )));
        }
        let seq = lengths.iter().copied().max().unwrap_or(0);
        let mut ids = vec![i64::from(pad_id); rows.len() * seq];
        for (row, out) in rows.iter().zip(ids.chunks_mut(seq)) {
            for (dst, &id) in out.iter_mut().zip(row.as_ref()) {
                *dst = i64::from(id);
            }
        }
        Ok(Self { ids, lengths, seq })
    }

    /// Number of rows.
    pub fn batch(&self) -> usize {
        self.lengths.len()
    }

    /// Whether any row is shorter than `seq` (otherwise no mask is needed).
    pub fn is_padded(&self) -> bool {
        self.lengths.iter().any(|&n| n < self.seq)
    }

    /// The ids as an `[batch, seq]` tensor.
    pub fn input_ids(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.ids.clone(), [self.batch(), self.seq]),
            device,
        )
    }

    /// Attention padding mask `[batch, 1, seq, seq]`: true where the key (last axis) is padding.
    /// Laid out in full so the attention kernel reads it without expanding it per layer;
    /// `None` when no row is padded.
    pub fn attention_padding(&self, device: &Device) -> Option<Tensor<4, Bool>> {
        if !self.is_padded() {
            return None;
        }
        let seq = self.seq;
        let mut mask = Vec::with_capacity(self.batch() * seq * seq);
        for &len in &self.lengths {
            let row: Vec<bool> = (0..seq).map(|k| k >= len).collect();
            for _ in 0..seq {
                mask.extend_from_slice(&row);
            }
        }
        Some(Tensor::from_data(
            TensorData::new(mask, [self.batch(), 1, seq, seq]),
            device,
        ))
    }

    /// Token mask `[batch, seq]` for pooling: 1.0 on real tokens, 0.0 on padding.
    pub fn token_mask(&self, device: &Device) -> Tensor<2> {
        let seq = self.seq;
        let mut mask = Vec::with_capacity(self.batch() * seq);
        for &len in &self.lengths {
            mask.extend((0..seq).map(|k| if k < len { 1.0f32 } else { 0.0 }));
        }
        Tensor::from_data(TensorData::new(mask, [self.batch(), seq]), device)
    }
}
