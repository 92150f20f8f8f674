//! What a set of vectors is, stored with every file of the set so that no reader mixes sets.

use serde::{Deserialize, Serialize};

use crate::shards::Shard;

/// Key of the Parquet key-value metadata (and Arrow schema metadata) that holds a [`VectorMeta`]
/// as JSON: `pq.read_schema(f).metadata[b"native_retrieval"]` in pyarrow.
pub const META_KEY: &str = "native_retrieval";

/// What a set of vectors is and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorMeta {
    /// What the vectors are of: `passages`, `queries` or `synthetic`.
    pub kind: String,
    /// The model that made them (teacher folder name, or a head artifact's folder).
    pub model: String,
    /// SHA-256 of the model's weights (empty when no model made them).
    pub model_sha256: String,
    /// Width of every vector.
    pub dim: usize,
    /// Unit length: inner product is cosine.
    pub normalized: bool,
    /// The texts they encode: a file name and a fingerprint of ids and contents.
    pub source: Option<SourceRef>,
    /// The rows of the source this file holds, for a sharded set.
    pub shard: Option<Shard>,
}

/// The collection a set of vectors encodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// File or folder name as given (for people; the fingerprint is what is compared).
    pub path: String,
    /// Number of texts in it.
    pub rows: usize,
    /// SHA-256 of its ids and texts in order.
    pub fingerprint: String,
}

impl VectorMeta {
    /// The same set: everything but the shard agrees.
    pub fn same_set(&self, other: &VectorMeta) -> bool {
        let strip = |m: &VectorMeta| VectorMeta {
            shard: None,
            ..m.clone()
        };
        strip(self) == strip(other)
    }
}
