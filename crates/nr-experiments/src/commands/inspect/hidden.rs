//! `nr inspect hidden` (being written).

#[derive(clap::Args)]
pub struct HiddenArgs {}

pub fn run(_args: HiddenArgs) -> anyhow::Result<()> {
    anyhow::bail!("nr inspect hidden: not built yet")
}
