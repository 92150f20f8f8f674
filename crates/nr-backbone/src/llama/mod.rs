//! A Llama-family chat LLM: decoder weights, tokenizer and chat template, loaded from a GGUF file or
//! an HF folder, with hidden-state extraction and generation.
//!
//! Hidden-state layer indices follow HF's `output_hidden_states`: 0 = token embeddings, `i` = output
//! of decoder layer `i`, `num_layers` = the final RMSNorm applied to the last layer's output.

mod batch;
mod build;
mod chat_template;
mod config;
mod generate;
mod gguf_source;
mod host_decoder;
mod model;
mod prefix;
mod projection;
mod rope;
mod tokenizer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::Serialize;

pub use batch::PaddedBatch;
pub use chat_template::ChatTemplate;
pub use config::LlamaConfig;
pub use generate::{GenerateOptions, GeneratedTokens, Sampling, StopReason, argmax, sample_top_p};
pub use gguf_source::{GgufLlamaWeights, config_from_gguf};
pub use model::{KvCache, LlamaModel};
pub use prefix::{PrefixCache, PrefixStats};
pub use projection::Projection;
pub use tokenizer::LlmTokenizer;

use crate::error::{BackboneError, Result};
use crate::kernels::Precision;
use crate::weights::{SafetensorsWeights, to_host};

/// Hidden states of one sequence at one layer: `len` token vectors of `dim` floats, padding removed.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStates {
    pub len: usize,
    pub dim: usize,
    /// Row-major `[len, dim]`.
    pub data: Vec<f32>,
}

