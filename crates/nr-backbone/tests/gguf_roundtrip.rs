//! Files written by `GgufWriter` read back by `GgufFile`: every metadata type, typed getters,
//! alignment, and tensors of each writable type de-quantised to the expected values.

// Reference values are written exactly as the oracle printed them (all exact in f32).
#![allow(clippy::excessive_precision)]

use nr_backbone::gguf::{GgmlType, GgufArray, GgufFile, GgufValue, GgufValueType, GgufWriter};
use nr_backbone::weights::WeightSource;

/// 64 values exactly representable in f32: ((37 i mod 64) - 31.5) / 8.
fn ramp() -> Vec<f32> {
    (0..64)
        .map(|i| ((i * 37) % 64) as f32 / 8.0 - 31.5 / 8.0)
        .collect()
}

fn write_and_open(writer: &GgufWriter) -> (tempfile::TempDir, GgufFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    writer.write(&path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    (dir, file)
}

fn all_types_metadata() -> Vec<(&'static str, GgufValue)> {
    vec![
        ("t.u8", GgufValue::U8(200)),
        ("t.i8", GgufValue::I8(-100)),
        ("t.u16", GgufValue::U16(60_000)),
        ("t.i16", GgufValue::I16(-30_000)),
        ("t.u32", GgufValue::U32(4_000_000_000)),
        ("t.i32", GgufValue::I32(-2_000_000_000)),
        ("t.f32", GgufValue::F32(1e-5)),
        ("t.bool", GgufValue::Bool(true)),
        ("t.string", GgufValue::String("naïve 東京 🚀".into())),
        ("t.u64", GgufValue::U64(u64::MAX)),
        ("t.i64", GgufValue::I64(i64::MIN)),
        ("t.f64", GgufValue::F64(-2.5e300)),
        ("t.empty_string", GgufValue::String(String::new())),
        (
            "t.strings",
            GgufValue::Array(GgufArray::String(vec![
                "Ġ t".into(),
                "".into(),
                "<|im_end|>".into(),
            ])),
        ),
        ("t.i32s", GgufValue::Array(GgufArray::I32(vec![1, -1, 3]))),
        ("t.u8s", GgufValue::Array(GgufArray::U8(vec![0, 255]))),
        (
            "t.bools",
            GgufValue::Array(GgufArray::Bool(vec![true, false])),
        ),
        ("t.f32s", GgufValue::Array(GgufArray::F32(vec![0.5, -1.25]))),
        ("t.f64s", GgufValue::Array(GgufArray::F64(vec![1e-300]))),
        (
            "t.u64s",
            GgufValue::Array(GgufArray::U64(vec![u64::MAX, 7])),
        ),
        ("t.empty", GgufValue::Array(GgufArray::U16(vec![]))),
        (
            "t.nested",
            GgufValue::Array(GgufArray::Array(vec![
                GgufArray::I16(vec![-7, 8]),
                GgufArray::String(vec!["x".into()]),
                GgufArray::Array(vec![GgufArray::I64(vec![i64::MAX])]),
            ])),
        ),
    ]
}

#[test]
fn metadata_of_every_type_round_trips_in_order() {
    let mut writer = GgufWriter::new();
    for (k, v) in all_types_metadata() {
        writer.add_metadata(k, v);
    }
    let (_dir, file) = write_and_open(&writer);
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert!(file.tensor_infos().is_empty());
    let entries: Vec<(&str, &GgufValue)> = file.metadata_entries().collect();
    let expected = all_types_metadata();
    assert_eq!(entries.len(), expected.len());
    for ((k, v), (ek, ev)) in entries.iter().zip(&expected) {
        assert_eq!(k, ek);
        assert_eq!(*v, ev, "key {k}");
    }
    assert_eq!(
        file.metadata("t.nested").unwrap().value_type(),
        GgufValueType::Array
    );
    assert_eq!(file.metadata("t.nope"), None);
}

#[test]
fn typed_getters_convert_integers_that_fit_and_name_the_key_otherwise() {
    let mut writer = GgufWriter::new();
    for (k, v) in all_types_metadata() {
        writer.add_metadata(k, v);
    }
    let (_dir, file) = write_and_open(&writer);
    assert_eq!(file.get_u32("t.u8").unwrap(), 200);
    assert_eq!(file.get_u32("t.u16").unwrap(), 60_000);
    assert_eq!(file.get_i64("t.i32").unwrap(), -2_000_000_000);
    assert_eq!(file.get_u64("t.u64").unwrap(), u64::MAX);
    assert_eq!(file.get_usize("t.u32").unwrap(), 4_000_000_000);
    assert_eq!(file.get_int::<i8>("t.i8").unwrap(), -100);
    assert_eq!(file.get_f32("t.f32").unwrap(), 1e-5);
    assert_eq!(file.get_f64("t.f64").unwrap(), -2.5e300);
    assert!(file.get_bool("t.bool").unwrap());
    assert_eq!(file.get_str("t.string").unwrap(), "naïve 東京 🚀");
    assert_eq!(
        file.get_string_array("t.strings").unwrap(),
        ["Ġ t", "", "<|im_end|>"]
    );
    assert_eq!(file.get_int_array::<i64>("t.i32s").unwrap(), [1, -1, 3]);
    assert_eq!(file.get_int_array::<u8>("t.u8s").unwrap(), [0, 255]);
    assert_eq!(file.get_f32_array("t.f32s").unwrap(), [0.5, -1.25]);
    assert_eq!(file.opt_u32("t.absent").unwrap(), None);
    assert_eq!(file.opt_bool("t.bool").unwrap(), Some(true));
    assert_eq!(file.opt_str("t.string").unwrap(), Some("naïve 東京 🚀"));

    let path = file.path().display().to_string();
    let msg = |e: nr_backbone::BackboneError| {
        let m = e.to_string();
        assert!(!m.contains('\n'), "one line: {m}");
        m
    };
    assert_eq!(
        msg(file.get_u32("t.absent").unwrap_err()),
        format!("{path}: missing key 't.absent'")
    );
    assert_eq!(
        msg(file.get_u32("t.i8").unwrap_err()),
        format!("{path}: key 't.i8': value -100 does not fit in u32")
    );
    assert_eq!(
        msg(file.get_u32("t.string").unwrap_err()),
        format!("{path}: key 't.string': expected an integer, found string \"naïve 東京 🚀\"")
    );
    assert_eq!(
        msg(file.get_str("t.u32").unwrap_err()),
        format!("{path}: key 't.u32': expected a string, found u32 4000000000")
    );
    assert_eq!(
        msg(file.get_string_array("t.i32s").unwrap_err()),
        format!("{path}: key 't.i32s': expected an array of strings, found an array of i32")
    );
    assert_eq!(
        msg(file.get_int_array::<u32>("t.i32s").unwrap_err()),
        format!("{path}: key 't.i32s': element 1 = -1 does not fit in u32")
    );
    assert_eq!(
        msg(file.opt_bool("t.u8").unwrap_err()),
        format!("{path}: key 't.u8': expected a bool, found u8 200")
    );
}

#[test]
fn float_tensors_round_trip_in_pytorch_layout() {
    let values = ramp();
    let mut writer = GgufWriter::new();
    writer.add_metadata("general.architecture", GgufValue::String("llama".into()));
    writer
        .add_tensor("w.f32", &[2, 32], &values, GgmlType::F32)
        .unwrap();
    writer
        .add_tensor("w.f16", &[4, 4, 4], &values, GgmlType::F16)
        .unwrap();
    writer
        .add_tensor("w.bf16", &[64], &values, GgmlType::BF16)
        .unwrap();
    let (_dir, file) = write_and_open(&writer);
    assert_eq!(file.architecture().unwrap(), "llama");

    let info = file.tensor_info("w.f32").unwrap();
    assert_eq!(
        info.dims,
        [32, 2],
        "GGUF stores the fastest dimension first"
    );
    assert_eq!(info.ggml_type, GgmlType::F32);
    assert_eq!(info.offset % 32, 0);
    let t = file.tensor("w.f32").unwrap();
    assert_eq!(t.shape, [2, 32]);
    assert_eq!(t.data, values, "row-major order is kept");

    // All 64 ramp values are multiples of 1/16 below 4 in magnitude: exact in f16 and bf16.
    let t = file.tensor("w.f16").unwrap();
    assert_eq!(t.shape, [4, 4, 4]);
    assert_eq!(t.data, values);
    assert_eq!(file.tensor("w.bf16").unwrap().data, values);
    assert_eq!(file.tensor_info("w.f16").unwrap().n_bytes(), 128);
    assert!(file.contains("w.bf16") && !file.contains("w.nope"));
    assert_eq!(
        file.tensor_with_shape("w.f32", &[2, 32])
            .unwrap()
            .data
            .len(),
        64
    );
    let err = file
        .tensor_with_shape("w.f32", &[32, 2])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tensor 'w.f32' has shape [2, 32], expected [32, 2]"),
        "{err}"
    );
}

