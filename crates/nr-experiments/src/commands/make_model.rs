//! `nr make-model`: writes a random-weight model in the exact shape of a real one (or a tiny one),
//! in the format real ones come in, for throughput checks where the real files cannot travel.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use nr_backbone::synthetic::{BertShape, LlamaShape, write_bert_folder, write_llama_gguf};

#[derive(Subcommand)]
pub enum MakeModelCommand {
    /// A Llama-family decoder as one GGUF file (Q8_0 matrices, byte-level tokenizer, ChatML template).
    Llama {
        #[arg(long, value_enum, default_value = "smollm2-135m")]
        shape: LlamaShapeName,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The `.gguf` file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// A BERT encoder as a sentence-transformers folder (safetensors, tokenizer.json, mean pooling).
    Bert {
        #[arg(long, value_enum, default_value = "minilm-l6")]
        shape: BertShapeName,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The folder to write (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LlamaShapeName {
    /// SmolLM2-135M-Instruct (30 layers, width 576).
    #[value(name = "smollm2-135m")]
    Smollm2,
    /// 2 layers of width 64.
    Tiny,
    /// Qwen2.5-Coder-1.5B-Instruct (qwen2: 28 layers, width 1536, q/k/v biases, untied output).
    #[value(name = "qwen2-1.5b")]
    Qwen2,
    /// The tiny shape as a qwen2 decoder.
    #[value(name = "qwen2-tiny")]
    Qwen2Tiny,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum BertShapeName {
    /// all-MiniLM-L6-v2 (6 layers, width 384).
    #[value(name = "minilm-l6")]
    MinilmL6,
    /// 2 layers of width 32.
    Tiny,
}

pub fn run(cmd: MakeModelCommand) -> Result<()> {
    match cmd {
        MakeModelCommand::Llama { shape, seed, out } => {
            let shape = match shape {
                LlamaShapeName::Smollm2 => LlamaShape::smollm2_135m(),
                LlamaShapeName::Tiny => LlamaShape::tiny(),
                LlamaShapeName::Qwen2 => LlamaShape::qwen2_5_1_5b(),
                LlamaShapeName::Qwen2Tiny => LlamaShape::qwen2_tiny(),
            };
            write_llama_gguf(&out, &shape, seed)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{}: random {}, {} parameters, seed {seed}",
                out.display(),
                shape.family.architecture(),
                shape.parameters()
            );
        }
        MakeModelCommand::Bert { shape, seed, out } => {
            let shape = match shape {
                BertShapeName::MinilmL6 => BertShape::minilm_l6(),
                BertShapeName::Tiny => BertShape::tiny(),
            };
            write_bert_folder(&out, &shape, seed)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{}: random bert, {} layers of width {}, seed {seed}",
                out.display(),
                shape.num_layers,
                shape.hidden_size
            );
        }
    }
    Ok(())
}
