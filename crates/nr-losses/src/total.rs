//! The training objective: a weighted sum of the loss terms, each term logged on its own.

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::LossError;

/// Name of the alignment term in [`TotalLoss::terms`].
pub const ALIGN: &str = "align";
/// Name of the contrastive term.
pub const CONTRASTIVE: &str = "contrastive";
/// Name of the rank-distillation term.
pub const RANK: &str = "rank";
/// Name of the weighted sum.
pub const TOTAL: &str = "total";

/// Weight of each term (0 = term off), as an experiment manifest gives them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    pub align: f32,
    pub contrastive: f32,
    pub rank: f32,
}

impl Default for LossWeights {
    /// All three terms with weight 1.
    fn default() -> Self {
        Self {
            align: 1.0,
            contrastive: 1.0,
            rank: 1.0,
        }
    }
}

impl LossWeights {
    /// The weight of term `name` ([`ALIGN`], [`CONTRASTIVE`], [`RANK`]); `None` for another name.
    pub fn get(&self, name: &str) -> Option<f32> {
        match name {
            ALIGN => Some(self.align),
            CONTRASTIVE => Some(self.contrastive),
            RANK => Some(self.rank),
            _ => None,
        }
    }
}

/// A combined loss: the tensor to call `backward` on and the host value of every term.
#[derive(Debug)]
pub struct TotalLoss {
    /// `sum_j w_j L_j` (one element).
    pub total: Tensor<1>,
    /// Each term's unweighted value by name, plus [`TOTAL`].
    pub terms: BTreeMap<String, f32>,
}

impl TotalLoss {
    /// `total = sum_j w_j L_j` over `(name, weight, loss)` triples. Terms with weight 0 are left
    /// out (neither summed nor logged); weights must be finite and non-negative, and at least one
    /// term must remain. Reads every term's value back to the host for logging.
    pub fn weighted_sum(parts: Vec<(&str, f32, Tensor<1>)>) -> Result<TotalLoss, LossError> {
        let mut total: Option<Tensor<1>> = None;
        let mut terms = BTreeMap::new();
        for (name, weight, loss) in parts {
            if !weight.is_finite() || weight < 0.0 {
                return Err(LossError::Parameter {
                    name: "weight",
                    value: weight as f64,
                    detail: "must be finite and non-negative",
                });
            }
            if weight == 0.0 {
                continue;
            }
            if loss.dims() != [1] {
                return Err(crate::error::shape("loss term", &loss.dims(), "[1]".into()));
            }
            terms.insert(name.to_string(), loss.clone().into_scalar::<f32>());
            let weighted = loss * weight as f64;
            total = Some(match total {
                Some(t) => t + weighted,
                None => weighted,
            });
        }
        let total = total.ok_or(LossError::Parameter {
            name: "weight",
            value: 0.0,
            detail: "every term has weight 0: nothing to train",
        })?;
        terms.insert(TOTAL.to_string(), total.clone().into_scalar::<f32>());
        Ok(TotalLoss { total, terms })
    }
}
