//! One bit per dimension (the sign) and the Hamming distances between such codes: the coarse scan
//! of the binary index ([`crate::binary`]). Codes sit in blocks of 8 rows, word-major inside a
//! block, so that one 512-bit register holds the same word of 8 rows. A scan runs a group of
//! queries over a tile of rows at a time, in two branch-free passes: the distances of every row
//! of the tile to each query, then the rows nearer than each query's threshold, which tightens
//! after every tile ([`Nearest`]).
//!
//! Three kernels give the same results, chosen at run time by what the CPU has: AVX-512 with
//! `VPOPCNTDQ` (8 rows per instruction), AVX2 (bytes counted by table lookup, `vpshufb`), both for
//! codes of 2, 4, 6, 8, 12 or 16 words (128 to 1024 dimensions), and a portable one (`count_ones`,
//! compiled with `popcnt` where that is present) for any width and CPU.

/// Bits per code word.
pub const WORD_BITS: usize = 64;
/// Rows per block of the scan layout.
pub const BLOCK_ROWS: usize = 8;
/// Queries that share one pass over the codes.
pub const QUERY_GROUP: usize = 8;
/// Rows per tile: the distances of one tile to one query take 4 KiB.
pub const TILE_ROWS: usize = 2048;
/// Distances kept per query of a group: a tile, plus 64 bytes so that the queries' distances of
/// the same row are not 4 KiB apart (which would make their stores and loads alias).
const PLANE: usize = TILE_ROWS + 32;

/// Words per code of `dim` dimensions.
pub fn words_for(dim: usize) -> usize {
    dim.div_ceil(WORD_BITS)
}

/// Writes the sign code of `row` into `out` (`words_for(row.len())` words): bit `i` is set when
/// `row[i] > 0`; the bits past the last dimension stay 0 in every code, so they never differ.
pub fn sign_code(row: &[f32], out: &mut [u64]) {
    out.fill(0);
    for (word, values) in out.iter_mut().zip(row.chunks(WORD_BITS)) {
        for (i, &x) in values.iter().enumerate() {
            *word |= u64::from(x > 0.0) << i;
        }
    }
}

/// The Hamming kernel a scan runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512F and VPOPCNTDQ: 8 rows per instruction.
    Avx512,
    /// AVX2: bytes counted with a 16-entry table (`vpshufb`), 4 rows per register.
    Avx2,
    /// `count_ones` per word; every CPU.
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        if Kernel::Avx512.runs_here() {
            Kernel::Avx512
        } else if Kernel::Avx2.runs_here() {
            Kernel::Avx2
        } else {
            Kernel::Portable
        }
    }

    /// Whether this CPU has what the kernel needs (a scan with a kernel that does not run here
    /// uses the portable one).
    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Kernel::Avx512 => has!("avx512f") && has!("avx512vpopcntdq") && has!("popcnt"),
                Kernel::Avx2 => has!("avx2") && has!("popcnt"),
                Kernel::Portable => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Portable
        }
    }
}

/// Sign codes of a set of rows in the scan layout.
#[derive(Debug, Clone)]
pub struct BitCodes {
    rows: usize,
    words: usize,
    /// `ceil(rows / 8)` blocks of `words * 8` words: word `w` of row `8b + r` at
    /// `b * words * 8 + w * 8 + r`; rows past `rows` are zero and never reported.
    blocked: Vec<u64>,
}

