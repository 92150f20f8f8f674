//! Bad inputs a researcher meets, each caught before any stage runs with one line naming the file
//! and the key (or line) at fault, never an all-zero result with exit 0.

mod common;

use std::path::Path;

use common::{model, nr, shared_data, tiny_manifest};

/// The last stderr line of a failed `nr` call.
fn failure(args: &[&str]) -> String {
    let out = nr(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} succeeded: {err}");
    err.lines().last().unwrap_or("").to_string()
}

/// `nr validate` of the tiny manifest with `--set` overrides: its problem lines (each one line,
/// then a count), or the one error line of a manifest that does not load.
fn validate_error(dir: &Path, sets: &[&str]) -> String {
    let m = tiny_manifest(dir);
    let mut args = vec!["validate", m.to_str().unwrap()];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = nr(&args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{sets:?} passed validation: {err}");
    let lines: Vec<&str> = err.lines().collect();
    match lines.split_last() {
        Some((last, problems)) if last.contains("problem(s)") => problems.join("\n"),
        _ => lines.last().unwrap_or(&"").to_string(),
    }
}

#[test]
fn out_of_range_values_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    for (set, key) in [
        ("training.lr=-0.001", "training.lr"),
        ("training.lr=nan", "training.lr"),
        ("training.lr=inf", "training.lr"),
        ("training.batch_size=0", "training.batch_size"),
        ("teacher.batch_size=0", "teacher.batch_size"),
        ("backbone.batch_size=0", "backbone.batch_size"),
        ("losses.temperature=0.0", "losses.temperature"),
        ("losses.temperature=-1.0", "losses.temperature"),
        ("evaluation.depth=0", "evaluation.depth"),
        ("evaluation.depth=5", "evaluation.metrics"), // recall_10 reads deeper than 5
        ("evaluation.bootstrap=0", "evaluation.bootstrap"),
        ("training.patience=0", "training.patience"),
        ("training.warmup_ratio=1.5", "training.warmup_ratio"),
        ("data.max_eval_turns=0", "data.max_eval_turns"),
        ("head.dropout=1.0", "head.dropout"),
    ] {
        let line = validate_error(dir.path(), &[set]);
        assert!(
            line.contains("tiny.toml") && line.contains(key),
            "{set}: {line}"
        );
    }
}

#[test]
fn unknown_names_and_bad_grids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (set, needle) in [
        ("evaluation.metrics=[\"recall_10\",\"mrr10\"]", "mrr10"),
        ("losses.use_terms=[\"align\",\"rnk\"]", "rnk"),
        ("head.kind=\"linaer\"", "linaer"),
        ("losses.align_kind=\"cosin\"", "cosin"),
        ("grid={\"training.lr\"=[0.1,-1.0]}", "training.lr"),
        ("grid={\"training.lrr\"=[0.1]}", "lrr"),
    ] {
        let line = validate_error(dir.path(), &[set]);
        assert!(
            line.contains("tiny.toml") && line.contains(needle),
            "{set}: {line}"
        );
    }
}

#[test]
fn degenerate_data_is_an_error_not_a_zero_score() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let no_turns = dir.path().join("no_turns.json");
    std::fs::write(&no_turns, "[]").unwrap();
    let no_qrels = dir.path().join("no_qrels.txt");
    std::fs::write(&no_qrels, "").unwrap();
    // Test turns that no qrels line judges: every metric would be 0.
    let unjudged = dir.path().join("unjudged.txt");
    std::fs::write(&unjudged, "999999_1 0 some-doc 1\n").unwrap();
    for (set, needle) in [
        (format!("data.passages={}", empty.display()), "no passages"),
        (format!("data.test={}", no_turns.display()), "no turns"),
        (
            format!("data.qrels_test={}", no_qrels.display()),
            "no judgments",
        ),
        (
            format!("data.qrels_test={}", unjudged.display()),
            "none of its turns is judged",
        ),
    ] {
        let line = validate_error(dir.path(), &[&set]);
        assert!(line.contains(needle), "{set}: {line}");
    }
}

#[test]
fn bad_passage_lines_and_duplicate_ids_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"a\", \"contents\": \"x\"}\n{\"id\": \"b\", \"contents\": \"y\"}\n{\"id\": 3}\n",
    )
    .unwrap();
    let line = validate_error(dir.path(), &[&format!("data.passages={}", bad.display())]);
    assert!(line.contains("bad.jsonl:3"), "{line}");
    let dup = dir.path().join("dup.jsonl");
    std::fs::write(
        &dup,
        "{\"id\": \"a\", \"contents\": \"x\"}\n\n{\"id\": \"b\", \"contents\": \"y\"}\n{\"id\": \"a\", \"contents\": \"z\"}\n",
    )
    .unwrap();
    let line = validate_error(dir.path(), &[&format!("data.passages={}", dup.display())]);
    assert!(
        line.contains("dup.jsonl:4") && line.contains("\"a\"") && line.contains("line 1"),
        "{line}"
    );
    // `nr chat` refuses the same collection before loading any model.
    let fake_head = dir.path().join("no-head");
    let line = failure(&[
        "chat",
        "--head",
        fake_head.to_str().unwrap(),
        "--corpus",
        dup.to_str().unwrap(),
    ]);
    assert!(line.contains("dup.jsonl:4"), "{line}");
}

