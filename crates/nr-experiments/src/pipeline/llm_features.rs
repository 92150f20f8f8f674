//! The LLM side of every system: conversation prompts, hidden-state features for the head, and
//! generated standalone queries (with the hidden states of their tokens).

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use nr_backbone::llama::{GenerateOptions, Llm, TokenStates};
use nr_data::{ChatMessage, QreccTurn, fit_conversation};
use nr_head::Speaker;

use crate::manifest::Pooling;
use crate::train::examples::HeadInputs;
use crate::train::lexicon::LexicalInput;

/// Token ids of each turn's conversation prompt (history, question, generation prompt), the oldest
/// turns dropped to fit `budget` tokens. With `system`, it is the first message.
pub fn conversation_prompts(
    llm: &Llm,
    turns: &[QreccTurn],
    system: Option<&str>,
    budget: usize,
) -> Result<Vec<Vec<u32>>> {
    let count = prompt_length(llm);
    turns
        .iter()
        .map(|t| {
            let fitted = fit_conversation(&t.context, &t.question, system, budget, &count);
            Ok(llm.chat_ids(&fitted.messages)?)
        })
        .collect()
}

/// The token count of chat messages once rendered by `llm`'s template (`usize::MAX` when they
/// cannot be rendered): what [`fit_conversation`] fits to a budget.
pub fn prompt_length(llm: &Llm) -> impl Fn(&[ChatMessage]) -> usize + '_ {
    |messages: &[ChatMessage]| llm.chat_ids(messages).map_or(usize::MAX, |ids| ids.len())
}

/// How many tokens at the end of each conversation prompt belong to the current question and the
/// generation prompt after it: the prompt minus its longest common prefix with the same
/// conversation whose question is empty.
pub fn question_token_counts(
    llm: &Llm,
    turns: &[QreccTurn],
    system: Option<&str>,
    budget: usize,
) -> Result<Vec<usize>> {
    let count = prompt_length(llm);
    turns
        .iter()
        .map(|t| Ok(question_prompt(llm, &t.context, &t.question, system, budget, &count)?.1))
        .collect()
}

/// The prompt of one conversation and how many of its last tokens belong to the current question
/// and the generation prompt (see [`question_token_counts`]).
pub fn question_prompt(
    llm: &Llm,
    history: &[String],
    question: &str,
    system: Option<&str>,
    budget: usize,
    count: &dyn Fn(&[ChatMessage]) -> usize,
) -> Result<(Vec<u32>, usize)> {
    let fitted = fit_conversation(history, question, system, budget, count);
    let full = llm.chat_ids(&fitted.messages)?;
    let mut empty = fitted.messages;
    if let Some(last) = empty.last_mut() {
        last.content.clear();
    }
    let empty = llm.chat_ids(&empty)?;
    let common = full.iter().zip(&empty).take_while(|(a, b)| a == b).count();
    let k = (full.len() - common).max(1);
    Ok((full, k))
}

/// What the lexicon reads of each turn: the LLM's tokens of every message of the conversation
/// prompt (fitted to `budget` like [`conversation_prompts`]; a system message is not read).
pub fn lexical_inputs(
    llm: &Llm,
    turns: &[QreccTurn],
    system: Option<&str>,
    budget: usize,
) -> Result<Vec<LexicalInput>> {
    let count = prompt_length(llm);
    turns
        .iter()
        .map(|t| lexical_input(llm, &t.context, &t.question, system, budget, &count))
        .collect()
}

