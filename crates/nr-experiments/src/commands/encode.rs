//! `nr encode`: a passage collection encoded by the teacher into Parquet shards, one shard or all,
//! resumable; the job unit of a Slurm array or a Kubernetes indexed Job (docs/scale.md).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use nr_backbone::teacher::TeacherEncoder;
use nr_index::{Shard, VectorDtype};

use crate::device::{DEVICE_HELP, parse_device};
use crate::scale::encode::{ShardEncoder, ShardOutcome, fingerprint};

#[derive(Args)]
pub struct EncodeArgs {
    /// Passage collection: a Pyserini `.jsonl` file or a folder of them.
    #[arg(long)]
    collection: PathBuf,
    /// Teacher folder (sentence-transformers layout).
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    teacher: PathBuf,
    /// Output folder of the shards (`part-0000I-of-0000N.parquet`).
    #[arg(long)]
    out: PathBuf,
    /// Number of shards the collection is cut into.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Encode only shard I of N (`I/N`, 0-based; e.g. `$SLURM_ARRAY_TASK_ID/16`); default: every
    /// shard, one after the other.
    #[arg(long)]
    shard: Option<Shard>,
    /// Stored precision of the vectors.
    #[arg(long, default_value = "f32")]
    dtype: VectorDtype,
    /// Passages per teacher batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, help = DEVICE_HELP)]
    device: Option<String>,
}

pub fn run(args: EncodeArgs) -> Result<()> {
    let shards: Vec<Shard> = match args.shard {
        Some(s) if s.count != args.shards && args.shards != 1 => {
            bail!("--shard {s} and --shards {} disagree", args.shards)
        }
        Some(s) => vec![s],
        None => Shard::all(args.shards.max(1)).collect(),
    };
    let device = parse_device(args.device.as_deref())?;
    let teacher = TeacherEncoder::load(&args.teacher, &device)?;
    let source = fingerprint(&args.collection)?;
    tracing::info!(
        "{}: {} passages, {} shard(s) of {} to encode",
        args.collection.display(),
        source.rows,
        shards.len(),
        shards[0].count
    );
    let encoder = ShardEncoder {
        teacher: &teacher,
        model: args.teacher.file_name().map_or_else(
            || args.teacher.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        weights_sha256: crate::pipeline::model_hash(&args.teacher)?,
        batch_size: args.batch_size,
        dtype: args.dtype,
    };
    let outcomes = encoder.encode(&args.collection, &source, &shards, &args.out)?;
    let written = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, ShardOutcome::Written { .. }))
        .count();
    println!(
        "{} shard(s) written, {} already done, in {}",
        written,
        outcomes.len() - written,
        args.out.display()
    );
    Ok(())
}