/// Bytes that gguf-py 0.19 (`gguf.quants.quantize`, which mirrors ggml's reference quantisers)
/// produces for `ramp()` as one [1, 64] tensor.
const GGUF_PY_Q8_0: &str = "f0278116a93ed267fa8d22b54bde7306992ec257ea7f12a53ace63f6891eb147da6faf2702922cbb55e57f0f9e38c862f1811bab45d46efe8d28b751e17b0a9a34c45eed";
const GGUF_PY_Q4_0: &str =
    "e03740d973fc952ec851ea731da63fc862fba0b748bf158cf36ad037ae047ce259cf269d";
const GGUF_PY_Q4_1: &str =
    "3338e0c340d962fb952eb751da730c953ec851ea1138a0c3c851ea731da63fc862fb841db740d962";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn quantised_tensors_match_ggml_bytes_and_dequantise_within_half_a_step() {
    let values = ramp();
    let mut writer = GgufWriter::new();
    for (name, ty) in [
        ("q8", GgmlType::Q8_0),
        ("q4_0", GgmlType::Q4_0),
        ("q4_1", GgmlType::Q4_1),
    ] {
        writer.add_tensor(name, &[1, 64], &values, ty).unwrap();
    }
    let (_dir, file) = write_and_open(&writer);
    for (name, expected) in [
        ("q8", GGUF_PY_Q8_0),
        ("q4_0", GGUF_PY_Q4_0),
        ("q4_1", GGUF_PY_Q4_1),
    ] {
        let info = file.tensor_info(name).unwrap();
        assert_eq!(
            file.tensor_bytes(info),
            hex(expected).as_slice(),
            "tensor {name}"
        );
    }
    // gguf-py's de-quantised values of the same bytes (spot checks).
    let q8 = file.tensor("q8").unwrap();
    assert_eq!(q8.shape, [1, 64]);
    assert_eq!(
        &q8.data[..3],
        &[-3.937744140625, 0.68212890625, -2.697509765625]
    );
    assert_eq!(q8.data[33], -3.301544189453125);
    let q4_0 = file.tensor("q4_0").unwrap();
    assert_eq!(&q4_0.data[..3], &[-3.9375, 0.4921875, -2.4609375]);
    assert_eq!(q4_0.data[63], -0.4765625);
    let q4_1 = file.tensor("q4_1").unwrap();
    assert_eq!(&q4_1.data[..3], &[-3.9375, 0.78662109375, -2.8876953125]);
    assert_eq!(q4_1.data[63], -0.7626953125);

    // Each block spans -3.9375..3.9375. Error bound: half a step (plus the f16 rounding of d);
    // Q4_0 puts the value of largest magnitude at -8 d, so the opposite end is clamped to 7 d,
    // a whole step away.
    for (t, bound) in [
        (&q8, 0.5 * 3.9375 / 127.0),
        (&q4_0, 3.9375 / 8.0),
        (&q4_1, 0.5 * 7.875 / 15.0),
    ] {
        for (x, y) in values.iter().zip(&t.data) {
            assert!(
                (x - y).abs() <= bound * 1.01 + 2e-3,
                "{x} -> {y} (bound {bound})"
            );
        }
    }
}

