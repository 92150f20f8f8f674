//! One conversation at the moment of a search: what every native feature is computed from, in the
//! pipeline (a split's turns) and in the agent (the live conversation) alike.

use nr_data::QreccTurn;

/// The messages so far and the question to search for.
#[derive(Debug, Clone, Copy)]
pub struct Conversation<'a> {
    /// Earlier questions and answers, alternating, oldest first.
    pub history: &'a [String],
    /// The user's current question.
    pub question: &'a str,
}

impl<'a> From<&'a QreccTurn> for Conversation<'a> {
    fn from(turn: &'a QreccTurn) -> Self {
        Conversation {
            history: &turn.context,
            question: &turn.question,
        }
    }
}

/// The conversations of `turns`.
pub fn conversations(turns: &[QreccTurn]) -> Vec<Conversation<'_>> {
    turns.iter().map(Conversation::from).collect()
}
