//! The f16 copy of an index's vectors (`NAME.f16`, row-major, little-endian) that re-scores the
//! graph's candidates: the graph can then hold coarse i8 vectors, whose distances are cheap,
//! and the ranking still comes from f16 scores. Loaded, or memory-mapped so that a search
//! pages in only the rows it re-scores.

use std::io::Write;
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::atomic::{commit, temp_path};
use crate::{IndexError, Result};

enum Rows {
    Mapped(memmap2::Mmap),
    Owned(Vec<f16>),
}

/// An index's vectors in f16, read for re-scoring.
pub struct RescoreStore {
    rows: Rows,
    dim: usize,
}

impl RescoreStore {
    /// Keeps `data` (`[n, dim]` row-major f32) in f16, in memory.
    pub fn from_f32(data: &[f32], dim: usize) -> Self {
        let mut rows = vec![f16::ZERO; data.len()];
        rows.convert_from_f32_slice(data);
        RescoreStore {
            rows: Rows::Owned(rows),
            dim,
        }
    }

    /// Opens `path`, which must hold `rows` vectors of `dim` values; `mmap`: serve it from the
    /// file.
    pub fn open(path: &Path, rows: usize, dim: usize, mmap: bool) -> Result<Self> {
        let expected = (rows * dim * 2) as u64;
        let file = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => IndexError::file(
                path,
                "missing: the index re-scores its candidates with these f16 vectors (rebuild it with `nr index build`)",
            ),
            _ => IndexError::io(path, e),
        })?;
        let len = file.metadata().map_err(|e| IndexError::io(path, e))?.len();
        if len != expected {
            return Err(IndexError::file(
                path,
                format!(
                    "{len} bytes, {rows} f16 vectors of {dim} dimensions take {expected} (truncated or from another index)"
                ),
            ));
        }
        let rows = if mmap && expected > 0 {
            // SAFETY: the file is only read; an index's files are written once, atomically.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| IndexError::io(path, e))?;
            Rows::Mapped(map)
        } else {
            let bytes = std::fs::read(path).map_err(|e| IndexError::io(path, e))?;
            Rows::Owned(
                bytes
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            )
        };
        Ok(RescoreStore { rows, dim })
    }

    /// Every row, row-major.
    pub fn rows(&self) -> &[f16] {
        match &self.rows {
            // Page-aligned, and every f16 bit pattern is valid.
            Rows::Mapped(map) => bytemuck::cast_slice(&map[..]),
            Rows::Owned(v) => v,
        }
    }

    /// Re-scores `candidates` (rows) against `query` by inner product; the `k` best, best first
    /// (equal scores: lower row first).
    pub fn rerank(&self, query: &[f32], candidates: &[usize], k: usize) -> Vec<(usize, f32)> {
        let (all, d) = (self.rows(), self.dim);
        let dot = f16_dot_kernel();
        let mut scored: Vec<(usize, f32)> = candidates
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                // Candidates are scattered over the file: ask for a later one's row while this
                // one is scored, so that its cache misses overlap instead of adding up.
                if let Some(&ahead) = candidates.get(i + PREFETCH_AHEAD) {
                    prefetch(&all[ahead * d..(ahead + 1) * d]);
                }
                (r, dot(&all[r * d..(r + 1) * d], query))
            })
            .collect();
        let best_first =
            |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if k == 0 {
            return Vec::new();
        }
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, best_first);
            scored.truncate(k);
        }
        scored.sort_by(best_first);
        scored
    }
}

/// How many candidates ahead [`RescoreStore::rerank`] prefetches.
const PREFETCH_AHEAD: usize = 4;

