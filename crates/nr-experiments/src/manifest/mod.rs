//! Experiment manifests: one TOML file describes data, models, head, losses, training, evaluation
//! and output. Every table denies unknown keys, so a typo is an error naming the key and its line.

mod overrides;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub use overrides::apply_override;

/// A whole experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short name, used in reports.
    pub name: String,
    /// Folder for this run's outputs (resolved manifest, heads, run files, metrics, report, logs).
    pub output: PathBuf,
    /// Folder for caches shared between runs (corpus index, hidden states, rewrites).
    #[serde(default = "default_cache")]
    pub cache: PathBuf,
    /// Compute device: flex (default), wgpu, cuda[:N], tch.
    #[serde(default)]
    pub device: Option<String>,
    pub data: DataSpec,
    pub backbone: BackboneSpec,
    pub teacher: TeacherSpec,
    /// Head settings (`kind` = linear | mlp | mapper plus its options); input and output widths come
    /// from the backbone and the teacher.
    pub head: toml::Table,
    #[serde(default)]
    pub losses: LossSpec,
    #[serde(default)]
    pub training: TrainingSpec,
    /// The lexical part of the native head (off unless `enabled`).
    #[serde(default)]
    pub lexicon: LexiconSpec,
    #[serde(default)]
    pub evaluation: EvaluationSpec,
    /// Ablation grid: each key is a manifest path, each value the list of values to try.
    #[serde(default)]
    pub grid: Option<toml::Table>,
}

fn default_cache() -> PathBuf {
    PathBuf::from("runs/cache")
}

/// QReCC files, the passage collection and qrels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub train: PathBuf,
    /// More training turns (e.g. rewrites-only turns without answers: alignment and rank targets only).
    #[serde(default)]
    pub extra_train: Vec<PathBuf>,
    /// Also train on each distinct human rewrite of a training turn with history, read as a
    /// one-turn conversation (target: the teacher's embedding of that same text); see
    /// `nr_data::standalone_rewrite_turns`.
    #[serde(default)]
    pub standalone_rewrites: bool,
    /// Also train on the first sentences of this many passages of the collection, each read as a
    /// one-turn conversation (target: the teacher's embedding of the sentence); passages judged for
    /// dev or test turns are never used. See `nr_data::corpus_sentence_turns`.
    #[serde(default)]
    pub corpus_sentences: usize,
    pub dev: PathBuf,
    pub test: PathBuf,
    pub passages: PathBuf,
    pub qrels_train: PathBuf,
    pub qrels_dev: PathBuf,
    pub qrels_test: PathBuf,
    /// Keep at most this many training turns (first ones in file order); for quick runs.
    #[serde(default)]
    pub max_train_turns: Option<usize>,
    /// Keep at most this many dev / test turns.
    #[serde(default)]
    pub max_eval_turns: Option<usize>,
    /// Keep at most this many passages: every gold passage of the kept turns, then the first others
    /// in file order. For quick runs only: scores are then not comparable to the full collection.
    #[serde(default)]
    pub max_passages: Option<usize>,
}

/// Where the head reads the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenSource {
    /// The conversation prompt (history + question + generation prompt): no query is generated.
    Context,
    /// The tokens of a standalone query the LLM generates first (the paper's mode).
    QueryTokens,
}

/// Which query the head reads on training turns with the `query_tokens` source (dev and test turns
/// always read the LLM's own generated query, as the agent would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryTokensTrain {
    /// The human rewrite, fed after the rewrite prompt (teacher forcing: one prefill per turn).
    HumanRewrite,
    /// The LLM's generated query (a generation per turn; what the head sees at test time).
    Generated,
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
}

