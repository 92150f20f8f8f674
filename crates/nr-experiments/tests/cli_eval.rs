//! `nr eval` run as a program on TREC files: its numbers equal pytrec_eval's to 1e-9.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::shared;
use serde_json::Value;

fn nr(args: &[&str]) -> Output {
    common::nr(&[&["eval"], args].concat())
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "nr eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Writes the fixture's qrels and run as TREC files; returns the fixture and both paths.
fn fixture_files(dir: &Path) -> (Value, PathBuf, PathBuf) {
    let path = shared("fixtures/trec_metrics_reference.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut qrels = String::new();
    for (q, docs) in fixture["qrels"].as_object().unwrap() {
        for (d, rel) in docs.as_object().unwrap() {
            qrels.push_str(&format!("{q} 0 {d} {rel}\n"));
        }
    }
    let mut run = String::new();
    for (q, docs) in fixture["run"].as_object().unwrap() {
        for (rank, (d, score)) in docs.as_object().unwrap().iter().enumerate() {
            run.push_str(&format!("{q} Q0 {d} {} {score} fixture\n", rank + 1));
        }
    }
    let (qrels_path, run_path) = (dir.join("qrels.txt"), dir.join("run.txt"));
    std::fs::write(&qrels_path, qrels).unwrap();
    std::fs::write(&run_path, run).unwrap();
    (fixture, qrels_path, run_path)
}

/// Our metric names and the fixture's (pytrec_eval's) for the same numbers.
const NAMES: [(&str, &str); 7] = [
    ("recall_10", "recall_10"),
    ("recall_100", "recall_100"),
    ("ndcg_cut_3", "ndcg_cut_3"),
    ("ndcg_cut_10", "ndcg_cut_10"),
    ("P_10", "P_10"),
    ("map", "map"),
    ("mrr_10", "recip_rank_at_10"),
];

#[test]
fn json_output_equals_pytrec_eval_per_query_and_mean() {
    let dir = tempfile::tempdir().unwrap();
    let (fixture, qrels, run) = fixture_files(dir.path());
    let out = nr(&[
        "--qrels",
        qrels.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--json",
    ]);
    let got: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let want_per_query = fixture["per_query"].as_object().unwrap();
    let got_per_query = got["per_query"].as_object().unwrap();
    assert_eq!(got_per_query.len(), want_per_query.len());
    assert_eq!(got_per_query.len(), 24);
    for (q, values) in want_per_query {
        for (ours, theirs) in NAMES {
            let (g, w) = (
                got["per_query"][q][ours].as_f64().unwrap(),
                values[theirs].as_f64().unwrap(),
            );
            assert!((g - w).abs() <= 1e-9, "{q} {ours}: {g} vs {w}");
        }
    }
    for (ours, theirs) in NAMES {
        let (g, w) = (
            got["mean"][ours].as_f64().unwrap(),
            fixture["mean"][theirs].as_f64().unwrap(),
        );
        assert!((g - w).abs() <= 1e-9, "mean {ours}: {g} vs {w}");
    }
}

#[test]
fn table_output_is_trec_eval_style_with_per_query_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (_, qrels, run) = fixture_files(dir.path());
    let args = [
        "--qrels",
        qrels.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
    ];
    let text = stdout(&nr(
        &[&args[..], &["--metrics", "recall_10,ndcg_cut_10"]].concat()
    ));
    // Means from the fixture: recall_10 0.680555..., ndcg_cut_10 0.405700...
    assert_eq!(
        text,
        format!(
            "{:<22}\tall\t24\n{:<22}\tall\t0.6806\n{:<22}\tall\t0.4057\n",
            "num_q", "recall_10", "ndcg_cut_10"
        )
    );
    let text = stdout(&nr(
        &[&args[..], &["--metrics", "ndcg_cut_10", "-q"]].concat()
    ));
    // q0: ndcg_cut_10 0.38685280723454163 in the fixture.
    assert!(
        text.contains(&format!("{:<22}\tq0\t0.3869\n", "ndcg_cut_10")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 24 + 2);
}

#[test]
fn a_malformed_run_or_unknown_metric_fails_with_one_line_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let (_, qrels, _) = fixture_files(dir.path());
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "q0 Q0 d1 1 0.5 t\nq0 Q0 d2 2 t\n").unwrap();
    let out = nr(&[
        "--qrels",
        qrels.to_str().unwrap(),
        "--run",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.txt:2: expected 6 columns"), "{err}");

    let out = nr(&[
        "--qrels",
        qrels.to_str().unwrap(),
        "--run",
        bad.to_str().unwrap(),
        "--metrics",
        "ndcg",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("unknown metric 'ndcg'")
    );
}

#[test]
fn sources_and_a_baseline_comparison_on_qrecc_test() {
    let dir = tempfile::tempdir().unwrap();
    let qrels = shared("data/qrecc-offline/qrels_test.txt");
    // A perfect run: every turn's gold passage at rank 1.
    let perfect: String = std::fs::read_to_string(&qrels)
        .unwrap()
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            format!("{} Q0 {} 1 1.0 perfect\n", cols[0], cols[2])
        })
        .collect();
    let run = dir.path().join("perfect.txt");
    std::fs::write(&run, perfect).unwrap();
    let (qrels, run) = (qrels.to_str().unwrap(), run.to_str().unwrap());
    let turns = shared("data/qrecc-offline/qrecc_test.json");
    let out = nr(&[
        "--qrels",
        qrels,
        "--run",
        run,
        "--json",
        "--metrics",
        "recall_10,mrr_10",
        "--turns",
        turns.to_str().unwrap(),
        "--baseline",
        run,
        "--permutations",
        "99",
        "--resamples",
        "50",
    ]);
    let got: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(got["mean"]["recall_10"], 1.0);
    // 304 scored turns: 236 from QuAC, 68 from NQ.
    assert_eq!(got["by_source"]["quac"]["num_q"], 236);
    assert_eq!(got["by_source"]["nq"]["num_q"], 68);
    assert_eq!(got["by_source"]["nq"]["mrr_10"], 1.0);
    // A run against itself: no difference, p = 1.
    let c = &got["comparison"]["mrr_10"];
    assert_eq!(c["queries"], 304);
    assert_eq!(c["mean_diff"], 0.0);
    assert_eq!(c["ci_low"], 0.0);
    assert_eq!(c["ci_high"], 0.0);
    assert_eq!(c["p_value"], 1.0);
}
