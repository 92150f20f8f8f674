//! Experiment manifests: one TOML file describes data, models, head, losses, training, evaluation
//! and output. Every table denies unknown keys, so a typo is an error naming the key and its line.

mod overrides;
pub mod validate;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nr_head::{HeadConfig, HeadKind, MapperPooling, TokenPooling};
pub use nr_losses::AlignmentKind;
use serde::{Deserialize, Serialize};

pub use overrides::apply_override;

use crate::native::FeatureSpec;
pub use crate::native::{HiddenSource, Pooling, Prefill, StandardizeScope};
pub use nr_backbone::kernels::Precision;

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
    /// Compute device: flex (default), wgpu, cuda[:N], tch, tch-cuda[:N].
    #[serde(default)]
    pub device: Option<String>,
    pub data: DataSpec,
    pub backbone: BackboneSpec,
    pub teacher: TeacherSpec,
    /// Head settings (`kind` = linear | mlp | mapper plus its options); input and output widths come
    /// from the backbone and the teacher.
    pub head: HeadSpec,
    #[serde(default)]
    pub losses: LossSpec,
    #[serde(default)]
    pub training: TrainingSpec,
    /// The lexical part of the native head (off unless `enabled`).
    #[serde(default)]
    pub lexicon: LexiconSpec,
    /// Teacher emulation on unlabelled text before training (off unless `texts > 0`).
    #[serde(default)]
    pub pretrain: PretrainSpec,
    #[serde(default)]
    pub evaluation: EvaluationSpec,
    /// The index the test queries are scored on: `kind = "exact"` (default: every score computed),
    /// `"hnsw"` (with `connectivity`, `expansion_add`, `expansion_search`, `storage`, `rescore`)
    /// or `"binary"` (with `candidates`).
    #[serde(default)]
    pub index: nr_index::IndexSpec,
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
    /// Prompts per forward pass when extracting (batched prefill) and generating.
    #[serde(default = "default_llm_batch")]
    pub batch_size: usize,
    /// `incremental` (each later turn of a conversation runs only its new tokens) or `batched`.
    #[serde(default)]
    pub prefill: Prefill,
    /// The decoder's projections: `auto` (bf16 on a CPU with AVX-512 BF16, else f32), `f32` or
    /// `bf16` (an error where the CPU lacks it).
    #[serde(default)]
    pub precision: Precision,
    /// Keep the training and pre-training inputs (token states, for token-level pooling) in f16
    /// feature stores under `<cache>/features/` and read them a turn at a time, instead of in RAM:
    /// memory then stays bounded whatever the number of texts. Written as extracted, resumable.
    #[serde(default)]
    pub feature_store: bool,
}

impl BackboneSpec {
    /// The layer indices to read in a model of `num_layers` layers.
    pub fn resolve_layers(&self, num_layers: usize) -> Result<Vec<usize>> {
        self.layers.iter().map(|l| l.resolve(num_layers)).collect()
    }

