//! The lexical part of a native head: one vector in the teacher's space for every token of the LLM's
//! vocabulary, summed over the messages of the conversation the LLM is reading.
//!
//! The LLM's layer-0 hidden state of a token is its embedding row, one per vocabulary entry, so any
//! function of that state is a table indexed by token id; the [`Lexicon`] stores that function as
//! the table itself. It is learnt without labels (`nr-experiments`: each token's text through the
//! teacher, then fitted so that the sum over a text's tokens points where the teacher puts the
//! text), and it carries what a bag of tokens can: which words a conversation is about. The dense
//! head on the deeper layers adds what the conversation means; [`mix`] adds the two.
//!
//! A conversation's lexical vector is `sum_m w_m * unit(sum_{t in m} table[t])` over its messages
//! `m`: weight 1 for the current question, [`ConversationWeights::user`] or
//! [`ConversationWeights::assistant`] for earlier messages, times [`ConversationWeights::decay`] per
//! turn of age.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::meta::HeadMeta;
use crate::persist::{with_suffix, write_atomic};
use crate::pooling::NORM_EPS;

/// The `format` value in a lexicon file's metadata.
pub const LEXICON_FORMAT: &str = "nr-lexicon";
/// The lexicon file layout this crate writes and reads.
pub const LEXICON_VERSION: u32 = 1;

/// Who wrote a message of the conversation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    User,
    Assistant,
}

/// Weights of the history's messages relative to the current question (weight 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationWeights {
    /// Earlier user questions.
    pub user: f32,
    /// Earlier assistant answers.
    pub assistant: f32,
    /// Factor per turn of age: the latest question-answer pair has age 1 (factor 1), the one
    /// before it age 2 (factor `decay`), and so on.
    pub decay: f32,
}

/// How a native query vector is made from the lexicon and the dense head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LexicalMix {
    pub conversation: ConversationWeights,
    /// Weight of the dense head's unit vector added to the lexicon's unit vector (0 = lexicon only).
    pub dense_weight: f32,
}

/// Everything stored beside the table: its shape, how to use it, and which models it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LexiconSidecar {
    /// Always [`LEXICON_FORMAT`].
    pub format: String,
    /// [`LEXICON_VERSION`] at the time of writing.
    pub version: u32,
    pub vocab: usize,
    pub dim: usize,
    pub mix: LexicalMix,
    pub meta: HeadMeta,
}

/// A vector in the teacher's space per LLM token (row-major `[vocab, dim]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Lexicon {
    pub dim: usize,
    pub table: Vec<f32>,
}

impl Lexicon {
    /// A lexicon from its table; `table.len()` must be a multiple of `dim`.
    pub fn new(dim: usize, table: Vec<f32>) -> Result<Self, HeadError> {
        if dim == 0 || !table.len().is_multiple_of(dim) {
            return Err(HeadError::config(
                "lexicon",
                format!("{} values do not make rows of {dim}", table.len()),
            ));
        }
        Ok(Self { dim, table })
    }

    /// Tokens in the vocabulary.
    pub fn vocab(&self) -> usize {
        self.table.len() / self.dim
    }

    /// The row of token `id`.
    pub fn row(&self, id: u32) -> &[f32] {
        &self.table[id as usize * self.dim..(id as usize + 1) * self.dim]
    }

    /// Sum of the rows of `ids` (zeros for no ids); an id outside the vocabulary is an error.
    pub fn sum(&self, ids: &[u32]) -> Result<Vec<f32>, HeadError> {
        let mut out = vec![0.0; self.dim];
        for &id in ids {
            if id as usize >= self.vocab() {
                return Err(HeadError::Input {
                    tensor: "token ids",
                    found: vec![id as usize],
                    expected: format!("ids below the lexicon's vocabulary of {}", self.vocab()),
                });
            }
            out.iter_mut().zip(self.row(id)).for_each(|(o, v)| *o += v);
        }
        Ok(out)
    }

