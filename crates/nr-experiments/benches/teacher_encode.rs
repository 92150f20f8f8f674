//! Teacher encoding: passages/s of all-MiniLM-L6-v2 over the first 2,000 QReCC passages at batch 32
//! (the workload of indexing the collection), on all threads and on 1 thread.
//!
//! `cargo bench -p nr-experiments --bench teacher_encode`; writes results/bench/teacher_encode.json.
//! `bench/teacher_encode_st.py` runs sentence-transformers on the same passages.

mod common;

use std::io::{BufRead, BufReader};

use burn::tensor::Device;
use common::{BenchFile, Row, model, qrecc, seconds};
use nr_backbone::teacher::TeacherEncoder;

/// The `contents` of the first `n` passages of the collection.
fn read_passages(n: usize) -> Vec<String> {
    let path = qrecc("passages.jsonl");
    let file = std::fs::File::open(&path).unwrap();
    BufReader::new(file)
        .lines()
        .take(n)
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            value["contents"]
                .as_str()
                .expect("'contents' string")
                .to_string()
        })
        .collect()
}

fn main() {
    let n = common::env_usize("NR_BENCH_PASSAGES", 2000);
    let repeats = common::env_usize("NR_BENCH_REPEATS", 3);
    let batch = 32;
    let passages = read_passages(n);
    let texts: Vec<&str> = passages.iter().map(String::as_str).collect();
    let teacher = TeacherEncoder::load(&model("all-MiniLM-L6-v2"), &Device::default()).unwrap();
    let tokens: usize = teacher.tokenize(&texts).unwrap().iter().map(Vec::len).sum();
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();
    for threads in [all, 1] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let runs = pool.install(|| {
            teacher
                .encode_many(&texts[..2 * batch], batch, false)
                .unwrap(); // warm-up
            (0..repeats)
                .map(|_| {
                    n as f64
                        / seconds(|| {
                            assert_eq!(teacher.encode_many(&texts, batch, false).unwrap().len(), n)
                        })
                })
                .collect()
        });
        rows.push(Row::new(
            format!("threads={threads} batch={batch}"),
            "passages/s",
            runs,
        ));
    }
    BenchFile {
        bench: "teacher_encode".into(),
        stack: format!(
            "nr-backbone teacher, burn flex (f32), all-MiniLM-L6-v2 safetensors, {repeats} runs"
        ),
        workload: format!(
            "first {n} QReCC passages ({:.1} tokens each on average), batch {batch}, length-sorted",
            tokens as f64 / n as f64
        ),
        rows,
        ratios: vec![],
        target_vs_reference: Some(1.5),
    }
    .finish();
}
