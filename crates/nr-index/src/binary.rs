//! A flat index for collections small enough to scan: one sign bit per dimension (48 bytes for
//! 384 dimensions, 32x less than f32). A search scans every row's code for the `candidates`
//! nearest in Hamming distance to the query's code, and ranks those by inner product with the
//! f16 vectors. Where exact search is already cheap (tens of thousands of vectors) a graph cannot
//! beat it by much, while this scan reads 1/32 of the bytes with one popcount per 64 dimensions
//! (docs/scale.md).
//!
//! Saved as `NAME` (the codes, row-major little-endian u64 words), `NAME.f16`, `NAME.ids` and
//! `NAME.json`, like the HNSW index.

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::atomic::{commit, temp_path};
use crate::hamming::{BitCodes, Kernel, Nearest, QUERY_GROUP, WORD_BITS, sign_code, words_for};
use crate::index_files::{
    read_ids, read_sidecar, rescore_path, sidecar_paths, write_ids, write_sidecar,
};
use crate::meta::VectorMeta;
use crate::parquet::{ROW_GROUP, count_rows, for_each_batch};
use crate::rescore::{RescoreStore, RescoreWriter};
use crate::vectors::check_query_rows;
use crate::{IndexError, IndexKind, Result, Vectors};

/// The binary index's search effort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BinaryParams {
    /// Rows (nearest codes) re-scored with the f16 vectors per query: recall against speed.
    pub candidates: usize,
}

impl Default for BinaryParams {
    fn default() -> Self {
        BinaryParams { candidates: 128 }
    }
}

/// What `NAME.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinarySidecar {
    pub kind: IndexKind,
    pub dim: usize,
    pub rows: usize,
    pub params: BinaryParams,
    /// The vectors' metadata, when they had it.
    pub vectors: Option<VectorMeta>,
}

/// Sign codes with the f16 vectors that re-score them, and the ids of their rows.
pub struct BinaryIndex {
    codes: BitCodes,
    rescore: RescoreStore,
    kernel: Kernel,
    /// Id of row `i`.
    pub ids: Vec<String>,
    pub sidecar: BinarySidecar,
}

/// Appends the sign codes of `data` (`[n, dim]`) to `out`.
fn encode_rows(data: &[f32], dim: usize, out: &mut Vec<u64>) {
    let words = words_for(dim);
    let start = out.len();
    out.resize(start + data.len() / dim * words, 0);
    out[start..]
        .par_chunks_mut(words)
        .zip(data.par_chunks(dim))
        .for_each(|(code, row)| sign_code(row, code));
}

impl BinaryIndex {
    /// Indexes vectors held in memory.
    pub fn from_vectors(vectors: &Vectors, params: &BinaryParams) -> Result<Self> {
        let mut codes = Vec::new();
        encode_rows(&vectors.data, vectors.dim, &mut codes);
        Ok(BinaryIndex {
            codes: BitCodes::from_row_major(&codes, words_for(vectors.dim)),
            rescore: RescoreStore::from_f32(&vectors.data, vectors.dim),
            kernel: Kernel::detect(),
            ids: vectors.ids.clone(),
            sidecar: BinarySidecar {
                kind: IndexKind::Binary,
                dim: vectors.dim,
                rows: vectors.len(),
                params: params.clone(),
                vectors: None,
            },
        })
    }

