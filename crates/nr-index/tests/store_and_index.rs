//! Parquet vectors, shard coverage and the HNSW and binary indexes against exact search.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, ListBuilder};
use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use nr_index::hamming::Kernel;
use nr_index::meta::SourceRef;
use nr_index::parquet::{read_ids, read_meta};
use nr_index::synthetic::{Stream, Synthetic, SyntheticSpec};
use nr_index::{AnnIndex, BinaryIndex, BinaryParams, IndexKind};
use nr_index::{HnswIndex, HnswParams, HnswStorage, Shard, VectorDtype, VectorMeta, Vectors};
use nr_index::{read_vectors, verify_shards, write_vectors};

fn meta(dim: usize, shard: Option<Shard>, rows: usize) -> VectorMeta {
    VectorMeta {
        kind: "passages".into(),
        model: "test".into(),
        model_sha256: "abc".into(),
        dim,
        normalized: true,
        source: Some(SourceRef {
            path: "c.jsonl".into(),
            rows,
            fingerprint: "f".into(),
        }),
        shard,
    }
}

fn synthetic(n: usize, dim: usize, stream: Stream) -> Vectors {
    let s = Synthetic::new(SyntheticSpec {
        dim,
        clusters: 20,
        latent: 8,
        seed: 1,
    });
    let ids = (0..n).map(|i| format!("d{i}")).collect();
    Vectors::new(ids, dim, s.rows(stream, 0..n)).unwrap()
}

#[test]
fn vectors_round_trip_exactly_in_f32_and_within_half_precision_in_f16() {
    let dir = tempfile::tempdir().unwrap();
    let v = synthetic(40_000, 8, Stream::Passages); // more than two row groups
    let m = meta(8, None, 40_000);
    let p32 = dir.path().join("v32.parquet");
    write_vectors(&p32, &m, &v, VectorDtype::F32).unwrap();
    let (back_meta, back) = read_vectors(&p32).unwrap();
    assert_eq!(back_meta.as_ref(), Some(&m));
    assert_eq!(back, v);
    let p16 = dir.path().join("v16.parquet");
    write_vectors(&p16, &m, &v, VectorDtype::F16).unwrap();
    let (_, half) = read_vectors(&p16).unwrap();
    assert_eq!(half.ids, v.ids);
    let worst = half
        .data
        .iter()
        .zip(&v.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Unit vectors: |x| <= 1, so half precision's spacing is at most 2^-11.
    assert!(worst > 0.0 && worst <= 1.0 / 2048.0, "{worst}");
    assert!(
        std::fs::metadata(&p16).unwrap().len() < std::fs::metadata(&p32).unwrap().len() * 6 / 10
    );
    // No temp file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn files_written_by_other_tools_are_read_with_integer_ids_and_list_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.parquet");
    let mut lists = ListBuilder::new(Float64Builder::new());
    for row in [[1.0, 2.0], [3.0, 4.5]] {
        lists.values().append_slice(&row);
        lists.append(true);
    }
    let lists = lists.finish();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("embedding", lists.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![7, 9])), Arc::new(lists)],
    )
    .unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let (m, v) = read_vectors(&path).unwrap();
    assert!(m.is_none());
    assert_eq!(
        v,
        Vectors::new(vec!["7".into(), "9".into()], 2, vec![1.0, 2.0, 3.0, 4.5]).unwrap()
    );
}

#[test]
fn a_file_that_is_not_parquet_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.parquet");
    let v = synthetic(10, 4, Stream::Passages);
    write_vectors(&path, &meta(4, None, 10), &v, VectorDtype::F32).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap(); // truncated
    let err = read_vectors(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&path.display().to_string()) && !err.contains('\n'),
        "{err}"
    );
    assert!(err.contains("not a readable Parquet file"), "{err}");
    let err = write_vectors(&path, &meta(5, None, 10), &v, VectorDtype::F32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metadata says 5 dimensions, the vectors have 4"),
        "{err}"
    );
}

