//! Ablation grids: a `[grid]` table expands a manifest into one run per combination of values.
//! Each run writes its own folder; a finished run (its `metrics.json` exists) is skipped, so a
//! crashed grid resumes where it stopped. The native rows of all runs are collected into
//! `ablation.md`, `.csv` and `.json` in the manifest's output folder.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::manifest::{Manifest, apply_override};
use crate::pipeline::cached::write_atomic;
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

/// Runs every variant of a manifest's grid and writes the ablation tables; returns ablation.md.
pub fn run_grid(path: &Path, manifest: Manifest, set: &[String], _resume: bool) -> Result<PathBuf> {
    let grid = manifest.grid.clone().context("manifest has no [grid]")?;
    let variants = expand(&grid)?;
    let out = manifest.output.clone();
    let text = std::fs::read_to_string(path)?;
    let mut rows: Vec<(String, serde_json::Value)> = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let mut table: toml::Table = toml::from_str(&text)?;
        for o in set {
            apply_override(&mut table, o)?;
        }
        table.remove("grid");
        for (key, value) in &v.overrides {
            apply_override(&mut table, &format!("{key}={value}"))?;
        }
        let dir = out.join("variants").join(slug(&v.name));
        table.insert(
            "output".into(),
            toml::Value::String(dir.to_string_lossy().to_string()),
        );
        table.insert(
            "name".into(),
            toml::Value::String(format!("{} [{}]", manifest.name, v.name)),
        );
        let variant = Manifest::deserialize(toml::Value::Table(table))
            .map_err(|e| anyhow::anyhow!("grid variant {}: {}", v.name, e.message()))?;
        let metrics_path = dir.join("metrics.json");
        if finished_with_same_settings(&dir, &variant)? {
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
            pipeline::run(variant, &RunOptions::default())?;
        }
        let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(&metrics_path)?)?;
        rows.push((v.name.clone(), metrics));
    }
    write_tables(&out, &rows)
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

/// ablation.json / .csv / .md from each variant's metrics.json.
fn write_tables(out: &Path, rows: &[(String, serde_json::Value)]) -> Result<PathBuf> {
    let metrics = ["recall_10", "mrr_10", "ndcg_cut_3", "recall_100"];
    let num = |m: &serde_json::Value, sys: &str, k: &str| m["systems"][sys][k].as_f64();
    let ci = |m: &serde_json::Value, sys: &str, k: &str| {
        let c = &m["ci95"][sys][k];
        (c[0].as_f64(), c[1].as_f64())
    };
    let mut json = BTreeMap::new();
    let mut groups = Vec::new();
    let mut csv = String::from(
        "variant,system,recall_10,recall_10_lo,recall_10_hi,mrr_10,mrr_10_lo,mrr_10_hi,ndcg_cut_3,recall_100,p_vs_gte_recall_10\n",
    );
    let mut md = String::from(
        "| variant | system | R@10 [95% CI] | MRR@10 [95% CI] | NDCG@3 | R@100 | p vs GTE (R@10) |\n|---|---|---|---|---|---|---|\n",
    );
    let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    for (idx, (name, m)) in rows.iter().enumerate() {
        json.insert(name.clone(), m.clone());
        let mut systems: Vec<String> = m["systems"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        systems.sort_by(|a, b| {
            crate::pipeline::report::order(a).cmp(&crate::pipeline::report::order(b))
        });
        for sys in systems {
            // Baselines are the same in every variant: list them once.
            if !sys.starts_with("native") && idx > 0 {
                continue;
            }
            let label = if sys.starts_with("native") {
                name.as_str()
            } else {
                "(baseline)"
            };
            let (rl, rh) = ci(m, &sys, "recall_10");
            let (ml, mh) = ci(m, &sys, "mrr_10");
            let p = m["p_vs_generate_then_encode"][&sys]["recall_10"].as_f64();
            if let (Some(r), Some(mr), (Some(rl), Some(rh)), (Some(ml), Some(mh))) = (
                num(m, &sys, "recall_10"),
                num(m, &sys, "mrr_10"),
                (rl, rh),
                (ml, mh),
            ) {
                let label = if sys.starts_with("native") {
                    name.clone()
                } else {
                    sys.clone()
                };
                groups.push(crate::plot::BarGroup {
                    label,
                    recall_10: (r, rl, rh),
                    mrr_10: (mr, ml, mh),
                });
            }
            let _ = writeln!(
                csv,
                "\"{label}\",{sys},{},{},{},{},{},{},{},{},{}",
                fmt(num(m, &sys, metrics[0])),
                fmt(rl),
                fmt(rh),
                fmt(num(m, &sys, metrics[1])),
                fmt(ml),
                fmt(mh),
                fmt(num(m, &sys, metrics[2])),
                fmt(num(m, &sys, metrics[3])),
                fmt(p)
            );
            let _ = writeln!(
                md,
                "| {label} | {sys} | {} [{}, {}] | {} [{}, {}] | {} | {} | {} |",
                fmt(num(m, &sys, metrics[0])),
                fmt(rl),
                fmt(rh),
                fmt(num(m, &sys, metrics[1])),
                fmt(ml),
                fmt(mh),
                fmt(num(m, &sys, metrics[2])),
                fmt(num(m, &sys, metrics[3])),
                fmt(p)
            );
        }
    }
    write_atomic(
        &out.join("ablation.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    write_atomic(&out.join("ablation.csv"), csv.as_bytes())?;
    crate::plot::write_plot(
        &groups,
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
