//! Significance of differences between systems scored on the same queries, and per-group means.
//!
//! Both tests are paired (they resample or permute queries, keeping each query's two scores
//! together) and seeded: the random numbers come from ChaCha8 seeded with a `u64`, whose stream is
//! fixed by its specification, so a seed gives the same interval and p-value on every machine and
//! with every rand version.
//!
//! - Bootstrap: the percentile interval of the mean (or of the mean difference) over `resamples`
//!   resamples of the queries with replacement.
//! - Randomization (sign-flip permutation) test, two-sided: under the null hypothesis the two
//!   systems are exchangeable on each query, so each per-query difference's sign is flipped at
//!   random; the p-value is the share of `permutations` flips whose |mean difference| reaches the
//!   observed one, counting the observed assignment itself: (hits + 1) / (permutations + 1).

use std::collections::{BTreeMap, HashMap};

use nr_data::QreccTurn;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{EvalError, Evaluation};

/// Group name of queries that have none (e.g. a query id missing from the QReCC turns).
pub const UNGROUPED: &str = "(none)";

/// Percentile bootstrap confidence interval of the mean of `values` at `level` (e.g. 0.95), from
/// `resamples` resamples with replacement drawn with `seed`. `(NaN, NaN)` for no values or no
/// resamples.
pub fn bootstrap_ci(values: &[f64], resamples: usize, level: f64, seed: u64) -> (f64, f64) {
    if values.is_empty() || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = ((1.0 - level) / 2.0).clamp(0.0, 0.5);
    let at = |q: f64| means[((q * resamples as f64).floor() as usize).min(resamples - 1)];
    (at(tail), at(1.0 - tail))
}

/// Two-sided paired randomization test of mean(a) - mean(b); see the module docs.
///
/// Panics when `a` and `b` differ in length (a programming error: they must be the same queries);
/// [`compare_paired`] returns an error instead.
pub fn randomization_test(a: &[f64], b: &[f64], permutations: usize, seed: u64) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "paired test needs scores of the same queries"
    );
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = diffs.len().max(1) as f64;
    let observed = (diffs.iter().sum::<f64>() / n).abs();
    // Sums of the same numbers in another order may differ in the last bits.
    let reach = observed - 1e-12 * (1.0 + observed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut hits = 0usize;
    for _ in 0..permutations {
        let s: f64 = diffs
            .iter()
            .map(|d| if rng.random::<bool>() { *d } else { -*d })
            .sum();
        if (s / n).abs() >= reach {
            hits += 1;
        }
    }
    (hits + 1) as f64 / (permutations + 1) as f64
}

/// Resampling settings of [`compare_paired`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SignificanceSettings {
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Random sign flips of the randomization test.
    pub permutations: usize,
    /// Confidence level of the interval (0.95 for 95%).
    pub level: f64,
    /// Seed of both.
    pub seed: u64,
}

impl Default for SignificanceSettings {
    fn default() -> Self {
        SignificanceSettings {
            resamples: 10_000,
            permutations: 10_000,
            level: 0.95,
            seed: 0,
        }
    }
}

/// System A against system B on the same queries.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PairedComparison {
    /// Number of queries.
    pub queries: usize,
    /// Mean of A.
    pub mean_a: f64,
    /// Mean of B.
    pub mean_b: f64,
    /// mean(A) - mean(B).
    pub mean_diff: f64,
    /// Bootstrap interval of mean(A - B), lower end.
    pub ci_low: f64,
    /// Bootstrap interval of mean(A - B), upper end.
    pub ci_high: f64,
    /// Two-sided randomization-test p-value of mean(A - B) = 0.
    pub p_value: f64,
}

/// Paired bootstrap interval and randomization test of two systems' per-query scores
/// (`a[i]` and `b[i]` are the same query).
pub fn compare_paired(
    a: &[f64],
    b: &[f64],
    settings: SignificanceSettings,
) -> Result<PairedComparison, EvalError> {
    if a.len() != b.len() || a.is_empty() {
        return Err(EvalError::Shape(format!(
            "paired comparison needs the same non-zero number of queries, got {} and {}",
            a.len(),
            b.len()
        )));
    }
    let n = a.len() as f64;
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (ci_low, ci_high) = bootstrap_ci(&diffs, settings.resamples, settings.level, settings.seed);
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    Ok(PairedComparison {
        queries: a.len(),
        mean_a,
        mean_b,
        mean_diff: diffs.iter().sum::<f64>() / n,
        ci_low,
        ci_high,
        p_value: randomization_test(a, b, settings.permutations, settings.seed),
    })
}

/// Mean of per-query values by group (e.g. `Conversation_source`): group -> (mean, queries).
/// Queries without a group are counted under [`UNGROUPED`] rather than dropped.
pub fn means_by_group(
    per_query: &BTreeMap<String, f64>,
    group_of: &HashMap<String, String>,
) -> BTreeMap<String, (f64, usize)> {
    let mut acc: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for (q, v) in per_query {
        let group = group_of.get(q).map_or(UNGROUPED, String::as_str);
        let e = acc.entry(group.to_string()).or_default();
        e.0 += v;
        e.1 += 1;
    }
    acc.into_iter()
        .map(|(g, (s, n))| (g, (s / n as f64, n)))
        .collect()
}

