//! The teacher loads half-precision checkpoints and `bert.`-prefixed tensor names (as
//! `BertForMaskedLM`-style exports store them) and still reproduces sentence-transformers'
//! all-MiniLM-L6-v2 embeddings, within the rounding of the stored weights.

mod common;

use common::minilm_dir as model_dir;

use std::path::Path;

use burn::tensor::Device;
use nr_backbone::teacher::TeacherEncoder;
use nr_backbone::weights::{SafetensorsWeights, WeightSource};
use safetensors::{Dtype, tensor::TensorView};

/// A copy of MiniLM's folder whose weights are stored as `dtype` under `prefix` + the HF name
/// (the other files are symlinked).
fn converted_folder(dtype: Dtype, prefix: &str) -> tempfile::TempDir {
    let src = model_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&src).expect("model dir") {
        let name = entry.expect("entry").file_name();
        if name != "model.safetensors" {
            std::os::unix::fs::symlink(src.join(&name), tmp.path().join(&name)).expect("symlink");
        }
    }
    let weights = SafetensorsWeights::open_folder(&src).expect("weights");
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    // `embeddings.position_ids` is an i64 buffer, not a weight.
    for name in weights.names().filter(|n| !n.ends_with("position_ids")) {
        let t = weights.tensor(name).expect("tensor");
        let bytes: Vec<u8> = match dtype {
            Dtype::F16 => t
                .data
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
            Dtype::BF16 => t
                .data
                .iter()
                .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                .collect(),
            other => panic!("test converts to f16 or bf16, not {other:?}"),
        };
        tensors.push((format!("{prefix}{name}"), t.shape, bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(dtype, shape.clone(), bytes).expect("view"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &tmp.path().join("model.safetensors"))
        .expect("write safetensors");
    tmp
}

/// Largest relative L2 error of the folder's embeddings against the reference.
fn worst_error(dir: &Path) -> f64 {
    let cases = common::minilm_reference();
    let teacher =
        TeacherEncoder::load(dir, &Device::default()).unwrap_or_else(|e| panic!("load: {e}"));
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let embeddings = teacher.encode(&texts).expect("encode");
    let mut worst = 0.0f64;
    for (case, got) in cases.iter().zip(&embeddings) {
        let diff: f64 = got
            .iter()
            .zip(&case.embedding)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum();
        let norm: f64 = case.embedding.iter().map(|b| f64::from(*b).powi(2)).sum();
        worst = worst.max((diff / norm).sqrt());
    }
    worst
}

#[test]
fn f16_weights_with_bert_prefix_match_the_reference_within_f16_rounding() {
    let tmp = converted_folder(Dtype::F16, "bert.");
    let err = worst_error(tmp.path());
    eprintln!("f16, bert. prefix: worst relative L2 error {err:.2e}");
    // f16 keeps 11 significant bits (relative rounding 2^-11 ~ 5e-4 per weight).
    assert!(err < 5e-3, "worst relative L2 error {err:.2e}");
}

#[test]
fn bf16_weights_without_prefix_match_the_reference_within_bf16_rounding() {
    let tmp = converted_folder(Dtype::BF16, "");
    let err = worst_error(tmp.path());
    eprintln!("bf16: worst relative L2 error {err:.2e}");
    // bf16 keeps 8 significant bits (relative rounding 2^-8 ~ 4e-3 per weight).
    assert!(err < 3e-2, "worst relative L2 error {err:.2e}");
}
