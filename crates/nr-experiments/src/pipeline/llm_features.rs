//! The LLM side of every system: conversation prompts, hidden-state features for the head, and
//! generated standalone queries (with the hidden states of their tokens).

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use nr_backbone::llama::{GenerateOptions, Llm, TokenStates};
use nr_data::{ChatMessage, QreccTurn, fit_conversation};

use crate::manifest::Pooling;
use crate::train::examples::HeadInputs;

/// Token ids of each turn's conversation prompt (history, question, generation prompt), the oldest
/// turns dropped to fit `budget` tokens. With `system`, it is the first message.
pub fn conversation_prompts(llm: &Llm, turns: &[QreccTurn], system: Option<&str>, budget: usize) -> Result<Vec<Vec<u32>>> {
    let count = |messages: &[ChatMessage]| llm.chat_ids(messages).map_or(usize::MAX, |ids| ids.len());
    turns
        .iter()
        .map(|t| {
            let fitted = fit_conversation(&t.context, &t.question, system, budget, &count);
            Ok(llm.chat_ids(&fitted.messages)?)
        })
        .collect()
}

/// A progress bar on stderr for `n` items, hidden when `show` is false.
pub fn progress(n: usize, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Batches of indices in order of increasing length, so rows of a batch need little padding.
pub fn length_sorted_batches(lengths: &[usize], batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// Pools one turn's token states (one `TokenStates` per layer) into `[tokens, layers, dim]` rows.
fn pool_tokens(states: &[&TokenStates], pool: Pooling, k: usize) -> (usize, Vec<f32>) {
    let dim = states[0].dim;
    let len = states[0].len;
    let mut out = Vec::new();
    match pool {
        Pooling::Last => {
            for s in states {
                out.extend(s.last());
            }
            (1, out)
        }
        Pooling::MeanLast => {
            for s in states {
                out.extend(s.mean_last(k));
            }
            (1, out)
        }
        Pooling::Tokens => {
            let start = len.saturating_sub(k.max(1));
            for t in start..len {
                for s in states {
                    out.extend_from_slice(s.token(t));
                }
            }
            let _ = dim;
            (len - start, out)
        }
    }
}

/// Hidden-state features of each prompt at `layers`, pooled; prompts run in length-sorted batches.
pub fn context_features(
    llm: &Llm,
    prompts: &[Vec<u32>],
    layers: &[usize],
    pool: Pooling,
    pool_k: usize,
    batch: usize,
    show_progress: bool,
) -> Result<HeadInputs> {
    let dim = llm.hidden_size();
    let mut per_turn: Vec<Option<(usize, Vec<f32>)>> = vec![None; prompts.len()];
    let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let bar = progress(prompts.len(), "hidden states", show_progress);
    for rows in length_sorted_batches(&lengths, batch) {
        let chunk: Vec<Vec<u32>> = rows.iter().map(|&r| prompts[r].clone()).collect();
        let out = llm.forward(&chunk, layers, false)?;
        for (&r, seq) in rows.iter().zip(&out) {
            let states: Vec<&TokenStates> = layers.iter().map(|l| &seq.hidden[l]).collect();
            per_turn[r] = Some(pool_tokens(&states, pool, pool_k));
        }
        bar.inc(rows.len() as u64);
    }
    bar.finish_and_clear();
    Ok(assemble(per_turn.into_iter().map(Option::unwrap).collect(), layers.len(), dim))
}

/// Standalone queries generated for each prompt, and features from the hidden states of their tokens.
pub struct Rewrites {
    /// First line of each generated text, trimmed.
    pub queries: Vec<String>,
    pub features: HeadInputs,
}

/// Generates a standalone query for each rewrite prompt (greedy), keeping the generated tokens'
/// hidden states at `layers`, pooled (`Last` = last generated token, `MeanLast` = mean of all of
/// them, `Tokens` = every generated token).
pub fn generate_rewrites(
    llm: &Llm,
    prompts: &[Vec<u32>],
    layers: &[usize],
    pool: Pooling,
    max_new_tokens: usize,
    batch: usize,
    show_progress: bool,
) -> Result<Rewrites> {
    let dim = llm.hidden_size();
    let mut queries = vec![String::new(); prompts.len()];
    let mut per_turn: Vec<Option<(usize, Vec<f32>)>> = vec![None; prompts.len()];
    let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let opts = GenerateOptions { max_new_tokens, collect_layers: layers.to_vec(), ..Default::default() };
    let bar = progress(prompts.len(), "rewrites", show_progress);
    for rows in length_sorted_batches(&lengths, batch) {
        let chunk: Vec<Vec<u32>> = rows.iter().map(|&r| prompts[r].clone()).collect();
        let generated = llm.generate(&chunk, &opts)?;
        for (&r, g) in rows.iter().zip(generated) {
            queries[r] = first_line(&g.text);
            // A reply of no tokens (immediate stop) reads the prompt's last state instead.
            let states: Vec<TokenStates> = layers
                .iter()
                .map(|l| {
                    let vecs = &g.hidden.get(l).map(Vec::as_slice).unwrap_or(&[]);
                    TokenStates { len: vecs.len(), dim, data: vecs.concat() }
                })
                .collect();
            let pooled = if states[0].len == 0 {
                let out = llm.forward(std::slice::from_ref(&prompts[r]), layers, false)?.remove(0);
                let last: Vec<&TokenStates> = layers.iter().map(|l| &out.hidden[l]).collect();
                pool_tokens(&last, Pooling::Last, 1)
            } else {
                let refs: Vec<&TokenStates> = states.iter().collect();
                let k = states[0].len;
                pool_tokens(&refs, pool, k)
            };
            per_turn[r] = Some(pooled);
        }
        bar.inc(rows.len() as u64);
    }
    bar.finish_and_clear();
    let features = assemble(per_turn.into_iter().map(Option::unwrap).collect(), layers.len(), dim);
    Ok(Rewrites { queries, features })
}

/// The first non-empty line of a generated text, trimmed (what generate-then-encode searches with).
pub fn first_line(text: &str) -> String {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string()
}

fn assemble(per_turn: Vec<(usize, Vec<f32>)>, layers: usize, dim: usize) -> HeadInputs {
    let mut offsets = vec![0];
    let mut data = Vec::new();
    for (tokens, rows) in per_turn {
        offsets.push(offsets.last().unwrap() + tokens);
        data.extend(rows);
    }
    HeadInputs { layers, dim, offsets, data }
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
        let a = TokenStates { len: 3, dim: 2, data: vec![1., 2., 3., 4., 5., 6.] };
        let b = TokenStates { len: 3, dim: 2, data: vec![10., 20., 30., 40., 50., 60.] };
        assert_eq!(pool_tokens(&[&a, &b], Pooling::Last, 1), (1, vec![5., 6., 50., 60.]));
        assert_eq!(pool_tokens(&[&a], Pooling::MeanLast, 2), (1, vec![4., 5.]));
        assert_eq!(pool_tokens(&[&a, &b], Pooling::Tokens, 2), (2, vec![3., 4., 30., 40., 5., 6., 50., 60.]));
        assert_eq!(first_line("\n  what is X?\nmore"), "what is X?");
    }
}
