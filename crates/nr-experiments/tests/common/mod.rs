//! Paths and the `nr` program, shared by the command-line tests.
#![allow(dead_code)]

pub mod synthetic;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the shared folder (`nr_data::shared_path`), which must exist.
pub fn shared(path: &str) -> PathBuf {
    nr_data::shared_path(path)
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

/// [`nr`] with the info-level log on stderr, for tests that read what a run did.
pub fn nr_logged(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nr"))
        .args(args)
        .current_dir(root())
        .env("NR_LOG", "info")
        .output()
        .unwrap()
}

/// Fails the test with the command's stderr unless it succeeded.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// A tiny manifest over the offline benchmark (24 training turns, 10 dev and test turns, 150
/// passages) with outputs and caches under `dir`, written to `dir/tiny.toml`.
pub fn tiny_manifest(dir: &Path) -> PathBuf {
    let text = format!(
        r#"name = "tiny"
output = "{out}"
cache = "{cache}"

[data]
train = "{train}"
dev = "{dev}"
test = "{test}"
passages = "{passages}"
qrels_train = "{qtrain}"
qrels_dev = "{qdev}"
qrels_test = "{qtest}"
max_train_turns = 24
max_eval_turns = 10
max_passages = 150

[backbone]
path = "{llm}"
layers = [15, "last"]
pool = "last"
max_prompt_tokens = 256
max_new_tokens = 12

[teacher]
path = "{teacher}"

[head]
kind = "mlp"
hidden = 64

[losses]
top_k = 8

[training]
batch_size = 8
epochs = 2
seed = 3

[evaluation]
bootstrap = 200
permutations = 200
per_source = true
"#,
        out = dir.join("out").display(),
        cache = dir.join("cache").display(),
        train = shared_data("qrecc_train.json"),
        dev = shared_data("qrecc_dev.json"),
        test = shared_data("qrecc_test.json"),
        passages = shared_data("passages.jsonl"),
        qtrain = shared_data("qrels_train.txt"),
        qdev = shared_data("qrels_dev.txt"),
        qtest = shared_data("qrels_test.txt"),
        llm = model("SmolLM2-135M-Instruct.Q4_1.gguf"),
        teacher = model("all-MiniLM-L6-v2"),
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}
