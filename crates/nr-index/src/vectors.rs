//! Dense vectors with their ids: a passage index, or the query vectors of a system.

use crate::{IndexError, Result};

/// Dense vectors `[n, dim]` with their ids (passages) or turn ids (queries).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vectors {
    pub ids: Vec<String>,
    pub dim: usize,
    /// Row-major `[n, dim]`.
    pub data: Vec<f32>,
}

impl Vectors {
    /// Checks that `data` holds one `dim`-wide row per id.
    pub fn new(ids: Vec<String>, dim: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != ids.len() * dim {
            return Err(IndexError::Invalid(format!(
                "{} values for {} ids of {dim} dimensions",
                data.len(),
                ids.len()
            )));
        }
        Ok(Vectors { ids, dim, data })
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Vector `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Appends `other`'s vectors (same width).
    pub fn extend(&mut self, other: Vectors) -> Result<()> {
        if self.is_empty() && self.dim == 0 {
            *self = other;
            return Ok(());
        }
        if other.dim != self.dim {
            return Err(IndexError::Invalid(format!(
                "cannot append {}-dimensional vectors to {}-dimensional ones",
                other.dim, self.dim
            )));
        }
        self.ids.extend(other.ids);
        self.data.extend(other.data);
        Ok(())
    }
}

/// Checks that `queries` are whole rows of an index's `dim` dimensions.
pub(crate) fn check_query_rows(queries: &[f32], dim: usize) -> Result<()> {
    if dim == 0 || !queries.len().is_multiple_of(dim) {
        return Err(IndexError::Invalid(format!(
            "{} query values are not rows of the index's {dim} dimensions",
            queries.len()
        )));
    }
    Ok(())
}