/// The frozen LLM and how its hidden states are read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneSpec {
    /// A `.gguf` file or an HF folder.
    pub path: PathBuf,
    #[serde(default = "default_source")]
    pub source: HiddenSource,
    /// Layers to read (0 = embeddings, i = output of layer i, "last" = after the final norm); more
    /// than one are mixed by a learned softmax weighting.
    #[serde(default = "default_layers")]
    pub layers: Vec<LayerRef>,
    #[serde(default = "default_pool")]
    pub pool: Pooling,
    #[serde(default = "default_pool_k")]
    pub pool_k: usize,
    /// System message of the `context` prompt (none by default: the model's template decides).
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Token budget of a conversation prompt; the oldest turns are dropped to fit.
    #[serde(default = "default_max_prompt_tokens")]
    pub max_prompt_tokens: usize,
    /// Instruction (system message) for query rewriting: generate-then-encode and `query_tokens`.
    #[serde(default = "default_rewrite_instruction")]
    pub rewrite_instruction: String,
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// `query_tokens` only: the query read on training turns.
    #[serde(default = "default_query_tokens_train")]
    pub query_tokens_train: QueryTokensTrain,
    /// Prompts per forward pass when extracting and generating.
    #[serde(default = "default_llm_batch")]
    pub batch_size: usize,
}

impl BackboneSpec {
    /// The layer indices to read in a model of `num_layers` layers.
    pub fn resolve_layers(&self, num_layers: usize) -> Result<Vec<usize>> {
        self.layers.iter().map(|l| l.resolve(num_layers)).collect()
    }

    /// The source's name as heads record it.
    pub fn source_name(&self) -> &'static str {
        match self.source {
            HiddenSource::Context => "context",
            HiddenSource::QueryTokens => "query_tokens",
        }
    }
}

/// A layer index or `"last"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerRef {
    Index(usize),
    Name(String),
}

impl LayerRef {
    /// The layer index in a model of `num_layers` layers.
    pub fn resolve(&self, num_layers: usize) -> Result<usize> {
        match self {
            LayerRef::Index(i) if *i <= num_layers => Ok(*i),
            LayerRef::Index(i) => {
                bail!("backbone.layers: layer {i} does not exist (the model has 0..={num_layers})")
            }
            LayerRef::Name(n) if n == "last" => Ok(num_layers),
            LayerRef::Name(n) => {
                bail!("backbone.layers: '{n}' is neither a layer index nor \"last\"")
            }
        }
    }
}

fn default_source() -> HiddenSource {
    HiddenSource::Context
}
fn default_layers() -> Vec<LayerRef> {
    vec![LayerRef::Name("last".into())]
}
fn default_pool() -> Pooling {
    Pooling::Last
}
fn default_pool_k() -> usize {
    4
}
fn default_max_prompt_tokens() -> usize {
    768
}
/// The generate-then-encode prompt of the anchor figures (../shared/notes/toolchain.md).
pub const REWRITE_INSTRUCTION: &str = "Rewrite the user's last question as a standalone search query that can be \
understood without the conversation. Reply with the query only.";
fn default_rewrite_instruction() -> String {
    REWRITE_INSTRUCTION.to_string()
}
fn default_max_new_tokens() -> usize {
    32
}
fn default_query_tokens_train() -> QueryTokensTrain {
    QueryTokensTrain::HumanRewrite
}
fn default_llm_batch() -> usize {
    8
}

/// The frozen teacher encoder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherSpec {
    /// An HF / sentence-transformers folder.
    pub path: PathBuf,
    #[serde(default = "default_teacher_batch")]
    pub batch_size: usize,
}

fn default_teacher_batch() -> usize {
    32
}

/// Which losses, with which weights and temperatures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossSpec {
    /// Loss terms to use: any of "align", "contrastive", "rank".
    pub use_terms: Vec<String>,
    pub align_weight: f32,
    pub contrastive_weight: f32,
    pub rank_weight: f32,
    /// "cosine" (1 - cos) or "mse".
    pub align_kind: String,
    /// InfoNCE temperature.
    pub temperature: f32,
    /// Teacher candidates per turn: hard negatives and rank-distillation targets.
    pub top_k: usize,
    /// Drop negatives whose teacher score is within this margin of the positive's.
    pub false_negative_margin: Option<f32>,
    /// Where a turn has no gold passage, use the teacher's top-1 as the positive.
    pub teacher_top1_as_positive: bool,
    pub rank_temperature_student: f32,
    pub rank_temperature_teacher: f32,
}