impl BitCodes {
    /// Lays out `codes` (row-major, `words` per row) for scanning.
    pub fn from_row_major(codes: &[u64], words: usize) -> Self {
        assert!(
            words > 0 && codes.len().is_multiple_of(words),
            "codes are rows of {words} words"
        );
        let rows = codes.len() / words;
        let mut blocked = vec![0u64; rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS * words];
        for (row, code) in codes.chunks_exact(words).enumerate() {
            let base = row / BLOCK_ROWS * BLOCK_ROWS * words + row % BLOCK_ROWS;
            for (w, &word) in code.iter().enumerate() {
                blocked[base + w * BLOCK_ROWS] = word;
            }
        }
        BitCodes {
            rows,
            words,
            blocked,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn words(&self) -> usize {
        self.words
    }

    /// Finds the nearest rows of each code in `queries` (`nearest.len()` codes of `words()`
    /// words each) into the matching [`Nearest`]; read them with [`Nearest::rows`]. Queries share
    /// each pass over the codes (in groups of [`QUERY_GROUP`]), so the codes are read from memory
    /// once per group instead of once per query.
    pub fn search(&self, kernel: Kernel, queries: &[u64], nearest: &mut [Nearest]) {
        assert_eq!(
            queries.len(),
            nearest.len() * self.words,
            "query code widths"
        );
        let simd = simd_tile_distances(kernel, self.words);
        // The distances of a tile to a group: query `q`'s from `q * PLANE`, in row order.
        let mut dist = vec![0u16; QUERY_GROUP * PLANE];
        for (group, found) in queries
            .chunks(QUERY_GROUP * self.words)
            .zip(nearest.chunks_mut(QUERY_GROUP))
        {
            for n in found.iter_mut() {
                n.reset();
            }
            self.scan_group(simd, group, found, &mut dist);
        }
    }

    /// Runs a group of queries over every tile, with a SIMD kernel's distances or else the
    /// portable ones.
    fn scan_group(
        &self,
        simd: Option<(Kernel, TileDistances)>,
        group: &[u64],
        found: &mut [Nearest],
        dist: &mut [u16],
    ) {
        let tile_words = TILE_ROWS * self.words;
        for (t, tile) in self.blocked.chunks(tile_words).enumerate() {
            let first = t * TILE_ROWS;
            let rows = tile.len() / self.words;
            match simd {
                // SAFETY: `simd_tile_distances` gives a kernel only where the CPU runs it.
                Some((_, distances)) => unsafe { distances(tile, group, dist) },
                None => tile_distances_portable(self.words, tile, group, dist),
            }
            for (q, n) in found.iter_mut().enumerate() {
                let dist = &dist[q * PLANE..][..rows];
                match simd {
                    // SAFETY: as above; collection needs no more than the distances' kernel.
                    #[cfg(target_arch = "x86_64")]
                    Some((Kernel::Avx512, _)) => unsafe { n.collect_avx512(first, dist) },
                    _ => n.collect(first, dist),
                }
            }
        }
    }
}

/// A SIMD kernel's tile distances for codes of one width (see [`tile_distances_avx512`]).
type TileDistances = unsafe fn(&[u64], &[u64], &mut [u16]);

/// The tile distances of `kernel` for codes of `words` words, where the CPU runs it and the width
/// is one the SIMD kernels are unrolled for (2 to 16 words: 128 to 1024 dimensions); `None`:
/// the portable kernel.
fn simd_tile_distances(kernel: Kernel, words: usize) -> Option<(Kernel, TileDistances)> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_macros))]
    macro_rules! by_width {
        ($f:ident) => {
            match words {
                2 => $f::<2> as TileDistances,
                4 => $f::<4>,
                6 => $f::<6>,
                8 => $f::<8>,
                12 => $f::<12>,
                16 => $f::<16>,
                _ => return None,
            }
        };
    }
    if !kernel.runs_here() {
        return None;
    }
    let distances = match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => by_width!(tile_distances_avx512),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => by_width!(tile_distances_avx2),
        _ => return None,
    };
    Some((kernel, distances))
}

/// Writes the distances of a tile's rows to each query of `group` into `dist` (query `q`'s from
/// `q * PLANE`, in row order); each block's words are loaded once for the whole group.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
fn tile_distances_avx512<const W: usize>(tile: &[u64], group: &[u64], dist: &mut [u16]) {
    use std::arch::x86_64::*;
    for (b, block) in tile.chunks_exact(W * BLOCK_ROWS).enumerate() {
        // SAFETY: `block` holds `W * 8` words: 8 from `w * 8` are in bounds.
        let x: [__m512i; W] = std::array::from_fn(|w| unsafe {
            _mm512_loadu_si512(block.as_ptr().add(w * BLOCK_ROWS).cast())
        });
        for (q, query) in group.chunks_exact(W).enumerate() {
            let mut acc = _mm512_setzero_si512();
            for (xw, &qw) in x.iter().zip(query) {
                let diff = _mm512_xor_si512(*xw, _mm512_set1_epi64(qw as i64));
                acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(diff));
            }
            let d = &mut dist[q * PLANE + b * BLOCK_ROWS..][..BLOCK_ROWS];
            // SAFETY: `d` holds 8 u16 (16 bytes); distances are at most 1024.
            unsafe { _mm_storeu_si128(d.as_mut_ptr().cast(), _mm512_cvtepi64_epi16(acc)) };
        }
    }
}

