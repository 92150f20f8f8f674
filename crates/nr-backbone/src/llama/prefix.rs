//! Conversation-incremental prefill: the keys and values of a prompt kept so that a later prompt
//! that starts with it runs only its new tokens. Turn t+1 of a conversation repeats turn t's
//! prompt (history, question, generation prompt) before its own answer and question, so reading a
//! conversation turn by turn costs O(turns) tokens instead of O(turns^2). A prompt that shares only
//! a beginning with the cached one (the chat template's system part, a conversation whose oldest
//! turn the token budget dropped) reuses that common prefix.

use std::collections::BTreeMap;

use burn::tensor::{Int, Tensor, TensorData};

use super::model::{KvCache, MASKED};
use super::{Llm, SequenceOutput, TokenStates};
use crate::error::Result;
use crate::weights::to_host;

/// A prompt the LLM has read, with its keys and values up to the layers that were run.
#[derive(Debug, Default, Clone)]
pub struct PrefixCache {
    tokens: Vec<u32>,
    cache: KvCache,
    /// Decoder layers whose keys and values are cached (the deepest layer read so far).
    depth: usize,
    /// Tokens run and tokens reused over the cache's life, and how many prompts started afresh.
    pub stats: PrefixStats,
}

/// What a [`PrefixCache`] saved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrefixStats {
    /// Tokens that went through the model.
    pub computed: usize,
    /// Tokens whose keys and values came from the cache.
    pub reused: usize,
    /// Prompts that did not extend the cached one (a new conversation, a dropped oldest turn); they
    /// still reuse the prefix they share with it, if any.
    pub fresh: usize,
}

impl PrefixCache {
    /// Tokens of the prompt read last.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Forgets the cached prompt (its statistics are kept).
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.cache = KvCache::default();
        self.depth = 0;
    }
}

impl Llm {
    /// Hidden states at `layers` of the tokens of `prompt` after the longest prefix it shares with
    /// the prompt in `cache` (a prompt that reads deeper layers than were cached is read from
    /// scratch). Returns the states of those new tokens only (`len` = number of new tokens, at
    /// least 1: a prompt equal to the cached one has its last token run again) and leaves `prompt`
    /// in the cache.
    pub fn forward_extend(
        &self,
        cache: &mut PrefixCache,
        prompt: &[u32],
        layers: &[usize],
    ) -> Result<SequenceOutput> {
        self.check_input(prompt, layers)?;
        let n = self.num_layers();
        // Decoder layers to run: up to the deepest layer read (all of them for the final norm).
        let mut depth = layers.iter().copied().max().unwrap_or(0).min(n).max(1);
        // At least one token runs, so that its states can be returned.
        let shared = cache
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        if shared > 0 && cache.depth >= depth {
            if shared < cache.tokens.len() {
                cache.stats.fresh += 1;
                cache.cache.truncate(shared);
                cache.tokens.truncate(shared);
            }
            // Every cached layer is extended, so a later call may read any of them.
            depth = cache.depth;
        } else {
            if !cache.tokens.is_empty() {
                cache.stats.fresh += 1;
            }
            cache.clear();
            cache.depth = depth;
        }
        let start = cache.tokens.len();
        let new = &prompt[start..];
        let s = new.len();
        let device = &self.model.device;
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(new.iter().map(|&t| t as i64).collect(), [1, s]),
            device,
        );
        let positions = Tensor::<2, Int>::from_data(
            TensorData::new((start..prompt.len()).map(|p| p as i64).collect(), [1, s]),
            device,
        );
        // New token i sees every cached key and the new keys up to itself.
        let total = start + s;
        let mask: Vec<f32> = (0..s)
            .flat_map(|i| (0..total).map(move |j| if j <= start + i { 0.0 } else { MASKED }))
            .collect();
        let mask = Tensor::from_data(TensorData::new(mask, [1, 1, s, total]), device);
        let hidden = self.model.hidden_states_cached(
            ids,
            &positions,
            &mask,
            &mut cache.cache,
            layers,
            depth,
        );
        cache.tokens = prompt.to_vec();
        cache.stats.computed += s;
        cache.stats.reused += start;
        let mut out = BTreeMap::new();
        for (layer, states) in hidden {
            let [_, len, dim] = states.dims();
            out.insert(
                layer,
                TokenStates {
                    len,
                    dim,
                    data: to_host(states)?,
                },
            );
        }
        Ok(SequenceOutput {
            hidden: out,
            logits: None,
        })
    }
}
