//! Passages per second of the teacher encoder (all-MiniLM-L6-v2) over the first 2,000 QReCC passages
//! at batch 32, the workload of indexing the collection.
//!
//! `cargo bench -p nr-backbone --bench teacher_encode`; `TEACHER_BENCH_PASSAGES`,
//! `TEACHER_BENCH_BATCH` and `TEACHER_BENCH_REPEATS` change the workload. `bench/teacher_encode_st.py`
//! measures sentence-transformers on the same passages for comparison.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use nr_backbone::teacher::TeacherEncoder;

const PASSAGES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/qrecc-offline/passages.jsonl"
);
const MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/all-MiniLM-L6-v2");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `contents` of the first `n` passages.
fn read_passages(n: usize) -> Vec<String> {
    let file = std::fs::File::open(PASSAGES).unwrap_or_else(|e| panic!("{PASSAGES}: {e}"));
    BufReader::new(file)
        .lines()
        .take(n)
        .map(|line| {
            let line = line.expect("readable line");
            let value: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
            value["contents"]
                .as_str()
                .expect("'contents' string")
                .to_string()
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments are ignored.
    let n = env_usize("TEACHER_BENCH_PASSAGES", 2000);
    let batch = env_usize("TEACHER_BENCH_BATCH", 32);
    let repeats = env_usize("TEACHER_BENCH_REPEATS", 3);
    assert!(
        Path::new(MODEL_DIR).join("model.safetensors").is_file(),
        "{MODEL_DIR} is missing: run `just models` (scripts/fetch-models.sh) first"
    );
    let passages = read_passages(n);
    let texts: Vec<&str> = passages.iter().map(String::as_str).collect();
    let device = Device::default();

    let start = Instant::now();
    let teacher = TeacherEncoder::load(Path::new(MODEL_DIR), &device).expect("teacher loads");
    let load_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let ids = teacher.tokenize(&texts).expect("tokenize");
    let tokenize_s = start.elapsed().as_secs_f64();
    let tokens: usize = ids.iter().map(Vec::len).sum();

    // Warm-up: first calls allocate and spin up the thread pool.
    teacher
        .encode_many(&texts[..texts.len().min(2 * batch)], batch, false)
        .expect("warm-up");

    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!(
        "teacher_encode: {} passages, {:.1} tokens each on average, batch {batch}, load {load_s:.2} s, \
         tokenize all {tokenize_s:.3} s, RAYON_NUM_THREADS={threads}",
        texts.len(),
        tokens as f64 / texts.len() as f64
    );
    let mut rates = Vec::new();
    for run in 1..=repeats {
        let start = Instant::now();
        let embeddings = teacher.encode_many(&texts, batch, false).expect("encode");
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(embeddings.len(), texts.len());
        let rate = texts.len() as f64 / seconds;
        println!("run {run}: {seconds:.2} s, {rate:.1} passages/s");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "teacher_encode: median {:.1} passages/s, best {:.1}",
        rates[rates.len() / 2],
        rates[rates.len() - 1]
    );
}
