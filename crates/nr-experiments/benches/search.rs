//! Exact search: queries/s of top-10 inner-product search, 10,000 queries x 100,000 random 384-d
//! unit vectors.
//!
//! `cargo bench -p nr-experiments --bench search`; writes results/bench/search.json. With
//! `NR_SEARCH_BENCH_DATA=DIR` it also writes the vectors (`queries.f32`, `passages.f32`,
//! little-endian, row-major) and its top-10 rows (`top10.u32`), so that
//! `bench/search_numpy.py --data DIR` times numpy on the same data and checks both found the same
//! neighbours.

mod common;

use std::path::Path;

use common::{BenchFile, Row, seconds, unit_rows};
use rand::SeedableRng;
use rand::rngs::StdRng;

const QUERIES: usize = 10_000;
const PASSAGES: usize = 100_000;
const DIM: usize = 384;
const K: usize = 10;

fn write_le<T: Copy>(path: &Path, values: &[T], to_bytes: impl Fn(T) -> [u8; 4]) {
    let bytes: Vec<u8> = values.iter().flat_map(|&v| to_bytes(v)).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn main() {
    let repeats = common::env_usize("NR_BENCH_REPEATS", 5);
    let passages = unit_rows(&mut StdRng::seed_from_u64(1), PASSAGES, DIM);
    let queries = unit_rows(&mut StdRng::seed_from_u64(2), QUERIES, DIM);
    let mut last = Vec::new();
    let runs = (0..repeats)
        .map(|_| {
            QUERIES as f64
                / seconds(|| {
                    last = std::hint::black_box(
                        nr_eval::exact_search(&queries, &passages, DIM, K).unwrap(),
                    )
                })
        })
        .collect();
    if let Ok(dir) = std::env::var("NR_SEARCH_BENCH_DATA") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        write_le(&dir.join("queries.f32"), &queries, f32::to_le_bytes);
        write_le(&dir.join("passages.f32"), &passages, f32::to_le_bytes);
        let top: Vec<u32> = last
            .iter()
            .flat_map(|hits| hits.iter().map(|&(i, _)| i as u32))
            .collect();
        write_le(&dir.join("top10.u32"), &top, u32::to_le_bytes);
        println!("wrote the vectors and top-{K} rows to {}", dir.display());
    }
    BenchFile {
        bench: "search".into(),
        stack: format!(
            "nr_eval::exact_search (gemm blocks + top-k heaps), {} threads, {repeats} runs",
            common::threads()
        ),
        workload: format!(
            "{QUERIES} queries x {PASSAGES} passages x {DIM} dims (random unit vectors), top-{K}"
        ),
        rows: vec![Row::new("exact top-10", "queries/s", runs)],
        ratios: vec![],
        target_vs_reference: Some(1.0),
    }
    .finish();
}
