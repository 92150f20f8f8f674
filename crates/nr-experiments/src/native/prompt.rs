//! Conversations as the LLM reads them: chat prompts fitted to a token budget, the question's tokens
//! inside a prompt, the tokens of each message for the lexicon, and a query as the assistant's reply.

use anyhow::Result;
use nr_backbone::llama::Llm;
use nr_data::{ChatMessage, fit_conversation};
use nr_head::Speaker;

use super::conversation::Conversation;
use super::lexical::LexicalInput;
use super::spec::FeatureSpec;

/// Token ids of each turn's conversation prompt (history, question, generation prompt), the oldest
/// turns dropped to fit `budget` tokens. With `system`, it is the first message.
pub fn conversation_prompts(
    llm: &Llm,
    conversations: &[Conversation],
    system: Option<&str>,
    budget: usize,
) -> Result<Vec<Vec<u32>>> {
    let count = prompt_length(llm);
    conversations
        .iter()
        .map(|c| {
            let fitted = fit_conversation(c.history, c.question, system, budget, &count);
            Ok(llm.chat_ids(&fitted.messages)?)
        })
        .collect()
}

/// The token count of chat messages once rendered by `llm`'s template (`usize::MAX` when they
/// cannot be rendered): what [`fit_conversation`] fits to a budget.
pub fn prompt_length(llm: &Llm) -> impl Fn(&[ChatMessage]) -> usize + '_ {
    |messages: &[ChatMessage]| llm.chat_ids(messages).map_or(usize::MAX, |ids| ids.len())
}

/// The conversation prompt of each conversation (as [`conversation_prompts`]) with how many tokens
/// at its end belong to the current question and the generation prompt after it: the prompt minus
/// its longest common prefix with the same conversation whose question is empty.
pub fn question_prompts(
    llm: &Llm,
    conversations: &[Conversation],
    system: Option<&str>,
    budget: usize,
) -> Result<(Vec<Vec<u32>>, Vec<usize>)> {
    let count = prompt_length(llm);
    conversations
        .iter()
        .map(|c| question_prompt(llm, c.history, c.question, system, budget, &count))
        .collect::<Result<Vec<_>>>()
        .map(|pairs| pairs.into_iter().unzip())
}

/// The prompt of one conversation and how many of its last tokens belong to the current question
/// and the generation prompt (see [`question_prompts`]).
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
    conversations: &[Conversation],
    system: Option<&str>,
    budget: usize,
) -> Result<Vec<LexicalInput>> {
    let count = prompt_length(llm);
    conversations
        .iter()
        .map(|c| lexical_input(llm, c.history, c.question, system, budget, &count))
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

/// The tokens of `query` as the assistant's reply to a rewrite prompt: its text then the
/// end-of-turn token, so the last token has read the whole query.
pub fn query_continuation(llm: &Llm, query: &str) -> Result<Vec<u32>> {
    let mut ids = llm.tokenizer.encode_continuation(query)?;
    ids.extend(llm.tokenizer.end_of_turn_id());
    Ok(ids)
}

impl FeatureSpec {
    /// Conversation prompts (the `context` source, with the spec's system prompt).
    pub fn conversation_prompts(&self, llm: &Llm, c: &[Conversation]) -> Result<Vec<Vec<u32>>> {
        conversation_prompts(
            llm,
            c,
            self.system_prompt.as_deref(),
            self.max_prompt_tokens,
        )
    }

    /// Rewrite prompts (`query_tokens` and generate-then-encode: the rewrite instruction first).
    pub fn rewrite_prompts(&self, llm: &Llm, c: &[Conversation]) -> Result<Vec<Vec<u32>>> {
        conversation_prompts(
            llm,
            c,
            Some(&self.rewrite_instruction),
            self.max_prompt_tokens,
        )
    }

    /// The prompts the head's source reads (conversation or rewrite prompts).
    pub fn source_prompts(&self, llm: &Llm, c: &[Conversation]) -> Result<Vec<Vec<u32>>> {
        match self.source {
            super::HiddenSource::Context => self.conversation_prompts(llm, c),
            super::HiddenSource::QueryTokens => self.rewrite_prompts(llm, c),
        }
    }

    /// What the lexicon reads of each conversation (its messages as fitted to the budget).
    pub fn lexical_inputs(&self, llm: &Llm, c: &[Conversation]) -> Result<Vec<LexicalInput>> {
        lexical_inputs(
            llm,
            c,
            self.system_prompt.as_deref(),
            self.max_prompt_tokens,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