fn write_shards(dir: &Path, v: &Vectors, count: usize) {
    for shard in Shard::all(count) {
        let rows = shard.rows(v.len());
        let part = Vectors::new(
            v.ids[rows.clone()].to_vec(),
            v.dim,
            v.data[rows.start * v.dim..rows.end * v.dim].to_vec(),
        )
        .unwrap();
        write_vectors(
            &dir.join(shard.file_name()),
            &meta(v.dim, Some(shard), v.len()),
            &part,
            VectorDtype::F32,
        )
        .unwrap();
    }
}

#[test]
fn a_complete_set_of_shards_verifies_and_reads_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let v = synthetic(103, 4, Stream::Passages);
    write_shards(dir.path(), &v, 4);
    let c = verify_shards(dir.path(), Some(&v.ids)).unwrap();
    assert_eq!((c.files, c.shards, c.rows), (4, 4, 103));
    let (m, back) = read_vectors(dir.path()).unwrap();
    assert_eq!(back, v);
    assert_eq!(m.unwrap().shard, None);
    assert_eq!(read_ids(dir.path()).unwrap(), v.ids);
    assert_eq!(
        read_meta(&dir.path().join(Shard::new(2, 4).unwrap().file_name()))
            .unwrap()
            .unwrap()
            .shard,
        Shard::new(2, 4)
    );
}

#[test]
fn missing_shards_duplicate_ids_and_foreign_ids_are_reported() {
    let v = synthetic(50, 4, Stream::Passages);
    // A missing shard.
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path(), &v, 5);
    std::fs::remove_file(dir.path().join(Shard::new(3, 5).unwrap().file_name())).unwrap();
    let err = verify_shards(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("1 of 5 shards missing: 3"), "{err}");
    // The collection has an id the set lacks.
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path(), &v, 5);
    let mut expected = v.ids.clone();
    expected.push("new-doc".into());
    let err = verify_shards(dir.path(), Some(&expected))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 ids of the collection have no vector (new-doc)"),
        "{err}"
    );
    // An id twice.
    let dir = tempfile::tempdir().unwrap();
    let mut dup = v.clone();
    dup.ids[40] = dup.ids[3].clone();
    write_shards(dir.path(), &dup, 5);
    let err = verify_shards(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("id `d3` is in more than one row"), "{err}");
    // A shard of another set.
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path(), &v, 5);
    let mut other = meta(4, Shard::new(1, 5), 50);
    other.model_sha256 = "different".into();
    let rows = Shard::new(1, 5).unwrap().rows(50);
    let part = Vectors::new(
        v.ids[rows.clone()].to_vec(),
        4,
        v.data[rows.start * 4..rows.end * 4].to_vec(),
    )
    .unwrap();
    write_vectors(
        &dir.path().join(Shard::new(1, 5).unwrap().file_name()),
        &other,
        &part,
        VectorDtype::F32,
    )
    .unwrap();
    let err = verify_shards(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("not one set of shards"), "{err}");
    assert!(
        read_vectors(dir.path())
            .unwrap_err()
            .to_string()
            .contains("not one set of vectors")
    );
}

fn exact_top(passages: &Vectors, queries: &Vectors, k: usize) -> Vec<Vec<(usize, f32)>> {
    nr_eval::search::exact_search(&queries.data, &passages.data, passages.dim, k).unwrap()
}

fn recall(approx: &[Vec<(usize, f32)>], exact: &[Vec<(usize, f32)>]) -> f64 {
    let hits: usize = approx
        .iter()
        .zip(exact)
        .map(|(a, e)| {
            a.iter()
                .filter(|(r, _)| e.iter().any(|(x, _)| x == r))
                .count()
        })
        .sum();
    hits as f64 / exact.iter().map(Vec::len).sum::<usize>() as f64
}

