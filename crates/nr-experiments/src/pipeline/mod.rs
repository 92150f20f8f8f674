//! The experiment pipeline, stage by stage:
//! load data -> encode the corpus with the teacher -> LLM prompts and hidden states -> generated
//! rewrites (generate-then-encode, `query_tokens`) -> train the head -> retrieve -> score -> report.
//! Each stage's output is cached by content hash (see [`cached`]); `--force STAGE` redoes one.

pub mod cached;
pub mod dataset;
pub mod evaluate;
pub mod llm_features;
pub mod report;
pub mod targets;
pub mod teacher_side;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;
use nr_backbone::llama::Llm;
use nr_backbone::teacher::TeacherEncoder;
use nr_data::{CacheKeyBuilder, TensorCache, file_sha256};

use crate::manifest::{HiddenSource, Manifest};
use crate::train::examples::{HeadInputs, Vectors};
use dataset::{ExperimentData, Split};
use teacher_side::Teacher;

/// Stages that `--force` can redo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Stage {
    Corpus,
    Hidden,
    Rewrites,
    Train,
}

/// Options of one run besides the manifest.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub force: BTreeSet<Stage>,
    /// Continue an interrupted training from its last checkpoint.
    pub resume: bool,
}

/// Everything loaded once per run.
pub struct Experiment {
    pub manifest: Manifest,
    pub device: Device,
    pub cache: TensorCache,
    pub data: ExperimentData,
    pub llm: Llm,
    pub llm_hash: String,
    pub teacher: Teacher,
    pub layers: Vec<usize>,
}

/// Hash of a model: the file itself, or the weights of an HF folder.
fn model_hash(path: &Path) -> Result<String> {
    let file = if path.is_dir() {
        let single = path.join("model.safetensors");
        if single.is_file() { single } else { path.join("model.safetensors.index.json") }
    } else {
        path.to_path_buf()
    };
    Ok(file_sha256(&file)?)
}

impl Experiment {
    pub fn load(manifest: Manifest) -> Result<Self> {
        let device = crate::device::parse_device(manifest.device.as_deref())?;
        let start = Instant::now();
        let data = ExperimentData::load(&manifest.data)?;
        tracing::info!(
            "data: {} train, {} dev, {} test turns, {} passages",
            data.train.turns.len(),
            data.dev.turns.len(),
            data.test.turns.len(),
            data.passages.len()
        );
        let llm = Llm::load(&manifest.backbone.path, &device)?;
        let llm_hash = model_hash(&manifest.backbone.path)?;
        let encoder = TeacherEncoder::load(&manifest.teacher.path, &device)?;
        let teacher = Teacher {
            encoder,
            weights_hash: model_hash(&manifest.teacher.path)?,
            batch_size: manifest.teacher.batch_size,
        };
        let layers = manifest
            .backbone
            .layers
            .iter()
            .map(|l| l.resolve(llm.num_layers()))
            .collect::<Result<Vec<_>>>()?;
        tracing::info!("models loaded in {:.1}s", start.elapsed().as_secs_f64());
        let cache = TensorCache::new(&manifest.cache);
        Ok(Self { manifest, device, cache, data, llm, llm_hash, teacher, layers })
    }

    fn llm_key(&self, kind: &str) -> CacheKeyBuilder {
        CacheKeyBuilder::new(kind).model_hash(&self.llm_hash)
    }

    /// Conversation prompts of a split (context source and the native agent).
    pub fn conversation_prompts(&self, split: &Split) -> Result<Vec<Vec<u32>>> {
        let b = &self.manifest.backbone;
        llm_features::conversation_prompts(&self.llm, &split.turns, b.system_prompt.as_deref(), b.max_prompt_tokens)
    }

    /// Rewrite prompts of a split (generate-then-encode and `query_tokens`).
    pub fn rewrite_prompts(&self, split: &Split) -> Result<Vec<Vec<u32>>> {
        let b = &self.manifest.backbone;
        llm_features::conversation_prompts(&self.llm, &split.turns, Some(&b.rewrite_instruction), b.max_prompt_tokens)
    }

