//! Quantisation of `f32` values to the simple ggml block types, following ggml's reference
//! `quantize_row_*_ref` routines, so that [`GgufWriter`](super::writer::GgufWriter) can produce
//! the same bytes llama.cpp would. The inverse lives in [`dequant`](super::dequant).

use half::{bf16, f16};

use super::ggml_type::GgmlType;

/// Encodes `x` (a whole number of blocks) as `ty`; `None` for a type without a quantiser here
/// (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1) or a length that is not a whole number of blocks.
pub fn quantize(ty: GgmlType, x: &[f32]) -> Option<Vec<u8>> {
    if !x.len().is_multiple_of(ty.block_size()) {
        return None;
    }
    let mut out = Vec::with_capacity(x.len() / ty.block_size() * ty.type_size());
    match ty {
        GgmlType::F32 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => x
            .iter()
            .for_each(|&v| out.extend_from_slice(&f16::from_f32(v).to_le_bytes())),
        GgmlType::BF16 => x
            .iter()
            .for_each(|&v| out.extend_from_slice(&bf16::from_f32(v).to_le_bytes())),
        GgmlType::Q8_0 => x.chunks_exact(32).for_each(|b| q8_0(b, &mut out)),
        GgmlType::Q4_0 => x.chunks_exact(32).for_each(|b| q4_0(b, &mut out)),
        GgmlType::Q4_1 => x.chunks_exact(32).for_each(|b| q4_1(b, &mut out)),
        _ => return None,
    }
    Some(out)
}

/// `d = max|x| / 127`, `q = round(x / d)`.
fn q8_0(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend(x.iter().map(|&v| (v * id).round() as i8 as u8));
}

/// `d = -max / 8` where `max` is the value of largest magnitude, `q = min(15, trunc(x / d + 8.5))`.
fn q4_0(x: &[f32], out: &mut Vec<u8>) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
    out.extend((0..16).map(|j| q(x[j]) | (q(x[j + 16]) << 4)));
}

/// `d = (max - min) / 15`, `m = min`, `q = min(15, trunc((x - min) / d + 0.5))`.
fn q4_1(x: &[f32], out: &mut Vec<u8>) {
    let min = x.iter().fold(f32::INFINITY, |a, &v| a.min(v));
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
    let q = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
    out.extend((0..16).map(|j| q(x[j]) | (q(x[j + 16]) << 4)));
}
