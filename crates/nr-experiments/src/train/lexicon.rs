//! Learning the lexical part of a native head ([`nr_head::Lexicon`]) without labels.
//!
//! 1. Start: each token's text through the teacher, rows made unit length, then the rows' mean and
//!    their first principal direction removed ([`initial_table`]): a teacher embedding of a lone
//!    word-piece is mostly the direction shared by every short text, which would otherwise swamp
//!    the sum over a conversation.
//! 2. Token weights `a / (a + p(token))` from the tokens' frequency in the training texts
//!    ([`token_weights`], the smooth inverse frequency of Arora et al.), so frequent tokens count
//!    less.
//! 3. Fit ([`fit_table`]): for texts with teacher embeddings (passages of the collection, training
//!    rewrites) the weighted sum of the texts' rows should point where the teacher puts the text;
//!    cosine loss, lazy Adam on the rows a batch touches.
//! 4. The weights are folded into the rows ([`fold_weights`]), so the head only sums rows.
//!
//! Deterministic for a seed: the batch order comes from it, and gradients are summed in text order
//! whatever the number of threads.

use anyhow::{Result, ensure};
use nr_head::{ConversationWeights, LexicalMix, unit};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

/// Settings of [`fit_table`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub epochs: usize,
    pub lr: f32,
    pub batch_size: usize,
    pub seed: u64,
}

/// The starting table from teacher embeddings of every token's text (`[vocab, dim]`): unit rows,
/// centred, with their first principal direction projected out.
pub fn initial_table(mut rows: Vec<f32>, dim: usize) -> Vec<f32> {
    rows.par_chunks_mut(dim).for_each(|r| {
        let u = unit(r.to_vec());
        r.copy_from_slice(&u);
    });
    let n = (rows.len() / dim).max(1);
    let mut mean = vec![0.0f64; dim];
    for r in rows.chunks(dim) {
        mean.iter_mut()
            .zip(r)
            .for_each(|(m, &v)| *m += v as f64 / n as f64);
    }
    rows.par_chunks_mut(dim)
        .for_each(|r| r.iter_mut().zip(&mean).for_each(|(v, m)| *v -= *m as f32));
    let top = top_direction(&rows, dim);
    rows.par_chunks_mut(dim).for_each(|r| {
        let d: f64 = r.iter().zip(&top).map(|(&a, &b)| a as f64 * b).sum();
        r.iter_mut()
            .zip(&top)
            .for_each(|(v, t)| *v -= (d * t) as f32);
    });
    rows
}

/// The unit eigenvector of the largest eigenvalue of `rows^T rows` (power iteration from a fixed
/// start, so the result is deterministic).
fn top_direction(rows: &[f32], dim: usize) -> Vec<f64> {
    let mut gram = vec![0.0f64; dim * dim];
    gram.par_chunks_mut(dim).enumerate().for_each(|(i, out)| {
        for r in rows.chunks(dim) {
            let a = r[i] as f64;
            out.iter_mut().zip(r).for_each(|(o, &b)| *o += a * b as f64);
        }
    });
    let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + (i as f64) * 1e-3).collect();
    for _ in 0..200 {
        let mut next: Vec<f64> = gram
            .chunks(dim)
            .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
            .collect();
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
        next.iter_mut().for_each(|x| *x /= norm);
        v = next;
    }
    v
}

/// `a / (a + p(t))` per token `t` of a `vocab`-sized vocabulary, `p` the token's share of all
/// tokens in `texts` (an unseen token gets weight 1).
pub fn token_weights(texts: &[Vec<u32>], vocab: usize, a: f64) -> Vec<f32> {
    let mut counts = vec![0u64; vocab];
    for t in texts.iter().flatten() {
        counts[*t as usize] += 1;
    }
    let total = counts.iter().sum::<u64>().max(1) as f64;
    counts
        .iter()
        .map(|&c| (a / (a + c as f64 / total)) as f32)
        .collect()
}

