//! `nr inspect encode` against sentence-transformers' numbers for all-MiniLM-L6-v2
//! (`shared/fixtures/minilm_reference.json`).

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

const MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/all-MiniLM-L6-v2");

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct EncodeOutput {
    embeddings: Vec<Vec<f32>>,
    input_ids: Vec<Vec<u32>>,
}

fn model_dir() -> PathBuf {
    let dir = PathBuf::from(MODEL_DIR);
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run `just models` (scripts/fetch-models.sh) first",
        dir.display()
    );
    dir
}

#[test]
fn encode_prints_reference_ids_and_embeddings() {
    let path = nr_data::shared_path("fixtures/minilm_reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reference: Reference = serde_json::from_str(&text).expect("fixture parses");
    let cases = &reference.cases[..2];
    let output = Command::new(env!("CARGO_BIN_EXE_nr"))
        .args(["inspect", "encode", "--model"])
        .arg(model_dir())
        .args(["--text", &cases[0].text, "--text", &cases[1].text])
        .output()
        .expect("nr runs");
    assert!(
        output.status.success(),
        "nr failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: EncodeOutput =
        serde_json::from_slice(&output.stdout).expect("stdout is the JSON object");
    assert_eq!(out.input_ids.len(), 2);
    assert_eq!(out.embeddings.len(), 2);
    for ((case, ids), embedding) in cases.iter().zip(&out.input_ids).zip(&out.embeddings) {
        assert_eq!(ids, &case.input_ids, "ids of {:?}", case.text);
        let diff: f64 = embedding
            .iter()
            .zip(&case.embedding)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum();
        let norm: f64 = case.embedding.iter().map(|b| f64::from(*b).powi(2)).sum();
        let err = (diff / norm).sqrt();
        assert!(err < 1e-3, "{:?}: relative L2 error {err:.2e}", case.text);
    }
}

#[test]
fn encode_of_a_missing_folder_fails_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_nr"))
        .args([
            "inspect",
            "encode",
            "--model",
            "/nonexistent/teacher",
            "--text",
            "x",
        ])
        .output()
        .expect("nr runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr, "nr: /nonexistent/teacher: missing model folder\n");
}
