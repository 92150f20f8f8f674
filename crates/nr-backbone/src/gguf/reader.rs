//! Parsing a GGUF file: header, metadata, tensor infos and the aligned data section.
//!
//! The file is memory-mapped and only its header is parsed on open; tensor data stays in the map
//! until a tensor is asked for. Every count, length, type id and offset is checked against the
//! file before it is used, so a malformed file yields a one-line [`BackboneError`] naming the
//! file and the key or tensor at fault, never a panic or a giant allocation.
//!
//! Layout (all little-endian): magic `GGUF`, version `u32`, tensor count `u64`, metadata count
//! `u64`; the metadata pairs (key string, type `u32`, value); the tensor infos (name string,
//! `n_dims: u32`, `n_dims` dims `u64` fastest first, ggml type `u32`, offset `u64` relative to
//! the data section); then padding up to `general.alignment` (default 32) and the data section.
//! A string is a `u64` byte length and UTF-8 bytes; an array is an element type `u32`, a `u64`
//! count and the elements.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::ggml_type::GgmlType;
use super::metadata::{GgufArray, GgufValue, GgufValueType};
use crate::error::{BackboneError, Result};

/// The magic bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The metadata key that sets the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// The data alignment when the file does not set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The most dimensions a ggml tensor has.
pub const MAX_DIMS: u32 = 4;
/// How deeply arrays may nest inside arrays (bounds recursion on hostile input).
const MAX_ARRAY_DEPTH: usize = 8;

/// Where a tensor's data lies and how it is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The GGUF tensor name (`token_embd.weight`, `blk.0.attn_q.weight`, ...).
    pub name: String,
    /// Dimensions in GGUF order: the fastest-varying (contiguous) dimension first.
    pub dims: Vec<u64>,
    /// The element encoding.
    pub ggml_type: GgmlType,
    /// Byte offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements (validated on open not to overflow).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes the encoded data takes (validated on open).
    pub fn n_bytes(&self) -> u64 {
        self.ggml_type.byte_size(self.n_elements()).unwrap_or(0)
    }

    /// The shape in PyTorch order (dims reversed, slowest first): for this shape the stored
    /// element order is row-major.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// An open, memory-mapped GGUF file (version 2 or 3) with its parsed header.
