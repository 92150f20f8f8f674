//! `nr inspect tokenize` (being written).

#[derive(clap::Args)]
pub struct TokenizeArgs {}

pub fn run(_args: TokenizeArgs) -> anyhow::Result<()> {
    anyhow::bail!("nr inspect tokenize: not built yet")
}
