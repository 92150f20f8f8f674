//! Paths and the `nr` program, shared by the command-line tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of `../shared` (beside the checkout), which must exist.
pub fn shared(path: &str) -> PathBuf {
    let p = root().join("../shared").join(path);
    assert!(
        p.exists(),
        "{} is missing (the shared data sits beside the checkout)",
        p.display()
    );
    p
}

/// A file of the offline QReCC benchmark, as a string for manifests and arguments.
pub fn shared_data(name: &str) -> String {
    shared(&format!("data/qrecc-offline/{name}"))
        .to_string_lossy()
        .to_string()
}

/// A model fetched by `just models`.
pub fn model(name: &str) -> String {
    let p = root().join("models").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `just models` first",
        p.display()
    );
    p.to_string_lossy().to_string()
}

/// Runs `nr` with `args` from the repository root, quietly.
pub fn nr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nr"))
        .args(args)
        .current_dir(root())
        .env("NR_LOG", "warn")
        .output()
        .unwrap()
}

/// `--set` overrides pointing a shipped manifest at the shared data and the fetched models, with
/// outputs under `dir`.
pub fn offline_overrides(dir: &std::path::Path) -> Vec<String> {
    let mut sets = vec![
        format!("output={}", dir.join("out").display()),
        format!("cache={}", dir.join("cache").display()),
        format!("backbone.path={}", model("SmolLM2-135M-Instruct.Q4_1.gguf")),
        format!("teacher.path={}", model("all-MiniLM-L6-v2")),
    ];
    for (key, file) in [
        ("train", "qrecc_train.json"),
        ("dev", "qrecc_dev.json"),
        ("test", "qrecc_test.json"),
        ("passages", "passages.jsonl"),
        ("qrels_train", "qrels_train.txt"),
        ("qrels_dev", "qrels_dev.txt"),
        ("qrels_test", "qrels_test.txt"),
    ] {
        sets.push(format!("data.{key}={}", shared_data(file)));
    }
    sets.into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
}
