//! `nr inspect tokenize`: token ids of a text under the decoder's tokenizer.

use std::path::PathBuf;

use anyhow::Result;
use nr_backbone::llama::LlmTokenizer;

#[derive(clap::Args)]
pub struct TokenizeArgs {
    /// A `.gguf` file or an HF model folder.
    #[arg(long)]
    model: PathBuf,
    /// The text to tokenize.
    #[arg(long)]
    text: String,
}

pub fn run(args: TokenizeArgs) -> Result<()> {
    let tokenizer = LlmTokenizer::load(&args.model)?;
    let ids = tokenizer.encode(&args.text)?;
    println!("{}", serde_json::json!({ "ids": ids }));
    Ok(())
}
