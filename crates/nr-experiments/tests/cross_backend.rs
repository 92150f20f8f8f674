//! Cross-backend parity: the same small forward passes and training steps on flex (the CPU reference)
//! and on a second backend, compared within float tolerance.
//!
//! The second backend is `NR_TEST_DEVICE` (`wgpu`, `cuda`, `tch` or `tch-cuda`, each only when
//! compiled in); unset, it is the first compiled of wgpu, cuda, tch. `bash scripts/test-wgpu.sh`
//! runs it on wgpu (lavapipe on a machine without a GPU), `bash scripts/test-tch.sh` on LibTorch's
//! CPU backend (CI), `bash scripts/gpu-run.sh` on an NVIDIA GPU (wgpu, and tch-cuda when the
//! machine's PyTorch links).
//!
//! What is compared, per component:
//! - backbone: `Llm::load` of the SmolLM2 GGUF + `forward` of two chat prompts as one left-padded
//!   batch: hidden states of every token at layers 0, 1, 15 and 30 (30 = final norm) and the
//!   next-token logits;
//! - teacher: `TeacherEncoder::load` of all-MiniLM-L6-v2 + `encode` of three sentences (one padded
//!   batch);
//! - heads: linear, mlp, mapper (query and mean pooling) at the real widths (576 -> 384), made once on
//!   flex, saved, and loaded on both devices;
//! - losses: one training step of a linear head under each loss (alignment cosine and MSE, InfoNCE
//!   with in-batch and hard negatives, rank distillation over candidates) on autodiff devices: the
//!   loss value and the gradients of the head's weight and bias and of its input.
//!
//! With `NR_TEST_MODELS=synthetic` the backbone and the teacher are random-weight models in the
//! real ones' exact shapes (`nr_backbone::synthetic`, written to a temporary folder), for machines
//! the real files cannot reach (the GPU check of `scripts/gpu-pack.sh`).
//!
//! Tolerances (relative L2 error `||a - b|| / ||b||`, flex as `b`) are about 10x the largest error
//! measured on wgpu/lavapipe (2026-11-27): backbone hidden states 3.7e-6, logits 4.7e-6, teacher
//! 9.5e-7, heads 7.2e-7, loss values 6.7e-8, loss gradients 4.5e-7. Every comparison prints its max
//! |difference| and relative L2 error (run with `--nocapture`); a GPU backend may need its own.

#![cfg(all(
    feature = "flex",
    any(feature = "wgpu", feature = "cuda", feature = "tch")
))]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use nr_backbone::llama::Llm;
use nr_backbone::synthetic::{BertShape, LlamaShape, write_bert_folder, write_llama_gguf};
use nr_backbone::teacher::TeacherEncoder;
use nr_head::{
    BackboneInfo, Head, HeadConfig, HeadKind, HeadMeta, MapperPooling, Projection, TeacherInfo,
    TokenPooling,
};
use nr_losses::{AlignmentKind, HardNegatives, InfoNce, alignment, candidate_scores, rank_distill};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

/// Relative L2 tolerance of the backbone's hidden states (30 f32 layers; measured 3.7e-6).
const TOL_BACKBONE: f64 = 4e-5;
/// Relative L2 tolerance of the logits (measured 4.7e-6).
const TOL_LOGITS: f64 = 5e-5;
/// Relative L2 tolerance of the teacher's embeddings (measured 9.5e-7).
const TOL_TEACHER: f64 = 1e-5;
/// Relative L2 tolerance of head outputs (measured 7.2e-7).
const TOL_HEAD: f64 = 1e-5;
/// Relative tolerance of loss values and relative L2 tolerance of their gradients (measured 4.5e-7).
const TOL_LOSS: f64 = 5e-6;

/// Hidden width of SmolLM2-135M and embedding width of all-MiniLM-L6-v2: the heads' real sizes.
const H: usize = 576;
const D: usize = 384;

/// The device compared with flex.
fn other_device() -> Device {
    let default = if cfg!(feature = "wgpu") {
        "wgpu"
    } else if cfg!(feature = "cuda") {
        "cuda"
    } else {
        "tch"
    };
    let name = std::env::var("NR_TEST_DEVICE").unwrap_or_else(|_| default.to_string());
    match name.as_str() {
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(Default::default()),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch" => Device::libtorch(),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch-cuda" => Device::libtorch_cuda(0),
        other => panic!(
            "NR_TEST_DEVICE={other}: not a backend compiled into this test (wgpu, cuda, tch, tch-cuda)"
        ),
    }
}

