//! An index measured against exact search on the same vectors and queries: recall@k of the exact
//! top k, queries per second of both (all cores, all queries at once; the index warm), the
//! index's memory. Index and exact search alternate over rounds, and each figure is a median over
//! them, so that the machine's drift in speed reaches both sides of a ratio alike.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use nr_index::hamming::Kernel;
use nr_index::hnsw::{rescore_path, sidecar_paths};
use nr_index::{AnnIndex, IndexKind, Vectors, read_vectors};
use serde::Serialize;

use super::memory::peak_rss_bytes;

/// One search effort of the index.
#[derive(Debug, Clone, Serialize)]
pub struct EffortRow {
    /// HNSW's ef (candidates kept while searching) or the binary index's re-scored candidates.
    pub effort: usize,
    /// Mean share of each query's exact top k that the index returned.
    pub recall: f64,
    pub queries_per_second: f64,
    /// `queries_per_second` over exact search's.
    pub speedup_over_exact: f64,
}

/// What [`bench_index`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct IndexBench {
    pub kind: IndexKind,
    /// What `effort` is for this kind (`expansion_search` or `candidates`).
    pub effort_name: &'static str,
    /// The Hamming kernel of a binary index (`Avx512` or `Portable`).
    pub kernel: Option<String>,
    pub rows: usize,
    pub dim: usize,
    pub queries: usize,
    pub k: usize,
    pub mmap: bool,
    /// Bytes of the index file, its id list and its re-scoring vectors.
    pub index_bytes: u64,
    pub open_seconds: f64,
    /// Peak resident memory of the process after opening the index and running every search on
    /// it (before exact search loaded the vectors).
    pub index_peak_rss_mb: Option<f64>,
    pub efforts: Vec<EffortRow>,
    pub exact_queries_per_second: f64,
    /// Seconds of one exact pass over every query.
    pub exact_seconds: f64,
    /// Rounds measured: each rate is the median over rounds, each speed-up the median of the
    /// rounds' ratios.
    pub rounds: usize,
    pub threads: usize,
}

/// Recall of `found` against `exact`: the mean share of each exact list found.
pub fn recall(found: &[Vec<(usize, f32)>], exact: &[Vec<(usize, f32)>]) -> f64 {
    let shares: Vec<f64> = found
        .iter()
        .zip(exact)
        .filter(|(_, e)| !e.is_empty())
        .map(|(f, e)| {
            let hit = e
                .iter()
                .filter(|(r, _)| f.iter().any(|(x, _)| x == r))
                .count();
            hit as f64 / e.len() as f64
        })
        .collect();
    shares.iter().sum::<f64>() / shares.len().max(1) as f64
}

/// Runs `pass` (a search of every query) until [`MIN_SECONDS`] have passed, at least once: its
/// result and the mean seconds per pass, steadier than one short pass.
fn timed_passes<T, E>(mut pass: impl FnMut() -> Result<T, E>) -> Result<(T, f64), E> {
    let start = Instant::now();
    let mut passes = 0u32;
    loop {
        let out = pass()?;
        passes += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= MIN_SECONDS {
            return Ok((out, elapsed / f64::from(passes)));
        }
    }
}

