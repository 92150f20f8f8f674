//! Malformed GGUF files: each defect must give a one-line error naming the file and the key or
//! tensor at fault, never a panic.

use std::path::PathBuf;

use nr_backbone::BackboneError;
use nr_backbone::gguf::{GgmlType, GgufArray, GgufFile, GgufValue, GgufWriter};

/// A valid file: three metadata pairs and two tensors (`blk.0.w` Q8_0 dims [32, 2], `norm` F32 [4]).
fn base_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", GgufValue::String("llama".into()));
    w.add_metadata("general.name", GgufValue::String("tiny".into()));
    w.add_metadata(
        "tokenizer.ggml.tokens",
        GgufValue::Array(GgufArray::String(vec!["a".into(), "b".into()])),
    );
    w.add_metadata("tokenizer.ggml.add_bos_token", GgufValue::Bool(false));
    let data: Vec<f32> = (0..64).map(|i| i as f32 / 8.0).collect();
    w.add_tensor("blk.0.w", &[2, 32], &data, GgmlType::Q8_0)
        .unwrap();
    w.add_tensor("norm", &[4], &[1.0, 2.0, 3.0, 4.0], GgmlType::F32)
        .unwrap();
    w
}

struct Opened {
    _dir: tempfile::TempDir,
    path: PathBuf,
    result: Result<GgufFile, BackboneError>,
}

fn open_bytes(bytes: &[u8]) -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gguf");
    std::fs::write(&path, bytes).unwrap();
    let result = GgufFile::open(&path);
    Opened {
        _dir: dir,
        path,
        result,
    }
}

/// The one-line error of opening `bytes`, with the temp path replaced by `FILE`.
fn error_of(bytes: &[u8]) -> String {
    let opened = open_bytes(bytes);
    let err = opened
        .result
        .expect_err("the file must be rejected")
        .to_string();
    assert!(!err.contains('\n'), "one line: {err}");
    let path = opened.path.display().to_string();
    assert!(err.starts_with(&path), "names the file: {err}");
    err.replacen(&path, "FILE", 1)
}

/// Position of the first occurrence of `needle`.
fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

