//! Training targets from the teacher: embeddings of each turn's target query (the human rewrite, or
//! the LLM's generated query: `losses.target`), gold passages, and the teacher's top-K candidates
//! for that query.

use std::collections::HashMap;

use anyhow::Result;

use super::dataset::Split;
use super::{Experiment, RunOptions};
use crate::manifest::TargetQuery;
use crate::retrieval;
use crate::train::targets::TrainTargets;
use crate::vectors::Vectors;

/// Targets of every turn of `split`, in turn order.
pub fn targets(
    ctx: &Experiment,
    split: &Split,
    passages: &Vectors,
    opts: &RunOptions,
) -> Result<TrainTargets> {
    let queries: Vec<String> = match ctx.manifest.losses.target {
        TargetQuery::Rewrite => split.turns.iter().map(|t| t.rewrite.clone()).collect(),
        // Generated per cached part, as the `query_tokens` features are.
        TargetQuery::Generated => split
            .part_turns()
            .into_iter()
            .map(|turns| ctx.rewrites(split.name, turns, opts))
            .collect::<Result<Vec<_>>>()?
            .concat(),
    };
    targets_of_queries(ctx, split, &queries, passages)
}

/// Targets of every turn of `split` whose target query text is `queries[i]`.
pub fn targets_of_queries(
    ctx: &Experiment,
    split: &Split,
    queries: &[String],
    passages: &Vectors,
) -> Result<TrainTargets> {
    let ids = split.ids();
    let teacher_query = ctx.teacher.queries(&ids, queries, &ctx.cache, false)?;
    let index: HashMap<&str, usize> = passages
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let positive = split
        .turns
        .iter()
        .map(|t| {
            let q = split.qrels.get(&t.id())?;
            q.judgments()
                .iter()
                .filter(|j| j.relevance > 0)
                .find_map(|j| index.get(j.doc_id.as_str()).copied())
        })
        .collect();
    let candidates = retrieval::top_k(&teacher_query, passages, ctx.manifest.losses.top_k)?;
    Ok(TrainTargets {
        teacher_query: teacher_query.data,
        dim: teacher_query.dim,
        positive,
        candidates,
    })
}
