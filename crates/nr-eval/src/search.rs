//! Exact maximum-inner-product search.
//!
//! Queries are split into blocks of [`QUERY_BLOCK`] rows and passages into blocks of
//! [`PASSAGE_BLOCK`] rows; each (query block, passage block) score matrix is one gemm call, folded
//! into per-query top-k heaps before the next passage block. Memory is `QUERY_BLOCK x PASSAGE_BLOCK`
//! floats per rayon task, whatever the collection size (1M passages never need a
//! 1M x queries score matrix). Rayon runs one task per query block; when there are fewer query
//! blocks than threads (a handful of queries), the passages are also split into shards whose
//! top-k lists are merged, so a single query still uses every core.
//!
//! Ties are broken deterministically, independent of blocking and thread count: higher score
//! first, then the lower tie key. [`exact_search`] uses the passage's row index as its key (earlier
//! rows first). [`search_run`] uses [`trec_tie_ranks`], i.e. document id *descending*, which is the
//! order trec_eval (and [`crate::evaluate`]) gives tied documents when it reads a run: the top k
//! kept by the search is exactly the top k that trec_eval ranks from the written run.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;

use nr_data::{Run, ScoredDoc};
use rayon::prelude::*;

use crate::EvalError;

/// Passages scored per gemm call.
pub const PASSAGE_BLOCK: usize = 8192;
/// Queries per rayon task.
pub const QUERY_BLOCK: usize = 128;

/// How equal scores are ordered.
#[derive(Clone, Copy, Debug)]
pub enum Ties<'a> {
    /// The passage with the lower row index first.
    PassageOrder,
    /// The passage with the lower rank first; one rank per passage (see [`trec_tie_ranks`]).
    Ranks(&'a [u32]),
}

