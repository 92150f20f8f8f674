//! Training losses of native retrieval, as functions on burn tensors (each documented with its
//! formula):
//!
//! - [`alignment`]: `1 - cos` (or squared distance) to the teacher's embedding of the human rewrite;
//! - [`InfoNce`]: contrastive loss over the gold passage, in-batch passages and the teacher's hard
//!   negatives, with false-negative masking built by [`hard_negative_keep`];
//! - [`rank_distill`]: `KL(teacher || student)` over the teacher's top-K candidates;
//! - [`TotalLoss`]: the weighted sum ([`LossWeights`]) with every term's value for logging.
//!
//! Every loss returns a one-element tensor; call `backward()` on [`TotalLoss::total`].

mod alignment;
mod contrastive;
mod error;
mod rank;
mod selection;
mod total;

pub use alignment::{AlignmentKind, alignment};
pub use contrastive::{HardNegatives, InfoNce, MASKED_LOGIT, SAME_PASSAGE_COS};
pub use error::LossError;
pub use rank::{candidate_scores, rank_distill};
pub use selection::{hard_negative_keep, positive_passage};
pub use total::{ALIGN, CONTRASTIVE, LossWeights, RANK, TOTAL, TotalLoss};
