//! `y = x · W` with W held in bfloat16 and products summed in f32, on CPUs with AVX-512 BF16
//! (`vdpbf16ps`: 32 multiply-adds per instruction, twice f32 FMA's rate on the same vector unit).
//!
//! W is packed once into panels of [`PANEL`] output columns: for each pair of input rows `(2j, 2j+1)`
//! a panel holds one 32-bit lane per column with the two bf16 values side by side, the operand layout
//! `vdpbf16ps` reads. The activations are rounded to bf16 pairs the same way on each call. A
//! micro-kernel keeps `MR x PANEL` f32 sums in 24 registers over the whole depth, so every weight
//! pair loaded serves `MR` rows.

use half::bf16;
use rayon::prelude::*;

/// Output columns per packed panel: four 16-lane vectors.
pub const PANEL: usize = 64;
/// Rows of `x` per micro-kernel call (6 rows x 4 vectors = 24 accumulators of 32 registers).
const MR: usize = 6;
/// Rows of `x` per parallel task at most: enough to amortise a panel's trip through cache.
const MAX_ROWS_PER_TASK: usize = 8 * MR;
/// Parallel tasks per thread wanted, so that a few narrow panels (k/v projections: 3 panels)
/// over few rows (a conversation turn's new tokens) still keep every thread busy.
const TASKS_PER_THREAD: usize = 4;

/// Rows per task: `MAX_ROWS_PER_TASK`, fewer (a multiple of `MR`) when panels x row blocks would
/// give the threads fewer than `TASKS_PER_THREAD` tasks each.
fn rows_per_task(m: usize, panels: usize) -> usize {
    let wanted_tasks = TASKS_PER_THREAD * rayon::current_num_threads();
    let row_blocks = wanted_tasks.div_ceil(panels).max(1);
    m.div_ceil(row_blocks)
        .next_multiple_of(MR)
        .clamp(MR, MAX_ROWS_PER_TASK)
}

/// A weight matrix `[k, n]` (input rows, output columns: burn's `Linear` layout) packed as bf16 pairs.
#[derive(Debug, Clone)]
pub struct PackedBf16 {
    k: usize,
    n: usize,
    /// `k` rounded up to even: the depth in pairs is `pairs = k_even / 2`.
    pairs: usize,
    /// `[panel][pair][PANEL]` 32-bit lanes, each two bf16 (even row low, odd row high); columns past
    /// `n` and the row past an odd `k` are zero.
    data: Vec<u32>,
}

/// Two f32 as one 32-bit lane of bf16 values (`lo` in the low half), rounded to nearest even.
fn bf16_pair(lo: f32, hi: f32) -> u32 {
    u32::from(bf16::from_f32(lo).to_bits()) | (u32::from(bf16::from_f32(hi).to_bits()) << 16)
}

/// Rows of `x` `[m, k]` as bf16 pairs `[m, pairs]` (a zero pads an odd `k`). Consecutive bf16
/// values in memory are exactly the pairs `vdpbf16ps` reads, so a row converts as one bf16 array.
fn pack_rows(x: &[f32], m: usize, k: usize, pairs: usize) -> Vec<u32> {
    let mut out = vec![0u32; m * pairs];
    out.par_chunks_mut(pairs)
        .zip(x.par_chunks(k))
        .with_min_len(16)
        .for_each(|(dst, row)| {
            // SAFETY: callers of `matmul` checked the CPU (AVX-512 F and BF16).
            let done = unsafe { avx512::convert_row(row, dst) };
            for j in done..pairs {
                let hi = row.get(2 * j + 1).copied().unwrap_or(0.0);
                dst[j] = bf16_pair(row[2 * j], hi);
            }
        });
    out
}