/// Asks the CPU to bring `row` into cache (a hint; nothing on other architectures).
fn prefetch(row: &[f16]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(32) {
        // SAFETY: a prefetch never faults, and `line` is a valid address anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// The fastest inner product of an f16 row with an f32 query that this CPU runs: F16C + FMA
/// (8 values per conversion) where present, else a portable loop.
fn f16_dot_kernel() -> fn(&[f16], &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the CPU has every feature the kernel is compiled with (checked above).
        return |row, query| unsafe { dot_f16_f16c(row, query) };
    }
    dot_f16_portable
}

/// `row . query` converting each f16 value on the way, with 16 partial sums.
fn dot_f16_portable(row: &[f16], query: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut sums = [0.0f32; LANES];
    let (r_body, q_body) = (row.chunks_exact(LANES), query.chunks_exact(LANES));
    let tail: f32 = r_body
        .remainder()
        .iter()
        .zip(q_body.remainder())
        .map(|(x, y)| x.to_f32() * y)
        .sum();
    for (x, y) in r_body.zip(q_body) {
        for lane in 0..LANES {
            sums[lane] += x[lane].to_f32() * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_f16c(row: &[f16], query: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = row.len().min(query.len());
    let (r, q) = (row.as_ptr().cast::<u16>(), query.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads 8 values at `i + 8 * j < n`, inside both slices.
    unsafe {
        while i + 32 <= n {
            for (j, a) in acc.iter_mut().enumerate() {
                let h = _mm_loadu_si128(r.add(i + 8 * j).cast());
                *a = _mm256_fmadd_ps(_mm256_cvtph_ps(h), _mm256_loadu_ps(q.add(i + 8 * j)), *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            let h = _mm_loadu_si128(r.add(i).cast());
            acc[0] = _mm256_fmadd_ps(_mm256_cvtph_ps(h), _mm256_loadu_ps(q.add(i)), acc[0]);
            i += 8;
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    let tail: f32 = row[i..n]
        .iter()
        .zip(&query[i..n])
        .map(|(x, y)| x.to_f32() * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// Writes the f16 copy of an index's vectors batch by batch; [`RescoreWriter::finish`] renames it
/// into place, so a killed build leaves no partial file under the final name.
pub struct RescoreWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl RescoreWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = temp_path(path);
        let file = std::fs::File::create(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
        Ok(RescoreWriter {
            path: path.to_path_buf(),
            tmp,
            out: std::io::BufWriter::with_capacity(1 << 20, file),
        })
    }

    /// Appends rows (f32, converted to f16).
    pub fn append(&mut self, data: &[f32]) -> Result<()> {
        let mut half = vec![f16::ZERO; data.len()];
        half.convert_from_f32_slice(data);
        self.append_f16(&half)
    }

    /// Appends rows already in f16.
    pub fn append_f16(&mut self, rows: &[f16]) -> Result<()> {
        let bytes: Vec<u8> = rows.iter().flat_map(|h| h.to_le_bytes()).collect();
        self.out
            .write_all(&bytes)
            .map_err(|e| IndexError::io(&self.tmp, e))
    }

    pub fn finish(self) -> Result<()> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| IndexError::io(&self.tmp, e.into_error()))?;
        commit(file, &self.tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_orders_candidates_by_their_f16_scores() {
        // Rows: (1, 0), (0.6, 0.8), (0, 1); query (0.8, 0.6): scores 0.8, 0.96, 0.6.
        let store = RescoreStore::from_f32(&[1.0, 0.0, 0.6, 0.8, 0.0, 1.0], 2);
        let got = store.rerank(&[0.8, 0.6], &[0, 1, 2], 2);
        assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 0]);
        assert!((got[0].1 - 0.96).abs() < 1e-3 && (got[1].1 - 0.8).abs() < 1e-3);
    }

    #[test]
    fn f16_dot_kernels_equal_an_f64_sum_at_widths_on_and_off_their_blocks() {
        for d in [1, 7, 8, 9, 31, 32, 33, 384, 391] {
            let a: Vec<f16> = (0..d)
                .map(|i| f16::from_f32(((i * 7 % 13) as f32 - 6.0) / 8.0))
                .collect();
            let b: Vec<f32> = (0..d).map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| x.to_f64() * *y as f64).sum();
            // Multiples of 1/32, small: exact in f32 whatever the order of the sums.
            assert_eq!(dot_f16_portable(&a, &b) as f64, want, "portable, width {d}");
            assert_eq!(f16_dot_kernel()(&a, &b) as f64, want, "detected, width {d}");
        }
    }

    #[test]
    fn a_written_store_reads_back_loaded_and_mapped_and_a_short_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.f16");
        let mut w = RescoreWriter::create(&path).unwrap();
        w.append(&[0.5, -0.25]).unwrap();
        w.append(&[0.125, 1.0]).unwrap();
        w.finish().unwrap();
        for mmap in [false, true] {
            let s = RescoreStore::open(&path, 2, 2, mmap).unwrap();
            let got = s.rerank(&[1.0, 1.0], &[0, 1], 2);
            assert_eq!(got, vec![(1, 1.125), (0, 0.25)]);
        }
        let err = RescoreStore::open(&path, 3, 2, true)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("x.f16") && err.contains("truncated"), "{err}");
        let gone = dir.path().join("gone.f16");
        let err = RescoreStore::open(&gone, 1, 2, true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("gone.f16: missing") && err.contains("rebuild"),
            "{err}"
        );
    }
}
