//! Head training: examples/s of the trainer's step (batch tensors, forward, alignment + InfoNCE
//! with hard negatives + rank distillation, backward, AdamW with clipping) for each head kind.
//!
//! Inputs are random at the main configuration's shapes: SmolLM2's width 576, the teacher's 384,
//! batch 64, 32 teacher candidates per turn over 10,000 passages; linear and mlp read one pooled
//! vector of 2 mixed layers, the mapper reads 128 token states of one layer (2 blocks, 8 heads).
//!
//! `cargo bench -p nr-experiments --bench head_train`; writes results/bench/head_train.json.

mod common;

use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::AdamWConfig;
use burn::tensor::Device;
use common::{BenchFile, Row, unit_rows};
use nr_experiments::manifest::{LossSpec, TrainingSpec};
use nr_experiments::native::HeadInputs;
use nr_experiments::train::targets::TrainTargets;
use nr_experiments::train::trainer::train_step;
use nr_experiments::vectors::Vectors;
use nr_head::{Head, HeadConfig, HeadKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HIDDEN: usize = 576;
const TEACHER: usize = 384;
const PASSAGES: usize = 10_000;
const EXAMPLES: usize = 1024;

/// `EXAMPLES` turns of `tokens` token states of `layers` layers each.
fn inputs(rng: &mut StdRng, layers: usize, tokens: usize) -> HeadInputs {
    let data = (0..EXAMPLES * tokens * layers * HIDDEN)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    HeadInputs {
        layers,
        dim: HIDDEN,
        offsets: (0..=EXAMPLES).map(|i| i * tokens).collect(),
        data,
    }
}

/// Targets as the pipeline builds them: a teacher query vector, a gold passage for 9 turns in 10,
/// and `top_k` candidates with descending teacher scores (the gold among them when it has one).
fn targets(rng: &mut StdRng, top_k: usize) -> TrainTargets {
    let mut positive = Vec::new();
    let mut candidates = Vec::new();
    for i in 0..EXAMPLES {
        let mut list: Vec<(usize, f32)> = (0..top_k)
            .map(|r| (rng.random_range(0..PASSAGES), 0.9 - 0.01 * r as f32))
            .collect();
        let gold = (i % 10 != 0).then(|| list[rng.random_range(0..top_k)].0);
        list.dedup_by_key(|c| c.0);
        positive.push(gold);
        candidates.push(list);
    }
    TrainTargets {
        teacher_query: unit_rows(rng, EXAMPLES, TEACHER),
        dim: TEACHER,
        positive,
        candidates,
    }
}

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
    let mut rng = StdRng::seed_from_u64(7);
    let passages = Vectors {
        ids: (0..PASSAGES).map(|i| i.to_string()).collect(),
        dim: TEACHER,
        data: unit_rows(&mut rng, PASSAGES, TEACHER),
    };
    let y = targets(&mut rng, losses.top_k);
    let pooled = inputs(&mut rng, 2, 1);
    let tokens = inputs(&mut rng, 1, 128);
    let mut rows = Vec::new();
    for (kind, x) in [
        (HeadKind::Linear, &pooled),
        (HeadKind::Mlp, &pooled),
        (HeadKind::Mapper, &tokens),
    ] {
        let mut config = HeadConfig::new(kind, HIDDEN, TEACHER);
        config.layers = x.layers;
        let mut head = config.init(&device).unwrap();
        let mut optim = AdamWConfig::new()
            .with_weight_decay(training.weight_decay)
            .with_grad_clipping(training.grad_clip.map(GradientClippingConfig::Norm))
            .init();
        let order: Vec<usize> = (0..EXAMPLES).collect();
        let mut epoch = |mut head: Head| {
            for batch in order.chunks(training.batch_size) {
                head = train_step(
                    head,
                    &mut optim,
                    training.lr,
                    x,
                    &y,
                    &passages,
                    batch,
                    &losses,
                    &device,
                )
                .unwrap()
                .0;
            }
            head
        };
        head = epoch(head); // warm-up
        let mut runs = Vec::new();
        for _ in 0..repeats {
            let start = Instant::now();
            head = epoch(head);
            runs.push(EXAMPLES as f64 / start.elapsed().as_secs_f64());
        }
        rows.push(Row::new(
            format!("{kind:?} head, batch {}", training.batch_size).to_lowercase(),
            "examples/s",
            runs,
        ));
    }
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
