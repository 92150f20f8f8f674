//! `nr inspect generate` (being written).

#[derive(clap::Args)]
pub struct GenerateArgs {}

pub fn run(_args: GenerateArgs) -> anyhow::Result<()> {
    anyhow::bail!("nr inspect generate: not built yet")
}
