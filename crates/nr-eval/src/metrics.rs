//! Ranking metrics with trec_eval's semantics.
//!
//! - A run's documents are ranked by score descending; ties by document id descending
//!   (trec_eval's `comp_sim_docno`).
//! - A document is relevant when its grade is > 0; NDCG uses the grades as gains with a
//!   `log2(rank + 1)` discount, against the ideal ordering of all judged grades.
//! - Only queries that are in the qrels with at least one relevant document *and* in the run are
//!   scored and averaged (trec_eval's default, without `-c`; [`EvalOptions::complete`] is `-c`).
//!   One deliberate difference: a query whose qrels hold only non-relevant judgments is skipped,
//!   where trec_eval would average in zeros for it (no metric is defined without relevant documents).
//! - Relevance level 1 (trec_eval's default): grades <= 0 are not relevant.
//! - `P_k` divides by k even when fewer documents were retrieved; `recall_k` by all relevant
//!   documents; `map` is average precision over all relevant documents; `mrr_k` (pytrec_eval's
//!   `recip_rank` on the run cut to k) is 1 / rank of the first relevant document in the top k.

use std::collections::BTreeMap;
use std::fmt;

use nr_data::{Qrels, Run};
use serde::Serialize;

use crate::EvalError;

/// One metric, parsed from its trec_eval name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `recall_K`: relevant documents in the top K / all relevant documents.
    Recall(usize),
    /// `P_K`: relevant documents in the top K / K.
    Precision(usize),
    /// `ndcg_cut_K`: DCG of the top K over the ideal DCG of the top K, grades as gains.
    NdcgCut(usize),
    /// Reciprocal rank of the first relevant document within the top k (`usize::MAX`: no cut).
    Mrr(usize),
    /// `map`: mean of the precision at each relevant document retrieved, over all relevant ones.
    Map,
}

impl Metric {
    /// Parses `recall_10`, `P_10`, `ndcg_cut_3`, `mrr_10` (or `recip_rank_at_10`), `recip_rank`, `map`.
    pub fn parse(name: &str) -> Result<Self, EvalError> {
        let cut = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|&k| k > 0)
        };
        let m = if name == "map" {
            Metric::Map
        } else if name == "recip_rank" {
            Metric::Mrr(usize::MAX)
        } else if let Some(k) = cut("recall_") {
            Metric::Recall(k)
        } else if let Some(k) = cut("P_") {
            Metric::Precision(k)
        } else if let Some(k) = cut("ndcg_cut_") {
            Metric::NdcgCut(k)
        } else if let Some(k) = cut("mrr_").or_else(|| cut("recip_rank_at_")) {
            Metric::Mrr(k)
        } else {
            return Err(EvalError::UnknownMetric(name.to_string()));
        };
        Ok(m)
    }

    /// The value for one query given its ranked grades (`grades[i]` = grade of the document at
    /// rank i+1, 0 when unjudged) and all of its judged grades.
    pub fn score(self, ranked: &[i32], judged: &[i32]) -> f64 {
        let relevant = judged.iter().filter(|&&g| g > 0).count() as f64;
        let hits_in = |k: usize| ranked.iter().take(k).filter(|&&g| g > 0).count() as f64;
        match self {
            Metric::Recall(k) => hits_in(k) / relevant,
            Metric::Precision(k) => hits_in(k) / k as f64,
            Metric::Mrr(k) => ranked
                .iter()
                .take(k)
                .position(|&g| g > 0)
                .map_or(0.0, |r| 1.0 / (r + 1) as f64),
            Metric::Map => {
                let mut hits = 0.0;
                let mut sum = 0.0;
                for (i, &g) in ranked.iter().enumerate() {
                    if g > 0 {
                        hits += 1.0;
                        sum += hits / (i + 1) as f64;
                    }
                }
                sum / relevant
            }
            Metric::NdcgCut(k) => {
                let dcg = |grades: &mut dyn Iterator<Item = i32>| -> f64 {
                    grades
                        .take(k)
                        .enumerate()
                        .map(|(i, g)| g.max(0) as f64 / ((i + 2) as f64).log2())
                        .sum()
                };
                let mut ideal: Vec<i32> = judged.to_vec();
                ideal.sort_unstable_by(|a, b| b.cmp(a));
                let idcg = dcg(&mut ideal.into_iter());
                if idcg == 0.0 {
                    0.0
                } else {
                    dcg(&mut ranked.iter().copied()) / idcg
                }
            }
        }
    }
}

impl fmt::Display for Metric {
    /// The trec_eval name (`mrr_K` for the cut reciprocal rank).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Recall(k) => write!(f, "recall_{k}"),
            Metric::Precision(k) => write!(f, "P_{k}"),
            Metric::NdcgCut(k) => write!(f, "ndcg_cut_{k}"),
            Metric::Mrr(usize::MAX) => write!(f, "recip_rank"),
            Metric::Mrr(k) => write!(f, "mrr_{k}"),
            Metric::Map => write!(f, "map"),
        }
    }
}