impl PackedBf16 {
    /// Packs `w` `[k, n]` row-major.
    pub fn pack(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(
            w.len(),
            k * n,
            "weight of {} values for [{k}, {n}]",
            w.len()
        );
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0u32; panels * pairs * PANEL];
        data.par_chunks_mut(pairs * PANEL)
            .enumerate()
            .for_each(|(p, panel)| {
                for j in 0..pairs {
                    for c in 0..PANEL {
                        let col = p * PANEL + c;
                        if col >= n {
                            break;
                        }
                        let lo = w[2 * j * n + col];
                        let hi = if 2 * j + 1 < k {
                            w[(2 * j + 1) * n + col]
                        } else {
                            0.0
                        };
                        panel[j * PANEL + c] = bf16_pair(lo, hi);
                    }
                }
            });
        Self { k, n, pairs, data }
    }

    /// Output width `n`.
    pub fn cols(&self) -> usize {
        self.n
    }

    /// `x · W` for `x` `[m, k]` row-major: `[m, n]` row-major. Call only where
    /// [`super::bf16_supported`] holds.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_rows(&self.round_input(x, m))
    }

    /// `x` `[m, k]` rounded to bf16 pairs once, for several matrices of the same input width.
    pub fn round_input(&self, x: &[f32], m: usize) -> RoundedRows {
        assert_eq!(
            x.len(),
            m * self.k,
            "input of {} values for [{m}, {}]",
            x.len(),
            self.k
        );
        assert!(
            super::bf16_supported(),
            "bf16 matmul on a CPU without AVX-512 BF16"
        );
        RoundedRows {
            m,
            pairs: self.pairs,
            data: pack_rows(x, m, self.k, self.pairs),
        }
    }

    /// `x · W` for rows rounded by [`Self::round_input`] (of a matrix with the same input width;
    /// `round_input` checked the CPU).
    pub fn matmul_rows(&self, x: &RoundedRows) -> Vec<f32> {
        let mut out = vec![0.0f32; x.m * self.n];
        self.matmul_rows_into(x, &mut out);
        out
    }

    /// [`Self::matmul_rows`] into `out` (`[m, n]`, overwritten): no fresh buffer per call.
    pub fn matmul_rows_into(&self, x: &RoundedRows, out: &mut [f32]) {
        assert_eq!(x.pairs, self.pairs, "rows rounded for another input width");
        let (m, a) = (x.m, &x.data);
        assert_eq!(
            out.len(),
            m * self.n,
            "output of {} values for [{m}, {}]",
            out.len(),
            self.n
        );
        let panels = self.n.div_ceil(PANEL);
        let per_task = rows_per_task(m, panels);
        let row_blocks = m.div_ceil(per_task);
        let out_ptr = SharedOut(out.as_mut_ptr());
        (0..panels * row_blocks).into_par_iter().for_each(|task| {
            let (p, rb) = (task % panels, task / panels);
            let panel = &self.data[p * self.pairs * PANEL..(p + 1) * self.pairs * PANEL];
            let cols = (self.n - p * PANEL).min(PANEL);
            let rows_end = ((rb + 1) * per_task).min(m);
            let mut r0 = rb * per_task;
            while r0 < rows_end {
                let mr = (rows_end - r0).min(MR);
                // SAFETY: the CPU has AVX-512 F and BF16 (`round_input` asserted it); every task writes its own
                // rows `r0..r0 + mr` of its own columns `p * PANEL..p * PANEL + cols`, in bounds of
                // `out` (`[m, n]`), so no two tasks write the same element.
                unsafe {
                    let dst = out_ptr.at(r0 * self.n + p * PANEL);
                    let src = a.as_ptr().add(r0 * self.pairs);
                    avx512::tile(src, self.pairs, panel.as_ptr(), dst, self.n, mr, cols);
                }
                r0 += mr;
            }
        });
    }
}

/// Rows of an input rounded to bf16 pairs (see [`PackedBf16::round_input`]); only made where the CPU
/// runs the kernel.
#[derive(Debug, Clone)]
pub struct RoundedRows {
    m: usize,
    pairs: usize,
    data: Vec<u32>,
}

/// The output buffer shared by the parallel tasks, each writing disjoint elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
impl SharedOut {
    /// The element at `offset` (a method, so closures capture the whole `Send` wrapper).
    ///
    /// # Safety
    /// `offset` is within the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

// SAFETY: tasks write disjoint elements (see `PackedBf16::matmul`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{MR, PANEL};

