//! Training from token states on disk: the rate and the resident memory of a token head trained
//! from a feature store larger than the pipeline's memory bound.
//!
//! Writes `NR_BENCH_STORE_GB` GB (default 2) of random token states in SmolLM2's shape for a
//! token-level source (2 layers x 576, 15 tokens per text on average) into an f16 feature store
//! under `target/bench-feature-store`, then trains the linear head with attention pooling for one
//! epoch from it (all three losses, batch 64, the trainer's length buckets), as `nr run` does with
//! `backbone.feature_store = true`. Records the write and training rates and the process's resident
//! memory (VmRSS, and its peak VmHWM) after each; the same states in memory as f32 would take twice
//! the store's size. The store is deleted at the end.
//!
//! `NR_BENCH_STORE_GB=12 cargo bench -p nr-experiments --bench feature_store`; writes
//! results/bench/feature_store.json.

mod common;

use std::time::Instant;

use burn::optim::AdamWConfig;
use burn::tensor::Device;
use common::{BenchFile, Ratio, Row, root};
use nr_data::{CacheKeyBuilder, FeatureStoreWriter};
use nr_experiments::manifest::{LossSpec, TrainingSpec};
use nr_experiments::scale::memory::{peak_rss_bytes, rss_bytes};
use nr_experiments::throughput::synthetic_targets;
use nr_experiments::train::order::epoch_batches;
use nr_experiments::train::trainer::train_step;
use nr_head::{HeadConfig, HeadKind, TokenPooling};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LAYERS: usize = 2;
const HIDDEN: usize = 576;
const TEACHER: usize = 384;
const PASSAGES: usize = 10_000;

/// Token count of text `i`: 1 to 29, 15 on average.
fn tokens(i: usize) -> usize {
    1 + (i * 7) % 29
}

fn mb(bytes: Option<u64>) -> f64 {
    bytes.map_or(f64::NAN, |b| b as f64 / 1e6)
}

fn main() {
    let gb = std::env::var("NR_BENCH_STORE_GB")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(2.0);
    let bytes_per_token = LAYERS * HIDDEN * 2;
    let mut texts = 0;
    let mut total_tokens = 0;
    while ((total_tokens * bytes_per_token) as f64) < gb * 1e9 {
        total_tokens += tokens(texts);
        texts += 1;
    }
    let dir = root().join("target/bench-feature-store");
    std::fs::remove_dir_all(&dir).ok();
    let key = CacheKeyBuilder::new("bench-token-states")
        .input(&texts.to_string())
        .finish();

    // Write: random states, a text at a time, as the pipeline's extraction pushes them.
    let mut rng = StdRng::seed_from_u64(11);
    let start = Instant::now();
    let mut writer = FeatureStoreWriter::open(&dir, &key, LAYERS, HIDDEN, 1024).unwrap();
    let mut states = Vec::new();
    for i in 0..texts {
        states.clear();
        states.extend((0..tokens(i) * LAYERS * HIDDEN).map(|_| rng.random_range(-1.0f32..1.0)));
        writer.push(&states).unwrap();
    }
    let store = writer.finish().unwrap();
    let write_s = start.elapsed().as_secs_f64();
    let store_bytes = (total_tokens * bytes_per_token) as f64;
    let (rss_written, peak_written) = (mb(rss_bytes()), mb(peak_rss_bytes()));
    eprintln!(
        "wrote {texts} texts ({:.2} GB) in {write_s:.0} s; RSS {rss_written:.0} MB, peak {peak_written:.0} MB",
        store_bytes / 1e9
    );

    // Train one epoch from the store.
    let losses = LossSpec::default();
    let training = TrainingSpec::default();
    let (targets, passages) = synthetic_targets(&mut rng, texts, TEACHER, PASSAGES, losses.top_k);
    let device = Device::default().autodiff();
    let mut config = HeadConfig::new(HeadKind::Linear, HIDDEN, TEACHER);
    config.layers = LAYERS;
    config.token_pooling = TokenPooling::Attention;
    let mut head = config.init(&device).unwrap();
    let mut optim = AdamWConfig::new()
        .with_weight_decay(training.weight_decay)
        .init();
    let batches = epoch_batches(&store, training.batch_size, training.seed);
    let start = Instant::now();
    for batch in &batches {
        head = train_step(
            head,
            &mut optim,
            training.lr,
            &store,
            &targets,
            &passages,
            batch,
            &losses,
            &device,
        )
        .unwrap()
        .0;
    }
    let train_s = start.elapsed().as_secs_f64();
    let (rss_trained, peak_trained) = (mb(rss_bytes()), mb(peak_rss_bytes()));
    eprintln!(
        "trained one epoch of {} texts in {train_s:.0} s; RSS {rss_trained:.0} MB, peak {peak_trained:.0} MB",
        store.len()
    );
    drop(store);
    std::fs::remove_dir_all(&dir).ok();

    let size = format!("{:.1} GB store, {texts} texts", store_bytes / 1e9);
    BenchFile {
        bench: "feature_store".into(),
        stack: format!("ours (flex, {} threads)", common::threads()),
        workload: format!(
            "{size} of {LAYERS} x {HIDDEN} f16 token states ({:.1} tokens per text); linear head \
             with attention pooling, all three losses, batch {}, one epoch",
            total_tokens as f64 / texts as f64,
            training.batch_size
        ),
        rows: vec![
            Row::new(
                format!("write, {size}"),
                "MB/s",
                vec![store_bytes / 1e6 / write_s],
            ),
            Row::new(
                format!("train one epoch from disk, {size}"),
                "examples/s",
                vec![texts as f64 / train_s],
            ),
            Row::new(
                format!("resident memory after writing, {size}"),
                "MB",
                vec![rss_written],
            ),
            Row::new(
                format!("peak resident memory, {size}"),
                "MB",
                vec![peak_trained],
            ),
            Row::new(
                format!("resident memory after training, {size}"),
                "MB",
                vec![rss_trained],
            ),
        ],
        ratios: vec![Ratio {
            name: "peak resident memory / store size".into(),
            value: peak_trained * 1e6 / store_bytes,
            target: None,
        }],
        target_vs_reference: None,
    }
    .finish();
}