/// Which queries are scored; the default is trec_eval's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvalOptions {
    /// Also score queries that have relevant documents but are missing from the run, as an empty
    /// ranking (all metrics 0), like `trec_eval -c`. Off by default: such queries are skipped.
    pub complete: bool,
}

/// Per-query and mean values of some metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evaluation {
    /// Metric name -> mean over the scored queries (0 when no query was scored).
    pub mean: BTreeMap<String, f64>,
    /// Query id -> metric name -> value, for every scored query.
    pub per_query: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Evaluation {
    /// The values of one metric, in query-id order.
    pub fn values(&self, metric: &str) -> Result<Vec<f64>, EvalError> {
        self.per_query
            .values()
            .map(|m| m.get(metric).copied())
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| EvalError::UnknownMetric(metric.to_string()))
    }

    /// The values of one metric for this and `other`, paired by query, for significance tests.
    /// Both evaluations must have scored the same queries.
    pub fn paired(
        &self,
        other: &Evaluation,
        metric: &str,
    ) -> Result<(Vec<f64>, Vec<f64>), EvalError> {
        if let Some(q) = self
            .per_query
            .keys()
            .find(|q| !other.per_query.contains_key(*q))
            .or_else(|| {
                other
                    .per_query
                    .keys()
                    .find(|q| !self.per_query.contains_key(*q))
            })
        {
            return Err(EvalError::Shape(format!(
                "paired comparison: query {q:?} was scored for one system only"
            )));
        }
        Ok((self.values(metric)?, other.values(metric)?))
    }
}

/// Scores `run` against `qrels` with the named metrics (trec_eval names), trec_eval's default
/// query selection.
pub fn evaluate(
    qrels: &Qrels,
    run: &Run,
    metric_names: &[String],
) -> Result<Evaluation, EvalError> {
    evaluate_with(qrels, run, metric_names, EvalOptions::default())
}

/// [`evaluate`] with options.
pub fn evaluate_with(
    qrels: &Qrels,
    run: &Run,
    metric_names: &[String],
    options: EvalOptions,
) -> Result<Evaluation, EvalError> {
    let metrics: Vec<(String, Metric)> = metric_names
        .iter()
        .map(|n| Metric::parse(n).map(|m| (n.clone(), m)))
        .collect::<Result<_, _>>()?;
    let mut out = Evaluation::default();
    for judgments in qrels.queries() {
        if judgments.num_relevant(1) == 0 {
            continue;
        }
        let docs: &[nr_data::ScoredDoc] = match run.get(&judgments.query_id) {
            Some(q) => &q.docs,
            None if options.complete => &[],
            None => continue,
        };
        let judged: Vec<i32> = judgments.judgments().iter().map(|j| j.relevance).collect();
        let mut ranked_docs: Vec<(&str, f64)> =
            docs.iter().map(|d| (d.doc_id.as_str(), d.score)).collect();
        ranked_docs.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(a.0)));
        let ranked: Vec<i32> = ranked_docs
            .iter()
            .map(|(d, _)| judgments.relevance(d).unwrap_or(0))
            .collect();
        let values = metrics
            .iter()
            .map(|(n, m)| (n.clone(), m.score(&ranked, &judged)))
            .collect();
        out.per_query.insert(judgments.query_id.clone(), values);
    }
    for (name, _) in &metrics {
        let n = out.per_query.len() as f64;
        let sum: f64 = out.per_query.values().map(|v| v[name]).sum();
        out.mean
            .insert(name.clone(), if n > 0.0 { sum / n } else { 0.0 });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // Ranks 1..5 with grades [0, 2, 0, 1, 0]; judged: {2, 1, 1} (one relevant doc unretrieved).
        let ranked = [0, 2, 0, 1, 0];
        let judged = [2, 1, 1];
        assert_eq!(Metric::Recall(2).score(&ranked, &judged), 1.0 / 3.0);
        assert_eq!(Metric::Precision(5).score(&ranked, &judged), 0.4);
        assert_eq!(Metric::Mrr(10).score(&ranked, &judged), 0.5);
        assert_eq!(Metric::Mrr(1).score(&ranked, &judged), 0.0);
        assert!((Metric::Map.score(&ranked, &judged) - (0.5 + 0.5) / 3.0).abs() < 1e-12);
        // DCG@3 = 2/log2(3); IDCG@3 = 2 + 1/log2(3) + 1/2.
        let want = (2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2() + 0.5);
        assert!((Metric::NdcgCut(3).score(&ranked, &judged) - want).abs() < 1e-12);
        assert!(Metric::parse("ndcg_cut_x").is_err());
        assert_eq!(Metric::parse("recip_rank_at_10").unwrap(), Metric::Mrr(10));
    }
}
