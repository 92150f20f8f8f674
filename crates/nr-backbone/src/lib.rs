//! Frozen models of native retrieval.
//!
//! - [`gguf`]: a GGUF v3 reader with de-quantisation, so llama.cpp model files load directly.
//! - [`llama`]: a Llama-family decoder (Llama, SmolLM2, Qwen2) loaded from GGUF or an HF folder; it
//!   renders chat prompts, returns hidden states of any layer and generates with a KV cache.
//! - [`teacher`]: a BERT-family sentence encoder (sentence-transformers folders) whose embedding space
//!   the native head learns to land in.
//! - [`kernels`]: CPU fast paths chosen from the CPU's features (bf16 projections on AVX-512 BF16).
//! - [`synthetic`]: random-weight models in the exact shapes of real ones (GGUF decoder, HF
//!   sentence-transformers folder), for throughput checks where the real files cannot travel.
//!
//! Nothing here is trained: the backbone and the teacher stay frozen.

pub mod error;
pub mod gguf;

pub use error::{BackboneError, Result};
pub mod kernels;
pub mod llama;
pub mod synthetic;
pub mod teacher;
pub mod weights;
