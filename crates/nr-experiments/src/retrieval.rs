//! Search and scoring of query vectors: one path for every run file, metric and dev choice
//! (nr-eval's exact search with trec_eval's tie order, then nr-eval's metrics).

use anyhow::Result;
use nr_data::{Qrels, Run};
use nr_index::SearchIndex;

use crate::vectors::Vectors;

/// The TREC run of `queries` against `passages`: each query's `depth` best passages, equal scores
/// in trec_eval's order.
pub fn search(queries: &Vectors, passages: &Vectors, depth: usize) -> Result<Run> {
    same_width(queries, passages)?;
    Ok(nr_eval::search::search_run(
        &queries.ids,
        &queries.data,
        &passages.ids,
        &passages.data,
        passages.dim,
        depth,
    )?)
}

/// The TREC run of `queries` on `index` (built over `passages`): exact search is [`search`]; an
/// approximate index returns its own `depth` best, best first.
pub fn search_on(
    index: &SearchIndex,
    queries: &Vectors,
    passages: &Vectors,
    depth: usize,
) -> Result<Run> {
    if let SearchIndex::Exact(_) = index {
        return search(queries, passages, depth);
    }
    same_width(queries, passages)?;
    let hits = index.search(&queries.data, depth)?;
    Ok(nr_eval::search::run_from_hits(
        &queries.ids,
        &passages.ids,
        hits,
    )?)
}

/// Mean MRR@10 of query vectors against `qrels`: the model-selection figure of every dev choice.
pub fn mrr10(queries: &Vectors, passages: &Vectors, qrels: &Qrels) -> Result<f64> {
    let run = search(queries, passages, 10)?;
    let scored = nr_eval::evaluate(qrels, &run, &["mrr_10".to_string()])?;
    Ok(scored.mean["mrr_10"])
}

/// The `k` best passages of each query as (passage index, score), best first: candidate mining
/// (hard negatives, rank-distillation targets), where indices rather than a run are needed.
pub fn top_k(queries: &Vectors, passages: &Vectors, k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
    same_width(queries, passages)?;
    Ok(nr_eval::search::exact_search(
        &queries.data,
        &passages.data,
        passages.dim,
        k,
    )?)
}

fn same_width(queries: &Vectors, passages: &Vectors) -> Result<()> {
    anyhow::ensure!(
        queries.dim == passages.dim,
        "query vectors have {} dimensions but the passage index has {}",
        queries.dim,
        passages.dim
    );
    Ok(())
}