    /// What a native encoder reads of a model of `num_layers` layers with these settings.
    pub fn feature_spec(&self, num_layers: usize) -> Result<FeatureSpec> {
        Ok(FeatureSpec {
            source: self.source,
            layers: self.resolve_layers(num_layers)?,
            pool: self.pool,
            pool_k: self.pool_k,
            system_prompt: self.system_prompt.clone(),
            max_prompt_tokens: self.max_prompt_tokens,
            rewrite_instruction: self.rewrite_instruction.clone(),
            max_new_tokens: self.max_new_tokens,
        })
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

/// The head of a manifest: `nr_head::HeadConfig` without the widths, which come from the models.
/// `kind` is required; the other keys default as `HeadConfig::new` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// `linear`, `mlp` or `mapper`.
    pub kind: HeadKind,
    /// MLP hidden width, or the mapper's feed-forward width. Unused by `linear`.
    #[serde(default = "head_defaults::hidden")]
    pub hidden: usize,
    /// Dropout probability of the MLP and inside the mapper. Unused by `linear`.
    #[serde(default)]
    pub dropout: f64,
    /// LayerNorm on the head's input.
    #[serde(default)]
    pub input_layernorm: bool,
    /// Transformer blocks of the mapper.
    #[serde(default = "head_defaults::mapper_layers")]
    pub mapper_layers: usize,
    /// Attention heads of the mapper; must divide the mapper width.
    #[serde(default = "head_defaults::mapper_heads")]
    pub mapper_heads: usize,
    /// Model width of the mapper (the teacher's dimension when absent).
    #[serde(default)]
    pub mapper_width: Option<usize>,
    #[serde(default)]
    pub mapper_pooling: MapperPooling,
    /// How linear and MLP heads pool the tokens they read: `mean` or `attention`.
    #[serde(default)]
    pub token_pooling: TokenPooling,
    /// MLP heads: the MLP runs on every token before pooling (`token_mlp = true`).
    #[serde(default)]
    pub token_mlp: bool,
}

mod head_defaults {
    use nr_head::{HeadConfig, HeadKind};

    fn config() -> HeadConfig {
        HeadConfig::new(HeadKind::Linear, 1, 1)
    }
    pub fn hidden() -> usize {
        config().hidden
    }
    pub fn mapper_layers() -> usize {
        config().mapper_layers
    }
    pub fn mapper_heads() -> usize {
        config().mapper_heads
    }
}

impl HeadSpec {
    /// The head config for a backbone of width `input_dim` read at `layers` layers and a teacher of
    /// width `output_dim`, validated.
    pub fn config(&self, input_dim: usize, output_dim: usize, layers: usize) -> Result<HeadConfig> {
        let config = HeadConfig {
            kind: self.kind,
            input_dim,
            output_dim,
            layers,
            hidden: self.hidden,
            dropout: self.dropout,
            input_layernorm: self.input_layernorm,
            mapper_layers: self.mapper_layers,
            mapper_heads: self.mapper_heads,
            mapper_width: self.mapper_width,
            mapper_pooling: self.mapper_pooling,
            token_pooling: self.token_pooling,
            token_mlp: self.token_mlp,
        };
        config.validate().map_err(|e| {
            anyhow::anyhow!("head.{}", e.to_string().trim_start_matches("head config: "))
        })?;
        Ok(config)
    }

