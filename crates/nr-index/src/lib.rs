//! Vectors past one machine.
//!
//! - [`Vectors`]: dense vectors with their ids, in memory.
//! - [`parquet`]: vectors as Parquet files (docid + fixed-size list of f32 or f16, the set's
//!   [`VectorMeta`] in the file's key-value metadata) that pyarrow, pandas, DuckDB and LanceDB read
//!   as they are; read back file by file or batch by batch.
//! - [`shards`]: a collection cut into `N` contiguous shards, each written by whoever runs it (a
//!   Slurm array task, a Kubernetes indexed Job), and the check that the set covers every id once.
//! - [`hnsw`]: an approximate index (USearch HNSW) saved to one file and served memory-mapped, for
//!   collections whose vectors do not fit in RAM; [`SearchIndex`] puts it beside exact search.
//! - [`synthetic`]: clustered random vectors of any size, to measure an index at scale.

mod atomic;
pub mod error;
pub mod hnsw;
pub mod meta;
pub mod parquet;
pub mod rescore;
pub mod search_index;
pub mod shards;
pub mod synthetic;
pub mod vectors;

pub use error::{IndexError, Result};
pub use hnsw::{HnswIndex, HnswParams, HnswStorage};
pub use meta::VectorMeta;
pub use parquet::{VectorDtype, parquet_files, read_vectors, write_vectors};
pub use search_index::{IndexSpec, SearchIndex};
pub use shards::{Coverage, Shard, verify_shards};
pub use vectors::Vectors;

/// The README example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
