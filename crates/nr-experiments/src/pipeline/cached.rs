//! Stage outputs kept in the content-addressed tensor cache of nr-data, so a re-run or an
//! ablation recomputes only what its settings change.

use anyhow::{Context, Result};
use nr_data::{CacheKey, CachedTensor, StorageDtype, TensorCache, TensorSet};

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
}
