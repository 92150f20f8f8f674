//! Caches rebuild stale or corrupt entries; conversations truncate from the oldest turn.

use nr_data::{
    CacheKeyBuilder, CacheLookup, CachedTensor, ChatMessage, StorageDtype, TensorCache, TensorSet,
    fit_conversation,
};

fn set(values: Vec<f32>) -> TensorSet {
    let mut s = TensorSet::new();
    s.insert(
        "x".into(),
        CachedTensor::new(vec![2, values.len() / 2], values).unwrap(),
    );
    s
}

#[test]
fn cache_hits_misses_and_rebuilds_a_corrupt_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TensorCache::new(dir.path());
    let key = CacheKeyBuilder::new("emb")
        .model_hash("abc")
        .input("hello")
        .setting("dim", 2)
        .finish();
    let other = CacheKeyBuilder::new("emb")
        .model_hash("abc")
        .input("hello")
        .setting("dim", 3)
        .finish();
    assert_ne!(key, other);
    assert!(matches!(cache.load(&key).unwrap(), CacheLookup::Miss));
    let built = cache
        .get_or_build::<nr_data::DataError>(&key, StorageDtype::F32, || {
            Ok(set(vec![1., 2., 3., 4.]))
        })
        .unwrap();
    assert_eq!(built["x"].data, [1., 2., 3., 4.]);
    let hit = cache
        .get_or_build::<nr_data::DataError>(&key, StorageDtype::F32, || panic!("must hit"))
        .unwrap();
    assert_eq!(hit["x"].data, [1., 2., 3., 4.]);
    // Flip a byte of the stored data: the checksum catches it and the entry is rebuilt.
    let path = cache.path_for(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(cache.load(&key).unwrap(), CacheLookup::Invalid(_)));
    let rebuilt = cache
        .get_or_build::<nr_data::DataError>(&key, StorageDtype::F32, || {
            Ok(set(vec![5., 6., 7., 8.]))
        })
        .unwrap();
    assert_eq!(rebuilt["x"].data, [5., 6., 7., 8.]);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn history_is_dropped_from_the_oldest_turn_to_fit_the_budget() {
    let context: Vec<String> = ["q1", "a1", "q2", "a2"].map(String::from).to_vec();
    // Count characters of all contents as "tokens".
    let count = |m: &[ChatMessage]| m.iter().map(|x| x.content.len()).sum::<usize>();
    let full = fit_conversation(&context, "q3", Some("sys"), 100, &count);
    assert_eq!(full.dropped_turns, 0);
    assert_eq!(full.messages.len(), 6);
    assert_eq!(full.messages[1].role, "user");
    assert_eq!(full.messages[2].role, "assistant");
    // sys(3) + q2 a2 q3 (6) = 9 fits a budget of 10; the full 13 does not.
    let cut = fit_conversation(&context, "q3", Some("sys"), 10, &count);
    assert_eq!(cut.dropped_turns, 1);
    assert_eq!(
        cut.messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>(),
        ["sys", "q2", "a2", "q3"]
    );
    assert!(cut.fits);
    let none = fit_conversation(&context, "q3", Some("sys"), 2, &count);
    assert!(!none.fits);
    assert_eq!(none.messages.last().unwrap().content, "q3");
}

#[test]
fn stale_truncated_and_foreign_entries_are_invalid_and_f16_loads_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TensorCache::new(dir.path());
    let key_a = CacheKeyBuilder::new("emb").inputs(["a", "b"]).finish();
    let key_b = CacheKeyBuilder::new("emb").inputs(["b", "a"]).finish();
    assert_ne!(key_a, key_b, "input order is part of the key");
    assert_ne!(
        CacheKeyBuilder::new("emb").input("ab").finish(),
        CacheKeyBuilder::new("emb").inputs(["a", "b"]).finish(),
        "fields are length-prefixed"
    );
    cache
        .store(&key_a, &set(vec![0.1, 0.2, 0.3, 1e-3]), StorageDtype::F16)
        .unwrap();
    let CacheLookup::Hit(hit) = cache.load(&key_a).unwrap() else {
        panic!("expected a hit")
    };
    let want: Vec<f32> = [0.1f32, 0.2, 0.3, 1e-3]
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    assert_eq!(hit["x"].data, want);
    assert_eq!(hit["x"].shape, [2, 2]);

    // A file copied under another key (stale: it describes other inputs).
    std::fs::copy(cache.path_for(&key_a), cache.path_for(&key_b)).unwrap();
    let CacheLookup::Invalid(reason) = cache.load(&key_b).unwrap() else {
        panic!("expected invalid")
    };
    assert!(reason.contains("file holds key"), "{reason}");
    // Truncated: not parseable.
    let bytes = std::fs::read(cache.path_for(&key_a)).unwrap();
    std::fs::write(cache.path_for(&key_a), &bytes[..bytes.len() / 2]).unwrap();
    let CacheLookup::Invalid(reason) = cache.load(&key_a).unwrap() else {
        panic!("expected invalid")
    };
    assert!(reason.starts_with("not a safetensors file"), "{reason}");
    // A safetensors file without our metadata (e.g. written by another tool).
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4]).unwrap();
    std::fs::write(
        cache.path_for(&key_a),
        safetensors::serialize([("x", view)], None).unwrap(),
    )
    .unwrap();
    let CacheLookup::Invalid(reason) = cache.load(&key_a).unwrap() else {
        panic!("expected invalid")
    };
    assert!(reason.starts_with("format \"(missing)\""), "{reason}");
    let rebuilt = cache
        .get_or_build::<nr_data::DataError>(&key_a, StorageDtype::F32, || Ok(set(vec![1., 2.])))
        .unwrap();
    assert_eq!(rebuilt["x"].data, [1., 2.]);
    assert!(matches!(cache.load(&key_a).unwrap(), CacheLookup::Hit(_)));

    assert!(CachedTensor::new(vec![2, 3], vec![0.0; 5]).is_err());
}

#[test]
fn file_hashes_are_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    std::fs::write(&path, b"abc").unwrap();
    assert_eq!(
        nr_data::file_sha256(&path).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let err = nr_data::file_sha256(dir.path().join("absent"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent"), "{err}");
}
