//! The experiment pipeline, stage by stage:
//! load data -> encode the corpus with the teacher -> LLM prompts and hidden states -> generated
//! rewrites (generate-then-encode, `query_tokens`) -> pre-train the native head on unlabelled text
//! (optional) -> train the native encoder -> retrieve ->
//! score -> report. Each stage's output is cached by content hash (see [`cached`]); `--force STAGE`
//! redoes one. [`run`] strings the stages together; [`Experiment`] holds what they share.

pub mod cached;
pub mod dataset;
pub mod evaluate;
pub mod experiment;
pub mod lexicon;
pub mod native_head;
pub mod pretrain;
pub mod report;
pub mod run;
pub mod targets;
pub mod teacher_side;

pub use experiment::{Experiment, RunOptions, Stage, model_hash};
pub use run::run;