/// The decoder and teacher under test: the fetched real models, or random ones of the same shapes
/// when `NR_TEST_MODELS=synthetic` (written once per test process).
fn models() -> (PathBuf, PathBuf) {
    match std::env::var("NR_TEST_MODELS").as_deref() {
        Ok("synthetic") => {
            static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
            let dir = DIR.get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let start = Instant::now();
                write_llama_gguf(&dir.path().join("llm.gguf"), &LlamaShape::smollm2_135m(), 1)
                    .unwrap();
                write_bert_folder(&dir.path().join("teacher"), &BertShape::minilm_l6(), 2).unwrap();
                eprintln!("synthetic models written in {:.2?}", start.elapsed());
                dir
            });
            (dir.path().join("llm.gguf"), dir.path().join("teacher"))
        }
        Ok("real") | Err(_) => (
            PathBuf::from(common::model("SmolLM2-135M-Instruct.Q4_1.gguf")),
            PathBuf::from(common::model("all-MiniLM-L6-v2")),
        ),
        Ok(other) => panic!("NR_TEST_MODELS={other}: expected real or synthetic"),
    }
}

fn device_name() -> String {
    std::env::var("NR_TEST_DEVICE").unwrap_or_else(|_| "default".into())
}

/// Max |a - b| and ||a - b|| / ||b||.
fn differences(a: &[f32], b: &[f32]) -> (f64, f64) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let (mut max, mut num, mut den) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        assert!(
            x.is_finite() && y.is_finite(),
            "non-finite value: {x} vs {y}"
        );
        let d = (f64::from(x) - f64::from(y)).abs();
        max = max.max(d);
        num += d * d;
        den += f64::from(y) * f64::from(y);
    }
    (max, (num / den).sqrt())
}

/// Asserts `got` (other device) is within relative L2 `tol` of `want` (flex), printing the numbers.
fn check(what: &str, got: &[f32], want: &[f32], tol: f64) {
    let (max, rel) = differences(got, want);
    eprintln!(
        "[{}] {what}: n = {}, max |d| = {max:.3e}, rel L2 = {rel:.3e} (tol {tol:.0e})",
        device_name(),
        want.len()
    );
    assert!(
        rel <= tol,
        "{what}: relative L2 error {rel:.3e} > {tol:.0e} (max |d| {max:.3e})"
    );
}

fn host<const N: usize>(t: Tensor<N>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn tensor<const N: usize>(data: &[f32], shape: [usize; N], device: &Device) -> Tensor<N> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), device)
}

/// A seeded generator of uniform values in `[-1, 1)`.
struct Rng(StdRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }

    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.0.random_range(-1.0f32..1.0)).collect()
    }

    /// `rows` unit vectors of width `dim`, row-major.
    fn unit_rows(&mut self, rows: usize, dim: usize) -> Vec<f32> {
        let mut v = self.vec(rows * dim);
        for row in v.chunks_mut(dim) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= n);
        }
        v
    }
}

#[test]
fn backbone_hidden_states_and_logits_agree_with_flex() {
    let path = models().0;
    let chats = [
        serde_json::json!([{"role": "user", "content": "What is the capital of France?"}]),
        serde_json::json!([
            {"role": "user", "content": "Who wrote The Hobbit?"},
            {"role": "assistant", "content": "J. R. R. Tolkien."},
            {"role": "user", "content": "When was it published?"}
        ]),
    ];
    let layers = [0, 1, 15, 30];
    let run = |device: &Device| {
        let start = Instant::now();
        let llm = Llm::load(&path, device).unwrap();
        assert_eq!(llm.num_layers(), 30);
        let prompts: Vec<Vec<u32>> = chats
            .iter()
            .map(|c| llm.chat_ids(c.as_array().unwrap()).unwrap())
            .collect();
        let loaded = start.elapsed();
        let out = llm.forward(&prompts, &layers, true).unwrap();
        eprintln!(
            "backbone on {device:?}: load {loaded:.2?}, forward {:.2?}",
            start.elapsed() - loaded
        );
        (prompts, out)
    };
    let (prompts, want) = run(&Device::flex());
    let (prompts_other, got) = run(&other_device());
    assert_eq!(
        prompts, prompts_other,
        "tokenisation does not depend on the device"
    );
    assert_ne!(prompts[0].len(), prompts[1].len(), "the batch is padded");
    for (p, (g, w)) in got.iter().zip(&want).enumerate() {
        for layer in layers {
            let (gs, ws) = (&g.hidden[&layer], &w.hidden[&layer]);
            assert_eq!((gs.len, gs.dim), (prompts[p].len(), H));
            assert_eq!((gs.len, gs.dim), (ws.len, ws.dim));
            check(
                &format!("backbone prompt {p} layer {layer}"),
                &gs.data,
                &ws.data,
                TOL_BACKBONE,
            );
        }
        let (gl, wl) = (g.logits.as_ref().unwrap(), w.logits.as_ref().unwrap());
        assert_eq!(gl.len(), 49152);
        check(&format!("backbone prompt {p} logits"), gl, wl, TOL_LOGITS);
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
        assert_eq!(
            argmax(gl),
            argmax(wl),
            "prompt {p}: the greedy next token differs"
        );
    }
}