/// Least time each measured rate is averaged over.
const MIN_SECONDS: f64 = 1.0;
/// Rounds of measurement (each: every effort, then exact search); figures are their medians.
const ROUNDS: usize = 3;

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Measures the index at `index` (built from the vectors at `vectors`) on `queries`, at each
/// search effort of `efforts`, against exact search; `kernel`: the binary index's Hamming kernel
/// instead of the fastest.
pub fn bench_index(
    index: &Path,
    vectors: &Path,
    queries: &Vectors,
    k: usize,
    efforts: &[usize],
    mmap: bool,
    kernel: Option<Kernel>,
) -> Result<IndexBench> {
    let start = Instant::now();
    let mut saved = AnnIndex::open(index, mmap)?;
    if let (AnnIndex::Binary(b), Some(kernel)) = (&mut saved, kernel) {
        anyhow::ensure!(
            kernel.runs_here(),
            "kernel {kernel:?}: this CPU lacks what it needs"
        );
        b.set_kernel(kernel);
    }
    let open_seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        queries.dim == saved.dim(),
        "queries have {} dimensions, the index {}",
        queries.dim,
        saved.dim()
    );
    // One untimed pass first: a served index is warm, and a memory-mapped one would otherwise
    // charge its page faults to whichever effort is measured first.
    saved.search(&queries.data, k)?;
    let kind = saved.kind();
    let name = kind.effort_name();
    // Rounds that alternate the index (every effort) with exact search, so that a drift in the
    // machine's speed (other work, clocks) reaches both sides of each ratio alike.
    let mut index_rates = vec![Vec::new(); efforts.len()];
    let mut exact_rates = Vec::new();
    let mut found = Vec::new();
    let mut index_peak_rss_mb = None;
    let mut passages: Option<Vectors> = None;
    let mut exact = Vec::new();
    for round in 0..ROUNDS {
        for (i, &effort) in efforts.iter().enumerate() {
            saved.set_effort(effort);
            let (hits, seconds) = timed_passes(|| saved.search(&queries.data, k))?;
            index_rates[i].push(queries.len() as f64 / seconds);
            if round == 0 {
                found.push(hits);
                tracing::info!("index: {name} {effort} searched {} queries", queries.len());
            }
        }
        if round == 0 {
            index_peak_rss_mb = peak_rss_bytes().map(|b| b as f64 / 1e6);
            let (_, p) = read_vectors(vectors)?;
            anyhow::ensure!(
                p.len() == saved.len(),
                "{}: {} vectors, the index holds {}",
                vectors.display(),
                p.len(),
                saved.len()
            );
            passages = Some(p);
        }
        let p = passages.as_ref().expect("read in the first round");
        let (hits, seconds) =
            timed_passes(|| nr_eval::search::exact_search(&queries.data, &p.data, p.dim, k))?;
        exact_rates.push(queries.len() as f64 / seconds);
        exact = hits;
    }
    let kernel = match &saved {
        AnnIndex::Binary(b) => Some(format!("{:?}", b.kernel())),
        AnnIndex::Hnsw(_) => None,
    };
    let index_bytes = [
        index.to_path_buf(),
        sidecar_paths(index).1,
        rescore_path(index),
    ]
    .iter()
    .filter_map(|p| std::fs::metadata(p).ok())
    .map(|m| m.len())
    .sum();
    let rows = saved.len();
    let dim = saved.dim();
    drop(saved);
    let exact_qps = median(&exact_rates);
    let efforts = efforts
        .iter()
        .zip(found)
        .zip(&index_rates)
        .map(|((&effort, hits), rates)| {
            let ratios: Vec<f64> = rates.iter().zip(&exact_rates).map(|(i, e)| i / e).collect();
            EffortRow {
                effort,
                recall: recall(&hits, &exact),
                queries_per_second: median(rates),
                speedup_over_exact: median(&ratios),
            }
        })
        .collect();
    Ok(IndexBench {
        kind,
        effort_name: kind.effort_name(),
        kernel,
        rows,
        dim,
        queries: queries.len(),
        k,
        mmap,
        index_bytes,
        open_seconds,
        index_peak_rss_mb,
        efforts,
        exact_queries_per_second: exact_qps,
        exact_seconds: queries.len() as f64 / exact_qps,
        rounds: ROUNDS,
        threads: rayon::current_num_threads(),
    })
}

#[cfg(test)]
mod tests {
    use super::recall;

    #[test]
    fn recall_is_the_mean_share_of_each_exact_list_found() {
        let exact = vec![vec![(1, 0.9), (2, 0.8)], vec![(5, 0.5), (6, 0.4)]];
        let found = vec![vec![(2, 0.8), (9, 0.1)], vec![(6, 0.4), (5, 0.5)]];
        assert!((recall(&found, &exact) - 0.75).abs() < 1e-12);
    }
}