#[test]
fn exactly_representable_blocks_quantise_losslessly() {
    // Q8_0: q * 1/16 with max |q| = 127 -> d = 1/16 exactly.
    let q8: Vec<f32> = (0..32)
        .map(|i| ((i * 9) % 255 - 127).clamp(-127, 127) as f32 / 16.0)
        .collect();
    // Q4_0: (q - 8) / 4 for q in 0..16 with q = 0 present -> max = -2, d = 0.25.
    let q4_0: Vec<f32> = (0..32).map(|i| ((i * 5) % 16 - 8) as f32 / 4.0).collect();
    // Q4_1: -1 + q / 8 with q = 0 and 15 present -> d = 0.125, m = -1.
    let q4_1: Vec<f32> = (0..32)
        .map(|i| -1.0 + ((i * 7) % 16) as f32 / 8.0)
        .collect();
    let mut writer = GgufWriter::new();
    writer.add_tensor("q8", &[32], &q8, GgmlType::Q8_0).unwrap();
    writer
        .add_tensor("q4_0", &[32], &q4_0, GgmlType::Q4_0)
        .unwrap();
    writer
        .add_tensor("q4_1", &[32], &q4_1, GgmlType::Q4_1)
        .unwrap();
    let (_dir, file) = write_and_open(&writer);
    assert_eq!(file.tensor("q8").unwrap().data, q8);
    assert_eq!(file.tensor("q4_0").unwrap().data, q4_0);
    assert_eq!(file.tensor("q4_1").unwrap().data, q4_1);
}

