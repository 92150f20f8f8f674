//! Prefill throughput of the decoder: tokens/s of one forward pass (hidden states of every layer
//! kept, as extraction does) over real QReCC chat prompts of ~128 tokens, batch 8 and batch 1,
//! with 1 thread and with all threads.
//!
//! `cargo bench -p nr-backbone --bench prefill`; prints a Markdown table and writes
//! `results/bench-prefill.json`.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use nr_backbone::llama::Llm;

const REPEATS: usize = 5;
const TARGET_TOKENS: usize = 128;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Eight chat prompts of about 128 tokens built from QReCC test conversations.
fn prompts(llm: &Llm) -> Vec<Vec<u32>> {
    let path = root().join("../shared/data/qrecc-offline/qrecc_test.json");
    let turns: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = Vec::new();
    for turn in turns {
        let context: Vec<String> =
            turn["Context"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let mut messages = Vec::new();
        for (i, text) in context.iter().enumerate() {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            messages.push(serde_json::json!({"role": role, "content": text}));
        }
        messages.push(serde_json::json!({"role": "user", "content": turn["Question"]}));
        let ids = llm.chat_ids(&messages).unwrap();
        if (TARGET_TOKENS - 16..=TARGET_TOKENS + 16).contains(&ids.len()) {
            out.push(ids);
        }
        if out.len() == 8 {
            break;
        }
    }
    assert_eq!(out.len(), 8, "not enough ~128-token prompts in {}", path.display());
    out
}

struct Row {
    threads: usize,
    batch: usize,
    tokens_per_s: Vec<f64>,
}

fn measure(llm: &Llm, prompts: &[Vec<u32>], batch: usize) -> Vec<f64> {
    let layers: Vec<usize> = (0..=llm.num_layers()).collect();
    let tokens: usize = prompts.iter().map(Vec::len).sum();
    // Warm-up.
    llm.forward(&prompts[..batch.min(prompts.len())], &layers, false).unwrap();
    (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            for chunk in prompts.chunks(batch) {
                std::hint::black_box(llm.forward(chunk, &layers, false).unwrap());
            }
            tokens as f64 / start.elapsed().as_secs_f64()
        })
        .collect()
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

fn main() {
    let model = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.exists(), "{} is missing: run `just models`", model.display());
    let llm = Llm::load(&model, &Device::flex()).unwrap();
    let prompts = prompts(&llm);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();
    for threads in [1, all] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for batch in [8, 1] {
            let tokens_per_s = pool.install(|| measure(&llm, &prompts, batch));
            rows.push(Row { threads, batch, tokens_per_s });
        }
    }
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    println!("\nprefill, SmolLM2-135M (GGUF Q4_1 de-quantised to f32), flex backend, prompt lengths {lens:?}\n");
    println!("| threads | batch | tokens/s median | min | max |");
    println!("|---|---|---|---|---|");
    let mut json = Vec::new();
    for r in &rows {
        let (med, min, max) = stats(&r.tokens_per_s);
        println!("| {} | {} | {med:.0} | {min:.0} | {max:.0} |", r.threads, r.batch);
        json.push(serde_json::json!({"threads": r.threads, "batch": r.batch, "median": med, "min": min, "max": max}));
    }
    let out = root().join("results");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("bench-prefill.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    // The same prompts for bench/prefill_torch.py, so both stacks read identical inputs.
    std::fs::write(out.join("bench-prefill-prompts.json"), serde_json::to_string(&prompts).unwrap()).unwrap();
}