/// Fits the table so that, for every text `i`, `sum_t weights[t] * table[t]` over its tokens has a
/// high cosine with `targets[i]` (unit vectors, `[texts, dim]`). Returns the table and the mean
/// training cosine of each epoch.
pub fn fit_table(
    init: &[f32],
    weights: &[f32],
    texts: &[Vec<u32>],
    targets: &[f32],
    dim: usize,
    opts: &FitOptions,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<(Vec<f32>, Vec<f64>)> {
    ensure!(
        targets.len() == texts.len() * dim,
        "{} texts but {} target values of width {dim}",
        texts.len(),
        targets.len()
    );
    ensure!(
        opts.batch_size > 0 && opts.lr > 0.0,
        "lexicon: batch_size and lr must be positive"
    );
    let vocab = init.len() / dim;
    ensure!(
        weights.len() == vocab,
        "{} token weights for a vocabulary of {vocab}",
        weights.len()
    );
    ensure!(
        texts.iter().flatten().all(|&t| (t as usize) < vocab),
        "a training text has a token id beyond the vocabulary of {vocab}"
    );
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut table = init.to_vec();
    let (mut m, mut v) = (vec![0.0f32; table.len()], vec![0.0f32; table.len()]);
    // Which slot of the batch gradient a row uses (usize::MAX: not in this batch).
    let mut slot = vec![usize::MAX; vocab];
    let mut step = 0i32;
    let mut history = Vec::with_capacity(opts.epochs);
    for epoch in 0..opts.epochs {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            opts.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9),
        ));
        let mut cos_sum = 0.0f64;
        for batch in order.chunks(opts.batch_size) {
            // Per text: the gradient of -cos with respect to its weighted sum, and its cosine.
            let per_text: Vec<(Vec<f32>, f64)> = batch
                .par_iter()
                .map(|&i| {
                    let mut p = vec![0.0f32; dim];
                    for &t in &texts[i] {
                        let w = weights[t as usize];
                        p.iter_mut()
                            .zip(&table[t as usize * dim..][..dim])
                            .for_each(|(o, x)| *o += w * x);
                    }
                    let y = &targets[i * dim..(i + 1) * dim];
                    let norm = p.iter().map(|x| x * x).sum::<f32>().sqrt() + 1e-9;
                    let c = p.iter().zip(y).map(|(a, b)| a * b).sum::<f32>() / norm;
                    let scale = 1.0 / batch.len() as f32;
                    let g = p
                        .iter()
                        .zip(y)
                        .map(|(pv, yv)| -(yv / norm - c * pv / (norm * norm)) * scale)
                        .collect();
                    (g, c as f64)
                })
                .collect();
            let mut rows: Vec<u32> = Vec::new();
            let mut grad: Vec<f32> = Vec::new();
            for (&i, (g, c)) in batch.iter().zip(&per_text) {
                cos_sum += c;
                for &t in &texts[i] {
                    let s = &mut slot[t as usize];
                    if *s == usize::MAX {
                        *s = rows.len();
                        rows.push(t);
                        grad.extend(std::iter::repeat_n(0.0, dim));
                    }
                    let w = weights[t as usize];
                    grad[*s * dim..(*s + 1) * dim]
                        .iter_mut()
                        .zip(g)
                        .for_each(|(o, x)| *o += w * x);
                }
            }
            step += 1;
            let (c1, c2) = (1.0 - b1.powi(step), 1.0 - b2.powi(step));
            for (k, &t) in rows.iter().enumerate() {
                slot[t as usize] = usize::MAX;
                let at = t as usize * dim;
                let g = &grad[k * dim..(k + 1) * dim];
                for j in 0..dim {
                    let (mj, vj) = (&mut m[at + j], &mut v[at + j]);
                    *mj = b1 * *mj + (1.0 - b1) * g[j];
                    *vj = b2 * *vj + (1.0 - b2) * g[j] * g[j];
                    table[at + j] -= opts.lr * (*mj / c1) / ((*vj / c2).sqrt() + eps);
                }
            }
        }
        let mean = cos_sum / texts.len().max(1) as f64;
        on_epoch(epoch, mean);
        history.push(mean);
    }
    Ok((table, history))
}

/// Multiplies each row by its token's weight: the lexicon then only sums rows.
pub fn fold_weights(mut table: Vec<f32>, weights: &[f32], dim: usize) -> Vec<f32> {
    table
        .par_chunks_mut(dim)
        .zip(weights)
        .for_each(|(r, &w)| r.iter_mut().for_each(|x| *x *= w));
    table
}

