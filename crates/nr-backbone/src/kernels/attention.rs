//! Masked softmax attention of one head on the host: `softmax(q k^T * scale + mask) v` in f32 with
//! AVX-512 F, for the decoder's pass on the host (`llama::host_decoder`).
//!
//! Keys are read transposed (`kt[t][j]`), so 16 keys' scores are one vector of sums with no
//! horizontal reduction; four query rows share each key vector loaded. A row group stops at the
//! last key its mask lets any of its rows see, which skips the masked upper triangle of a causal
//! mask. The result of a row does not depend on which rows share its group or on keys past its
//! last visible one: masked keys weigh exactly 0 and every sum runs in key order, so a prompt's
//! states are the same bit for bit whether its tokens run in one pass or are appended to a cache.

/// Query rows that share each loaded key vector.
const ROWS: usize = 4;
/// Keys per score vector.
const LANES: usize = 16;

/// One head's attention inputs; rows and keys are laid out as the decoder holds them.
#[derive(Debug, Clone, Copy)]
pub struct HeadInputs<'a> {
    /// Query `i` is `q[i * q_stride..][..head_dim]`.
    pub q: &'a [f32],
    pub q_stride: usize,
    /// Component `t` of key `j` is `kt[t * kt_stride + j]`; `kt_stride` is a multiple of 16 and
    /// the columns from `keys` up to it are finite (they are read, then masked).
    pub kt: &'a [f32],
    pub kt_stride: usize,
    /// Value `j` is `v[j * head_dim..][..head_dim]`.
    pub v: &'a [f32],
    /// Additive mask of query `i` over the keys: `mask[i * mask_stride..][..keys]`, 0 or `-inf`.
    pub mask: &'a [f32],
    pub mask_stride: usize,
    pub keys: usize,
    pub head_dim: usize,
    pub scale: f32,
}

/// Whether [`attend`] runs on this CPU for heads of `head_dim` (AVX-512 F; 64 or 128 wide).
pub fn supported(head_dim: usize) -> bool {
    matches!(head_dim, 64 | 128) && super::avx512f_supported()
}

