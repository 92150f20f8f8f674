//! A tiny manifest through every stage with the real models: data, corpus index, hidden states,
//! rewrites, training, retrieval, scoring, report; then a re-run that is served from the caches.

mod common;

use common::{nr, nr_logged, shared_data, tiny_manifest};

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
            let v = metrics["systems"][s]["mean"][metric]
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
        let b = metrics["systems"][s]["mean"]["recall_10"].as_f64().unwrap();
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
        let mean = metrics["systems"][s]["mean"]["mrr_10"].as_f64().unwrap();
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
        metrics["systems"]["human_rewrite"]["mean"]["recall_10"].as_f64()
            >= metrics["systems"]["raw_question"]["mean"]["recall_10"].as_f64()
    );
    assert!(run_dir.join("report.md").is_file());
    assert!(run_dir.join("manifest.resolved.toml").is_file());
    let encoder = run_dir.join("head");
    assert!(encoder.join("encoder.json").is_file() && encoder.join("head.safetensors").is_file());
    // The native latency is the median of one query vector per timed turn (8 of the 10), each made
    // by the function the agent calls (`NativeEncoder::query_vector` counts them).
    assert_eq!(metrics["systems"]["native"]["latency_samples"], 8);
    assert!(
        metrics["systems"]["native"]["latency_ms"]["prefill_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(metrics["systems"]["native"]["kind"], "native");
    assert_eq!(metrics["systems"]["raw_question"]["kind"], "baseline");
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
        let bytes = std::fs::read(run_dir.join("head/head.safetensors")).unwrap();
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

    // Each system's test query vectors as Parquet, one per scored turn.
    let (_, native_queries) =
        nr_index::read_vectors(&run_dir.join("vectors/native.parquet")).unwrap();
    assert_eq!((native_queries.len(), native_queries.dim), (10, 384));

    // `[index] kind = "hnsw"` (a graph) and `"binary"` (sign codes, the nearest 128 re-scored)
    // score the same query vectors on an index of the 150 passages: at this size each search is
    // exhaustive enough to give exact search's top 10.
    for kind in ["hnsw", "binary"] {
        let out = nr(&["run", m, "--set", &format!("index.kind=\"{kind}\"")]);
        assert!(
            out.status.success(),
            "{kind} run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let on_index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run_dir.join("metrics.json")).unwrap()).unwrap();
        for s in systems {
            for metric in ["recall_10", "mrr_10"] {
                assert_eq!(
                    on_index["systems"][s]["mean"][metric], metrics["systems"][s]["mean"][metric],
                    "{s} {metric}: {kind} against exact"
                );
            }
        }
    }

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

#[test]
fn generated_query_targets_generate_one_query_per_training_turn() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tiny_manifest(dir.path());
    let out = nr(&[
        "run",
        manifest.to_str().unwrap(),
        "--set",
        "losses.target=generated",
        "--set",
        "training.epochs=1",
    ]);
    assert!(
        out.status.success(),
        "run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The context source reads no generated query, and generate-then-encode runs on dev and test
    // (10 turns each): only the training targets ask for the 24 training turns' queries.
    let mut sizes: Vec<usize> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".rewrites.json"))
        .map(|p| {
            serde_json::from_slice::<Vec<String>>(&std::fs::read(&p).unwrap())
                .unwrap()
                .len()
        })
        .collect();
    sizes.sort_unstable();
    assert!(sizes.contains(&24), "rewrite files of sizes {sizes:?}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/metrics.json")).unwrap())
            .unwrap();
    let r10 = metrics["systems"]["native"]["mean"]["recall_10"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&r10));
}

/// The run's log shows exactly one chunk of pre-training windows read afresh, of `turns` windows.
fn assert_one_chunk_read(log: &str, turns: usize) {
    let fresh: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("pretrain: hidden states of"))
        .collect();
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    let want = format!("hidden states of {turns} turns");
    assert!(fresh[0].contains(&want), "{}", fresh[0]);
}