/// Every combination of the candidate weights, in grid order (user, assistant, decay, dense).
pub fn mix_grid(
    users: &[f32],
    assistants: &[f32],
    decays: &[f32],
    dense: &[f32],
) -> Vec<LexicalMix> {
    let mut out = Vec::new();
    for &user in users {
        for &assistant in assistants {
            for &decay in decays {
                for &dense_weight in dense {
                    out.push(LexicalMix {
                        conversation: ConversationWeights {
                            user,
                            assistant,
                            decay,
                        },
                        dense_weight,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_weights_are_smooth_inverse_frequencies() {
        // Token 0: 3 of 4 tokens, token 1: 1 of 4, token 2 unseen.
        let w = token_weights(&[vec![0, 0, 1], vec![0]], 3, 0.25);
        let expected = [0.25 / (0.25 + 0.75), 0.25 / (0.25 + 0.25), 1.0];
        for (a, b) in w.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn initial_table_is_centred_and_orthogonal_to_its_main_direction() {
        // Unit rows (+-0.949, 0, 0.316) and (0, +-0.707, 0.707): centred, their covariance is
        // diagonal with the largest variance along x. After the step the mean is zero, the x
        // direction is gone and y is untouched.
        let rows = vec![3.0, 0.0, 1.0, -3.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, -1.0, 1.0];
        let t = initial_table(rows, 3);
        for c in 0..3 {
            let mean: f32 = t.chunks(3).map(|r| r[c]).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6, "column {c} mean {mean}");
        }
        assert!(t.chunks(3).all(|r| r[0].abs() < 1e-5), "{t:?}");
        let y = 0.5f32.sqrt();
        assert!((t[7] - y).abs() < 1e-5 && (t[10] + y).abs() < 1e-5, "{t:?}");
    }

    #[test]
    fn fitting_recovers_a_table_that_explains_the_targets() {
        // Targets made by a known table over texts of 1-3 tokens; the fit from a random start must
        // reach near-perfect cosines, and a second run with the same seed gives the same table.
        let (vocab, dim) = (12usize, 4usize);
        let mut rng = StdRng::seed_from_u64(3);
        use rand::Rng;
        let truth: Vec<f32> = (0..vocab * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let texts: Vec<Vec<u32>> = (0..300)
            .map(|_| {
                (0..rng.random_range(1..4))
                    .map(|_| rng.random_range(0..vocab as u32))
                    .collect()
            })
            .collect();
        let weights = vec![1.0f32; vocab];
        let targets: Vec<f32> = texts
            .iter()
            .flat_map(|t| {
                let mut s = vec![0.0; dim];
                for &x in t {
                    s.iter_mut()
                        .zip(&truth[x as usize * dim..][..dim])
                        .for_each(|(o, v)| *o += v);
                }
                unit(s)
            })
            .collect();
        let init: Vec<f32> = (0..vocab * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let opts = FitOptions {
            epochs: 60,
            lr: 0.05,
            batch_size: 16,
            seed: 1,
        };
        let (table, history) =
            fit_table(&init, &weights, &texts, &targets, dim, &opts, |_, _| {}).unwrap();
        assert!(
            history[0] < 0.9,
            "the start is not already a fit: {}",
            history[0]
        );
        assert!(
            *history.last().unwrap() > 0.99,
            "mean cosine after fitting: {history:?}"
        );
        let (again, _) =
            fit_table(&init, &weights, &texts, &targets, dim, &opts, |_, _| {}).unwrap();
        assert_eq!(table, again);
        let bad = fit_table(
            &init,
            &weights,
            &[vec![12]],
            &targets[..dim],
            dim,
            &opts,
            |_, _| {},
        )
        .unwrap_err();
        assert!(bad.to_string().contains("beyond the vocabulary"), "{bad}");
    }

    #[test]
    fn the_mix_grid_holds_every_combination() {
        assert_eq!(mix_grid(&[0.1, 0.2], &[1.0], &[0.5], &[0.0, 1.0]).len(), 4);
    }
}
