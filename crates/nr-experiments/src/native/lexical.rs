//! The lexical part of a native encoder at query time: the lexicon's vector of a conversation
//! (`nr_head::Lexicon`), mixed with the dense head's vector.

use anyhow::Result;
use nr_head::{ConversationWeights, LexicalMix, Lexicon, Speaker, mix};
use rayon::prelude::*;

/// What the lexicon reads of one conversation: the LLM's tokens of the current question and of
/// each earlier message (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalInput {
    pub question: Vec<u32>,
    pub history: Vec<(Speaker, Vec<u32>)>,
}

/// Unnormalised lexical vectors `[n, dim]` of conversations.
pub fn lexical_vectors(
    lexicon: &Lexicon,
    inputs: &[LexicalInput],
    weights: &ConversationWeights,
) -> Result<Vec<f32>> {
    let rows = inputs
        .par_iter()
        .map(|x| lexicon.conversation(&x.question, &x.history, weights))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.concat())
}

/// The native query vectors `[n, dim]`: each conversation's lexical vector mixed with its dense
/// head vector (`dense`, `[n, dim]`, when the head has one) as `mix` says.
pub fn native_vectors(
    lexicon: &Lexicon,
    inputs: &[LexicalInput],
    dense: Option<&[f32]>,
    how: &LexicalMix,
) -> Result<Vec<f32>> {
    let lexical = lexical_vectors(lexicon, inputs, &how.conversation)?;
    let dim = lexicon.dim;
    Ok(lexical
        .chunks(dim)
        .enumerate()
        .flat_map(|(i, l)| {
            mix(
                l,
                dense.map(|d| &d[i * dim..(i + 1) * dim]),
                how.dense_weight,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_vectors_mix_each_row_with_its_dense_vector() {
        let lex = Lexicon::new(2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        let inputs = vec![
            LexicalInput {
                question: vec![0],
                history: vec![],
            },
            LexicalInput {
                question: vec![1],
                history: vec![(Speaker::Assistant, vec![0])],
            },
        ];
        let how = LexicalMix {
            conversation: ConversationWeights {
                user: 0.0,
                assistant: 1.0,
                decay: 1.0,
            },
            dense_weight: 0.0,
        };
        let v = native_vectors(&lex, &inputs, Some(&[0.0, 1.0, 0.0, 1.0]), &how).unwrap();
        let s = 0.5f32.sqrt();
        assert_eq!(&v[..2], &[1.0, 0.0]);
        assert!((v[2] - s).abs() < 1e-6 && (v[3] - s).abs() < 1e-6, "{v:?}");
    }
}
