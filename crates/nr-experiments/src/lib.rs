//! The experiment framework behind the `nr` command line, as a library: manifests, the pipeline
//! (conversation -> prompt -> hidden states -> head -> vector -> search -> metrics), the head
//! trainer, the agent, and the subcommands themselves.
//!
//! The `nr` binary is a thin clap front end over [`commands`]; benchmarks and other programs reuse
//! the pieces directly (see `benches/`).

pub mod agent;
pub mod commands;
pub mod device;
pub mod grid;
pub mod manifest;
pub mod pipeline;
pub mod plot;
pub mod train;
