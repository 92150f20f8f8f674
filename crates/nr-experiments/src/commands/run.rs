//! `nr run`: an experiment from its TOML manifest, end to end.

use std::path::PathBuf;

use anyhow::Result;

use crate::manifest::Manifest;
use crate::pipeline::{self, RunOptions, Stage};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The experiment manifest (TOML).
    manifest: PathBuf,
    /// Override a manifest field: `--set data.test=other.json` (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
    /// Recompute a stage even when its cached output exists (repeatable).
    #[arg(long, value_enum)]
    force: Vec<Stage>,
    /// Continue an interrupted training from its last checkpoint.
    #[arg(long)]
    resume: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest, &args.set)?;
    let opts = RunOptions {
        force: args.force.into_iter().collect(),
        resume: args.resume,
    };
    if manifest.grid.is_some() {
        let report = crate::grid::run_grid(&args.manifest, manifest, &args.set, &opts)?;
        println!("report: {}", report.display());
        return Ok(());
    }
    let report = pipeline::run(manifest, &opts)?;
    println!("report: {}", report.display());
    Ok(())
}