    /// Builds the index of the Parquet vectors at `vectors` (a file or a folder of shards) into
    /// `out`, streaming one batch at a time; `progress(done, total)` after each batch. Every
    /// file is written atomically, the sidecar last: a killed build leaves no index.
    pub fn build(
        vectors: &Path,
        out: &Path,
        params: &BinaryParams,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<BinarySidecar> {
        let total = count_rows(vectors)?;
        let tmp = temp_path(out);
        let file = std::fs::File::create(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
        let mut codes_out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut rescore = RescoreWriter::create(&rescore_path(out))?;
        let mut ids: Vec<String> = Vec::with_capacity(total);
        let (mut dim, mut set_meta) = (0, None);
        let mut codes = Vec::new();
        for_each_batch(vectors, ROW_GROUP, |file, meta, batch| {
            if ids.is_empty() {
                dim = batch.dim;
                set_meta = meta.cloned().map(|m| VectorMeta { shard: None, ..m });
            } else if batch.dim != dim {
                return Err(IndexError::file(
                    file,
                    format!(
                        "{}-dimensional vectors after {dim}-dimensional ones",
                        batch.dim
                    ),
                ));
            }
            codes.clear();
            encode_rows(&batch.data, dim, &mut codes);
            let bytes: Vec<u8> = codes.iter().flat_map(|w| w.to_le_bytes()).collect();
            codes_out
                .write_all(&bytes)
                .map_err(|e| IndexError::io(&tmp, e))?;
            rescore.append(&batch.data)?;
            ids.extend(batch.ids);
            progress(ids.len(), total);
            Ok(())
        })?;
        if ids.is_empty() {
            return Err(IndexError::file(vectors, "no vectors"));
        }
        let file = codes_out
            .into_inner()
            .map_err(|e| IndexError::io(&tmp, e.into_error()))?;
        commit(file, &tmp, out)?;
        rescore.finish()?;
        let (json, ids_path) = sidecar_paths(out);
        write_ids(&ids_path, &ids)?;
        let sidecar = BinarySidecar {
            kind: IndexKind::Binary,
            dim,
            rows: ids.len(),
            params: params.clone(),
            vectors: set_meta,
        };
        write_sidecar(&json, &sidecar)?;
        Ok(sidecar)
    }

    /// Opens a saved index: the codes are read into memory; `mmap`: the f16 vectors are served
    /// from their file (a search pages in only the rows it re-scores).
    pub fn open(path: &Path, mmap: bool) -> Result<Self> {
        let (json, ids_path) = sidecar_paths(path);
        let sidecar: BinarySidecar = read_sidecar(&json)?;
        let ids = read_ids(&ids_path, sidecar.rows)?;
        let words = words_for(sidecar.dim);
        let bytes = std::fs::read(path).map_err(|e| IndexError::io(path, e))?;
        let expected = sidecar.rows * words * 8;
        if bytes.len() != expected || words == 0 {
            return Err(IndexError::file(
                path,
                format!(
                    "{} bytes, {} codes of {} dimensions take {expected} (truncated or from another index)",
                    bytes.len(),
                    sidecar.rows,
                    sidecar.dim
                ),
            ));
        }
        let codes: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let rescore = RescoreStore::open(&rescore_path(path), sidecar.rows, sidecar.dim, mmap)?;
        Ok(BinaryIndex {
            codes: BitCodes::from_row_major(&codes, words),
            rescore,
            kernel: Kernel::detect(),
            ids,
            sidecar,
        })
    }

    /// Number of indexed vectors.
    pub fn len(&self) -> usize {
        self.sidecar.rows
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.sidecar.rows == 0
    }

    /// Width of the indexed vectors.
    pub fn dim(&self) -> usize {
        self.sidecar.dim
    }

    /// The Hamming kernel searches run with.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Runs later searches with `kernel` instead of the detected one (a kernel that does not
    /// run on this CPU falls back to the portable one).
    pub fn set_kernel(&mut self, kernel: Kernel) {
        self.kernel = kernel;
    }

    /// Sets the rows re-scored per query by later searches.
    pub fn set_candidates(&mut self, candidates: usize) {
        self.sidecar.params.candidates = candidates;
    }

    /// The `k` rows with the largest inner product for each query (`[n, dim]` row-major) as
    /// `(row, score)`, best first, from the f16 scores of the `max(k, candidates)` rows nearest
    /// in Hamming distance; queries run in parallel, in groups that share each scan.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
        let dim = self.sidecar.dim;
        check_query_rows(queries, dim)?;
        let want = k.max(self.sidecar.params.candidates);
        let words = self.codes.words();
        let rows = self.codes.rows();
        Ok(queries
            .par_chunks(dim * QUERY_GROUP)
            .map_init(
                || {
                    let nearest = Nearest::new(want, rows, words * WORD_BITS);
                    (vec![nearest; QUERY_GROUP], vec![0u64; words * QUERY_GROUP])
                },
                |(nearest, codes), group| {
                    let n = group.len() / dim;
                    for (q, code) in group.chunks_exact(dim).zip(codes.chunks_exact_mut(words)) {
                        sign_code(q, code);
                    }
                    self.codes
                        .search(self.kernel, &codes[..n * words], &mut nearest[..n]);
                    group
                        .chunks_exact(dim)
                        .zip(nearest.iter_mut())
                        .map(|(q, found)| self.rescore.rerank(q, &found.rows_unordered(), k))
                        .collect::<Vec<_>>()
                },
            )
            .flatten_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Stream, Synthetic, SyntheticSpec};

    fn synthetic(rows: usize, queries: usize) -> (Vectors, Vec<f32>) {
        let s = Synthetic::new(SyntheticSpec {
            dim: 64,
            clusters: 10,
            latent: 8,
            seed: 3,
        });
        let data = s.rows(Stream::Passages, 0..rows);
        let ids = (0..rows).map(|i| format!("p{i}")).collect();
        let q = s.rows(Stream::Queries, 0..queries);
        (Vectors::new(ids, 64, data).unwrap(), q)
    }

    fn exact(v: &Vectors, q: &[f32], k: usize) -> Vec<Vec<(usize, f32)>> {
        nr_eval::search::exact_search(q, &v.data, v.dim, k).unwrap()
    }

    #[test]
    fn re_scoring_every_row_gives_exact_search_within_f16_rounding() {
        let (v, q) = synthetic(300, 20);
        let index = BinaryIndex::from_vectors(&v, &BinaryParams { candidates: 300 }).unwrap();
        let got = index.search(&q, 10).unwrap();
        for (g, e) in got.iter().zip(exact(&v, &q, 10)) {
            // f16 keeps ~3 decimal digits: scores agree to that, and the ranking with them
            // (the generator's nearest scores differ by far more).
            for (a, b) in g.iter().zip(&e) {
                assert!((a.1 - b.1).abs() < 2e-3, "{a:?} vs {b:?}");
            }
            let rows = |h: &[(usize, f32)]| h.iter().map(|x| x.0).collect::<Vec<_>>();
            assert_eq!(rows(&g[..3]), rows(&e[..3]));
        }
    }
}