    /// The checks that do not need the models' widths (the mapper's width is checked against the
    /// teacher once it is loaded).
    pub fn check(&self) -> std::result::Result<(), String> {
        let width = self.mapper_width.unwrap_or(self.mapper_heads.max(1));
        self.config(1, width.max(1), 1)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A loss term of `losses.use_terms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossTerm {
    /// Cosine (or MSE) to the teacher's embedding of the target text.
    Align,
    /// InfoNCE: the gold passage above hard and in-batch negatives.
    Contrastive,
    /// KL to the teacher's ranking of its top-K candidates.
    Rank,
}

/// A trec_eval metric name that nr-eval computes (`recall_10`, `mrr_10`, `ndcg_cut_3`, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct MetricName(String);

impl<'de> Deserialize<'de> for MetricName {
    /// Checked while the value is read, so a TOML error points at the name itself.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = MetricName;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a trec_eval metric name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<MetricName, E> {
                MetricName::try_from(v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_str(Name)
    }
}

impl TryFrom<String> for MetricName {
    type Error = String;

    fn try_from(name: String) -> std::result::Result<Self, String> {
        nr_eval::Metric::parse(&name).map_err(|_| {
            format!("unknown metric `{name}` (recall_K, P_K, ndcg_cut_K, mrr_K, recip_rank, map)")
        })?;
        Ok(MetricName(name))
    }
}

impl From<MetricName> for String {
    fn from(m: MetricName) -> String {
        m.0
    }
}

impl MetricName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How deep the metric reads a ranking (`None`: the whole list, as `map` and `recip_rank`).
    pub fn cutoff(&self) -> Option<usize> {
        use nr_eval::Metric;
        match Metric::parse(&self.0).ok()? {
            Metric::Recall(k) | Metric::Precision(k) | Metric::NdcgCut(k) => Some(k),
            Metric::Mrr(k) if k != usize::MAX => Some(k),
            _ => None,
        }
    }

    /// A short label for tables: `R@10`, `MRR@10`, `NDCG@3`, `P@5`, else the name itself.
    pub fn label(&self) -> String {
        metric_label(&self.0)
    }
}

/// A short label of a trec_eval metric name for tables.
pub fn metric_label(name: &str) -> String {
    for (prefix, short) in [
        ("recall_", "R@"),
        ("mrr_", "MRR@"),
        ("ndcg_cut_", "NDCG@"),
        ("P_", "P@"),
    ] {
        if let Some(k) = name.strip_prefix(prefix) {
            return format!("{short}{k}");
        }
    }
    name.to_string()
}

impl std::fmt::Display for MetricName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The query text whose teacher embedding (alignment) and teacher ranking over the passages
/// (rank distillation, hard negatives) a training turn's targets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetQuery {
    /// The human rewrite (the ideal standalone query).
    #[default]
    Rewrite,
    /// The LLM's own generated query, as generate-then-encode would encode it (the paper's
    /// distillation of generate-then-encode; one generation per training turn, cached).
    Generated,
}

/// Which losses, with which weights and temperatures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossSpec {
    /// The query text the targets come from: `rewrite` or `generated`.
    pub target: TargetQuery,
    /// Loss terms to use: any of "align", "contrastive", "rank".
    pub use_terms: Vec<LossTerm>,
    pub align_weight: f32,
    pub contrastive_weight: f32,
    pub rank_weight: f32,
    /// "cosine" (1 - cos) or "mse".
    pub align_kind: AlignmentKind,
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
            target: TargetQuery::Rewrite,
            use_terms: vec![LossTerm::Align, LossTerm::Contrastive, LossTerm::Rank],
            align_weight: 1.0,
            contrastive_weight: 1.0,
            rank_weight: 1.0,
            align_kind: AlignmentKind::Cosine,
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

/// Teacher emulation from unlabelled text: before the dense head is trained on the QReCC turns, it
/// is pre-trained to map the LLM's states of `texts` windows of the collection's passages (1 to
/// `max_sentences` consecutive sentences, each read as a one-turn conversation; never a passage
/// judged for dev or test) onto the teacher's embedding of the same window. Training then starts
/// from the pre-trained head and keeps it if no epoch beats it on dev. `corpus_texts` windows of
/// plain-text files outside the collection (`corpus`, e.g. Wikipedia text fetched by
/// scripts/fetch-pretrain-text.sh) come after the passage windows. See
/// `nr_data::passage_window_turns` and `nr_data::read_text_corpus`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainSpec {
    /// Windows to pre-train on (0: no pre-training).
    pub texts: usize,
    pub max_sentences: usize,
    /// `ridge` (linear heads: the closed-form map, its penalty among `training.ridge_lambdas`
    /// chosen on dev) or `align` (any head: gradient training with the alignment loss).
    pub method: PretrainMethod,
    /// Settings of the `align` method (batch size, warm-up, decay and seed: `[training]`'s).
    pub epochs: usize,
    pub lr: f64,
    pub patience: usize,
    /// Windows whose hidden states are cached together: a longer pre-training reuses a shorter
    /// one's chunks.
    pub chunk: usize,
    /// Plain-text files (UTF-8, one paragraph per line) whose windows are pre-trained on too.
    pub corpus: Vec<PathBuf>,
    /// Windows of `corpus` to pre-train on, after the `texts` passage windows (0: none).
    pub corpus_texts: usize,
}

/// How [`PretrainSpec`] fits the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PretrainMethod {
    Ridge,
    Align,
}

impl Default for PretrainSpec {
    fn default() -> Self {
        Self {
            texts: 0,
            max_sentences: 3,
            method: PretrainMethod::Ridge,
            epochs: 10,
            lr: 1e-3,
            patience: 3,
            chunk: 5000,
            corpus: Vec::new(),
            corpus_texts: 0,
        }
    }
}

impl PretrainSpec {
    /// Whether the head is pre-trained at all.
    pub fn enabled(&self) -> bool {
        self.texts + self.corpus_texts > 0
    }

    /// Values that parse but make no sense, each naming its key.
    pub fn check(
        &self,
        training: &TrainingSpec,
        head: &HeadSpec,
    ) -> std::result::Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        for (key, v) in [
            ("pretrain.max_sentences", self.max_sentences),
            ("pretrain.chunk", self.chunk),
            ("pretrain.patience", self.patience),
        ] {
            if v == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        let limit = crate::pipeline::pretrain::HELDOUT_NUMBERS as usize;
        if self.texts + self.corpus_texts >= limit {
            return Err(format!(
                "pretrain.texts + pretrain.corpus_texts: {} windows, at most {} pre-train a head",
                self.texts + self.corpus_texts,
                limit - 1
            ));
        }
        if self.corpus_texts > 0 && self.corpus.is_empty() {
            return Err(format!(
                "pretrain.corpus_texts = {}: pretrain.corpus names no text file",
                self.corpus_texts
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "pretrain.lr: must be a positive number, got {}",
                self.lr
            ));
        }
        if training.init != HeadInit::Random {
            return Err(
                "pretrain.texts > 0 with training.init = \"ridge\": the pre-trained head is the \
                 initialisation; set one of them"
                    .into(),
            );
        }
        if self.method == PretrainMethod::Ridge && head.kind != HeadKind::Linear {
            return Err(format!(
                "pretrain.method = \"ridge\" fits linear heads only (head.kind = {:?}); use \"align\"",
                head.kind
            ));
        }
        Ok(())
    }
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
    /// trec_eval metric names (see `nr eval`); the first is the headline metric of reports.
    pub metrics: Vec<MetricName>,
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
                .map(|m| MetricName::try_from(m.to_string()).expect("a known metric"))
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
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(manifest)
    }

    /// The checks of values that parse but make no sense (a zero batch, a negative or NaN rate, a
    /// metric cut deeper than the retrieved lists, ...), each naming its key. Shared by
    /// `nr validate` and `nr run`, before anything is read or computed.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.head.check()?;
        self.lexicon.check()?;
        self.pretrain.check(&self.training, &self.head)?;
        let ridge_fit = if self.pretrain.enabled() {
            self.pretrain.method == PretrainMethod::Ridge
        } else {
            self.training.init == HeadInit::Ridge
        };
        if self.backbone.feature_store && ridge_fit {
            return Err(
                "backbone.feature_store = true with a ridge fit (training.init or \
                        pretrain.method = \"ridge\"): the closed form needs the inputs in memory"
                    .into(),
            );
        }
        let (d, b, l, t, e) = (
            &self.data,
            &self.backbone,
            &self.losses,
            &self.training,
            &self.evaluation,
        );
        let positive_counts = [
            ("data.max_train_turns", d.max_train_turns.unwrap_or(1)),
            ("data.max_eval_turns", d.max_eval_turns.unwrap_or(1)),
            ("data.max_passages", d.max_passages.unwrap_or(1)),
            ("backbone.pool_k", b.pool_k),
            ("backbone.max_prompt_tokens", b.max_prompt_tokens),
            ("backbone.max_new_tokens", b.max_new_tokens),
            ("backbone.batch_size", b.batch_size),
            ("teacher.batch_size", self.teacher.batch_size),
            ("losses.top_k", l.top_k),
            ("training.batch_size", t.batch_size),
            ("training.patience", t.patience),
            ("evaluation.depth", e.depth),
            ("evaluation.bootstrap", e.bootstrap),
            ("evaluation.permutations", e.permutations),
        ];
        for (key, v) in positive_counts {
            if v == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        let positive = [
            ("losses.temperature", l.temperature as f64),
            (
                "losses.rank_temperature_student",
                l.rank_temperature_student as f64,
            ),
            (
                "losses.rank_temperature_teacher",
                l.rank_temperature_teacher as f64,
            ),
            ("training.lr", t.lr),
            ("training.grad_clip", t.grad_clip.unwrap_or(1.0) as f64),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{key}: must be a positive number, got {v}"));
            }
        }
        let non_negative = [
            ("losses.align_weight", l.align_weight as f64),
            ("losses.contrastive_weight", l.contrastive_weight as f64),
            ("losses.rank_weight", l.rank_weight as f64),
            (
                "losses.false_negative_margin",
                l.false_negative_margin.unwrap_or(0.0) as f64,
            ),
            ("training.weight_decay", t.weight_decay as f64),
        ];
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{key}: must be a non-negative number, got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&t.warmup_ratio) {
            return Err(format!(
                "training.warmup_ratio: must be in [0, 1], got {}",
                t.warmup_ratio
            ));
        }
        if b.layers.is_empty() {
            return Err("backbone.layers: needs at least one layer".into());
        }
        if l.use_terms.is_empty() {
            return Err("losses.use_terms: needs at least one loss term".into());
        }
        if t.init == HeadInit::Random && t.epochs == 0 && !self.pretrain.enabled() {
            return Err(
                "training.epochs: 0 trains nothing from a random start (only `init = \"ridge\"` or pre-training may skip training)"
                    .into(),
            );
        }
        if t.init == HeadInit::Ridge {
            if t.ridge_lambdas.is_empty() {
                return Err("training.ridge_lambdas: needs at least one penalty".into());
            }
            if let Some(v) = t
                .ridge_lambdas
                .iter()
                .find(|v| !(v.is_finite() && **v > 0.0))
            {
                return Err(format!(
                    "training.ridge_lambdas: {v} is not a positive penalty"
                ));
            }
        }
        if e.metrics.is_empty() {
            return Err("evaluation.metrics: needs at least one metric".into());
        }
        for m in &e.metrics {
            if let Some(k) = m.cutoff()
                && k > e.depth
            {
                return Err(format!(
                    "evaluation.metrics: {m} reads the top {k} but evaluation.depth retrieves {}",
                    e.depth
                ));
            }
        }
        Ok(())
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