#[test]
fn custom_alignment_places_every_tensor_on_a_multiple() {
    let mut writer = GgufWriter::new();
    writer.add_metadata("general.alignment", GgufValue::U32(64));
    writer
        .add_tensor("a", &[3], &[1.0, 2.0, 3.0], GgmlType::F32)
        .unwrap();
    writer
        .add_tensor("b", &[1, 32], &ramp()[..32], GgmlType::Q8_0)
        .unwrap();
    writer
        .add_tensor("c", &[1], &[-7.0], GgmlType::F32)
        .unwrap();
    let (_dir, file) = write_and_open(&writer);
    assert_eq!(file.alignment(), 64);
    assert_eq!(file.data_offset() % 64, 0);
    let offsets: Vec<u64> = file.tensor_infos().iter().map(|t| t.offset).collect();
    assert_eq!(offsets, [0, 64, 128]);
    assert_eq!(file.tensor("a").unwrap().data, [1.0, 2.0, 3.0]);
    assert_eq!(file.tensor("c").unwrap().data, [-7.0]);
    assert_eq!(file.tensor("b").unwrap().data.len(), 32);
}

#[test]
fn raw_k_quant_tensors_are_read_and_unsupported_types_name_the_tensor() {
    // One Q6_K block with d = 0 (all zeros) and one Q2_K block (no de-quantiser here).
    let mut writer = GgufWriter::new();
    writer
        .add_raw_tensor("k6", vec![256], GgmlType::Q6_K, vec![0; 210])
        .unwrap();
    writer
        .add_raw_tensor("k2", vec![256], GgmlType::Q2_K, vec![0; 84])
        .unwrap();
    let (_dir, file) = write_and_open(&writer);
    assert_eq!(file.tensor("k6").unwrap().data, vec![0.0; 256]);
    let err = file.tensor("k2").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: unsupported: tensor 'k2': de-quantisation of Q2_K is not implemented",
            file.path().display()
        )
    );
    let err = file.tensor("k3").unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: missing tensor 'k3'", file.path().display())
    );
}

#[test]
fn writer_rejects_inconsistent_tensors() {
    let mut writer = GgufWriter::new();
    let err = writer
        .add_tensor("x", &[2, 3], &[0.0; 5], GgmlType::F32)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "gguf writer: tensor 'x': shape [2, 3] has 6 elements, data has 5"
    );
    let err = writer
        .add_tensor("y", &[2, 16], &[0.0; 32], GgmlType::Q8_0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("tensor 'y': last dimension 16 is not a multiple of the Q8_0 block size 32"),
        "{err}"
    );
    let err = writer
        .add_raw_tensor("z", vec![32], GgmlType::Q4_0, vec![0; 17])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("tensor 'z': 17 bytes do not encode dims [32] of Q4_0"),
        "{err}"
    );
}
