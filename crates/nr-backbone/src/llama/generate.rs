//! Autoregressive generation with a KV cache: greedy or temperature / top-p sampling with a seed.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::batch::{PaddedBatch, step_inputs};
use super::model::{KvCache, LlamaModel};
use crate::error::{BackboneError, Result};
use crate::weights::to_host;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// The most likely token (ties to the lowest id).
    Greedy,
    /// Softmax at `temperature`, restricted to the smallest set of tokens whose mass reaches `top_p`.
    TopP {
        temperature: f32,
        top_p: f32,
        seed: u64,
    },
}

/// Settings of one generation call.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Hidden-state layers to keep for every generated token (see `LlamaModel::forward`).
    pub collect_layers: Vec<usize>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 32,
            sampling: Sampling::Greedy,
            collect_layers: Vec::new(),
        }
    }
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    StopToken,
    MaxNewTokens,
}

/// Tokens generated for one prompt.
#[derive(Debug, Clone)]
pub struct GeneratedTokens {
    /// Generated ids, without the stop token.
    pub ids: Vec<u32>,
    pub stop: StopReason,
    /// Per collected layer, one hidden vector per generated token in `ids` (computed when the token is
    /// read back as input, as the agent does anyway to continue).
    pub hidden: BTreeMap<usize, Vec<Vec<f32>>>,
}

/// Generates continuations of `prompts` (token ids) as one left-padded batch.
pub fn generate(
    model: &LlamaModel,
    prompts: &[Vec<u32>],
    stop_ids: &[u32],
    pad_id: u32,
    opts: &GenerateOptions,
) -> Result<Vec<GeneratedTokens>> {
    if prompts.is_empty() || prompts.iter().any(Vec::is_empty) {
        return Err(BackboneError::Input(
            "generate: every prompt needs at least one token".into(),
        ));
    }
    let b = prompts.len();
    let device = &model.device;
    let batch = PaddedBatch::new(prompts, pad_id, device);
    let limit = model.rope.max_positions();
    if batch.seq_len + opts.max_new_tokens > limit {
        return Err(BackboneError::Input(format!(
            "generate: prompt of {} tokens + {} new exceeds the {limit} positions of the model",
            batch.seq_len, opts.max_new_tokens
        )));
    }
    let mut rng = match opts.sampling {
        Sampling::TopP { seed, .. } => Some(StdRng::seed_from_u64(seed)),
        Sampling::Greedy => None,
    };
    let mut cache = KvCache::default();
    let out = model.forward(
        batch.ids,
        &batch.positions,
        &batch.mask,
        Some(&mut cache),
        &[],
    );
    let mut logits = out.last_normed;
    let mut key_valid: Vec<Vec<bool>> = batch
        .pad
        .iter()
        .map(|&p| (0..batch.seq_len).map(|j| j >= p).collect())
        .collect();
    let mut next_pos: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let mut results: Vec<GeneratedTokens> = (0..b)
        .map(|_| GeneratedTokens {
            ids: Vec::new(),
            stop: StopReason::MaxNewTokens,
            hidden: BTreeMap::new(),
        })
        .collect();
    let mut done = vec![false; b];
    // Tokens chosen at the previous step whose hidden states are still to be read back.
    let mut pending: Vec<Option<u32>> = vec![None; b];

    for step in 0..=opts.max_new_tokens {
        if step > 0 {
            // Feed the tokens chosen last step (finished rows feed padding, masked for others).
            let tokens: Vec<u32> = pending.iter().map(|t| t.unwrap_or(pad_id)).collect();
            for (row, valid) in key_valid.iter_mut().enumerate() {
                valid.push(pending[row].is_some());
            }
            let (ids, pos, mask) = step_inputs(&tokens, &next_pos, &key_valid, device);
            let out = model.forward(ids, &pos, &mask, Some(&mut cache), &opts.collect_layers);
            for (layer, states) in out.hidden {
                let [_, _, h] = states.dims();
                let flat = to_host(states)?;
                for (row, slot) in pending.iter().enumerate() {
                    if slot.is_some() {
                        results[row]
                            .hidden
                            .entry(layer)
                            .or_default()
                            .push(flat[row * h..(row + 1) * h].to_vec());
                    }
                }
            }
            for (row, slot) in pending.iter_mut().enumerate() {
                if slot.take().is_some() {
                    next_pos[row] += 1;
                }
            }
            logits = out.last_normed;
        }
        if done.iter().all(|&d| d) || step == opts.max_new_tokens {
            break;
        }
        let scores = model.logits(logits.clone());
        let vocab = scores.dims()[1];
        let scores = to_host(scores)?;
        for row in 0..b {
            if done[row] {
                continue;
            }
            let row_scores = &scores[row * vocab..(row + 1) * vocab];
            let token = match (&opts.sampling, rng.as_mut()) {
                (
                    Sampling::TopP {
                        temperature, top_p, ..
                    },
                    Some(rng),
                ) => sample_top_p(row_scores, *temperature, *top_p, rng),
                _ => argmax(row_scores),
            };
            if stop_ids.contains(&token) {
                done[row] = true;
                results[row].stop = StopReason::StopToken;
            } else {
                results[row].ids.push(token);
                pending[row] = Some(token);
                if results[row].ids.len() == opts.max_new_tokens {
                    done[row] = true;
                }
            }
        }
        if opts.collect_layers.is_empty() && done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(results)
}

/// Index of the largest score; the lowest index wins ties.
pub fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as u32
}

/// Nucleus sampling: softmax at `temperature`, keep the most likely tokens until their mass reaches
/// `top_p`, renormalise, draw.
pub fn sample_top_p(scores: &[f32], temperature: f32, top_p: f32, rng: &mut StdRng) -> u32 {
    if temperature <= 0.0 {
        return argmax(scores);
    }
    let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f64)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32, (((s - max) / temperature) as f64).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0.0;
    let mut cut = probs.len();
    for (i, p) in probs.iter().enumerate() {
        kept += p.1 / total;
        if kept >= top_p as f64 {
            cut = i + 1;
            break;
        }
    }
    let nucleus = &probs[..cut];
    let mass: f64 = nucleus.iter().map(|p| p.1).sum();
    let mut u = rng.random::<f64>() * mass;
    for &(id, p) in nucleus {
        if u < p {
            return id;
        }
        u -= p;
    }
    nucleus[cut - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.5, 2.0, -1.0, 2.0]), 1);
    }

    #[test]
    fn top_p_sampling_follows_the_softmax_and_cuts_the_tail() {
        // softmax([0, ln 3]) = [0.25, 0.75].
        let scores = [0.0f32, 3.0f32.ln()];
        let mut rng = StdRng::seed_from_u64(7);
        let draws = 20_000;
        let ones = (0..draws)
            .filter(|_| sample_top_p(&scores, 1.0, 1.0, &mut rng) == 1)
            .count();
        let share = ones as f64 / draws as f64;
        assert!(
            (share - 0.75).abs() < 0.015,
            "token 1 drawn {share:.3} of the time, expected 0.75"
        );
        // top_p = 0.5 keeps only the 0.75 token.
        assert!((0..200).all(|_| sample_top_p(&scores, 1.0, 0.5, &mut rng) == 1));
        // Temperature 0 is greedy.
        assert_eq!(sample_top_p(&scores, 0.0, 1.0, &mut rng), 1);
        // The same seed draws the same sequence.
        let seq = |seed| {
            let mut r = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| sample_top_p(&[0.1, 0.2, 0.3, 0.0], 1.0, 0.95, &mut r))
                .collect::<Vec<_>>()
        };
        assert_eq!(seq(3), seq(3));
    }
}
