//! Run outputs: TREC run files per system, `metrics.json` ([`MetricsFile`], read back by the grid),
//! a Markdown report, a printed table. Columns follow `evaluation.metrics`; the first metric is the
//! headline (retention, CI and p-value columns).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nr_eval::PairedComparison;
use serde::{Deserialize, Serialize};

use super::Experiment;
use super::evaluate::{GTE, SystemResult};
use crate::atomic_file::write_atomic;
use crate::latency::Latency;
use crate::manifest::metric_label;

/// Order of systems in tables: baselines first, then native heads.
pub fn order(name: &str) -> (usize, &str) {
    let rank = ["raw_question", "context_question", GTE, "human_rewrite"]
        .iter()
        .position(|s| *s == name)
        .unwrap_or(4);
    (rank, name)
}

/// Whether a system is a baseline (the same in every variant of a grid) or a native encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemKind {
    Baseline,
    Native,
}

/// Means per conversation source: `{system: {source: {metric: mean, "turns": n}}}`.
pub type PerSource = BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>;

/// What a run measured of one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemMetrics {
    pub kind: SystemKind,
    /// Mean of each metric over the scored turns.
    pub mean: BTreeMap<String, f64>,
    /// 95% bootstrap confidence interval of each mean.
    pub ci95: BTreeMap<String, (f64, f64)>,
    /// Paired comparison with generate-then-encode per metric (difference, its CI, p).
    pub vs_generate_then_encode: BTreeMap<String, PairedComparison>,
    /// Median milliseconds of making one query vector, by part.
    pub latency_ms: Option<Latency>,
    /// How many query vectors the latency is the median of.
    pub latency_samples: usize,
    /// Mean cosine with the teacher's embedding of the human rewrite.
    pub cos_to_rewrite: Option<f64>,
    /// Share of scored turns where the system and generate-then-encode both find a gold passage in
    /// their top 10, or both miss.
    pub agreement_with_generate_then_encode: Option<f64>,
}

/// `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    /// The metrics, in the manifest's order (the first is the headline).
    pub metrics: Vec<String>,
    pub scored_queries: usize,
    pub systems: BTreeMap<String, SystemMetrics>,
    /// `{system: {source: {metric: mean, "turns": n}}}` when `evaluation.per_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_source: Option<PerSource>,
}

impl MetricsFile {
    /// Reads `path`, naming it on failure.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a metrics file: {e}", path.display()))
    }

    /// The systems in table order.
    pub fn ordered_systems(&self) -> Vec<&String> {
        let mut names: Vec<&String> = self.systems.keys().collect();
        names.sort_by_key(|n| order(n));
        names
    }
}

/// What the run measured, as written to `metrics.json`.
pub struct Measured<'a> {
    pub results: &'a BTreeMap<String, SystemResult>,
    pub latency: &'a BTreeMap<String, Latency>,
    pub latency_samples: &'a BTreeMap<String, usize>,
    pub native: &'a [String],
    pub cos_to_rewrite: BTreeMap<String, f64>,
    pub agreement_with_gte: BTreeMap<String, f64>,
}

/// The metrics file of a run.
pub fn metrics_file(ctx: &Experiment, m: &Measured) -> MetricsFile {
    let systems = m
        .results
        .iter()
        .map(|(name, r)| {
            let kind = if m.native.contains(name) {
                SystemKind::Native
            } else {
                SystemKind::Baseline
            };
            let metrics = SystemMetrics {
                kind,
                mean: r.mean.clone(),
                ci95: r.ci95.clone(),
                vs_generate_then_encode: r.vs_gte.clone(),
                latency_ms: m.latency.get(name).cloned(),
                latency_samples: m.latency_samples.get(name).copied().unwrap_or(0),
                cos_to_rewrite: m.cos_to_rewrite.get(name).copied(),
                agreement_with_generate_then_encode: m.agreement_with_gte.get(name).copied(),
            };
            (name.clone(), metrics)
        })
        .collect();
    MetricsFile {
        metrics: ctx
            .manifest
            .evaluation
            .metrics
            .iter()
            .map(|m| m.to_string())
            .collect(),
        scored_queries: m.results.values().next().map_or(0, |r| r.per_query.len()),
        systems,
        per_source: ctx
            .manifest
            .evaluation
            .per_source
            .then(|| per_source(m.results, &ctx.data.test.turns)),
    }
}

