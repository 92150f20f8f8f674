//! The pipeline's training inputs in feature stores on disk (`backbone.feature_store`): the same
//! token states as in memory (within f16 rounding), a truncated store rebuilt rather than read, and
//! a whole run trained from disk.

mod common;

use common::{nr_logged, tiny_manifest};
use nr_experiments::manifest::Manifest;
use nr_experiments::native::{HeadInputs, SplitRows, TokenRows};
use nr_experiments::pipeline::{Experiment, RunOptions};

/// Token-level features (each question token kept) pooled by the head's attention.
const TOKEN_HEAD: [&str; 6] = [
    "--set",
    "backbone.pool=\"question_tokens\"",
    "--set",
    "head.kind=\"linear\"",
    "--set",
    "head.token_pooling=\"attention\"",
];

/// Largest deviation of `stored` from `memory` beyond f16 rounding (relative 2^-11, plus the
/// absolute step of f16's subnormals), over every turn; also checks the token counts.
fn assert_within_f16(memory: &HeadInputs, stored: &SplitRows) {
    assert!(stored.in_memory().is_none(), "the split should be on disk");
    assert_eq!(stored.len(), memory.len());
    assert_eq!((stored.layers(), stored.dim()), (memory.layers, memory.dim));
    let mut scratch = Vec::new();
    for i in 0..memory.len() {
        assert_eq!(stored.tokens(i), memory.tokens(i), "turn {i}");
        let (a, b) = (memory.turn(i), stored.turn(i, &mut scratch));
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= x.abs() / 2048.0 + 1e-7,
                "turn {i}: {x} stored as {y}"
            );
        }
    }
}

#[test]
fn stored_token_features_equal_the_in_memory_ones_and_a_truncated_store_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_manifest(dir.path());
    let sets: Vec<String> = TOKEN_HEAD
        .iter()
        .skip(1)
        .step_by(2)
        .map(|s| s.to_string())
        .chain(["backbone.feature_store=true".to_string()])
        .collect();
    let ctx = Experiment::load(Manifest::load(&path, &sets).unwrap()).unwrap();
    let opts = RunOptions::default();
    let memory = ctx.head_inputs(&ctx.data.train, &opts).unwrap();
    assert!(
        memory.offsets.windows(2).any(|w| w[1] - w[0] > 1),
        "token-level features keep several tokens per turn"
    );
    assert_within_f16(&memory, &ctx.split_rows(&ctx.data.train, &opts).unwrap());

    // Cut the last bytes off the first shard: the store is rebuilt from there, never read short.
    let stores: Vec<_> = std::fs::read_dir(dir.path().join("cache/features"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stores.len(), 1, "{stores:?}");
    let shard = stores[0].join("shard-00000.f16");
    let size = std::fs::metadata(&shard).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap();
    file.set_len(size - 2).unwrap();
    drop(file);
    assert_within_f16(&memory, &ctx.split_rows(&ctx.data.train, &opts).unwrap());
    assert_eq!(std::fs::metadata(&shard).unwrap().len(), size);
}

#[test]
fn a_token_head_trains_from_feature_stores_and_a_rerun_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_manifest(dir.path());
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend(TOKEN_HEAD);
    args.extend(["--set", "backbone.feature_store=true"]);
    let extracting = "train: hidden states of 24 turns into the feature store";
    let run = || {
        let out = nr_logged(&args);
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "run: {log}");
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/metrics.json")).unwrap())
                .unwrap();
        (metrics["systems"]["native"]["mean"].clone(), log)
    };
    let (first, log) = run();
    assert!(log.contains(extracting), "{log}");
    let r10 = first["recall_10"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&r10), "native R@10 {r10}");
    // The second run trains from the finished store, and to the same head.
    let (second, log) = run();
    assert!(!log.contains(extracting), "{log}");
    assert_eq!(first, second);
}
