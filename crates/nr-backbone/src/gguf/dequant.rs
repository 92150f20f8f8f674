//! De-quantisation of ggml tensor data to `f32`, following ggml's reference
//! `dequantize_row_*` routines (ggml-quants.c).
//!
//! Supported: F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K. Block
//! layouts (`d`/`m`/`dmin` are little-endian f16):
//! - Q4_0 (32 elements, 18 bytes): `d`, 16 bytes of nibbles; low nibbles are elements 0..16, high
//!   nibbles 16..32; `x = d * (q - 8)`.
//! - Q4_1 (32, 20): `d`, `m`, 16 bytes of nibbles as Q4_0; `x = d * q + m`.
//! - Q5_0 (32, 22): `d`, `qh: u32` (bit j is the 5th bit of element j), nibbles as Q4_0;
//!   `x = d * (q - 16)`.
//! - Q5_1 (32, 24): `d`, `m`, `qh`, nibbles; `x = d * q + m`.
//! - Q8_0 (32, 34): `d`, 32 `i8`; `x = d * q`.
//! - Q4_K (256, 144): `d`, `dmin`, 12 bytes packing eight 6-bit scales and mins, 128 bytes of
//!   nibbles; each 64-element chunk takes 32 bytes: low nibbles with scale/min 2c, high nibbles
//!   with 2c+1; `x = d * sc * q - dmin * m`.
//! - Q5_K (256, 176): as Q4_K plus `qh[32]`: chunk c takes bits 2c and 2c+1 of `qh[l]` as the 5th
//!   bits of its low and high halves.
//! - Q6_K (256, 210): `ql[128]` (low 4 bits), `qh[64]` (high 2 bits), sixteen `i8` scales (one
//!   per 16 elements), `d`; `x = d * scale * (q - 32)`.
//!
//! Large tensors are de-quantised on all cores with scoped threads (blocks are independent).

use half::{bf16, f16};

use super::ggml_type::{GgmlType, QK_K};

/// Why data could not be de-quantised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DequantError {
    /// The type has no de-quantiser here.
    #[error("de-quantisation of {0} is not implemented")]
    Unsupported(GgmlType),
    /// The byte length does not match the element count.
    #[error("{elements} elements of {ty} need {expected} bytes, got {found}")]
    Size {
        ty: GgmlType,
        elements: usize,
        expected: usize,
        found: usize,
    },
}

/// Below this many elements a tensor is de-quantised on the calling thread only.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 18;

/// Whether [`dequantize`] handles this type.
pub fn is_supported(ty: GgmlType) -> bool {
    block_fn(ty).is_some()
}

/// De-quantises `n_elements` values of type `ty` from `bytes` (exactly their encoded size).
pub fn dequantize(ty: GgmlType, bytes: &[u8], n_elements: usize) -> Result<Vec<f32>, DequantError> {
    let mut out = vec![0f32; n_elements];
    dequantize_into(ty, bytes, &mut out)?;
    Ok(out)
}

/// De-quantises `bytes` of type `ty` into `out`, whose length is the element count.
pub fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), DequantError> {
    let f = block_fn(ty).ok_or(DequantError::Unsupported(ty))?;
    let (block, size) = (ty.block_size(), ty.type_size());
    let expected = out
        .len()
        .is_multiple_of(block)
        .then(|| out.len() / block * size);
    if expected != Some(bytes.len()) {
        return Err(DequantError::Size {
            ty,
            elements: out.len(),
            expected: expected.unwrap_or(0),
            found: bytes.len(),
        });
    }
    let n_blocks = out.len() / block;
    let threads = if out.len() < PARALLEL_MIN_ELEMENTS {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(n_blocks)
    };
    if threads <= 1 {
        run_blocks(f, bytes, out, block, size);
        return Ok(());
    }
    let blocks_per_thread = n_blocks.div_ceil(threads);
    std::thread::scope(|s| {
        let chunks = bytes
            .chunks(blocks_per_thread * size)
            .zip(out.chunks_mut(blocks_per_thread * block));
        for (b, o) in chunks {
            s.spawn(move || run_blocks(f, b, o, block, size));
        }
    });
    Ok(())
}

/// De-quantises one block: `src` is `type_size` bytes, `dst` `block_size` values.
type BlockFn = fn(&[u8], &mut [f32]);

