//! Ablation grids: a `[grid]` table expands a manifest into one run per combination of values.
//! Each run writes its own folder; a finished run (its `metrics.json` exists) is skipped, so a
//! crashed grid resumes where it stopped. The native rows of all runs are collected into
//! `ablation.md`, `.csv` and `.json` in the manifest's output folder.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::atomic_file::write_atomic;
use crate::manifest::{Manifest, apply_override, metric_label};
use crate::pipeline::evaluate::GTE;
use crate::pipeline::report::{MetricsFile, SystemKind};
use crate::pipeline::{self, RunOptions};

/// One combination of grid values: its name and the `key=value` overrides that make it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    pub overrides: Vec<(String, toml::Value)>,
}

/// The cartesian product of the grid's value lists, keys in table order.
pub fn expand(grid: &toml::Table) -> Result<Vec<Variant>> {
    let mut variants = vec![Variant {
        name: String::new(),
        overrides: vec![],
    }];
    for (key, values) in grid {
        let values = values
            .as_array()
            .with_context(|| format!("grid.{key}: expected a list of values"))?;
        anyhow::ensure!(!values.is_empty(), "grid.{key}: empty list");
        let mut next = Vec::new();
        for v in &variants {
            for value in values {
                let mut o = v.overrides.clone();
                o.push((key.clone(), value.clone()));
                let label = format!(
                    "{}={}",
                    key.rsplit('.').next().unwrap_or(key),
                    compact(value)
                );
                let name = if v.name.is_empty() {
                    label
                } else {
                    format!("{},{label}", v.name)
                };
                next.push(Variant { name, overrides: o });
            }
        }
        variants = next;
    }
    Ok(variants)
}

