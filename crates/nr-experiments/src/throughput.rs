//! Throughput of each stage of the pipeline on one device, on synthetic inputs of the real shapes:
//! hidden-state extraction (prefill), teacher encoding, head training and exact search.
//!
//! What `nr throughput` reports and the `head_train` benchmark times. Inputs are random (token ids,
//! features, vectors), so the figures depend on the models' shapes and the device only: random
//! weights from [`nr_backbone::synthetic`] measure the same as the real files. Every timed call
//! ends by reading its result back to the host, so asynchronous GPU backends are timed to the end
//! of their work.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::AdamWConfig;
use burn::tensor::{Device, Tensor, TensorData};
use nr_backbone::llama::Llm;
use nr_backbone::teacher::TeacherEncoder;
use nr_head::{Head, HeadConfig, HeadKind, TokenPooling};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::latency::median;
use crate::manifest::{LossSpec, TrainingSpec};
use crate::native::{HeadInputs, TokenRows};
use crate::train::order::epoch_batches;
use crate::train::targets::TrainTargets;
use crate::train::trainer::train_step;
use crate::vectors::Vectors;

/// One measured case: a rate per repeat (after one untimed warm-up) and their median.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// `prefill`, `teacher`, `head_train` or `search`.
    pub stage: String,
    /// The workload, in words.
    pub case: String,
    /// What the rate counts, per second (`tokens/s`, `sentences/s`, ...).
    pub unit: String,
    pub median: f64,
    pub runs: Vec<f64>,
}

/// Runs `work` once untimed, then `repeats` times; each run's rate is `count / seconds`.
fn measure(
    stage: &str,
    case: String,
    unit: &str,
    count: usize,
    repeats: usize,
    mut work: impl FnMut() -> Result<()>,
) -> Result<Measurement> {
    work()?;
    let mut runs = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        work()?;
        runs.push(count as f64 / start.elapsed().as_secs_f64());
    }
    Ok(Measurement {
        stage: stage.into(),
        case,
        unit: unit.into(),
        median: median(&mut runs.clone()),
        runs,
    })
}

/// `rows` rows of width `dim`, uniform in [-1, 1) per coordinate, then L2-normalised.
pub fn unit_rows(rng: &mut StdRng, rows: usize, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..rows * dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    for row in v.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Hidden states of every layer the heads read (two middle layers and the last) for `batch`
/// prompts of `tokens` random token ids each, in one forward pass: prompt tokens/s.
pub fn prefill(llm: &Llm, batch: usize, tokens: usize, repeats: usize) -> Result<Measurement> {
    let vocab = llm.model.config.vocab_size as u32;
    let mut rng = StdRng::seed_from_u64(11);
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|_| (0..tokens).map(|_| rng.random_range(0..vocab)).collect())
        .collect();
    let n = llm.num_layers();
    let layers = [n * 4 / 5, n];
    measure(
        "prefill",
        format!(
            "{batch} prompts x {tokens} tokens, layers {layers:?} of {n}, width {}",
            llm.hidden_size()
        ),
        "tokens/s",
        batch * tokens,
        repeats,
        || {
            llm.forward(&prompts, &layers, false)?;
            Ok(())
        },
    )
}

