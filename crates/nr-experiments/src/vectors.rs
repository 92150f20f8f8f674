//! Dense vectors with their ids: the passage index, and the query vectors of every system.

/// Dense vectors `[n, dim]` with their ids (passages) or turn ids (queries).
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    pub ids: Vec<String>,
    pub dim: usize,
    /// Row-major `[n, dim]`.
    pub data: Vec<f32>,
}

impl Vectors {
    /// Vector `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}