#[test]
fn hnsw_finds_the_exact_neighbours_and_serves_the_same_from_a_memory_mapped_file() {
    let passages = synthetic(5_000, 32, Stream::Passages);
    let queries = synthetic(200, 32, Stream::Queries);
    let exact = exact_top(&passages, &queries, 10);
    let dir = tempfile::tempdir().unwrap();
    let vectors = dir.path().join("passages.parquet");
    write_vectors(
        &vectors,
        &meta(32, None, 5_000),
        &passages,
        VectorDtype::F32,
    )
    .unwrap();
    let out = dir.path().join("passages.usearch");
    let mut calls = 0;
    let params = HnswParams {
        storage: HnswStorage::F32,
        rescore: false,
        ..HnswParams::default()
    };
    let sidecar = HnswIndex::build(&vectors, &out, &params, |done, total| {
        calls += 1;
        assert!(done <= total && total == 5_000);
    })
    .unwrap();
    assert_eq!((sidecar.rows, sidecar.dim, calls), (5_000, 32, 1));
    let loaded = HnswIndex::open(&out, false).unwrap();
    let mapped = HnswIndex::open(&out, true).unwrap();
    assert_eq!(loaded.ids, passages.ids);
    let a = loaded.search(&queries.data, 10).unwrap();
    assert_eq!(mapped.search(&queries.data, 10).unwrap(), a);
    let r = recall(&a, &exact);
    assert!(r >= 0.98, "recall@10 {r}");
    // Scores are inner products: the best hit's score equals the exact one.
    for (x, e) in a.iter().zip(&exact) {
        if x[0].0 == e[0].0 {
            assert!((x[0].1 - e[0].1).abs() < 1e-5, "{x:?} {e:?}");
        }
    }
    assert!(!nr_index::hnsw::rescore_path(&out).exists());
    // The default: an i8 graph whose candidates are re-scored with f16 vectors kept beside it.
    // Recall is the graph's, scores are f16 inner products, and mapped equals loaded.
    let default = dir.path().join("default.usearch");
    HnswIndex::build(&vectors, &default, &HnswParams::default(), |_, _| {}).unwrap();
    let f16_file = nr_index::hnsw::rescore_path(&default);
    assert_eq!(std::fs::metadata(&f16_file).unwrap().len(), 5_000 * 32 * 2);
    let rescored = HnswIndex::open(&default, true).unwrap();
    let b = rescored.search(&queries.data, 10).unwrap();
    assert_eq!(
        HnswIndex::open(&default, false)
            .unwrap()
            .search(&queries.data, 10)
            .unwrap(),
        b
    );
    let r8 = recall(&b, &exact);
    assert!(r8 >= 0.97, "i8 + f16 re-score recall@10 {r8}");
    for (x, e) in b.iter().zip(&exact) {
        assert!(x.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {x:?}");
        if x[0].0 == e[0].0 {
            assert!((x[0].1 - e[0].1).abs() < 2e-3, "{x:?} {e:?}");
        }
    }
    // In memory, the same parameters give the same ranking.
    let in_memory = HnswIndex::from_vectors(&passages, &HnswParams::default()).unwrap();
    let r_mem = recall(&in_memory.search(&queries.data, 10).unwrap(), &exact);
    assert!(r_mem >= 0.97, "in-memory recall@10 {r_mem}");
    // A truncated re-scoring file is refused, naming it.
    let bytes = std::fs::read(&f16_file).unwrap();
    std::fs::write(&f16_file, &bytes[..bytes.len() - 2]).unwrap();
    let err = HnswIndex::open(&default, true).err().unwrap().to_string();
    assert!(
        err.contains("default.usearch.f16") && err.contains("truncated"),
        "{err}"
    );
    // A sidecar that disagrees with the index file is refused.
    let json = dir.path().join("passages.usearch.json");
    let text = std::fs::read_to_string(&json)
        .unwrap()
        .replace("\"rows\": 5000", "\"rows\": 4999");
    std::fs::write(&json, text).unwrap();
    let err = HnswIndex::open(&out, true).err().unwrap().to_string();
    assert!(
        err.contains("passages.usearch.ids")
            && err.contains("5000 ids, the sidecar says 4999 rows"),
        "{err}"
    );
}

#[test]
fn binary_index_finds_the_exact_neighbours_from_its_files_with_every_kernel() {
    let passages = synthetic(5_000, 64, Stream::Passages);
    let queries = synthetic(200, 64, Stream::Queries);
    let exact = exact_top(&passages, &queries, 10);
    let dir = tempfile::tempdir().unwrap();
    let vectors = dir.path().join("passages.parquet");
    write_vectors(
        &vectors,
        &meta(64, None, 5_000),
        &passages,
        VectorDtype::F32,
    )
    .unwrap();
    let out = dir.path().join("passages.bits");
    let params = BinaryParams { candidates: 200 };
    let sidecar = BinaryIndex::build(&vectors, &out, &params, |_, _| {}).unwrap();
    assert_eq!((sidecar.rows, sidecar.dim), (5_000, 64));
    // One bit per dimension: 8 bytes per row here.
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 5_000 * 8);
    let mut saved = AnnIndex::open(&out, true).unwrap();
    assert_eq!(saved.kind(), IndexKind::Binary);
    assert_eq!(saved.ids(), &passages.ids[..]);
    let found = saved.search(&queries.data, 10).unwrap();
    let r = recall(&found, &exact);
    assert!(r >= 0.95, "recall@10 with 200 candidates {r}");
    // Fewer candidates, lower recall; every row a candidate: exact up to f16 scores.
    saved.set_effort(20);
    let r_few = recall(&saved.search(&queries.data, 10).unwrap(), &exact);
    assert!(r_few < r, "20 candidates {r_few} vs 200 {r}");
    saved.set_effort(5_000);
    assert!(recall(&saved.search(&queries.data, 10).unwrap(), &exact) >= 0.999);
    // Loaded, in memory, and with the portable kernel: the same results.
    let mut loaded = BinaryIndex::open(&out, false).unwrap();
    assert_eq!(loaded.search(&queries.data, 10).unwrap(), found);
    for kernel in [Kernel::Portable, Kernel::Avx2] {
        loaded.set_kernel(kernel);
        assert_eq!(
            loaded.search(&queries.data, 10).unwrap(),
            found,
            "{kernel:?}"
        );
    }
    let in_memory = BinaryIndex::from_vectors(&passages, &params).unwrap();
    assert_eq!(in_memory.search(&queries.data, 10).unwrap(), found);
    // A truncated code file is refused, naming it.
    let bytes = std::fs::read(&out).unwrap();
    std::fs::write(&out, &bytes[..bytes.len() - 8]).unwrap();
    let err = AnnIndex::open(&out, true).err().unwrap().to_string();
    assert!(
        err.contains("passages.bits") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn an_hnsw_sidecar_without_a_kind_opens_as_hnsw() {
    let passages = synthetic(300, 16, Stream::Passages);
    let dir = tempfile::tempdir().unwrap();
    let vectors = dir.path().join("p.parquet");
    write_vectors(&vectors, &meta(16, None, 300), &passages, VectorDtype::F32).unwrap();
    let out = dir.path().join("p.usearch");
    HnswIndex::build(&vectors, &out, &HnswParams::default(), |_, _| {}).unwrap();
    // Sidecars written before the binary index existed have no `kind`.
    let json = dir.path().join("p.usearch.json");
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(text.contains("\"kind\": \"hnsw\""), "{text}");
    std::fs::write(&json, text.replace("\"kind\": \"hnsw\",", "")).unwrap();
    let saved = AnnIndex::open(&out, true).unwrap();
    assert_eq!(
        (saved.kind(), saved.len(), saved.dim()),
        (IndexKind::Hnsw, 300, 16)
    );
}
