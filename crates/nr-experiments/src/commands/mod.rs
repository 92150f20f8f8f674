//! One module per subcommand.

pub mod chat;
pub mod data;
pub mod encode;
pub mod eval;
pub mod index;
pub mod inspect;
pub mod make_model;
pub mod run;
pub mod throughput;
pub mod validate;
pub mod vectors;
