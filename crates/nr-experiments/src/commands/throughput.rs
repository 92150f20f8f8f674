//! `nr throughput`: rates of each pipeline stage on one device (prefill, teacher encoding, head
//! training, exact search), on random inputs of the real shapes. Pair it with `nr make-model` on a
//! machine that has no model files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use nr_backbone::llama::Llm;
use nr_backbone::teacher::TeacherEncoder;
use nr_head::{HeadKind, TokenPooling};
use serde::Serialize;

use crate::atomic_file::write_atomic;
use crate::device::{DEVICE_HELP, parse_device};
use crate::manifest::{LossSpec, TrainingSpec};
use crate::throughput::{self, HeadTrainWorkload, Measurement};

#[derive(clap::Args)]
pub struct ThroughputArgs {
    #[arg(long, help = DEVICE_HELP)]
    device: Option<String>,
    /// The decoder (GGUF file or HF folder); without it, no prefill row.
    #[arg(long)]
    llm: Option<PathBuf>,
    /// The teacher (sentence-transformers folder); without it, no teacher row.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// The decoder's projections: auto (bf16 on a CPU with AVX-512 BF16, else f32), f32 or bf16.
    #[arg(long, default_value = "auto")]
    precision: nr_backbone::kernels::Precision,
    /// Prompts per prefill batch.
    #[arg(long, default_value_t = 8)]
    prefill_batch: usize,
    /// Tokens per prompt.
    #[arg(long, default_value_t = 256)]
    prefill_tokens: usize,
    /// Sentences per teacher batch.
    #[arg(long, default_value_t = 256)]
    teacher_batch: usize,
    /// Words per teacher sentence.
    #[arg(long, default_value_t = 24)]
    teacher_words: usize,
    /// Head-training examples per epoch (0: no head rows).
    #[arg(long, default_value_t = 1024)]
    head_examples: usize,
    /// Token states per example for the mapper head.
    #[arg(long, default_value_t = 128)]
    mapper_tokens: usize,
    /// Search queries (0: no search row).
    #[arg(long, default_value_t = 1000)]
    search_queries: usize,
    /// Search passages.
    #[arg(long, default_value_t = 100_000)]
    search_passages: usize,
    /// Timed runs per case, after one warm-up.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Also write the rows here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The head-training rows: each head kind, and the linear head pooling tokens by attention.
const HEAD_ROWS: [(HeadKind, TokenPooling); 4] = [
    (HeadKind::Linear, TokenPooling::Mean),
    (HeadKind::Mlp, TokenPooling::Mean),
    (HeadKind::Mapper, TokenPooling::Mean),
    (HeadKind::Linear, TokenPooling::Attention),
];

/// What `--json` writes.
#[derive(Serialize)]
struct ThroughputFile {
    device: String,
    rows: Vec<Measurement>,
}

pub fn run(args: ThroughputArgs) -> Result<()> {
    let device = parse_device(args.device.as_deref())?;
    let name = args.device.clone().unwrap_or_else(|| format!("{device:?}"));
    let mut rows = Vec::new();
    let mut report = |row: Measurement| {
        println!(
            "| {} | {} | {:.1} {} |",
            row.stage, row.case, row.median, row.unit
        );
        rows.push(row);
    };
    println!("| stage | case | median |\n|---|---|---|");
    let mut widths = (576, 384);
    if let Some(path) = &args.llm {
        let mut llm =
            Llm::load(path, &device).with_context(|| format!("loading {}", path.display()))?;
        let precision = llm.set_precision(args.precision).context("--precision")?;
        widths.0 = llm.hidden_size();
        let mut row =
            throughput::prefill(&llm, args.prefill_batch, args.prefill_tokens, args.repeats)?;
        row.case = format!("{}, {}", row.case, precision.name());
        report(row);
    }
    if let Some(path) = &args.teacher {
        let teacher = TeacherEncoder::load(path, &device)
            .with_context(|| format!("loading {}", path.display()))?;
        widths.1 = teacher.config().bert.hidden_size;
        report(throughput::teacher_encode(
            &teacher,
            args.teacher_batch,
            args.teacher_words,
            args.repeats,
        )?);
    }
    if args.head_examples > 0 {
        let losses = LossSpec::default();
        let training = TrainingSpec::default();
        let workload = HeadTrainWorkload::new(
            args.head_examples,
            widths.0,
            widths.1,
            10_000,
            losses.top_k,
            &[args.mapper_tokens],
        );
        let autodiff = device.clone().autodiff();
        for (kind, pooling) in HEAD_ROWS {
            report(workload.train(kind, pooling, &training, &losses, &autodiff, args.repeats)?);
        }
    }
    if args.search_queries > 0 {
        report(throughput::search(
            &device,
            args.search_queries,
            args.search_passages,
            widths.1,
            10,
            args.repeats,
        )?);
    }
    if let Some(path) = &args.json {
        let file = ThroughputFile { device: name, rows };
        write_atomic(path, serde_json::to_string_pretty(&file)?.as_bytes())?;
    }
    Ok(())
}
