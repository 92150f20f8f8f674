//! An approximate index of either kind, built in memory or opened from its files by what its
//! sidecar (`NAME.json`) says it is.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::binary::BinaryIndex;
use crate::hnsw::HnswIndex;
use crate::index_files::{read_sidecar, sidecar_paths};

/// What a saved index is: its sidecar's `kind` (absent in HNSW sidecars written before there
/// were two kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// USearch's HNSW graph ([`HnswIndex`]).
    #[default]
    Hnsw,
    /// Sign codes scanned flat, re-scored in f16 ([`BinaryIndex`]).
    Binary,
}

impl IndexKind {
    /// What the kind's search effort is called.
    pub fn effort_name(&self) -> &'static str {
        match self {
            IndexKind::Hnsw => "expansion_search",
            IndexKind::Binary => "candidates",
        }
    }
}

/// An approximate index, either kind.
pub enum AnnIndex {
    Hnsw(Box<HnswIndex>),
    Binary(Box<BinaryIndex>),
}

#[derive(Deserialize)]
struct KindOnly {
    #[serde(default)]
    kind: IndexKind,
}

impl AnnIndex {
    /// Opens the index at `path`; `mmap`: serve what the kind can from its files.
    pub fn open(path: &Path, mmap: bool) -> Result<Self> {
        let KindOnly { kind } = read_sidecar(&sidecar_paths(path).0)?;
        Ok(match kind {
            IndexKind::Hnsw => AnnIndex::Hnsw(Box::new(HnswIndex::open(path, mmap)?)),
            IndexKind::Binary => AnnIndex::Binary(Box::new(BinaryIndex::open(path, mmap)?)),
        })
    }

    pub fn kind(&self) -> IndexKind {
        match self {
            AnnIndex::Hnsw(_) => IndexKind::Hnsw,
            AnnIndex::Binary(_) => IndexKind::Binary,
        }
    }

    /// Number of indexed vectors.
    pub fn len(&self) -> usize {
        match self {
            AnnIndex::Hnsw(h) => h.len(),
            AnnIndex::Binary(b) => b.len(),
        }
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of the indexed vectors.
    pub fn dim(&self) -> usize {
        match self {
            AnnIndex::Hnsw(h) => h.dim(),
            AnnIndex::Binary(b) => b.dim(),
        }
    }

    /// Id of each row.
    pub fn ids(&self) -> &[String] {
        match self {
            AnnIndex::Hnsw(h) => &h.ids,
            AnnIndex::Binary(b) => &b.ids,
        }
    }

    /// Sets the search effort of later searches: HNSW's ef, or the binary index's re-scored
    /// candidates.
    pub fn set_effort(&mut self, effort: usize) {
        match self {
            AnnIndex::Hnsw(h) => h.set_expansion_search(effort),
            AnnIndex::Binary(b) => b.set_candidates(effort),
        }
    }

    /// The `k` best rows per query (`[n, dim]`) as `(row, score)`, best first.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
        match self {
            AnnIndex::Hnsw(h) => h.search(queries, k),
            AnnIndex::Binary(b) => b.search(queries, k),
        }
    }
}