#[test]
fn teacher_embeddings_agree_with_flex() {
    let dir = models().1;
    let texts = [
        "The capital of France is Paris.",
        "Tolkien's The Hobbit was first published in September 1937 by George Allen & Unwin.",
        "rust",
    ];
    let run = |device: &Device| {
        let start = Instant::now();
        let teacher = TeacherEncoder::load(&dir, device).unwrap();
        let out = teacher.encode(&texts).unwrap();
        eprintln!(
            "teacher on {device:?}: load + encode {:.2?}",
            start.elapsed()
        );
        out
    };
    let want = run(&Device::flex());
    let got = run(&other_device());
    assert_eq!(got.len(), texts.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), D);
        check(&format!("teacher text {i}"), g, w, TOL_TEACHER);
    }
}

/// The setup the test heads claim to belong to.
fn meta(layers: usize) -> HeadMeta {
    HeadMeta {
        backbone: BackboneInfo {
            name: "SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            hidden_size: H,
            layers: (0..layers).map(|l| 15 + l).collect(),
            source: "context".into(),
        },
        teacher: TeacherInfo {
            name: "all-MiniLM-L6-v2".into(),
            dim: D,
        },
    }
}

/// Random hidden states `[batch, layers, tokens, H]` and a mask giving row `i` `lengths[i]` real
/// tokens, as host vectors.
fn hidden_inputs(
    rng: &mut Rng,
    layers: usize,
    lengths: &[usize],
    tokens: usize,
) -> (Vec<f32>, Vec<f32>) {
    let hidden = rng
        .vec(lengths.len() * layers * tokens * H)
        .iter()
        .map(|x| 3.0 * x)
        .collect();
    let mask = lengths
        .iter()
        .flat_map(|&len| (0..tokens).map(move |t| if t < len { 1.0 } else { 0.0 }))
        .collect();
    (hidden, mask)
}

