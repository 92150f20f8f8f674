//! Learning-rate schedule: linear warm-up, then cosine decay to zero.

/// The learning rate at `step` (0-based) of `total` steps.
pub fn warmup_cosine(base: f64, step: usize, total: usize, warmup: usize) -> f64 {
    if total == 0 {
        return base;
    }
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let decay_steps = (total - warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / decay_steps).min(1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_by_cosine() {
        // 10 steps, 2 of warm-up, base 1.0.
        assert!((warmup_cosine(1.0, 0, 10, 2) - 0.5).abs() < 1e-12);
        assert!((warmup_cosine(1.0, 1, 10, 2) - 1.0).abs() < 1e-12);
        assert!((warmup_cosine(1.0, 2, 10, 2) - 1.0).abs() < 1e-12);
        // Half-way through the 8 decay steps: cos(pi/2) = 0 -> 0.5.
        assert!((warmup_cosine(1.0, 6, 10, 2) - 0.5).abs() < 1e-12);
        assert!(warmup_cosine(1.0, 9, 10, 2) < 0.05);
    }
}