    /// The lexical vector of a conversation (not normalised): the current question's tokens and the
    /// history's messages, oldest first, weighted as the module documentation says. Empty messages
    /// add nothing.
    pub fn conversation(
        &self,
        question: &[u32],
        history: &[(Speaker, Vec<u32>)],
        weights: &ConversationWeights,
    ) -> Result<Vec<f32>, HeadError> {
        let mut out = unit(self.sum(question)?);
        let speakers: Vec<Speaker> = history.iter().map(|(s, _)| *s).collect();
        for ((_, ids), w) in history.iter().zip(history_weights(&speakers, weights)) {
            if w != 0.0 && !ids.is_empty() {
                let m = unit(self.sum(ids)?);
                out.iter_mut().zip(&m).for_each(|(o, v)| *o += w * v);
            }
        }
        Ok(out)
    }

    /// Rounds every value to the nearest f16, as [`Lexicon::save`] stores it, so that a table in
    /// memory and the same table read back give the same vectors.
    pub fn round_to_f16(&mut self) {
        self.table
            .iter_mut()
            .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
    }

    /// Writes `<stem>.lexicon.safetensors` (the table as f16, the sidecar as JSON in the file's
    /// metadata) atomically.
    pub fn save(&self, stem: &Path, mix: &LexicalMix, meta: &HeadMeta) -> Result<(), HeadError> {
        let path = lexicon_path(stem);
        let sidecar = LexiconSidecar {
            format: LEXICON_FORMAT.into(),
            version: LEXICON_VERSION,
            vocab: self.vocab(),
            dim: self.dim,
            mix: *mix,
            meta: meta.clone(),
        };
        let bytes: Vec<u8> = self
            .table
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let view = TensorView::new(Dtype::F16, vec![self.vocab(), self.dim], &bytes)
            .map_err(|e| HeadError::malformed(&path, e.to_string()))?;
        let json = serde_json::to_string(&sidecar)
            .map_err(|e| HeadError::malformed(&path, e.to_string()))?;
        let metadata = HashMap::from([("nr".to_string(), json)]);
        let data = safetensors::serialize([("table", view)], Some(metadata))
            .map_err(|e| HeadError::malformed(&path, e.to_string()))?;
        write_atomic(&path, &data)
    }

    /// Reads `<stem>.lexicon.safetensors`; it must belong to `expected` (same LLM, layers, teacher).
    pub fn load(stem: &Path, expected: &HeadMeta) -> Result<(Self, LexicalMix), HeadError> {
        let path = lexicon_path(stem);
        let bytes = std::fs::read(&path).map_err(|e| HeadError::io(&path, e))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| HeadError::malformed(&path, format!("not a safetensors file: {e}")))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("nr"))
            .ok_or_else(|| {
                HeadError::malformed(&path, "metadata 'nr' (the lexicon sidecar) is missing")
            })?;
        let sidecar: LexiconSidecar = serde_json::from_str(json)
            .map_err(|e| HeadError::malformed(&path, format!("metadata 'nr': {e}")))?;
        if sidecar.format != LEXICON_FORMAT || sidecar.version != LEXICON_VERSION {
            return Err(HeadError::malformed(
                &path,
                format!(
                    "format {} version {}, this build reads {LEXICON_FORMAT} version {LEXICON_VERSION}",
                    sidecar.format, sidecar.version
                ),
            ));
        }
        sidecar.meta.check_matches(expected, &path)?;
        if sidecar.dim != sidecar.meta.teacher.dim {
            return Err(HeadError::malformed(
                &path,
                format!(
                    "dim is {} but the teacher's vectors have {}",
                    sidecar.dim, sidecar.meta.teacher.dim
                ),
            ));
        }
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| HeadError::malformed(&path, e.to_string()))?;
        let table = tensors
            .tensor("table")
            .map_err(|e| HeadError::malformed(&path, format!("tensor 'table': {e}")))?;
        if table.dtype() != Dtype::F16 || table.shape() != [sidecar.vocab, sidecar.dim] {
            return Err(HeadError::malformed(
                &path,
                format!(
                    "tensor 'table' is {:?} {:?}, the sidecar says F16 [{}, {}]",
                    table.dtype(),
                    table.shape(),
                    sidecar.vocab,
                    sidecar.dim
                ),
            ));
        }
        let values = table
            .data()
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        Ok((Self::new(sidecar.dim, values)?, sidecar.mix))
    }
}

