//! SwiGLU's gate on the host: `silu(gate) * up`, with the polynomial exp of [`super::exp`] (glibc's
//! `expf` is a scalar call per element, and this runs on every MLP activation of the bf16 path):
//! 16 values per instruction where the CPU has AVX-512 F.

use rayon::prelude::*;

use super::exp::fast_exp;

/// `gate[i] = silu(gate[i]) * up[i]` where `silu(g) = g / (1 + e^-g)`.
pub fn silu_mul_in_place(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "gate and up of different lengths");
    let vector = super::avx512f_supported();
    gate.par_chunks_mut(4096)
        .zip(up.par_chunks(4096))
        .for_each(|(g, u)| {
            let done = if vector {
                // SAFETY: AVX-512 F detected above; `g` and `u` have the same length.
                unsafe { avx512::silu_mul(g, u) }
            } else {
                0
            };
            for (g, u) in g[done..].iter_mut().zip(&u[done..]) {
                *g = *g / (1.0 + fast_exp(-*g)) * u;
            }
        });
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use crate::kernels::exp::avx512::exp16;

    /// The leading multiple of 16 values of `silu(gate) * up`; returns how many were done.
    ///
    /// # Safety
    /// AVX-512 F present; `up` at least as long as `gate`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn silu_mul(gate: &mut [f32], up: &[f32]) -> usize {
        let blocks = gate.len() / 16;
        unsafe {
            for i in 0..blocks {
                let g = _mm512_loadu_ps(gate.as_ptr().add(16 * i));
                let u = _mm512_loadu_ps(up.as_ptr().add(16 * i));
                let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
                let s = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0), e));
                _mm512_storeu_ps(gate.as_mut_ptr().add(16 * i), _mm512_mul_ps(s, u));
            }
        }
        16 * blocks
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    /// Never called: no AVX-512 off x86-64.
    pub unsafe fn silu_mul(_: &mut [f32], _: &[f32]) -> usize {
        unreachable!("AVX-512 exists on x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
