//! A saved index of any kind, opened by what its sidecar (`NAME.json`) says it is.

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

/// A saved index, either kind.
pub enum SavedIndex {
    Hnsw(Box<HnswIndex>),
    Binary(Box<BinaryIndex>),
}

#[derive(Deserialize)]
struct KindOnly {
    #[serde(default)]
    kind: IndexKind,
}

impl SavedIndex {
    /// Opens the index at `path`; `mmap`: serve what the kind can from its files.
    pub fn open(path: &Path, mmap: bool) -> Result<Self> {
        let KindOnly { kind } = read_sidecar(&sidecar_paths(path).0)?;
        Ok(match kind {
            IndexKind::Hnsw => SavedIndex::Hnsw(Box::new(HnswIndex::open(path, mmap)?)),
            IndexKind::Binary => SavedIndex::Binary(Box::new(BinaryIndex::open(path, mmap)?)),
        })
    }

    pub fn kind(&self) -> IndexKind {
        match self {
            SavedIndex::Hnsw(_) => IndexKind::Hnsw,
            SavedIndex::Binary(_) => IndexKind::Binary,
        }
    }

    /// Number of indexed vectors.
    pub fn len(&self) -> usize {
        match self {
            SavedIndex::Hnsw(h) => h.len(),
            SavedIndex::Binary(b) => b.len(),
        }
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of the indexed vectors.
    pub fn dim(&self) -> usize {
        match self {
            SavedIndex::Hnsw(h) => h.dim(),
            SavedIndex::Binary(b) => b.dim(),
        }
    }

    /// Id of each row.
    pub fn ids(&self) -> &[String] {
        match self {
            SavedIndex::Hnsw(h) => &h.ids,
            SavedIndex::Binary(b) => &b.ids,
        }
    }

    /// Sets the search effort of later searches: HNSW's ef, or the binary index's re-scored
    /// candidates.
    pub fn set_effort(&mut self, effort: usize) {
        match self {
            SavedIndex::Hnsw(h) => h.set_expansion_search(effort),
            SavedIndex::Binary(b) => b.set_candidates(effort),
        }
    }

    /// The `k` best rows per query (`[n, dim]`) as `(row, score)`, best first.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
        match self {
            SavedIndex::Hnsw(h) => h.search(queries, k),
            SavedIndex::Binary(b) => b.search(queries, k),
        }
    }
}