/// `<stem>.lexicon.safetensors`.
pub fn lexicon_path(stem: &Path) -> PathBuf {
    with_suffix(stem, ".lexicon.safetensors")
}

/// The weight of each history message (oldest first): the speaker's weight times `decay` to the
/// power of the turn's age minus one, where a message's age is 1 plus the number of user messages
/// after it.
pub fn history_weights(speakers: &[Speaker], weights: &ConversationWeights) -> Vec<f32> {
    let mut later_user = 0;
    let mut out = vec![0.0; speakers.len()];
    for (i, s) in speakers.iter().enumerate().rev() {
        let base = match s {
            Speaker::User => weights.user,
            Speaker::Assistant => weights.assistant,
        };
        out[i] = base * weights.decay.powi(later_user);
        if *s == Speaker::User {
            later_user += 1;
        }
    }
    out
}

/// The native query vector: `unit(unit(lexical) + dense_weight * unit(dense))`, or the lexical
/// vector alone (normalised) without a dense one.
pub fn mix(lexical: &[f32], dense: Option<&[f32]>, dense_weight: f32) -> Vec<f32> {
    let mut out = unit(lexical.to_vec());
    if let Some(d) = dense {
        let d = unit(d.to_vec());
        out.iter_mut()
            .zip(&d)
            .for_each(|(o, v)| *o += dense_weight * v);
    }
    unit(out)
}

/// `v / max(|v|, NORM_EPS)`.
pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(NORM_EPS as f32);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: ConversationWeights = ConversationWeights {
        user: 0.5,
        assistant: 2.0,
        decay: 0.1,
    };

    #[test]
    fn history_weights_follow_speaker_and_age() {
        use Speaker::*;
        // q1 a1 q2 a2: the last pair has age 1, the first age 2.
        let w = history_weights(&[User, Assistant, User, Assistant], &W);
        let expected = [0.05, 0.2, 0.5, 2.0];
        for (a, b) in w.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        // A trailing question without its answer is the latest turn.
        assert_eq!(history_weights(&[User], &W), vec![0.5]);
    }

    #[test]
    fn conversation_vector_is_the_weighted_sum_of_unit_message_sums() {
        // vocab 3, dim 2.
        let lex = Lexicon::new(2, vec![3.0, 0.0, 0.0, 1.0, 0.0, 3.0]).unwrap();
        let history = vec![(Speaker::User, vec![1, 2]), (Speaker::Assistant, vec![0])];
        let v = lex.conversation(&[0, 0], &history, &W).unwrap();
        // question: unit([6, 0]) = [1, 0]; user: 0.5 * unit([0, 4]) = [0, 0.5]; assistant: 2 * [1, 0].
        assert_eq!(v, vec![3.0, 0.5]);
        let err = lex.sum(&[3]).unwrap_err().to_string();
        assert!(err.contains("vocabulary of 3"), "{err}");
    }

    #[test]
    fn mix_adds_unit_vectors_then_normalises() {
        let v = mix(&[2.0, 0.0], Some(&[0.0, 5.0]), 1.0);
        let s = 0.5f32.sqrt();
        assert!((v[0] - s).abs() < 1e-6 && (v[1] - s).abs() < 1e-6, "{v:?}");
        assert_eq!(mix(&[0.0, 3.0], None, 1.0), vec![0.0, 1.0]);
    }
}
