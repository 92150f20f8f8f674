//! LLM hidden-state extraction: tokens/s of one forward pass that keeps every layer's hidden
//! states, over 8 real QReCC conversation prompts of ~128 tokens (built as the pipeline builds
//! them), batch 8 (left-padded) and batch 1, on 1 thread and on all threads; in f32, then (on a CPU
//! with AVX-512 BF16) with the projections in bf16, rows named `... bf16` like PyTorch's bfloat16
//! rows of bench/prefill_torch.py. The rows of the precision `auto` picks are held against
//! PyTorch's faster dtype for the same case (goal 1x, issue #15).
//!
//! `cargo bench -p nr-experiments --bench prefill`; writes results/bench/prefill.json and the
//! prompts (results/bench/prefill-prompts.json) that `bench/prefill_torch.py` runs in PyTorch.

mod common;

use burn::tensor::Device;
use common::{BenchFile, Row, model, qrecc, seconds};
use nr_backbone::kernels::Precision;
use nr_backbone::llama::Llm;
use nr_experiments::atomic_file::write_atomic;
use nr_experiments::native::conversations;
use nr_experiments::native::prompt::conversation_prompts;

const TARGET_TOKENS: usize = 128;

/// Eight conversation prompts of 112-144 tokens from the QReCC test split.
fn prompts(llm: &Llm) -> Vec<Vec<u32>> {
    let turns = nr_data::read_qrecc_turns(qrecc("qrecc_test.json")).unwrap();
    let candidates: Vec<_> = turns
        .into_iter()
        .filter(|t| !t.context.is_empty())
        .take(400)
        .collect();
    let all = conversation_prompts(llm, &conversations(&candidates), None, 512).unwrap();
    let picked: Vec<Vec<u32>> = all
        .into_iter()
        .filter(|p| (TARGET_TOKENS - 16..=TARGET_TOKENS + 16).contains(&p.len()))
        .take(8)
        .collect();
    assert_eq!(
        picked.len(),
        8,
        "not enough ~{TARGET_TOKENS}-token prompts in the test split"
    );
    picked
}

fn main() {
    let repeats = common::env_usize("NR_BENCH_REPEATS", 5);
    let mut llm = Llm::load(&model("SmolLM2-135M-Instruct.Q4_1.gguf"), &Device::flex()).unwrap();
    let prompts = prompts(&llm);
    let tokens: usize = prompts.iter().map(Vec::len).sum();
    let layers: Vec<usize> = (0..=llm.num_layers()).collect();
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();
    let mut precisions = vec![Precision::F32];
    if nr_backbone::kernels::bf16_supported() {
        precisions.push(Precision::Bf16);
    }
    // The precision `auto` picks: its rows are held against PyTorch's faster dtype.
    let chosen = *precisions.last().unwrap();
    for precision in precisions {
        llm.set_precision(precision).unwrap();
        let suffix = if precision == Precision::Bf16 {
            " bf16"
        } else {
            ""
        };
        for threads in [1, all] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for batch in [8, 1] {
                let runs = pool.install(|| {
                    llm.forward(&prompts[..batch], &layers, false).unwrap(); // warm-up
                    (0..repeats)
                        .map(|_| {
                            let s = seconds(|| {
                                for chunk in prompts.chunks(batch) {
                                    std::hint::black_box(
                                        llm.forward(chunk, &layers, false).unwrap(),
                                    );
                                }
                            });
                            tokens as f64 / s
                        })
                        .collect()
                });
                let row = Row::new(
                    format!("threads={threads} batch={batch}{suffix}"),
                    "tokens/s",
                    runs,
                );
                let f32_case = format!("threads={threads} batch={batch}");
                let bf16_case = format!("{f32_case} bf16");
                rows.push(if precision == chosen {
                    row.against(
                        "PyTorch's faster dtype",
                        &[f32_case.as_str(), bf16_case.as_str()],
                        Some(1.0),
                    )
                } else {
                    row
                });
            }
        }
    }
    let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let prompts_path = common::root().join("results/bench/prefill-prompts.json");
    write_atomic(
        &prompts_path,
        serde_json::to_string(&prompts).unwrap().as_bytes(),
    )
    .unwrap();
    BenchFile {
        bench: "prefill".into(),
        stack: format!(
            "nr-backbone, burn flex (f32; bf16 projections in rows so named), SmolLM2-135M-Instruct GGUF Q4_1 de-quantised, {repeats} runs, CPU {}",
            nr_backbone::kernels::cpu_features()
        ),
        workload: format!("8 QReCC conversation prompts of {lens:?} tokens, hidden states of all {} layers", layers.len()),
        rows,
        ratios: vec![],
        // Rows of the other precision are compared with PyTorch in the same dtype, without a goal.
        target_vs_reference: None,
    }
    .finish();
}
