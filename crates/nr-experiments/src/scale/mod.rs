//! Past one machine: a collection encoded shard by shard into Parquet ([`encode`]), any job
//! runner spreading the shards, and the measurements of an index against exact search
//! ([`index_bench`]). docs/scale.md shows them at work.

pub mod encode;
pub mod index_bench;
pub mod memory;
