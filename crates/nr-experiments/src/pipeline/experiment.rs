//! What every stage of a run shares: the manifest, the data, the models, the cache, and the
//! cached LLM-side stages (hidden-state features, generated rewrites).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;
use nr_backbone::kernels::Precision;
use nr_backbone::llama::{Llm, PrefixCache};
use nr_backbone::teacher::TeacherEncoder;
use nr_data::{
    CacheKey, CacheKeyBuilder, FeatureStore, FeatureStoreWriter, QreccTurn, TensorCache,
    file_sha256,
};

use super::cached;
use super::dataset::{ExperimentData, Split};
use super::pretrain::is_window_split;
use super::teacher_side::Teacher;
use crate::manifest::Prefill;
use crate::manifest::{HiddenSource, Manifest, QueryTokensTrain};
use crate::native::generate::generate_rewrites;
use crate::native::{Extraction, FeatureSpec, HeadInputs, SplitRows, StoredRows, conversations};
use crate::progress::progress;

/// Turns extracted at a time into a feature store: what is held in RAM while it is written.
const STORE_SLICE: usize = 256;
/// Rewrites generated between two saves of the partial list (about a minute of generation here).
const REWRITE_CHUNK: usize = 256;
/// Tokens per feature-store shard (about 2.4 MB at 2 layers x 576 in f16).
const STORE_SHARD_TOKENS: usize = 1024;

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
    /// What the native encoder reads of the LLM (the manifest's backbone settings, layers resolved).
    pub features: FeatureSpec,
}

