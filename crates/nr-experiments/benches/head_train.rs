//! Head training: examples/s of the trainer's step (batch tensors, forward, alignment + InfoNCE
//! with hard negatives + rank distillation, backward, AdamW with clipping) for each head kind.
//!
//! Inputs are random at the main configuration's shapes (`nr_experiments::throughput`, the same
//! workload `nr throughput` runs on any device): SmolLM2's width 576, the teacher's 384, batch 64,
//! 32 teacher candidates per turn over 10,000 passages; linear and mlp read one pooled vector of 2
//! mixed layers, the mapper reads 128 token states of one layer (2 blocks, 8 heads).
//!
//! `cargo bench -p nr-experiments --bench head_train`; writes results/bench/head_train.json.

mod common;

use burn::tensor::Device;
use common::{BenchFile, Row};
use nr_experiments::manifest::{LossSpec, TrainingSpec};
use nr_experiments::throughput::HeadTrainWorkload;
use nr_head::{HeadKind, TokenPooling};

const HIDDEN: usize = 576;
const TEACHER: usize = 384;
const PASSAGES: usize = 10_000;
const EXAMPLES: usize = 1024;
const MAPPER_TOKENS: usize = 128;

fn main() {
    let repeats = common::env_usize("NR_BENCH_REPEATS", 3);
    let training = TrainingSpec::default();
    let losses = LossSpec::default();
    assert_eq!(
        losses.use_terms.len(),
        3,
        "the benchmark trains with all three losses"
    );
    let device = Device::default().autodiff();
    let workload = HeadTrainWorkload::new(
        EXAMPLES,
        HIDDEN,
        TEACHER,
        PASSAGES,
        losses.top_k,
        MAPPER_TOKENS,
    );
    let rows = [
        (HeadKind::Linear, TokenPooling::Mean, ""),
        (HeadKind::Mlp, TokenPooling::Mean, ""),
        (HeadKind::Mapper, TokenPooling::Mean, ""),
        (
            HeadKind::Linear,
            TokenPooling::Attention,
            " attention-pooled",
        ),
    ]
    .into_iter()
    .map(|(kind, pooling, label)| {
        let m = workload
            .train(kind, pooling, &training, &losses, &device, repeats)
            .unwrap();
        Row::new(
            format!("{kind:?}{label} head, batch {}", training.batch_size).to_lowercase(),
            "examples/s",
            m.runs,
        )
    })
    .collect();
    BenchFile {
        bench: "head_train".into(),
        stack: format!("nr-experiments trainer step, burn flex autodiff, {} threads, {repeats} epochs of {EXAMPLES}", common::threads()),
        workload: format!(
            "align (cosine) + InfoNCE (in-batch + {} hard negatives) + rank distillation over {} candidates; inputs {HIDDEN}-d, outputs {TEACHER}-d",
            losses.top_k, losses.top_k
        ),
        rows,
        ratios: vec![],
        target_vs_reference: None,
    }
    .finish();
}
