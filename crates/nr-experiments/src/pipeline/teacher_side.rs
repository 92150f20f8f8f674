//! The teacher side: the passage index and teacher encodings of query texts, both cached.

use anyhow::Result;
use nr_backbone::teacher::TeacherEncoder;
use nr_data::{CacheKeyBuilder, Passage, QreccTurn, TensorCache};

use super::cached;
use crate::vectors::Vectors;

/// The teacher with what its cached outputs depend on.
pub struct Teacher {
    pub encoder: TeacherEncoder,
    /// SHA-256 of the weights file: part of every cache key.
    pub weights_hash: String,
    pub batch_size: usize,
}

impl Teacher {
    fn key(&self, kind: &str) -> CacheKeyBuilder {
        CacheKeyBuilder::new(kind)
            .model_hash(&self.weights_hash)
            .setting("max_seq_len", self.encoder.max_seq_len())
    }

    /// `name` when the teacher folder defines such a prompt (e5's "query: " / "passage: "), else none.
    fn prompt_name<'a>(&self, name: &'a str) -> Option<&'a str> {
        self.encoder.prompt(Some(name)).is_ok().then_some(name)
    }

    /// Embeddings of every passage (the search index).
    pub fn passage_index(
        &self,
        passages: &[Passage],
        cache: &TensorCache,
        force: bool,
    ) -> Result<Vectors> {
        let key = self
            .key("teacher-passages")
            .inputs(
                passages
                    .iter()
                    .flat_map(|p| [p.id.as_str(), p.contents.as_str()]),
            )
            .finish();
        let ids: Vec<String> = passages.iter().map(|p| p.id.clone()).collect();
        cached::vectors(cache, &key, force, &ids, || {
            tracing::info!("encoding {} passages with the teacher", passages.len());
            let texts: Vec<&str> = passages.iter().map(|p| p.contents.as_str()).collect();
            let rows = self.encoder.encode_many_with_prompt(
                &texts,
                self.prompt_name("passage"),
                self.batch_size,
                true,
            )?;
            Ok((self.encoder.dim(), rows.concat()))
        })
    }

    /// Teacher embeddings of query texts, one per id.
    pub fn queries(
        &self,
        ids: &[String],
        texts: &[String],
        cache: &TensorCache,
        force: bool,
    ) -> Result<Vectors> {
        let key = self
            .key("teacher-queries")
            .inputs(texts.iter().map(String::as_str))
            .finish();
        cached::vectors(cache, &key, force, ids, || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let rows = self.encoder.encode_many_with_prompt(
                &refs,
                self.prompt_name("query"),
                self.batch_size,
                false,
            )?;
            Ok((self.encoder.dim(), rows.concat()))
        })
    }
}

/// The question and its history as one text for the teacher: the question first, then earlier
/// turns from the most recent back, so truncation at the teacher's length limit drops the oldest.
pub fn context_question_text(turn: &QreccTurn) -> String {
    let mut parts = vec![turn.question.as_str()];
    parts.extend(turn.context.iter().rev().map(String::as_str));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_question_puts_the_question_first_and_history_newest_first() {
        let turn = QreccTurn {
            context: vec!["q1".into(), "a1".into(), "q2".into(), "a2".into()],
            question: "q3".into(),
            rewrite: String::new(),
            answer: String::new(),
            answer_url: String::new(),
            conversation_no: 1,
            turn_no: 3,
            conversation_source: "trec".into(),
        };
        assert_eq!(context_question_text(&turn), "q3 a2 q2 a1 q1");
    }
}