pub struct GgufFile {
    path: PathBuf,
    mmap: Mmap,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, GgufValue)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and memory-maps a GGUF file and parses its header; tensor data is read on demand.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| BackboneError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| BackboneError::io(path, e))?
            .len();
        if len < 4 {
            return Err(BackboneError::malformed(
                path,
                format!("truncated file: {len} bytes, too short for the GGUF magic"),
            ));
        }
        // SAFETY: the file is opened read-only and not modified while mapped by this process;
        // every read through the map is bounds-checked against its length.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| BackboneError::io(path, e))?;
        let header = parse_header(path, &mmap)?;
        Ok(Self {
            path: path.to_path_buf(),
            mmap,
            version: header.version,
            alignment: header.alignment,
            data_offset: header.data_offset,
            metadata_index: index_of(&header.metadata, |(k, _)| k),
            metadata: header.metadata,
            tensor_index: index_of(&header.tensors, |t| &t.name),
            tensors: header.tensors,
        })
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment in bytes (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The metadata value of `key`, if present.
    pub fn metadata(&self, key: &str) -> Option<&GgufValue> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// All metadata pairs in file order.
    pub fn metadata_entries(&self) -> impl Iterator<Item = (&str, &GgufValue)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// All tensor infos in file order.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of the tensor `name`, if present.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The encoded bytes of a tensor of this file (ranges were validated on open).
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + info.offset) as usize;
        let end = start + info.n_bytes() as usize;
        self.mmap.get(start..end).unwrap_or(&[])
    }

    /// The metadata value of `key`, or a "missing key" error.
    pub fn get(&self, key: &str) -> Result<&GgufValue> {
        self.metadata(key)
            .ok_or_else(|| BackboneError::missing(&self.path, format!("key '{key}'")))
    }

    /// An integer key converted to `T`; any stored integer type is accepted if the value fits.
    pub fn get_int<T: TryFrom<i128>>(&self, key: &str) -> Result<T> {
        let value = self.get(key)?;
        let wide = value
            .as_integer()
            .ok_or_else(|| self.wrong_type(key, "an integer", value))?;
        T::try_from(wide).map_err(|_| {
            let target = std::any::type_name::<T>();
            BackboneError::malformed(
                &self.path,
                format!("key '{key}': value {wide} does not fit in {target}"),
            )
        })
    }

    /// An integer key as `u32`.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.get_int(key)
    }

    /// An integer key as `u64`.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get_int(key)
    }

    /// An integer key as `i64`.
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.get_int(key)
    }

    /// An integer key as `usize`.
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        self.get_int(key)
    }

    /// A float key (f32, or f64 narrowed) as `f32`.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.get_f64(key).map(|v| v as f32)
    }

    /// A float key (f32 or f64) as `f64`.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        let value = self.get(key)?;
        value
            .as_float()
            .ok_or_else(|| self.wrong_type(key, "a float", value))
    }

    /// A bool key.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let value = self.get(key)?;
        value
            .as_bool()
            .ok_or_else(|| self.wrong_type(key, "a bool", value))
    }

    /// A string key.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        let value = self.get(key)?;
        value
            .as_str()
            .ok_or_else(|| self.wrong_type(key, "a string", value))
    }

    /// An array key of any element type.
    pub fn get_array(&self, key: &str) -> Result<&GgufArray> {
        let value = self.get(key)?;
        value
            .as_array()
            .ok_or_else(|| self.wrong_type(key, "an array", value))
    }

    /// An array-of-strings key.
    pub fn get_string_array(&self, key: &str) -> Result<&[String]> {
        let array = self.get_array(key)?;
        array
            .as_strings()
            .ok_or_else(|| self.wrong_array_type(key, "strings", array))
    }

    /// An array-of-integers key with every element converted to `T`.
    pub fn get_int_array<T: TryFrom<i128>>(&self, key: &str) -> Result<Vec<T>> {
        let array = self.get_array(key)?;
        let wide = array
            .to_integers()
            .ok_or_else(|| self.wrong_array_type(key, "integers", array))?;
        wide.into_iter()
            .enumerate()
            .map(|(i, v)| {
                T::try_from(v).map_err(|_| {
                    let target = std::any::type_name::<T>();
                    BackboneError::malformed(
                        &self.path,
                        format!("key '{key}': element {i} = {v} does not fit in {target}"),
                    )
                })
            })
            .collect()
    }

    /// An array-of-floats key as `f32`s.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>> {
        let array = self.get_array(key)?;
        array
            .to_f32s()
            .ok_or_else(|| self.wrong_array_type(key, "floats", array))
    }

    /// Like [`get_int`](Self::get_int) but `Ok(None)` when the key is absent (a present key of
    /// the wrong type is still an error).
    pub fn opt_int<T: TryFrom<i128>>(&self, key: &str) -> Result<Option<T>> {
        self.optional(key, Self::get_int)
    }

    /// Like [`get_u32`](Self::get_u32) but `Ok(None)` when the key is absent.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        self.optional(key, Self::get_u32)
    }

    /// Like [`get_f32`](Self::get_f32) but `Ok(None)` when the key is absent.
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.optional(key, Self::get_f32)
    }

    /// Like [`get_bool`](Self::get_bool) but `Ok(None)` when the key is absent.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.optional(key, Self::get_bool)
    }

    /// Like [`get_str`](Self::get_str) but `Ok(None)` when the key is absent.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.optional(key, Self::get_str)
    }

    /// `general.architecture` (`llama`, `qwen2`, ...): the prefix of the model's hyper-parameter keys.
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    fn optional<'a, T>(
        &'a self,
        key: &str,
        get: impl FnOnce(&'a Self, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        if self.metadata(key).is_some() {
            get(self, key).map(Some)
        } else {
            Ok(None)
        }
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &GgufValue) -> BackboneError {
        BackboneError::malformed(
            &self.path,
            format!(
                "key '{key}': expected {expected}, found {} {found}",
                found.value_type()
            ),
        )
    }

    fn wrong_array_type(&self, key: &str, expected: &str, found: &GgufArray) -> BackboneError {
        BackboneError::malformed(
            &self.path,
            format!(
                "key '{key}': expected an array of {expected}, found an array of {}",
                found.element_type()
            ),
        )
    }
}

fn index_of<T>(items: &[T], name: impl Fn(&T) -> &String) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (name(item).clone(), i))
        .collect()
}

/// The parsed header of a GGUF file.
struct Header {
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<TensorInfo>,
}

