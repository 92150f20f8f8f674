//! De-quantisation of hand-made ggml blocks, checked against values computed by hand from
//! ggml's reference `dequantize_row_*` formulas (see the layouts in `gguf::dequant`).

use nr_backbone::gguf::GgmlType;
use nr_backbone::gguf::dequant::{DequantError, dequantize, is_supported};

/// Little-endian bytes of an f16 given by its bit pattern.
fn f16(bits: u16) -> [u8; 2] {
    bits.to_le_bytes()
}
const F16_1: u16 = 0x3C00; // 1.0
const F16_HALF: u16 = 0x3800; // 0.5
const F16_QUARTER: u16 = 0x3400; // 0.25
const F16_EIGHTH: u16 = 0x3000; // 0.125
const F16_MINUS_1: u16 = 0xBC00; // -1.0

fn assert_values(found: &[f32], expected: &[f32]) {
    assert_eq!(found.len(), expected.len());
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert_eq!(f, e, "element {i}: found {f}, expected {e}");
    }
}

#[test]
fn f32_f16_bf16_are_decoded_bit_exactly() {
    let bytes: Vec<u8> = [1.5f32, -0.0, 3.25e-3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_values(
        &dequantize(GgmlType::F32, &bytes, 3).unwrap(),
        &[1.5, -0.0, 3.25e-3],
    );

    // 1.0, -2.0, 0.5, 65504 (largest f16), 2^-24 (smallest subnormal f16)
    let bytes: Vec<u8> = [0x3C00u16, 0xC000, 0x3800, 0x7BFF, 0x0001]
        .iter()
        .flat_map(|b| f16(*b))
        .collect();
    assert_values(
        &dequantize(GgmlType::F16, &bytes, 5).unwrap(),
        &[1.0, -2.0, 0.5, 65504.0, 5.960_464_5e-8],
    );

    // bf16 is the top half of an f32: 1.0, -2.0, 0.15625
    let bytes: Vec<u8> = [0x3F80u16, 0xC000, 0x3E20]
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect();
    assert_values(
        &dequantize(GgmlType::BF16, &bytes, 3).unwrap(),
        &[1.0, -2.0, 0.15625],
    );
}

#[test]
fn q4_0_is_d_times_nibble_minus_8() {
    // d = 0.5; byte 0 = 0x3C: element 0 = (12 - 8) * 0.5, element 16 = (3 - 8) * 0.5;
    // bytes 1..16 = 0x80: elements 1..16 = (0 - 8) * 0.5, 17..32 = (8 - 8) * 0.5.
    let mut block = f16(F16_HALF).to_vec();
    block.push(0x3C);
    block.extend([0x80; 15]);
    let mut expected = vec![2.0];
    expected.extend([-4.0; 15]);
    expected.push(-2.5);
    expected.extend([0.0; 15]);
    assert_values(&dequantize(GgmlType::Q4_0, &block, 32).unwrap(), &expected);
}

#[test]
fn q4_1_is_d_times_nibble_plus_m() {
    // d = 0.25, m = -1; byte j = j | (15 - j) << 4: element j = 0.25 j - 1, element 16 + j = 0.25 (15 - j) - 1.
    let mut block = [f16(F16_QUARTER), f16(F16_MINUS_1)].concat();
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let found = dequantize(GgmlType::Q4_1, &block, 32).unwrap();
    assert_eq!(&found[..4], &[-1.0, -0.75, -0.5, -0.25]);
    assert_eq!(found[15], 2.75);
    assert_eq!(&found[16..18], &[2.75, 2.5]);
    assert_eq!(found[31], -1.0);
    let expected: Vec<f32> = (0..16)
        .map(|j| 0.25 * j as f32 - 1.0)
        .chain((0..16).map(|j| 0.25 * (15 - j) as f32 - 1.0))
        .collect();
    assert_values(&found, &expected);
}

#[test]
fn q8_0_is_d_times_signed_byte() {
    // d = 0.125; q = -128, -1, 0, 1, 127, then 27 twos.
    let mut block = f16(F16_EIGHTH).to_vec();
    block.extend([-128i8, -1, 0, 1, 127].map(|q| q as u8));
    block.extend([2u8; 27]);
    let mut expected = vec![-16.0, -0.125, 0.0, 0.125, 15.875];
    expected.extend([0.25; 27]);
    assert_values(&dequantize(GgmlType::Q8_0, &block, 32).unwrap(), &expected);
}

#[test]
fn q5_0_takes_the_fifth_bit_from_qh() {
    // d = 1; qh bits 0 and 16 set; byte 0 = 0x21: element 0 = (1 + 16) - 16 = 1,
    // element 16 = (2 + 16) - 16 = 2; everything else (0 + 0) - 16 = -16.
    let mut block = f16(F16_1).to_vec();
    block.extend(0x0001_0001u32.to_le_bytes());
    block.push(0x21);
    block.extend([0u8; 15]);
    let mut expected = vec![-16.0; 32];
    expected[0] = 1.0;
    expected[16] = 2.0;
    assert_values(&dequantize(GgmlType::Q5_0, &block, 32).unwrap(), &expected);
}

#[test]
fn q5_1_is_d_times_five_bits_plus_m() {
    // d = 0.5, m = 1; qh bit 31 set and byte 15 = 0xF0: element 31 = (15 + 16) * 0.5 + 1 = 16.5;
    // all others 0 * 0.5 + 1 = 1.
    let mut block = [f16(F16_HALF), f16(F16_1)].concat();
    block.extend(0x8000_0000u32.to_le_bytes());
    block.extend([0u8; 15]);
    block.push(0xF0);
    let mut expected = vec![1.0; 32];
    expected[31] = 16.5;
    assert_values(&dequantize(GgmlType::Q5_1, &block, 32).unwrap(), &expected);
}

/// The 12 scale bytes shared by the Q4_K and Q5_K tests. Decoded (ggml's get_scale_min_k4):
/// scales = [2, 1, 1, 1, 17, 0, 0, 0], mins = [3, 0, 0, 0, 37, 0, 0, 0]; scale 4 = low nibble of
/// byte 8 (1) | top bits of byte 0 (01) << 4 = 17, min 4 = high nibble of byte 8 (5) | top bits
/// of byte 4 (10) << 4 = 37.
fn k_scales() -> [u8; 12] {
    [0b01_000010, 1, 1, 1, 0b10_000011, 0, 0, 0, 0x51, 0, 0, 0]
}

#[test]
fn q4_k_uses_packed_six_bit_scales_and_mins() {
    // d = 1, dmin = 0.5; nibble bytes all 0x53 (low 3, high 5) except byte 0 = 0x9A (low 10, high 9).
    // Chunk c (64 elements) reads bytes 32c..32c+32: low nibbles with scale/min 2c, high with 2c+1.
    let mut block = [f16(F16_1), f16(F16_HALF)].concat();
    block.extend(k_scales());
    let mut qs = [0x53u8; 128];
    qs[0] = 0x9A;
    block.extend(qs);
    assert_eq!(block.len(), 144);
    let mut expected = vec![0.0f32; 256];
    expected[0..32].fill(4.5); // 1 * 2 * 3 - 0.5 * 3
    expected[32..64].fill(5.0); // 1 * 1 * 5 - 0
    expected[64..96].fill(3.0);
    expected[96..128].fill(5.0);
    expected[128..160].fill(32.5); // 17 * 3 - 0.5 * 37
    // 160..256: scale 0 and min 0
    expected[0] = 18.5; // 2 * 10 - 1.5
    expected[32] = 9.0; // 1 * 9
    assert_values(&dequantize(GgmlType::Q4_K, &block, 256).unwrap(), &expected);
}

#[test]
fn q5_k_adds_the_high_bit_per_chunk_half() {
    // As the Q4_K block, plus qh: byte 0 = 0b11 (bits 0 and 1: +16 for element 0 of chunk 0's
    // low and high halves, elements 0 and 32), byte 1 = 0b1_0000 (bit 4: chunk 2's low half,
    // element 128 + 1).
    let mut block = [f16(F16_1), f16(F16_HALF)].concat();
    block.extend(k_scales());
    let mut qh = [0u8; 32];
    qh[0] = 0b11;
    qh[1] = 0b1_0000;
    block.extend(qh);
    let mut qs = [0x53u8; 128];
    qs[0] = 0x9A;
    block.extend(qs);
    assert_eq!(block.len(), 176);
    let mut expected = vec![0.0f32; 256];
    expected[0..32].fill(4.5);
    expected[32..64].fill(5.0);
    expected[64..96].fill(3.0);
    expected[96..128].fill(5.0);
    expected[128..160].fill(32.5);
    expected[0] = 50.5; // 2 * (10 + 16) - 1.5
    expected[32] = 25.0; // 1 * (9 + 16)
    expected[129] = 304.5; // 17 * (3 + 16) - 18.5
    assert_values(&dequantize(GgmlType::Q5_K, &block, 256).unwrap(), &expected);
}

#[test]
fn q6_k_combines_low_nibbles_high_pairs_and_signed_scales() {
    // ql all 0x21 (low 1, high 2), qh all 0b11_10_01_00, so in each 128-element half:
    // elements l: (1 | 0 << 4) - 32 = -31; l+32: (1 | 1 << 4) - 32 = -15;
    // l+64: (2 | 2 << 4) - 32 = 2; l+96: (2 | 3 << 4) - 32 = 18.
    // Scales (one per 16 elements) 1..=16 except scale 2 = -3; d = 0.5.
    // ql[37] = 0x2F changes element 37 to (15 | 16) - 32 = -1 (element 101 keeps the high nibble 2).
    let mut ql = [0x21u8; 128];
    ql[37] = 0x2F;
    let qh = [0b11_10_01_00u8; 64];
    let mut scales: Vec<u8> = (1..=16i8).map(|s| s as u8).collect();
    scales[2] = (-3i8) as u8;
    let block = [&ql[..], &qh[..], &scales[..], &f16(F16_HALF)[..]].concat();
    assert_eq!(block.len(), 210);
    let found = dequantize(GgmlType::Q6_K, &block, 256).unwrap();
    assert_eq!(found[0], -15.5); // 0.5 * 1 * -31
    assert_eq!(found[16], -31.0); // 0.5 * 2 * -31
    assert_eq!(found[32], 22.5); // 0.5 * -3 * -15
    assert_eq!(found[37], 1.5); // 0.5 * -3 * -1
    assert_eq!(found[64], 5.0); // 0.5 * 5 * 2
    assert_eq!(found[96], 63.0); // 0.5 * 7 * 18
    assert_eq!(found[101], 63.0);
    assert_eq!(found[128], -139.5); // 0.5 * 9 * -31
    assert_eq!(found[255], 144.0); // 0.5 * 16 * 18
    let q = [-31.0f32, -15.0, 2.0, 18.0];
    let scale = |i: usize| if i == 2 { -3.0 } else { (i + 1) as f32 };
    let expected: Vec<f32> = (0..256)
        .map(|e| {
            if e == 37 {
                1.5
            } else {
                0.5 * scale(e / 16) * q[(e % 128) / 32]
            }
        })
        .collect();
    assert_values(&found, &expected);
}

#[test]
fn large_tensors_split_across_threads_give_the_same_values() {
    // 2^19 elements (above the parallel threshold) of the Q8_0 block from q8_0_is_d_times_signed_byte,
    // with each block's first quant set to its index modulo 100 so a misplaced chunk would show.
    let n_blocks = 1 << 14;
    let mut bytes = Vec::with_capacity(n_blocks * 34);
    for b in 0..n_blocks {
        bytes.extend(f16(F16_EIGHTH));
        bytes.push((b % 100) as u8);
        bytes.extend([2u8; 31]);
    }
    let found = dequantize(GgmlType::Q8_0, &bytes, n_blocks * 32).unwrap();
    for b in [0, 1, 99, 100, 8191, 8192, n_blocks - 1] {
        assert_eq!(found[b * 32], (b % 100) as f32 * 0.125, "block {b}");
        assert_eq!(found[b * 32 + 31], 0.25, "block {b}");
    }
    assert!(
        found
            .chunks(32)
            .enumerate()
            .all(|(b, y)| y[0] == (b % 100) as f32 * 0.125 && y[1..].iter().all(|&v| v == 0.25))
    );
}

#[test]
fn unsupported_types_and_wrong_sizes_are_errors() {
    assert!(!is_supported(GgmlType::Q2_K));
    assert!(is_supported(GgmlType::Q6_K));
    assert_eq!(
        dequantize(GgmlType::Q2_K, &[0; 84], 256),
        Err(DequantError::Unsupported(GgmlType::Q2_K))
    );
    let err = dequantize(GgmlType::Q8_0, &[0; 33], 32).unwrap_err();
    assert_eq!(err.to_string(), "32 elements of Q8_0 need 34 bytes, got 33");
    let err = dequantize(GgmlType::Q4_0, &[0; 18], 31).unwrap_err();
    assert!(
        matches!(err, DequantError::Size { elements: 31, .. }),
        "{err}"
    );
}
