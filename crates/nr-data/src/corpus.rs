//! Answers-as-passages benchmark built from QReCC turns alone.
//!
//! Users with only the official QReCC JSON have no passage collection small enough to search on a
//! laptop. This builder turns the answers themselves into passages, the way
//! `shared/data/qrecc-offline` was made: each answer text (whitespace-normalised as Python's
//! `" ".join(text.split())`) becomes a passage with id `a` + the first 12 hex digits
//! of the SHA-1 of that text; answers shorter than [`MIN_ANSWER_CHARS`] characters are dropped; each
//! turn whose own answer survives gets one qrels line `turn_id 0 passage_id 1`, in turn order.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::collection::Passage;
use crate::qrecc::QreccTurn;
use crate::qrels::Qrels;

/// Answers shorter than this many characters (after normalisation) are not passages and their
/// turns are not scored: "Yes", "No" or "I don't know" say nothing a retriever could find.
pub const MIN_ANSWER_CHARS: usize = 20;

/// Collapses runs of whitespace into one space and trims the ends, exactly like Python's
/// `" ".join(text.split())` (Unicode whitespace plus the separators U+001C..U+001F).
pub fn normalize_whitespace(text: &str) -> String {
    text.split(is_python_whitespace)
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Python's `str.isspace` for one character: Unicode White_Space plus U+001C..U+001F.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The passage id of an answer (`a` + 12 hex of SHA-1 of the normalised text), or `None` when the
/// normalised answer is shorter than [`MIN_ANSWER_CHARS`].
pub fn answer_passage_id(answer: &str) -> Option<String> {
    let normalized = normalize_whitespace(answer);
    (normalized.chars().count() >= MIN_ANSWER_CHARS).then(|| id_of_normalized(&normalized))
}

fn id_of_normalized(normalized: &str) -> String {
    let digest = Sha1::digest(normalized.as_bytes());
    format!("a{}", &hex::encode(digest)[..12])
}

/// A collection of answer passages and the qrels that point each scorable turn at its answer.
#[derive(Clone, Debug, Default)]
pub struct AnswerCorpus {
    /// Distinct answer passages, sorted by id.
    pub passages: Vec<Passage>,
    /// One judgment per turn whose answer is a passage, in turn order.
    pub qrels: Qrels,
}

/// Which answers become passages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerSources {
    /// Only each turn's own `Answer`.
    TurnAnswers,
    /// Each turn's `Answer` and the earlier answers in its `Context` (more distractors; this is
    /// how the offline collection gathered "every distinct answer text we have").
    TurnAndContextAnswers,
}

impl AnswerCorpus {
    /// Builds passages from `passage_turns` and qrels for `judged_turns`.
    ///
    /// Passages may come from more turns than are judged (e.g. all splits as distractors, qrels for
    /// the test split only). A judged turn's answer is always added as a passage.
    pub fn build(
        passage_turns: &[QreccTurn],
        judged_turns: &[QreccTurn],
        sources: AnswerSources,
    ) -> Self {
        let mut passages: BTreeMap<String, String> = BTreeMap::new();
        let mut add = |answer: &str| -> Option<String> {
            let normalized = normalize_whitespace(answer);
            if normalized.chars().count() < MIN_ANSWER_CHARS {
                return None;
            }
            let id = id_of_normalized(&normalized);
            passages.entry(id.clone()).or_insert(normalized);
            Some(id)
        };
        for turn in passage_turns {
            add(&turn.answer);
            if sources == AnswerSources::TurnAndContextAnswers {
                // Context alternates question, answer: answers sit at odd positions.
                for answer in turn.context.iter().skip(1).step_by(2) {
                    add(answer);
                }
            }
        }
        let mut qrels = Qrels::new();
        for turn in judged_turns {
            let Some(id) = add(&turn.answer) else {
                continue;
            };
            // Turn ids are unique within a checked QReCC file; a repeat across files keeps the
            // first judgment.
            let turn_id = turn.id();
            if qrels.get(&turn_id).is_none() {
                qrels
                    .add(&turn_id, &id, 1)
                    .expect("a query seen for the first time has no judgment yet");
            }
        }
        AnswerCorpus {
            passages: passages
                .into_iter()
                .map(|(id, contents)| Passage { id, contents })
                .collect(),
            qrels,
        }
    }
}