impl Default for LossSpec {
    fn default() -> Self {
        Self {
            use_terms: vec!["align".into(), "contrastive".into(), "rank".into()],
            align_weight: 1.0,
            contrastive_weight: 1.0,
            rank_weight: 1.0,
            align_kind: "cosine".into(),
            temperature: 0.05,
            top_k: 32,
            false_negative_margin: None,
            teacher_top1_as_positive: false,
            rank_temperature_student: 0.05,
            rank_temperature_teacher: 0.05,
        }
    }
}

/// Optimiser and schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSpec {
    pub lr: f64,
    pub weight_decay: f32,
    pub batch_size: usize,
    pub epochs: usize,
    /// Fraction of all steps spent warming the learning rate up linearly; cosine decay after.
    pub warmup_ratio: f64,
    /// Gradient clipping by global norm (none when absent).
    pub grad_clip: Option<f32>,
    /// Stop after this many epochs without a better dev MRR@10.
    pub patience: usize,
    pub seed: u64,
    /// Where the head's weights start: `random`, or `ridge` (linear heads: the closed-form
    /// least-squares map onto the teacher's rewrite embeddings, its penalty chosen on dev; the
    /// epochs then fine-tune it, and `epochs = 0` keeps it as is).
    pub init: HeadInit,
    /// Ridge penalties tried for `init = "ridge"` (on standardized inputs).
    pub ridge_lambdas: Vec<f64>,
    /// Statistics of the input standardisation: `layer_mean` (of the mean over the layers, shared
    /// by every layer) or `per_layer`.
    pub standardize: StandardizeScope,
}

/// The lexical part of the native head (`nr_head::Lexicon`): a teacher-space vector per LLM token,
/// learnt from the collection's passages and the training rewrites without labels, summed over the
/// conversation's messages and mixed with the dense head's vector. The message weights and the
/// mix are chosen on dev MRR@10 among the listed candidates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LexiconSpec {
    pub enabled: bool,
    /// `a` of the token weights `a / (a + p(token))`.
    pub sif: f64,
    /// Passes over the fitting texts (0 keeps the teacher's token embeddings as they are).
    pub epochs: usize,
    pub lr: f32,
    pub batch_size: usize,
    /// Tokens read of each fitting text (the teacher truncates long passages too).
    pub max_tokens: usize,
    /// Fit on the collection's passages (never those judged for dev or test turns).
    pub fit_passages: bool,
    /// Fit on at most this many of them (the first in collection order); for the data curve.
    pub max_fit_passages: Option<usize>,
    /// Fit on the training turns' human rewrites.
    pub fit_rewrites: bool,
    /// Candidate weights of earlier user messages, earlier assistant messages, the decay per turn
    /// of age, and the dense head's vector.
    pub user_weights: Vec<f32>,
    pub assistant_weights: Vec<f32>,
    pub decays: Vec<f32>,
    pub dense_weights: Vec<f32>,
}

impl Default for LexiconSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            sif: 1e-3,
            epochs: 20,
            lr: 3e-3,
            batch_size: 256,
            max_tokens: 256,
            fit_passages: true,
            max_fit_passages: None,
            fit_rewrites: true,
            user_weights: vec![0.2, 0.4, 0.7],
            assistant_weights: vec![0.5, 0.7, 1.0],
            decays: vec![0.5, 0.75, 1.0],
            dense_weights: vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
        }
    }
}

