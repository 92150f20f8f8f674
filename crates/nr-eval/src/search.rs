//! Exact maximum-inner-product search.
//!
//! Queries are split into blocks (one per rayon task) and passages into blocks of
//! [`PASSAGE_BLOCK`] rows; each (query block, passage block) score matrix is one gemm call, folded
//! into per-query top-k lists before the next passage block. Memory is
//! `QUERY_BLOCK x PASSAGE_BLOCK` floats per thread, whatever the collection size.
//!
//! Ties: higher score first; equal scores rank the passage that comes first in the collection
//! (lower index) first. The result is therefore deterministic and independent of the blocking.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::EvalError;

/// Passages scored per gemm call.
pub const PASSAGE_BLOCK: usize = 8192;
/// Queries per rayon task.
pub const QUERY_BLOCK: usize = 128;

/// A candidate in a top-k heap, ordered so the heap's top is the *worst* kept candidate.
#[derive(Clone, Copy, PartialEq)]
struct Worst(f32, usize);

impl Eq for Worst {}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        // Worse = lower score, or equal score and higher index.
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` passages with the largest inner product for each query: `(passage index, score)`, best
/// first. `queries` is `[n_queries, dim]` and `passages` `[n_passages, dim]`, both row-major.
pub fn exact_search(queries: &[f32], passages: &[f32], dim: usize, k: usize) -> Result<Vec<Vec<(usize, f32)>>, EvalError> {
    if dim == 0 || queries.len() % dim != 0 || passages.len() % dim != 0 {
        return Err(EvalError::Shape(format!(
            "search: {} query and {} passage floats are not multiples of dim {dim}",
            queries.len(),
            passages.len()
        )));
    }
    let n_passages = passages.len() / dim;
    let k = k.min(n_passages);
    let results: Vec<Vec<Vec<(usize, f32)>>> = queries
        .par_chunks(QUERY_BLOCK * dim)
        .map(|qblock| search_block(qblock, passages, dim, k))
        .collect();
    Ok(results.into_iter().flatten().collect())
}

fn search_block(qblock: &[f32], passages: &[f32], dim: usize, k: usize) -> Vec<Vec<(usize, f32)>> {
    let mq = qblock.len() / dim;
    let n_passages = passages.len() / dim;
    let mut heaps: Vec<BinaryHeap<Worst>> = (0..mq).map(|_| BinaryHeap::with_capacity(k + 1)).collect();
    let mut scores = vec![0.0f32; mq * PASSAGE_BLOCK.min(n_passages.max(1))];
    for start in (0..n_passages).step_by(PASSAGE_BLOCK) {
        let np = PASSAGE_BLOCK.min(n_passages - start);
        let pblock = &passages[start * dim..(start + np) * dim];
        // SAFETY: every pointer and stride describes a buffer of the stated shape:
        // dst [mq, np] row-major, lhs [mq, dim] row-major, rhs = pblock^T [dim, np].
        unsafe {
            gemm::gemm(
                mq,
                np,
                dim,
                scores.as_mut_ptr(),
                1,
                np as isize,
                false,
                qblock.as_ptr(),
                1,
                dim as isize,
                pblock.as_ptr(),
                dim as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for (q, heap) in heaps.iter_mut().enumerate() {
            for (j, &s) in scores[q * np..(q + 1) * np].iter().enumerate() {
                let cand = Worst(s, start + j);
                if heap.len() < k {
                    heap.push(cand);
                } else if k > 0 && cand < *heap.peek().unwrap() {
                    heap.pop();
                    heap.push(cand);
                }
            }
        }
    }
    heaps
        .into_iter()
        .map(|h| h.into_sorted_vec().into_iter().map(|Worst(s, i)| (i, s)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: every score, sorted by (score desc, index asc).
    fn brute(queries: &[f32], passages: &[f32], dim: usize, k: usize) -> Vec<Vec<(usize, f32)>> {
        queries
            .chunks(dim)
            .map(|q| {
                let mut all: Vec<(usize, f32)> = passages
                    .chunks(dim)
                    .enumerate()
                    .map(|(i, p)| (i, q.iter().zip(p).map(|(a, b)| a * b).sum::<f32>()))
                    .collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                all.truncate(k);
                all
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_across_block_boundaries() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let dim = 8;
        let n = PASSAGE_BLOCK + 77; // two passage blocks
        let passages: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let queries: Vec<f32> = (0..(QUERY_BLOCK + 3) * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let got = exact_search(&queries, &passages, dim, 10).unwrap();
        let want = brute(&queries, &passages, dim, 10);
        assert_eq!(got.len(), QUERY_BLOCK + 3);
        for (g, w) in got.iter().zip(&want) {
            let gi: Vec<usize> = g.iter().map(|x| x.0).collect();
            let wi: Vec<usize> = w.iter().map(|x| x.0).collect();
            assert_eq!(gi, wi);
            for (a, b) in g.iter().zip(w) {
                assert!((a.1 - b.1).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn ties_rank_the_earlier_passage_first_and_k_is_capped() {
        // Passages 0..4 with scores 1, 2, 2, 1 against query [1].
        let got = exact_search(&[1.0], &[1.0, 2.0, 2.0, 1.0], 1, 3).unwrap();
        assert_eq!(got, vec![vec![(1, 2.0), (2, 2.0), (0, 1.0)]]);
        let all = exact_search(&[1.0], &[1.0, 2.0], 1, 10).unwrap();
        assert_eq!(all[0].len(), 2);
        assert!(exact_search(&[1.0, 2.0, 3.0], &[1.0, 2.0], 2, 1).is_err());
    }
}
