//! Parity of the GGUF-loaded SmolLM2 decoder with transformers (../shared/fixtures/smollm2_reference.json):
//! prompts, ids, hidden states, logits and greedy tokens; and batched == one by one.

mod common;

use std::sync::OnceLock;

use burn::tensor::Device;
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
    for case in cases() {
        let prompt = llm()
            .render_chat(case["messages"].as_array().unwrap())
            .unwrap();
        assert_eq!(prompt, case["prompt"].as_str().unwrap());
        assert_eq!(
            llm().tokenizer.encode(&prompt).unwrap(),
            ids(&case["input_ids"])
        );
    }
}

#[test]
fn hidden_states_match_transformers_at_every_stored_layer() {
    let layers: Vec<usize> = reference()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(layers, [0, 1, 15, 29, 30]);
    for (c, case) in cases().iter().enumerate() {
        let out = llm()
            .forward(&[ids(&case["input_ids"])], &layers, false)
            .unwrap()
            .remove(0);
        for &layer in &layers {
            let want = floats(&case["hidden_last_token"][layer.to_string()]);
            let err = rel_l2(&out.hidden[&layer].last(), &want);
            assert!(
                err < 1e-3,
                "case {c} layer {layer} last token: rel L2 error {err:.2e}"
            );
        }
        for (layer, want) in case["hidden_mean"].as_object().unwrap() {
            let got = out.hidden[&layer.parse::<usize>().unwrap()].mean();
            let err = rel_l2(&got, &floats(want));
            assert!(
                err < 1e-3,
                "case {c} layer {layer} mean: rel L2 error {err:.2e}"
            );
        }
    }
}

#[test]
fn top10_logits_match_transformers() {
    for (c, case) in cases().iter().enumerate() {
        let out = llm()
            .forward(&[ids(&case["input_ids"])], &[], true)
            .unwrap()
            .remove(0);
        let logits = out.logits.unwrap();
        let want_ids = ids(&case["logits_top10"]["ids"]);
        let want_values = floats(&case["logits_top10"]["values"]);
        for (&id, &value) in want_ids.iter().zip(&want_values) {
            let got = logits[id as usize];
            assert!(
                (got - value).abs() < 1e-2,
                "case {c} token {id}: logit {got} vs {value}"
            );
        }
        // Our top-10 is the reference's, up to order among logits closer than the tolerance.
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
        let tenth = want_values[9];
        for &id in &order[..10] {
            assert!(
                want_ids.contains(&id) || (logits[id as usize] - tenth).abs() < 1e-2,
                "case {c}: token {id} in our top 10 is not in the reference's"
            );
        }
    }
}

#[test]
fn greedy_tokens_match_transformers_up_to_the_first_near_tie() {
    let prompts: Vec<Vec<u32>> = cases().iter().map(|c| ids(&c["input_ids"])).collect();
    let opts = GenerateOptions {
        max_new_tokens: 24,
        ..Default::default()
    };
    // All cases generated as one left-padded batch with a shared KV cache.
    let out = llm().generate(&prompts, &opts).unwrap();
    for (c, (case, generated)) in cases().iter().zip(&out).enumerate() {
        let want = ids(&case["greedy_24"]);
        let margins = floats(&case["greedy_margins"]);
        let stable = margins.iter().position(|&m| m < 0.05).unwrap_or(want.len());
        assert!(
            stable > 0,
            "case {c} has a near-tie at step 0: nothing to compare"
        );
        assert!(
            generated.ids.len() >= stable,
            "case {c}: stopped after {} tokens",
            generated.ids.len()
        );
        assert_eq!(
            generated.ids[..stable],
            want[..stable],
            "case {c}: greedy tokens differ before step {stable}"
        );
    }
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