/// Mean of each metric per QReCC `Conversation_source`: source -> metric -> (mean, queries).
pub fn means_by_source(
    evaluation: &Evaluation,
    turns: &[QreccTurn],
) -> BTreeMap<String, BTreeMap<String, (f64, usize)>> {
    let source_of = nr_data::source_by_turn_id(turns);
    let mut out: BTreeMap<String, BTreeMap<String, (f64, usize)>> = BTreeMap::new();
    for metric in evaluation.mean.keys() {
        let per_query: BTreeMap<String, f64> = evaluation
            .per_query
            .iter()
            .filter_map(|(q, m)| m.get(metric).map(|v| (q.clone(), *v)))
            .collect();
        for (source, value) in means_by_group(&per_query, &source_of) {
            out.entry(source).or_default().insert(metric.clone(), value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact two-sided p-value by enumerating all 2^n sign patterns (the randomization test's limit).
    fn exact_p(diffs: &[f64]) -> f64 {
        let n = diffs.len();
        let observed = diffs.iter().sum::<f64>().abs();
        let hits = (0..1u32 << n)
            .filter(|mask| {
                let s: f64 = diffs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| if mask >> i & 1 == 1 { -d } else { *d })
                    .sum();
                s.abs() >= observed - 1e-12
            })
            .count();
        hits as f64 / (1u64 << n) as f64
    }

    #[test]
    fn randomization_p_values_converge_to_exact_enumeration() {
        // Four equal gains: only "all kept" and "all flipped" reach the observed |mean|: p = 2/16.
        assert_eq!(exact_p(&[1.0; 4]), 0.125);
        let p = randomization_test(&[1.0; 4], &[0.0; 4], 20_000, 7);
        assert!((p - 0.125).abs() < 0.01, "{p}");
        let a = [0.9, 0.4, 0.7, 0.2, 1.0, 0.5, 0.3, 0.8, 0.6, 0.1];
        let b = [0.5, 0.5, 0.4, 0.3, 0.6, 0.5, 0.4, 0.3, 0.7, 0.2];
        let diffs: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let exact = exact_p(&diffs);
        let p = randomization_test(&a, &b, 20_000, 11);
        // Monte Carlo standard error at 20,000 flips is below 0.004.
        assert!((p - exact).abs() < 0.012, "{p} vs exact {exact}");
        assert_eq!(randomization_test(&a, &a, 500, 1), 1.0);
        assert_eq!(
            randomization_test(&a, &b, 500, 3),
            randomization_test(&a, &b, 500, 3)
        );
    }

    #[test]
    fn bootstrap_interval_matches_the_normal_approximation_and_is_seeded() {
        let v: Vec<f64> = (0..400).map(|i| (i % 2) as f64).collect(); // mean 0.5, sd 0.5
        let (lo, hi) = bootstrap_ci(&v, 4000, 0.95, 3);
        // Normal approximation: 0.5 +- 1.96 * 0.5 / 20 = 0.5 +- 0.049.
        assert!(
            (lo - 0.451).abs() < 0.01 && (hi - 0.549).abs() < 0.01,
            "{lo} {hi}"
        );
        assert_eq!(bootstrap_ci(&v, 4000, 0.95, 3), (lo, hi));
        assert_ne!(bootstrap_ci(&v, 4000, 0.95, 4), (lo, hi));
        assert_eq!(bootstrap_ci(&[0.7; 5], 100, 0.95, 1), (0.7, 0.7));
        assert!(bootstrap_ci(&[], 100, 0.95, 1).0.is_nan());
    }

    #[test]
    fn paired_comparison_of_a_constant_gain() {
        let b: Vec<f64> = (0..50).map(|i| (i % 5) as f64 / 5.0).collect();
        let a: Vec<f64> = b.iter().map(|x| x + 0.25).collect();
        let settings = SignificanceSettings {
            resamples: 1000,
            permutations: 999,
            level: 0.95,
            seed: 5,
        };
        let c = compare_paired(&a, &b, settings).unwrap();
        assert_eq!(c.queries, 50);
        assert!((c.mean_diff - 0.25).abs() < 1e-12);
        assert!((c.ci_low - 0.25).abs() < 1e-12 && (c.ci_high - 0.25).abs() < 1e-12);
        // Equal differences reach the observed |mean| only when all signs agree (2 of 2^50
        // patterns), so none of the 999 random flips does: p = 1 / 1000.
        assert_eq!(c.p_value, 1.0 / 1000.0);
        assert!(compare_paired(&a, &b[1..], settings).is_err());
        assert!(compare_paired(&[], &[], settings).is_err());
    }

    #[test]
    fn group_means_keep_ungrouped_queries() {
        let pq: BTreeMap<String, f64> = [
            ("a".into(), 1.0),
            ("b".into(), 0.0),
            ("c".into(), 0.5),
            ("d".into(), 0.25),
        ]
        .into();
        let g: HashMap<String, String> = [
            ("a".into(), "x".into()),
            ("b".into(), "x".into()),
            ("c".into(), "y".into()),
        ]
        .into();
        let m = means_by_group(&pq, &g);
        assert_eq!(m["x"], (0.5, 2));
        assert_eq!(m["y"], (0.5, 1));
        assert_eq!(m[UNGROUPED], (0.25, 1));
    }
}
