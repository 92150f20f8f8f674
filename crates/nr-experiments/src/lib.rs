//! The experiment framework behind the `nr` command line, as a library. The data flow has one
//! module per step:
//!
//! conversation -> prompt -> hidden states -> head -> vector ([`native`]: the query encoder, with
//! [`train`] fitting its parts) -> search -> metrics ([`retrieval`]), run end to end from a
//! manifest ([`manifest`]) by [`pipeline`], live in a conversation by [`agent`].
//!
//! Past one machine, [`scale`] encodes a collection shard by shard into Parquet and measures an
//! on-disk index against exact search (the vectors, shards and index themselves are `nr-index`).
//!
//! The `nr` binary is a thin clap front end over [`commands`]; benchmarks and other programs reuse
//! the pieces directly (see `benches/`).

pub mod agent;
pub mod atomic_file;
pub mod commands;
pub mod device;
pub mod grid;
pub mod latency;
pub mod manifest;
pub mod native;
pub mod pipeline;
pub mod plot;
pub mod progress;
pub mod retrieval;
pub mod scale;
pub mod throughput;
pub mod train;
pub mod vectors;