    /// Head inputs of a split's turns from the configured source, cached.
    pub fn head_inputs(&self, split: &Split, opts: &RunOptions) -> Result<HeadInputs> {
        let b = &self.manifest.backbone;
        match b.source {
            HiddenSource::Context => {
                let prompts = self.conversation_prompts(split)?;
                let key = self
                    .llm_key("llm-context-features")
                    .inputs(prompts.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().iter().map(String::as_str))
                    .setting("layers", format!("{:?}", self.layers))
                    .setting("pool", format!("{:?}", b.pool))
                    .setting("pool_k", b.pool_k)
                    .finish();
                cached::head_inputs(&self.cache, &key, opts.force.contains(&Stage::Hidden), || {
                    tracing::info!("{}: hidden states of {} prompts", split.name, prompts.len());
                    llm_features::context_features(&self.llm, &prompts, &self.layers, b.pool, b.pool_k, b.batch_size, true)
                })
            }
            HiddenSource::QueryTokens => Ok(self.rewrites(split, opts)?.1),
        }
    }

    /// Generated standalone queries of a split with the features of their tokens, cached (the
    /// texts in a JSON file beside the tensors).
    pub fn rewrites(&self, split: &Split, opts: &RunOptions) -> Result<(Vec<String>, HeadInputs)> {
        let b = &self.manifest.backbone;
        let prompts = self.rewrite_prompts(split)?;
        // The head reads generated tokens only for `query_tokens`; otherwise only the texts matter,
        // so a fixed reading (final layer, last token) keeps one cache entry for every head setting.
        let (layers, pool) = match b.source {
            HiddenSource::QueryTokens => (self.layers.clone(), b.pool),
            HiddenSource::Context => (vec![self.llm.num_layers()], crate::manifest::Pooling::Last),
        };
        let key = self
            .llm_key("llm-rewrites")
            .inputs(prompts.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().iter().map(String::as_str))
            .setting("layers", format!("{layers:?}"))
            .setting("pool", format!("{pool:?}"))
            .setting("max_new_tokens", b.max_new_tokens)
            .finish();
        let texts_path = self.manifest.cache.join(format!("{key}.rewrites.json"));
        let force = opts.force.contains(&Stage::Rewrites);
        if !force {
            if let (Ok(text), Ok(nr_data::CacheLookup::Hit(_))) = (std::fs::read_to_string(&texts_path), self.cache.load(&key)) {
                if let Ok(queries) = serde_json::from_str::<Vec<String>>(&text) {
                    if queries.len() == prompts.len() {
                        let features = cached::head_inputs(&self.cache, &key, false, || unreachable!("checked above"))?;
                        return Ok((queries, features));
                    }
                }
            }
        }
        tracing::info!("{}: generating {} rewrites", split.name, prompts.len());
        let out = llm_features::generate_rewrites(&self.llm, &prompts, &layers, pool, b.max_new_tokens, b.batch_size, true)?;
        cached::write_atomic(&texts_path, serde_json::to_string(&out.queries)?.as_bytes())?;
        let features = cached::head_inputs(&self.cache, &key, true, || Ok(out.features.clone()))?;
        Ok((out.queries, features))
    }
}

/// Runs a manifest end to end and returns the path of its report.
pub fn run(manifest: Manifest, opts: &RunOptions) -> Result<PathBuf> {
    let out_dir = manifest.output.clone();
    std::fs::create_dir_all(&out_dir).with_context(|| out_dir.display().to_string())?;
    cached::write_atomic(&out_dir.join("manifest.resolved.toml"), toml::to_string_pretty(&manifest)?.as_bytes())?;
    let ctx = Experiment::load(manifest)?;
    let passages = ctx.teacher.passage_index(&ctx.data.passages, &ctx.cache, opts.force.contains(&Stage::Corpus))?;
    let systems = evaluate::baseline_systems(&ctx, &passages, opts)?;
    let native = crate::train::train_native(&ctx, &passages, opts)?;
    let mut all: BTreeMap<String, Vectors> = systems.vectors;
    all.extend(native.vectors);
    let mut latency = systems.latency;
    latency.extend(native.latency);
    let results = evaluate::score_systems(&ctx, &passages, &all)?;
    report::write(&ctx, &out_dir, &results, &latency)
}
