//! `nr validate`: checks a manifest and every file it names, without running anything.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::manifest::Manifest;

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The experiment manifest (TOML).
    manifest: PathBuf,
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    set: Vec<String>,
}

pub fn run(args: ValidateArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest, &args.set)?;
    let mut problems = crate::manifest::validate::problems(&manifest);
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