/// Hash of a model: the file itself, or the weights of an HF folder.
pub fn model_hash(path: &Path) -> Result<String> {
    let file = if path.is_dir() {
        let single = path.join("model.safetensors");
        if single.is_file() {
            single
        } else {
            path.join("model.safetensors.index.json")
        }
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
        let mut llm = Llm::load(&manifest.backbone.path, &device)?;
        let precision = llm
            .set_precision(manifest.backbone.precision)
            .with_context(|| format!("{}: backbone.precision", manifest.name))?;
        tracing::info!(
            "decoder projections in {} ({})",
            precision.name(),
            nr_backbone::kernels::cpu_features()
        );
        let llm_hash = model_hash(&manifest.backbone.path)?;
        let encoder = TeacherEncoder::load(&manifest.teacher.path, &device)?;
        let teacher = Teacher {
            encoder,
            weights_hash: model_hash(&manifest.teacher.path)?,
            batch_size: manifest.teacher.batch_size,
        };
        let features = manifest.backbone.feature_spec(llm.num_layers())?;
        // The head's settings against the models' widths, before any stage runs.
        manifest
            .head
            .config(
                llm.hidden_size(),
                teacher.encoder.dim(),
                features.layers.len(),
            )
            .with_context(|| format!("{}: [head]", manifest.name))?;
        tracing::info!("models loaded in {:.1}s", start.elapsed().as_secs_f64());
        let cache = TensorCache::new(&manifest.cache);
        Ok(Self {
            manifest,
            device,
            cache,
            data,
            llm,
            llm_hash,
            teacher,
            features,
        })
    }

    /// A cache key of kind `kind` bound to this run's LLM weights, the precision its
    /// projections run in (f32 keys are those of every cache written before bf16 existed) and,
    /// in bf16, whether the decoder ran its host pass (its attention and norms round apart).
    pub(super) fn llm_key(&self, kind: &str) -> CacheKeyBuilder {
        let key = CacheKeyBuilder::new(kind).model_hash(&self.llm_hash);
        match self.llm.precision() {
            Precision::F32 | Precision::Auto => key,
            Precision::Bf16 if self.llm.runs_host_pass() => {
                key.setting("precision", "bf16").setting("decoder", "host")
            }
            Precision::Bf16 => key.setting("precision", "bf16"),
        }
    }

    /// Rewrite prompts of turns (generate-then-encode and `query_tokens`).
    pub fn rewrite_prompts(&self, turns: &[QreccTurn]) -> Result<Vec<Vec<u32>>> {
        self.features
            .rewrite_prompts(&self.llm, &conversations(turns))
    }

    /// Head inputs of a split's turns from the configured source, each of its parts cached apart.
    pub fn head_inputs(&self, split: &Split, opts: &RunOptions) -> Result<HeadInputs> {
        let parts = split
            .part_turns()
            .into_iter()
            .map(|turns| self.part_head_inputs(split.name, turns, opts))
            .collect::<Result<Vec<_>>>()?;
        Ok(HeadInputs::concat(parts))
    }

    /// A split's head inputs for training: in feature stores on disk with
    /// `backbone.feature_store`, else in memory ([`Self::head_inputs`]).
    pub fn split_rows(&self, split: &Split, opts: &RunOptions) -> Result<SplitRows> {
        if !self.manifest.backbone.feature_store {
            return Ok(SplitRows::Memory(self.head_inputs(split, opts)?));
        }
        let parts = split
            .part_turns()
            .into_iter()
            .map(|turns| self.part_feature_store(split.name, turns, opts))
            .collect::<Result<Vec<_>>>()?;
        Ok(SplitRows::Stored(StoredRows::new(parts)?))
    }

    /// Head inputs of one cached part of split `name`, keyed by the prompts (and queries) read.
    fn part_head_inputs(
        &self,
        name: &str,
        turns: &[QreccTurn],
        opts: &RunOptions,
    ) -> Result<HeadInputs> {
        let (key, queries) = self.part_key(name, turns, opts)?;
        cached::head_inputs(
            &self.cache,
            &key,
            opts.force.contains(&Stage::Hidden),
            || {
                tracing::info!("{name}: hidden states of {} turns", turns.len());
                let mut cache = PrefixCache::default();
                self.extract(turns, queries.as_deref(), &mut cache, true)
            },
        )
    }

    /// One part of split `name` as a feature store, extracted into it in slices of
    /// [`STORE_SLICE`] turns; a killed extraction resumes after the store's last whole shard.
    fn part_feature_store(
        &self,
        name: &str,
        turns: &[QreccTurn],
        opts: &RunOptions,
    ) -> Result<FeatureStore> {
        let (key, queries) = self.part_key(name, turns, opts)?;
        let dir = self.manifest.cache.join("features").join(key.as_str());
        let (layers, dim) = (self.features.layers.len(), self.llm.hidden_size());
        if opts.force.contains(&Stage::Hidden) {
            std::fs::remove_dir_all(&dir).ok();
        }
        let mut writer = FeatureStoreWriter::open(&dir, &key, layers, dim, STORE_SHARD_TOKENS)?;
        if writer.is_complete() {
            return Ok(FeatureStore::open(&dir, &key)?);
        }
        let done = writer.texts_done();
        tracing::info!(
            "{name}: hidden states of {} turns into the feature store {}{}",
            turns.len(),
            dir.display(),
            if done > 0 {
                format!(" (resuming after {done})")
            } else {
                String::new()
            }
        );
        let bar = progress(turns.len() - done, &format!("{name} hidden states"), true);
        let mut cache = PrefixCache::default();
        let mut start = done;
        while start < turns.len() {
            let end = (start + STORE_SLICE).min(turns.len());
            let slice_queries = queries.as_ref().map(|q| &q[start..end]);
            let x = self.extract(&turns[start..end], slice_queries, &mut cache, false)?;
            for i in 0..x.len() {
                writer.push(x.turn(i))?;
            }
            bar.inc((end - start) as u64);
            start = end;
        }
        bar.finish_and_clear();
        Ok(writer.finish()?)
    }

    /// The cache key of one part of split `name` (the prompts and queries read, the layers and
    /// pooling), and the queries its turns read (`query_tokens`).
    fn part_key(
        &self,
        name: &str,
        turns: &[QreccTurn],
        opts: &RunOptions,
    ) -> Result<(CacheKey, Option<Vec<String>>)> {
        let b = &self.manifest.backbone;
        let f = &self.features;
        let prompts = f.source_prompts(&self.llm, &conversations(turns))?;
        let queries = match f.source {
            HiddenSource::Context => None,
            // Pre-training windows: the text itself is the query, as a human rewrite would be.
            HiddenSource::QueryTokens
                if is_window_split(name)
                    || (name == "train"
                        && b.query_tokens_train == QueryTokensTrain::HumanRewrite) =>
            {
                Some(turns.iter().map(|t| t.rewrite.clone()).collect::<Vec<_>>())
            }
            HiddenSource::QueryTokens => Some(self.rewrites(name, turns, opts)?),
        };
        let (kind, inputs): (&str, Vec<String>) = match &queries {
            None => (
                "llm-context-features",
                prompts.iter().map(|p| format!("{p:?}")).collect(),
            ),
            Some(q) => (
                "llm-query-token-features",
                prompts
                    .iter()
                    .zip(q)
                    .map(|(p, q)| format!("{p:?}{q}"))
                    .collect(),
            ),
        };
        let mut key = self
            .llm_key(kind)
            .inputs(inputs.iter().map(String::as_str))
            .setting("layers", format!("{:?}", f.layers))
            .setting("pool", format!("{:?}", f.pool));
        if f.source == HiddenSource::Context {
            key = key.setting("pool_k", f.pool_k);
        }
        Ok((key.finish(), queries))
    }

    /// Hidden-state features of `turns` as the manifest reads them, with `cache` carrying the
    /// previous prompt's KV cache (incremental prefill).
    fn extract(
        &self,
        turns: &[QreccTurn],
        queries: Option<&[String]>,
        cache: &mut PrefixCache,
        show_progress: bool,
    ) -> Result<HeadInputs> {
        let b = &self.manifest.backbone;
        let how = Extraction {
            batch: b.batch_size,
            cache: (b.prefill == Prefill::Incremental).then_some(cache),
            show_progress,
        };
        self.features
            .features(&self.llm, &conversations(turns), queries, how)
    }

    /// The LLM's standalone query for each turn of a split (generate-then-encode, and what the
    /// `query_tokens` head reads at test time), cached as JSON.
    pub fn rewrites(
        &self,
        name: &str,
        turns: &[QreccTurn],
        opts: &RunOptions,
    ) -> Result<Vec<String>> {
        let b = &self.manifest.backbone;
        let prompts = self.rewrite_prompts(turns)?;
        let key = self
            .llm_key("llm-rewrite-texts")
            .inputs(
                prompts
                    .iter()
                    .map(|p| format!("{p:?}"))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            )
            .setting("max_new_tokens", b.max_new_tokens)
            .finish();
        let path = self.manifest.cache.join(format!("{key}.rewrites.json"));
        if !opts.force.contains(&Stage::Rewrites)
            && let Some(queries) = cached::read_texts(&path, prompts.len())
        {
            return Ok(queries);
        }
        tracing::info!(
            "{name}: generating {} rewrites into {}",
            prompts.len(),
            path.display()
        );
        let partial = self
            .manifest
            .cache
            .join(format!("{key}.rewrites.partial.json"));
        // The prompts rendered for the key are the ones generated from.
        let queries = cached::resumable_texts(
            &partial,
            prompts.len(),
            REWRITE_CHUNK,
            &format!("{name} rewrites"),
            |range| {
                generate_rewrites(
                    &self.llm,
                    &prompts[range],
                    self.features.max_new_tokens,
                    b.batch_size,
                    false,
                )
            },
        )?;
        cached::write_texts(&path, &queries)?;
        Ok(queries)
    }
}
