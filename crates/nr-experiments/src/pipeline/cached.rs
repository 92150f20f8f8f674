//! Stage outputs kept in the content-addressed tensor cache of nr-data, so a re-run or an
//! ablation recomputes only what its settings change.

use std::path::Path;

use anyhow::{Context, Result};
use nr_data::{CacheKey, CachedTensor, StorageDtype, TensorCache, TensorSet};

use crate::atomic_file::write_atomic;
use crate::native::HeadInputs;
use crate::vectors::Vectors;

/// Cached `[n, dim]` vectors for `ids`; `build` runs on a miss (or when `force`).
pub fn vectors(
    cache: &TensorCache,
    key: &CacheKey,
    force: bool,
    ids: &[String],
    build: impl FnOnce() -> Result<(usize, Vec<f32>)>,
) -> Result<Vectors> {
    let make = || -> Result<TensorSet> {
        let (dim, data) = build()?;
        let mut set = TensorSet::new();
        set.insert(
            "data".into(),
            CachedTensor::new(vec![ids.len(), dim], data)?,
        );
        Ok(set)
    };
    let set = if force {
        store(cache, key, make()?)?
    } else {
        cache.get_or_build(key, StorageDtype::F32, make)?
    };
    let t = &set["data"];
    Ok(Vectors {
        ids: ids.to_vec(),
        dim: t.shape[1],
        data: t.data.clone(),
    })
}

/// Cached head inputs; `build` runs on a miss (or when `force`).
pub fn head_inputs(
    cache: &TensorCache,
    key: &CacheKey,
    force: bool,
    build: impl FnOnce() -> Result<HeadInputs>,
) -> Result<HeadInputs> {
    let make = || -> Result<TensorSet> { inputs_to_set(&build()?) };
    let set = if force {
        store(cache, key, make()?)?
    } else {
        cache.get_or_build(key, StorageDtype::F32, make)?
    };
    set_to_inputs(&set)
}

/// `<path>.sha256`: the checksum of a cached text file.
fn checksum_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    name.into()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Cached texts (generated rewrites) at `path` when they are intact and `expected` long: a file
/// whose checksum (`<path>.sha256`) disagrees, or that does not parse, is reported and ignored, so
/// the caller recomputes it. A file from before checksums were kept is trusted once and its
/// checksum recorded.
pub fn read_texts(path: &Path, expected: usize) -> Option<Vec<String>> {
    read_any_texts(path).filter(|texts| texts.len() == expected)
}

/// [`read_texts`] of any length.
fn read_any_texts(path: &Path) -> Option<Vec<String>> {
    let bytes = std::fs::read(path).ok()?;
    let digest = sha256_hex(&bytes);
    match std::fs::read_to_string(checksum_path(path)) {
        Ok(recorded) if recorded.trim() != digest => {
            tracing::warn!(
                "{}: its checksum does not match (edited or corrupt): recomputing",
                path.display()
            );
            return None;
        }
        Ok(_) => {}
        Err(_) => {
            if let Err(e) = write_atomic(&checksum_path(path), digest.as_bytes()) {
                tracing::warn!("{e:#}");
            }
        }
    }
    let texts: Vec<String> = match serde_json::from_slice(&bytes) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("{}: not a list of texts ({e}): recomputing", path.display());
            return None;
        }
    };
    Some(texts)
}

/// `n` texts made by `make` a chunk of `chunk` at a time (the range of text indices asked for),
/// each chunk's results saved to `partial` with what came before, so that a run killed while
/// making them resumes after its last finished chunk. `partial` is removed once all are made.
pub fn resumable_texts(
    partial: &Path,
    n: usize,
    chunk: usize,
    what: &str,
    mut make: impl FnMut(std::ops::Range<usize>) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    let mut texts = read_any_texts(partial)
        .filter(|t| t.len() <= n)
        .unwrap_or_default();
    if !texts.is_empty() {
        tracing::info!(
            "{what}: resuming after {} of {n} (from {})",
            texts.len(),
            partial.display()
        );
    }
    let bar = crate::progress::progress(n - texts.len(), what, true);
    while texts.len() < n {
        let range = texts.len()..(texts.len() + chunk.max(1)).min(n);
        let made = make(range.clone())?;
        anyhow::ensure!(
            made.len() == range.len(),
            "{what}: {} texts made for {} asked",
            made.len(),
            range.len()
        );
        texts.extend(made);
        write_texts(partial, &texts)?;
        bar.inc(range.len() as u64);
    }
    bar.finish_and_clear();
    std::fs::remove_file(partial).ok();
    std::fs::remove_file(checksum_path(partial)).ok();
    Ok(texts)
}

