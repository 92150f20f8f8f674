//! Hidden states for every turn of whole conversations, the pipeline's real workload: each turn's
//! prompt repeats the conversation before it. Per-prompt prefill (length-sorted batches of 8, and
//! one prompt at a time) against conversation-incremental prefill (one `PrefixCache`, each later
//! turn running only its new tokens), on the first QReCC test conversations, with the settings of
//! experiments/qrecc-offline.toml (layers 16 and 24, question pooling).
//!
//! Rate = the turns' prompt tokens (what per-prompt prefill reads) per second of wall time. The f32
//! rows are the reference precision; on a CPU with AVX-512 BF16 the bf16 rows run the same
//! workloads with the decoder's projections in bf16 (`backbone.precision = "auto"`).
//!
//! `cargo bench -p nr-experiments --bench conversation_prefill`; writes
//! results/bench/conversation_prefill.json.

mod common;

use burn::tensor::Device;
use common::{BenchFile, Ratio, Row, model, qrecc, seconds};
use nr_backbone::kernels::Precision;
use nr_backbone::llama::{Llm, PrefixCache};
use nr_experiments::manifest::Manifest;
use nr_experiments::native::{Extraction, conversations};

fn main() {
    let repeats = common::env_usize("NR_BENCH_REPEATS", 2);
    // NR_BENCH_CONVERSATIONS=1000 reads the whole test split (minutes per run).
    let wanted = common::env_usize("NR_BENCH_CONVERSATIONS", 24);
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
    let prompt_tokens: usize = spec
        .conversation_prompts(&llm, &convs)
        .unwrap()
        .iter()
        .map(Vec::len)
        .sum();
    let mut last = None;
    let mut run = |llm: &Llm, incremental: bool, batch: usize| -> Vec<f64> {
        (0..repeats)
            .map(|_| {
                let mut cache = PrefixCache::default();
                let s = seconds(|| {
                    let how = Extraction {
                        batch,
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
    let mut rows = vec![
        Row::new(
            "per prompt, batch 8",
            "prompt tokens/s",
            run(&llm, false, 8),
        ),
        Row::new(
            "per prompt, batch 1",
            "prompt tokens/s",
            run(&llm, false, 1),
        ),
        Row::new(
            "incremental (KV cache per conversation)",
            "prompt tokens/s",
            run(&llm, true, 1),
        ),
    ];
    let best_per_prompt = rows[0].median.max(rows[1].median);
    let mut ratios = vec![Ratio {
        name: "incremental / best per-prompt prefill (speed-up)".into(),
        value: rows[2].median / best_per_prompt,
        target: None,
    }];
    if llm.set_precision(Precision::Auto).unwrap() == Precision::Bf16 {
        rows.push(Row::new(
            "per prompt, batch 1, bf16",
            "prompt tokens/s",
            run(&llm, false, 1),
        ));
        rows.push(Row::new(
            "incremental (KV cache per conversation), bf16",
            "prompt tokens/s",
            run(&llm, true, 1),
        ));
        ratios.push(Ratio {
            name: "incremental bf16 / incremental f32 (speed-up)".into(),
            value: rows[4].median / rows[2].median,
            target: None,
        });
    }
    let stats = last.expect("an incremental run");
    BenchFile {
        bench: "conversation_prefill".into(),
        stack: format!(
            "nr-backbone, burn flex (f32; bf16 projections where named), SmolLM2-135M-Instruct GGUF Q4_1 de-quantised, {} threads, {repeats} runs, CPU {}",
            common::threads(),
            nr_backbone::kernels::cpu_features()
        ),
        workload: format!(
            "all {} turns of the first {wanted} QReCC test conversations ({prompt_tokens} prompt tokens; incremental runs {} of them, {} fresh prompts), layers {:?}, {:?} pooling",
            turns.len(),
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
