//! `nr eval`: score a TREC run file against qrels, like trec_eval.
//!
//! Any tool's run file can be scored: the metrics follow trec_eval exactly (see `nr_eval::metrics`).
//! Output is a trec_eval-style table (`metric <tab> qid|all <tab> value`) or, with `--json`,
//! `{"mean": {NAME: value}, "per_query": {QID: {NAME: value}}}`. Optional extras: per
//! `Conversation_source` means (`--turns`) and a paired comparison with a baseline run
//! (`--baseline`: bootstrap interval of the mean difference and a randomization test).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nr_data::{Qrels, Run, read_qrecc_turns};
use nr_eval::{
    EvalOptions, Evaluation, Metric, PairedComparison, SignificanceSettings, compare_paired,
    evaluate_with, means_by_source,
};
use serde_json::{Value, json};

/// The metrics printed when `--metrics` is not given.
const DEFAULT_METRICS: [&str; 7] = [
    "recall_10",
    "recall_100",
    "ndcg_cut_3",
    "ndcg_cut_10",
    "P_10",
    "map",
    "mrr_10",
];

#[derive(clap::Args)]
pub struct EvalArgs {
    /// TREC qrels: `qid 0 docid rel` per line.
    #[arg(long)]
    qrels: PathBuf,
    /// TREC run: `qid Q0 docid rank score tag` per line (ranked by score, as trec_eval does).
    #[arg(long)]
    run: PathBuf,
    /// Comma-separated trec_eval metric names: recall_K, P_K, ndcg_cut_K, mrr_K, recip_rank, map.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_METRICS.map(String::from))]
    metrics: Vec<String>,
    /// Print `{"mean": {...}, "per_query": {...}}` as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also print one row per query and metric (trec_eval -q).
    #[arg(short = 'q', long = "per-query")]
    per_query: bool,
    /// Score queries that have relevant documents but no ranking as 0 (trec_eval -c).
    #[arg(short = 'c', long)]
    complete: bool,
    /// QReCC turns file (official JSON): add means per Conversation_source.
    #[arg(long)]
    turns: Option<PathBuf>,
    /// A second run to compare with, query by query (run minus baseline).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Seed of the bootstrap and the randomization test.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Bootstrap resamples of the comparison.
    #[arg(long, default_value_t = 10_000)]
    resamples: usize,
    /// Random sign flips of the randomization test.
    #[arg(long, default_value_t = 10_000)]
    permutations: usize,
}

pub fn run(args: EvalArgs) -> Result<()> {
    // Check metric names and settings before reading (possibly large) files.
    for name in &args.metrics {
        Metric::parse(name)?;
    }
    anyhow::ensure!(
        args.resamples > 0 && args.permutations > 0,
        "--resamples and --permutations: must be at least 1"
    );
    let qrels = Qrels::read(&args.qrels)?;
    let options = EvalOptions {
        complete: args.complete,
    };
    let score = |path: &Path| -> Result<Evaluation> {
        let run = Run::read(path)?;
        let e = evaluate_with(&qrels, &run, &args.metrics, options)?;
        anyhow::ensure!(
            !e.per_query.is_empty(),
            "{}: no query of the run has relevant documents in {}",
            path.display(),
            args.qrels.display()
        );
        Ok(e)
    };
    let e = score(&args.run)?;
    let by_source = match &args.turns {
        Some(path) => {
            let turns = read_qrecc_turns(path)?;
            let by_source = means_by_source(&e, &turns);
            let ungrouped = nr_eval::significance::UNGROUPED;
            anyhow::ensure!(
                by_source.keys().any(|s| s != ungrouped),
                "{}: no scored query of {} is a turn of this file (another split?)",
                path.display(),
                args.run.display()
            );
            if let Some(n) = by_source
                .get(ungrouped)
                .and_then(|m| m.values().next())
                .map(|v| v.1)
            {
                eprintln!(
                    "warning: {n} scored queries are not turns of {} (listed under {ungrouped})",
                    path.display()
                );
            }
            Some(by_source)
        }
        None => None,
    };
    let comparison = match &args.baseline {
        Some(path) => {
            let base = score(path)?;
            let settings = SignificanceSettings {
                resamples: args.resamples,
                permutations: args.permutations,
                level: 0.95,
                seed: args.seed,
            };
            let mut out = BTreeMap::new();
            for metric in &args.metrics {
                let (ours, theirs) = e
                    .paired(&base, metric)
                    .with_context(|| format!("comparing with {} (try -c)", path.display()))?;
                out.insert(metric.clone(), compare_paired(&ours, &theirs, settings)?);
            }
            Some(out)
        }
        None => None,
    };

    if args.json {
        let mut doc = json!({ "mean": e.mean, "per_query": e.per_query });
        if let Some(by_source) = &by_source {
            doc["by_source"] = source_json(by_source);
        }
        if let Some(comparison) = &comparison {
            doc["comparison"] = serde_json::to_value(comparison)?;
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    print!("{}", table(&args.metrics, &e, args.per_query));
    if let Some(by_source) = &by_source {
        for (source, values) in by_source {
            let n = values.values().next().map_or(0, |v| v.1);
            println!("{:<22}\tsource:{source}\t{n}", "num_q");
            for m in &args.metrics {
                println!("{m:<22}\tsource:{source}\t{:.4}", values[m].0);
            }
        }
    }
    if let Some(comparison) = &comparison {
        println!(
            "# run - baseline over {} queries: mean difference, 95% bootstrap interval, randomization-test p",
            e.per_query.len()
        );
        for m in &args.metrics {
            println!("{}", comparison_row(m, &comparison[m]));
        }
    }
    Ok(())
}

/// The trec_eval-style table: optional per-query rows, then `num_q` and the means.
fn table(metrics: &[String], e: &Evaluation, per_query: bool) -> String {
    let mut out = String::new();
    if per_query {
        for (q, values) in &e.per_query {
            for m in metrics {
                out.push_str(&format!("{m:<22}\t{q}\t{:.4}\n", values[m]));
            }
        }
    }
    out.push_str(&format!("{:<22}\tall\t{}\n", "num_q", e.per_query.len()));
    for m in metrics {
        out.push_str(&format!("{m:<22}\tall\t{:.4}\n", e.mean[m]));
    }
    out
}

fn comparison_row(metric: &str, c: &PairedComparison) -> String {
    format!(
        "{metric:<22}\tdiff\t{:+.4}\t[{:+.4}, {:+.4}]\tp={:.4}",
        c.mean_diff, c.ci_low, c.ci_high, c.p_value
    )
}

/// `{source: {"num_q": n, metric: mean, ...}}`.
fn source_json(by_source: &BTreeMap<String, BTreeMap<String, (f64, usize)>>) -> Value {
    let mut out = serde_json::Map::new();
    for (source, values) in by_source {
        let mut entry = serde_json::Map::new();
        let n = values.values().next().map_or(0, |v| v.1);
        entry.insert("num_q".into(), json!(n));
        for (metric, (mean, _)) in values {
            entry.insert(metric.clone(), json!(mean));
        }
        out.insert(source.clone(), Value::Object(entry));
    }
    Value::Object(out)
}
