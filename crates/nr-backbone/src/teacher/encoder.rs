//! [`TeacherEncoder`]: texts in, sentence embeddings out, as `SentenceTransformer.encode` computes
//! them.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use super::activation::runs_on_host;
use super::batching::{PaddedBatch, length_buckets};
use super::config::TeacherConfig;
use super::model::BertModel;
use super::pooling::l2_normalize;
use super::tokenizer::TeacherTokenizer;
use crate::error::{BackboneError, Result};
use crate::weights::SafetensorsWeights;

/// A frozen sentence encoder loaded from a sentence-transformers (or plain HF BERT) folder.
pub struct TeacherEncoder {
    config: TeacherConfig,
    tokenizer: TeacherTokenizer,
    model: BertModel,
    device: Device,
}

impl TeacherEncoder {
    /// Loads a folder such as `models/all-MiniLM-L6-v2`: configuration, weights, tokenizer.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::from_config(TeacherConfig::from_folder(dir)?, device)
    }

    /// Builds the encoder from a (possibly edited) configuration, reading weights and tokenizer
    /// from `config.transformer_dir`.
    pub fn from_config(config: TeacherConfig, device: &Device) -> Result<Self> {
        let dir = &config.transformer_dir;
        let tokenizer =
            TeacherTokenizer::from_file(&dir.join("tokenizer.json"), config.max_seq_len)?;
        if tokenizer.vocab_size() > config.bert.vocab_size {
            return Err(BackboneError::malformed(
                &dir.join("tokenizer.json"),
                format!(
                    "tokenizer has {} tokens but config.json's vocab_size is {}",
                    tokenizer.vocab_size(),
                    config.bert.vocab_size
                ),
            ));
        }
        let weights = SafetensorsWeights::open_folder(dir)?;
        let model = BertModel::load(&weights, &config.bert, device)?;
        Ok(Self {
            config,
            tokenizer,
            model,
            device: device.clone(),
        })
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.config.bert.hidden_size
    }

    /// Longest input in tokens; longer texts are truncated.
    pub fn max_seq_len(&self) -> usize {
        self.config.max_seq_len
    }

    /// The configuration the encoder was built from.
    pub fn config(&self) -> &TeacherConfig {
        &self.config
    }

    /// The encoder's modules.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// The text of prompt `name` (`None`: the folder's default prompt, usually none). Unknown names
    /// are an error listing the known ones.
    pub fn prompt(&self, name: Option<&str>) -> Result<&str> {
        let Some(name) = name.or(self.config.default_prompt_name.as_deref()) else {
            return Ok("");
        };
        self.config
            .prompts
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| {
                let known: Vec<&str> = self.config.prompts.keys().map(String::as_str).collect();
                BackboneError::Input(format!(
                    "teacher: no prompt named '{name}' (known: {known:?})"
                ))
            })
    }

    /// Token ids of each text (default prompt applied), truncated to [`Self::max_seq_len`].
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        self.tokenize_with_prompt(texts, None)
    }

    /// Token ids of each text with the named prompt prepended.
    pub fn tokenize_with_prompt(
        &self,
        texts: &[&str],
        prompt: Option<&str>,
    ) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.encode(texts, self.prompt(prompt)?)
    }

    /// Embeddings of `texts` computed as one padded batch, in order.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.encode_ids(&self.tokenize(texts)?)
    }

    /// Embeddings of already tokenised rows (from [`Self::tokenize`]) computed as one padded batch.
    pub fn encode_ids<R: AsRef<[u32]>>(&self, rows: &[R]) -> Result<Vec<Vec<f32>>> {
        let batch = PaddedBatch::new(rows, self.tokenizer.pad_id())?;
        if batch.seq > self.max_seq_len() {
            return Err(BackboneError::Input(format!(
                "teacher: a row has {} tokens, more than max_seq_len {}",
                batch.seq,
                self.max_seq_len()
            )));
        }
        let pooled = self.embed_batch(&batch)?;
        let dim = self.dim();
        let flat: Vec<f32> = pooled.into_data().try_to_vec().map_err(|e| {
            BackboneError::Input(format!("teacher: reading embeddings back: {e:?}"))
        })?;
        Ok(flat.chunks(dim).map(<[f32]>::to_vec).collect())
    }

    /// Embeddings of many texts (default prompt applied), in their original order, computed in
    /// batches of `batch_size` texts of similar length. `progress` draws a bar on stderr.
    pub fn encode_many(
        &self,
        texts: &[&str],
        batch_size: usize,
        progress: bool,
    ) -> Result<Vec<Vec<f32>>> {
        self.encode_many_with_prompt(texts, None, batch_size, progress)
    }

    /// [`Self::encode_many`] with the named prompt (e.g. `Some("query")`) prepended to every text.
    pub fn encode_many_with_prompt(
        &self,
        texts: &[&str],
        prompt: Option<&str>,
        batch_size: usize,
        progress: bool,
    ) -> Result<Vec<Vec<f32>>> {
        if batch_size == 0 {
            return Err(BackboneError::Input(
                "teacher: batch size must be positive".into(),
            ));
        }
        let ids = self.tokenize_with_prompt(texts, prompt)?;
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let bar = progress.then(|| progress_bar(texts.len() as u64));
        let encode_bucket = |bucket: &Vec<usize>| -> Result<Vec<Vec<f32>>> {
            let rows: Vec<&[u32]> = bucket.iter().map(|&i| ids[i].as_slice()).collect();
            let embeddings = self.encode_ids(&rows)?;
            if let Some(bar) = &bar {
                bar.inc(bucket.len() as u64);
            }
            Ok(embeddings)
        };
        let buckets = length_buckets(&lengths, batch_size);
        // On the CPU, batches run side by side on rayon's threads: one small batch keeps two cores
        // busy only in its matrix products, two batches keep them busy throughout.
        let per_bucket: Vec<Vec<Vec<f32>>> = if runs_on_host(&self.device) {
            buckets
                .par_iter()
                .map(encode_bucket)
                .collect::<Result<_>>()?
        } else {
            buckets.iter().map(encode_bucket).collect::<Result<_>>()?
        };
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for (bucket, embeddings) in buckets.iter().zip(per_bucket) {
            for (&i, e) in bucket.iter().zip(embeddings) {
                out[i] = e;
            }
        }
        if let Some(bar) = bar {
            bar.finish();
        }
        Ok(out)
    }

    /// Pooled (and, if configured, normalised) embeddings of one padded batch, `[batch, dim]`.
    fn embed_batch(&self, batch: &PaddedBatch) -> Result<Tensor<2>> {
        let hidden = self.model.forward(
            batch.input_ids(&self.device),
            batch.attention_padding(&self.device),
        )?;
        let pooled = self
            .config
            .pooling
            .pool(hidden, batch.token_mask(&self.device));
        Ok(if self.config.normalize {
            l2_normalize(pooled)
        } else {
            pooled
        })
    }
}

/// A texts-per-second bar on stderr.
fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("encoding {bar:40} {pos}/{len} texts, {per_sec}, eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}
