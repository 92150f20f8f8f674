//! What a native head reads of the LLM: the source of the hidden states, the layers, the pooling
//! and the prompt settings. Saved in the encoder artifact, so a head encodes exactly as trained.

use nr_head::{BackboneInfo, HeadMeta, TeacherInfo};
use serde::{Deserialize, Serialize};

/// Where the head reads the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenSource {
    /// The conversation prompt (history + question + generation prompt): no query is generated.
    Context,
    /// The tokens of a standalone query the LLM generates first (the paper's mode).
    QueryTokens,
}

impl HiddenSource {
    /// The name heads record (`context`, `query_tokens`).
    pub fn name(self) -> &'static str {
        match self {
            HiddenSource::Context => "context",
            HiddenSource::QueryTokens => "query_tokens",
        }
    }
}

/// How a source's token vectors become the head's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The last token.
    Last,
    /// Mean of the last `pool_k` tokens (all tokens for `query_tokens`).
    MeanLast,
    /// Every token, for the mapper head.
    Tokens,
    /// `context` only: mean of the current question's tokens and the generation prompt after them,
    /// as the LLM read them in the conversation (the history shapes them, no query is generated).
    Question,
    /// `context` only: the same tokens as `question`, each kept (for heads that pool them by
    /// attention, `head.token_pooling = "attention"`, or the mapper).
    QuestionTokens,
}

impl Pooling {
    /// Whether the tokens read are those of the current question (and the generation prompt).
    pub fn reads_question(self) -> bool {
        matches!(self, Pooling::Question | Pooling::QuestionTokens)
    }
}

/// How the pipeline runs the LLM over a split's prompts (the features are the same either way,
/// within float rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prefill {
    /// Turn after turn with a KV cache: each later turn of a conversation runs only its new tokens
    /// (`context` source; on CPUs batch 1 is as fast per token as batch 8).
    #[default]
    Incremental,
    /// Every prompt whole, in length-sorted batches of `backbone.batch_size` (accelerators).
    Batched,
}

/// Everything that turns a conversation into head inputs, with the layers resolved to indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub source: HiddenSource,
    /// Layer indices read (0 = embeddings, i = output of block i, the number of blocks = the
    /// final normed output), in the order of the head's layer axis.
    pub layers: Vec<usize>,
    pub pool: Pooling,
    pub pool_k: usize,
    /// System message of the conversation prompt (`context`).
    pub system_prompt: Option<String>,
    /// Token budget of a conversation prompt; the oldest turns are dropped to fit.
    pub max_prompt_tokens: usize,
    /// System message of the rewrite prompt (`query_tokens` and generate-then-encode).
    pub rewrite_instruction: String,
    /// Tokens generated at most for a standalone query.
    pub max_new_tokens: usize,
}

impl FeatureSpec {
    /// What a head trained on these features belongs to: the LLM (by name, with its width) and the
    /// teacher (by name, with its dimension).
    pub fn head_meta(
        &self,
        llm_name: &str,
        hidden_size: usize,
        teacher_name: &str,
        teacher_dim: usize,
    ) -> HeadMeta {
        HeadMeta {
            backbone: BackboneInfo {
                name: llm_name.to_string(),
                hidden_size,
                layers: self.layers.clone(),
                source: self.source.name().into(),
            },
            teacher: TeacherInfo {
                name: teacher_name.to_string(),
                dim: teacher_dim,
            },
        }
    }
}

/// The name a head records for a model: its file or folder name.
pub fn model_name(path: &std::path::Path) -> String {
    path.file_name()
        .map_or(String::new(), |f| f.to_string_lossy().to_string())
}
