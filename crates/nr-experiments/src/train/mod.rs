//! Fitting the parts of a native encoder: the dense head (AdamW with the three losses, or a ridge
//! start), and the lexicon (without labels). Pure fitting on host arrays: the pipeline stage that
//! feeds it and saves the encoder is `pipeline::native_head`.

pub mod batch;
pub mod lexicon;
pub mod losses;
pub mod order;
pub mod ridge;
pub mod schedule;
pub mod targets;
pub mod trainer;