#[test]
fn layers_beyond_the_model_corrupt_models_and_unwritable_outputs_are_caught_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let line = validate_error(dir.path(), &["backbone.layers=[16, 99]"]);
    assert!(
        line.contains("backbone.layers") && line.contains("99"),
        "{line}"
    );
    // A truncated copy of the GGUF file.
    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(model("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let line = validate_error(
        dir.path(),
        &[&format!("backbone.path={}", truncated.display())],
    );
    assert!(line.contains("truncated.gguf"), "{line}");
    // An output path under a regular file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let line = validate_error(dir.path(), &[&format!("output={}", file.display())]);
    assert!(
        line.contains("output") && line.contains("not writable"),
        "{line}"
    );
}

#[test]
fn command_line_values_that_used_to_be_clamped_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let line = failure(&[
        "chat",
        "--head",
        dir.path().to_str().unwrap(),
        "--corpus",
        &shared_data("passages.jsonl"),
        "--top-k",
        "0",
    ]);
    assert!(line.contains("--top-k"), "{line}");
    let chat = dir.path().join("chat.json");
    std::fs::write(&chat, r#"[{"role": "user", "content": "hi"}]"#).unwrap();
    for t in ["nan", "-0.5"] {
        let line = failure(&[
            "inspect",
            "generate",
            "--model",
            &model("SmolLM2-135M-Instruct.Q4_1.gguf"),
            "--chat",
            chat.to_str().unwrap(),
            &format!("--temperature={t}"),
        ]);
        assert!(line.contains("--temperature"), "{t}: {line}");
    }
    let line = failure(&[
        "data",
        "build-qrecc",
        "--input",
        dir.path().to_str().unwrap(),
        "--output",
        dir.path().join("out").to_str().unwrap(),
        "--dev-every",
        "0",
    ]);
    assert!(line.contains("--dev-every"), "{line}");
    // A run file scored against qrels, with 0 resamples, and with the turns of another split.
    let run = dir.path().join("run.trec");
    std::fs::write(&run, "").unwrap();
    let qrels = shared_data("qrels_test.txt");
    let first = std::fs::read_to_string(&qrels).unwrap();
    let mut lines = String::new();
    for l in first.lines().filter(|l| !l.ends_with(" 0")).take(20) {
        let f: Vec<&str> = l.split_whitespace().collect();
        lines.push_str(&format!("{} Q0 {} 1 1.0 x\n", f[0], f[2]));
    }
    std::fs::write(&run, lines).unwrap();
    let (run, qrels) = (run.to_str().unwrap(), qrels.as_str());
    let line = failure(&[
        "eval",
        "--qrels",
        qrels,
        "--run",
        run,
        "--baseline",
        run,
        "--resamples",
        "0",
    ]);
    assert!(line.contains("--resamples"), "{line}");
    let train_turns = shared_data("qrecc_train.json");
    let line = failure(&[
        "eval",
        "--qrels",
        qrels,
        "--run",
        run,
        "--turns",
        &train_turns,
    ]);
    assert!(
        line.contains("qrecc_train.json") && line.contains("another split"),
        "{line}"
    );
}

#[test]
fn resume_refuses_other_settings_naming_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let m = tiny_manifest(dir.path());
    // A folder as an interrupted run leaves it: its resolved manifest.
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let validate = nr(&["validate", m.to_str().unwrap()]);
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    // The resolved form `nr run` writes: every default spelled out.
    let resolved = nr_experiments::manifest::Manifest::load(&m, &[]).unwrap();
    std::fs::write(
        out.join("manifest.resolved.toml"),
        toml::to_string_pretty(&resolved).unwrap(),
    )
    .unwrap();
    let line = failure(&[
        "run",
        m.to_str().unwrap(),
        "--resume",
        "--set",
        "head.kind=\"linear\"",
        "--set",
        "training.lr=0.01",
    ]);
    assert!(
        line.contains("--resume") && line.contains("head.kind") && line.contains("training.lr"),
        "{line}"
    );
    let line = failure(&["run", m.to_str().unwrap(), "--resume", "--force", "train"]);
    assert!(
        line.contains("--resume") && line.contains("--force"),
        "{line}"
    );
}
