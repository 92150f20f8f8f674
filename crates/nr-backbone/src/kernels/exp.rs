//! A polynomial `e^x` for f32, scalar and 16-wide (AVX-512 F), for softmax weights and SiLU: glibc's
//! `expf` is a scalar call per element, and both run on every attention score and MLP activation.

/// ln 2 split in two (Cody-Waite): `LN2_HI` has few enough bits that `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `e^x` for f32 without branches: `x = n ln2 + r` (|r| <= ln2/2, Cody-Waite split of ln2), a
/// degree-6 polynomial for `e^r`, and `2^n` built in the exponent bits. Within 3 ulp of `f32::exp`
/// on [-80, 80]; inputs below -87 clamp to ~e^-87 (not 0), above 88 to ~e^88.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
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

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::{LN2_HI, LN2_LO};

    /// `e^x` of 16 values, exactly 0 below -87 (masked keys, `-inf`): the polynomial of
    /// [`super::fast_exp`] in vector form.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn exp16(x: __m512) -> __m512 {
        let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_set1_ps(-87.0));
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
            _mm512_set1_ps(88.0),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut p = _mm512_set1_ps(1.0 / 720.0);
        for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let bits = _mm512_slli_epi32::<23>(_mm512_add_epi32(
            _mm512_cvtps_epi32(n),
            _mm512_set1_epi32(127),
        ));
        _mm512_maskz_mov_ps(keep, _mm512_mul_ps(p, _mm512_castsi512_ps(bits)))
    }
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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_exp_is_within_three_ulp_and_flushes_masked_scores_to_zero() {
        if !crate::kernels::avx512f_supported() {
            eprintln!("skipped: this CPU has no AVX-512 F");
            return;
        }
        use std::arch::x86_64::*;
        let xs: Vec<f32> = (0..320_000).map(|i| -80.0 + i as f32 * 0.0005).collect();
        let mut worst = 0.0f64;
        for chunk in xs.chunks_exact(16) {
            let mut got = [0.0f32; 16];
            // SAFETY: AVX-512 F detected above.
            unsafe {
                _mm512_storeu_ps(
                    got.as_mut_ptr(),
                    avx512::exp16(_mm512_loadu_ps(chunk.as_ptr())),
                )
            };
            for (g, x) in got.iter().zip(chunk) {
                let want = x.exp();
                let ulp = f64::from(want) * f64::from(f32::EPSILON);
                worst = worst.max((f64::from(*g) - f64::from(want)).abs() / ulp);
            }
        }
        assert!(worst <= 3.0, "worst error {worst} ulp");
        let mut got = [1.0f32; 16];
        // SAFETY: AVX-512 F detected above.
        unsafe {
            _mm512_storeu_ps(
                got.as_mut_ptr(),
                avx512::exp16(_mm512_set1_ps(f32::NEG_INFINITY)),
            )
        };
        assert_eq!(got, [0.0; 16]);
    }
}