/// [`tile_distances_avx512`] with AVX2: each word of 4 rows (one register) XORed with the query,
/// its bytes' bits counted with a 16-entry table per nibble (`vpshufb`), byte counts summed over
/// the words (at most 8 per word, so 128 for 16 words: no overflow) and then per row (`vpsadbw`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tile_distances_avx2<const W: usize>(tile: &[u64], group: &[u64], dist: &mut [u16]) {
    use std::arch::x86_64::*;
    let table = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3,
        3, 4,
    );
    let nibble = _mm256_set1_epi8(0x0f);
    let bits = |v: __m256i| {
        let low = _mm256_shuffle_epi8(table, _mm256_and_si256(v, nibble));
        let high = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble));
        _mm256_add_epi8(low, high)
    };
    for (b, block) in tile.chunks_exact(W * BLOCK_ROWS).enumerate() {
        for (q, query) in group.chunks_exact(W).enumerate() {
            let (mut lo, mut hi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for (w, &qw) in query.iter().enumerate() {
                let qv = _mm256_set1_epi64x(qw as i64);
                // SAFETY: `block` holds `W * 8` words: 4 from `w * 8` and 4 from `w * 8 + 4`.
                let (x0, x1) = unsafe {
                    let at = block.as_ptr().add(w * BLOCK_ROWS);
                    (
                        _mm256_loadu_si256(at.cast()),
                        _mm256_loadu_si256(at.add(4).cast()),
                    )
                };
                lo = _mm256_add_epi8(lo, bits(_mm256_xor_si256(x0, qv)));
                hi = _mm256_add_epi8(hi, bits(_mm256_xor_si256(x1, qv)));
            }
            let zero = _mm256_setzero_si256();
            let mut rows = [0u64; BLOCK_ROWS];
            // SAFETY: `rows` holds 8 u64: 4 from 0 and 4 from 4.
            unsafe {
                _mm256_storeu_si256(rows.as_mut_ptr().cast(), _mm256_sad_epu8(lo, zero));
                _mm256_storeu_si256(rows.as_mut_ptr().add(4).cast(), _mm256_sad_epu8(hi, zero));
            }
            let d = &mut dist[q * PLANE + b * BLOCK_ROWS..][..BLOCK_ROWS];
            for (d, &r) in d.iter_mut().zip(&rows) {
                *d = r as u16;
            }
        }
    }
}

/// [`tile_distances_avx512`] for any width and CPU.
fn tile_distances_portable(words: usize, tile: &[u64], group: &[u64], dist: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        #[target_feature(enable = "popcnt")]
        fn with_popcnt(words: usize, tile: &[u64], group: &[u64], dist: &mut [u16]) {
            tile_distances_words(words, tile, group, dist)
        }
        // SAFETY: the CPU has popcnt (checked just above).
        return unsafe { with_popcnt(words, tile, group, dist) };
    }
    tile_distances_words(words, tile, group, dist)
}

#[inline(always)]
fn tile_distances_words(words: usize, tile: &[u64], group: &[u64], dist: &mut [u16]) {
    for (b, block) in tile.chunks_exact(words * BLOCK_ROWS).enumerate() {
        for (q, query) in group.chunks_exact(words).enumerate() {
            let d = &mut dist[q * PLANE + b * BLOCK_ROWS..][..BLOCK_ROWS];
            d.fill(0);
            for (w, &qw) in query.iter().enumerate() {
                for (d, &x) in d
                    .iter_mut()
                    .zip(&block[w * BLOCK_ROWS..(w + 1) * BLOCK_ROWS])
                {
                    *d += (x ^ qw).count_ones() as u16;
                }
            }
        }
    }
}

fn row_of(packed: u64) -> usize {
    (packed & u64::from(u32::MAX)) as usize
}

/// The `want` rows nearest one query during a scan: after each tile it holds the rows nearer than
/// its threshold, and once it holds `2 * want` it keeps the `want` best and lowers the threshold
/// to the `want`-th distance (a later row at that distance would rank after every row held).
/// Reusable across queries (no allocation after the first).
#[derive(Debug, Clone)]
pub struct Nearest {
    want: usize,
    rows: usize,
    threshold: u32,
    /// Rows of the first tile at each distance (sets the first threshold).
    counts: Vec<u32>,
    /// `distance << 32 | row` of the rows held: sorting them ranks them.
    held: Vec<u64>,
}

