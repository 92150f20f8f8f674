//! On-disk caches for embeddings and hidden states, as safetensors files keyed by content.
//!
//! Encoding a collection or running the LLM over every turn is the slow part of an experiment, and
//! its result depends only on the model file, the inputs and the settings. [`CacheKeyBuilder`]
//! hashes exactly those (SHA-256, each field tagged and length-prefixed so that different field
//! sequences cannot collide); the key names the file, so a changed input simply misses.
//!
//! A cache file stores its key and a SHA-256 of its tensor bytes in the safetensors metadata.
//! [`TensorCache::load`] checks both, so a file that is truncated, corrupted, left by another format
//! version or renamed by hand is reported as [`CacheLookup::Invalid`], and
//! [`TensorCache::get_or_build`] then rebuilds it. Files are written to a temporary name in the
//! same folder and renamed into place, so a crash never leaves a half-written cache under a key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// Version of the cache file layout; files of another version are rebuilt.
pub const CACHE_FORMAT_VERSION: &str = "nr-cache-1";

/// A content hash naming one cache entry (64 lowercase hex digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Accumulates everything a cached result depends on into a [`CacheKey`].
#[derive(Clone)]
pub struct CacheKeyBuilder {
    hasher: Sha256,
}

impl CacheKeyBuilder {
    /// Starts a key for one kind of result (e.g. `"teacher-embeddings"`, `"hidden-states"`).
    pub fn new(kind: &str) -> Self {
        let mut builder = CacheKeyBuilder {
            hasher: Sha256::new(),
        };
        builder.field(b'v', CACHE_FORMAT_VERSION.as_bytes());
        builder.field(b'k', kind.as_bytes());
        builder
    }

    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.hasher.update([tag]);
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    /// Adds the hash of a model file (see [`file_sha256`]), so a new model never reuses old results.
    pub fn model_hash(mut self, sha256_hex: &str) -> Self {
        self.field(b'm', sha256_hex.as_bytes());
        self
    }

    /// Adds one input text; the order of inputs matters, as rows follow it.
    pub fn input(mut self, text: &str) -> Self {
        self.field(b'i', text.as_bytes());
        self
    }

    /// Adds input texts in order.
    pub fn inputs<'a>(mut self, texts: impl IntoIterator<Item = &'a str>) -> Self {
        for text in texts {
            self.field(b'i', text.as_bytes());
        }
        self
    }

    /// Adds a named setting (layer, pooling, max length, dtype, ...).
    pub fn setting(mut self, name: &str, value: impl fmt::Display) -> Self {
        self.field(b's', name.as_bytes());
        self.field(b'=', value.to_string().as_bytes());
        self
    }

    /// The key.
    pub fn finish(self) -> CacheKey {
        CacheKey(hex::encode(self.hasher.finalize()))
    }
}

/// SHA-256 of a file's bytes as hex, read in 1 MiB pieces (model files are large).
pub fn file_sha256(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A dense f32 array with its shape, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedTensor {
    /// Dimensions, outermost first (e.g. `[passages, 384]`).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

impl CachedTensor {
    /// A tensor, checking that the data length matches the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(DataError::Invalid(format!(
                "tensor of shape {shape:?} needs {expected} values, got {}",
                data.len()
            )));
        }
        Ok(CachedTensor { shape, data })
    }
}

/// Named tensors stored together in one cache entry (e.g. hidden states of several layers).
pub type TensorSet = BTreeMap<String, CachedTensor>;

/// Element type on disk; tensors always load as f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    /// Exact.
    F32,
    /// Half the space; rounding error about 1e-3 relative.
    F16,
}

/// What [`TensorCache::load`] found.
#[derive(Debug)]
pub enum CacheLookup {
    /// A valid entry.
    Hit(TensorSet),
    /// No file for this key.
    Miss,
    /// A file exists but cannot be trusted; the reason says why.
    Invalid(String),
}

/// A folder of cache entries, one safetensors file per key.
#[derive(Clone, Debug)]
pub struct TensorCache {
    dir: PathBuf,
}

const META_FORMAT: &str = "nr_cache_format";
const META_KEY: &str = "nr_cache_key";
const META_CHECKSUM: &str = "nr_cache_sha256";