/// Writes texts to `path` and their checksum beside them, each atomically (the texts first).
pub fn write_texts(path: &Path, texts: &[String]) -> Result<()> {
    let bytes = serde_json::to_vec(texts)?;
    write_atomic(path, &bytes)?;
    write_atomic(&checksum_path(path), sha256_hex(&bytes).as_bytes())
}

fn store(cache: &TensorCache, key: &CacheKey, set: TensorSet) -> Result<TensorSet> {
    cache.store(key, &set, StorageDtype::F32)?;
    Ok(set)
}

fn inputs_to_set(x: &HeadInputs) -> Result<TensorSet> {
    let total = *x.offsets.last().unwrap_or(&0);
    let mut set = TensorSet::new();
    set.insert(
        "data".into(),
        CachedTensor::new(vec![total, x.layers, x.dim], x.data.clone())?,
    );
    // Offsets as f32 are exact below 2^24 tokens.
    let offsets = x.offsets.iter().map(|&o| o as f32).collect();
    set.insert(
        "offsets".into(),
        CachedTensor::new(vec![x.offsets.len()], offsets)?,
    );
    Ok(set)
}

fn set_to_inputs(set: &TensorSet) -> Result<HeadInputs> {
    let data = set.get("data").context("cache entry without 'data'")?;
    let offsets = set
        .get("offsets")
        .context("cache entry without 'offsets'")?;
    Ok(HeadInputs {
        layers: data.shape[1],
        dim: data.shape[2],
        offsets: offsets.data.iter().map(|&o| o as usize).collect(),
        data: data.data.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_inputs_round_trip_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TensorCache::new(dir.path());
        let key = nr_data::CacheKeyBuilder::new("test").input("a").finish();
        let x = HeadInputs {
            layers: 2,
            dim: 3,
            offsets: vec![0, 1, 3],
            data: (0..18).map(|v| v as f32).collect(),
        };
        let built = head_inputs(&cache, &key, false, || Ok(x.clone())).unwrap();
        assert_eq!(built, x);
        let again =
            head_inputs(&cache, &key, false, || panic!("must come from the cache")).unwrap();
        assert_eq!(again, x);
    }

    #[test]
    fn texts_made_in_chunks_resume_after_the_last_saved_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("x.rewrites.partial.json");
        let text = |i: usize| format!("query {i}");
        // Killed while making the third chunk of 3 (texts 6..8 of 8).
        let err = resumable_texts(&partial, 8, 3, "rewrites", |r| {
            anyhow::ensure!(r.start < 6, "killed");
            Ok(r.map(text).collect())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "killed");
        assert_eq!(read_texts(&partial, 6).unwrap().len(), 6);
        // The rerun asks only for the rest, and the partial file is gone afterwards.
        let mut asked = Vec::new();
        let texts = resumable_texts(&partial, 8, 3, "rewrites", |r| {
            asked.push(r.clone());
            Ok(r.map(text).collect())
        })
        .unwrap();
        assert_eq!(asked, vec![std::ops::Range { start: 6, end: 8 }]);
        assert_eq!(texts, (0..8).map(text).collect::<Vec<_>>());
        assert!(!partial.exists());
    }

    #[test]
    fn cached_texts_are_read_back_only_while_their_checksum_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.rewrites.json");
        let texts = vec!["who wrote dune".to_string(), "when".to_string()];
        write_texts(&path, &texts).unwrap();
        assert_eq!(read_texts(&path, 2), Some(texts.clone()));
        assert_eq!(read_texts(&path, 3), None, "another number of turns");
        // An edit that is still valid JSON is refused.
        std::fs::write(&path, r#"["who wrote dune","where"]"#).unwrap();
        assert_eq!(read_texts(&path, 2), None);
        // A file without a checksum (written before checksums) is trusted once and gets one.
        std::fs::remove_file(checksum_path(&path)).unwrap();
        assert!(read_texts(&path, 2).is_some());
        assert!(checksum_path(&path).is_file());
        std::fs::write(&path, r#"["edited","again"]"#).unwrap();
        assert_eq!(read_texts(&path, 2), None);
    }
}
