//! What a teacher folder says about itself.
//!
//! Two layers of configuration live in a sentence-transformers folder:
//! - [`BertConfig`]: the transformer's shape, from the HF `config.json`;
//! - [`TeacherConfig`]: the sentence pipeline around it, from `modules.json`, `1_Pooling/config.json`,
//!   `sentence_bert_config.json` and `config_sentence_transformers.json` (pooling, L2 normalisation,
//!   maximum sequence length, query/passage prompts).
//!
//! MiniLM, bge and e5 folders differ only in these files (mean vs CLS pooling, prompts), so one loader
//! serves them all. Every field is public: a caller may override pooling, normalisation or prompts
//! before building the encoder (for folders that predate `prompts`, e.g. e5's `"query: "`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::pooling::Pooling;
use crate::error::{BackboneError, Result};

/// Activation of the feed-forward block (`hidden_act` in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenAct {
    /// Exact GELU, `x * Φ(x)` with erf (`"gelu"`), as BERT uses.
    Gelu,
    /// tanh approximation of GELU (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    /// `max(0, x)` (`"relu"`).
    Relu,
}

impl HiddenAct {
    fn parse(name: &str, path: &Path) -> Result<Self> {
        match name {
            "gelu" => Ok(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Self::GeluTanh),
            "relu" => Ok(Self::Relu),
            other => Err(BackboneError::unsupported(
                path,
                format!("hidden_act '{other}'"),
            )),
        }
    }
}

/// Shape of a BERT-family encoder, from an HF `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: HiddenAct,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

/// The subset of `config.json` this crate reads; everything else in the file is ignored.
#[derive(Deserialize)]
struct RawBertConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    layer_norm_eps: f64,
    position_embedding_type: Option<String>,
}

fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}

/// Model types whose checkpoints follow BERT's layout (post-LayerNorm, absolute positions).
const BERT_LIKE_MODEL_TYPES: &[&str] = &["bert"];

impl BertConfig {
    /// Reads and checks an HF `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw: RawBertConfig = read_json(path)?;
        if let Some(model_type) = &raw.model_type
            && !BERT_LIKE_MODEL_TYPES.contains(&model_type.as_str())
        {
            return Err(BackboneError::unsupported(
                path,
                format!("model_type '{model_type}' (expected 'bert')"),
            ));
        }
        if let Some(kind) = &raw.position_embedding_type
            && kind != "absolute"
        {
            return Err(BackboneError::unsupported(
                path,
                format!("position_embedding_type '{kind}'"),
            ));
        }
        for (key, value) in [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("num_attention_heads", raw.num_attention_heads),
            ("intermediate_size", raw.intermediate_size),
            ("max_position_embeddings", raw.max_position_embeddings),
            ("type_vocab_size", raw.type_vocab_size),
        ] {
            if value == 0 {
                return Err(BackboneError::malformed(
                    path,
                    format!("'{key}' must be positive"),
                ));
            }
        }
        if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
            return Err(BackboneError::malformed(
                path,
                format!(
                    "'hidden_size' {} is not a multiple of 'num_attention_heads' {}",
                    raw.hidden_size, raw.num_attention_heads
                ),
            ));
        }
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            intermediate_size: raw.intermediate_size,
            hidden_act: HiddenAct::parse(&raw.hidden_act, path)?,
            max_position_embeddings: raw.max_position_embeddings,
            type_vocab_size: raw.type_vocab_size,
            layer_norm_eps: raw.layer_norm_eps,
        })
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// The sentence-embedding pipeline of a teacher folder.
#[derive(Debug, Clone, PartialEq)]
pub struct TeacherConfig {
    /// Folder holding `config.json`, the weights and the tokenizer (the folder itself, or the
    /// Transformer module's sub-folder such as `0_Transformer/` in older exports).
    pub transformer_dir: PathBuf,
    /// The transformer's shape.
    pub bert: BertConfig,
    /// Longest input in tokens (special tokens included); longer inputs are truncated. From
    /// `sentence_bert_config.json`'s `max_seq_length` (256 for MiniLM), which is what
    /// sentence-transformers truncates to, not `max_position_embeddings`.
    pub max_seq_len: usize,
    /// How token states become one vector.
    pub pooling: Pooling,
    /// Whether embeddings are L2-normalised (a `Normalize` module in `modules.json`).
    pub normalize: bool,
    /// Named prompts prepended to texts, e.g. `{"query": "query: ", "passage": "passage: "}` for e5 or
    /// bge's query instruction (`config_sentence_transformers.json`'s `prompts`).
    pub prompts: BTreeMap<String, String>,
    /// The prompt applied when none is named (`default_prompt_name`), usually none.
    pub default_prompt_name: Option<String>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
}