impl TensorCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TensorCache { dir: dir.into() }
    }

    /// The file that holds (or would hold) the entry of `key`.
    pub fn path_for(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{key}.safetensors"))
    }

    /// Loads the entry of `key`, checking its format version, key and checksum.
    pub fn load(&self, key: &CacheKey) -> Result<CacheLookup> {
        let path = self.path_for(key);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CacheLookup::Miss),
            Err(e) => return Err(DataError::io(&path, e)),
        };
        Ok(match decode(&bytes, key) {
            Ok(set) => CacheLookup::Hit(set),
            Err(reason) => CacheLookup::Invalid(reason),
        })
    }

    /// Stores `tensors` under `key`, atomically (temporary file in the same folder, then rename).
    pub fn store(&self, key: &CacheKey, tensors: &TensorSet, storage: StorageDtype) -> Result<()> {
        let path = self.path_for(key);
        std::fs::create_dir_all(&self.dir).map_err(|e| DataError::io(&self.dir, e))?;
        let mut encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut hasher = Sha256::new();
        for (name, tensor) in tensors {
            let expected: usize = tensor.shape.iter().product();
            if expected != tensor.data.len() {
                return Err(DataError::Cache {
                    path,
                    problem: format!(
                        "tensor `{name}` of shape {:?} holds {} values",
                        tensor.shape,
                        tensor.data.len()
                    ),
                });
            }
            let (dtype, bytes) = match storage {
                StorageDtype::F32 => (
                    Dtype::F32,
                    tensor.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                StorageDtype::F16 => (
                    Dtype::F16,
                    tensor
                        .data
                        .iter()
                        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                        .collect::<Vec<u8>>(),
                ),
            };
            hash_tensor(&mut hasher, name, dtype, &tensor.shape, &bytes);
            encoded.push((name.clone(), dtype, tensor.shape.clone(), bytes));
        }
        let metadata = HashMap::from([
            (META_FORMAT.to_string(), CACHE_FORMAT_VERSION.to_string()),
            (META_KEY.to_string(), key.to_string()),
            (META_CHECKSUM.to_string(), hex::encode(hasher.finalize())),
        ]);
        let views = encoded
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes).map(|view| (name.as_str(), view))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DataError::Cache {
                path: path.clone(),
                problem: e.to_string(),
            })?;
        let file_bytes =
            safetensors::serialize(views, Some(metadata)).map_err(|e| DataError::Cache {
                path: path.clone(),
                problem: e.to_string(),
            })?;
        write_atomically(&path, &file_bytes)
    }

    /// Returns the cached entry of `key`, or runs `build`, stores its result and returns it.
    ///
    /// An invalid entry (see [`CacheLookup::Invalid`]) is logged and rebuilt.
    pub fn get_or_build<E: From<DataError>>(
        &self,
        key: &CacheKey,
        storage: StorageDtype,
        build: impl FnOnce() -> Result<TensorSet, E>,
    ) -> Result<TensorSet, E> {
        match self.load(key)? {
            CacheLookup::Hit(set) => return Ok(set),
            CacheLookup::Miss => {}
            CacheLookup::Invalid(reason) => tracing::warn!(
                path = %self.path_for(key).display(),
                "rebuilding cache entry: {reason}"
            ),
        }
        let mut set = build()?;
        self.store(key, &set, storage)?;
        if storage == StorageDtype::F16 {
            // Return what a later load returns, so the first run and cached runs agree exactly.
            for tensor in set.values_mut() {
                for v in &mut tensor.data {
                    *v = half::f16::from_f32(*v).to_f32();
                }
            }
        }
        Ok(set)
    }
}

/// Feeds one tensor into the checksum: name, dtype, shape and bytes, each length-prefixed.
fn hash_tensor(hasher: &mut Sha256, name: &str, dtype: Dtype, shape: &[usize], bytes: &[u8]) {
    for part in [
        name.as_bytes(),
        format!("{dtype:?}").as_bytes(),
        format!("{shape:?}").as_bytes(),
        bytes,
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
}

/// Parses and verifies a cache file; the error is the reason it cannot be used.
fn decode(bytes: &[u8], key: &CacheKey) -> std::result::Result<TensorSet, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let (_, metadata) =
        SafeTensors::read_metadata(bytes).map_err(|e| format!("unreadable header: {e}"))?;
    let meta = metadata.metadata().clone().unwrap_or_default();
    let get = |name: &str| meta.get(name).map(String::as_str).unwrap_or("(missing)");
    if get(META_FORMAT) != CACHE_FORMAT_VERSION {
        return Err(format!(
            "format {:?}, expected {CACHE_FORMAT_VERSION:?}",
            get(META_FORMAT)
        ));
    }
    if get(META_KEY) != key.as_str() {
        return Err(format!("file holds key {}, expected {key}", get(META_KEY)));
    }
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    let mut hasher = Sha256::new();
    let mut set = TensorSet::new();
    for name in names {
        let view = st
            .tensor(name)
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => return Err(format!("tensor `{name}` has dtype {other:?}")),
        };
        hash_tensor(&mut hasher, name, view.dtype(), view.shape(), view.data());
        set.insert(
            name.to_string(),
            CachedTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    let checksum = hex::encode(hasher.finalize());
    if get(META_CHECKSUM) != checksum {
        return Err("tensor bytes do not match the stored checksum (corrupt file)".to_string());
    }
    Ok(set)
}

/// Writes `bytes` to a unique temporary file beside `path`, syncs it, then renames it onto `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.{unique}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}
