//! Projection heads of native retrieval: they read a frozen LLM's hidden states and return a unit
//! vector in a frozen teacher's embedding space.
//!
//! - [`HeadConfig`]: which head (`linear`, `mlp`, `mapper`) and its sizes, from TOML or JSON;
//!   linear and MLP heads pool their tokens by mean or a learned attention ([`AttentionPool`]).
//! - [`Head`]: the burn module; [`Head::forward`] maps `hidden [batch, layers, tokens, H]` and
//!   `mask [batch, tokens]` to L2-normalised `[batch, D]`. Several layers are mixed by a learned
//!   softmax weighting ([`LayerMix`]).
//! - [`Head::save`] / [`Head::load`]: safetensors weights plus a JSON sidecar ([`HeadSidecar`]:
//!   the config and the backbone and teacher it belongs to, [`HeadMeta`]); loading against another
//!   backbone or teacher is an error.
//! - [`Lexicon`]: the lexical part of a native head, a teacher-space vector per LLM token summed
//!   over the conversation's messages; [`mix`] adds it to the dense head's vector.

mod config;
mod error;
mod head;
mod layer_mix;
mod lexicon;
mod mapper;
mod meta;
mod mlp;
mod persist;
mod pooling;
mod token_pool;

pub use config::{HeadConfig, HeadKind, MapperPooling};
pub use error::HeadError;
pub use head::{Head, Projection};
pub use layer_mix::LayerMix;
pub use lexicon::{
    ConversationWeights, LEXICON_FORMAT, LEXICON_VERSION, LexicalMix, Lexicon, LexiconSidecar,
    Speaker, history_weights, lexicon_path, mix, unit,
};
pub use mapper::{Mapper, QueryPooling};
pub use meta::{BackboneInfo, HeadMeta, TeacherInfo};
pub use mlp::Mlp;
pub use persist::{HeadSidecar, SIDECAR_FORMAT, SIDECAR_VERSION, sidecar_path, weights_path};
pub use pooling::{NORM_EPS, l2_normalize, masked_mean};
pub use token_pool::{AttentionPool, TokenPooling};
