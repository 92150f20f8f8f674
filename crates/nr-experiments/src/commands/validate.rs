//! `nr validate`: checks a manifest and every file it names, without running anything.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::manifest::Manifest;

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The experiment manifest (TOML).
    manifest: PathBuf,
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
}

fn require(path: &Path, field: &str, problems: &mut Vec<String>, is_dir: bool) {
    let ok = if is_dir { path.is_dir() } else { path.exists() };
    if !ok {
        problems.push(format!("{field} = {}: not found", path.display()));
    }
}

/// Every problem of the manifest's files and settings, one line each.
pub fn check(manifest: &Manifest) -> Vec<String> {
    let mut p = Vec::new();
    let d = &manifest.data;
    for (field, path) in [
        ("data.train", &d.train),
        ("data.dev", &d.dev),
        ("data.test", &d.test),
        ("data.passages", &d.passages),
        ("data.qrels_train", &d.qrels_train),
        ("data.qrels_dev", &d.qrels_dev),
        ("data.qrels_test", &d.qrels_test),
        ("backbone.path", &manifest.backbone.path),
    ] {
        require(path, field, &mut p, false);
    }
    for (i, path) in d.extra_train.iter().enumerate() {
        require(path, &format!("data.extra_train[{i}]"), &mut p, false);
    }
    require(&manifest.teacher.path, "teacher.path", &mut p, true);
    // Parse the data files too: a malformed file fails here rather than an hour into a run.
    if p.is_empty() {
        for path in [&d.train, &d.dev, &d.test]
            .into_iter()
            .chain(&d.extra_train)
        {
            if let Err(e) = nr_data::read_qrecc_turns(path) {
                p.push(e.to_string());
            }
        }
        for path in [&d.qrels_train, &d.qrels_dev, &d.qrels_test] {
            if let Err(e) = nr_data::Qrels::read(path) {
                p.push(e.to_string());
            }
        }
    }
    p
}

pub fn run(args: ValidateArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest, &args.set)?;
    let mut problems = check(&manifest);
    if manifest.grid.is_some()
        && let Err(e) = crate::grid::variant_manifests(&args.manifest, &manifest, &args.set)
    {
        problems.push(format!("{e:#}"));
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{}: {problem}", args.manifest.display());
        }
        bail!("{}: {} problem(s)", args.manifest.display(), problems.len());
    }
    println!("{}: ok", args.manifest.display());
    Ok(())
}
