//! A QReCC conversation as chat messages, for a chat model to read.
//!
//! The context alternates user questions and assistant answers, oldest first; the current question
//! is the last user message; an optional system instruction comes first. When the messages would
//! exceed a token budget, whole earlier turns (a question with its answer) are dropped, oldest
//! first, because the most recent turns are the ones the current question refers to.
//! Token counting is left to the caller (a closure over the model's tokenizer and chat template),
//! so this crate needs no model.

use serde::{Deserialize, Serialize};

/// Role of the system instruction.
pub const ROLE_SYSTEM: &str = "system";
/// Role of the person asking.
pub const ROLE_USER: &str = "user";
/// Role of the answering model.
pub const ROLE_ASSISTANT: &str = "assistant";

/// One chat message; the backbone renders a list of them with the model's chat template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role and text.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// Messages for a conversation: `[system]`, context alternating user/assistant, then the question.
///
/// An odd-length context (a trailing question without an answer) stays a user message.
pub fn conversation_messages(
    context: &[String],
    question: &str,
    system: Option<&str>,
) -> Vec<ChatMessage> {
    let mut messages = Vec::with_capacity(context.len() + 2);
    if let Some(system) = system {
        messages.push(ChatMessage::new(ROLE_SYSTEM, system));
    }
    for (i, text) in context.iter().enumerate() {
        let role = if i % 2 == 0 {
            ROLE_USER
        } else {
            ROLE_ASSISTANT
        };
        messages.push(ChatMessage::new(role, text.as_str()));
    }
    messages.push(ChatMessage::new(ROLE_USER, question));
    messages
}

/// Chat messages that fit a token budget, and what it took to fit them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FittedChat {
    /// The messages to give the model.
    pub messages: Vec<ChatMessage>,
    /// How many earlier turns (question + answer) were dropped, oldest first.
    pub dropped_turns: usize,
    /// Tokens of `messages` as counted by the caller's counter.
    pub tokens: usize,
    /// Whether `tokens <= budget`; false when even the system instruction and the question alone
    /// exceed it (then all history is dropped and the caller decides what to do).
    pub fits: bool,
}

/// Builds the messages of a conversation and drops its oldest turns until they fit `budget` tokens.
///
/// `count_tokens` returns how many tokens a message list takes once rendered (chat template
/// included). It is called once per candidate length, from the full history down.
pub fn fit_conversation(
    context: &[String],
    question: &str,
    system: Option<&str>,
    budget: usize,
    count_tokens: &dyn Fn(&[ChatMessage]) -> usize,
) -> FittedChat {
    let num_turns = context.len().div_ceil(2);
    let mut last = None;
    for dropped in 0..=num_turns {
        let start = (2 * dropped).min(context.len());
        let messages = conversation_messages(&context[start..], question, system);
        let tokens = count_tokens(&messages);
        let fitted = FittedChat {
            messages,
            dropped_turns: dropped,
            tokens,
            fits: tokens <= budget,
        };
        if fitted.fits {
            return fitted;
        }
        last = Some(fitted);
    }
    last.expect("the loop runs at least once")
}
