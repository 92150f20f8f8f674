//! `nr inspect encode` (being written).

#[derive(clap::Args)]
pub struct EncodeArgs {}

pub fn run(_args: EncodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("nr inspect encode: not built yet")
}
