//! GGUF v3 (and v2) model files, read with our own parser so llama.cpp files load directly.
//!
//! - [`GgufFile`] memory-maps a file and parses only its header on open: metadata
//!   ([`GgufValue`]), tensor infos ([`TensorInfo`]) and the aligned data section. Typed getters
//!   (`get_u32`, `get_str`, `get_string_array`, ...) fail with an error naming the key.
//! - [`dequant`] turns tensor data (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
//!   Q6_K) into `f32`; [`GgufFile`] is a [`WeightSource`](crate::weights::WeightSource) that returns
//!   each tensor de-quantised, under its GGUF name, in PyTorch layout (dims reversed).
//! - [`GgufTokenizer`] rebuilds the byte-level BPE tokenizer from `tokenizer.ggml.*`;
//!   [`GgufFile::chat_template`] returns the Jinja chat template.
//! - [`GgufWriter`] writes small GGUF v3 files (tests, fixtures).

mod chat_template;
pub mod dequant;
mod ggml_type;
mod metadata;
pub mod quantize;
mod reader;
mod tokenizer;
mod weight_source;
mod writer;

pub use chat_template::CHAT_TEMPLATE_KEY;
pub use ggml_type::{GgmlType, QK_K};
pub use metadata::{GgufArray, GgufValue, GgufValueType};
pub use reader::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufFile, MAX_DIMS, TensorInfo};
pub use tokenizer::{GgufTokenizer, SpecialTokens, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};
pub use writer::GgufWriter;