    /// Converts the leading multiple of 32 values of `row` to bf16 (round to nearest even, as
    /// `half` does) into `dst`, two per lane; returns the number of lanes written.
    ///
    /// # Safety
    /// AVX-512 F and BF16 present; `dst` holds at least `row.len() / 2` lanes.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn convert_row(row: &[f32], dst: &mut [u32]) -> usize {
        let blocks = row.len() / 32;
        unsafe {
            for i in 0..blocks {
                let lo = _mm512_loadu_ps(row.as_ptr().add(32 * i));
                let hi = _mm512_loadu_ps(row.as_ptr().add(32 * i + 16));
                let packed = _mm512_cvtne2ps_pbh(hi, lo);
                _mm512_storeu_si512(
                    dst.as_mut_ptr().add(16 * i).cast(),
                    std::mem::transmute::<__m512bh, __m512i>(packed),
                );
            }
        }
        16 * blocks
    }

    /// One `mr x cols` tile: rows of bf16 pairs at `a` (row stride `pairs`), one packed panel
    /// at `b`, f32 results to `c` (row stride `ldc`).
    ///
    /// # Safety
    /// AVX-512 F and BF16 present; `a` holds `mr` rows of `pairs` lanes, `b` a panel of
    /// `pairs x PANEL` lanes, and `c` `mr` rows of at least `cols` writable values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn tile(
        a: *const u32,
        pairs: usize,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        cols: usize,
    ) {
        unsafe {
            match mr {
                6 => kernel::<6>(a, pairs, b, c, ldc, cols),
                5 => kernel::<5>(a, pairs, b, c, ldc, cols),
                4 => kernel::<4>(a, pairs, b, c, ldc, cols),
                3 => kernel::<3>(a, pairs, b, c, ldc, cols),
                2 => kernel::<2>(a, pairs, b, c, ldc, cols),
                1 => kernel::<1>(a, pairs, b, c, ldc, cols),
                _ => unreachable!("at most {MR} rows per tile"),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn kernel<const R: usize>(
        a: *const u32,
        pairs: usize,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
    ) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 4]; R];
            for j in 0..pairs {
                let bp = b.add(j * PANEL);
                let w: [__m512bh; 4] = [
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.cast())),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(16).cast())),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(32).cast())),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(48).cast())),
                ];
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(
                        *a.add(r * pairs + j) as i32,
                    ));
                    for (v, sum) in row.iter_mut().enumerate() {
                        *sum = _mm512_dpbf16_ps(*sum, x, w[v]);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                let dst = c.add(r * ldc);
                for (v, sum) in row.iter().enumerate() {
                    let first = v * 16;
                    if first >= cols {
                        break;
                    }
                    let left = cols - first;
                    if left >= 16 {
                        _mm512_storeu_ps(dst.add(first), *sum);
                    } else {
                        _mm512_mask_storeu_ps(dst.add(first), (1u16 << left) - 1, *sum);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    /// Never called: [`super::super::bf16_supported`] is false off x86-64.
    pub unsafe fn convert_row(_: &[f32], _: &mut [u32]) -> usize {
        unreachable!("bf16 kernels exist on x86-64 only")
    }

    /// Never called: [`super::super::bf16_supported`] is false off x86-64.
    pub unsafe fn tile(
        _: *const u32,
        _: usize,
        _: *const u32,
        _: *mut f32,
        _: usize,
        _: usize,
        _: usize,
    ) {
        unreachable!("bf16 kernels exist on x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounded(v: f32) -> f32 {
        bf16::from_f32(v).to_f32()
    }

    /// `x · W` in f64 over bf16-rounded inputs: what the kernel computes, up to f32 summation.
    fn reference(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for c in 0..n {
                let s: f64 = (0..k)
                    .map(|t| f64::from(rounded(x[i * k + t])) * f64::from(rounded(w[t * n + c])))
                    .sum();
                out[i * n + c] = s as f32;
            }
        }
        out
    }

    use crate::kernels::test_values as values;

    #[test]
    fn narrow_products_over_few_rows_are_split_across_threads() {
        let threads = rayon::current_num_threads();
        // A turn's 30 new tokens through a k/v projection (3 panels): row blocks of one tile, so
        // 3 x 5 tasks instead of 3.
        let per_task = rows_per_task(30, 3);
        assert_eq!(per_task % MR, 0);
        assert!(per_task <= MAX_ROWS_PER_TASK);
        assert!(
            3 * 30usize.div_ceil(per_task) >= threads.min(15),
            "{per_task}"
        );
        // Many rows over wide outputs: full-size blocks.
        assert_eq!(rows_per_task(4096, 24), MAX_ROWS_PER_TASK);
        // One row (a generated token): one tile.
        assert_eq!(rows_per_task(1, 768), MR);
    }

    #[test]
    fn pairs_hold_the_even_row_in_the_low_half() {
        assert_eq!(bf16_pair(1.0, -2.0), 0x3f80 | (0xc000 << 16));
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(bf16_pair(1.0 + 1.0 / 256.0, 0.0), 0x3f80);
    }

    #[test]
    fn vector_conversion_rounds_like_half() {
        if !crate::kernels::bf16_supported() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        // Ties, subnormals, infinities and ordinary values, 70 in all (two vector blocks + a tail).
        let mut x = values(70, 3);
        x[0] = 1.0 + 1.0 / 256.0;
        x[1] = 1.0 + 3.0 / 256.0;
        x[2] = f32::MIN_POSITIVE / 4.0;
        x[3] = f32::INFINITY;
        x[4] = -0.0;
        let packed = pack_rows(&x, 1, 70, 35);
        for (j, lane) in packed.iter().enumerate() {
            // The instruction reads subnormal inputs as zero (hidden states never are subnormal).
            let flush = |v: f32| if v.is_subnormal() { 0.0 } else { v };
            let want = bf16_pair(flush(x[2 * j]), flush(x[2 * j + 1]));
            assert_eq!(*lane, want, "pair {j}");
        }
    }

    #[test]
    fn products_equal_the_bf16_rounded_reference_for_every_edge_shape() {
        if !crate::kernels::bf16_supported() {
            eprintln!("skipped: this CPU has no AVX-512 BF16 (the f32 path serves it)");
            return;
        }
        // Odd depth, widths off the panel and vector sizes, row counts off the tile and task sizes.
        for &(m, k, n) in &[
            (1, 1, 1),
            (1, 576, 49),
            (5, 7, 17),
            (6, 64, 64),
            (13, 33, 130),
            (49, 576, 192),
            (97, 1536, 576),
        ] {
            let x = values(m * k, 1);
            let w = values(k * n, 2);
            let got = PackedBf16::pack(&w, k, n).matmul(&x, m);
            let want = reference(&x, &w, m, k, n);
            for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - r).abs() <= 1e-5 * (k as f32).sqrt() * (1.0 + r.abs()),
                    "[{m}, {k}] x [{k}, {n}] element {i}: {g} vs {r}"
                );
            }
        }
    }
}
