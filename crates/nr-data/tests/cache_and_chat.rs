//! Caches rebuild stale or corrupt entries; conversations truncate from the oldest turn.

use nr_data::{CacheKeyBuilder, CacheLookup, CachedTensor, ChatMessage, StorageDtype, TensorCache, TensorSet, fit_conversation};

fn set(values: Vec<f32>) -> TensorSet {
    let mut s = TensorSet::new();
    s.insert("x".into(), CachedTensor::new(vec![2, values.len() / 2], values).unwrap());
    s
}

#[test]
fn cache_hits_misses_and_rebuilds_a_corrupt_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TensorCache::new(dir.path());
    let key = CacheKeyBuilder::new("emb").model_hash("abc").input("hello").setting("dim", 2).finish();
    let other = CacheKeyBuilder::new("emb").model_hash("abc").input("hello").setting("dim", 3).finish();
    assert_ne!(key, other);
    assert!(matches!(cache.load(&key).unwrap(), CacheLookup::Miss));
    let built = cache.get_or_build::<nr_data::DataError>(&key, StorageDtype::F32, || Ok(set(vec![1., 2., 3., 4.]))).unwrap();
    assert_eq!(built["x"].data, [1., 2., 3., 4.]);
    let hit = cache.get_or_build::<nr_data::DataError>(&key, StorageDtype::F32, || panic!("must hit")).unwrap();
    assert_eq!(hit["x"].data, [1., 2., 3., 4.]);
    // Flip a byte of the stored data: the checksum catches it and the entry is rebuilt.
    let path = cache.path_for(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(cache.load(&key).unwrap(), CacheLookup::Invalid(_)));
    let rebuilt = cache.get_or_build::<nr_data::DataError>(&key, StorageDtype::F32, || Ok(set(vec![5., 6., 7., 8.]))).unwrap();
    assert_eq!(rebuilt["x"].data, [5., 6., 7., 8.]);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
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
    assert_eq!(cut.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["sys", "q2", "a2", "q3"]);
    assert!(cut.fits);
    let none = fit_conversation(&context, "q3", Some("sys"), 2, &count);
    assert!(!none.fits);
    assert_eq!(none.messages.last().unwrap().content, "q3");
}