impl LexiconSpec {
    /// Every value in range, or a message naming the key (`lexicon.lr: ...`).
    pub fn check(&self) -> std::result::Result<(), String> {
        let positive = [
            ("sif", self.sif),
            ("lr", self.lr as f64),
            ("batch_size", self.batch_size as f64),
            ("max_tokens", self.max_tokens as f64),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("lexicon.{key}: must be a positive number, got {v}"));
            }
        }
        let lists = [
            ("user_weights", &self.user_weights),
            ("assistant_weights", &self.assistant_weights),
            ("decays", &self.decays),
            ("dense_weights", &self.dense_weights),
        ];
        for (key, values) in lists {
            if values.is_empty() {
                return Err(format!("lexicon.{key}: needs at least one candidate"));
            }
            if let Some(v) = values.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(format!(
                    "lexicon.{key}: {v} is not a finite non-negative weight"
                ));
            }
        }
        Ok(())
    }
}

/// Which statistics standardise a head's inputs when it reads several layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandardizeScope {
    /// One mean and deviation per dimension, of the layers' mean, applied to every layer.
    #[default]
    LayerMean,
    /// One mean and deviation per layer and dimension.
    PerLayer,
}

/// How a head's weights are initialised before gradient training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadInit {
    Random,
    Ridge,
}

impl Default for TrainingSpec {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            weight_decay: 0.01,
            batch_size: 64,
            epochs: 10,
            warmup_ratio: 0.1,
            grad_clip: Some(1.0),
            patience: 3,
            seed: 42,
            init: HeadInit::Random,
            ridge_lambdas: vec![10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0],
            standardize: StandardizeScope::LayerMean,
        }
    }
}

/// Metrics, cut-offs and significance settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationSpec {
    /// trec_eval metric names (see `nr eval`).
    pub metrics: Vec<String>,
    /// Depth of the retrieved lists (run files).
    pub depth: usize,
    /// Bootstrap resamples for confidence intervals.
    pub bootstrap: usize,
    /// Permutations of the randomization test.
    pub permutations: usize,
    pub seed: u64,
    /// Add per-source rows (trec / quac / nq).
    pub per_source: bool,
}

impl Default for EvaluationSpec {
    fn default() -> Self {
        Self {
            metrics: ["recall_10", "mrr_10", "ndcg_cut_3", "recall_100"]
                .map(String::from)
                .to_vec(),
            depth: 100,
            bootstrap: 1000,
            permutations: 1000,
            seed: 7,
            per_source: false,
        }
    }
}

impl Manifest {
    /// Reads a manifest and applies `key.path=value` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let manifest: Manifest = if overrides.is_empty() {
            toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!(one_line_toml_error(path, &text, &e)))?
        } else {
            let mut table: toml::Table = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!(one_line_toml_error(path, &text, &e)))?;
            for o in overrides {
                apply_override(&mut table, o).with_context(|| format!("--set {o}"))?;
            }
            Manifest::deserialize(toml::Value::Table(table)).map_err(|e| {
                anyhow::anyhow!("{} (after --set): {}", path.display(), e.message().trim())
            })?
        };
        manifest
            .lexicon
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(manifest)
    }
}

/// `file:line:column: message`, from a TOML error with a span.
fn one_line_toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{}:{line}:{col}: {msg}", path.display())
        }
        None => format!("{}: {msg}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quickstart() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/quickstart.toml")
    }

    #[test]
    fn the_shipped_manifests_enable_the_lexicon_with_valid_settings() {
        let m = Manifest::load(&quickstart(), &[]).unwrap();
        assert!(m.lexicon.enabled);
        assert_eq!(m.lexicon.check(), Ok(()));
    }

    #[test]
    fn an_out_of_range_lexicon_value_is_an_error_naming_file_and_key() {
        for (set, key) in [
            ("lexicon.lr=-0.1", "lexicon.lr"),
            ("lexicon.batch_size=0", "lexicon.batch_size"),
            ("lexicon.dense_weights=[]", "lexicon.dense_weights"),
            ("lexicon.decays=[0.5, -1.0]", "lexicon.decays"),
        ] {
            let err = Manifest::load(&quickstart(), &[set.to_string()])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("quickstart.toml") && err.contains(key),
                "{set}: {err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