fn run_blocks(f: BlockFn, bytes: &[u8], out: &mut [f32], block: usize, size: usize) {
    for (src, dst) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(block)) {
        f(src, dst);
    }
}

fn block_fn(ty: GgmlType) -> Option<BlockFn> {
    Some(match ty {
        GgmlType::F32 => |s, d| d[0] = f32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        GgmlType::F16 => |s, d| d[0] = f16_at(s, 0),
        GgmlType::BF16 => |s, d| d[0] = bf16::from_le_bytes([s[0], s[1]]).to_f32(),
        GgmlType::F64 => {
            |s, d| d[0] = f64::from_le_bytes(s[..8].try_into().unwrap_or([0; 8])) as f32
        }
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q4_K => q4_k,
        GgmlType::Q5_K => q5_k,
        GgmlType::Q6_K => q6_k,
        _ => return None,
    })
}

/// The little-endian f16 at byte `at`, as f32.
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = ((qs[j] & 0x0F) as i32 - 8) as f32 * d;
        y[j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = (qs[j] & 0x0F) as f32 * d + m;
        y[j + 16] = (qs[j] >> 4) as f32 * d + m;
    }
}

/// The 5-bit values of a Q5_0/Q5_1 block from its `qh` word and 16 nibble bytes.
fn q5_values(qh: u32, qs: &[u8]) -> [u8; 32] {
    let mut q = [0u8; 32];
    for j in 0..16 {
        let h0 = ((qh >> j) & 1) as u8;
        let h1 = ((qh >> (j + 16)) & 1) as u8;
        q[j] = (qs[j] & 0x0F) | (h0 << 4);
        q[j + 16] = (qs[j] >> 4) | (h1 << 4);
    }
    q
}

fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for (out, q) in y.iter_mut().zip(q5_values(qh, &b[6..22])) {
        *out = (q as i32 - 16) as f32 * d;
    }
}

fn q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for (out, q) in y.iter_mut().zip(q5_values(qh, &b[8..24])) {
        *out = q as f32 * d + m;
    }
}

fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (out, &q) in y.iter_mut().zip(&b[2..34]) {
        *out = (q as i8) as f32 * d;
    }
}

/// Scale and min `j` (0..8) of the 12 packed bytes of a Q4_K/Q5_K block (ggml's
/// `get_scale_min_k4`): bytes 0..4 hold scales 0..4 in their low 6 bits, bytes 4..8 mins 0..4;
/// scales/mins 4..8 take their low 4 bits from bytes 8..12 and their high 2 bits from the top
/// bits of bytes 0..4 / 4..8.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

fn q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qs = &b[16..144];
    for chunk in 0..QK_K / 64 {
        let q = &qs[chunk * 32..chunk * 32 + 32];
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        let out = &mut y[chunk * 64..chunk * 64 + 64];
        for l in 0..32 {
            out[l] = d1 * (q[l] & 0x0F) as f32 - min1;
            out[l + 32] = d2 * (q[l] >> 4) as f32 - min2;
        }
    }
}

fn q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for chunk in 0..QK_K / 64 {
        let q = &qs[chunk * 32..chunk * 32 + 32];
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        let (u1, u2) = (1u8 << (2 * chunk), 1u8 << (2 * chunk + 1));
        let out = &mut y[chunk * 64..chunk * 64 + 64];
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            out[l] = d1 * ((q[l] & 0x0F) + h1) as f32 - min1;
            out[l + 32] = d2 * ((q[l] >> 4) + h2) as f32 - min2;
        }
    }
}

fn q6_k(b: &[u8], y: &mut [f32]) {
    let (ql_all, rest) = b.split_at(QK_K / 2);
    let (qh_all, rest) = rest.split_at(QK_K / 4);
    let (sc_all, d) = rest.split_at(QK_K / 16);
    let d = f16_at(d, 0);
    for half in 0..2 {
        let ql = &ql_all[half * 64..half * 64 + 64];
        let qh = &qh_all[half * 32..half * 32 + 32];
        let sc = &sc_all[half * 8..half * 8 + 8];
        let out = &mut y[half * 128..half * 128 + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            out[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            out[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            out[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            out[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}
