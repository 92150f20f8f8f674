//! A tiny manifest through every stage with the real models: data, corpus index, hidden states,
//! rewrites, training, retrieval, scoring, report; then a re-run that is served from the caches.

mod common;

use std::path::{Path, PathBuf};

use common::{model, nr, shared_data};

fn tiny_manifest(dir: &Path) -> PathBuf {
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

#[test]
fn a_tiny_manifest_runs_every_stage_and_writes_parseable_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tiny_manifest(dir.path());
    let m = manifest.to_str().unwrap();
    let out = nr(&["validate", m]);
    assert!(
        out.status.success(),
        "validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = nr(&["run", m]);
    assert!(
        out.status.success(),
        "run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = dir.path().join("out");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("metrics.json")).unwrap()).unwrap();
    let systems = [
        "raw_question",
        "context_question",
        "generate_then_encode",
        "human_rewrite",
        "native",
    ];
    for s in systems {
        for metric in ["recall_10", "mrr_10", "ndcg_cut_3", "recall_100"] {
            let v = metrics["systems"][s][metric]
                .as_f64()
                .unwrap_or_else(|| panic!("{s} {metric} missing"));
            assert!((0.0..=1.0).contains(&v), "{s} {metric} = {v}");
        }
        // The run file is valid TREC and scores to the same numbers with `nr eval`.
        let run_file = run_dir.join("runs").join(format!("{s}.trec"));
        let eval = nr(&[
            "eval",
            "--qrels",
            &shared_data("qrels_test.txt"),
            "--run",
            run_file.to_str().unwrap(),
            "--json",
        ]);
        assert!(
            eval.status.success(),
            "{}",
            String::from_utf8_lossy(&eval.stderr)
        );
        let scored: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
        let a = scored["mean"]["recall_10"].as_f64().unwrap();
        let b = metrics["systems"][s]["recall_10"].as_f64().unwrap();
        assert!(
            (a - b).abs() < 1e-12,
            "{s}: nr eval {a} vs metrics.json {b}"
        );
    }
    // Per-source rows: their turns add up to the scored turns and their weighted means to the mean.
    let scored = metrics["scored_queries"].as_f64().unwrap();
    for s in systems {
        let rows = metrics["per_source"][s]
            .as_object()
            .unwrap_or_else(|| panic!("{s}: no per-source rows"));
        let turns: f64 = rows.values().map(|r| r["turns"].as_f64().unwrap()).sum();
        assert_eq!(turns, scored, "{s}");
        let weighted: f64 = rows
            .values()
            .map(|r| r["turns"].as_f64().unwrap() * r["mrr_10"].as_f64().unwrap())
            .sum();
        let mean = metrics["systems"][s]["mrr_10"].as_f64().unwrap();
        assert!(
            (weighted / scored - mean).abs() < 1e-9,
            "{s}: per-source MRR@10 {weighted} / {scored} vs {mean}"
        );
    }
    assert!(
        std::fs::read_to_string(run_dir.join("report.md"))
            .unwrap()
            .contains("## Per conversation source")
    );

    // The oracle beats the raw question on these turns, as on every QReCC sample.
    assert!(
        metrics["systems"]["human_rewrite"]["recall_10"].as_f64()
            >= metrics["systems"]["raw_question"]["recall_10"].as_f64()
    );
    assert!(run_dir.join("report.md").is_file());
    assert!(run_dir.join("manifest.resolved.toml").is_file());
    assert!(run_dir.join("head.safetensors").is_file() && run_dir.join("head.json").is_file());
    let steps = std::fs::read_to_string(run_dir.join("training/steps.jsonl")).unwrap();
    assert_eq!(
        steps.lines().count(),
        2 * 3,
        "24 turns / batch 8 = 3 steps per epoch, 2 epochs"
    );
    let first: serde_json::Value = serde_json::from_str(steps.lines().next().unwrap()).unwrap();
    assert!(first["loss"]["total"].as_f64().unwrap().is_finite());

    // Same seed, cached stages: the same head, hence the same native run (scores to 6 decimals) and
    // the same weights (compared tensor by tensor: the file's header order may vary).
    let native = || std::fs::read_to_string(run_dir.join("runs/native.trec")).unwrap();
    let tensors = || {
        let bytes = std::fs::read(run_dir.join("head.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut all: Vec<(String, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.data().to_vec()))
            .collect();
        all.sort();
        all
    };
    let (run1, head1) = (native(), tensors());
    let out = nr(&["run", m, "--force", "train"]);
    assert!(
        out.status.success(),
        "re-run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run1 == native(), "same seed gave a different native run");
    assert!(head1 == tensors(), "same seed gave different head weights");

    // --resume continues from the last checkpoint: a third epoch adds its 3 steps to the 6 logged.
    let out = nr(&[
        "run",
        m,
        "--set",
        "training.epochs=3",
        "--set",
        "training.patience=9",
        "--resume",
    ]);
    assert!(
        out.status.success(),
        "resume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps = std::fs::read_to_string(run_dir.join("training/steps.jsonl")).unwrap();
    assert_eq!(
        steps.lines().count(),
        9,
        "resumed run repeated or skipped epochs"
    );
    let last: serde_json::Value = serde_json::from_str(steps.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["epoch"].as_u64(), last["step"].as_u64()),
        (Some(3), Some(9))
    );
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("training/checkpoint-state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["epoch"], 3);
    assert_eq!(state["dev_history"].as_array().unwrap().len(), 3);
}

#[test]
fn manifest_typos_and_missing_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tiny_manifest(dir.path());
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("epochs = 2", "epoch = 2");
    std::fs::write(&manifest, text).unwrap();
    let out = nr(&["validate", manifest.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().last().unwrap();
    assert!(
        line.contains("tiny.toml:") && line.contains("epoch"),
        "{err}"
    );
    // The typo's line number: `epoch = 2` is line 36 of the manifest.
    assert!(line.contains(":36:"), "{err}");

    let fixed = tiny_manifest(dir.path());
    let out = nr(&[
        "validate",
        fixed.to_str().unwrap(),
        "--set",
        "data.test=/nonexistent/test.json",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("data.test = /nonexistent/test.json: not found"),
        "{err}"
    );
}
