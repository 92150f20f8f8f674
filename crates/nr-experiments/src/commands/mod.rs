//! One module per subcommand.

pub mod chat;
pub mod data;
pub mod eval;
pub mod inspect;
pub mod make_model;
pub mod run;
pub mod throughput;
pub mod validate;