impl TokenStates {
    /// The vector of token `i`.
    pub fn token(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The last token's vector: what a causal LM has read the whole prompt into.
    pub fn last(&self) -> Vec<f32> {
        self.token(self.len - 1).to_vec()
    }

    /// Mean over the last `k` tokens (all tokens when `k >= len`).
    pub fn mean_last(&self, k: usize) -> Vec<f32> {
        let start = self.len.saturating_sub(k);
        let n = (self.len - start) as f32;
        let mut out = vec![0.0f32; self.dim];
        for i in start..self.len {
            for (o, v) in out.iter_mut().zip(self.token(i)) {
                *o += v;
            }
        }
        out.iter_mut().for_each(|o| *o /= n);
        out
    }

    /// Mean over all tokens.
    pub fn mean(&self) -> Vec<f32> {
        self.mean_last(self.len)
    }
}

/// What a batched forward pass returns, per input sequence.
#[derive(Debug, Clone)]
pub struct SequenceOutput {
    /// Requested layers' states.
    pub hidden: BTreeMap<usize, TokenStates>,
    /// Next-token logits after the last token, when asked for.
    pub logits: Option<Vec<f32>>,
}

/// Generated text with its tokens and their hidden states.
#[derive(Debug, Clone)]
pub struct Generation {
    pub ids: Vec<u32>,
    pub text: String,
    pub stop: StopReason,
    /// Per collected layer, one vector per generated token.
    pub hidden: BTreeMap<usize, Vec<Vec<f32>>>,
}

/// A chat LLM ready to render prompts, expose hidden states and generate.
#[derive(Debug)]
pub struct Llm {
    pub model: LlamaModel,
    pub tokenizer: LlmTokenizer,
    pub template: ChatTemplate,
    /// The file or folder it was loaded from.
    pub source: PathBuf,
}

/// The hyper-parameters of the LLM at `path` (a `.gguf` file's header or an HF folder's
/// `config.json`), read without loading its weights: what a manifest is checked against before a
/// run starts.
pub fn read_config(path: &Path) -> Result<LlamaConfig> {
    if path.is_dir() {
        LlamaConfig::from_hf_config(&path.join("config.json"))
    } else {
        config_from_gguf(&crate::gguf::GgufFile::open(path)?)
    }
}

impl Llm {
    /// Loads a `.gguf` file or an HF folder (config.json, safetensors, tokenizer.json).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        if path.is_dir() {
            Self::load_hf_folder(path, device)
        } else if path.is_file() {
            Self::load_gguf(path, device)
        } else {
            Err(BackboneError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            ))
        }
    }

    /// Loads an HF folder: `config.json`, `model.safetensors` (or shards), `tokenizer.json`, and the
    /// chat template from `tokenizer_config.json` (or `chat_template.jinja`).
    pub fn load_hf_folder(dir: &Path, device: &Device) -> Result<Self> {
        let config = LlamaConfig::from_hf_config(&dir.join("config.json"))?;
        let tokenizer = LlmTokenizer::from_hf_folder(dir)?;
        let template_src = hf_chat_template(dir)?;
        let template = ChatTemplate::new(
            &template_src,
            &tokenizer.token_text(tokenizer.bos_id),
            &tokenizer.token_text(tokenizer.stop_ids.first().copied()),
        )?;
        let weights = SafetensorsWeights::open_folder(dir)?;
        let model = build::build_llama(config, &weights, device)?;
        Ok(Self {
            model,
            tokenizer,
            template,
            source: dir.to_path_buf(),
        })
    }

    /// Loads a GGUF v3 file: hyper-parameters, weights (de-quantised), tokenizer and chat template.
    pub fn load_gguf(path: &Path, device: &Device) -> Result<Self> {
        gguf_source::load(path, device)
    }

    /// A prompt the model can read (not empty, within its positions) and layers it has.
    pub(crate) fn check_input(&self, prompt: &[u32], layers: &[usize]) -> Result<()> {
        if prompt.is_empty() {
            return Err(BackboneError::Input(
                "forward: every prompt needs at least one token".into(),
            ));
        }
        let n = self.num_layers();
        if let Some(bad) = layers.iter().find(|&&l| l > n) {
            return Err(BackboneError::Input(format!(
                "layer {bad} does not exist: the model has layers 0..={n}"
            )));
        }
        if prompt.len() > self.model.rope.max_positions() {
            return Err(BackboneError::Input(format!(
                "prompt of {} tokens exceeds the {} positions of the model",
                prompt.len(),
                self.model.rope.max_positions()
            )));
        }
        Ok(())
    }

    /// Runs the decoder's projections in `precision` and returns the one chosen (see
    /// [`LlamaModel::set_precision`]). A model loads in f32, the precision parity is checked in.
    pub fn set_precision(&mut self, precision: Precision) -> Result<Precision> {
        self.model.set_precision(precision)
    }

    /// What the decoder's projections run in now (`F32` or `Bf16`).
    pub fn precision(&self) -> Precision {
        self.model.precision
    }

    /// Whether the decoder layers run on the host in one pass per layer (bf16 projections on a
    /// CPU with AVX-512 BF16), not through burn's tensors.
    pub fn runs_host_pass(&self) -> bool {
        self.model.host.is_some()
    }

    /// Number of decoder layers (also the index of the final-normed hidden state).
    pub fn num_layers(&self) -> usize {
        self.model.config.num_layers
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.model.config.hidden_size
    }

    /// The prompt for `messages` rendered with the model's chat template and the generation prompt.
    pub fn render_chat<M: Serialize>(&self, messages: &[M]) -> Result<String> {
        self.template.render(messages, true)
    }

    /// Token ids of the rendered chat prompt.
    pub fn chat_ids<M: Serialize>(&self, messages: &[M]) -> Result<Vec<u32>> {
        self.tokenizer.encode(&self.render_chat(messages)?)
    }

    /// One forward pass over `prompts` as a left-padded batch, returning the states of `layers`
    /// (padding removed) and, with `logits`, the next-token logits of each prompt.
    pub fn forward(
        &self,
        prompts: &[Vec<u32>],
        layers: &[usize],
        logits: bool,
    ) -> Result<Vec<SequenceOutput>> {
        if prompts.is_empty() {
            return Err(BackboneError::Input(
                "forward: every prompt needs at least one token".into(),
            ));
        }
        for prompt in prompts {
            self.check_input(prompt, layers)?;
        }
        let batch = PaddedBatch::new(prompts, self.tokenizer.pad_id, &self.model.device);
        let (hidden, last_normed) = if logits {
            let out = self
                .model
                .forward(batch.ids, &batch.positions, &batch.mask, None, layers);
            (out.hidden, Some(out.last_normed))
        } else {
            (
                self.model
                    .hidden_states(batch.ids, &batch.positions, &batch.mask, layers),
                None,
            )
        };
        let mut results: Vec<SequenceOutput> = (0..prompts.len())
            .map(|_| SequenceOutput {
                hidden: BTreeMap::new(),
                logits: None,
            })
            .collect();
        for (layer, states) in hidden {
            let [_, s, dim] = states.dims();
            let flat = to_host(states)?;
            for (row, res) in results.iter_mut().enumerate() {
                let p = batch.pad[row];
                let data = flat[(row * s + p) * dim..(row + 1) * s * dim].to_vec();
                res.hidden.insert(
                    layer,
                    TokenStates {
                        len: s - p,
                        dim,
                        data,
                    },
                );
            }
        }
        if let Some(last_normed) = last_normed {
            let l = self.model.logits(last_normed);
            let vocab = l.dims()[1];
            let flat = to_host(l)?;
            for (row, res) in results.iter_mut().enumerate() {
                res.logits = Some(flat[row * vocab..(row + 1) * vocab].to_vec());
            }
        }
        Ok(results)
    }

    /// Generates a reply to each prompt (token ids), stopping at the model's stop tokens.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        opts: &GenerateOptions,
    ) -> Result<Vec<Generation>> {
        let n = self.num_layers();
        if let Some(bad) = opts.collect_layers.iter().find(|&&l| l > n) {
            return Err(BackboneError::Input(format!(
                "layer {bad} does not exist: the model has layers 0..={n}"
            )));
        }
        let raw = generate::generate(
            &self.model,
            prompts,
            &self.tokenizer.stop_ids,
            self.tokenizer.pad_id,
            opts,
        )?;
        raw.into_iter()
            .map(|g| {
                Ok(Generation {
                    text: self.tokenizer.decode(&g.ids)?,
                    ids: g.ids,
                    stop: g.stop,
                    hidden: g.hidden,
                })
            })
            .collect()
    }
}

/// The chat template of an HF folder: `chat_template.jinja`, or `chat_template` in tokenizer_config.json.
fn hf_chat_template(dir: &Path) -> Result<String> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja).map_err(|e| BackboneError::io(&jinja, e));
    }
    let cfg_path = dir.join("tokenizer_config.json");
    let cfg = tokenizer::read_json_or_empty(&cfg_path)?;
    match cfg.get("chat_template") {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        // A list of named templates: take "default".
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|t| t.get("template")?.as_str().map(String::from))
            .ok_or_else(|| {
                BackboneError::missing(&cfg_path, "a 'default' entry in 'chat_template'")
            }),
        _ => Err(BackboneError::missing(
            &cfg_path,
            "key 'chat_template' (and no chat_template.jinja)",
        )),
    }
}
