//! The index a search runs on: exact (every score computed; the benchmark's default), HNSW or
//! binary.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::ann_index::AnnIndex;
use crate::binary::{BinaryIndex, BinaryParams};
use crate::hnsw::{HnswIndex, HnswParams};
use crate::{IndexError, Result, Vectors};

/// Which index a search uses (`[index]` of a manifest).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IndexSpec {
    /// Exact maximum inner product (nr-eval's blocked gemm search).
    #[default]
    Exact,
    /// USearch HNSW, built over the passage vectors in memory.
    Hnsw(HnswParams),
    /// Sign bits scanned flat, the nearest re-scored in f16: for small collections.
    Binary(BinaryParams),
}

impl IndexSpec {
    /// `exact`, `hnsw` or `binary`.
    pub fn name(&self) -> &'static str {
        match self {
            IndexSpec::Exact => "exact",
            IndexSpec::Hnsw(_) => "hnsw",
            IndexSpec::Binary(_) => "binary",
        }
    }
}

/// A built index over a set of passage vectors: exact search reads them (borrowed, or owned by
/// a long-lived searcher such as the agent); an approximate index holds its own copy.
pub enum SearchIndex<'a> {
    Exact(Cow<'a, Vectors>),
    Approximate(AnnIndex),
}

impl<'a> SearchIndex<'a> {
    /// Builds what `spec` asks for over `passages` (exact: nothing to build).
    pub fn build(spec: &IndexSpec, passages: Cow<'a, Vectors>) -> Result<Self> {
        Ok(match spec {
            IndexSpec::Exact => SearchIndex::Exact(passages),
            IndexSpec::Hnsw(params) => SearchIndex::Approximate(AnnIndex::Hnsw(Box::new(
                HnswIndex::from_vectors(&passages, params)?,
            ))),
            IndexSpec::Binary(params) => SearchIndex::Approximate(AnnIndex::Binary(Box::new(
                BinaryIndex::from_vectors(&passages, params)?,
            ))),
        })
    }

    /// The `k` best rows per query (`[n, dim]`) as `(row, score)`, best first.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
        match self {
            SearchIndex::Exact(p) => nr_eval::search::exact_search(queries, &p.data, p.dim, k)
                .map_err(|e| IndexError::Invalid(e.to_string())),
            SearchIndex::Approximate(a) => a.search(queries, k),
        }
    }
}