#[test]
fn pretraining_initialises_the_head_reuses_cached_chunks_and_reads_corpus_windows_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tiny_manifest(dir.path());
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(
        &corpus,
        "Dune is a novel by Frank Herbert. It won the Hugo Award in 1966.\n\
         Arrakis is the desert planet of the whole story. Spice is found only there.\n",
    )
    .unwrap();
    let run_with = |texts: &str, extra: &[String]| {
        let mut args = vec![
            "run".to_string(),
            manifest.to_str().unwrap().to_string(),
            "--set".into(),
            "head.kind=linear".into(),
            "--set".into(),
            format!("pretrain.texts={texts}"),
            "--set".into(),
            "pretrain.chunk=16".into(),
            "--set".into(),
            "training.epochs=0".into(),
        ];
        args.extend(extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = nr_logged(&args);
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "run: {log}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/pretrain.json")).unwrap())
                .unwrap();
        (report, log)
    };
    let run = |texts: &str| run_with(texts, &[]);
    let (report, _) = run("40");
    assert_eq!(report["texts"], 40);
    assert_eq!(report["method"], "ridge");
    let held_out = report["heldout_windows"].as_u64().unwrap();
    assert!(
        (1..=1000).contains(&held_out),
        "{held_out} held-out windows"
    );
    let pretrained = report["fidelity_pretrained"].as_f64().unwrap();
    let last = report["fidelity_final"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&pretrained), "fidelity {pretrained}");
    // No training epoch: the head the run ends with is the pre-trained one.
    assert!((pretrained - last).abs() < 1e-9, "{pretrained} vs {last}");
    let pretrained_mrr = report["dev_mrr10"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&pretrained_mrr));
    // Training started from the pre-trained head: dev saw the same head at epoch 0.
    let selection: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/selection.json")).unwrap())
            .unwrap();
    assert_eq!(selection["dense_best_epoch"], 0);
    assert!((selection["dense_dev_mrr10"].as_f64().unwrap() - pretrained_mrr).abs() < 1e-12);

    // 48 windows extend the 40: chunks of 16 are cached, so only the third one is read afresh.
    let (report, log) = run("48");
    assert_eq!(report["texts"], 48);
    assert_one_chunk_read(&log, 16);

    // Corpus windows come after the passage windows, in their own chunk: only they are read.
    // The two paragraphs give 6 windows (each sentence, each pair; `max_sentences` 3).
    let (report, log) = run_with(
        "48",
        &[
            "--set".into(),
            format!("pretrain.corpus=[{:?}]", corpus.to_str().unwrap()),
            "--set".into(),
            "pretrain.corpus_texts=100".into(),
        ],
    );
    assert_eq!(
        (report["texts"].as_u64(), report["corpus_texts"].as_u64()),
        (Some(54), Some(6))
    );
    assert_one_chunk_read(&log, 6);
    assert!(log.contains("the corpus gives 6 windows"), "{log}");
}

#[test]
fn a_pretraining_killed_while_reading_windows_resumes_from_its_last_cached_chunk() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let manifest = tiny_manifest(dir.path());
    let args = [
        "run",
        manifest.to_str().unwrap(),
        "--set",
        "head.kind=linear",
        "--set",
        "pretrain.texts=40",
        "--set",
        "pretrain.chunk=16",
        "--set",
        "training.epochs=0",
    ];
    let chunk_line = "pretrain: hidden states of";
    // Windows come in chunks of 16, 16 and 8: killed (SIGKILL) once the second chunk has started,
    // so the first is cached and the second is not.
    let mut child = Command::new(env!("CARGO_BIN_EXE_nr"))
        .args(args)
        .current_dir(common::root())
        .env("NR_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut started = 0;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        if line.unwrap().contains(chunk_line) {
            started += 1;
            if started == 2 {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(started, 2, "the run ended before its second chunk");
    assert!(!dir.path().join("out/metrics.json").exists());

    let out = nr_logged(&args);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rerun: {log}");
    let read: Vec<&str> = log.lines().filter(|l| l.contains(chunk_line)).collect();
    assert_eq!(read.len(), 2, "{read:?}");
    assert!(
        read[0].contains("of 16 turns") && read[1].contains("of 8 turns"),
        "{read:?}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/pretrain.json")).unwrap())
            .unwrap();
    assert_eq!(report["texts"], 40);
}
