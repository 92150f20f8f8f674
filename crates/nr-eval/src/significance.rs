//! Significance of differences between systems scored on the same queries.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Percentile bootstrap confidence interval of the mean of `values` at `level` (e.g. 0.95), from
/// `resamples` resamples with replacement drawn with `seed`.
pub fn bootstrap_ci(values: &[f64], resamples: usize, level: f64, seed: u64) -> (f64, f64) {
    if values.is_empty() || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    let at = |q: f64| means[((q * resamples as f64).floor() as usize).min(resamples - 1)];
    (at(tail), at(1.0 - tail))
}

/// Two-sided paired randomization (sign-flip permutation) test of mean(a) - mean(b): the share of
/// `permutations` random sign flips of the per-query differences whose |mean| reaches the observed
/// one, counting the observed assignment itself ((hits + 1) / (permutations + 1)).
pub fn randomization_test(a: &[f64], b: &[f64], permutations: usize, seed: u64) -> f64 {
    assert_eq!(a.len(), b.len(), "paired test needs scores of the same queries");
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = diffs.len().max(1) as f64;
    let observed = (diffs.iter().sum::<f64>() / n).abs();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut hits = 0usize;
    for _ in 0..permutations {
        let s: f64 = diffs.iter().map(|d| if rng.random::<bool>() { *d } else { -*d }).sum();
        if (s / n).abs() >= observed - 1e-12 {
            hits += 1;
        }
    }
    (hits + 1) as f64 / (permutations + 1) as f64
}

/// Mean of per-query values by group (e.g. `Conversation_source`): group -> (mean, queries).
pub fn means_by_group(per_query: &BTreeMap<String, f64>, group_of: &HashMap<String, String>) -> BTreeMap<String, (f64, usize)> {
    let mut acc: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for (q, v) in per_query {
        if let Some(g) = group_of.get(q) {
            let e = acc.entry(g.clone()).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    acc.into_iter().map(|(g, (s, n))| (g, (s / n as f64, n))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_is_seeded() {
        let v: Vec<f64> = (0..100).map(|i| (i % 2) as f64).collect(); // mean 0.5, sd 0.5
        let (lo, hi) = bootstrap_ci(&v, 2000, 0.95, 3);
        assert!(lo < 0.5 && hi > 0.5);
        // Normal approximation: half-width 1.96 * 0.5 / 10 = 0.098.
        assert!(((hi - lo) / 2.0 - 0.098).abs() < 0.02, "{lo} {hi}");
        assert_eq!(bootstrap_ci(&v, 2000, 0.95, 3), (lo, hi));
        assert_eq!(bootstrap_ci(&[0.7; 5], 100, 0.95, 1), (0.7, 0.7));
    }

    #[test]
    fn randomization_test_separates_real_and_null_differences() {
        let a: Vec<f64> = (0..60).map(|i| 0.5 + 0.3 * ((i % 3) as f64)).collect();
        let better: Vec<f64> = a.iter().map(|x| x + 0.2).collect();
        assert!(randomization_test(&better, &a, 2000, 1) < 0.01);
        assert_eq!(randomization_test(&a, &a, 500, 1), 1.0);
        // Exactly: one query differs by 1, so |mean| >= observed only when the sign is kept or flipped:
        // every permutation counts, p = 1.
        assert_eq!(randomization_test(&[1.0], &[0.0], 100, 2), 1.0);
    }

    #[test]
    fn group_means() {
        let pq: BTreeMap<String, f64> = [("a".into(), 1.0), ("b".into(), 0.0), ("c".into(), 0.5)].into();
        let g: HashMap<String, String> = [("a".into(), "x".into()), ("b".into(), "x".into()), ("c".into(), "y".into())].into();
        let m = means_by_group(&pq, &g);
        assert_eq!(m["x"], (0.5, 2));
        assert_eq!(m["y"], (0.5, 1));
    }
}
