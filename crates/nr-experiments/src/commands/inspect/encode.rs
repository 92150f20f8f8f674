//! `nr inspect encode`: teacher embeddings of texts, with the token ids they came from.
//!
//! Prints `{"embeddings": [[...], ...], "input_ids": [[...], ...]}`, one row per `--text`, in order.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use nr_backbone::teacher::TeacherEncoder;
use serde::Serialize;

use crate::device::{DEVICE_HELP, parse_device};

#[derive(clap::Args)]
pub struct EncodeArgs {
    /// A sentence-transformers (or HF BERT) folder, e.g. models/all-MiniLM-L6-v2.
    #[arg(long)]
    model: PathBuf,
    /// A text to encode; repeat for several.
    #[arg(long = "text", value_name = "T", required = true)]
    texts: Vec<String>,
    /// Name of a prompt from the folder's config_sentence_transformers.json (e.g. `query`),
    /// prepended to every text; by default the folder's default prompt, usually none.
    #[arg(long)]
    prompt: Option<String>,
    /// Texts per forward pass (texts are grouped by length first).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, help = DEVICE_HELP)]
    device: Option<String>,
}

#[derive(Serialize)]
struct EncodeOutput {
    embeddings: Vec<Vec<f32>>,
    input_ids: Vec<Vec<u32>>,
}

pub fn run(args: EncodeArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    let device = parse_device(args.device.as_deref())?;
    let teacher = TeacherEncoder::load(&args.model, &device)?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let prompt = args.prompt.as_deref();
    let input_ids = teacher.tokenize_with_prompt(&texts, prompt)?;
    let embeddings = teacher.encode_many_with_prompt(&texts, prompt, args.batch_size, false)?;
    let out = EncodeOutput {
        embeddings,
        input_ids,
    };
    let json = serde_json::to_string(&out).context("serialising embeddings")?;
    println!("{json}");
    Ok(())
}
