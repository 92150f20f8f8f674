//! Standalone queries written by the LLM: what generate-then-encode searches with, and what the
//! `query_tokens` head reads.

use anyhow::Result;
use nr_backbone::llama::{GenerateOptions, Llm};

use super::conversation::Conversation;
use super::features::length_sorted_batches;
use super::spec::FeatureSpec;
use crate::progress::progress;

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

/// The first non-empty line of a generated text, trimmed (what generate-then-encode searches with).
pub fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

impl FeatureSpec {
    /// The LLM's standalone query for each conversation: greedy generation after the rewrite
    /// prompt, first line kept.
    pub fn generate_queries(
        &self,
        llm: &Llm,
        conversations: &[Conversation],
        batch: usize,
        show_progress: bool,
    ) -> Result<Vec<String>> {
        let prompts = self.rewrite_prompts(llm, conversations)?;
        generate_rewrites(llm, &prompts, self.max_new_tokens, batch, show_progress)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_query_is_the_first_non_empty_line_trimmed() {
        assert_eq!(super::first_line("\n  what is X?\nmore"), "what is X?");
        assert_eq!(super::first_line(" \n"), "");
    }
}
