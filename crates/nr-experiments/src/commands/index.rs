//! `nr index`: build an index (HNSW or binary) over Parquet vectors, and measure it against exact
//! search.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Subcommand;
use nr_index::hamming::Kernel;
use nr_index::{
    BinaryIndex, BinaryParams, HnswIndex, HnswParams, HnswStorage, IndexKind, read_vectors,
};

use crate::progress::progress;
use crate::scale::index_bench::bench_index;
use crate::scale::memory::peak_rss_bytes;

#[derive(Subcommand)]
pub enum IndexCommand {
    /// Build an index (one file plus `.json`, `.ids` and, re-scoring, `.f16` beside it) from
    /// Parquet vectors, streaming them.
    Build {
        /// A Parquet file or a folder of shards.
        #[arg(long)]
        vectors: PathBuf,
        /// The index file to write.
        #[arg(long)]
        out: PathBuf,
        /// hnsw (a graph; large collections) or binary (sign bits scanned flat, the nearest
        /// re-scored in f16; collections up to ~100k vectors, docs/scale.md).
        #[arg(long, default_value = "hnsw", value_parser = parse_kind)]
        kind: IndexKind,
        /// Binary: rows (nearest codes) re-scored with the f16 vectors per query, by default.
        #[arg(long, default_value_t = BinaryParams::default().candidates)]
        candidates: usize,
        /// Links per node (HNSW's M).
        #[arg(long, default_value_t = 32)]
        connectivity: usize,
        /// Candidates kept while inserting (efConstruction).
        #[arg(long, default_value_t = 200)]
        expansion_add: usize,
        /// Default candidates kept while searching (ef).
        #[arg(long, default_value_t = 64)]
        expansion_search: usize,
        /// Precision of the vectors inside the graph: f32, f16 or i8.
        #[arg(long, default_value = "i8")]
        storage: HnswStorage,
        /// Rank the graph's candidates by the graph's own scores instead of re-scoring them with
        /// an f16 copy of the vectors (`OUT.f16`, 2 bytes per value).
        #[arg(long)]
        no_rescore: bool,
    },
    /// Recall@k and queries/s of an index against exact search on the same vectors.
    Bench {
        #[arg(long)]
        index: PathBuf,
        /// The vectors the index was built from (exact search reads them).
        #[arg(long)]
        vectors: PathBuf,
        /// Query vectors (Parquet).
        #[arg(long)]
        queries: PathBuf,
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Search efforts to measure, comma-separated: HNSW's ef, or the binary index's
        /// re-scored candidates.
        #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
        ef: Vec<usize>,
        /// Read the index into memory instead of serving it from the file.
        #[arg(long)]
        load: bool,
        /// Binary index: the Hamming kernel (avx512, avx2 or portable; default: the fastest this
        /// CPU runs), to measure the fallbacks on a machine that has the fast one.
        #[arg(long, value_parser = parse_kernel)]
        kernel: Option<Kernel>,
        /// Write the measurements as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn parse_kernel(s: &str) -> Result<Kernel, String> {
    match s {
        "avx512" => Ok(Kernel::Avx512),
        "avx2" => Ok(Kernel::Avx2),
        "portable" => Ok(Kernel::Portable),
        other => Err(format!(
            "unknown kernel `{other}` (avx512, avx2 or portable)"
        )),
    }
}

fn parse_kind(s: &str) -> Result<IndexKind, String> {
    match s {
        "hnsw" => Ok(IndexKind::Hnsw),
        "binary" => Ok(IndexKind::Binary),
        other => Err(format!("unknown index kind `{other}` (hnsw or binary)")),
    }
}

pub fn run(cmd: IndexCommand) -> Result<()> {
    match cmd {
        IndexCommand::Build {
            vectors,
            out,
            kind,
            candidates,
            connectivity,
            expansion_add,
            expansion_search,
            storage,
            no_rescore,
        } => {
            let start = Instant::now();
            let (mut bar, mut last) = (None, 0);
            let on_batch = |done: usize, total: usize| {
                let b = bar.get_or_insert_with(|| progress(total, "index build", true));
                b.inc((done - last) as u64);
                last = done;
            };
            let (rows, dim, params) = match kind {
                IndexKind::Hnsw => {
                    let params = HnswParams {
                        connectivity,
                        expansion_add,
                        expansion_search,
                        storage,
                        rescore: !no_rescore,
                    };
                    let sidecar = HnswIndex::build(&vectors, &out, &params, on_batch)?;
                    (sidecar.rows, sidecar.dim, serde_json::to_value(&params)?)
                }
                IndexKind::Binary => {
                    let params = BinaryParams { candidates };
                    let sidecar = BinaryIndex::build(&vectors, &out, &params, on_batch)?;
                    (sidecar.rows, sidecar.dim, serde_json::to_value(&params)?)
                }
            };
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let seconds = start.elapsed().as_secs_f64();
            let result = serde_json::json!({
                "index": out,
                "kind": kind,
                "rows": rows,
                "dim": dim,
                "params": params,
                "build_seconds": seconds,
                "vectors_per_second": rows as f64 / seconds,
                "peak_rss_mb": peak_rss_bytes().map(|b| b as f64 / 1e6),
                "threads": rayon::current_num_threads(),
            });
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }
        IndexCommand::Bench {
            index,
            vectors,
            queries,
            k,
            ef,
            load,
            kernel,
            json,
        } => {
            let (_, q) = read_vectors(&queries)?;
            let bench = bench_index(&index, &vectors, &q, k, &ef, !load, kernel)?;
            let text = serde_json::to_string_pretty(&bench)?;
            if let Some(path) = json {
                crate::atomic_file::write_atomic(&path, text.as_bytes())?;
            }
            println!("{text}");
            Ok(())
        }
    }
}