/// Teacher embeddings of `batch` sentences of `words` random words each, in one padded batch.
pub fn teacher_encode(
    teacher: &TeacherEncoder,
    batch: usize,
    words: usize,
    repeats: usize,
) -> Result<Measurement> {
    let mut rng = StdRng::seed_from_u64(12);
    let texts: Vec<String> = (0..batch)
        .map(|_| {
            (0..words)
                .map(|_| {
                    let len = rng.random_range(2..8);
                    (0..len)
                        .map(|_| rng.random_range(b'a'..=b'z') as char)
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = teacher.tokenize(&refs)?.iter().map(Vec::len).sum();
    measure(
        "teacher",
        format!(
            "{batch} sentences of {words} random words ({} tokens on average), width {}",
            tokens / batch.max(1),
            teacher.config().bert.hidden_size
        ),
        "sentences/s",
        batch,
        repeats,
        || {
            teacher.encode(&refs)?;
            Ok(())
        },
    )
}

/// A head-training workload at given widths: random features, teacher targets and passages.
pub struct HeadTrainWorkload {
    /// One pooled vector of 2 mixed layers per example (linear and mlp heads).
    pub pooled: HeadInputs,
    /// Token states of one layer per example (the mapper, attention pooling).
    pub tokens: HeadInputs,
    pub targets: TrainTargets,
    pub passages: Vectors,
}

/// `examples` examples of token states of `layers` layers each, width `hidden`; example `i` has
/// `lengths[i % lengths.len()]` tokens.
fn random_inputs(
    rng: &mut StdRng,
    examples: usize,
    hidden: usize,
    layers: usize,
    lengths: &[usize],
) -> HeadInputs {
    let mut offsets = vec![0];
    for i in 0..examples {
        offsets.push(offsets[i] + lengths[i % lengths.len()].max(1));
    }
    let data = (0..offsets[examples] * layers * hidden)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    HeadInputs {
        layers,
        dim: hidden,
        offsets,
        data,
    }
}

/// Training targets of `examples` turns as the pipeline builds them, over `passages` random unit
/// passages of width `dim`: a teacher query vector, a gold passage for 9 turns in 10, and `top_k`
/// candidates with descending teacher scores (the gold among them when it has one).
pub fn synthetic_targets(
    rng: &mut StdRng,
    examples: usize,
    dim: usize,
    passages: usize,
    top_k: usize,
) -> (TrainTargets, Vectors) {
    let passage_vectors = Vectors {
        ids: (0..passages).map(|i| i.to_string()).collect(),
        dim,
        data: unit_rows(rng, passages, dim),
    };
    let mut positive = Vec::new();
    let mut candidates = Vec::new();
    for i in 0..examples {
        let mut list: Vec<(usize, f32)> = (0..top_k)
            .map(|r| (rng.random_range(0..passages), 0.9 - 0.01 * r as f32))
            .collect();
        let gold = (i % 10 != 0).then(|| list[rng.random_range(0..top_k)].0);
        list.dedup_by_key(|c| c.0);
        positive.push(gold);
        candidates.push(list);
    }
    let targets = TrainTargets {
        teacher_query: unit_rows(rng, examples, dim),
        dim,
        positive,
        candidates,
    };
    (targets, passage_vectors)
}

impl HeadTrainWorkload {
    /// Targets as the pipeline builds them: a teacher query vector, a gold passage for 9 turns in
    /// 10, and `top_k` candidates with descending teacher scores (the gold among them when it has
    /// one) over `passages` random passages; features of width `hidden`, targets of width `dim`;
    /// token inputs of `token_lengths` tokens (cycled over the examples; one entry: all alike).
    pub fn new(
        examples: usize,
        hidden: usize,
        dim: usize,
        passages: usize,
        top_k: usize,
        token_lengths: &[usize],
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(7);
        let (targets, passage_vectors) =
            synthetic_targets(&mut rng, examples, dim, passages, top_k);
        Self {
            pooled: random_inputs(&mut rng, examples, hidden, 2, &[1]),
            tokens: random_inputs(&mut rng, examples, hidden, 1, token_lengths),
            targets,
            passages: passage_vectors,
        }
    }

    /// Examples in the workload.
    pub fn examples(&self) -> usize {
        self.targets.positive.len()
    }

    /// The inputs a head of `kind` pooling by `pooling` reads: token states for the mapper and
    /// for attention pooling, one pooled vector otherwise.
    pub fn inputs(&self, kind: HeadKind, pooling: TokenPooling) -> &HeadInputs {
        match (kind, pooling) {
            (HeadKind::Mapper, _) | (_, TokenPooling::Attention) => &self.tokens,
            _ => &self.pooled,
        }
    }

    /// Examples/s of the trainer's step (batch tensors, forward, the configured losses, backward,
    /// AdamW with clipping) for a head of `kind`, one epoch per repeat, on autodiff `device`.
    pub fn train(
        &self,
        kind: HeadKind,
        pooling: TokenPooling,
        training: &TrainingSpec,
        losses: &LossSpec,
        device: &Device,
        repeats: usize,
    ) -> Result<Measurement> {
        let x = self.inputs(kind, pooling);
        let mut config = HeadConfig::new(kind, x.dim, self.targets.dim);
        config.layers = x.layers;
        config.token_pooling = pooling;
        self.train_head(&config, training, losses, device, repeats)
    }

    /// [`Self::train`] for a head of any `config` (its input width and layers must be this
    /// workload's: 2 layers for pooled heads, 1 for token heads).
    pub fn train_head(
        &self,
        config: &HeadConfig,
        training: &TrainingSpec,
        losses: &LossSpec,
        device: &Device,
        repeats: usize,
    ) -> Result<Measurement> {
        let (kind, pooling) = (config.kind, config.token_pooling);
        let x = self.inputs(kind, pooling);
        let mut head = Some(config.init(device)?);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(training.weight_decay)
            .with_grad_clipping(training.grad_clip.map(GradientClippingConfig::Norm))
            .init();
        // The trainer's batches (length-bucketed where the rows' lengths differ).
        let batches = epoch_batches(x, training.batch_size, training.seed);
        let mut epoch = |head: Head| -> Result<Head> {
            let mut head = head;
            for batch in &batches {
                head = train_step(
                    head,
                    &mut optim,
                    training.lr,
                    x,
                    &self.targets,
                    &self.passages,
                    batch,
                    losses,
                    device,
                )?
                .0;
            }
            Ok(head)
        };
        let pooled_by = match (kind, pooling) {
            (HeadKind::Mapper, _) => "",
            (_, TokenPooling::Mean) => "",
            (_, TokenPooling::Attention) => " (attention pooling)",
        };
        let tokens = if let Some(n) = x.common_length() {
            format!("{n} token(s)")
        } else {
            let mean = x.offsets[x.len()] as f64 / x.len() as f64;
            format!("{mean:.1} tokens on average")
        };
        let case = format!(
            "{}{pooled_by} head, batch {}, {} examples, inputs {}-d x {tokens}",
            format!("{kind:?}").to_lowercase(),
            training.batch_size,
            self.examples(),
            x.dim,
        );
        measure(
            "head_train",
            case,
            "examples/s",
            self.examples(),
            repeats,
            || {
                let trained = epoch(head.take().context("head consumed")?)?;
                head = Some(trained);
                Ok(())
            },
        )
    }
}

/// Exact top-`k` inner-product search of `queries` random unit vectors over `passages`, as one
/// score matrix and top-k on `device` (the corpus resident on the device): queries/s.
pub fn search(
    device: &Device,
    queries: usize,
    passages: usize,
    dim: usize,
    k: usize,
    repeats: usize,
) -> Result<Measurement> {
    let mut rng = StdRng::seed_from_u64(13);
    let corpus = Tensor::<2>::from_data(
        TensorData::new(unit_rows(&mut rng, passages, dim), [passages, dim]),
        device,
    );
    let corpus_t = corpus.transpose();
    let q = unit_rows(&mut rng, queries, dim);
    measure(
        "search",
        format!("{queries} queries x {passages} passages, {dim}-d, top {k}"),
        "queries/s",
        queries,
        repeats,
        || {
            let qt = Tensor::<2>::from_data(TensorData::new(q.clone(), [queries, dim]), device);
            let (_, ids) = qt.matmul(corpus_t.clone()).topk_with_indices(k, 1);
            let hits = ids.into_data();
            anyhow::ensure!(hits.shape().iter().product::<usize>() == queries * k);
            Ok(())
        },
    )
}
