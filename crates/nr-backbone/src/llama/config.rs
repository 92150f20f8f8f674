//! Hyper-parameters of a Llama-family decoder, read from an HF `config.json` or GGUF metadata.

use std::path::Path;

use serde::Deserialize;

use crate::error::{BackboneError, Result};

/// Architecture knobs shared by Llama, SmolLM2, Mistral and Qwen2.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Family name as the file states it (`llama`, `qwen2`, ...).
    pub architecture: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    /// LM head shares the token embedding matrix.
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry a bias (Qwen2).
    pub attention_bias: bool,
}

/// HF architectures this decoder implements, and whether q/k/v have biases by default.
const HF_ARCHITECTURES: &[(&str, bool)] = &[
    ("LlamaForCausalLM", false),
    ("MistralForCausalLM", false),
    ("Qwen2ForCausalLM", true),
];

#[derive(Deserialize)]
struct HfConfig {
    architectures: Option<Vec<String>>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    rope_scaling: Option<serde_json::Value>,
}

impl LlamaConfig {
    /// Reads an HF `config.json`.
    pub fn from_hf_config(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| BackboneError::io(path, e))?;
        let hf: HfConfig = serde_json::from_str(&text)
            .map_err(|e| BackboneError::malformed(path, e.to_string()))?;
        let arch = hf
            .architectures
            .as_ref()
            .and_then(|a| a.first())
            .ok_or_else(|| BackboneError::missing(path, "key 'architectures'"))?;
        let &(_, default_bias) = HF_ARCHITECTURES
            .iter()
            .find(|(name, _)| name == arch)
            .ok_or_else(|| BackboneError::unsupported(path, format!("architectures = {arch}")))?;
        if let Some(scaling) = hf.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            return Err(BackboneError::unsupported(
                path,
                format!("rope_scaling = {scaling}"),
            ));
        }
        let head_dim = hf
            .head_dim
            .unwrap_or(hf.hidden_size / hf.num_attention_heads);
        let config = Self {
            architecture: if arch.starts_with("Qwen2") {
                "qwen2".into()
            } else {
                "llama".into()
            },
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            intermediate_size: hf.intermediate_size,
            num_layers: hf.num_hidden_layers,
            num_heads: hf.num_attention_heads,
            num_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            head_dim,
            rms_norm_eps: hf.rms_norm_eps,
            rope_theta: hf.rope_theta.unwrap_or(10_000.0),
            max_position_embeddings: hf.max_position_embeddings.unwrap_or(4096),
            tie_word_embeddings: hf.tie_word_embeddings.unwrap_or(false),
            attention_bias: hf.attention_bias.unwrap_or(default_bias),
        };
        config.validate(path)?;
        Ok(config)
    }

    /// Checks the head arithmetic that the forward pass relies on.
    pub fn validate(&self, path: &Path) -> Result<()> {
        if self.num_heads == 0
            || self.num_kv_heads == 0
            || !self.num_heads.is_multiple_of(self.num_kv_heads)
        {
            return Err(BackboneError::malformed(
                path,
                format!(
                    "num_heads {} is not a multiple of num_kv_heads {}",
                    self.num_heads, self.num_kv_heads
                ),
            ));
        }
        if !self.head_dim.is_multiple_of(2) || self.head_dim == 0 {
            return Err(BackboneError::malformed(
                path,
                format!("head_dim {} must be even", self.head_dim),
            ));
        }
        Ok(())
    }
}
