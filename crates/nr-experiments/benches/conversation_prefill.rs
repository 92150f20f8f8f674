//! Hidden states for every turn of whole conversations, the pipeline's real workload: each turn's
//! prompt repeats the conversation before it. Conversation-incremental prefill (one
//! `PrefixCache`, each later turn running only its new tokens) against per-prompt prefill, on
//! the QReCC test split's conversations (all 342 turns), with the settings of
//! experiments/qrecc-offline.toml (layers 16 and 24, question-token pooling).
//!
//! Rate = the turns' prompt tokens (what per-prompt prefill reads) per second of wall time, so
//! every row, ours or a peer's, divides the same number. The rows run at the decoder's automatic
//! precision (bf16 projections on a CPU with AVX-512 BF16, f32 elsewhere); `NR_BENCH_F32=1` adds
//! the f32 rows. The prompts go to results/bench/conversation-prompts.json, which the peers read
//! (bench/conversation_prefill_torch.py: PyTorch per prompt in float32 and bfloat16, and with
//! `past_key_values` reuse; bench/llamacpp_prefill.sh: llama.cpp built from source), so
//! bench/report.py holds the incremental row against the fastest per-prompt peer (goal 1.5x) and
//! against PyTorch with KV reuse (goal 1x). Ours stops after the deepest layer read; so does
//! PyTorch (its blocks after it are dropped); llama.cpp runs the whole model.
//!
//! `cargo bench -p nr-experiments --bench conversation_prefill`; writes
//! results/bench/conversation_prefill.json. `NR_BENCH_CONVERSATIONS=N` reads the first N
//! conversations only.

mod common;

use burn::tensor::Device;
use common::{BenchFile, Ratio, Row, model, qrecc, seconds};
use nr_backbone::kernels::Precision;
use nr_backbone::llama::{Llm, PrefixCache};
use nr_experiments::atomic_file::write_atomic;
use nr_experiments::manifest::Manifest;
use nr_experiments::native::{Extraction, conversations};

/// The per-prompt peers' cases (bench/conversation_prefill_torch.py, bench/llamacpp_prefill.sh).
const PER_PROMPT_PEERS: [&str; 3] = [
    "PyTorch float32, per prompt",
    "PyTorch bfloat16, per prompt",
    "llama.cpp, per prompt",
];
const KV_REUSE_PEERS: [&str; 2] = ["PyTorch float32, KV reuse", "PyTorch bfloat16, KV reuse"];

fn main() {
    let repeats = common::env_usize("NR_BENCH_REPEATS", 2);
    let wanted = common::env_usize("NR_BENCH_CONVERSATIONS", usize::MAX);
    let with_f32 = std::env::var("NR_BENCH_F32").is_ok_and(|v| v == "1");
    let manifest =
        Manifest::load(&common::root().join("experiments/qrecc-offline.toml"), &[]).unwrap();
    let mut llm = Llm::load(&model("SmolLM2-135M-Instruct.Q4_1.gguf"), &Device::flex()).unwrap();
    let spec = manifest.backbone.feature_spec(llm.num_layers()).unwrap();
    // Every turn of the first `wanted` test conversations, in order.
    let mut turns = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for t in nr_data::read_qrecc_turns(qrecc("qrecc_test.json")).unwrap() {
        if seen.len() == wanted && !seen.contains(&t.conversation_no) {
            break;
        }
        seen.insert(t.conversation_no);
        turns.push(t);
    }
    let convs = conversations(&turns);
    let prompts = spec.conversation_prompts(&llm, &convs).unwrap();
    let prompt_tokens: usize = prompts.iter().map(Vec::len).sum();
    write_prompts(&turns, &prompts, &spec.layers);

    let mut last = None;
    let mut run = |llm: &Llm, incremental: bool| -> Vec<f64> {
        (0..repeats)
            .map(|_| {
                let mut cache = PrefixCache::default();
                let s = seconds(|| {
                    let how = Extraction {
                        batch: 1,
                        cache: incremental.then_some(&mut cache),
                        show_progress: false,
                    };
                    std::hint::black_box(spec.features(llm, &convs, None, how).unwrap());
                });
                if incremental {
                    last = Some(cache.stats);
                }
                prompt_tokens as f64 / s
            })
            .collect()
    };
    let unit = "prompt tokens/s";
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    if with_f32 {
        llm.set_precision(Precision::F32).unwrap();
        rows.push(Row::new(
            "conversations, per prompt, f32",
            unit,
            run(&llm, false),
        ));
        rows.push(Row::new(
            "conversations, incremental, f32",
            unit,
            run(&llm, true),
        ));
    }
    let precision = llm.set_precision(Precision::Auto).unwrap();
    let per_prompt = Row::new("conversations, per prompt", unit, run(&llm, false));
    let incremental = Row::new(
        "conversations, incremental (KV cache per conversation)",
        unit,
        run(&llm, true),
    );
    ratios.push(Ratio {
        name: "incremental / per prompt (speed-up)".into(),
        value: incremental.median / per_prompt.median,
        target: None,
    });
    rows.push(per_prompt.against("fastest per-prompt peer", &PER_PROMPT_PEERS, None));
    rows.push(
        incremental
            .against("fastest per-prompt peer", &PER_PROMPT_PEERS, Some(1.5))
            .against("PyTorch with KV reuse", &KV_REUSE_PEERS, Some(1.0)),
    );
    let stats = last.expect("an incremental run");
    BenchFile {
        bench: "conversation_prefill".into(),
        stack: format!(
            "nr-backbone, burn flex, decoder projections in {precision:?}{}, SmolLM2-135M-Instruct GGUF Q4_1 de-quantised, {} threads, {repeats} runs, CPU {}",
            if with_f32 { " (f32 where named)" } else { "" },
            common::threads(),
            nr_backbone::kernels::cpu_features()
        ),
        workload: format!(
            "all {} turns of {} QReCC test conversations ({prompt_tokens} prompt tokens; incremental runs {} of them, {} fresh prompts), hidden states of layers {:?} ({:?} pooling; PyTorch stops there too, llama.cpp runs every layer)",
            turns.len(),
            seen.len(),
            stats.computed,
            stats.fresh,
            spec.layers,
            spec.pool
        ),
        rows,
        ratios,
        target_vs_reference: None,
    }
    .finish();
}

/// results/bench/conversation-prompts.json: the token ids of every turn's prompt, grouped by
/// conversation in turn order, and the layers read, for the peers.
fn write_prompts(turns: &[nr_data::QreccTurn], prompts: &[Vec<u32>], layers: &[usize]) {
    let mut grouped: Vec<Vec<&Vec<u32>>> = Vec::new();
    for (i, (turn, prompt)) in turns.iter().zip(prompts).enumerate() {
        if i == 0 || turns[i - 1].conversation_no != turn.conversation_no {
            grouped.push(Vec::new());
        }
        grouped.last_mut().unwrap().push(prompt);
    }
    let json = serde_json::json!({ "conversations": grouped, "layers": layers });
    let path = common::root().join("results/bench/conversation-prompts.json");
    write_atomic(&path, json.to_string().as_bytes()).unwrap();
}
