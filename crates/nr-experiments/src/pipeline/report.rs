//! Run outputs: TREC run files per system, `metrics.json`, a Markdown report, a printed table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Experiment;
use super::cached::write_atomic;
use super::evaluate::{GTE, Latency, SystemResult};

/// Order of systems in tables: baselines first, then native heads.
pub fn order(name: &str) -> (usize, &str) {
    let rank = ["raw_question", "context_question", GTE, "human_rewrite"]
        .iter()
        .position(|s| *s == name)
        .unwrap_or(4);
    (rank, name)
}

/// How close each system is to the teacher and to generate-then-encode.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Closeness {
    /// Mean cosine with the teacher's embedding of the human rewrite.
    pub cos_to_rewrite: BTreeMap<String, f64>,
    /// Share of scored turns where the system and generate-then-encode both hit or both miss.
    pub agreement_with_gte: BTreeMap<String, f64>,
}

/// The Markdown results table.
pub fn table(
    results: &BTreeMap<String, SystemResult>,
    latency: &BTreeMap<String, Latency>,
    close: &Closeness,
) -> String {
    let gte_r10 = results
        .get(GTE)
        .and_then(|r| r.mean.get("recall_10"))
        .copied();
    let mut names: Vec<&String> = results.keys().collect();
    names.sort_by_key(|n| order(n));
    let mut s = String::new();
    s.push_str("| system | R@10 | MRR@10 | NDCG@3 | R@100 | retention vs GTE (R@10) | R@10 95% CI | p vs GTE (R@10) | cos to rewrite | agrees with GTE | query vector ms: prefill / gen / teacher / head |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    let get =
        |r: &SystemResult, m: &str| r.mean.get(m).map_or("-".to_string(), |v| format!("{v:.3}"));
    for name in names {
        let r = &results[name];
        let retention = match (gte_r10, r.mean.get("recall_10")) {
            (Some(g), Some(v)) if g > 0.0 => format!("{:.1}%", 100.0 * v / g),
            _ => "-".into(),
        };
        let ci = r
            .ci95
            .get("recall_10")
            .map_or("-".into(), |(lo, hi)| format!("[{lo:.3}, {hi:.3}]"));
        let p = if name == GTE {
            "-".into()
        } else {
            r.p_vs_gte
                .get("recall_10")
                .map_or("-".into(), |p| format!("{p:.3}"))
        };
        let lat = latency.get(name).map_or("-".into(), |l| {
            format!(
                "{:.1} / {:.1} / {:.1} / {:.2} (total {:.1})",
                l.prefill_ms,
                l.generation_ms,
                l.teacher_ms,
                l.head_ms,
                l.total()
            )
        });
        let cos = close
            .cos_to_rewrite
            .get(name)
            .map_or("-".into(), |c| format!("{c:.3}"));
        let agree = close
            .agreement_with_gte
            .get(name)
            .map_or("-".into(), |a| format!("{:.1}%", 100.0 * a));
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {retention} | {ci} | {p} | {cos} | {agree} | {lat} |",
            get(r, "recall_10"),
            get(r, "mrr_10"),
            get(r, "ndcg_cut_3"),
            get(r, "recall_100")
        );
    }
    s
}

/// Mean of each metric per conversation source (trec / quac / nq) and system, with the number of
/// scored turns: `{system: {source: {metric: mean, "turns": n}}}`.
pub fn per_source(
    results: &BTreeMap<String, SystemResult>,
    turns: &[nr_data::QreccTurn],
) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> {
    let source_of = nr_data::source_by_turn_id(turns);
    let mut out: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> = BTreeMap::new();
    for (name, r) in results {
        for metric in r.mean.keys() {
            let values: BTreeMap<String, f64> = r
                .per_query
                .iter()
                .filter_map(|(q, m)| Some((q.clone(), *m.get(metric)?)))
                .collect();
            for (source, (mean, n)) in nr_eval::means_by_group(&values, &source_of) {
                let row = out
                    .entry(name.clone())
                    .or_default()
                    .entry(source)
                    .or_default();
                row.insert(metric.clone(), mean);
                row.insert("turns".into(), n as f64);
            }
        }
    }
    out
}

