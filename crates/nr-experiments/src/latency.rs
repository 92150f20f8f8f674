//! Per-query latency of making a query vector, batch 1: what each system costs an agent.

use serde::{Deserialize, Serialize};

/// Turns timed for latency (batch 1, one after another).
pub const LATENCY_SAMPLE: usize = 8;

/// Milliseconds of each part of making one query vector (medians when summarising many).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub prefill_ms: f64,
    pub generation_ms: f64,
    pub teacher_ms: f64,
    pub head_ms: f64,
}

impl Latency {
    pub fn total(&self) -> f64 {
        self.prefill_ms + self.generation_ms + self.teacher_ms + self.head_ms
    }

    /// The part-wise medians of `samples`.
    pub fn median_of(samples: &[Latency]) -> Latency {
        let part = |f: fn(&Latency) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
        Latency {
            prefill_ms: part(|l| l.prefill_ms),
            generation_ms: part(|l| l.generation_ms),
            teacher_ms: part(|l| l.teacher_ms),
            head_ms: part(|l| l.head_ms),
        }
    }
}

/// Milliseconds since `start`.
pub fn ms_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The median of `xs` (0 when empty).
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_taken_part_by_part() {
        let l = |p, h| Latency {
            prefill_ms: p,
            head_ms: h,
            ..Default::default()
        };
        let m = Latency::median_of(&[l(3.0, 1.0), l(1.0, 5.0), l(2.0, 2.0), l(10.0, 0.5)]);
        assert_eq!((m.prefill_ms, m.head_ms), (2.5, 1.5));
        assert_eq!(median(&mut []), 0.0);
    }
}
