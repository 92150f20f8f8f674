//! `nr inspect generate`: the model's reply to a chat, greedy or sampled.

use std::path::PathBuf;

use anyhow::Result;
use nr_backbone::llama::{GenerateOptions, Llm, Sampling};

use super::chat_file::read_chat_file;
use crate::device::{DEVICE_HELP, parse_device};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// A `.gguf` file or an HF model folder.
    #[arg(long)]
    model: PathBuf,
    /// JSON list of {role, content} messages.
    #[arg(long)]
    chat: PathBuf,
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Sampling temperature; 0 (default) is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus mass kept when sampling.
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, help = DEVICE_HELP)]
    device: Option<String>,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let device = parse_device(args.device.as_deref())?;
    let messages = read_chat_file(&args.chat)?;
    anyhow::ensure!(
        args.temperature.is_finite() && args.temperature >= 0.0,
        "--temperature: must be 0 (greedy) or a positive number, got {}",
        args.temperature
    );
    anyhow::ensure!(
        args.top_p > 0.0 && args.top_p <= 1.0,
        "--top-p: must be in (0, 1], got {}",
        args.top_p
    );
    let llm = Llm::load(&args.model, &device)?;
    let ids = llm.chat_ids(&messages)?;
    let sampling = if args.temperature > 0.0 {
        Sampling::TopP {
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
        }
    } else {
        Sampling::Greedy
    };
    let opts = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        sampling,
        collect_layers: Vec::new(),
    };
    let out = llm.generate(&[ids], &opts)?.remove(0);
    println!(
        "{}",
        serde_json::json!({ "ids": out.ids, "text": out.text, "stop": out.stop })
    );
    Ok(())
}
