//! A head trained from token states on disk (`nr_data::FeatureStore`, f16 shards)
//! is the head trained from the same states in memory, bit for bit: the store is a drop-in source
//! for the trainer, so training need not hold every token state in RAM.
//!
//! The states are multiples of 1/16 below 4, exact in f16, so the two sources hold equal values;
//! turns have 1 to 6 tokens, so the trainer's length buckets and padding are exercised. Each
//! training runs in a child process (this test binary re-run on `child_trains`), as a fresh
//! process seeds the backend the same way; the last epoch's checkpoint and the step log of both
//! are compared.

use std::path::Path;
use std::process::Command;

mod common;

use burn::tensor::Device;
use common::synthetic;
use nr_data::{CacheKeyBuilder, FeatureStoreWriter, Qrels};
use nr_experiments::manifest::{LossSpec, TrainingSpec};
use nr_experiments::native::{HeadInputs, TokenRows};
use nr_experiments::train::trainer::{FitData, fit};
use nr_head::{HeadConfig, HeadKind, TokenPooling};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 12;
const OUT: usize = 8;
const TURNS: usize = 64;
const PASSAGES: usize = 30;

fn token_inputs(rng: &mut StdRng, turns: usize) -> HeadInputs {
    let mut offsets = vec![0];
    for i in 0..turns {
        offsets.push(offsets[i] + 1 + i % 6);
    }
    let data = (0..offsets[turns] * DIM)
        .map(|_| rng.random_range(-64..64) as f32 / 16.0)
        .collect();
    HeadInputs {
        layers: 1,
        dim: DIM,
        offsets,
        data,
    }
}

fn train(x: &dyn TokenRows, dev_x: &dyn TokenRows, dir: &Path) {
    let (passages, y) = synthetic::targets(&mut StdRng::seed_from_u64(5), TURNS, PASSAGES, OUT, 5);
    let dev_ids: Vec<String> = (0..dev_x.len()).map(|i| format!("d{i}")).collect();
    let mut qrels = Qrels::new();
    for (i, id) in dev_ids.iter().enumerate() {
        qrels.add(id, &format!("p{}", i % PASSAGES), 1).unwrap();
    }
    let mut config = HeadConfig::new(HeadKind::Linear, DIM, OUT);
    config.token_pooling = TokenPooling::Attention;
    let meta = synthetic::meta(DIM, OUT, "query_tokens");
    let training = TrainingSpec {
        lr: 3e-3,
        batch_size: 4,
        epochs: 3,
        patience: 3,
        seed: 9,
        ..TrainingSpec::default()
    };
    let data = FitData {
        train_x: x,
        train_y: &y,
        dev_x,
        dev_ids: &dev_ids,
        dev_qrels: &qrels,
        passages: &passages,
    };
    fit(
        &config,
        &meta,
        &training,
        &LossSpec::default(),
        &data,
        &Device::default(),
        dir,
        false,
        None,
    )
    .unwrap();
}

/// The inputs: training and dev turns, and the training turns as a feature store in `dir/store`.
fn inputs(dir: &Path) -> (HeadInputs, HeadInputs, nr_data::FeatureStore) {
    let mut rng = StdRng::seed_from_u64(3);
    let x = token_inputs(&mut rng, TURNS);
    let dev_x = token_inputs(&mut rng, 12);
    let key = CacheKeyBuilder::new("token-states")
        .input("synthetic")
        .finish();
    let mut writer = FeatureStoreWriter::open(&dir.join("store"), &key, 1, DIM, 40).unwrap();
    let store = if writer.is_complete() {
        nr_data::FeatureStore::open(&dir.join("store"), &key).unwrap()
    } else {
        for i in writer.texts_done()..x.len() {
            writer.push(x.turn(i)).unwrap();
        }
        writer.finish().unwrap()
    };
    (x, dev_x, store)
}

/// The child's entry point: does nothing unless the parent asked for a training.
#[test]
fn child_trains() {
    let (Some(dir), Ok(source)) = (
        std::env::var_os("NR_STORE_CHILD_DIR"),
        std::env::var("NR_STORE_CHILD_SOURCE"),
    ) else {
        return;
    };
    let dir = Path::new(&dir);
    let (x, dev_x, store) = inputs(dir);
    let out = dir.join(&source);
    match source.as_str() {
        "memory" => train(&x, &dev_x, &out),
        _ => train(&store, &dev_x, &out),
    }
}

#[test]
fn a_head_trained_from_the_feature_store_equals_one_trained_in_memory() {
    let root = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for source in ["memory", "store"] {
        let dir = root.path().join(format!("{source}-run"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["child_trains", "--exact", "--nocapture"])
            .env("NR_STORE_CHILD_DIR", &dir)
            .env("NR_STORE_CHILD_SOURCE", source)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, _, store) = inputs(&dir);
        assert_eq!((store.len(), TokenRows::tokens(&store, 5)), (TURNS, 6));
        let run = dir.join(source);
        outputs.push((
            std::fs::read(run.join("checkpoint-head.safetensors")).unwrap(),
            std::fs::read_to_string(run.join("steps.jsonl")).unwrap(),
        ));
    }
    let (memory, store) = (&outputs[0], &outputs[1]);
    assert_eq!(memory.1.lines().count(), 3 * TURNS / 4, "one line per step");
    assert_eq!(memory.1, store.1, "the step logs (losses) differ");
    // Tensors compared by name (the file's header order is not fixed).
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&memory.0).unwrap(),
        safetensors::SafeTensors::deserialize(&store.0).unwrap(),
    );
    let mut names = a.names();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    for name in names {
        assert!(
            a.tensor(name).unwrap().data() == b.tensor(name).unwrap().data(),
            "{name} differs between the checkpoints"
        );
    }
}
