//! Dense vectors with their ids: the passage index, and the query vectors of every system
//! (`nr_index::Vectors`, which also reads and writes them as Parquet).

pub use nr_index::Vectors;
