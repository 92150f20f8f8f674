//! Vectors past one machine.
//!
//! - [`Vectors`]: dense vectors with their ids, in memory.
//! - [`parquet`]: vectors as Parquet files (docid + fixed-size list of f32 or f16, the set's
//!   [`VectorMeta`] in the file's key-value metadata) that pyarrow, pandas, DuckDB and LanceDB read
//!   as they are; read back file by file or batch by batch.
//! - [`shards`]: a collection cut into `N` contiguous shards, each written by whoever runs it (a
//!   Slurm array task, a Kubernetes indexed Job), and the check that the set covers every id once.
//! - [`hnsw`]: an approximate index (USearch HNSW) saved to one file and served memory-mapped, for
//!   collections whose vectors do not fit in RAM.
//! - [`binary`]: sign bits scanned flat and re-scored in f16, for collections small enough that a
//!   graph barely beats exact search ([`hamming`] holds the scan). [`AnnIndex`] is either
//!   kind (opened from disk by its sidecar); [`SearchIndex`] puts it beside exact search.
//! - [`synthetic`]: clustered random vectors of any size, to measure an index at scale.

pub mod ann_index;
mod atomic;
pub mod binary;
pub mod error;
pub mod hamming;
pub mod hnsw;
mod index_files;
pub mod meta;
pub mod parquet;
pub mod rescore;
pub mod search_index;
pub mod shards;
pub mod synthetic;
pub mod vectors;

pub use ann_index::{AnnIndex, IndexKind};
pub use binary::{BinaryIndex, BinaryParams};
pub use error::{IndexError, Result};
pub use hnsw::{HnswIndex, HnswParams, HnswStorage};
pub use meta::VectorMeta;
pub use parquet::{VectorDtype, count_rows, parquet_files, read_vectors, write_vectors};
pub use search_index::{IndexSpec, SearchIndex};
pub use shards::{Coverage, Shard, verify_shards};
pub use vectors::Vectors;

/// The README example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