/// Attention of the queries `rows` (indices into `inputs.q` and the mask) written to `out`, row
/// `r - rows.start` at `out[(r - rows.start) * head_dim..]`. Every query row must see at least one
/// key. Call only where [`supported`] holds.
pub fn attend(inputs: &HeadInputs, rows: std::ops::Range<usize>, out: &mut [f32]) {
    let d = inputs.head_dim;
    assert!(supported(d), "attention kernel on a CPU without AVX-512 F");
    assert!(inputs.kt_stride.is_multiple_of(LANES) && inputs.kt_stride >= inputs.keys);
    assert!(inputs.kt.len() >= d * inputs.kt_stride && inputs.v.len() >= inputs.keys * d);
    assert!(
        rows.end == rows.start
            || inputs.mask.len() >= (rows.end - 1) * inputs.mask_stride + inputs.keys
    );
    assert!(rows.end == rows.start || inputs.q.len() >= (rows.end - 1) * inputs.q_stride + d);
    assert_eq!(
        out.len(),
        rows.len() * d,
        "output of {} values for {} rows",
        out.len(),
        rows.len()
    );
    let mut scores = Vec::new();
    for (group, out) in (rows.start..rows.end)
        .step_by(ROWS)
        .zip(out.chunks_mut(ROWS * d))
    {
        let end = (group + ROWS).min(rows.end);
        // SAFETY: AVX-512 F checked above; the slices cover every row and key read (asserted).
        unsafe { avx512::group(inputs, group..end, &mut scores, out) };
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{HeadInputs, LANES, ROWS};
    use crate::kernels::exp::avx512::exp16 as exp;

    /// Up to [`ROWS`] query rows: scores, softmax, weighted values.
    ///
    /// # Safety
    /// AVX-512 F present; `inputs` covers the rows and keys (checked by `attend`).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn group(
        inputs: &HeadInputs,
        rows: std::ops::Range<usize>,
        scores: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let d = inputs.head_dim;
        let n = rows.len();
        // The last key any row of the group sees, and the key blocks up to it.
        let mut seen = 0;
        for r in rows.clone() {
            let mask = &inputs.mask[r * inputs.mask_stride..][..inputs.keys];
            let last = mask
                .iter()
                .rposition(|m| *m != f32::NEG_INFINITY)
                .map_or(0, |j| j + 1);
            seen = seen.max(last);
        }
        let blocks = seen.div_ceil(LANES);
        let width = blocks * LANES;
        scores.clear();
        scores.resize(ROWS * width, 0.0);
        unsafe {
            // Rows past the group's end repeat its last row; their results are dropped.
            let q: [*const f32; ROWS] = std::array::from_fn(|i| {
                let r = rows.start + i.min(n - 1);
                inputs.q.as_ptr().add(r * inputs.q_stride)
            });
            for b in 0..blocks {
                let mut acc = [_mm512_setzero_ps(); ROWS];
                let kt = inputs.kt.as_ptr().add(b * LANES);
                for t in 0..d {
                    let k = _mm512_loadu_ps(kt.add(t * inputs.kt_stride));
                    for (row, sum) in acc.iter_mut().enumerate() {
                        *sum = _mm512_fmadd_ps(_mm512_set1_ps(*q[row].add(t)), k, *sum);
                    }
                }
                for (row, sum) in acc.iter().enumerate() {
                    _mm512_storeu_ps(scores.as_mut_ptr().add(row * width + b * LANES), *sum);
                }
            }
            // Scale, mask (keys past `keys` are masked), softmax weights; 1/sum per row.
            let mut inv = [0.0f32; ROWS];
            for (i, r) in rows.clone().enumerate() {
                let row = &mut scores[i * width..(i + 1) * width];
                let mask = &inputs.mask[r * inputs.mask_stride..][..inputs.keys];
                for (j, s) in row.iter_mut().enumerate() {
                    *s = if j < inputs.keys {
                        *s * inputs.scale + mask[j]
                    } else {
                        f32::NEG_INFINITY
                    };
                }
                let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
                for b in 0..blocks {
                    max = _mm512_max_ps(max, _mm512_loadu_ps(row.as_ptr().add(b * LANES)));
                }
                let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
                let mut sum = _mm512_setzero_ps();
                for b in 0..blocks {
                    let p = row.as_mut_ptr().add(b * LANES);
                    let e = exp(_mm512_sub_ps(_mm512_loadu_ps(p), max));
                    _mm512_storeu_ps(p, e);
                    sum = _mm512_add_ps(sum, e);
                }
                inv[i] = 1.0 / _mm512_reduce_add_ps(sum);
            }
            // Weighted values, in key order; masked keys weigh exactly 0.
            let keys = seen.min(inputs.keys);
            match d {
                64 => values::<4, 4>(inputs, scores, width, keys, n, &inv, out),
                128 => values::<2, 8>(inputs, scores, width, keys, n, &inv, out),
                _ => unreachable!("head_dim checked by `supported`"),
            }
        }
    }

    /// `out[i] = inv[i] * sum_j p[i][j] v[j]` for `n` rows, `R` rows at a time, heads of `V`
    /// vectors (`R * V` accumulators in registers).
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn values<const R: usize, const V: usize>(
        inputs: &HeadInputs,
        p: &[f32],
        width: usize,
        keys: usize,
        n: usize,
        inv: &[f32; ROWS],
        out: &mut [f32],
    ) {
        let d = V * LANES;
        unsafe {
            for first in (0..n).step_by(R) {
                let rows = (n - first).min(R);
                let mut acc = [[_mm512_setzero_ps(); V]; R];
                for j in 0..keys {
                    let v = inputs.v.as_ptr().add(j * d);
                    let vs: [__m512; V] =
                        std::array::from_fn(|c| _mm512_loadu_ps(v.add(c * LANES)));
                    for (r, sums) in acc.iter_mut().enumerate().take(rows) {
                        let w = _mm512_set1_ps(*p.get_unchecked((first + r) * width + j));
                        for (sum, v) in sums.iter_mut().zip(&vs) {
                            *sum = _mm512_fmadd_ps(w, *v, *sum);
                        }
                    }
                }
                for (r, sums) in acc.iter().enumerate().take(rows) {
                    let scale = _mm512_set1_ps(inv[first + r]);
                    let dst = out.as_mut_ptr().add((first + r) * d);
                    for (c, sum) in sums.iter().enumerate() {
                        _mm512_storeu_ps(dst.add(c * LANES), _mm512_mul_ps(*sum, scale));
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    use super::HeadInputs;

    /// Never called: [`super::supported`] is false off x86-64.
    pub unsafe fn group(
        _: &HeadInputs,
        _: std::ops::Range<usize>,
        _: &mut Vec<f32>,
        _: &mut [f32],
    ) {
        unreachable!("the attention kernel exists on x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values as values;

    /// Softmax attention in f64 of the first `rows` queries of `inputs`, with the keys `k`
    /// `[keys, d]` as rows (not transposed) and the mask as given.
    fn reference(inputs: &HeadInputs, k: &[f32], rows: usize) -> Vec<f32> {
        let (q, v, mask) = (inputs.q, inputs.v, inputs.mask);
        let (keys, d, scale) = (inputs.keys, inputs.head_dim, inputs.scale);
        let mut out = vec![0.0f32; rows * d];
        for i in 0..rows {
            let s: Vec<f64> = (0..keys)
                .map(|j| {
                    let dot: f64 = (0..d)
                        .map(|t| f64::from(q[i * d + t]) * f64::from(k[j * d + t]))
                        .sum();
                    dot * f64::from(scale) + f64::from(mask[i * keys + j])
                })
                .collect();
            let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
            let total: f64 = e.iter().sum();
            for t in 0..d {
                let o: f64 = (0..keys).map(|j| e[j] * f64::from(v[j * d + t])).sum();
                out[i * d + t] = (o / total) as f32;
            }
        }
        out
    }

    /// Keys `[keys, d]` transposed into `[d, stride]` with zero columns past `keys`.
    fn transpose(k: &[f32], keys: usize, d: usize, stride: usize) -> Vec<f32> {
        let mut kt = vec![0.0f32; d * stride];
        for j in 0..keys {
            for t in 0..d {
                kt[t * stride + j] = k[j * d + t];
            }
        }
        kt
    }

    /// Inputs of rows laid out back to back: queries and values `[_, d]`, keys transposed with
    /// a stride of `keys` rounded up to 16, the mask `[_, keys]`.
    fn packed<'a>(
        q: &'a [f32],
        kt: &'a [f32],
        v: &'a [f32],
        mask: &'a [f32],
        keys: usize,
        d: usize,
        scale: f32,
    ) -> HeadInputs<'a> {
        HeadInputs {
            q,
            q_stride: d,
            kt,
            kt_stride: keys.next_multiple_of(16),
            v,
            mask,
            mask_stride: keys,
            keys,
            head_dim: d,
            scale,
        }
    }

    /// A causal mask whose first `pad` keys are padding (padding queries see only themselves, as
    /// in a left-padded batch), with `cached` keys before the queries.
    fn causal(rows: usize, cached: usize, pad: usize) -> Vec<f32> {
        let keys = cached + rows;
        (0..rows)
            .flat_map(|i| {
                let me = cached + i;
                (0..keys).map(move |j| {
                    if (j >= pad && j <= me) || (me < pad && j == me) {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
            })
            .collect()
    }

    #[test]
    fn equals_the_f64_reference_for_causal_padded_and_cached_shapes() {
        if !supported(64) {
            eprintln!("skipped: this CPU has no AVX-512 F (the decoder's burn path serves it)");
            return;
        }
        // Row counts off the group size, keys off the vector size, padding, a cache, both widths.
        for &(rows, cached, pad, d) in &[
            (1usize, 0usize, 0usize, 64usize),
            (5, 0, 2, 64),
            (17, 0, 0, 64),
            (33, 40, 0, 64),
            (3, 100, 7, 128),
            (21, 0, 3, 128),
        ] {
            let keys = cached + rows;
            let stride = keys.next_multiple_of(16);
            let (q, k, v) = (
                values(rows * d, 1),
                values(keys * d, 2),
                values(keys * d, 3),
            );
            let mask = causal(rows, cached, pad);
            let scale = 1.0 / (d as f32).sqrt();
            let kt = transpose(&k, keys, d, stride);
            let inputs = packed(&q, &kt, &v, &mask, keys, d, scale);
            let mut out = vec![0.0f32; rows * d];
            attend(&inputs, 0..rows, &mut out);
            let want = reference(&inputs, &k, rows);
            for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 2e-6 * (1.0 + w.abs()),
                    "rows {rows} cached {cached} pad {pad} d {d}: element {i}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn a_row_gives_the_same_bits_alone_and_in_any_group() {
        if !supported(64) {
            eprintln!("skipped: this CPU has no AVX-512 F");
            return;
        }
        let (rows, d) = (11, 64);
        let stride = 16;
        let (q, k, v) = (
            values(rows * d, 4),
            values(rows * d, 5),
            values(rows * d, 6),
        );
        let kt = transpose(&k, rows, d, stride);
        let mask = causal(rows, 0, 0);
        let inputs = packed(&q, &kt, &v, &mask, rows, d, 0.125);
        let mut all = vec![0.0f32; rows * d];
        attend(&inputs, 0..rows, &mut all);
        for r in 0..rows {
            let mut one = vec![0.0f32; d];
            attend(&inputs, r..r + 1, &mut one);
            assert_eq!(one, all[r * d..(r + 1) * d], "row {r}");
        }
        // Groups that start elsewhere (rows 3.., as a cache extension would run them).
        let mut tail = vec![0.0f32; (rows - 3) * d];
        attend(&inputs, 3..rows, &mut tail);
        assert_eq!(tail, all[3 * d..]);
    }
}
