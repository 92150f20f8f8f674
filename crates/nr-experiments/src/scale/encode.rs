//! Sharded, resumable encoding of a passage collection into Parquet: shard `I` of `N` is the
//! `I`-th contiguous slice of the collection in file order, encoded by the teacher and written
//! atomically as `part-0000I-of-0000N.parquet`. A shard whose file is there with the same
//! metadata is done and skipped; a killed run loses at most the shard it was encoding, and no
//! shard is ever written twice or half. Memory holds one shard's passages at a time.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use nr_backbone::teacher::TeacherEncoder;
use nr_data::PassageReader;
use nr_index::meta::SourceRef;
use nr_index::parquet::read_meta;
use nr_index::{Shard, VectorDtype, VectorMeta, Vectors, write_vectors};
use sha2::{Digest, Sha256};

/// What one shard took.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardOutcome {
    /// Encoded and written now.
    Written { rows: usize, seconds: f64 },
    /// Its file was already there, complete and of this set.
    Skipped,
}

/// The collection as the shards' metadata names it: its size and a fingerprint of every id and
/// text in order (one streaming pass).
pub fn fingerprint(collection: &Path) -> Result<SourceRef> {
    let mut hash = Sha256::new();
    let mut rows = 0usize;
    for passage in PassageReader::open(collection)? {
        let p = passage?;
        hash.update(p.id.as_bytes());
        hash.update([0]);
        hash.update(p.contents.as_bytes());
        hash.update([0]);
        rows += 1;
    }
    Ok(SourceRef {
        path: collection.display().to_string(),
        rows,
        fingerprint: hex::encode(hash.finalize()),
    })
}

/// The passages of rows `rows` of a collection, in order.
fn read_rows(
    collection: &Path,
    rows: std::ops::Range<usize>,
) -> Result<(Vec<String>, Vec<String>)> {
    let (mut ids, mut texts) = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    for passage in PassageReader::open(collection)?
        .skip(rows.start)
        .take(rows.len())
    {
        let p = passage?;
        ids.push(p.id);
        texts.push(p.contents);
    }
    anyhow::ensure!(
        ids.len() == rows.len(),
        "{}: the collection changed while it was read ({} of rows {:?})",
        collection.display(),
        ids.len(),
        rows
    );
    Ok((ids, texts))
}

/// A teacher with what names it in the vectors' metadata.
pub struct ShardEncoder<'a> {
    pub teacher: &'a TeacherEncoder,
    /// Folder name of the teacher (for people).
    pub model: String,
    /// SHA-256 of its weights (what is compared).
    pub weights_sha256: String,
    pub batch_size: usize,
    pub dtype: VectorDtype,
}

impl ShardEncoder<'_> {
    /// The metadata of shard `shard` of `source`.
    pub fn meta(&self, source: &SourceRef, shard: Shard) -> VectorMeta {
        VectorMeta {
            kind: "passages".into(),
            model: self.model.clone(),
            model_sha256: self.weights_sha256.clone(),
            dim: self.teacher.dim(),
            normalized: true,
            source: Some(source.clone()),
            shard: Some(shard),
        }
    }

    /// Encodes `shards` of `collection` into `out` (created if needed), skipping finished ones.
    pub fn encode(
        &self,
        collection: &Path,
        source: &SourceRef,
        shards: &[Shard],
        out: &Path,
    ) -> Result<Vec<(Shard, ShardOutcome)>> {
        std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
        let prompt = self
            .teacher
            .prompt(Some("passage"))
            .is_ok()
            .then_some("passage");
        let mut outcomes = Vec::new();
        for &shard in shards {
            let file = out.join(shard.file_name());
            let meta = self.meta(source, shard);
            if file.exists() {
                match read_meta(&file) {
                    Ok(Some(found)) if found == meta => {
                        tracing::info!("shard {shard}: {} is done, skipped", file.display());
                        outcomes.push((shard, ShardOutcome::Skipped));
                        continue;
                    }
                    Ok(_) => tracing::warn!(
                        "shard {shard}: {} is of another model, collection or plan; encoding it again",
                        file.display()
                    ),
                    Err(e) => tracing::warn!("shard {shard}: {e}; encoding it again"),
                }
            }
            let start = Instant::now();
            let rows = shard.rows(source.rows);
            let (ids, texts) = read_rows(collection, rows.clone())?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let encoded =
                self.teacher
                    .encode_many_with_prompt(&refs, prompt, self.batch_size, true)?;
            let vectors = Vectors::new(ids, self.teacher.dim(), encoded.concat())?;
            write_vectors(&file, &meta, &vectors, self.dtype)?;
            let seconds = start.elapsed().as_secs_f64();
            tracing::info!(
                "shard {shard}: {} passages in {seconds:.1} s ({:.1}/s) -> {}",
                rows.len(),
                rows.len() as f64 / seconds.max(1e-9),
                file.display()
            );
            outcomes.push((
                shard,
                ShardOutcome::Written {
                    rows: rows.len(),
                    seconds,
                },
            ));
        }
        Ok(outcomes)
    }
}
