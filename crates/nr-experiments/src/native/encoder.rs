//! The native query encoder: what the LLM's states of a conversation become a query vector by.
//! Features (source, layers, pooling, prompts) -> standardiser -> dense head, plus the lexicon's
//! vector of the conversation when the encoder has one. One type serves the pipeline (batched),
//! the agent and every latency figure (one conversation at a time, [`NativeEncoder::query_vector`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, ensure};
use burn::tensor::Device;
use nr_backbone::llama::{Llm, PrefixCache};
use nr_head::{Head, HeadMeta, LexicalMix, Lexicon};

use super::conversation::Conversation;
use super::features::Extraction;
use super::inputs::{HeadInputs, encode_head};
use super::lexical::{LexicalInput, native_vectors};
use super::spec::{FeatureSpec, HiddenSource};
use super::standardize::Standardizer;
use crate::latency::{Latency, ms_since};

/// Query vectors made by [`NativeEncoder::query_vector`] in this process: lets a caller (and a
/// test) prove that a latency figure was measured on the path the agent runs.
static QUERY_VECTORS: AtomicUsize = AtomicUsize::new(0);

/// How many query vectors [`NativeEncoder::query_vector`] has made in this process.
pub fn query_vectors_made() -> usize {
    QUERY_VECTORS.load(Ordering::Relaxed)
}

/// A trained native encoder.
pub struct NativeEncoder {
    /// What it reads of the LLM.
    pub features: FeatureSpec,
    /// The LLM and teacher it belongs to.
    pub meta: HeadMeta,
    /// Training statistics applied to every input before the head.
    pub standardizer: Standardizer,
    /// The dense head.
    pub head: Head,
    /// The lexical part and its mix with the dense vector, when the encoder has one.
    pub lexicon: Option<(Lexicon, LexicalMix)>,
    device: Device,
}

/// One query vector and what making it took.
#[derive(Debug, Clone)]
pub struct QueryVector {
    pub vector: Vec<f32>,
    /// The generated standalone query (`query_tokens`).
    pub query: Option<String>,
    pub latency: Latency,
    /// Prompt tokens the LLM ran for this vector (the rest came from the cache of earlier turns).
    pub prefill_tokens: usize,
    /// Tokens of the whole prompt the head read.
    pub prompt_tokens: usize,
}

impl NativeEncoder {
    /// Puts the parts together, checking that their widths agree.
    pub fn new(
        features: FeatureSpec,
        meta: HeadMeta,
        standardizer: Standardizer,
        head: Head,
        lexicon: Option<(Lexicon, LexicalMix)>,
        device: Device,
    ) -> Result<Self> {
        let width = features.layers.len() * meta.backbone.hidden_size;
        ensure!(
            standardizer.mean.len() == width && standardizer.std.len() == width,
            "standardizer: {} means and {} deviations, but the head reads {width} values (layers x hidden size)",
            standardizer.mean.len(),
            standardizer.std.len()
        );
        ensure!(
            features.layers == meta.backbone.layers
                && features.source.name() == meta.backbone.source,
            "features read layers {:?} ({}) but the head was trained on {:?} ({})",
            features.layers,
            features.source.name(),
            meta.backbone.layers,
            meta.backbone.source
        );
        if let Some((lexicon, _)) = &lexicon {
            ensure!(
                lexicon.dim == meta.teacher.dim,
                "the lexicon writes {} dimensions, the teacher has {}",
                lexicon.dim,
                meta.teacher.dim
            );
        }
        Ok(Self {
            features,
            meta,
            standardizer,
            head,
            lexicon,
            device,
        })
    }

    /// The device the head runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Width of the query vectors (the teacher's).
    pub fn dim(&self) -> usize {
        self.meta.teacher.dim
    }

    /// The dense head's vectors `[n, D]` of raw (not yet standardised) head inputs.
    pub fn dense(&self, x: &HeadInputs) -> Result<Vec<f32>> {
        let mut x = x.clone();
        self.standardizer.apply(&mut x);
        encode_head(&self.head, &x, &self.device)
    }