/// Parses and validates everything before the data section.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let mut cur = Cursor {
        bytes,
        pos: 0,
        path,
    };
    let magic = cur.take(4, "the magic")?;
    if magic != GGUF_MAGIC {
        return Err(BackboneError::malformed(
            path,
            format!(
                "not a GGUF file: magic {:?}, expected \"GGUF\"",
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let version = cur.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(BackboneError::unsupported(
                path,
                "GGUF version 1 (32-bit counts); re-convert the model",
            ));
        }
        v if matches!(v.swap_bytes(), 2 | 3) => {
            return Err(BackboneError::unsupported(path, "big-endian GGUF file"));
        }
        v => {
            return Err(BackboneError::unsupported(
                path,
                format!("GGUF version {v} (expected 2 or 3)"),
            ));
        }
    }
    let tensor_count = cur.u64("the tensor count")?;
    let kv_count = cur.u64("the metadata count")?;
    // Each pair takes at least a key length, a type and a 1-byte value; each tensor info at
    // least a name length, n_dims, a type and an offset.
    cur.check_count(kv_count, 8 + 4 + 1, "the metadata count")?;
    cur.check_count(tensor_count, 8 + 4 + 4 + 8, "the tensor count")?;

    let mut metadata: Vec<(String, GgufValue)> = Vec::with_capacity(kv_count as usize);
    let mut seen_keys = HashMap::with_capacity(kv_count as usize);
    for i in 0..kv_count {
        let key = cur.string(&format!("the key of metadata pair {i}"))?;
        let what = format!("key '{key}'");
        let type_id = cur.u32(&what)?;
        let value_type = GgufValueType::from_id(type_id).ok_or_else(|| {
            BackboneError::malformed(path, format!("{what}: unknown value type id {type_id}"))
        })?;
        let value = cur.value(value_type, &what, 0)?;
        if seen_keys.insert(key.clone(), i).is_some() {
            return Err(BackboneError::malformed(
                path,
                format!("{what} appears twice"),
            ));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some((_, value)) => match value.as_integer() {
            Some(a) if a > 0 && (a as u128).is_power_of_two() && a <= u32::MAX as i128 => a as u64,
            _ => {
                return Err(BackboneError::malformed(
                    path,
                    format!("key '{ALIGNMENT_KEY}': {value} is not a power of two"),
                ));
            }
        },
    };

    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(tensor_count as usize);
    let mut seen_names = HashMap::with_capacity(tensor_count as usize);
    for i in 0..tensor_count {
        let name = cur.string(&format!("the name of tensor {i}"))?;
        let what = format!("tensor '{name}'");
        let n_dims = cur.u32(&what)?;
        if n_dims > MAX_DIMS {
            return Err(BackboneError::malformed(
                path,
                format!("{what}: {n_dims} dimensions (at most {MAX_DIMS})"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(cur.u64(&what)?);
        }
        let type_id = cur.u32(&what)?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            BackboneError::malformed(path, format!("{what}: unknown ggml type id {type_id}"))
        })?;
        let offset = cur.u64(&what)?;
        if seen_names.insert(name.clone(), i).is_some() {
            return Err(BackboneError::malformed(
                path,
                format!("{what} appears twice"),
            ));
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        });
    }

    let file_len = bytes.len() as u64;
    let data_offset = align_up(cur.pos as u64, alignment);
    for t in &tensors {
        validate_tensor(path, t, alignment, data_offset, file_len)?;
    }
    Ok(Header {
        version,
        alignment,
        data_offset,
        metadata,
        tensors,
    })
}

/// Checks a tensor's dims, block geometry, alignment and that its bytes lie inside the file.
fn validate_tensor(
    path: &Path,
    t: &TensorInfo,
    alignment: u64,
    data_offset: u64,
    file_len: u64,
) -> Result<()> {
    let bad = |detail: String| {
        Err(BackboneError::malformed(
            path,
            format!("tensor '{}': {detail}", t.name),
        ))
    };
    let mut n: u64 = 1;
    for &d in &t.dims {
        match n.checked_mul(d) {
            Some(m) if m <= i64::MAX as u64 => n = m,
            _ => return bad(format!("dims {:?} overflow the element count", t.dims)),
        }
    }
    let block = t.ggml_type.block_size() as u64;
    let first = t.dims.first().copied().unwrap_or(1);
    if !first.is_multiple_of(block) {
        return bad(format!(
            "first dimension {first} is not a multiple of the {} block size {block}",
            t.ggml_type
        ));
    }
    let Some(size) = t.ggml_type.byte_size(n) else {
        return bad(format!(
            "{n} elements of {} overflow the byte size",
            t.ggml_type
        ));
    };
    if !t.offset.is_multiple_of(alignment) {
        return bad(format!(
            "offset {} is not a multiple of the alignment {alignment}",
            t.offset
        ));
    }
    let end = data_offset
        .checked_add(t.offset)
        .and_then(|s| s.checked_add(size));
    match end {
        Some(end) if end <= file_len => Ok(()),
        _ => bad(format!(
            "data (offset {} + {size} bytes after the data section at {data_offset}) extends beyond the end of the file ({file_len} bytes)",
            t.offset
        )),
    }
}

/// `pos` rounded up to a multiple of `alignment` (a power of two).
pub(crate) fn align_up(pos: u64, alignment: u64) -> u64 {
    pos.div_ceil(alignment) * alignment
}

/// A bounds-checked little-endian reader over the mapped header.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(BackboneError::malformed(
                self.path,
                format!(
                    "truncated file: {what} needs {n} bytes at offset {} but the file has {} bytes",
                    self.pos,
                    self.bytes.len()
                ),
            ));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Errors unless `count` items of at least `min_size` bytes each can fit in what is left.
    fn check_count(&self, count: u64, min_size: u64, what: &str) -> Result<()> {
        if count
            .checked_mul(min_size)
            .is_none_or(|need| need > self.remaining())
        {
            return Err(BackboneError::malformed(
                self.path,
                format!(
                    "{what} {count} is impossible: only {} bytes follow offset {}",
                    self.remaining(),
                    self.pos
                ),
            ));
        }
        Ok(())
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(BackboneError::malformed(
                self.path,
                format!("{what}: string is not UTF-8 ({e})"),
            )),
        }
    }

    fn value(&mut self, ty: GgufValueType, what: &str, depth: usize) -> Result<GgufValue> {
        use GgufValueType as T;
        Ok(match ty {
            T::U8 => GgufValue::U8(self.array::<1>(what)?[0]),
            T::I8 => GgufValue::I8(i8::from_le_bytes(self.array(what)?)),
            T::U16 => GgufValue::U16(u16::from_le_bytes(self.array(what)?)),
            T::I16 => GgufValue::I16(i16::from_le_bytes(self.array(what)?)),
            T::U32 => GgufValue::U32(self.u32(what)?),
            T::I32 => GgufValue::I32(i32::from_le_bytes(self.array(what)?)),
            T::F32 => GgufValue::F32(f32::from_le_bytes(self.array(what)?)),
            T::Bool => GgufValue::Bool(self.bool(what)?),
            T::String => GgufValue::String(self.string(what)?),
            T::Array => GgufValue::Array(self.array_value(what, depth)?),
            T::U64 => GgufValue::U64(self.u64(what)?),
            T::I64 => GgufValue::I64(i64::from_le_bytes(self.array(what)?)),
            T::F64 => GgufValue::F64(f64::from_le_bytes(self.array(what)?)),
        })
    }

    fn bool(&mut self, what: &str) -> Result<bool> {
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(BackboneError::malformed(
                self.path,
                format!("{what}: bool byte {b} is neither 0 nor 1"),
            )),
        }
    }

    fn array_value(&mut self, what: &str, depth: usize) -> Result<GgufArray> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(BackboneError::malformed(
                self.path,
                format!("{what}: arrays nested deeper than {MAX_ARRAY_DEPTH} levels"),
            ));
        }
        let type_id = self.u32(what)?;
        let ty = GgufValueType::from_id(type_id).ok_or_else(|| {
            BackboneError::malformed(
                self.path,
                format!("{what}: unknown array element type id {type_id}"),
            )
        })?;
        let len = self.u64(what)?;
        self.check_count(len, ty.min_encoded_size(), &format!("{what}: array length"))?;
        let n = len as usize;
        fn many<T>(n: usize, mut read: impl FnMut() -> Result<T>) -> Result<Vec<T>> {
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(read()?);
            }
            Ok(out)
        }
        /// Fixed-width elements: one bounds check for the whole run.
        fn fixed<const N: usize, T>(
            cur: &mut Cursor,
            n: usize,
            what: &str,
            f: fn([u8; N]) -> T,
        ) -> Result<Vec<T>> {
            let bytes = cur.take((n * N) as u64, what)?;
            Ok(bytes
                .chunks_exact(N)
                .map(|c| f(c.try_into().expect("chunk of N bytes")))
                .collect())
        }
        use GgufValueType as T;
        Ok(match ty {
            T::U8 => GgufArray::U8(fixed(self, n, what, |b: [u8; 1]| b[0])?),
            T::I8 => GgufArray::I8(fixed(self, n, what, i8::from_le_bytes)?),
            T::U16 => GgufArray::U16(fixed(self, n, what, u16::from_le_bytes)?),
            T::I16 => GgufArray::I16(fixed(self, n, what, i16::from_le_bytes)?),
            T::U32 => GgufArray::U32(fixed(self, n, what, u32::from_le_bytes)?),
            T::I32 => GgufArray::I32(fixed(self, n, what, i32::from_le_bytes)?),
            T::F32 => GgufArray::F32(fixed(self, n, what, f32::from_le_bytes)?),
            T::U64 => GgufArray::U64(fixed(self, n, what, u64::from_le_bytes)?),
            T::I64 => GgufArray::I64(fixed(self, n, what, i64::from_le_bytes)?),
            T::F64 => GgufArray::F64(fixed(self, n, what, f64::from_le_bytes)?),
            T::Bool => GgufArray::Bool(many(n, || self.bool(what))?),
            T::String => GgufArray::String(many(n, || self.string(what))?),
            T::Array => GgufArray::Array(many(n, || self.array_value(what, depth + 1))?),
        })
    }
}
