//! Exact search throughput: 10,000 queries x 100,000 random 384-d unit vectors, top-10.
//! `cargo bench -p nr-eval --bench search`; bench/search_numpy.py runs the same workload in numpy.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..n * dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    for row in v.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn main() {
    let (nq, np, dim, k) = (10_000, 100_000, 384, 10);
    let passages = unit_vectors(np, dim, 1);
    let queries = unit_vectors(nq, dim, 2);
    let mut rates = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let hits = nr_eval::exact_search(&queries, &passages, dim, k).unwrap();
        std::hint::black_box(hits);
        rates.push(nq as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "exact search {nq} x {np} x {dim}, top-{k}: queries/s median {:.0} (min {:.0}, max {:.0}), threads {}",
        rates[2],
        rates[0],
        rates[4],
        rayon::current_num_threads()
    );
}
