//! Head inputs: the LLM's hidden states of each turn as the head reads them, as plain host arrays
//! so every stage can cache them, and the head run over them in batches.

use anyhow::Result;
use burn::tensor::{Device, Tensor, TensorData};
use nr_head::Head;

/// Head inputs of `n` turns: for turn `i`, tokens `offsets[i]..offsets[i+1]`, each a `[layers, dim]`
/// block (several layers when the head mixes them). Pooled sources have one token per turn.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadInputs {
    pub layers: usize,
    pub dim: usize,
    pub offsets: Vec<usize>,
    /// Row-major `[total_tokens, layers, dim]`.
    pub data: Vec<f32>,
}

impl HeadInputs {
    /// Number of turns.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there are no turns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens of turn `i`.
    pub fn tokens(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }

    /// The `[tokens, layers, dim]` block of turn `i`.
    pub fn turn(&self, i: usize) -> &[f32] {
        let w = self.layers * self.dim;
        &self.data[self.offsets[i] * w..self.offsets[i + 1] * w]
    }

    /// The turns of `parts` one after the other (all with the same layers and width).
    pub fn concat(parts: Vec<HeadInputs>) -> HeadInputs {
        let mut parts = parts.into_iter();
        let mut out = parts.next().expect("at least one part");
        for p in parts {
            assert_eq!(
                (p.layers, p.dim),
                (out.layers, out.dim),
                "parts of different widths"
            );
            let base = *out.offsets.last().unwrap();
            out.offsets.extend(p.offsets[1..].iter().map(|o| o + base));
            out.data.extend(p.data);
        }
        out
    }

    /// Inputs of the turns `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> HeadInputs {
        let mut offsets = vec![0];
        let mut data = Vec::new();
        for &r in rows {
            data.extend_from_slice(self.turn(r));
            offsets.push(offsets.last().unwrap() + self.tokens(r));
        }
        HeadInputs {
            layers: self.layers,
            dim: self.dim,
            offsets,
            data,
        }
    }
}

/// Per-turn token states that head batches are cut from: in memory ([`HeadInputs`]) or
/// read from disk ([`nr_data::FeatureStore`], for more tokens than RAM holds).
pub trait TokenRows: Sync {
    /// Layers per token.
    fn layers(&self) -> usize;
    /// Width of one layer's state.
    fn dim(&self) -> usize;
    /// Number of turns.
    fn len(&self) -> usize;
    /// True when there are no turns.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Token count of turn `i`.
    fn tokens(&self, i: usize) -> usize;
    /// Turn `i`'s `[tokens, layers, dim]` states: borrowed where they are held as f32, else
    /// converted into `scratch`.
    fn turn<'a>(&'a self, i: usize, scratch: &'a mut Vec<f32>) -> &'a [f32];
    /// The token count every turn has, if there are turns and they all have the same (pooled
    /// inputs).
    fn common_length(&self) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let first = self.tokens(0);
        (1..self.len())
            .all(|i| self.tokens(i) == first)
            .then_some(first)
    }
}

impl TokenRows for HeadInputs {
    fn layers(&self) -> usize {
        self.layers
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn len(&self) -> usize {
        HeadInputs::len(self)
    }
    fn tokens(&self, i: usize) -> usize {
        HeadInputs::tokens(self, i)
    }
    fn turn<'a>(&'a self, i: usize, _scratch: &'a mut Vec<f32>) -> &'a [f32] {
        HeadInputs::turn(self, i)
    }
}

impl TokenRows for nr_data::FeatureStore {
    fn layers(&self) -> usize {
        nr_data::FeatureStore::layers(self)
    }
    fn dim(&self) -> usize {
        nr_data::FeatureStore::dim(self)
    }
    fn len(&self) -> usize {
        nr_data::FeatureStore::len(self)
    }
    fn tokens(&self, i: usize) -> usize {
        nr_data::FeatureStore::tokens(self, i)
    }
    fn turn<'a>(&'a self, i: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        // A shard that changes under a running reader is not recoverable mid-batch.
        self.read_into(i, scratch).unwrap_or_else(|e| panic!("{e}"));
        scratch
    }
}

/// Head input of `rows`: hidden states `[batch, layers, tokens, dim]` (zero-padded on the right)
/// and the token mask `[batch, tokens]` (1 = real token).
pub fn head_batch<R: TokenRows + ?Sized>(
    x: &R,
    rows: &[usize],
    device: &Device,
) -> (Tensor<4>, Tensor<2>) {
    let (b, l, d) = (rows.len(), x.layers(), x.dim());
    let t = rows.iter().map(|&r| x.tokens(r)).max().unwrap_or(1).max(1);
    let mut data = vec![0.0f32; b * l * t * d];
    let mut mask = vec![0.0f32; b * t];
    let mut scratch = Vec::new();
    for (bi, &r) in rows.iter().enumerate() {
        let block = x.turn(r, &mut scratch); // [tokens, layers, dim]
        for ti in 0..x.tokens(r) {
            mask[bi * t + ti] = 1.0;
            for li in 0..l {
                let src = &block[(ti * l + li) * d..(ti * l + li + 1) * d];
                let dst = ((bi * l + li) * t + ti) * d;
                data[dst..dst + d].copy_from_slice(src);
            }
        }
    }
    (
        Tensor::from_data(TensorData::new(data, [b, l, t, d]), device),
        Tensor::from_data(TensorData::new(mask, [b, t]), device),
    )
}

/// Query vectors of every turn of `x`, `[n, D]`, computed without gradients in batches.
pub fn encode_head<R: TokenRows + ?Sized>(head: &Head, x: &R, device: &Device) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    let rows: Vec<usize> = (0..x.len()).collect();
    for chunk in rows.chunks(256) {
        let (h, mask) = head_batch(x, chunk, device);
        let v = head.forward(h, mask)?;
        out.extend(
            v.into_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenated_parts_keep_every_turn_and_its_tokens() {
        // Part a: turns of 1 and 2 tokens; part b: one turn of 1 token (1 layer, dim 1).
        let a = HeadInputs {
            layers: 1,
            dim: 1,
            offsets: vec![0, 1, 3],
            data: vec![1., 2., 3.],
        };
        let b = HeadInputs {
            layers: 1,
            dim: 1,
            offsets: vec![0, 1],
            data: vec![4.],
        };
        let c = HeadInputs::concat(vec![a.clone(), b]);
        assert_eq!(c.offsets, vec![0, 1, 3, 4]);
        assert_eq!((c.turn(1), c.turn(2)), (&[2., 3.][..], &[4.][..]));
        assert_eq!(HeadInputs::concat(vec![a.clone()]), a);
    }
}
