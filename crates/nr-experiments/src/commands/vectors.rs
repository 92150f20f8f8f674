//! `nr vectors`: check a folder of shards, or write synthetic vectors to measure an index at scale.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use nr_index::meta::SourceRef;
use nr_index::synthetic::{LikeSpec, Stream, Synthetic, SyntheticSpec};
use nr_index::{Shard, VectorDtype, VectorMeta, Vectors, verify_shards, write_vectors};

use crate::progress::progress;

#[derive(Subcommand)]
pub enum VectorsCommand {
    /// Print a Parquet file's (or folder's) metadata, size and first vectors as one JSON object.
    Show {
        /// A Parquet file or a folder of them (written by nr or by any Arrow tool).
        path: PathBuf,
        /// Vectors to print in full.
        #[arg(long, default_value_t = 3)]
        rows: usize,
    },
    /// Check that a folder of shards is one complete set: every shard once, every id once (and,
    /// with --collection, exactly the collection's ids).
    Verify {
        /// Folder of `part-*.parquet` shards.
        dir: PathBuf,
        /// The collection the shards encode.
        #[arg(long)]
        collection: Option<PathBuf>,
    },
    /// Write random unit vectors as Parquet shards (and a query file), in place of an encoded
    /// collection too large to encode here: clustered, or fitted to real vectors with --like.
    Synthetic {
        #[arg(long, default_value_t = 1_000_000)]
        count: usize,
        /// Width of clustered vectors (--like: the real vectors' width).
        #[arg(long, default_value_t = 384)]
        dim: usize,
        #[arg(long, default_value_t = 8)]
        shards: usize,
        /// Queries from the same distribution, written to OUT/../queries.parquet.
        #[arg(long, default_value_t = 1_000)]
        queries: usize,
        #[arg(long, default_value_t = 1_000)]
        clusters: usize,
        /// Dimension of the latent space around each cluster centre.
        #[arg(long, default_value_t = 32)]
        latent: usize,
        /// Fit the set to these real vectors (Parquet file or folder): each vector is a real one
        /// plus a Gaussian combination of the offsets to its nearest real neighbours.
        #[arg(long, value_name = "VECTORS")]
        like: Option<PathBuf>,
        /// --like: real neighbours spanning each vector's local Gaussian.
        #[arg(long, default_value_t = 16)]
        neighbours: usize,
        /// --like: spread around the real vector, in units of its neighbours' mean squared distance.
        #[arg(long, default_value_t = 1.0)]
        spread: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "f32")]
        dtype: VectorDtype,
        /// Output folder of the shards.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: VectorsCommand) -> Result<()> {
    match cmd {
        VectorsCommand::Show { path, rows } => {
            let (meta, v) = nr_index::read_vectors(&path)?;
            let first: Vec<_> = (0..rows.min(v.len()))
                .map(|i| serde_json::json!({"id": v.ids[i], "vector": v.row(i)}))
                .collect();
            let shown = serde_json::json!({
                "path": path,
                "meta": meta,
                "rows": v.len(),
                "dim": v.dim,
                "first": first,
            });
            println!("{}", serde_json::to_string(&shown)?);
            Ok(())
        }
        VectorsCommand::Verify { dir, collection } => {
            let expected = collection
                .map(|c| -> Result<Vec<String>> {
                    nr_data::PassageReader::open(&c)?
                        .map(|p| Ok(p?.id))
                        .collect()
                })
                .transpose()?;
            let c = verify_shards(&dir, expected.as_deref())?;
            println!(
                "{}: complete: {} shards, {} vectors of {} dimensions ({} of {}), every id once{}",
                dir.display(),
                c.shards,
                c.rows,
                c.meta.dim,
                c.meta.kind,
                c.meta.model,
                if expected.is_some() {
                    ", exactly the collection's ids"
                } else {
                    ""
                }
            );
            Ok(())
        }
        VectorsCommand::Synthetic {
            count,
            dim,
            shards,
            queries,
            clusters,
            latent,
            like,
            neighbours,
            spread,
            seed,
            dtype,
            out,
        } => {
            std::fs::create_dir_all(&out)?;
            let (name, synthetic) = match like {
                None => (
                    format!("synthetic(clusters={clusters},latent={latent},seed={seed})"),
                    Synthetic::new(SyntheticSpec {
                        dim,
                        clusters,
                        latent,
                        seed,
                    }),
                ),
                Some(real) => {
                    let (_, vectors) = nr_index::read_vectors(&real)?;
                    let spec = LikeSpec {
                        neighbours,
                        spread,
                        seed,
                    };
                    let fitted = Synthetic::like(&vectors, &spec)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", real.display()))?;
                    (
                        format!(
                            "synthetic(like={},rows={},neighbours={neighbours},spread={spread},seed={seed})",
                            real.display(),
                            vectors.len()
                        ),
                        fitted,
                    )
                }
            };
            let dim = synthetic.dim();
            let meta = |rows: usize, shard: Option<Shard>, kind: &str| VectorMeta {
                kind: kind.into(),
                model: name.clone(),
                model_sha256: String::new(),
                dim,
                normalized: true,
                source: Some(SourceRef {
                    path: name.clone(),
                    rows,
                    fingerprint: String::new(),
                }),
                shard,
            };
            let bar = progress(count, "synthetic vectors", true);
            for shard in Shard::all(shards.max(1)) {
                let rows = shard.rows(count);
                let ids = rows.clone().map(|i| format!("s{i}")).collect();
                let data = synthetic.rows(Stream::Passages, rows.clone());
                let v = Vectors::new(ids, dim, data)?;
                write_vectors(
                    &out.join(shard.file_name()),
                    &meta(count, Some(shard), "synthetic"),
                    &v,
                    dtype,
                )?;
                bar.inc(rows.len() as u64);
            }
            bar.finish_and_clear();
            let q_path = out.with_file_name(format!(
                "{}-queries.parquet",
                out.file_name()
                    .map_or("synthetic".into(), |n| n.to_string_lossy())
            ));
            let q = Vectors::new(
                (0..queries).map(|i| format!("q{i}")).collect(),
                dim,
                synthetic.rows(Stream::Queries, 0..queries),
            )?;
            write_vectors(
                &q_path,
                &meta(queries, None, "synthetic-queries"),
                &q,
                VectorDtype::F32,
            )?;
            println!(
                "{count} vectors in {} shards in {}; {queries} queries in {}",
                shards,
                out.display(),
                q_path.display()
            );
            Ok(())
        }
    }
}
