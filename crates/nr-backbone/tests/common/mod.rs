//! Paths and comparisons shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use serde::Deserialize;

pub mod decoder_reference;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A model under `models/`, or a failure that says how to fetch it (tests never skip silently).
pub fn model_path(name: &str) -> PathBuf {
    let p = repo_root().join("models").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `just models --qwen` (scripts/fetch-models.sh) first",
        p.display()
    );
    p
}

/// A reference file of `../shared/fixtures`, parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let p = nr_data::shared_path(&format!("fixtures/{name}"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared fixtures sit beside the checkout)",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// A reference file this crate generated itself (`tests/fixtures/`, written by
/// scripts/reference/), parsed.
pub fn local_fixture(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of numbers as f32.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON array of integers as u32.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// ||a - b|| / ||b||
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// The teacher folder `models/all-MiniLM-L6-v2`, or a failure that says how to fetch it.
pub fn minilm_dir() -> PathBuf {
    let dir = model_path("all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{}/model.safetensors is missing: run `just models`",
        dir.display()
    );
    dir
}

/// One sentence of `minilm_reference.json`: sentence-transformers' ids and embedding for it.
#[derive(Deserialize)]
pub struct MinilmCase {
    pub text: String,
    pub input_ids: Vec<u32>,
    pub embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct MinilmReference {
    cases: Vec<MinilmCase>,
}

/// The all-MiniLM-L6-v2 reference sentences of `../shared/fixtures/minilm_reference.json`.
pub fn minilm_reference() -> Vec<MinilmCase> {
    let reference: MinilmReference =
        serde_json::from_value(fixture("minilm_reference.json")).expect("fixture parses");
    reference.cases
}