/// A short text for a value: strings bare, lists joined with '+'.
fn compact(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(compact).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// A file-system-safe folder name for a variant.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '=' || c == '+' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The manifest of every variant, each checked as `nr run` checks a manifest, before any runs: a
/// bad grid key or value fails at once, naming the variant.
pub fn variant_manifests(
    path: &Path,
    manifest: &Manifest,
    set: &[String],
) -> Result<Vec<(Variant, Manifest)>> {
    let grid = manifest.grid.clone().context("manifest has no [grid]")?;
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    expand(&grid)?
        .into_iter()
        .map(|v| {
            let mut table: toml::Table = toml::from_str(&text)?;
            for o in set {
                apply_override(&mut table, o)?;
            }
            table.remove("grid");
            for (key, value) in &v.overrides {
                apply_override(&mut table, &format!("{key}={value}"))
                    .with_context(|| format!("{}: grid.{key}", path.display()))?;
            }
            let dir = manifest.output.join("variants").join(slug(&v.name));
            table.insert(
                "output".into(),
                toml::Value::String(dir.to_string_lossy().to_string()),
            );
            table.insert(
                "name".into(),
                toml::Value::String(format!("{} [{}]", manifest.name, v.name)),
            );
            let variant = Manifest::deserialize(toml::Value::Table(table)).map_err(|e| {
                anyhow::anyhow!(
                    "{}: grid variant {}: {}",
                    path.display(),
                    v.name,
                    e.message().trim()
                )
            })?;
            variant
                .check()
                .map_err(|e| anyhow::anyhow!("{}: grid variant {}: {e}", path.display(), v.name))?;
            Ok((v, variant))
        })
        .collect()
}

/// Runs every variant of a manifest's grid and writes the ablation tables; returns ablation.md.
/// `opts` apply to every variant (`--force` redoes the stage in each; `--resume` continues each
/// interrupted training).
pub fn run_grid(
    path: &Path,
    manifest: Manifest,
    set: &[String],
    opts: &RunOptions,
) -> Result<PathBuf> {
    let variants = variant_manifests(path, &manifest, set)?;
    let mut rows: Vec<(String, MetricsFile)> = Vec::new();
    for (i, (v, variant)) in variants.iter().enumerate() {
        let dir = variant.output.clone();
        let metrics_path = dir.join("metrics.json");
        if opts.force.is_empty() && finished_with_same_settings(&dir, variant)? {
            tracing::info!(
                "[{}/{}] {}: done before, skipped",
                i + 1,
                variants.len(),
                v.name
            );
        } else {
            tracing::info!("[{}/{}] {}", i + 1, variants.len(), v.name);
            // A stale result must not pass for this run's if the run stops half way.
            let _ = std::fs::remove_file(&metrics_path);
            pipeline::run(variant.clone(), opts)?;
        }
        rows.push((v.name.clone(), MetricsFile::read(&metrics_path)?));
    }
    write_tables(&manifest.output, &rows)
}

/// Whether a variant's folder holds a finished run (its `metrics.json`) of exactly these settings
/// (its `manifest.resolved.toml`): a crashed grid skips what it finished, and a grid whose manifest
/// or defaults changed since reruns the variants they touch.
fn finished_with_same_settings(dir: &Path, variant: &Manifest) -> Result<bool> {
    if !dir.join("metrics.json").is_file() {
        return Ok(false);
    }
    let Ok(before) = std::fs::read_to_string(dir.join("manifest.resolved.toml")) else {
        return Ok(false);
    };
    Ok(before == toml::to_string_pretty(variant)?)
}

/// ablation.json / .csv / .md and the plot from each variant's metrics: every metric of the runs,
/// the headline metric's paired comparison with generate-then-encode; baselines listed once.
fn write_tables(out: &Path, rows: &[(String, MetricsFile)]) -> Result<PathBuf> {
    let metrics: Vec<String> = rows
        .first()
        .map(|(_, m)| m.metrics.clone())
        .unwrap_or_default();
    let head = metrics.first().cloned().unwrap_or_default();
    let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    let mut csv = String::from("variant,system");
    let mut md = String::from("| variant | system |");
    for m in &metrics {
        let _ = write!(csv, ",{m},{m}_lo,{m}_hi");
        let _ = write!(md, " {} [95% CI] |", metric_label(m));
    }
    let _ = writeln!(csv, ",diff_vs_gte_{head},p_vs_gte_{head}");
    let _ = writeln!(md, " {} - GTE, p |", metric_label(&head));
    md.push_str(&"|---".repeat(metrics.len() + 3));
    md.push_str("|\n");
    let mut groups = Vec::new();
    let mut json = BTreeMap::new();
    for (idx, (name, m)) in rows.iter().enumerate() {
        json.insert(name.clone(), m.clone());
        for sys in m.ordered_systems() {
            let s = &m.systems[sys];
            let native = s.kind == SystemKind::Native;
            // Baselines are the same in every variant: list them once.
            if !native && idx > 0 {
                continue;
            }
            let label = if native { name.clone() } else { sys.clone() };
            let value = |metric: &str| {
                let mean = s.mean.get(metric).copied();
                let ci = s.ci95.get(metric).copied();
                (mean, ci)
            };
            let _ = write!(csv, "\"{label}\",{sys}");
            let _ = write!(md, "| {label} | {sys} |");
            let mut bars = Vec::new();
            for metric in &metrics {
                let (mean, ci) = value(metric);
                let _ = write!(
                    csv,
                    ",{},{},{}",
                    fmt(mean),
                    fmt(ci.map(|c| c.0)),
                    fmt(ci.map(|c| c.1))
                );
                let _ = write!(
                    md,
                    " {} [{}, {}] |",
                    fmt(mean),
                    fmt(ci.map(|c| c.0)),
                    fmt(ci.map(|c| c.1))
                );
                if let (Some(v), Some((lo, hi))) = (mean, ci) {
                    bars.push((v, lo, hi));
                }
            }
            let vs = s.vs_generate_then_encode.get(&head).filter(|_| sys != GTE);
            let _ = writeln!(
                csv,
                ",{},{}",
                fmt(vs.map(|c| c.mean_diff)),
                fmt(vs.map(|c| c.p_value))
            );
            let _ = writeln!(
                md,
                " {} |",
                vs.map_or("-".into(), |c| format!(
                    "{:+.3}, p {:.3}",
                    c.mean_diff, c.p_value
                ))
            );
            if bars.len() >= 2 {
                groups.push(crate::plot::BarGroup {
                    label,
                    values: bars[..2].to_vec(),
                });
            }
        }
    }
    write_atomic(
        &out.join("ablation.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    write_atomic(&out.join("ablation.csv"), csv.as_bytes())?;
    let series: Vec<String> = metrics.iter().take(2).map(|m| metric_label(m)).collect();
    crate::plot::write_plot(
        &groups,
        &series,
        "native heads vs baselines (test split)",
        &out.join("ablation"),
    )?;
    let md_path = out.join("ablation.md");
    write_atomic(&md_path, md.as_bytes())?;
    println!("\n{md}");
    Ok(md_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_expands_to_the_cartesian_product_with_readable_names() {
        let grid: toml::Table = toml::from_str(
            "\"losses.use_terms\" = [[\"align\"], [\"align\", \"rank\"]]\n\"head.kind\" = [\"linear\", \"mlp\", \"mapper\"]\n",
        )
        .unwrap();
        let v = expand(&grid).unwrap();
        assert_eq!(v.len(), 6);
        assert_eq!(v[0].name, "kind=linear,use_terms=align");
        assert_eq!(v[5].name, "kind=mapper,use_terms=align+rank");
        assert_eq!(v[5].overrides.len(), 2);
        assert!(expand(&toml::from_str("a = []").unwrap()).is_err());
    }

    #[test]
    fn a_finished_variant_is_skipped_only_with_the_same_settings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/quickstart.toml");
        let manifest = Manifest::load(&path, &[]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("manifest.resolved.toml"),
            toml::to_string_pretty(&manifest).unwrap(),
        )
        .unwrap();
        assert!(
            !finished_with_same_settings(dir.path(), &manifest).unwrap(),
            "no metrics.json: not finished"
        );
        std::fs::write(dir.path().join("metrics.json"), "{}").unwrap();
        assert!(finished_with_same_settings(dir.path(), &manifest).unwrap());
        let changed = Manifest::load(&path, &["training.seed=7".to_string()]).unwrap();
        assert!(
            !finished_with_same_settings(dir.path(), &changed).unwrap(),
            "other settings: rerun"
        );
    }
}
