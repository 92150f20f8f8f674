//! Per-query latency of making the query vector, batch 1, on QReCC test turns with history:
//! native retrieval (the encoder of experiments/qrecc-offline.toml, timed by
//! `NativeEncoder::query_vector`, the very function the agent and the pipeline's report call)
//! against generate-then-encode (prefill + greedy generation of a standalone query + the teacher
//! on it).
//!
//! The head and lexicon have random weights: their cost does not depend on their values. Each
//! row's spread is over the turns.
//!
//! `cargo bench -p nr-experiments --bench query_latency`; writes results/bench/query_latency.json.

mod common;

use std::time::Instant;

use burn::tensor::Device;
use common::{BenchFile, Ratio, Row, model, qrecc};
use nr_backbone::llama::PrefixCache;
use nr_backbone::llama::{GenerateOptions, Llm};
use nr_backbone::teacher::TeacherEncoder;
use nr_experiments::manifest::Manifest;
use nr_experiments::native::{
    NativeEncoder, Standardizer, conversations, first_line, model_name, query_vectors_made,
};
use nr_head::{ConversationWeights, LexicalMix, Lexicon};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The shipped manifest's encoder with random weights (and a random lexicon when it has one).
fn random_encoder(manifest: &Manifest, llm: &Llm, teacher: &TeacherEncoder) -> NativeEncoder {
    let device = Device::default();
    let features = manifest.backbone.feature_spec(llm.num_layers()).unwrap();
    let config = manifest
        .head
        .config(llm.hidden_size(), teacher.dim(), features.layers.len())
        .unwrap();
    let width = features.layers.len() * llm.hidden_size();
    let standardizer = Standardizer {
        mean: vec![0.0; width],
        std: vec![1.0; width],
    };
    let meta = features.head_meta(
        &model_name(&manifest.backbone.path),
        llm.hidden_size(),
        &model_name(&manifest.teacher.path),
        teacher.dim(),
    );
    let lexicon = manifest.lexicon.enabled.then(|| {
        let mut rng = StdRng::seed_from_u64(0);
        let vocab = llm.tokenizer.vocab_size();
        let table = (0..vocab * teacher.dim())
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let mix = LexicalMix {
            conversation: ConversationWeights {
                user: 0.4,
                assistant: 0.7,
                decay: 0.75,
            },
            dense_weight: 1.0,
        };
        (Lexicon::new(teacher.dim(), table).unwrap(), mix)
    });
    NativeEncoder::new(
        features,
        meta,
        standardizer,
        config.init(&device).unwrap(),
        lexicon,
        device,
    )
    .unwrap()
}

fn main() {
    let n = common::env_usize("NR_BENCH_TURNS", 16);
    let manifest =
        Manifest::load(&common::root().join("experiments/qrecc-offline.toml"), &[]).unwrap();
    let device = Device::default();
    let llm = Llm::load(&model("SmolLM2-135M-Instruct.Q4_1.gguf"), &device).unwrap();
    let teacher = TeacherEncoder::load(&model("all-MiniLM-L6-v2"), &device).unwrap();
    let encoder = random_encoder(&manifest, &llm, &teacher);
    let turns: Vec<_> = nr_data::read_qrecc_turns(qrecc("qrecc_test.json"))
        .unwrap()
        .into_iter()
        .filter(|t| !t.context.is_empty())
        .take(n)
        .collect();
    let convs = conversations(&turns);
    let features = &encoder.features;
    let rewrite_prompts = features.rewrite_prompts(&llm, &convs).unwrap();
    let generate_options = GenerateOptions {
        max_new_tokens: features.max_new_tokens,
        ..Default::default()
    };

    let (mut head_ms, mut native_ms, mut prefill_ms, mut generation_ms, mut teacher_ms, mut gte_ms) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut fresh_ms = vec![];
    // The agent's cache: what the LLM read of the earlier turns (consecutive turns of a
    // conversation run only their new tokens).
    let mut agent_cache = PrefixCache::default();
    let mut prompt_tokens = 0;
    let mut query_tokens = 0;
    let made_before = query_vectors_made();
    for (i, conversation) in convs.iter().enumerate() {
        prompt_tokens += features
            .source_prompts(&llm, std::slice::from_ref(conversation))
            .unwrap()[0]
            .len();
        // Native: the agent's own call, with its cache; then without one (a conversation's first
        // turn, or an agent that keeps nothing between turns).
        let v = encoder
            .query_vector(&llm, *conversation, &mut agent_cache)
            .unwrap();
        assert_eq!(v.vector.len(), teacher.dim());
        head_ms.push(v.latency.head_ms);
        native_ms.push(v.latency.total());
        let fresh = encoder
            .query_vector(&llm, *conversation, &mut PrefixCache::default())
            .unwrap();
        fresh_ms.push(fresh.latency.total());
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
    assert_eq!(
        query_vectors_made() - made_before,
        2 * convs.len(),
        "every native figure comes from NativeEncoder::query_vector"
    );
    let rows = vec![
        Row::new(
            "native: head (+ lexicon) on the agent's hidden states",
            "ms/query",
            head_ms,
        ),
        Row::new(
            "native: prefill + head, the agent's cache of earlier turns",
            "ms/query",
            native_ms,
        ),
        Row::new("native: prefill + head, no cache", "ms/query", fresh_ms),
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
            &rows[3],
            &rows[0],
            Some(100.0),
        ),
        ratio(
            "generate-then-encode / native prefill + head with the agent's cache (speed-up)",
            &rows[3],
            &rows[1],
            None,
        ),
        ratio(
            "generate-then-encode / native prefill + head without a cache (speed-up)",
            &rows[3],
            &rows[2],
            None,
        ),
    ];
    BenchFile {
        bench: "query_latency".into(),
        stack: format!(
            "nr-backbone + nr-head, burn flex, {} threads, batch 1",
            common::threads()
        ),
        workload: format!(
            "{} QReCC test turns with history ({:.0} prompt tokens, {:.1} generated tokens on average), layers {:?}, {:?} pooling, {:?} head{}, max {} new tokens",
            turns.len(),
            prompt_tokens as f64 / turns.len() as f64,
            query_tokens as f64 / turns.len() as f64,
            features.layers,
            features.pool,
            encoder.head.config().kind,
            if encoder.lexicon.is_some() { " + lexicon" } else { "" },
            features.max_new_tokens
        ),
        rows,
        ratios,
        target_vs_reference: None,
    }
    .finish();
}
