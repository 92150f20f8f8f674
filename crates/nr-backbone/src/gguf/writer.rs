//! A small GGUF v3 writer: metadata of any value type and tensors encoded as F32, F16, BF16,
//! Q8_0, Q4_0 or Q4_1 (or pre-encoded bytes of any ggml type). It exists to build test files and
//! small fixtures; the layout is the one [`GgufFile`](super::GgufFile) reads.

use std::path::Path;

use super::ggml_type::GgmlType;
use super::metadata::{GgufArray, GgufValue};
use super::quantize::quantize;
use super::reader::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC, align_up};
use crate::error::{BackboneError, Result};

/// A tensor waiting to be written.
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    bytes: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one GGUF v3 file.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<PendingTensor>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata pair (kept in insertion order). An integer `general.alignment` sets the
    /// data alignment.
    pub fn add_metadata(&mut self, key: impl Into<String>, value: GgufValue) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Adds a tensor given in PyTorch layout (`shape` slowest first, `data` row-major), encoded
    /// as `ty` (F32, F16, BF16, Q8_0, Q4_0 or Q4_1; the last dimension must then be a multiple
    /// of 32 for the block types).
    pub fn add_tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        ty: GgmlType,
    ) -> Result<&mut Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(BackboneError::Input(format!(
                "gguf writer: tensor '{name}': shape {shape:?} has {n} elements, data has {}",
                data.len()
            )));
        }
        let last = shape.last().copied().unwrap_or(1);
        if !last.is_multiple_of(ty.block_size()) {
            return Err(BackboneError::Input(format!(
                "gguf writer: tensor '{name}': last dimension {last} is not a multiple of the {ty} block size {}",
                ty.block_size()
            )));
        }
        let bytes = quantize(ty, data).ok_or_else(|| {
            BackboneError::Input(format!("gguf writer: tensor '{name}': cannot encode {ty}"))
        })?;
        let dims = shape.iter().rev().map(|&d| d as u64).collect();
        self.add_raw_tensor(name, dims, ty, bytes)
    }

    /// Adds a tensor of already-encoded bytes; `dims` are in GGUF order (fastest first).
    pub fn add_raw_tensor(
        &mut self,
        name: &str,
        dims: Vec<u64>,
        ty: GgmlType,
        bytes: Vec<u8>,
    ) -> Result<&mut Self> {
        let n: u64 = dims.iter().product();
        let first = dims.first().copied().unwrap_or(1);
        if !first.is_multiple_of(ty.block_size() as u64)
            || ty.byte_size(n) != Some(bytes.len() as u64)
        {
            return Err(BackboneError::Input(format!(
                "gguf writer: tensor '{name}': {} bytes do not encode dims {dims:?} of {ty}",
                bytes.len()
            )));
        }
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dims,
            ggml_type: ty,
            bytes,
        });
        Ok(self)
    }

    /// The data alignment: `general.alignment` if set to an integer, else 32.
    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .rev()
            .find(|(k, _)| k == ALIGNMENT_KEY)
            .and_then(|(_, v)| v.as_integer())
            .and_then(|a| u64::try_from(a).ok())
            .filter(|a| a.is_power_of_two())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// The complete file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let alignment = self.alignment();
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut out, key);
            out.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut out, value);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            put_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            t.dims
                .iter()
                .for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
            out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = align_up(offset + t.bytes.len() as u64, alignment);
        }
        let data_start = align_up(out.len() as u64, alignment) as usize;
        for (t, off) in self.tensors.iter().zip(offsets) {
            out.resize(data_start + off as usize, 0);
            out.extend_from_slice(&t.bytes);
        }
        out.resize(align_up(out.len() as u64, alignment) as usize, 0);
        out
    }

    /// Writes the file to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(|e| BackboneError::io(path, e))
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &GgufValue) {
    use GgufValue as V;
    match value {
        V::U8(v) => out.push(*v),
        V::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::Bool(v) => out.push(u8::from(*v)),
        V::String(s) => put_string(out, s),
        V::Array(a) => put_array(out, a),
        V::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

fn put_array(out: &mut Vec<u8>, array: &GgufArray) {
    use GgufArray as A;
    out.extend_from_slice(&array.element_type().id().to_le_bytes());
    out.extend_from_slice(&(array.len() as u64).to_le_bytes());
    match array {
        A::U8(v) => out.extend_from_slice(v),
        A::I8(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::U16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::Bool(v) => v.iter().for_each(|&x| out.push(u8::from(x))),
        A::String(v) => v.iter().for_each(|s| put_string(out, s)),
        A::Array(v) => v.iter().for_each(|a| put_array(out, a)),
        A::U64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
}