/// [`lexical_inputs`] of one conversation.
pub fn lexical_input(
    llm: &Llm,
    history: &[String],
    question: &str,
    system: Option<&str>,
    budget: usize,
    count: &dyn Fn(&[ChatMessage]) -> usize,
) -> Result<LexicalInput> {
    let fitted = fit_conversation(history, question, system, budget, count);
    let mut messages: Vec<&ChatMessage> = fitted
        .messages
        .iter()
        .filter(|m| m.role != nr_data::ROLE_SYSTEM)
        .collect();
    let last = messages.pop().expect("the question is the last message");
    let history = messages
        .into_iter()
        .map(|m| {
            let speaker = if m.role == nr_data::ROLE_USER {
                Speaker::User
            } else {
                Speaker::Assistant
            };
            Ok((speaker, llm.tokenizer.encode_continuation(&m.content)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LexicalInput {
        question: llm.tokenizer.encode_continuation(&last.content)?,
        history,
    })
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

/// Pools one turn's token states (one `TokenStates` per layer) into `[tokens, layers, dim]` rows;
/// `Question` pools like `MeanLast` with the `k` of that turn.
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
        Pooling::Tokens => {
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

/// Hidden-state features of each prompt at `layers`, pooled; prompts run in length-sorted batches.
/// `Question` pooling reads `question_tokens[i]` tokens of prompt `i` (see [`question_token_counts`]).
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
        pool != Pooling::Question || question_tokens.is_some_and(|q| q.len() == prompts.len()),
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
            let k = if pool == Pooling::Question {
                question_tokens.map_or(pool_k, |q| q[r])
            } else {
                pool_k
            };
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

/// Generates a standalone query for each rewrite prompt (greedy) and keeps the first line of each.
pub fn generate_rewrites(
    llm: &Llm,
    prompts: &[Vec<u32>],
    max_new_tokens: usize,
    batch: usize,
    show_progress: bool,
) -> Result<Vec<String>> {
    let mut queries = vec![String::new(); prompts.len()];
    let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let opts = GenerateOptions {
        max_new_tokens,
        ..Default::default()
    };
    let bar = progress(prompts.len(), "rewrites", show_progress);
    for rows in length_sorted_batches(&lengths, batch) {
        let chunk: Vec<Vec<u32>> = rows.iter().map(|&r| prompts[r].clone()).collect();
        for (&r, g) in rows.iter().zip(llm.generate(&chunk, &opts)?) {
            queries[r] = first_line(&g.text);
        }
        bar.inc(rows.len() as u64);
    }
    bar.finish_and_clear();
    Ok(queries)
}

/// The tokens of `query` as the assistant's reply to a rewrite prompt: its text then the
/// end-of-turn token, so the last token has read the whole query.
pub fn query_continuation(llm: &Llm, query: &str) -> Result<Vec<u32>> {
    let mut ids = llm.tokenizer.encode_continuation(query)?;
    ids.extend(llm.tokenizer.end_of_turn_id());
    Ok(ids)
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

/// The first non-empty line of a generated text, trimmed (what generate-then-encode searches with).
pub fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_similar_lengths_and_cover_every_index_once() {
        let b = length_sorted_batches(&[5, 1, 9, 1, 5], 2);
        assert_eq!(b, vec![vec![1, 3], vec![0, 4], vec![2]]);
    }

    #[cfg(feature = "flex")]
    #[test]
    fn question_tokens_cover_the_question_and_the_generation_prompt_only() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            path.is_file(),
            "{} is missing: run `just models` first",
            path.display()
        );
        let llm = Llm::load(&path, &burn::tensor::Device::flex()).unwrap();
        let history = vec![
            "Who wrote Dune?".to_string(),
            "Frank Herbert wrote Dune.".to_string(),
        ];
        let count = prompt_length(&llm);
        let (ids, k) =
            question_prompt(&llm, &history, "When was it published?", None, 512, &count).unwrap();
        let fitted = fit_conversation(&history, "When was it published?", None, 512, &count);
        assert_eq!(
            ids,
            llm.chat_ids(&fitted.messages).unwrap(),
            "the prompt is the conversation prompt"
        );
        let tail = llm.tokenizer.decode(&ids[ids.len() - k..]).unwrap();
        // The question's 5 tokens, then "<|im_end|>", "\n", "<|im_start|>", "assistant", "\n".
        assert!(tail.starts_with("When was it published?"), "{tail:?}");
        assert!(
            !tail.contains("Herbert") && !tail.contains("user"),
            "{tail:?}"
        );
        assert!(tail.trim_end().ends_with("assistant"), "{tail:?}");
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
        assert_eq!(first_line("\n  what is X?\nmore"), "what is X?");
    }
}
