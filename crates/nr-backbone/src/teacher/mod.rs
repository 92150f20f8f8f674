//! The teacher: a frozen BERT-family sentence encoder whose embedding space the native head learns
//! to land in.
//!
//! [`TeacherEncoder::load`] reads a sentence-transformers folder (all-MiniLM-L6-v2, bge-small,
//! e5-small, ...): `config.json`, `model.safetensors` (f32/f16/bf16, with or without a `bert.`
//! prefix), `tokenizer.json`, and `modules.json` with `1_Pooling/config.json` and `2_Normalize` for
//! pooling and normalisation. Models differ only by these files: pooling mode, normalisation,
//! maximum length and query/passage prompts are configuration ([`TeacherConfig`]), not code.
//!
//! ```no_run
//! # fn main() -> nr_backbone::Result<()> {
//! use nr_backbone::teacher::TeacherEncoder;
//! let device = burn::tensor::Device::default();
//! let teacher = TeacherEncoder::load(std::path::Path::new("models/all-MiniLM-L6-v2"), &device)?;
//! let vectors = teacher.encode_many(&["What is a physician's assistant?"], 32, false)?;
//! assert_eq!(vectors[0].len(), teacher.dim());
//! # Ok(()) }
//! ```

pub mod activation;
pub mod batching;
pub mod config;
pub mod encoder;
pub mod layer;
pub mod model;
pub mod pooling;
pub mod tokenizer;

pub use activation::gelu_exact;
pub use batching::{PaddedBatch, length_buckets};
pub use config::{BertConfig, HiddenAct, TeacherConfig};
pub use encoder::TeacherEncoder;
pub use layer::BertLayer;
pub use model::{BertEmbeddings, BertModel};
pub use pooling::{Pooling, l2_normalize};
pub use tokenizer::TeacherTokenizer;