impl Nearest {
    /// Ready to find the `want` nearest of `rows` rows whose codes have `bits` bits.
    pub fn new(want: usize, rows: usize, bits: usize) -> Self {
        Nearest {
            want,
            rows,
            threshold: u32::MAX,
            counts: vec![0; bits + 1],
            held: Vec::with_capacity(2 * want + TILE_ROWS + BLOCK_ROWS),
        }
    }

    fn reset(&mut self) {
        self.threshold = u32::MAX;
        self.held.clear();
    }

    /// Holds the rows of the current tile (`dist`: their distances; the first is row `first`)
    /// nearer than the threshold.
    fn collect(&mut self, first: usize, dist: &[u16]) {
        let dist = &dist[..dist.len().min(self.rows.saturating_sub(first))];
        self.first_threshold(dist);
        for (i, &d) in dist.iter().enumerate() {
            if u32::from(d) < self.threshold {
                self.held.push(u64::from(d) << 32 | (first + i) as u64);
            }
        }
        self.tighten_if_full();
    }

    /// [`Nearest::collect`] with compressed stores: no branch per row or block (a branch per
    /// 32 rows measured slower: it mispredicts while the threshold is still loose).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,popcnt")]
    fn collect_avx512(&mut self, first: usize, dist: &[u16]) {
        use std::arch::x86_64::*;
        let dist = &dist[..dist.len().min(self.rows.saturating_sub(first))];
        self.first_threshold(dist);
        self.held.reserve(dist.len() + BLOCK_ROWS);
        let bound = _mm512_set1_epi64(i64::from(self.threshold));
        let mut rows = _mm512_add_epi64(
            _mm512_set1_epi64(first as i64),
            _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
        );
        let mut len = self.held.len();
        let (blocks, tail) = dist.split_at(dist.len() / BLOCK_ROWS * BLOCK_ROWS);
        for chunk in blocks.chunks_exact(BLOCK_ROWS) {
            // SAFETY: `chunk` holds 8 u16 (16 bytes).
            let d = _mm512_cvtepu16_epi64(unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) });
            let keep = _mm512_cmplt_epu64_mask(d, bound);
            let packed = _mm512_or_si512(_mm512_slli_epi64::<32>(d), rows);
            // Compress in a register, then store all 8 lanes (the memory form of the compress
            // is microcoded and slow on some CPUs); only the first `keep` lanes are kept.
            // SAFETY: `reserve` above left room for every row of the tile, plus 8, past `len`.
            unsafe {
                let kept = _mm512_maskz_compress_epi64(keep, packed);
                _mm512_storeu_si512(self.held.as_mut_ptr().add(len).cast(), kept)
            };
            len += keep.count_ones() as usize;
            rows = _mm512_add_epi64(rows, _mm512_set1_epi64(BLOCK_ROWS as i64));
        }
        // SAFETY: the first `len` values were written, by the stores above or before.
        unsafe { self.held.set_len(len) };
        let tail_first = first + blocks.len();
        for (i, &d) in tail.iter().enumerate() {
            if u32::from(d) < self.threshold {
                self.held.push(u64::from(d) << 32 | (tail_first + i) as u64);
            }
        }
        self.tighten_if_full();
    }

    /// Before the first tile is held: the threshold that keeps its `want` nearest rows (ties
    /// included), from a histogram of its distances, so that it adds about `want` rows instead of
    /// all of them. (A threshold estimated for the whole set from this tile would keep later
    /// tiles' rows out sooner, but measured no faster: the branch it needs mispredicts.)
    fn first_threshold(&mut self, dist: &[u16]) {
        if self.threshold != u32::MAX || dist.len() <= 2 * self.want {
            return;
        }
        self.counts.fill(0);
        for &d in dist {
            self.counts[usize::from(d)] += 1;
        }
        let mut kept = 0;
        for (d, &c) in self.counts.iter().enumerate() {
            kept += c as usize;
            if kept >= self.want {
                self.threshold = d as u32 + 1;
                return;
            }
        }
    }

    /// Keeps the `want` best once `2 * want` are held, and lowers the threshold to the `want`-th
    /// distance.
    fn tighten_if_full(&mut self) {
        if self.want == 0 || self.held.len() < 2 * self.want.max(BLOCK_ROWS) {
            return;
        }
        let kth = *self.held.select_nth_unstable(self.want - 1).1;
        self.held.truncate(self.want);
        self.threshold = (kth >> 32) as u32;
    }

    /// The nearest rows found by the last [`BitCodes::search`], nearest first (equal distances:
    /// lower row first).
    pub fn rows(&mut self) -> Vec<usize> {
        self.keep_best();
        self.held.sort_unstable();
        self.held.iter().map(|&p| row_of(p)).collect()
    }

    /// [`Nearest::rows`] in no particular order (for a re-ranking that sorts them anyway).
    pub fn rows_unordered(&mut self) -> Vec<usize> {
        self.keep_best();
        self.held.iter().map(|&p| row_of(p)).collect()
    }

    fn keep_best(&mut self) {
        if self.want == 0 {
            self.held.clear();
        } else if self.held.len() > self.want {
            self.held.select_nth_unstable(self.want - 1);
            self.held.truncate(self.want);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_codes(rows: usize, words: usize, seed: u64) -> Vec<u64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..rows * words).map(|_| rng.random::<u64>()).collect()
    }

    /// The nearest rows by brute force over row-major codes: the reference of every kernel.
    fn reference(codes: &[u64], words: usize, query: &[u64], want: usize) -> Vec<usize> {
        let mut all: Vec<(u32, usize)> = codes
            .chunks_exact(words)
            .enumerate()
            .map(|(row, c)| {
                let d = c.iter().zip(query).map(|(a, b)| (a ^ b).count_ones()).sum();
                (d, row)
            })
            .collect();
        all.sort_unstable();
        all.into_iter().take(want).map(|(_, r)| r).collect()
    }

    fn kernels() -> Vec<Kernel> {
        // The portable kernel runs everywhere; AVX2 and AVX-512 where the CPU has them.
        let mut k = vec![Kernel::Portable];
        for kernel in [Kernel::Avx2, Kernel::Avx512] {
            if kernel.runs_here() {
                k.push(kernel);
            }
        }
        k
    }

    #[test]
    fn sign_codes_set_the_bits_of_positive_values_only() {
        let mut row = vec![0.0f32; 70];
        row[0] = 0.5;
        row[63] = 1e-9;
        row[64] = 2.0;
        row[65] = -1.0;
        let mut code = vec![0u64; words_for(70)];
        sign_code(&row, &mut code);
        assert_eq!(code, vec![1 | 1 << 63, 1]);
    }

    #[test]
    fn every_kernel_finds_the_brute_force_nearest_rows() {
        // Odd row counts leave a partial last block and tile; 6 words is 384 dimensions.
        for (rows, words, want) in [
            (1, 1, 1),
            (13, 2, 5),
            (1_001, 6, 50),
            (3_000, 6, 200),
            // Several tiles, and more rows wanted than a tile holds.
            (5_000, 6, 200),
            (6_001, 12, 3_000),
            (9, 6, 40),
        ] {
            let codes = random_codes(rows, words, rows as u64);
            let blocked = BitCodes::from_row_major(&codes, words);
            // 11 queries: a full group of 8 and a partial one.
            let queries = random_codes(11, words, 7);
            for kernel in kernels() {
                let mut nearest = vec![Nearest::new(want, rows, words * WORD_BITS); 11];
                blocked.search(kernel, &queries, &mut nearest);
                for (q, n) in queries.chunks_exact(words).zip(&mut nearest) {
                    let want_rows = reference(&codes, words, q, want);
                    assert_eq!(n.rows(), want_rows, "{kernel:?} rows {rows}");
                }
            }
        }
    }

    #[test]
    fn a_query_equal_to_a_row_finds_it_first() {
        let codes = random_codes(500, 6, 3);
        let blocked = BitCodes::from_row_major(&codes, 6);
        for kernel in kernels() {
            let mut nearest = [Nearest::new(10, 500, 384)];
            blocked.search(kernel, &codes[6 * 321..6 * 322], &mut nearest);
            assert_eq!(nearest[0].rows()[0], 321, "{kernel:?}");
        }
    }
}
