//! Native retrieval's query side, in the order the data flows: a [`Conversation`] becomes a
//! prompt ([`prompt`]), the LLM's hidden states of it become [`HeadInputs`] ([`features`], after
//! a generated query for `query_tokens`: [`generate`]), the [`Standardizer`] and the dense head map
//! them into the teacher's space and the lexicon adds its vector of the conversation ([`lexical`]).
//! [`NativeEncoder`] holds all of it, saves and loads as one folder ([`artifact`]), and makes the
//! query vector of one conversation the way the agent does ([`NativeEncoder::query_vector`]).

pub mod artifact;
pub mod conversation;
pub mod encoder;
pub mod features;
pub mod generate;
pub mod inputs;
pub mod lexical;
pub mod prompt;
pub mod spec;
pub mod split_rows;
pub mod standardize;

pub use artifact::{EncoderSidecar, ModelPaths};
pub use conversation::{Conversation, conversations};
pub use encoder::{NativeEncoder, QueryVector, query_vectors_made};
pub use features::Extraction;
pub use generate::first_line;
pub use inputs::{HeadInputs, TokenRows, encode_head, head_batch};
pub use lexical::LexicalInput;
pub use spec::{FeatureSpec, HiddenSource, Pooling, Prefill, model_name};
pub use split_rows::{SplitRows, StoredRows};
pub use standardize::{StandardizeScope, Standardizer};
