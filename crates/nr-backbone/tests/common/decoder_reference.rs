//! Checks of a decoder against a transformers reference file (the format of
//! `../shared/fixtures/smollm2_reference.json`: per case `input_ids`, `hidden_last_token` and
//! `hidden_mean` by layer, `logits_top10`, greedy ids with their margins), at the fixtures README's
//! tolerances.

use nr_backbone::llama::{GenerateOptions, Llm};

use super::{floats, ids, rel_l2};

/// The chat template renders each case's messages as the reference prompt, tokenized to its ids.
pub fn assert_chat_template_matches(llm: &Llm, cases: &[serde_json::Value]) {
    for (c, case) in cases.iter().enumerate() {
        let prompt = llm
            .render_chat(case["messages"].as_array().unwrap())
            .unwrap();
        assert_eq!(prompt, case["prompt"].as_str().unwrap(), "case {c}");
        assert_eq!(
            llm.tokenizer.encode(&prompt).unwrap(),
            ids(&case["input_ids"]),
            "case {c}"
        );
    }
}

/// Hidden states of the case's last token and mean over tokens within 1e-3 relative L2, at every
/// layer the case stores.
pub fn assert_hidden_states_match(llm: &Llm, case: &serde_json::Value, label: &str) {
    let layers: Vec<usize> = case["hidden_last_token"]
        .as_object()
        .unwrap()
        .keys()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(!layers.is_empty(), "{label}: no layer in the reference");
    let out = llm
        .forward(&[ids(&case["input_ids"])], &layers, false)
        .unwrap()
        .remove(0);
    for &layer in &layers {
        let want = floats(&case["hidden_last_token"][layer.to_string()]);
        let err = rel_l2(&out.hidden[&layer].last(), &want);
        assert!(
            err < 1e-3,
            "{label} layer {layer} last token: rel L2 {err:.2e}"
        );
    }
    for (layer, want) in case["hidden_mean"].as_object().unwrap() {
        let got = out.hidden[&layer.parse::<usize>().unwrap()].mean();
        let err = rel_l2(&got, &floats(want));
        assert!(err < 1e-3, "{label} layer {layer} mean: rel L2 {err:.2e}");
    }
}

/// The reference's 10 best next-token logits within `tol`, and our top 10 the same tokens up to
/// order among logits closer than `tol`.
pub fn assert_top10_logits_match(llm: &Llm, case: &serde_json::Value, tol: f32, label: &str) {
    let logits = llm
        .forward(&[ids(&case["input_ids"])], &[], true)
        .unwrap()
        .remove(0)
        .logits
        .unwrap();
    let want_ids = ids(&case["logits_top10"]["ids"]);
    let want_values = floats(&case["logits_top10"]["values"]);
    for (&id, &value) in want_ids.iter().zip(&want_values) {
        let got = logits[id as usize];
        assert!(
            (got - value).abs() < tol,
            "{label} token {id}: logit {got} vs {value}"
        );
    }
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    let tenth = want_values[9];
    for &id in &order[..10] {
        assert!(
            want_ids.contains(&id) || (logits[id as usize] - tenth).abs() < tol,
            "{label}: token {id} in our top 10 is not in the reference's"
        );
    }
}

/// Greedy generation of all cases as one batch equals the reference's tokens (under `key`) up to
/// each case's first step whose margin is under 0.05.
pub fn assert_greedy_tokens_match(llm: &Llm, cases: &[serde_json::Value], key: &str) {
    let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["input_ids"])).collect();
    let steps = cases[0][key].as_array().unwrap().len();
    let opts = GenerateOptions {
        max_new_tokens: steps,
        ..Default::default()
    };
    let out = llm.generate(&prompts, &opts).unwrap();
    for (c, (case, generated)) in cases.iter().zip(&out).enumerate() {
        let want = ids(&case[key]);
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
