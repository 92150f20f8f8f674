//! A token-level feature store: the LLM's hidden states of every token of many texts, as f16
//! shards on disk that are read a text at a time.
//!
//! Sequence heads read token states, and millions of tokens do not fit in RAM as f32 (a text of 15
//! tokens at 2 layers x 576 is 69 KB). A store is one folder per [`CacheKey`] (the model, the texts
//! and the settings, as for [`crate::TensorCache`]):
//!
//! - `shard-NNNNN.f16`: the shard's states, `[tokens, layers, dim]` row-major, little-endian f16;
//! - `shard-NNNNN.lengths`: each text's token count, little-endian u32;
//! - `store.json`: format, key, layers, dim, the finished shards and whether the store is complete.
//!
//! Shards are written to a temporary name and renamed, then listed in `store.json` (also replaced
//! atomically): a killed writer leaves the shards it finished, and [`FeatureStoreWriter::open`]
//! resumes after them. A listed shard whose size disagrees with its lengths (truncated), or a store
//! of another key or shape, is never read: the writer rebuilds it, [`FeatureStore::open`] refuses.
//!
//! Texts are read with positioned reads, not a memory map: the kernel's page cache keeps what fits,
//! and the reader's resident memory stays one text whatever the store's size (a map would count
//! every page touched in an epoch as resident).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt;
use serde::{Deserialize, Serialize};

use crate::cache::{CacheKey, write_atomically};
use crate::error::{DataError, Result};

// Shards hold little-endian f16 and are read straight into f16 values.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "feature stores are little-endian"
);

/// Version of the store layout; stores of another version are rebuilt.
pub const FEATURE_STORE_FORMAT: &str = "nr-features-1";

const MANIFEST: &str = "store.json";

/// What `store.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: String,
    key: String,
    layers: usize,
    dim: usize,
    /// Finished shards, in order: (texts, tokens) of each.
    shards: Vec<ShardInfo>,
    complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct ShardInfo {
    texts: usize,
    tokens: usize,
}

fn shard_paths(dir: &Path, i: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("shard-{i:05}.f16")),
        dir.join(format!("shard-{i:05}.lengths")),
    )
}

fn store_error(dir: &Path, problem: impl Into<String>) -> DataError {
    DataError::Cache {
        path: dir.to_path_buf(),
        problem: problem.into(),
    }
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| store_error(&path, format!("not a feature store manifest: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DataError::io(&path, e)),
    }
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(m).map_err(|e| store_error(dir, e.to_string()))?;
    write_atomically(&dir.join(MANIFEST), &bytes)
}

/// Why shard `i` of `m` cannot be read, if it cannot.
fn shard_problem(dir: &Path, m: &Manifest, i: usize) -> Option<String> {
    let info = m.shards[i];
    let (data, lengths) = shard_paths(dir, i);
    let want_data = (info.tokens * m.layers * m.dim * 2) as u64;
    let want_lengths = (info.texts * 4) as u64;
    for (path, want) in [(&data, want_data), (&lengths, want_lengths)] {
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() == want => {}
            Ok(meta) => {
                return Some(format!(
                    "{}: {} bytes where the manifest implies {want} (truncated or overwritten)",
                    path.display(),
                    meta.len()
                ));
            }
            Err(e) => return Some(format!("{}: {e}", path.display())),
        }
    }
    None
}

/// Appends texts' token states to a store, one shard at a time; resumes a killed run.
pub struct FeatureStoreWriter {
    dir: PathBuf,
    key: CacheKey,
    manifest: Manifest,
    shard_tokens: usize,
    pending: Vec<f16>,
    pending_lengths: Vec<u32>,
}

