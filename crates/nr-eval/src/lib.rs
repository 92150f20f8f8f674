//! Evaluation of retrieval: exact dense search, trec_eval-exact metrics, and significance tests.
//!
//! - [`search`]: top-k by inner product of many queries over many passages, blocked so memory stays
//!   bounded, ties broken deterministically.
//! - [`metrics`]: Recall@k, P@k, NDCG@k, MAP and MRR@k with trec_eval's semantics, per query and mean.
//! - [`significance`]: paired bootstrap confidence intervals and a paired randomization test.

pub mod metrics;
pub mod search;
pub mod significance;

pub use metrics::{Evaluation, Metric, evaluate};
pub use search::exact_search;
pub use significance::{bootstrap_ci, means_by_group, randomization_test};

/// Errors of evaluation: bad shapes or unknown metric names.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Shape(String),
    #[error("unknown metric '{0}' (known: recall_K, P_K, ndcg_cut_K, mrr_K, recip_rank, map)")]
    UnknownMetric(String),
}
