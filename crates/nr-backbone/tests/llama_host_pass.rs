//! The decoder's host pass (bf16 projections, the AVX-512 attention kernel) on shapes the real
//! SmolLM2 file does not have: 128-wide heads and q/k/v biases (Qwen2's layout), a left-padded
//! batch, and a KV cache the burn path filled. Each is held to the f32 burn path on the same
//! random weights, and a cache extension to the whole-prompt pass.

mod common;

use burn::tensor::Device;
use common::rel_l2;
use nr_backbone::kernels::{Precision, bf16_supported};
use nr_backbone::llama::{GenerateOptions, Llm, PrefixCache};
use nr_backbone::synthetic::{LlamaShape, write_llama_gguf};

/// A random Qwen2 decoder of 2 layers with 2 query heads and 1 key/value head of width 128, in
/// f32 (with the folder that holds it), or `None` where the CPU cannot run the host pass.
fn qwen2_wide_heads() -> Option<(tempfile::TempDir, Llm)> {
    if !bf16_supported() {
        eprintln!("skipped: this CPU has no AVX-512 BF16 (the burn path serves it)");
        return None;
    }
    let shape = LlamaShape {
        hidden_size: 256,
        intermediate_size: 512,
        num_heads: 2,
        num_kv_heads: 1,
        ..LlamaShape::qwen2_tiny()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qwen2-wide.gguf");
    write_llama_gguf(&path, &shape, 11).unwrap();
    let llm = Llm::load(&path, &Device::flex()).unwrap();
    Some((dir, llm))
}

#[test]
fn wide_heads_with_biases_stay_close_to_f32_alone_and_left_padded() {
    let Some((_dir, mut llm)) = qwen2_wide_heads() else {
        return;
    };
    let prompts: Vec<Vec<u32>> = ["what is a llama, and where do llamas live?", "hi"]
        .iter()
        .map(|t| llm.tokenizer.encode(t).unwrap())
        .collect();
    let layers = [0, 1, 2];
    let reference = llm.forward(&prompts, &layers, true).unwrap();
    assert_eq!(llm.set_precision(Precision::Auto).unwrap(), Precision::Bf16);
    // Batched (the short prompt left-padded) and one at a time.
    let batched = llm.forward(&prompts, &layers, true).unwrap();
    for (i, prompt) in prompts.iter().enumerate() {
        let alone = llm
            .forward(std::slice::from_ref(prompt), &layers, true)
            .unwrap();
        for layer in layers {
            let want = &reference[i].hidden[&layer].data;
            let err = rel_l2(&batched[i].hidden[&layer].data, want);
            eprintln!("prompt {i} layer {layer}: relative L2 error {err:.2e}");
            // Layer 0 is the embedding lookup; the others carry bf16 rounding.
            assert!(
                err <= if layer == 0 { 0.0 } else { 2e-2 },
                "prompt {i} layer {layer}: {err}"
            );
            // Padding does not reach a row: batched and alone agree far below bf16's error.
            let padded = rel_l2(
                &batched[i].hidden[&layer].data,
                &alone[0].hidden[&layer].data,
            );
            assert!(
                padded < 1e-5,
                "prompt {i} layer {layer}: batched vs alone {padded}"
            );
        }
        let logits = rel_l2(
            batched[i].logits.as_ref().unwrap(),
            reference[i].logits.as_ref().unwrap(),
        );
        assert!(logits < 2e-2, "prompt {i}: logits {logits}");
    }
}

#[test]
fn a_cache_extension_equals_the_whole_prompt_and_generation_runs_on_the_host_cache() {
    let Some((_dir, mut llm)) = qwen2_wide_heads() else {
        return;
    };
    llm.set_precision(Precision::Auto).unwrap();
    let first = llm
        .tokenizer
        .encode("the first turn of a conversation")
        .unwrap();
    let whole = [
        first.clone(),
        llm.tokenizer.encode(" and the next one, longer").unwrap(),
    ]
    .concat();
    let mut cache = PrefixCache::default();
    llm.forward_extend(&mut cache, &first, &[2]).unwrap();
    let extended = llm.forward_extend(&mut cache, &whole, &[2]).unwrap();
    let reference = llm
        .forward(std::slice::from_ref(&whole), &[2], false)
        .unwrap();
    let all = &reference[0].hidden[&2];
    let new = &extended.hidden[&2];
    assert_eq!(new.len, whole.len() - first.len());
    assert_eq!(
        new.data,
        all.data[(all.len - new.len) * all.dim..],
        "bit for bit"
    );
    // Greedy generation (a batch of two, its cache on the host) is deterministic and equals
    // generating each prompt alone.
    let opts = GenerateOptions {
        max_new_tokens: 6,
        ..Default::default()
    };
    let both = llm
        .generate(&[first.clone(), whole.clone()], &opts)
        .unwrap();
    let alone = llm.generate(std::slice::from_ref(&whole), &opts).unwrap();
    assert_eq!(both[1].ids, alone[0].ids);
    assert!(!both[1].ids.is_empty());
}

#[test]
fn a_cache_moves_between_the_burn_path_and_the_host_pass() {
    let Some((_dir, mut llm)) = qwen2_wide_heads() else {
        return;
    };
    let first = llm.tokenizer.encode("a cache filled by one path").unwrap();
    let whole = [
        first.clone(),
        llm.tokenizer.encode(" and read by the other").unwrap(),
    ]
    .concat();
    let whole_in = |llm: &Llm| {
        llm.forward(std::slice::from_ref(&whole), &[2], false)
            .unwrap()
    };
    let f32_whole = whole_in(&llm);
    llm.set_precision(Precision::Auto).unwrap();
    let bf16_whole = whole_in(&llm);
    // Filled in f32 by burn, extended by the host pass; then filled by the host pass, extended
    // in f32: each tail is within bf16's error of the whole prompt in the extending precision.
    for (fill, extend, reference) in [
        (Precision::F32, Precision::Auto, &bf16_whole),
        (Precision::Auto, Precision::F32, &f32_whole),
    ] {
        let mut cache = PrefixCache::default();
        llm.set_precision(fill).unwrap();
        llm.forward_extend(&mut cache, &first, &[2]).unwrap();
        llm.set_precision(extend).unwrap();
        let tail = llm.forward_extend(&mut cache, &whole, &[2]).unwrap();
        let all = &reference[0].hidden[&2];
        let new = &tail.hidden[&2];
        assert_eq!(new.len, whole.len() - first.len());
        let err = rel_l2(&new.data, &all.data[(all.len - new.len) * all.dim..]);
        assert!(
            err < 2e-2,
            "filled in {fill:?}, extended in {extend:?}: {err}"
        );
    }
}