#[test]
fn every_head_kind_computes_the_same_outputs_as_on_flex() {
    let base = |kind| HeadConfig {
        layers: 2,
        hidden: 64,
        ..HeadConfig::new(kind, H, D)
    };
    let configs = [
        base(HeadKind::Linear),
        HeadConfig {
            input_layernorm: true,
            ..base(HeadKind::Mlp)
        },
        base(HeadKind::Mapper),
        HeadConfig {
            mapper_pooling: MapperPooling::Mean,
            input_layernorm: true,
            ..base(HeadKind::Mapper)
        },
        HeadConfig {
            token_pooling: TokenPooling::Attention,
            ..base(HeadKind::Linear)
        },
    ];
    let (lengths, tokens) = ([5, 2, 3], 5);
    let (hidden, mask) = hidden_inputs(&mut Rng::seeded(5), 2, &lengths, tokens);
    let other = other_device();
    for (i, config) in configs.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("head");
        let flex = Device::flex();
        flex.seed(40 + i as u64);
        config.init(&flex).unwrap().save(&stem, &meta(2)).unwrap();
        let run = |device: &Device| {
            let head = Head::load(&stem, &meta(2), device).unwrap();
            let out = head
                .forward(
                    tensor(&hidden, [3, 2, tokens, H], device),
                    tensor(&mask, [3, tokens], device),
                )
                .unwrap();
            assert_eq!(out.dims(), [3, D]);
            host(out)
        };
        let want = run(&flex);
        let got = run(&other);
        // Unit vectors out, and not all alike (the head is not degenerate).
        for row in want.chunks(D) {
            assert!((row.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        }
        assert!(differences(&want[..D], &want[D..2 * D]).1 > 0.1);
        check(
            &format!(
                "head {:?} {:?} {:?}",
                config.kind, config.mapper_pooling, config.token_pooling
            ),
            &got,
            &want,
            TOL_HEAD,
        );
    }
}

/// Loss, gradients of the head's weight and bias, gradient of its input.
struct Step {
    loss: f32,
    weight: Vec<f32>,
    bias: Vec<f32>,
    input: Vec<f32>,
}

/// One training step's forward and backward pass: a linear head (loaded from `stem` onto the autodiff
/// version of `device`) maps `hidden` to the student vectors, `loss` scores them.
fn train_step(
    stem: &Path,
    device: &Device,
    hidden: &[f32],
    mask: &[f32],
    shape: [usize; 4],
    loss: &dyn Fn(Tensor<2>, &Device) -> Tensor<1>,
) -> Step {
    let device = device.clone().autodiff();
    let head = Head::load(stem, &meta(1), &device).unwrap();
    let x = tensor(hidden, shape, &device).require_grad();
    let student = head
        .forward(x.clone(), tensor(mask, [shape[0], shape[2]], &device))
        .unwrap();
    let value = loss(student, &device);
    let grads = value.backward();
    let Projection::Linear(linear) = &head.projection else {
        panic!("a linear head")
    };
    Step {
        loss: host(value)[0],
        weight: host(linear.weight.val().grad(&grads).expect("weight gradient")),
        bias: host(
            linear
                .bias
                .as_ref()
                .unwrap()
                .val()
                .grad(&grads)
                .expect("bias gradient"),
        ),
        input: host(x.grad(&grads).expect("input gradient")),
    }
}

#[test]
fn one_training_step_of_each_loss_agrees_with_flex() {
    let (b, tokens, k) = (4, 3, 6);
    let shape = [b, 1, tokens, H];
    let mut rng = Rng::seeded(17);
    let (hidden, mask) = hidden_inputs(&mut rng, 1, &[3, 1, 2, 3], tokens);
    let targets = rng.unit_rows(b, D);
    let hard = rng.unit_rows(b * 3, D);
    // Keep most hard negatives; drop two (false negatives) so the mask path runs.
    let keep: Vec<f32> = (0..b * 3)
        .map(|i| if i % 5 == 1 { 0.0 } else { 1.0 })
        .collect();
    let candidates = rng.unit_rows(b * k, D);
    let teacher_scores = rng.vec(b * k);

    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("head");
    let flex = Device::flex();
    flex.seed(3);
    HeadConfig::new(HeadKind::Linear, H, D)
        .init(&flex)
        .unwrap()
        .save(&stem, &meta(1))
        .unwrap();

    type LossFn = Box<dyn Fn(Tensor<2>, &Device) -> Tensor<1>>;
    let t2 = targets.clone();
    let t3 = targets.clone();
    let losses: Vec<(&str, LossFn)> = vec![
        (
            "alignment cosine",
            Box::new(move |s: Tensor<2>, d: &Device| {
                alignment(s, tensor(&targets, [b, D], d), AlignmentKind::Cosine).unwrap()
            }),
        ),
        (
            "alignment mse",
            Box::new(move |s: Tensor<2>, d: &Device| {
                alignment(s, tensor(&t2, [b, D], d), AlignmentKind::Mse).unwrap()
            }),
        ),
        (
            "infonce",
            Box::new(move |s: Tensor<2>, d: &Device| {
                let hard = HardNegatives {
                    vectors: tensor(&hard, [b, 3, D], d),
                    keep: tensor(&keep, [b, 3], d),
                };
                InfoNce {
                    temperature: 0.05,
                    in_batch: true,
                }
                .loss(s, tensor(&t3, [b, D], d), Some(hard))
                .unwrap()
            }),
        ),
        (
            "rank distillation",
            Box::new(move |s: Tensor<2>, d: &Device| {
                let scores = candidate_scores(s, tensor(&candidates, [b, k, D], d)).unwrap();
                rank_distill(scores, tensor(&teacher_scores, [b, k], d), 0.05, 0.02).unwrap()
            }),
        ),
    ];
    let other = other_device();
    for (name, loss) in &losses {
        let want = train_step(&stem, &flex, &hidden, &mask, shape, &**loss);
        let got = train_step(&stem, &other, &hidden, &mask, shape, &**loss);
        let rel = (f64::from(got.loss) - f64::from(want.loss)).abs() / f64::from(want.loss).abs();
        eprintln!(
            "[{}] {name}: loss {} (flex {}), rel diff {rel:.3e}",
            device_name(),
            got.loss,
            want.loss
        );
        assert!(
            want.loss > 1e-3 && rel <= TOL_LOSS,
            "{name}: loss {} vs flex {}",
            got.loss,
            want.loss
        );
        // A zero gradient would make the comparison vacuous.
        assert!(
            want.weight.iter().any(|g| g.abs() > 1e-6),
            "{name}: zero weight gradient"
        );
        check(
            &format!("{name} d/d weight"),
            &got.weight,
            &want.weight,
            TOL_LOSS,
        );
        check(&format!("{name} d/d bias"), &got.bias, &want.bias, TOL_LOSS);
        check(
            &format!("{name} d/d input"),
            &got.input,
            &want.input,
            TOL_LOSS,
        );
    }
}
