//! Training targets from the teacher: embeddings of the human rewrites, gold passages, and the
//! teacher's top-K candidates for each turn.

use std::collections::HashMap;

use anyhow::Result;

use super::Experiment;
use super::dataset::Split;
use crate::retrieval;
use crate::train::targets::TrainTargets;
use crate::vectors::Vectors;

/// Targets of every turn of `split`, in turn order.
pub fn targets(ctx: &Experiment, split: &Split, passages: &Vectors) -> Result<TrainTargets> {
    let ids = split.ids();
    let rewrites: Vec<String> = split.turns.iter().map(|t| t.rewrite.clone()).collect();
    let teacher_query = ctx.teacher.queries(&ids, &rewrites, &ctx.cache, false)?;
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
