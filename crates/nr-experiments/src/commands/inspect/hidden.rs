//! `nr inspect hidden`: hidden states of a chat prompt at chosen layers.

use std::path::PathBuf;

use anyhow::{Result, bail};
use nr_backbone::llama::Llm;

use super::chat_file::read_chat_file;
use crate::device::{DEVICE_HELP, parse_device};

/// How token vectors are pooled into one vector per layer.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Pool {
    /// The last prompt token.
    Last,
    /// The mean over all prompt tokens.
    Mean,
}

#[derive(clap::Args)]
pub struct HiddenArgs {
    /// A `.gguf` file or an HF model folder.
    #[arg(long)]
    model: PathBuf,
    /// JSON list of {role, content} messages, rendered with the model's chat template and generation prompt.
    #[arg(long)]
    chat: PathBuf,
    /// Comma-separated layers: 0 = embeddings, i = output of layer i, the last = after the final norm
    /// (`last` names it).
    #[arg(long, default_value = "last")]
    layers: String,
    #[arg(long, value_enum, default_value = "last")]
    pool: Pool,
    #[arg(long, help = DEVICE_HELP)]
    device: Option<String>,
}

/// Parses `0,15,last` against a model of `num_layers` layers.
pub fn parse_layers(spec: &str, num_layers: usize) -> Result<Vec<usize>> {
    spec.split(',')
        .map(|s| s.trim())
        .map(|s| {
            let layer = if s == "last" {
                num_layers
            } else {
                s.parse::<usize>()
                    .map_err(|_| anyhow::anyhow!("--layers: '{s}' is not a layer index"))?
            };
            if layer > num_layers {
                bail!("--layers: layer {layer} does not exist (the model has 0..={num_layers})");
            }
            Ok(layer)
        })
        .collect()
}

pub fn run(args: HiddenArgs) -> Result<()> {
    let device = parse_device(args.device.as_deref())?;
    let messages = read_chat_file(&args.chat)?;
    let llm = Llm::load(&args.model, &device)?;
    let layers = parse_layers(&args.layers, llm.num_layers())?;
    let prompt = llm.render_chat(&messages)?;
    let ids = llm.tokenizer.encode(&prompt)?;
    let out = llm
        .forward(std::slice::from_ref(&ids), &layers, false)?
        .remove(0);
    let hidden: serde_json::Map<String, serde_json::Value> = out
        .hidden
        .iter()
        .map(|(layer, states)| {
            let v = match args.pool {
                Pool::Last => states.last(),
                Pool::Mean => states.mean(),
            };
            (layer.to_string(), serde_json::json!(v))
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({ "prompt": prompt, "input_ids": ids, "hidden": hidden })
    );
    Ok(())
}
