//! `nr run` of one manifest: every stage in order, then the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::experiment::{Experiment, RunOptions, Stage};
use super::{evaluate, native_head, report};
use crate::atomic_file::write_atomic;
use crate::manifest::Manifest;
use crate::vectors::Vectors;

/// Runs a manifest end to end and returns the path of its report.
pub fn run(manifest: Manifest, opts: &RunOptions) -> Result<PathBuf> {
    if opts.resume && opts.force.contains(&Stage::Train) {
        bail!("--resume continues a training and --force train starts it over: choose one");
    }
    let problems = crate::manifest::validate::problems(&manifest);
    if let Some(first) = problems.first() {
        bail!(
            "{first}{}",
            match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more problems: run `nr validate`)", n - 1),
            }
        );
    }
    let out_dir = manifest.output.clone();
    prepare_output(&out_dir, &manifest, opts.resume)?;
    let ctx = Experiment::load(manifest)?;
    let passages = ctx.teacher.passage_index(
        &ctx.data.passages,
        &ctx.cache,
        opts.force.contains(&Stage::Corpus),
    )?;
    let systems = evaluate::baseline_systems(&ctx, opts)?;
    let native = native_head::train_native(&ctx, &passages, opts)?;
    let native_names: Vec<String> = native.vectors.keys().cloned().collect();
    let mut all: BTreeMap<String, Vectors> = systems.vectors;
    all.extend(native.vectors);
    let mut latency = systems.latency;
    latency.extend(native.latency);
    let mut latency_samples = systems.latency_samples;
    latency_samples.extend(native.latency_samples);
    let results = evaluate::score_systems(&ctx, &passages, &all)?;
    write_query_vectors(&ctx, &out_dir, &all, &native_names)?;
    let measured = report::Measured {
        results: &results,
        latency: &latency,
        latency_samples: &latency_samples,
        native: &native_names,
        cos_to_rewrite: evaluate::fidelity(&all, "human_rewrite"),
        agreement_with_gte: evaluate::agreement_with_gte(&results, &ctx.data.test.qrels),
    };
    report::write(&ctx, &out_dir, &measured)
}

/// What a run writes besides the resolved manifest; a new run clears them first, so a folder never
/// holds results of another configuration beside its manifest (`metrics.json` first: a clearing
/// that stops half way leaves no result).
const RUN_OUTPUTS: [&str; 9] = [
    "metrics.json",
    "report.md",
    "runs",
    "vectors",
    "head",
    "training",
    native_head::SELECTION_REPORT,
    native_head::PRETRAIN_REPORT,
    "pretrain",
];

/// Every system's test query vectors as Parquet (`OUTPUT/vectors/<system>.parquet`): for pandas,
/// DuckDB or another index, and `nr index bench --queries`.
fn write_query_vectors(
    ctx: &Experiment,
    out_dir: &Path,
    systems: &BTreeMap<String, Vectors>,
    native: &[String],
) -> Result<()> {
    let dir = out_dir.join("vectors");
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    for (name, vectors) in systems {
        let meta = nr_index::VectorMeta {
            kind: "queries".into(),
            model: if native.contains(name) {
                format!("{}/head ({name})", ctx.manifest.output.display())
            } else {
                format!("{} ({name})", ctx.manifest.teacher.path.display())
            },
            model_sha256: ctx.teacher.weights_hash.clone(),
            dim: vectors.dim,
            normalized: true,
            source: Some(nr_index::meta::SourceRef {
                path: ctx.manifest.data.test.display().to_string(),
                rows: vectors.len(),
                fingerprint: String::new(),
            }),
            shard: None,
        };
        let path = dir.join(format!("{name}.parquet"));
        nr_index::write_vectors(&path, &meta, vectors, nr_index::VectorDtype::F32)?;
    }
    Ok(())
}

