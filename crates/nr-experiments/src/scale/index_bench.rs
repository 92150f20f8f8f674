//! An index measured against exact search on the same vectors and queries: recall@k of the exact
//! top k, queries per second of both (all cores, all queries at once; the index warm), the
//! index's memory.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use nr_index::hnsw::{rescore_path, sidecar_paths};
use nr_index::{HnswIndex, Vectors, read_vectors};
use serde::Serialize;

use super::memory::peak_rss_bytes;

/// One search effort of the index.
#[derive(Debug, Clone, Serialize)]
pub struct EffortRow {
    /// HNSW's ef (candidates kept while searching).
    pub expansion_search: usize,
    /// Mean share of each query's exact top k that the index returned.
    pub recall: f64,
    pub queries_per_second: f64,
    /// `queries_per_second` over exact search's.
    pub speedup_over_exact: f64,
}

/// What [`bench_index`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct IndexBench {
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
const MIN_SECONDS: f64 = 3.0;

/// Measures the index at `index` (built from the vectors at `vectors`) on `queries`, at each
/// search effort of `efforts`, against exact search.
pub fn bench_index(
    index: &Path,
    vectors: &Path,
    queries: &Vectors,
    k: usize,
    efforts: &[usize],
    mmap: bool,
) -> Result<IndexBench> {
    let start = Instant::now();
    let mut hnsw = HnswIndex::open(index, mmap)?;
    let open_seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        queries.dim == hnsw.dim(),
        "queries have {} dimensions, the index {}",
        queries.dim,
        hnsw.dim()
    );
    // One untimed pass first: a served index is warm, and a memory-mapped one would otherwise
    // charge its page faults to whichever effort is measured first.
    hnsw.search(&queries.data, k)?;
    let mut found = Vec::new();
    for &ef in efforts {
        hnsw.set_expansion_search(ef);
        let (hits, seconds) = timed_passes(|| hnsw.search(&queries.data, k))?;
        found.push((ef, seconds, hits));
        tracing::info!("index: ef {ef} searched {} queries", queries.len());
    }
    let index_peak_rss_mb = peak_rss_bytes().map(|b| b as f64 / 1e6);
    let index_bytes = [
        index.to_path_buf(),
        sidecar_paths(index).1,
        rescore_path(index),
    ]
    .iter()
    .filter_map(|p| std::fs::metadata(p).ok())
    .map(|m| m.len())
    .sum();
    let rows = hnsw.len();
    drop(hnsw);

    let (_, passages) = read_vectors(vectors)?;
    anyhow::ensure!(
        passages.len() == rows,
        "{}: {} vectors, the index holds {rows}",
        vectors.display(),
        passages.len()
    );
    let (exact, exact_seconds) = timed_passes(|| {
        nr_eval::search::exact_search(&queries.data, &passages.data, passages.dim, k)
    })?;
    let exact_qps = queries.len() as f64 / exact_seconds;
    let efforts = found
        .into_iter()
        .map(|(ef, seconds, hits)| {
            let qps = queries.len() as f64 / seconds;
            EffortRow {
                expansion_search: ef,
                recall: recall(&hits, &exact),
                queries_per_second: qps,
                speedup_over_exact: qps / exact_qps,
            }
        })
        .collect();
    Ok(IndexBench {
        rows,
        dim: passages.dim,
        queries: queries.len(),
        k,
        mmap,
        index_bytes,
        open_seconds,
        index_peak_rss_mb,
        efforts,
        exact_queries_per_second: exact_qps,
        exact_seconds,
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
