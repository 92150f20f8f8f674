//! What the head is trained on: its inputs (LLM hidden states per turn) and its targets (teacher
//! embeddings and teacher rankings), as plain host arrays so every stage can cache them.

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

/// Dense vectors `[n, dim]` with their ids (passages) or turn ids (queries).
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    pub ids: Vec<String>,
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Vectors {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Training targets of `n` turns, aligned with their [`HeadInputs`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTargets {
    /// Teacher embedding of each turn's human rewrite `[n, dim]` (alignment target).
    pub teacher_query: Vec<f32>,
    pub dim: usize,
    /// Index (into the passage vectors) of the gold passage, when the turn has one.
    pub positive: Vec<Option<usize>>,
    /// The teacher's top-K passages for the human rewrite: (passage index, teacher score), best
    /// first. Hard negatives (minus the gold) and rank-distillation targets.
    pub candidates: Vec<Vec<(usize, f32)>>,
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