/// Keys a resumed run may change: how long training goes on, where caches live, and the index the
/// test queries are searched with (`index.*`: it changes nothing that was trained).
const RESUMABLE_CHANGES: [&str; 3] = ["training.epochs", "training.patience", "cache"];

fn resumable_change(key: &str) -> bool {
    RESUMABLE_CHANGES.contains(&key) || key.starts_with("index.")
}

/// Readies the output folder: a new run clears the outputs of any earlier one; a resumed run keeps
/// them but refuses settings other than those of the run it continues (naming the keys).
fn prepare_output(dir: &Path, manifest: &Manifest, resume: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let path = dir.join("manifest.resolved.toml");
    let resolved = toml::to_string_pretty(manifest)?;
    if resume {
        if let Ok(before) = std::fs::read_to_string(&path) {
            let refused: Vec<String> = changed_keys(&before, &resolved)?
                .into_iter()
                .filter(|k| !resumable_change(k))
                .collect();
            if !refused.is_empty() {
                bail!(
                    "{}: --resume with other settings than the run it continues ({} differ); run without --resume to start over",
                    path.display(),
                    refused.join(", ")
                );
            }
        }
    } else {
        for name in RUN_OUTPUTS {
            let p = dir.join(name);
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("{}: cannot clear", p.display()));
                }
                _ => {}
            }
        }
    }
    write_atomic(&path, resolved.as_bytes())
}

/// The dotted keys whose values differ between two resolved manifests.
fn changed_keys(a: &str, b: &str) -> Result<Vec<String>> {
    fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &toml::from_str::<toml::Value>(a)?, &mut fa);
    flatten("", &toml::from_str::<toml::Value>(b)?, &mut fb);
    let keys: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    Ok(keys
        .into_iter()
        .filter(|k| fa.get(*k) != fb.get(*k))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_are_named_by_their_dotted_path() {
        let a = "name = \"x\"\n[training]\nlr = 0.1\nepochs = 2\n[head]\nkind = \"linear\"\n";
        let b =
            "name = \"x\"\n[training]\nlr = 0.2\nepochs = 2\n[head]\nkind = \"mlp\"\nhidden = 8\n";
        assert_eq!(
            changed_keys(a, b).unwrap(),
            ["head.hidden", "head.kind", "training.lr"]
        );
        assert!(changed_keys(a, a).unwrap().is_empty());
    }

    fn quickstart() -> Manifest {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../experiments/quickstart.toml");
        Manifest::load(&path, &[]).unwrap()
    }

    #[test]
    fn a_new_run_clears_the_outputs_of_an_earlier_one_and_a_resumed_run_keeps_its_training() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let earlier = || {
            for f in ["metrics.json", "report.md"] {
                std::fs::write(out.join(f), "earlier").unwrap();
            }
            for d in ["runs", "head", "training"] {
                std::fs::create_dir_all(out.join(d)).unwrap();
                std::fs::write(out.join(d).join("x"), "earlier").unwrap();
            }
        };
        let manifest = quickstart();
        earlier();
        prepare_output(out, &manifest, false).unwrap();
        for name in RUN_OUTPUTS {
            assert!(
                !out.join(name).exists(),
                "{name} of the earlier run is still there"
            );
        }
        let resolved = std::fs::read_to_string(out.join("manifest.resolved.toml")).unwrap();
        assert_eq!(resolved, toml::to_string_pretty(&manifest).unwrap());
        // Resuming the same settings keeps the checkpoint folder.
        earlier();
        prepare_output(out, &manifest, true).unwrap();
        assert!(out.join("training/x").is_file());
        // More epochs may be asked for; other settings are refused, naming the key.
        let mut longer = manifest.clone();
        longer.training.epochs += 2;
        prepare_output(out, &longer, true).unwrap();
        let mut other = longer.clone();
        other.training.seed += 1;
        let err = prepare_output(out, &other, true).unwrap_err().to_string();
        assert!(
            err.contains("training.seed") && !err.contains("training.epochs"),
            "{err}"
        );
    }
}
