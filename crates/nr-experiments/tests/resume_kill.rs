//! `--resume` reproduces the uninterrupted training bit for bit: a training process is killed with
//! SIGKILL at a random step (several seeds), resumed from its last checkpoint, and its best head,
//! its state and its step log are compared with those of a run that was never interrupted.
//!
//! The training runs in a child process (this test binary re-run on `child_trains`), on synthetic
//! turns, with an MLP head with dropout so that the resumed run must also restore the optimizer's
//! moments, the schedule position, the data order and the dropout randomness.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;

use burn::tensor::Device;
use common::synthetic;
use nr_data::Qrels;
use nr_experiments::manifest::{LossSpec, TrainingSpec};
use nr_experiments::native::HeadInputs;
use nr_experiments::train::targets::TrainTargets;
use nr_experiments::train::trainer::{FitData, fit};
use nr_experiments::vectors::Vectors;
use nr_head::{HeadConfig, HeadKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 16;
const OUT: usize = 8;
const TURNS: usize = 96;
const PASSAGES: usize = 40;
const EPOCHS: usize = 8;
const BATCH: usize = 4;

/// Synthetic turns: inputs, targets, passages, dev split (seeded, the same in every process).
fn data() -> (
    HeadInputs,
    TrainTargets,
    Vectors,
    HeadInputs,
    Vec<String>,
    Qrels,
) {
    let mut rng = StdRng::seed_from_u64(11);
    let x = HeadInputs {
        layers: 1,
        dim: DIM,
        offsets: (0..=TURNS).collect(),
        data: synthetic::uniform(&mut rng, TURNS * DIM),
    };
    let (passages, y) = synthetic::targets(&mut rng, TURNS, PASSAGES, OUT, 6);
    let dev_x = HeadInputs {
        layers: 1,
        dim: DIM,
        offsets: (0..=16).collect(),
        data: synthetic::uniform(&mut rng, 16 * DIM),
    };
    let dev_ids: Vec<String> = (0..16).map(|i| format!("d{i}")).collect();
    let mut qrels = Qrels::new();
    for (i, id) in dev_ids.iter().enumerate() {
        qrels.add(id, &format!("p{}", i % PASSAGES), 1).unwrap();
    }
    (x, y, passages, dev_x, dev_ids, qrels)
}

/// Trains into `dir` (resuming when `resume`): what the child process runs.
fn train(dir: &Path, seed: u64, resume: bool) {
    let (x, y, passages, dev_x, dev_ids, qrels) = data();
    let mut config = HeadConfig::new(HeadKind::Mlp, DIM, OUT);
    config.hidden = 64;
    config.dropout = 0.2;
    let meta = synthetic::meta(DIM, OUT, "context");
    let training = TrainingSpec {
        lr: 3e-3,
        batch_size: BATCH,
        epochs: EPOCHS,
        patience: EPOCHS,
        seed,
        ..TrainingSpec::default()
    };
    let fit_data = FitData {
        train_x: &x,
        train_y: &y,
        dev_x: &dev_x,
        dev_ids: &dev_ids,
        dev_qrels: &qrels,
        passages: &passages,
    };
    let device = Device::default();
    let (best, _) = fit(
        &config,
        &meta,
        &training,
        &LossSpec::default(),
        &fit_data,
        &device,
        dir,
        resume,
        None,
    )
    .unwrap();
    best.save(&dir.join("final-head"), &meta).unwrap();
}

/// The child's entry point: does nothing unless the parent asked for a training.
#[test]
fn child_trains() {
    let (Some(dir), Some(seed)) = (
        std::env::var_os("NR_RESUME_CHILD_DIR"),
        std::env::var("NR_RESUME_CHILD_SEED").ok(),
    ) else {
        return;
    };
    let resume = std::env::var_os("NR_RESUME_CHILD_RESUME").is_some();
    train(Path::new(&dir), seed.parse().unwrap(), resume);
}

fn child(dir: &Path, seed: u64, resume: bool) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_trains",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("NR_RESUME_CHILD_DIR", dir)
    .env("NR_RESUME_CHILD_SEED", seed.to_string())
    .env("NR_LOG", "warn");
    if resume {
        cmd.env("NR_RESUME_CHILD_RESUME", "1");
    }
    cmd.spawn().unwrap()
}

fn run_to_end(dir: &Path, seed: u64, resume: bool) {
    let status = child(dir, seed, resume).wait().unwrap();
    assert!(status.success(), "training child failed ({status})");
}

fn steps_logged(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("steps.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Every file a finished training leaves: the best head and the last epoch's head (tensors
/// compared by name: header order may vary), the state and the step log.
fn outcome(dir: &Path) -> (Vec<(String, Vec<u8>)>, String, String) {
    let mut tensors: Vec<(String, Vec<u8>)> = Vec::new();
    for file in ["final-head.safetensors", "checkpoint-head.safetensors"] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        tensors.extend(
            st.tensors()
                .into_iter()
                .map(|(n, v)| (format!("{file}/{n}"), v.data().to_vec())),
        );
    }
    tensors.sort();
    let state = std::fs::read_to_string(dir.join("checkpoint-state.json")).unwrap();
    let log = std::fs::read_to_string(dir.join("steps.jsonl")).unwrap();
    (tensors, state, log)
}

#[test]
fn a_training_killed_at_a_random_step_resumes_to_the_uninterrupted_result() {
    if std::env::var_os("NR_RESUME_CHILD_DIR").is_some() {
        return;
    }
    let total_steps = EPOCHS * TURNS.div_ceil(BATCH);
    let mut kills = Vec::new();
    for seed in [1u64, 2, 3] {
        let root = tempfile::tempdir().unwrap();
        let (whole, killed): (PathBuf, PathBuf) =
            (root.path().join("whole"), root.path().join("killed"));
        run_to_end(&whole, seed, false);

        // Kill a second run at a random step past the first epoch and before the last.
        let at = StdRng::seed_from_u64(seed).random_range(TURNS / BATCH + 1..total_steps - 4);
        let mut c = child(&killed, seed, false);
        let start = Instant::now();
        while steps_logged(&killed) < at {
            assert!(
                c.try_wait().unwrap().is_none(),
                "the child finished before the kill"
            );
            assert!(start.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_micros(200));
        }
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        let logged = steps_logged(&killed);
        assert!(
            logged < total_steps,
            "seed {seed}: killed after the last step"
        );
        kills.push(logged);

        run_to_end(&killed, seed, true);
        let (a, b) = (outcome(&whole), outcome(&killed));
        assert!(
            a.0 == b.0,
            "seed {seed}: the resumed head differs (killed after step {logged})"
        );
        assert_eq!(a.1, b.1, "seed {seed}: the training state differs");
        assert_eq!(a.2, b.2, "seed {seed}: the step log differs");
    }
    eprintln!("killed after steps {kills:?} of {total_steps}");
}