impl FeatureStoreWriter {
    /// Opens the store of `key` in `dir` for appending, with shards of about `shard_tokens`
    /// tokens. An existing store of the same key and shape is resumed after its last sound shard
    /// (see [`Self::texts_done`]); one of another key, shape or format is discarded.
    pub fn open(
        dir: &Path,
        key: &CacheKey,
        layers: usize,
        dim: usize,
        shard_tokens: usize,
    ) -> Result<Self> {
        if layers == 0 || dim == 0 {
            return Err(DataError::Invalid(format!(
                "feature store {}: {layers} layers x {dim} dims holds nothing",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let fresh = Manifest {
            format: FEATURE_STORE_FORMAT.into(),
            key: key.as_str().into(),
            layers,
            dim,
            shards: Vec::new(),
            complete: false,
        };
        let manifest = match read_manifest(dir) {
            Ok(Some(mut m))
                if m.format == fresh.format
                    && m.key == fresh.key
                    && (m.layers, m.dim) == (layers, dim) =>
            {
                if let Some((i, why)) =
                    (0..m.shards.len()).find_map(|i| shard_problem(dir, &m, i).map(|w| (i, w)))
                {
                    tracing::warn!(
                        "feature store {}: {why}; rebuilding from shard {i}",
                        dir.display()
                    );
                    m.shards.truncate(i);
                    m.complete = false;
                }
                m
            }
            Ok(Some(m)) => {
                tracing::warn!(
                    "feature store {}: holds {} (key {}, {} x {}), not {} (key {}, {layers} x {dim}); rebuilding",
                    dir.display(),
                    m.format,
                    m.key,
                    m.layers,
                    m.dim,
                    fresh.format,
                    fresh.key
                );
                fresh
            }
            Ok(None) => fresh,
            Err(e) => {
                tracing::warn!("{e}; rebuilding");
                fresh
            }
        };
        write_manifest(dir, &manifest)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key: key.clone(),
            manifest,
            shard_tokens: shard_tokens.max(1),
            pending: Vec::new(),
            pending_lengths: Vec::new(),
        })
    }

    /// Texts in finished shards: the next text pushed is text number `texts_done()` (a resumed
    /// run skips that many). Texts pushed since the last shard are not counted.
    pub fn texts_done(&self) -> usize {
        self.manifest.shards.iter().map(|s| s.texts).sum()
    }

    /// True when the store was finished (nothing left to push).
    pub fn is_complete(&self) -> bool {
        self.manifest.complete
    }

    /// Appends one text's states, `[tokens, layers, dim]` row-major; writes a shard when enough
    /// tokens are pending.
    pub fn push(&mut self, states: &[f32]) -> Result<()> {
        let row = self.manifest.layers * self.manifest.dim;
        if self.manifest.complete {
            return Err(store_error(
                &self.dir,
                "is complete; nothing can be appended",
            ));
        }
        if states.is_empty() || !states.len().is_multiple_of(row) {
            return Err(DataError::Invalid(format!(
                "feature store {}: {} values are not whole tokens of {} layers x {} dims",
                self.dir.display(),
                states.len(),
                self.manifest.layers,
                self.manifest.dim
            )));
        }
        let start = self.pending.len();
        self.pending.resize(start + states.len(), f16::ZERO);
        self.pending[start..].convert_from_f32_slice(states);
        self.pending_lengths.push((states.len() / row) as u32);
        if self.pending.len() / row >= self.shard_tokens {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending texts as the next shard.
    fn flush(&mut self) -> Result<()> {
        if self.pending_lengths.is_empty() {
            return Ok(());
        }
        let i = self.manifest.shards.len();
        let (data, lengths) = shard_paths(&self.dir, i);
        let data_bytes: Vec<u8> = self.pending.iter().flat_map(|h| h.to_le_bytes()).collect();
        let length_bytes: Vec<u8> = self
            .pending_lengths
            .iter()
            .flat_map(|l| l.to_le_bytes())
            .collect();
        write_atomically(&data, &data_bytes)?;
        write_atomically(&lengths, &length_bytes)?;
        let row = self.manifest.layers * self.manifest.dim;
        self.manifest.shards.push(ShardInfo {
            texts: self.pending_lengths.len(),
            tokens: self.pending.len() / row,
        });
        write_manifest(&self.dir, &self.manifest)?;
        self.pending.clear();
        self.pending_lengths.clear();
        Ok(())
    }

    /// Writes what is pending, marks the store complete and opens it for reading.
    pub fn finish(mut self) -> Result<FeatureStore> {
        self.flush()?;
        self.manifest.complete = true;
        write_manifest(&self.dir, &self.manifest)?;
        FeatureStore::open(&self.dir, &self.key)
    }
}

struct Shard {
    file: File,
    path: PathBuf,
    /// Token offset of each text in the shard, plus the end.
    offsets: Vec<usize>,
}

/// A complete store: texts are read one at a time as f32.
pub struct FeatureStore {
    layers: usize,
    dim: usize,
    shards: Vec<Shard>,
    /// Global index of each shard's first text, plus the total.
    first_text: Vec<usize>,
}

impl FeatureStore {
    /// Opens the complete store of `key` in `dir`; an incomplete, truncated or foreign store is an
    /// error naming the folder and the problem (rebuild it with a [`FeatureStoreWriter`]).
    pub fn open(dir: &Path, key: &CacheKey) -> Result<Self> {
        let m = read_manifest(dir)?.ok_or_else(|| store_error(dir, "no feature store here"))?;
        if m.format != FEATURE_STORE_FORMAT || m.key != key.as_str() {
            return Err(store_error(
                dir,
                format!(
                    "holds {} with key {}, not {FEATURE_STORE_FORMAT} with key {key}",
                    m.format, m.key
                ),
            ));
        }
        if !m.complete {
            return Err(store_error(dir, "incomplete (its writer did not finish)"));
        }
        let mut shards = Vec::with_capacity(m.shards.len());
        let mut first_text = vec![0];
        for (i, info) in m.shards.iter().enumerate() {
            if let Some(why) = shard_problem(dir, &m, i) {
                return Err(store_error(dir, why));
            }
            let (data, lengths) = shard_paths(dir, i);
            let bytes = std::fs::read(&lengths).map_err(|e| DataError::io(&lengths, e))?;
            let mut offsets = vec![0usize];
            for c in bytes.chunks_exact(4) {
                let n = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize;
                offsets.push(offsets.last().unwrap() + n);
            }
            if *offsets.last().unwrap() != info.tokens {
                return Err(store_error(
                    dir,
                    format!(
                        "{}: lengths sum to {} tokens, the manifest says {}",
                        lengths.display(),
                        offsets.last().unwrap(),
                        info.tokens
                    ),
                ));
            }
            let file = File::open(&data).map_err(|e| DataError::io(&data, e))?;
            first_text.push(first_text.last().unwrap() + info.texts);
            shards.push(Shard {
                file,
                path: data,
                offsets,
            });
        }
        Ok(Self {
            layers: m.layers,
            dim: m.dim,
            shards,
            first_text,
        })
    }

    /// Texts in the store.
    pub fn len(&self) -> usize {
        *self.first_text.last().unwrap()
    }

    /// True when the store holds no text.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Layers per token.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Width of one layer's state.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn locate(&self, text: usize) -> (usize, usize) {
        assert!(text < self.len(), "text {text} of {}", self.len());
        let shard = self.first_text.partition_point(|&f| f <= text) - 1;
        (shard, text - self.first_text[shard])
    }

    /// Token count of text `i`.
    pub fn tokens(&self, i: usize) -> usize {
        let (s, j) = self.locate(i);
        let o = &self.shards[s].offsets;
        o[j + 1] - o[j]
    }

    /// Text `i`'s states `[tokens, layers, dim]` as f32 into `out` (resized to fit). A shard that
    /// shrank after [`Self::open`] checked it (overwritten by another process) is an error naming it.
    pub fn read_into(&self, i: usize, out: &mut Vec<f32>) -> Result<()> {
        let (s, j) = self.locate(i);
        let shard = &self.shards[s];
        let row = self.layers * self.dim;
        let (a, b) = (shard.offsets[j] * row, shard.offsets[j + 1] * row);
        let mut halves = vec![f16::ZERO; b - a];
        shard
            .file
            .read_exact_at(bytemuck::cast_slice_mut(&mut halves), (a * 2) as u64)
            .map_err(|e| DataError::io(&shard.path, e))?;
        // Shards are little-endian, as is every CPU this runs on (x86-64, aarch64).
        out.resize(b - a, 0.0);
        halves.convert_to_f32_slice(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheKeyBuilder;

    fn key(name: &str) -> CacheKey {
        CacheKeyBuilder::new("token-states").input(name).finish()
    }

    /// Text `t`: `t % 5 + 1` tokens of 2 layers x 3 dims, values exact in f16.
    fn text(t: usize) -> Vec<f32> {
        (0..(t % 5 + 1) * 6)
            .map(|v| ((t * 13 + v) % 512) as f32 / 8.0)
            .collect()
    }

    fn write(dir: &Path, k: &CacheKey, texts: std::ops::Range<usize>) -> FeatureStoreWriter {
        let mut w = FeatureStoreWriter::open(dir, k, 2, 3, 7).unwrap();
        for t in texts {
            w.push(&text(t)).unwrap();
        }
        w
    }

    fn assert_reads_back(store: &FeatureStore, n: usize) {
        assert_eq!(store.len(), n);
        let mut buf = Vec::new();
        for t in 0..n {
            assert_eq!(store.tokens(t), t % 5 + 1);
            store.read_into(t, &mut buf).unwrap();
            assert_eq!(buf, text(t), "text {t}");
        }
    }

    #[test]
    fn texts_read_back_exactly_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let store = write(dir.path(), &key("a"), 0..40).finish().unwrap();
        // 40 texts of 1-5 tokens (120 in all) in shards of at least 7 tokens.
        assert!(store.shards.len() > 5, "{} shards", store.shards.len());
        assert_reads_back(&store, 40);
        assert_reads_back(&FeatureStore::open(dir.path(), &key("a")).unwrap(), 40);
    }

    #[test]
    fn a_killed_writer_resumes_after_its_last_shard_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Dropped without finish, like a killed run: pending texts are lost, shards stay.
        let done = write(dir.path(), &key("a"), 0..23).texts_done();
        assert!(done > 0 && done < 23, "{done}");
        let err = FeatureStore::open(dir.path(), &key("a"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("incomplete"), "{err}");
        let resumed = write(dir.path(), &key("a"), done..40);
        assert!(resumed.texts_done() >= done);
        assert_reads_back(&resumed.finish().unwrap(), 40);
    }

    #[test]
    fn a_truncated_shard_is_refused_and_rebuilt_from_there() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &key("a"), 0..40).finish().unwrap();
        let (data, _) = shard_paths(dir.path(), 2);
        let len = std::fs::metadata(&data).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&data)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let err = FeatureStore::open(dir.path(), &key("a"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("shard-00002.f16") && err.contains("truncated"),
            "{err}"
        );
        let w = FeatureStoreWriter::open(dir.path(), &key("a"), 2, 3, 7).unwrap();
        let done = w.texts_done();
        drop(w);
        let mut w = write(dir.path(), &key("a"), done..40);
        assert!(!w.is_complete());
        w.flush().unwrap();
        assert_reads_back(&w.finish().unwrap(), 40);
    }

    #[test]
    fn a_store_of_another_key_or_shape_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &key("a"), 0..10).finish().unwrap();
        let err = FeatureStore::open(dir.path(), &key("b"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not nr-features-1 with key"), "{err}");
        // A writer for another key or another width starts over.
        let w = FeatureStoreWriter::open(dir.path(), &key("b"), 2, 3, 7).unwrap();
        assert_eq!(w.texts_done(), 0);
        drop(w);
        write(dir.path(), &key("a"), 0..10).finish().unwrap();
        let w = FeatureStoreWriter::open(dir.path(), &key("a"), 2, 4, 7).unwrap();
        assert_eq!(w.texts_done(), 0);
    }

    #[test]
    fn states_that_are_not_whole_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = FeatureStoreWriter::open(dir.path(), &key("a"), 2, 3, 7).unwrap();
        let err = w.push(&[1.0; 7]).err().unwrap().to_string();
        assert!(
            err.contains("7 values are not whole tokens of 2 layers x 3 dims"),
            "{err}"
        );
    }
}