/// A candidate in a top-k heap, ordered so that the heap's top is the *worst* kept candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    score: f32,
    tie_key: u32,
    index: u32,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Greater = worse: lower score, or equal score and higher tie key (then higher row, so
        // that the order is total even if a caller repeats a rank).
        other
            .score
            .total_cmp(&self.score)
            .then(self.tie_key.cmp(&other.tie_key))
            .then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` best candidates seen so far for one query.
struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// The score a candidate must reach to be considered (anything when not yet full).
    fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |c| c.score)
        }
    }

    fn offer(&mut self, cand: Candidate) {
        if self.heap.len() < self.k {
            self.heap.push(cand);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && cand < *worst
        {
            *worst = cand;
        }
    }

    fn into_sorted(self) -> Vec<(usize, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.index as usize, c.score))
            .collect()
    }
}

/// The `k` passages with the largest inner product for each query: `(passage row, score)`, best
/// first, equal scores in row order. `queries` is `[n_queries, dim]` and `passages`
/// `[n_passages, dim]`, both row-major. Fewer than `k` passages give shorter lists.
pub fn exact_search(
    queries: &[f32],
    passages: &[f32],
    dim: usize,
    k: usize,
) -> Result<Vec<Vec<(usize, f32)>>, EvalError> {
    exact_search_with_ties(queries, passages, dim, k, Ties::PassageOrder)
}

/// [`exact_search`] with a chosen order for equal scores.
pub fn exact_search_with_ties(
    queries: &[f32],
    passages: &[f32],
    dim: usize,
    k: usize,
    ties: Ties<'_>,
) -> Result<Vec<Vec<(usize, f32)>>, EvalError> {
    let shape = |msg: String| Err(EvalError::Shape(format!("search: {msg}")));
    if dim == 0 || !queries.len().is_multiple_of(dim) || !passages.len().is_multiple_of(dim) {
        return shape(format!(
            "{} query and {} passage values are not multiples of dim {dim}",
            queries.len(),
            passages.len()
        ));
    }
    let n_passages = passages.len() / dim;
    if u32::try_from(n_passages).is_err() {
        return shape(format!("{n_passages} passages exceed the 2^32 supported"));
    }
    if let Ties::Ranks(ranks) = ties
        && ranks.len() != n_passages
    {
        return shape(format!(
            "{} tie ranks for {n_passages} passages",
            ranks.len()
        ));
    }
    for (what, values) in [("query", queries), ("passage", passages)] {
        if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
            return shape(format!(
                "{what} {} has a non-finite value at dimension {}",
                pos / dim,
                pos % dim
            ));
        }
    }
    let n_queries = queries.len() / dim;
    let k = k.min(n_passages);
    if n_queries == 0 || k == 0 {
        return Ok(vec![Vec::new(); n_queries]);
    }

    // One task per (query block, passage shard); shards only when query blocks cannot fill the pool.
    let query_blocks: Vec<Range<usize>> = (0..n_queries)
        .step_by(QUERY_BLOCK)
        .map(|s| s..(s + QUERY_BLOCK).min(n_queries))
        .collect();
    let threads = rayon::current_num_threads().max(1);
    let shards = if query_blocks.len() >= threads {
        1
    } else {
        (threads / query_blocks.len()).clamp(1, n_passages.div_ceil(PASSAGE_BLOCK))
    };
    let shard_len = n_passages.div_ceil(shards);
    let tasks: Vec<(usize, Range<usize>)> = (0..query_blocks.len())
        .flat_map(|b| {
            (0..n_passages)
                .step_by(shard_len)
                .map(move |s| (b, s..(s + shard_len).min(n_passages)))
        })
        .collect();
    let partial: Vec<(usize, Vec<TopK>)> = tasks
        .into_par_iter()
        .map(|(b, rows)| {
            let qs = &queries[query_blocks[b].start * dim..query_blocks[b].end * dim];
            (b, search_block(qs, passages, rows, dim, k, ties))
        })
        .collect();

    let mut merged: Vec<Option<Vec<TopK>>> = (0..query_blocks.len()).map(|_| None).collect();
    for (b, heaps) in partial {
        match &mut merged[b] {
            None => merged[b] = Some(heaps),
            Some(into) => {
                for (dst, src) in into.iter_mut().zip(heaps) {
                    for cand in src.heap {
                        dst.offer(cand);
                    }
                }
            }
        }
    }
    Ok(merged
        .into_iter()
        .flat_map(|heaps| heaps.unwrap_or_default())
        .map(TopK::into_sorted)
        .collect())
}

/// Top-k heaps of the queries `qs` over the passage rows `rows`.
fn search_block(
    qs: &[f32],
    passages: &[f32],
    rows: Range<usize>,
    dim: usize,
    k: usize,
    ties: Ties<'_>,
) -> Vec<TopK> {
    let mq = qs.len() / dim;
    let mut heaps: Vec<TopK> = (0..mq).map(|_| TopK::new(k)).collect();
    let mut scores = vec![0.0f32; mq * PASSAGE_BLOCK.min(rows.len())];
    for start in rows.clone().step_by(PASSAGE_BLOCK) {
        let np = PASSAGE_BLOCK.min(rows.end - start);
        let pblock = &passages[start * dim..(start + np) * dim];
        // SAFETY: dst is `scores`, at least [mq, np] row-major (row stride np, column stride 1);
        // lhs is `qs`, [mq, dim] row-major; rhs is `pblock` read as its transpose [dim, np]
        // (row stride 1, column stride dim). All three buffers hold the elements addressed.
        unsafe {
            gemm::gemm(
                mq,
                np,
                dim,
                scores.as_mut_ptr(),
                1,
                np as isize,
                false,
                qs.as_ptr(),
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
            let mut threshold = heap.threshold();
            for (j, &score) in scores[q * np..(q + 1) * np].iter().enumerate() {
                // Fast path: most scores are below the k-th best and never touch the heap.
                if score < threshold {
                    continue;
                }
                let index = start + j;
                let tie_key = match ties {
                    Ties::PassageOrder => index as u32,
                    Ties::Ranks(ranks) => ranks[index],
                };
                heap.offer(Candidate {
                    score,
                    tie_key,
                    index: index as u32,
                });
                threshold = heap.threshold();
            }
        }
    }
    heaps
}

/// Tie ranks that order documents by id *descending* (rank 0 = greatest id), as trec_eval orders
/// documents with equal scores.
pub fn trec_tie_ranks<S: AsRef<str>>(ids: &[S]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_unstable_by(|&a, &b| ids[b].as_ref().cmp(ids[a].as_ref()));
    let mut ranks = vec![0u32; ids.len()];
    for (rank, i) in order.into_iter().enumerate() {
        ranks[i] = rank as u32;
    }
    ranks
}

/// Searches and returns a TREC run: for each query id its `k` best passage ids, best first, equal
/// scores in trec_eval's order (id descending), scores widened to f64 exactly.
pub fn search_run<Q: AsRef<str>, P: AsRef<str>>(
    query_ids: &[Q],
    queries: &[f32],
    passage_ids: &[P],
    passages: &[f32],
    dim: usize,
    k: usize,
) -> Result<Run, EvalError> {
    if dim == 0
        || queries.len() != query_ids.len() * dim
        || passages.len() != passage_ids.len() * dim
    {
        return Err(EvalError::Shape(format!(
            "search: {} query ids for {} values and {} passage ids for {} values at dim {dim}",
            query_ids.len(),
            queries.len(),
            passage_ids.len(),
            passages.len()
        )));
    }
    let ranks = trec_tie_ranks(passage_ids);
    let hits = exact_search_with_ties(queries, passages, dim, k, Ties::Ranks(&ranks))?;
    run_from_hits(query_ids, passage_ids, hits)
}

/// A TREC run from each query's `(passage row, score)` hits, best first (from any index), scores
/// widened to f64 exactly.
pub fn run_from_hits<Q: AsRef<str>, P: AsRef<str>>(
    query_ids: &[Q],
    passage_ids: &[P],
    hits: Vec<Vec<(usize, f32)>>,
) -> Result<Run, EvalError> {
    let mut run = Run::new();
    for (qid, list) in query_ids.iter().zip(hits) {
        let docs = list
            .into_iter()
            .map(|(i, score)| ScoredDoc {
                doc_id: passage_ids[i].as_ref().to_string(),
                score: score as f64,
            })
            .collect();
        run.insert(qid.as_ref(), docs)
            .map_err(|e| EvalError::Shape(format!("search: passage ids: {e}")))?;
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Brute force: every score in f64, sorted by (score desc, index asc).
    fn brute(queries: &[f32], passages: &[f32], dim: usize, k: usize) -> Vec<Vec<usize>> {
        queries
            .chunks(dim)
            .map(|q| {
                let mut all: Vec<(usize, f64)> = passages
                    .chunks(dim)
                    .enumerate()
                    .map(|(i, p)| (i, q.iter().zip(p).map(|(a, b)| (a * b) as f64).sum()))
                    .collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                all.into_iter().take(k).map(|(i, _)| i).collect()
            })
            .collect()
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn matches_brute_force_across_block_boundaries_and_shards() {
        let dim = 8;
        let n = 2 * PASSAGE_BLOCK + 77; // three passage blocks
        let passages = random(n * dim, 1);
        for n_queries in [1, 3, QUERY_BLOCK + 3] {
            let queries = random(n_queries * dim, 2);
            let got = exact_search(&queries, &passages, dim, 10).unwrap();
            let want = brute(&queries, &passages, dim, 10);
            assert_eq!(got.len(), n_queries);
            for (q, (g, w)) in got.iter().zip(&want).enumerate() {
                let gi: Vec<usize> = g.iter().map(|x| x.0).collect();
                assert_eq!(&gi, w, "query {q} of {n_queries}");
                for &(i, s) in g {
                    let exact: f32 = queries[q * dim..(q + 1) * dim]
                        .iter()
                        .zip(&passages[i * dim..(i + 1) * dim])
                        .map(|(a, b)| a * b)
                        .sum();
                    assert!((s - exact).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn ties_follow_row_order_or_the_given_ranks() {
        // Query [1] against passages with scores 1, 2, 2, 1.
        let got = exact_search(&[1.0], &[1.0, 2.0, 2.0, 1.0], 1, 3).unwrap();
        assert_eq!(got, vec![vec![(1, 2.0), (2, 2.0), (0, 1.0)]]);
        // Ranks put row 3 before row 0 and row 2 before row 1.
        let ranks = [3, 1, 0, 2];
        let got = exact_search_with_ties(&[1.0], &[1.0, 2.0, 2.0, 1.0], 1, 3, Ties::Ranks(&ranks))
            .unwrap();
        assert_eq!(got, vec![vec![(2, 2.0), (1, 2.0), (3, 1.0)]]);
        // Many equal scores spread over blocks and shards: the first k rows win.
        let n = 3 * PASSAGE_BLOCK;
        let flat = vec![0.5f32; n];
        let got = exact_search(&[1.0], &flat, 1, 4).unwrap();
        assert_eq!(got[0].iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn k_is_capped_and_bad_shapes_or_values_are_errors() {
        let all = exact_search(&[1.0], &[1.0, 2.0], 1, 10).unwrap();
        assert_eq!(all, vec![vec![(1, 2.0), (0, 1.0)]]);
        assert_eq!(
            exact_search(&[1.0, 2.0], &[1.0], 1, 0).unwrap(),
            vec![vec![], vec![]]
        );
        assert!(exact_search(&[1.0, 2.0, 3.0], &[1.0, 2.0], 2, 1).is_err());
        let err = exact_search(&[1.0, 0.0], &[1.0, f32::NAN], 2, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "search: passage 0 has a non-finite value at dimension 1"
        );
        let err = exact_search_with_ties(&[1.0], &[1.0, 2.0], 1, 1, Ties::Ranks(&[0])).unwrap_err();
        assert_eq!(err.to_string(), "search: 1 tie ranks for 2 passages");
    }

    #[test]
    fn search_runs_rank_ties_like_trec_eval() {
        assert_eq!(trec_tie_ranks(&["b", "c", "a"]), [1, 0, 2]);
        // d1 and d2 tie; trec_eval puts the greater id first, so k = 1 keeps d2.
        let run = search_run(&["q"], &[1.0], &["d1", "d2", "d0"], &[2.0, 2.0, 1.0], 1, 1).unwrap();
        let docs = &run.get("q").unwrap().docs;
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].doc_id, "d2");
        assert_eq!(docs[0].score, 2.0);
        assert!(search_run(&["q"], &[1.0], &["d1"], &[2.0, 2.0], 1, 1).is_err());
    }
}
