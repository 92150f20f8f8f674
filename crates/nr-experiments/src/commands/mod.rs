//! One module per subcommand.

pub mod chat;
pub mod data;
pub mod eval;
pub mod inspect;
pub mod run;
pub mod validate;