    /// Query vectors `[n, D]` of raw head inputs and, when the encoder has a lexicon, what it
    /// reads of the same conversations.
    pub fn encode(&self, x: &HeadInputs, lexical: Option<&[LexicalInput]>) -> Result<Vec<f32>> {
        let dense = self.dense(x)?;
        match (&self.lexicon, lexical) {
            (None, _) => Ok(dense),
            (Some((lexicon, how)), Some(inputs)) => {
                ensure!(
                    inputs.len() == x.len(),
                    "{} lexical inputs for {} head inputs",
                    inputs.len(),
                    x.len()
                );
                native_vectors(lexicon, inputs, Some(&dense), how)
            }
            (Some(_), None) => anyhow::bail!("the encoder has a lexicon: its inputs are required"),
        }
    }

    /// What the lexicon reads of conversations (`None` without a lexicon).
    pub fn lexical_inputs(
        &self,
        llm: &Llm,
        conversations: &[Conversation],
    ) -> Result<Option<Vec<LexicalInput>>> {
        self.lexicon
            .as_ref()
            .map(|_| self.features.lexical_inputs(llm, conversations))
            .transpose()
    }

    /// The query vector of one conversation, as an agent makes it: the LLM writes a standalone
    /// query first for `query_tokens`, reads the prompt, and the head (and lexicon) map its states.
    /// `cache` holds what the LLM read of the conversation's earlier turns (an agent keeps it from
    /// turn to turn, so a turn's prefill runs only its new tokens). Every latency figure of native
    /// retrieval is measured here.
    pub fn query_vector(
        &self,
        llm: &Llm,
        conversation: Conversation,
        cache: &mut PrefixCache,
    ) -> Result<QueryVector> {
        QUERY_VECTORS.fetch_add(1, Ordering::Relaxed);
        let one = [conversation];
        let mut latency = Latency::default();
        let query = match self.features.source {
            HiddenSource::Context => None,
            HiddenSource::QueryTokens => {
                let start = Instant::now();
                let q = self
                    .features
                    .generate_queries(llm, &one, 1, false)?
                    .remove(0);
                latency.generation_ms = ms_since(start);
                Some(q)
            }
        };
        let start = Instant::now();
        let computed_before = cache.stats.computed;
        let queries = query.clone().map(|q| vec![q]);
        let x = self.features.features(
            llm,
            &one,
            queries.as_deref(),
            Extraction {
                batch: 1,
                cache: Some(cache),
                show_progress: false,
            },
        )?;
        latency.prefill_ms = ms_since(start);
        // With the cache, it holds the prompt just read; without it (query_tokens, token pooling)
        // the whole prompt (with the query for query_tokens) went through the model.
        let (prefill_tokens, prompt_tokens) = match cache.stats.computed - computed_before {
            0 => {
                let n = self.features.source_prompts(llm, &one)?[0].len();
                (n, n)
            }
            n => (n, cache.tokens().len()),
        };
        let start = Instant::now();
        let lexical = self.lexical_inputs(llm, &one)?;
        let vector = self.encode(&x, lexical.as_deref())?;
        latency.head_ms = ms_since(start);
        Ok(QueryVector {
            vector,
            query,
            latency,
            prefill_tokens,
            prompt_tokens,
        })
    }

    /// The median latency of [`Self::query_vector`] over `conversations` (batch 1, one after the
    /// other, with one cache as an agent keeps it), and how many query vectors it made: the figure
    /// of reports and benchmarks.
    pub fn latency(&self, llm: &Llm, conversations: &[Conversation]) -> Result<(Latency, usize)> {
        let before = query_vectors_made();
        let mut cache = PrefixCache::default();
        let samples = conversations
            .iter()
            .map(|c| Ok(self.query_vector(llm, *c, &mut cache)?.latency))
            .collect::<Result<Vec<_>>>()?;
        Ok((Latency::median_of(&samples), query_vectors_made() - before))
    }
}