fn fmt3(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

/// The Markdown results table.
pub fn table(file: &MetricsFile) -> String {
    let Some(head) = file.metrics.first() else {
        return String::new();
    };
    let h = metric_label(head);
    let gte = file
        .systems
        .get(GTE)
        .and_then(|s| s.mean.get(head))
        .copied();
    let mut s = String::from("| system |");
    for m in &file.metrics {
        let _ = write!(s, " {} |", metric_label(m));
    }
    let _ = writeln!(
        s,
        " retention vs GTE ({h}) | {h} 95% CI | {h} - GTE [95% CI], p | cos to rewrite | agrees with GTE | query vector ms: prefill / gen / teacher / head |"
    );
    s.push_str(&"|---".repeat(file.metrics.len() + 7));
    s.push_str("|\n");
    for name in file.ordered_systems() {
        let r = &file.systems[name];
        let _ = write!(s, "| {name} |");
        for m in &file.metrics {
            let _ = write!(s, " {} |", fmt3(r.mean.get(m).copied()));
        }
        let retention = match (gte, r.mean.get(head)) {
            (Some(g), Some(v)) if g > 0.0 => format!("{:.1}%", 100.0 * v / g),
            _ => "-".into(),
        };
        let ci = r
            .ci95
            .get(head)
            .map_or("-".into(), |(lo, hi)| format!("[{lo:.3}, {hi:.3}]"));
        let vs = match r.vs_generate_then_encode.get(head) {
            Some(c) if name != GTE => format!(
                "{:+.3} [{:+.3}, {:+.3}], p {:.3}",
                c.mean_diff, c.ci_low, c.ci_high, c.p_value
            ),
            _ => "-".into(),
        };
        let cos = fmt3(r.cos_to_rewrite);
        let agree = r
            .agreement_with_generate_then_encode
            .map_or("-".into(), |a| format!("{:.1}%", 100.0 * a));
        let lat = r.latency_ms.as_ref().map_or("-".into(), |l| {
            format!(
                "{:.1} / {:.1} / {:.1} / {:.2} (total {:.1})",
                l.prefill_ms,
                l.generation_ms,
                l.teacher_ms,
                l.head_ms,
                l.total()
            )
        });
        let _ = writeln!(s, " {retention} | {ci} | {vs} | {cos} | {agree} | {lat} |");
    }
    s
}

/// Mean of each metric per conversation source (trec / quac / nq) and system, with the number of
/// scored turns: `{system: {source: {metric: mean, "turns": n}}}`.
pub fn per_source(
    results: &BTreeMap<String, SystemResult>,
    turns: &[nr_data::QreccTurn],
) -> PerSource {
    let source_of = nr_data::source_by_turn_id(turns);
    let mut out = PerSource::new();
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
fn per_source_table(file: &MetricsFile) -> Option<String> {
    let rows = file.per_source.as_ref()?;
    let mut s = String::from("| system | source | turns |");
    for m in &file.metrics {
        let _ = write!(s, " {} |", metric_label(m));
    }
    s.push('\n');
    s.push_str(&"|---".repeat(file.metrics.len() + 3));
    s.push_str("|\n");
    let mut names: Vec<&String> = rows.keys().collect();
    names.sort_by_key(|n| order(n));
    for name in names {
        for (source, m) in &rows[name] {
            let turns = m.get("turns").map_or(0, |n| *n as usize);
            let _ = write!(s, "| {name} | {source} | {turns} |");
            for metric in &file.metrics {
                let _ = write!(s, " {} |", fmt3(m.get(metric).copied()));
            }
            s.push('\n');
        }
    }
    Some(s)
}

/// Writes every output of a run into `dir` and prints the table; returns the report's path.
pub fn write(ctx: &Experiment, dir: &Path, measured: &Measured) -> Result<PathBuf> {
    for (name, r) in measured.results {
        let file = dir
            .join("runs")
            .join(format!("{}.trec", name.replace(':', "_")));
        std::fs::create_dir_all(file.parent().unwrap())?;
        r.run.write(&file, name)?;
    }
    let file = metrics_file(ctx, measured);
    write_atomic(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(&file)?.as_bytes(),
    )?;
    let t = table(&file);
    let m = &ctx.manifest;
    let head = file
        .metrics
        .first()
        .map_or(String::new(), |h| metric_label(h));
    let mut report = format!(
        "# {}\n\nTest split: {} turns ({} scored), {} passages. Backbone `{}` (source {:?}, layers {:?}, pool {:?}); teacher `{}`.\n\n{t}\n\
         Retention = {head} / generate-then-encode's {head}. 95% CI: bootstrap interval of the mean ({} resamples). \
         {head} - GTE: the paired difference with generate-then-encode, its bootstrap interval and the paired randomization-test p-value ({} permutations), as `nr eval --baseline` reports it. \
         Cos to rewrite: mean cosine with the teacher's embedding of the human rewrite. Agrees with GTE: share of scored turns where the system and generate-then-encode both find a gold passage in the top 10, or both miss. \
         Latency: medians over {} query vectors made one at a time, as the agent makes them.\n",
        m.name,
        ctx.data.test.turns.len(),
        file.scored_queries,
        ctx.data.passages.len(),
        m.backbone.path.display(),
        m.backbone.source,
        ctx.features.layers,
        m.backbone.pool,
        m.teacher.path.display(),
        m.evaluation.bootstrap,
        m.evaluation.permutations,
        measured
            .latency_samples
            .values()
            .max()
            .copied()
            .unwrap_or(0),
    );
    if let Some(rows) = per_source_table(&file) {
        let _ = write!(report, "\n## Per conversation source\n\n{rows}");
    }
    let path = dir.join("report.md");
    write_atomic(&path, report.as_bytes())?;
    println!("\n{t}");
    Ok(path)
}