    #[test]
    fn pretraining_settings_that_cannot_work_are_errors_naming_file_and_key() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = Manifest::load(
            &quickstart(),
            &set(&[
                "pretrain.texts=100",
                "training.init=\"random\"",
                "training.epochs=0",
            ]),
        )
        .unwrap();
        assert!(ok.pretrain.enabled());
        assert_eq!(ok.pretrain.method, PretrainMethod::Ridge);
        for (sets, key) in [
            (
                vec!["pretrain.texts=100", "training.init=\"ridge\""],
                "training.init",
            ),
            (
                vec![
                    "pretrain.texts=100",
                    "training.init=\"random\"",
                    "head.kind=\"mlp\"",
                ],
                "pretrain.method",
            ),
            (
                vec![
                    "pretrain.texts=100",
                    "training.init=\"random\"",
                    "pretrain.chunk=0",
                ],
                "pretrain.chunk",
            ),
            (
                vec!["pretrain.corpus_texts=100", "training.init=\"random\""],
                "pretrain.corpus",
            ),
            (
                vec![
                    "pretrain.texts=100",
                    "training.init=\"random\"",
                    "pretrain.lr=-1.0",
                ],
                "pretrain.lr",
            ),
        ] {
            let err = Manifest::load(&quickstart(), &set(&sets))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("quickstart.toml") && err.contains(key),
                "{sets:?}: {err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
        // A ridge fit cannot read its inputs from a feature store.
        let err = Manifest::load(&quickstart(), &set(&["backbone.feature_store=true"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("quickstart.toml") && err.contains("backbone.feature_store"),
            "{err}"
        );
        // Without pre-training, a random start still needs epochs.
        let err = Manifest::load(
            &quickstart(),
            &set(&["training.init=\"random\"", "training.epochs=0"]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("training.epochs"), "{err}");
    }

    /// The quickstart manifest with `from` replaced by `to`, written to a temporary file; the
    /// error of loading it.
    fn load_error(from: &str, to: &str) -> String {
        let text = std::fs::read_to_string(quickstart()).unwrap();
        assert!(text.contains(from), "{from}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        Manifest::load(&path, &[]).unwrap_err().to_string()
    }

    /// `file:line:col` of the first occurrence of `needle` in the quickstart manifest after edit.
    fn position(from: &str, to: &str, needle: &str) -> String {
        let text = std::fs::read_to_string(quickstart())
            .unwrap()
            .replacen(from, to, 1);
        let at = text.find(needle).unwrap();
        let line = text[..at].matches('\n').count() + 1;
        let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("typo.toml:{line}:{col}:")
    }

    #[test]
    fn a_typo_in_any_typed_value_is_an_error_at_its_line_and_column() {
        for (from, to, bad) in [
            // A loss term, a head kind, an alignment kind, a metric name.
            (
                "use_terms = [\"align\", \"contrastive\", \"rank\"]",
                "use_terms = [\"align\", \"contrastiv\", \"rank\"]",
                "\"contrastiv\"",
            ),
            ("kind = \"linear\"", "kind = \"linaer\"", "\"linaer\""),
            (
                "[losses]\n",
                "[losses]\nalign_kind = \"cosin\"\n",
                "\"cosin\"",
            ),
            (
                "[evaluation]\n",
                "[evaluation]\nmetrics = [\"recall_10\", \"mrr10\"]\n",
                "\"mrr10\"",
            ),
            (
                "max_prompt_tokens = 512",
                "max_prompt_tokens = 512\nprecision = \"bf17\"",
                "\"bf17\"",
            ),
        ] {
            let err = load_error(from, to);
            let at = position(from, to, bad);
            assert!(err.contains(&at), "{bad}: expected {at} in: {err}");
            assert!(err.contains(bad.trim_matches('"')), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn a_typo_in_a_key_is_an_error_at_its_line_and_column() {
        for (from, to, bad) in [
            ("kind = \"linear\"", "knd = \"linear\"", "knd"),
            ("[losses]\n", "[losses]\nalign_knd = \"mse\"\n", "align_knd"),
        ] {
            let err = load_error(from, to);
            let at = position(from, to, bad);
            assert!(err.contains(&at) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn typed_values_parse_and_out_of_range_head_values_name_their_key() {
        let m = Manifest::load(&quickstart(), &[]).unwrap();
        assert_eq!(m.head.kind, HeadKind::Linear);
        assert_eq!(m.losses.align_kind, AlignmentKind::Cosine);
        assert_eq!(
            m.losses.use_terms,
            vec![LossTerm::Align, LossTerm::Contrastive, LossTerm::Rank]
        );
        assert_eq!(m.evaluation.metrics[1].label(), "MRR@10");
        assert_eq!(m.backbone.precision, Precision::Auto);
        let err = load_error("kind = \"linear\"", "kind = \"mlp\"\ndropout = 1.5").to_string();
        assert!(
            err.contains("typo.toml") && err.contains("head.dropout"),
            "{err}"
        );
        let err = load_error(
            "use_terms = [\"align\", \"contrastive\", \"rank\"]",
            "use_terms = []",
        );
        assert!(err.contains("losses.use_terms"), "{err}");
    }
}
