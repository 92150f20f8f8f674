//! Per-query latency of making the query vector, batch 1, on QReCC test turns with history:
//! native retrieval (the head on hidden states the agent already has; and prefill + head from the
//! conversation prompt) against generate-then-encode (prefill + greedy generation of a standalone
//! query + the teacher on it), with the settings of experiments/qrecc-offline.toml.
//!
//! The head has random weights: its cost does not depend on their values. Each row's spread is
//! over the turns.
//!
//! `cargo bench -p nr-experiments --bench query_latency`; writes results/bench/query_latency.json.

mod common;

use std::time::Instant;

use burn::tensor::Device;
use common::{BenchFile, Ratio, Row, model, qrecc};
use nr_backbone::llama::{GenerateOptions, Llm};
use nr_backbone::teacher::TeacherEncoder;
use nr_data::ChatMessage;
use nr_experiments::manifest::Manifest;
use nr_experiments::pipeline::llm_features::{
    context_features, conversation_prompts, first_line, question_prompt,
};
use nr_experiments::train::{head_config, trainer::encode};

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let n = common::env_usize("NR_BENCH_TURNS", 16);
    let manifest =
        Manifest::load(&common::root().join("experiments/qrecc-offline.toml"), &[]).unwrap();
    let b = &manifest.backbone;
    let device = Device::default();
    let llm = Llm::load(&model("SmolLM2-135M-Instruct.Q4_1.gguf"), &device).unwrap();
    let teacher = TeacherEncoder::load(&model("all-MiniLM-L6-v2"), &device).unwrap();
    let layers = b.resolve_layers(llm.num_layers()).unwrap();
    let head = head_config(&manifest, llm.hidden_size(), teacher.dim())
        .unwrap()
        .init(&device)
        .unwrap();
    let turns: Vec<_> = nr_data::read_qrecc_turns(qrecc("qrecc_test.json"))
        .unwrap()
        .into_iter()
        .filter(|t| !t.context.is_empty())
        .take(n)
        .collect();
    let count = |m: &[ChatMessage]| llm.chat_ids(m).map_or(usize::MAX, |ids| ids.len());
    let rewrite_prompts = conversation_prompts(
        &llm,
        &turns,
        Some(&b.rewrite_instruction),
        b.max_prompt_tokens,
    )
    .unwrap();
    let generate_options = GenerateOptions {
        max_new_tokens: b.max_new_tokens,
        ..Default::default()
    };

    let (mut head_ms, mut native_ms, mut prefill_ms, mut generation_ms, mut teacher_ms, mut gte_ms) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut prompt_tokens = 0;
    let mut query_tokens = 0;
    for (i, turn) in turns.iter().enumerate() {
        let (prompt, q) = question_prompt(
            &llm,
            &turn.context,
            &turn.question,
            b.system_prompt.as_deref(),
            b.max_prompt_tokens,
            &count,
        )
        .unwrap();
        prompt_tokens += prompt.len();
        // Native: hidden states of the conversation prompt, pooled, through the head.
        let start = Instant::now();
        let x = context_features(
            &llm,
            &[prompt],
            &layers,
            b.pool,
            b.pool_k,
            Some(&[q]),
            1,
            false,
        )
        .unwrap();
        let after_prefill = Instant::now();
        let v = encode(&head, &x, &device).unwrap();
        head_ms.push(ms(after_prefill));
        native_ms.push(ms(start));
        assert_eq!(v.len(), teacher.dim());
        // Generate-then-encode: the rewrite prompt's prefill, the generated query, the teacher.
        let start = Instant::now();
        llm.forward(std::slice::from_ref(&rewrite_prompts[i]), &[], true)
            .unwrap();
        let prefill = ms(start);
        let start = Instant::now();
        let g = llm
            .generate(std::slice::from_ref(&rewrite_prompts[i]), &generate_options)
            .unwrap()
            .remove(0);
        let generate = ms(start);
        query_tokens += g.ids.len();
        let query = first_line(&g.text);
        let start = Instant::now();
        assert_eq!(
            teacher.encode(&[query.as_str()]).unwrap().concat().len(),
            teacher.dim()
        );
        let t = ms(start);
        prefill_ms.push(prefill);
        generation_ms.push((generate - prefill).max(0.0));
        teacher_ms.push(t);
        gte_ms.push(generate + t);
    }
    let rows = vec![
        Row::new(
            "native: head on the agent's hidden states",
            "ms/query",
            head_ms,
        ),
        Row::new("native: prefill + head", "ms/query", native_ms),
        Row::new("generate-then-encode: total", "ms/query", gte_ms),
        Row::new("generate-then-encode: prefill", "ms/query", prefill_ms),
        Row::new(
            "generate-then-encode: generation",
            "ms/query",
            generation_ms,
        ),
        Row::new("generate-then-encode: teacher", "ms/query", teacher_ms),
    ];
    let ratio = |name: &str, slow: &Row, fast: &Row, target| Ratio {
        name: name.into(),
        value: slow.median / fast.median,
        target,
    };
    let ratios = vec![
        ratio(
            "generate-then-encode / native head (speed-up)",
            &rows[2],
            &rows[0],
            Some(100.0),
        ),
        ratio(
            "generate-then-encode / native prefill + head (speed-up)",
            &rows[2],
            &rows[1],
            None,
        ),
    ];
    BenchFile {
        bench: "query_latency".into(),
        stack: format!("nr-backbone + nr-head, burn flex, {} threads, batch 1", common::threads()),
        workload: format!(
            "{} QReCC test turns with history ({:.0} prompt tokens, {:.1} generated tokens on average), layers {layers:?}, {:?} pooling, {:?} head, max {} new tokens",
            turns.len(),
            prompt_tokens as f64 / turns.len() as f64,
            query_tokens as f64 / turns.len() as f64,
            b.pool,
            head.config().kind,
            b.max_new_tokens
        ),
        rows,
        ratios,
        target_vs_reference: None,
    }
    .finish();
}