/// Position just after a length-prefixed string (a key or tensor name) in the header.
fn after_string(bytes: &[u8], s: &str) -> usize {
    let mut needle = (s.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(s.as_bytes());
    find(bytes, &needle) + needle.len()
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Byte positions of a tensor info's fields: (n_dims, first dim, type id, offset).
fn tensor_fields(bytes: &[u8], name: &str) -> (usize, usize, usize, usize) {
    let n_dims_at = after_string(bytes, name);
    let n_dims = u32::from_le_bytes(bytes[n_dims_at..n_dims_at + 4].try_into().unwrap()) as usize;
    let type_at = n_dims_at + 4 + 8 * n_dims;
    (n_dims_at, n_dims_at + 4, type_at, type_at + 4)
}

#[test]
fn the_base_file_is_valid() {
    let bytes = base_writer().to_bytes();
    let file = open_bytes(&bytes).result.unwrap();
    assert_eq!(file.tensor_infos().len(), 2);
    assert_eq!(file.get_str("general.name").unwrap(), "tiny");
}

#[test]
fn wrong_magic_and_too_short_files() {
    let mut bytes = base_writer().to_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    assert_eq!(
        error_of(&bytes),
        "FILE: not a GGUF file: magic \"GGML\", expected \"GGUF\""
    );
    assert_eq!(
        error_of(b"GG"),
        "FILE: truncated file: 2 bytes, too short for the GGUF magic"
    );
    assert_eq!(
        error_of(b""),
        "FILE: truncated file: 0 bytes, too short for the GGUF magic"
    );
}

#[test]
fn unsupported_versions() {
    let mut bytes = base_writer().to_bytes();
    put_u32(&mut bytes, 4, 1);
    assert_eq!(
        error_of(&bytes),
        "FILE: unsupported: GGUF version 1 (32-bit counts); re-convert the model"
    );
    put_u32(&mut bytes, 4, 3u32.swap_bytes());
    assert_eq!(error_of(&bytes), "FILE: unsupported: big-endian GGUF file");
    put_u32(&mut bytes, 4, 7);
    assert_eq!(
        error_of(&bytes),
        "FILE: unsupported: GGUF version 7 (expected 2 or 3)"
    );
    // Version 2 has the same layout and is read.
    put_u32(&mut bytes, 4, 2);
    assert_eq!(open_bytes(&bytes).result.unwrap().version(), 2);
}

#[test]
fn truncation_names_what_was_being_read() {
    let bytes = base_writer().to_bytes();
    let name_value = after_string(&bytes, "general.name") + 4; // the value's length prefix
    assert_eq!(
        error_of(&bytes[..name_value + 10]),
        format!(
            "FILE: truncated file: key 'general.name' needs 4 bytes at offset {} but the file has {} bytes",
            name_value + 8,
            name_value + 10
        )
    );
    let (n_dims_at, ..) = tensor_fields(&bytes, "norm");
    let err = error_of(&bytes[..n_dims_at + 2]);
    assert!(
        err.starts_with("FILE: truncated file: tensor 'norm' needs 4 bytes"),
        "{err}"
    );

    // Cut inside the data of the last tensor.
    let file = open_bytes(&bytes).result.unwrap();
    let norm = file.tensor_info("norm").unwrap();
    let cut = (file.data_offset() + norm.offset + 8) as usize;
    assert_eq!(
        error_of(&bytes[..cut]),
        format!(
            "FILE: tensor 'norm': data (offset {} + 16 bytes after the data section at {}) extends beyond the end of the file ({cut} bytes)",
            norm.offset,
            file.data_offset()
        )
    );
}

#[test]
fn every_prefix_of_a_valid_file_is_rejected_without_panicking() {
    let bytes = base_writer().to_bytes();
    let file = open_bytes(&bytes).result.unwrap();
    let norm = file.tensor_info("norm").unwrap();
    let end_of_data = (file.data_offset() + norm.offset + norm.n_bytes()) as usize;
    for cut in 0..end_of_data {
        let opened = open_bytes(&bytes[..cut]);
        let err = opened
            .result
            .err()
            .unwrap_or_else(|| panic!("prefix of {cut} bytes accepted"));
        assert!(
            err.to_string()
                .starts_with(&opened.path.display().to_string())
        );
    }
    assert!(
        open_bytes(&bytes[..end_of_data]).result.is_ok(),
        "trailing padding is optional"
    );
}

#[test]
fn corrupting_any_header_byte_never_panics() {
    let bytes = base_writer().to_bytes();
    let file = open_bytes(&bytes).result.unwrap();
    let header_len = file.data_offset() as usize;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flipped.gguf");
    let mut rejected = 0;
    for i in 0..header_len {
        for flip in [0xFFu8, 0x80, 0x01] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            std::fs::write(&path, &b).unwrap();
            if let Err(e) = GgufFile::open(&path) {
                assert!(!e.to_string().contains('\n'));
                rejected += 1;
            }
        }
    }
    // Most single-byte corruptions of counts, lengths, ids and offsets are caught.
    assert!(
        rejected > header_len,
        "only {rejected} of {} corruptions rejected",
        3 * header_len
    );
}

#[test]
fn bad_tensor_offsets() {
    let bytes = base_writer().to_bytes();
    let (_, _, _, offset_at) = tensor_fields(&bytes, "norm");
    let file_len = bytes.len();
    let data_offset = open_bytes(&bytes).result.unwrap().data_offset();

    let mut b = bytes.clone();
    put_u64(&mut b, offset_at, 1 << 40);
    assert_eq!(
        error_of(&b),
        format!(
            "FILE: tensor 'norm': data (offset 1099511627776 + 16 bytes after the data section at {data_offset}) extends beyond the end of the file ({file_len} bytes)"
        )
    );
    put_u64(&mut b, offset_at, u64::MAX - 31);
    assert!(error_of(&b).starts_with("FILE: tensor 'norm': data (offset 18446744073709551584"));

    let mut b = bytes.clone();
    let offset = u64::from_le_bytes(b[offset_at..offset_at + 8].try_into().unwrap());
    put_u64(&mut b, offset_at, offset + 4);
    assert_eq!(
        error_of(&b),
        format!(
            "FILE: tensor 'norm': offset {} is not a multiple of the alignment 32",
            offset + 4
        )
    );
}

#[test]
fn unknown_type_ids() {
    let bytes = base_writer().to_bytes();
    let (_, _, type_at, _) = tensor_fields(&bytes, "blk.0.w");
    for id in [99, 4, 31] {
        let mut b = bytes.clone();
        put_u32(&mut b, type_at, id);
        assert_eq!(
            error_of(&b),
            format!("FILE: tensor 'blk.0.w': unknown ggml type id {id}")
        );
    }
    let mut b = bytes.clone();
    put_u32(&mut b, after_string(&bytes, "general.name"), 13);
    assert_eq!(
        error_of(&b),
        "FILE: key 'general.name': unknown value type id 13"
    );
    let mut b = bytes.clone();
    put_u32(
        &mut b,
        after_string(&bytes, "tokenizer.ggml.tokens") + 4,
        200,
    );
    assert_eq!(
        error_of(&b),
        "FILE: key 'tokenizer.ggml.tokens': unknown array element type id 200"
    );
}

#[test]
fn absurd_counts_and_lengths() {
    let bytes = base_writer().to_bytes();
    let rest = bytes.len() - 24;
    let mut b = bytes.clone();
    put_u64(&mut b, 8, u64::MAX);
    assert_eq!(
        error_of(&b),
        format!(
            "FILE: the tensor count 18446744073709551615 is impossible: only {rest} bytes follow offset 24"
        )
    );
    let mut b = bytes.clone();
    put_u64(&mut b, 16, 1 << 40);
    assert_eq!(
        error_of(&b),
        format!(
            "FILE: the metadata count 1099511627776 is impossible: only {rest} bytes follow offset 24"
        )
    );

    let mut b = bytes.clone();
    let len_at = after_string(&bytes, "general.name") + 4;
    put_u64(&mut b, len_at, u64::MAX - 1);
    assert!(
        error_of(&b).starts_with(
            "FILE: truncated file: key 'general.name' needs 18446744073709551614 bytes"
        ),
        "{}",
        error_of(&b)
    );

    let mut b = bytes.clone();
    let array_len_at = after_string(&bytes, "tokenizer.ggml.tokens") + 8;
    put_u64(&mut b, array_len_at, 1 << 60);
    let err = error_of(&b);
    assert!(
        err.starts_with(
            "FILE: key 'tokenizer.ggml.tokens': array length 1152921504606846976 is impossible"
        ),
        "{err}"
    );
}

#[test]
fn bad_dimensions() {
    let bytes = base_writer().to_bytes();
    let mut b = bytes.clone();
    let (n_dims_at, ..) = tensor_fields(&bytes, "norm");
    put_u32(&mut b, n_dims_at, 5);
    assert_eq!(
        error_of(&b),
        "FILE: tensor 'norm': 5 dimensions (at most 4)"
    );

    let mut b = bytes.clone();
    let (_, dim0_at, ..) = tensor_fields(&bytes, "blk.0.w");
    put_u64(&mut b, dim0_at, 16);
    put_u64(&mut b, dim0_at + 8, 4);
    assert_eq!(
        error_of(&b),
        "FILE: tensor 'blk.0.w': first dimension 16 is not a multiple of the Q8_0 block size 32"
    );

    put_u64(&mut b, dim0_at, 1 << 40);
    put_u64(&mut b, dim0_at + 8, 1 << 40);
    assert_eq!(
        error_of(&b),
        "FILE: tensor 'blk.0.w': dims [1099511627776, 1099511627776] overflow the element count"
    );
}

#[test]
fn duplicates_bad_alignment_bad_bools_and_bad_utf8() {
    let mut w = base_writer();
    w.add_metadata("general.name", GgufValue::String("again".into()));
    assert_eq!(
        error_of(&w.to_bytes()),
        "FILE: key 'general.name' appears twice"
    );

    let mut w = base_writer();
    w.add_tensor("norm", &[1], &[0.0], GgmlType::F32).unwrap();
    assert_eq!(error_of(&w.to_bytes()), "FILE: tensor 'norm' appears twice");

    for bad in [48u32, 0] {
        let mut w = base_writer();
        w.add_metadata("general.alignment", GgufValue::U32(bad));
        assert_eq!(
            error_of(&w.to_bytes()),
            format!("FILE: key 'general.alignment': {bad} is not a power of two")
        );
    }

    let bytes = base_writer().to_bytes();
    let mut b = bytes.clone();
    b[after_string(&bytes, "tokenizer.ggml.add_bos_token") + 4] = 2;
    assert_eq!(
        error_of(&b),
        "FILE: key 'tokenizer.ggml.add_bos_token': bool byte 2 is neither 0 nor 1"
    );

    let mut b = bytes.clone();
    let at = find(&bytes, b"tiny");
    b[at] = 0xFF;
    let err = error_of(&b);
    assert!(
        err.starts_with("FILE: key 'general.name': string is not UTF-8"),
        "{err}"
    );
}

#[test]
fn deeply_nested_arrays_are_refused() {
    let mut nested = GgufArray::U8(vec![1]);
    for _ in 0..9 {
        nested = GgufArray::Array(vec![nested]);
    }
    let mut w = GgufWriter::new();
    w.add_metadata("x.deep", GgufValue::Array(nested));
    assert_eq!(
        error_of(&w.to_bytes()),
        "FILE: key 'x.deep': arrays nested deeper than 8 levels"
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.gguf");
    let err = GgufFile::open(&path).unwrap_err();
    assert!(matches!(err, BackboneError::Io { .. }));
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
}
