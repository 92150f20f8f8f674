//! Evaluation of retrieval: exact dense search, trec_eval-exact metrics, and significance tests.
//!
//! - [`search`]: top-k by inner product of many queries over many passages, blocked so memory stays
//!   bounded, ties broken deterministically.
//! - [`metrics`]: Recall@k, P@k, NDCG@k, MAP and MRR@k with trec_eval's semantics, per query and mean.
//! - [`significance`]: paired bootstrap confidence intervals and a paired randomization test.

pub mod metrics;
pub mod search;
pub mod significance;

pub use metrics::{EvalOptions, Evaluation, Metric, evaluate, evaluate_with};
pub use search::{Ties, exact_search, exact_search_with_ties, search_run, trec_tie_ranks};
pub use significance::{
    PairedComparison, SignificanceSettings, bootstrap_ci, compare_paired, means_by_group,
    means_by_source, randomization_test,
};

/// Errors of evaluation: bad shapes or unknown metric names.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Arrays or score lists that do not fit together (lengths, dimensions, non-finite values).
    #[error("{0}")]
    Shape(String),
    /// A metric name that is not one of the supported trec_eval names.
    #[error("unknown metric '{0}' (known: recall_K, P_K, ndcg_cut_K, mrr_K, recip_rank, map)")]
    UnknownMetric(String),
}

/// The README examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
