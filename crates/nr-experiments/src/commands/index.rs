//! `nr index`: build an HNSW index over Parquet vectors, and measure it against exact search.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Subcommand;
use nr_index::{HnswIndex, HnswParams, HnswStorage, read_vectors};

use crate::progress::progress;
use crate::scale::index_bench::bench_index;
use crate::scale::memory::peak_rss_bytes;

#[derive(Subcommand)]
pub enum IndexCommand {
    /// Build an HNSW index (one file plus `.json`, `.ids` and, re-scoring, `.f16` beside it)
    /// from Parquet vectors, streaming them.
    Build {
        /// A Parquet file or a folder of shards.
        #[arg(long)]
        vectors: PathBuf,
        /// The index file to write.
        #[arg(long)]
        out: PathBuf,
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
        /// Search efforts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
        ef: Vec<usize>,
        /// Read the index into memory instead of serving it from the file.
        #[arg(long)]
        load: bool,
        /// Write the measurements as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

pub fn run(cmd: IndexCommand) -> Result<()> {
    match cmd {
        IndexCommand::Build {
            vectors,
            out,
            connectivity,
            expansion_add,
            expansion_search,
            storage,
            no_rescore,
        } => {
            let params = HnswParams {
                connectivity,
                expansion_add,
                expansion_search,
                storage,
                rescore: !no_rescore,
            };
            let start = Instant::now();
            let (mut bar, mut last) = (None, 0);
            let sidecar = HnswIndex::build(&vectors, &out, &params, |done, total| {
                let b = bar.get_or_insert_with(|| progress(total, "index build", true));
                b.inc((done - last) as u64);
                last = done;
            })?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let seconds = start.elapsed().as_secs_f64();
            let result = serde_json::json!({
                "index": out,
                "rows": sidecar.rows,
                "dim": sidecar.dim,
                "params": params,
                "build_seconds": seconds,
                "vectors_per_second": sidecar.rows as f64 / seconds,
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
            json,
        } => {
            let (_, q) = read_vectors(&queries)?;
            let bench = bench_index(&index, &vectors, &q, k, &ef, !load)?;
            let text = serde_json::to_string_pretty(&bench)?;
            if let Some(path) = json {
                crate::atomic_file::write_atomic(&path, text.as_bytes())?;
            }
            println!("{text}");
            Ok(())
        }
    }
}