/// The per-source table in Markdown.
fn per_source_table(rows: &BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>) -> String {
    let mut names: Vec<&String> = rows.keys().collect();
    names.sort_by_key(|n| order(n));
    let mut s = String::from(
        "| system | source | turns | R@10 | MRR@10 | NDCG@3 | R@100 |\n|---|---|---|---|---|---|---|\n",
    );
    for name in names {
        for (source, m) in &rows[name] {
            let get = |k: &str| m.get(k).map_or("-".to_string(), |v| format!("{v:.3}"));
            let turns = m.get("turns").map_or(0, |n| *n as usize);
            let _ = writeln!(
                s,
                "| {name} | {source} | {turns} | {} | {} | {} | {} |",
                get("recall_10"),
                get("mrr_10"),
                get("ndcg_cut_3"),
                get("recall_100")
            );
        }
    }
    s
}

/// Writes every output of a run into `dir` and prints the table; returns the report's path.
pub fn write(
    ctx: &Experiment,
    dir: &Path,
    results: &BTreeMap<String, SystemResult>,
    latency: &BTreeMap<String, Latency>,
    close: &Closeness,
) -> Result<PathBuf> {
    for (name, r) in results {
        let file = dir
            .join("runs")
            .join(format!("{}.trec", name.replace(':', "_")));
        std::fs::create_dir_all(file.parent().unwrap())?;
        r.run.write(&file, name)?;
    }
    let by_source = ctx
        .manifest
        .evaluation
        .per_source
        .then(|| per_source(results, &ctx.data.test.turns));
    let mut metrics = serde_json::json!({
        "systems": results.iter().map(|(n, r)| (n.clone(), serde_json::json!(r.mean))).collect::<serde_json::Map<_, _>>(),
        "ci95": results.iter().map(|(n, r)| (n.clone(), serde_json::json!(r.ci95))).collect::<serde_json::Map<_, _>>(),
        "p_vs_generate_then_encode": results.iter().map(|(n, r)| (n.clone(), serde_json::json!(r.p_vs_gte))).collect::<serde_json::Map<_, _>>(),
        "latency_ms": latency,
        "cos_to_rewrite": close.cos_to_rewrite,
        "agreement_with_generate_then_encode": close.agreement_with_gte,
        "scored_queries": results.values().next().map_or(0, |r| r.per_query.len()),
    });
    if let Some(rows) = &by_source {
        metrics["per_source"] = serde_json::json!(rows);
    }
    write_atomic(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)?.as_bytes(),
    )?;
    let t = table(results, latency, close);
    let m = &ctx.manifest;
    let report = format!(
        "# {}\n\nTest split: {} turns ({} scored), {} passages. Backbone `{}` (source {:?}, layers {:?}, pool {:?}); teacher `{}`.\n\n{t}\n\
         Retention = R@10 / generate-then-encode's R@10. Cos to rewrite: mean cosine with the teacher's embedding of the human rewrite. Agrees with GTE: share of scored turns where the system and generate-then-encode both find a gold passage in the top 10, or both miss. CI: {} bootstrap resamples; p: paired randomization test, {} permutations.\n",
        m.name,
        ctx.data.test.turns.len(),
        results.values().next().map_or(0, |r| r.per_query.len()),
        ctx.data.passages.len(),
        m.backbone.path.display(),
        m.backbone.source,
        ctx.layers,
        m.backbone.pool,
        m.teacher.path.display(),
        m.evaluation.bootstrap,
        m.evaluation.permutations,
    );
    let report = match &by_source {
        Some(rows) => format!(
            "{report}\n## Per conversation source\n\n{}",
            per_source_table(rows)
        ),
        None => report,
    };
    let path = dir.join("report.md");
    write_atomic(&path, report.as_bytes())?;
    println!("\n{t}");
    Ok(path)
}
