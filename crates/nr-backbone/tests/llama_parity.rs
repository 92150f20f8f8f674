//! Parity of the GGUF-loaded SmolLM2 decoder with transformers (../shared/fixtures/smollm2_reference.json):
//! prompts, ids, hidden states, logits and greedy tokens; and batched == one by one.

mod common;

use std::sync::OnceLock;

use burn::tensor::Device;
use common::decoder_reference::{
    assert_chat_template_matches, assert_greedy_tokens_match, assert_hidden_states_match,
    assert_top10_logits_match,
};
use common::{fixture, floats, ids, model_path, rel_l2};
use nr_backbone::llama::{GenerateOptions, Llm};

fn llm() -> &'static Llm {
    static LLM: OnceLock<Llm> = OnceLock::new();
    LLM.get_or_init(|| {
        Llm::load(
            &model_path("SmolLM2-135M-Instruct.Q4_1.gguf"),
            &Device::flex(),
        )
        .unwrap()
    })
}

fn reference() -> &'static serde_json::Value {
    static REF: OnceLock<serde_json::Value> = OnceLock::new();
    REF.get_or_init(|| fixture("smollm2_reference.json"))
}

fn cases() -> &'static [serde_json::Value] {
    reference()["cases"].as_array().unwrap()
}

#[test]
fn chat_template_renders_the_reference_prompts_and_ids() {
    assert_chat_template_matches(llm(), cases());
}

#[test]
fn hidden_states_match_transformers_at_every_stored_layer() {
    let layers: Vec<&String> = cases()[0]["hidden_last_token"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(layers, ["0", "1", "15", "29", "30"]);
    for (c, case) in cases().iter().enumerate() {
        assert_hidden_states_match(llm(), case, &format!("case {c}"));
    }
}

#[test]
fn top10_logits_match_transformers() {
    for (c, case) in cases().iter().enumerate() {
        assert_top10_logits_match(llm(), case, 1e-2, &format!("case {c}"));
    }
}

#[test]
fn greedy_tokens_match_transformers_up_to_the_first_near_tie() {
    // All cases generated as one left-padded batch with a shared KV cache.
    assert_greedy_tokens_match(llm(), cases(), "greedy_24");
}

#[test]
fn batched_forward_equals_one_by_one() {
    let prompts: Vec<Vec<u32>> = cases().iter().map(|c| ids(&c["input_ids"])).collect();
    assert!(
        prompts.iter().map(Vec::len).min() != prompts.iter().map(Vec::len).max(),
        "needs padding to test it"
    );
    let layers = [0, 15, 30];
    let batched = llm().forward(&prompts, &layers, true).unwrap();
    for (c, prompt) in prompts.iter().enumerate() {
        let single = llm()
            .forward(std::slice::from_ref(prompt), &layers, true)
            .unwrap()
            .remove(0);
        for layer in layers {
            let (a, b) = (&batched[c].hidden[&layer], &single.hidden[&layer]);
            assert_eq!(a.len, prompt.len());
            let err = rel_l2(&a.data, &b.data);
            assert!(
                err < 1e-5,
                "case {c} layer {layer}: batched vs single rel L2 {err:.2e}"
            );
        }
        let err = rel_l2(
            batched[c].logits.as_ref().unwrap(),
            single.logits.as_ref().unwrap(),
        );
        assert!(
            err < 1e-5,
            "case {c} logits: batched vs single rel L2 {err:.2e}"
        );
    }
}

#[test]
fn generated_token_hidden_states_equal_a_forward_over_prompt_plus_reply() {
    let prompt = ids(&cases()[2]["input_ids"]);
    let opts = GenerateOptions {
        max_new_tokens: 6,
        collect_layers: vec![15, 30],
        ..Default::default()
    };
    let generated = llm()
        .generate(std::slice::from_ref(&prompt), &opts)
        .unwrap()
        .remove(0);
    let n = generated.ids.len();
    assert!(n > 0);
    let full: Vec<u32> = prompt.iter().chain(&generated.ids).copied().collect();
    let forward = llm().forward(&[full], &[15, 30], false).unwrap().remove(0);
    for layer in [15, 30] {
        let states = &generated.hidden[&layer];
        assert_eq!(states.len(), n);
        for (t, state) in states.iter().enumerate() {
            let want = forward.hidden[&layer].token(prompt.len() + t);
            let err = rel_l2(state, want);
            assert!(
                err < 1e-4,
                "layer {layer} generated token {t}: rel L2 {err:.2e}"
            );
        }
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_temperature_zero_is_greedy() {
    use nr_backbone::llama::Sampling;
    let prompt = ids(&cases()[0]["input_ids"]);
    let sampled = |seed| {
        let opts = GenerateOptions {
            max_new_tokens: 8,
            sampling: Sampling::TopP {
                temperature: 0.9,
                top_p: 0.95,
                seed,
            },
            ..Default::default()
        };
        llm()
            .generate(std::slice::from_ref(&prompt), &opts)
            .unwrap()
            .remove(0)
            .ids
    };
    assert_eq!(sampled(11), sampled(11));
    let cold = GenerateOptions {
        max_new_tokens: 3,
        sampling: Sampling::TopP {
            temperature: 0.0,
            top_p: 0.9,
            seed: 1,
        },
        ..Default::default()
    };
    let greedy = ids(&cases()[0]["greedy_24"]);
    assert_eq!(
        llm()
            .generate(std::slice::from_ref(&prompt), &cold)
            .unwrap()[0]
            .ids,
        greedy[..3]
    );
}

#[test]
fn extracting_a_middle_layer_alone_equals_the_full_pass() {
    // forward() without logits stops after the deepest requested layer.
    let prompt = ids(&cases()[1]["input_ids"]);
    let early = llm()
        .forward(std::slice::from_ref(&prompt), &[1, 15], false)
        .unwrap()
        .remove(0);
    let full = llm()
        .forward(std::slice::from_ref(&prompt), &[1, 15], true)
        .unwrap()
        .remove(0);
    for layer in [1, 15] {
        assert_eq!(early.hidden[&layer], full.hidden[&layer], "layer {layer}");
    }
    let want = floats(&cases()[1]["hidden_last_token"]["15"]);
    assert!(rel_l2(&early.hidden[&15].last(), &want) < 1e-3);
}
