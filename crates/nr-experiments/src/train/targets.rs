//! What the head is trained towards: teacher embeddings and teacher rankings of each training turn.

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
