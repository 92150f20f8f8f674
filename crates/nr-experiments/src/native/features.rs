//! Hidden-state features: the LLM's states of each prompt at the head's layers, pooled as the head
//! reads them (`context`: the conversation prompt; `query_tokens`: the tokens of a query read after
//! its rewrite prompt).

use anyhow::Result;
use nr_backbone::llama::{Llm, PrefixCache, TokenStates};

use super::conversation::Conversation;
use super::inputs::HeadInputs;
use super::prompt::{query_continuation, question_prompts};
use super::spec::{FeatureSpec, HiddenSource, Pooling};
use crate::progress::progress;

/// Batches of indices in order of increasing length, so rows of a batch need little padding.
pub fn length_sorted_batches(lengths: &[usize], batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// Pools one turn's token states (one `TokenStates` per layer) into `[tokens, layers, dim]` rows;
/// `Question` pools like `MeanLast` with the `k` of that turn, `QuestionTokens` like `Tokens`.
fn pool_tokens(states: &[&TokenStates], pool: Pooling, k: usize) -> (usize, Vec<f32>) {
    let len = states[0].len;
    let mut out = Vec::new();
    match pool {
        Pooling::Last => {
            for s in states {
                out.extend(s.last());
            }
            (1, out)
        }
        Pooling::MeanLast | Pooling::Question => {
            for s in states {
                out.extend(s.mean_last(k));
            }
            (1, out)
        }
        Pooling::Tokens | Pooling::QuestionTokens => {
            let start = len.saturating_sub(k.max(1));
            for t in start..len {
                for s in states {
                    out.extend_from_slice(s.token(t));
                }
            }
            (len - start, out)
        }
    }
}

/// How many of prompt `r`'s last tokens the pooling reads.
fn tail_tokens(pool: Pooling, pool_k: usize, question_tokens: Option<&[usize]>, r: usize) -> usize {
    match pool {
        Pooling::Last => 1,
        Pooling::Question | Pooling::QuestionTokens => question_tokens.map_or(pool_k, |q| q[r]),
        Pooling::MeanLast | Pooling::Tokens => pool_k,
    }
}

/// Hidden-state features of each prompt at `layers`, pooled; prompts run in length-sorted batches.
/// `Question` (and `QuestionTokens`) pooling reads `question_tokens[i]` tokens of prompt `i` (see
/// [`question_prompts`]).
#[allow(clippy::too_many_arguments)]
pub fn context_features(
    llm: &Llm,
    prompts: &[Vec<u32>],
    layers: &[usize],
    pool: Pooling,
    pool_k: usize,
    question_tokens: Option<&[usize]>,
    batch: usize,
    show_progress: bool,
) -> Result<HeadInputs> {
    anyhow::ensure!(
        !pool.reads_question() || question_tokens.is_some_and(|q| q.len() == prompts.len()),
        "question pooling needs the question's token count of every prompt"
    );
    let dim = llm.hidden_size();
    let mut per_turn: Vec<Option<(usize, Vec<f32>)>> = vec![None; prompts.len()];
    let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let bar = progress(prompts.len(), "hidden states", show_progress);
    for rows in length_sorted_batches(&lengths, batch) {
        let chunk: Vec<Vec<u32>> = rows.iter().map(|&r| prompts[r].clone()).collect();
        let out = llm.forward(&chunk, layers, false)?;
        for (&r, seq) in rows.iter().zip(&out) {
            let states: Vec<&TokenStates> = layers.iter().map(|l| &seq.hidden[l]).collect();
            let k = tail_tokens(pool, pool_k, question_tokens, r);
            per_turn[r] = Some(pool_tokens(&states, pool, k));
        }
        bar.inc(rows.len() as u64);
    }
    bar.finish_and_clear();
    Ok(assemble(
        per_turn.into_iter().map(Option::unwrap).collect(),
        layers.len(),
        dim,
    ))
}

/// [`context_features`] read turn after turn with one [`PrefixCache`]: a prompt that extends the
/// previous one (the next turn of the same conversation) runs only its new tokens. Prompts keep
/// their order (a split's turns are grouped by conversation); the states read are those of the
/// tokens the pooling needs, all among the new ones (else the prompt is read afresh). `Tokens`
/// pooling needs every token: use [`context_features`].
#[allow(clippy::too_many_arguments)]
pub fn context_features_incremental(
    llm: &Llm,
    prompts: &[Vec<u32>],
    layers: &[usize],
    pool: Pooling,
    pool_k: usize,
    question_tokens: Option<&[usize]>,
    cache: &mut PrefixCache,
    show_progress: bool,
) -> Result<HeadInputs> {
    anyhow::ensure!(
        pool != Pooling::Tokens,
        "token pooling reads every token of the prompt: incremental prefill does not apply"
    );
    anyhow::ensure!(
        !pool.reads_question() || question_tokens.is_some_and(|q| q.len() == prompts.len()),
        "question pooling needs the question's token count of every prompt"
    );
    let dim = llm.hidden_size();
    let before = cache.stats;
    let bar = progress(prompts.len(), "hidden states", show_progress);
    let mut per_turn = Vec::with_capacity(prompts.len());
    for (r, prompt) in prompts.iter().enumerate() {
        let k = tail_tokens(pool, pool_k, question_tokens, r).min(prompt.len());
        let mut seq = llm.forward_extend(cache, prompt, layers)?;
        if seq.hidden[&layers[0]].len < k {
            // The pooling reads further back than the new tokens: read the whole prompt.
            cache.clear();
            seq = llm.forward_extend(cache, prompt, layers)?;
        }
        let states: Vec<&TokenStates> = layers.iter().map(|l| &seq.hidden[l]).collect();
        per_turn.push(pool_tokens(&states, pool, k));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let s = cache.stats;
    if prompts.len() > 1 {
        tracing::info!(
            "incremental prefill: {} tokens run, {} reused from earlier turns, {} fresh prompts",
            s.computed - before.computed,
            s.reused - before.reused,
            s.fresh - before.fresh
        );
    }
    Ok(assemble(per_turn, layers.len(), dim))
}

/// Features of the `query_tokens` source: the hidden states at `layers` of each query's tokens read
/// after its rewrite prompt, pooled (`Last` = the end-of-turn token, `MeanLast` = mean of all query
/// tokens, `Tokens` = every one). The decoder is causal, so these are the states the LLM computed
/// while generating that query; for training turns the query can be the human rewrite (teacher forcing).
pub fn query_token_features(
    llm: &Llm,
    prompts: &[Vec<u32>],
    queries: &[String],
    layers: &[usize],
    pool: Pooling,
    batch: usize,
    show_progress: bool,
) -> Result<HeadInputs> {
    anyhow::ensure!(
        prompts.len() == queries.len(),
        "{} prompts but {} queries",
        prompts.len(),
        queries.len()
    );
    let dim = llm.hidden_size();
    let continuations = queries
        .iter()
        .map(|q| query_continuation(llm, q))
        .collect::<Result<Vec<_>>>()?;
    let full: Vec<Vec<u32>> = prompts
        .iter()
        .zip(&continuations)
        .map(|(p, c)| [p.as_slice(), c].concat())
        .collect();
    let mut per_turn: Vec<Option<(usize, Vec<f32>)>> = vec![None; prompts.len()];
    let lengths: Vec<usize> = full.iter().map(Vec::len).collect();
    let bar = progress(prompts.len(), "query tokens", show_progress);
    for rows in length_sorted_batches(&lengths, batch) {
        let chunk: Vec<Vec<u32>> = rows.iter().map(|&r| full[r].clone()).collect();
        let out = llm.forward(&chunk, layers, false)?;
        for (&r, seq) in rows.iter().zip(&out) {
            let n = continuations[r].len();
            let query: Vec<TokenStates> = layers
                .iter()
                .map(|l| {
                    let s = &seq.hidden[l];
                    TokenStates {
                        len: n,
                        dim,
                        data: s.data[(s.len - n) * dim..].to_vec(),
                    }
                })
                .collect();
            let refs: Vec<&TokenStates> = query.iter().collect();
            per_turn[r] = Some(pool_tokens(&refs, pool, n));
        }
        bar.inc(rows.len() as u64);
    }
    bar.finish_and_clear();
    Ok(assemble(
        per_turn.into_iter().map(Option::unwrap).collect(),
        layers.len(),
        dim,
    ))
}

fn assemble(per_turn: Vec<(usize, Vec<f32>)>, layers: usize, dim: usize) -> HeadInputs {
    let mut offsets = vec![0];
    let mut data = Vec::new();
    for (tokens, rows) in per_turn {
        offsets.push(offsets.last().unwrap() + tokens);
        data.extend(rows);
    }
    HeadInputs {
        layers,
        dim,
        offsets,
        data,
    }
}

/// How [`FeatureSpec::features`] runs the LLM.
pub struct Extraction<'a> {
    /// Prompts per forward pass when prompts are read independently.
    pub batch: usize,
    /// Conversation-incremental prefill with this cache (the `context` source, any pooling but
    /// `tokens`); `None` reads every prompt whole, in length-sorted batches.
    pub cache: Option<&'a mut PrefixCache>,
    pub show_progress: bool,
}

impl FeatureSpec {
    /// Head inputs of conversations: the conversation prompt's states (`context`), or the states
    /// of each conversation's standalone query read after its rewrite prompt (`query_tokens`:
    /// `queries` are required, one per conversation).
    pub fn features(
        &self,
        llm: &Llm,
        conversations: &[Conversation],
        queries: Option<&[String]>,
        how: Extraction,
    ) -> Result<HeadInputs> {
        match self.source {
            HiddenSource::Context => {
                // Question pooling renders each prompt once with its question's token count.
                let (prompts, question_tokens) = match self.pool {
                    Pooling::Question | Pooling::QuestionTokens => {
                        let (prompts, counts) = question_prompts(
                            llm,
                            conversations,
                            self.system_prompt.as_deref(),
                            self.max_prompt_tokens,
                        )?;
                        (prompts, Some(counts))
                    }
                    _ => (self.conversation_prompts(llm, conversations)?, None),
                };
                match how.cache {
                    Some(cache) if self.pool != Pooling::Tokens => context_features_incremental(
                        llm,
                        &prompts,
                        &self.layers,
                        self.pool,
                        self.pool_k,
                        question_tokens.as_deref(),
                        cache,
                        how.show_progress,
                    ),
                    _ => context_features(
                        llm,
                        &prompts,
                        &self.layers,
                        self.pool,
                        self.pool_k,
                        question_tokens.as_deref(),
                        how.batch,
                        how.show_progress,
                    ),
                }
            }
            HiddenSource::QueryTokens => {
                let queries = queries.ok_or_else(|| {
                    anyhow::anyhow!("the query_tokens source reads a query per conversation")
                })?;
                let prompts = self.rewrite_prompts(llm, conversations)?;
                query_token_features(
                    llm,
                    &prompts,
                    queries,
                    &self.layers,
                    self.pool,
                    how.batch,
                    how.show_progress,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_similar_lengths_and_cover_every_index_once() {
        let b = length_sorted_batches(&[5, 1, 9, 1, 5], 2);
        assert_eq!(b, vec![vec![1, 3], vec![0, 4], vec![2]]);
    }

    #[test]
    fn pooling_keeps_layer_blocks_per_token() {
        let a = TokenStates {
            len: 3,
            dim: 2,
            data: vec![1., 2., 3., 4., 5., 6.],
        };
        let b = TokenStates {
            len: 3,
            dim: 2,
            data: vec![10., 20., 30., 40., 50., 60.],
        };
        assert_eq!(
            pool_tokens(&[&a, &b], Pooling::Last, 1),
            (1, vec![5., 6., 50., 60.])
        );
        assert_eq!(pool_tokens(&[&a], Pooling::MeanLast, 2), (1, vec![4., 5.]));
        assert_eq!(
            pool_tokens(&[&a, &b], Pooling::Tokens, 2),
            (2, vec![3., 4., 30., 40., 5., 6., 50., 60.])
        );
    }

    #[cfg(feature = "flex")]
    #[test]
    fn incremental_features_equal_batched_ones_on_real_conversations() {
        use crate::native::conversation::conversations;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
        let llm = Llm::load(&path, &burn::tensor::Device::flex()).unwrap();
        // The first 7 test turns: two conversations, turn by turn.
        let turns: Vec<_> = nr_data::read_qrecc_turns(nr_data::qrecc_offline("qrecc_test.json"))
            .unwrap()
            .into_iter()
            .take(7)
            .collect();
        let convs = conversations(&turns);
        let mut by_pool = Vec::new();
        for pool in [
            Pooling::Question,
            Pooling::Last,
            Pooling::MeanLast,
            Pooling::QuestionTokens,
        ] {
            let spec = FeatureSpec {
                source: HiddenSource::Context,
                layers: vec![16, 24],
                pool,
                pool_k: 4,
                system_prompt: None,
                max_prompt_tokens: 768,
                rewrite_instruction: String::new(),
                max_new_tokens: 8,
            };
            let batched = spec
                .features(
                    &llm,
                    &convs,
                    None,
                    Extraction {
                        batch: 4,
                        cache: None,
                        show_progress: false,
                    },
                )
                .unwrap();
            let mut cache = PrefixCache::default();
            let incremental = spec
                .features(
                    &llm,
                    &convs,
                    None,
                    Extraction {
                        batch: 4,
                        cache: Some(&mut cache),
                        show_progress: false,
                    },
                )
                .unwrap();
            assert_eq!(
                (incremental.offsets.clone(), incremental.layers),
                (batched.offsets.clone(), batched.layers)
            );
            let diff: f64 = incremental
                .data
                .iter()
                .zip(&batched.data)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let norm: f64 = batched
                .data
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                diff / norm < 1e-4,
                "{pool:?}: relative error {}",
                diff / norm
            );
            assert!(
                cache.stats.reused > 0,
                "{pool:?}: later turns reuse earlier ones"
            );
            by_pool.push(batched);
        }
        // Question tokens kept one by one average to the question-pooled vector.
        let (pooled, tokens) = (&by_pool[0], &by_pool[3]);
        let width = tokens.layers * tokens.dim;
        for turn in 0..pooled.len() {
            let rows = tokens.offsets[turn]..tokens.offsets[turn + 1];
            assert!(rows.len() > 1, "turn {turn}: a question has several tokens");
            let n = rows.len() as f32;
            for j in 0..width {
                let mean: f32 = rows
                    .clone()
                    .map(|r| tokens.data[r * width + j])
                    .sum::<f32>()
                    / n;
                let want = pooled.data[turn * width + j];
                assert!(
                    (mean - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "turn {turn} {j}"
                );
            }
        }
    }
}
