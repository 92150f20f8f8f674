//! SwiGLU's gate on the host: `silu(gate) * up`, with an exp the compiler vectorises (glibc's
//! `expf` is a scalar call per element, and this runs on every MLP activation of the bf16 path).

use rayon::prelude::*;

/// `e^x` for f32 without branches: `x = n ln2 + r` (|r| <= ln2/2, Cody-Waite split of ln2), a
/// degree-6 polynomial for `e^r`, and `2^n` built in the exponent bits. Within 3 ulp of `f32::exp`
/// on [-80, 80]; inputs below -87 clamp to ~e^-87 (not 0), above 88 to ~e^88.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor coefficients 1/k!, k = 0..6, in Horner form.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// `gate[i] = silu(gate[i]) * up[i]` where `silu(g) = g / (1 + e^-g)`.
pub fn silu_mul_in_place(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "gate and up of different lengths");
    gate.par_chunks_mut(4096)
        .zip(up.par_chunks(4096))
        .for_each(|(g, u)| {
            for (g, u) in g.iter_mut().zip(u) {
                *g = *g / (1.0 + fast_exp(-*g)) * u;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_three_ulp_of_the_standard_one_over_its_range() {
        // Down to -80: below, the results approach the subnormal range, where ulps shrink.
        let mut worst = 0.0f64;
        for i in 0..=320_000 {
            let x = -80.0 + i as f32 * 0.0005;
            let (got, want) = (fast_exp(x), x.exp());
            let ulp = f64::from(want) * f64::from(f32::EPSILON);
            worst = worst.max((f64::from(got) - f64::from(want)).abs() / ulp);
        }
        assert!(worst <= 3.0, "worst error {worst} ulp");
        assert_eq!(fast_exp(0.0), 1.0);
        assert!(fast_exp(-1000.0) > 0.0 && fast_exp(-1000.0) < 1e-37);
        assert!(fast_exp(1000.0).is_finite());
    }

    #[test]
    fn silu_times_up_matches_the_definition() {
        let gate: Vec<f32> = (0..10_000).map(|i| (i as f32 - 5_000.0) / 250.0).collect();
        let up: Vec<f32> = (0..10_000).map(|i| 1.0 + (i % 7) as f32).collect();
        let mut out = gate.clone();
        silu_mul_in_place(&mut out, &up);
        for ((o, g), u) in out.iter().zip(&gate).zip(&up) {
            let want = g / (1.0 + (-g).exp()) * u;
            assert!(
                (o - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{g}: {o} vs {want}"
            );
        }
    }
}