#[derive(Deserialize)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

impl TeacherConfig {
    /// Reads the configuration of a sentence-transformers folder, or of a plain HF BERT folder (then:
    /// mean pooling, no normalisation, the tokenizer's `model_max_length`).
    pub fn from_folder(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(BackboneError::missing(dir, "model folder"));
        }
        let modules_path = dir.join("modules.json");
        let mut transformer_dir = dir.to_path_buf();
        let mut pooling_dir = None;
        let mut normalize = false;
        if modules_path.is_file() {
            let modules: Vec<ModuleEntry> = read_json(&modules_path)?;
            for module in &modules {
                let kind = module.kind.rsplit('.').next().unwrap_or(&module.kind);
                // An empty path means the folder itself (joining "" would add a trailing slash).
                let module_dir = if module.path.is_empty() {
                    dir.to_path_buf()
                } else {
                    dir.join(&module.path)
                };
                match kind {
                    "Transformer" => transformer_dir = module_dir,
                    "Pooling" => pooling_dir = Some(module_dir),
                    "Normalize" => normalize = true,
                    _ => {
                        return Err(BackboneError::unsupported(
                            &modules_path,
                            format!(
                                "module '{}' (only Transformer, Pooling and Normalize)",
                                module.kind
                            ),
                        ));
                    }
                }
            }
        }

        let bert = BertConfig::from_file(&transformer_dir.join("config.json"))?;
        let pooling = match pooling_dir {
            Some(p) => Pooling::from_config_file(&p.join("config.json"), bert.hidden_size)?,
            None => Pooling::Mean,
        };

        let max_seq_len = max_seq_len(dir, &transformer_dir, &bert)?;

        let st_path = dir.join("config_sentence_transformers.json");
        let (prompts, default_prompt_name) = if st_path.is_file() {
            let st: SentenceTransformersConfig = read_json(&st_path)?;
            (st.prompts, st.default_prompt_name)
        } else {
            (BTreeMap::new(), None)
        };
        if let Some(name) = &default_prompt_name
            && !prompts.contains_key(name)
        {
            return Err(BackboneError::malformed(
                &st_path,
                format!("'default_prompt_name' '{name}' is not a key of 'prompts'"),
            ));
        }

        Ok(Self {
            transformer_dir,
            bert,
            max_seq_len,
            pooling,
            normalize,
            prompts,
            default_prompt_name,
        })
    }
}

/// The truncation length sentence-transformers would use, clamped to the position table.
fn max_seq_len(dir: &Path, transformer_dir: &Path, bert: &BertConfig) -> Result<usize> {
    let mut from_files = None;
    for candidate in [
        dir.join("sentence_bert_config.json"),
        transformer_dir.join("sentence_bert_config.json"),
    ] {
        if candidate.is_file() {
            let cfg: SentenceBertConfig = read_json(&candidate)?;
            if cfg.max_seq_length == Some(0) {
                return Err(BackboneError::malformed(
                    &candidate,
                    "'max_seq_length' must be positive",
                ));
            }
            from_files = cfg.max_seq_length;
            break;
        }
    }
    if from_files.is_none() {
        let tok_cfg_path = transformer_dir.join("tokenizer_config.json");
        if tok_cfg_path.is_file() {
            let cfg: TokenizerConfig = read_json(&tok_cfg_path)?;
            // HF writes a huge sentinel (1e30) when the length is unknown; only finite values count.
            from_files = cfg
                .model_max_length
                .filter(|n| (1.0..=1e6).contains(n))
                .map(|n| n as usize);
        }
    }
    let limit = bert.max_position_embeddings;
    let len = from_files.unwrap_or(limit);
    if len > limit {
        tracing::warn!(
            "{}: max_seq_length {len} exceeds max_position_embeddings {limit}; using {limit}",
            dir.display()
        );
    }
    Ok(len.min(limit))
}

/// Reads and parses a JSON file; errors name the file.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| BackboneError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| BackboneError::malformed(path, format!("invalid JSON: {e}")))
}
