//! Standalone turns: each human rewrite as a one-turn conversation of its own.
//!
//! Extra training data for native heads. In a standalone turn the LLM reads the rewrite as the only
//! question, and the target is the teacher's embedding of that same text, so the head sees the
//! mapping from "the LLM read X" to "the teacher embeds X" without the history to resolve. Turns
//! without history are standalone already and are skipped, as are empty and repeated rewrites.

use std::collections::HashSet;

use crate::qrecc::QreccTurn;

/// One standalone turn per distinct rewrite of a turn with history, numbered as conversations
/// `first_conversation_no`, `first_conversation_no + 1`, ... (turn 1 each), with the source
/// `{source}-standalone` and no answer.
pub fn standalone_rewrite_turns(turns: &[QreccTurn], first_conversation_no: u32) -> Vec<QreccTurn> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for turn in turns.iter().filter(|t| !t.context.is_empty()) {
        let rewrite = turn.rewrite.trim();
        if rewrite.is_empty() || !seen.insert(rewrite.to_string()) {
            continue;
        }
        out.push(QreccTurn {
            context: Vec::new(),
            question: rewrite.to_string(),
            rewrite: rewrite.to_string(),
            answer: String::new(),
            answer_url: String::new(),
            conversation_no: first_conversation_no + out.len() as u32,
            turn_no: 1,
            conversation_source: format!("{}-standalone", turn.conversation_source),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(conversation_no: u32, turn_no: u32, context: &[&str], question: &str, rewrite: &str) -> QreccTurn {
        QreccTurn {
            context: context.iter().map(|s| s.to_string()).collect(),
            question: question.into(),
            rewrite: rewrite.into(),
            answer: "an answer".into(),
            answer_url: "http://a".into(),
            conversation_no,
            turn_no,
            conversation_source: "quac".into(),
        }
    }

    #[test]
    fn rewrites_of_turns_with_history_become_one_turn_conversations_once_each() {
        let turns = [
            turn(1, 1, &[], "who wrote dune?", "who wrote dune?"),
            turn(1, 2, &["who wrote dune?", "Frank Herbert."], "when?", " When was Dune written? "),
            turn(2, 2, &["q", "a"], "when was it written?", "When was Dune written?"),
            turn(2, 3, &["q", "a", "q2", "a2"], "and him?", ""),
            turn(3, 2, &["q", "a"], "his sons?", "Did Frank Herbert have sons?"),
        ];
        let out = standalone_rewrite_turns(&turns, 500);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].question, "When was Dune written?");
        assert_eq!(out[0].rewrite, out[0].question);
        assert!(out[0].context.is_empty() && out[0].answer.is_empty());
        assert_eq!((out[0].id(), out[1].id()), ("500_1".to_string(), "501_1".to_string()));
        assert_eq!(out[1].question, "Did Frank Herbert have sons?");
        assert_eq!(out[1].conversation_source, "quac-standalone");
    }
}
