//! Conversation-incremental prefill: reading the turns of real QReCC conversations one after the
//! other with a `PrefixCache` gives the hidden states of a fresh forward pass over each turn's
//! whole prompt (within the batching tolerance of the parity tests), at every layer the heads
//! read, while running only each turn's new tokens.

mod common;

use burn::tensor::Device;
use common::{model_path, rel_l2};
use nr_backbone::llama::{Llm, PrefixCache};
use nr_data::{QreccTurn, conversation_messages};

/// The turns of the first `n` test conversations with at least four turns.
fn conversations(n: usize) -> Vec<Vec<QreccTurn>> {
    let turns = nr_data::read_qrecc_turns(nr_data::qrecc_offline("qrecc_test.json")).unwrap();
    let mut by_conv: Vec<Vec<QreccTurn>> = Vec::new();
    for t in turns {
        match by_conv.last_mut() {
            Some(c) if c[0].conversation_no == t.conversation_no => c.push(t),
            _ => by_conv.push(vec![t]),
        }
    }
    by_conv
        .into_iter()
        .filter(|c| c.len() >= 4)
        .take(n)
        .map(|c| c.into_iter().take(4).collect())
        .collect()
}

#[test]
fn turn_by_turn_prefill_equals_the_whole_prompt_at_every_layer() {
    let llm = Llm::load(
        &model_path("SmolLM2-135M-Instruct.Q4_1.gguf"),
        &Device::flex(),
    )
    .unwrap();
    let layers = [0, 15, 16, 24, 30];
    let mut cache = PrefixCache::default();
    let mut worst = 0.0f64;
    let mut prompts = 0;
    for conversation in conversations(2) {
        for turn in &conversation {
            let prompt = llm
                .chat_ids(&conversation_messages(&turn.context, &turn.question, None))
                .unwrap();
            let before = cache.tokens().len();
            let extended = llm.forward_extend(&mut cache, &prompt, &layers).unwrap();
            let whole = llm
                .forward(std::slice::from_ref(&prompt), &layers, false)
                .unwrap()
                .remove(0);
            for &layer in &layers {
                let new = &extended.hidden[&layer];
                let all = &whole.hidden[&layer];
                assert_eq!(all.len, prompt.len());
                let tail = &all.data[(all.len - new.len) * all.dim..];
                let err = rel_l2(&new.data, tail);
                worst = worst.max(err);
                assert!(
                    err < 1e-4,
                    "conversation {} turn {} layer {layer}: relative L2 error {err}",
                    turn.conversation_no,
                    turn.turn_no
                );
            }
            // A later turn of the same conversation runs only its new tokens.
            if turn.turn_no > 1 {
                assert_eq!(before + extended.hidden[&0].len, prompt.len());
            }
            prompts += 1;
        }
    }
    let stats = cache.stats;
    assert_eq!(
        stats.fresh, 1,
        "one fresh prefill per conversation after the first"
    );
    assert!(stats.reused > stats.computed / 2, "{stats:?}");
    eprintln!("{prompts} prompts: {stats:?}, worst relative L2 error {worst:.2e}");
}

#[test]
fn a_prompt_that_does_not_extend_the_cache_is_read_afresh() {
    let llm = Llm::load(
        &model_path("SmolLM2-135M-Instruct.Q4_1.gguf"),
        &Device::flex(),
    )
    .unwrap();
    let mut cache = PrefixCache::default();
    let a = llm
        .tokenizer
        .encode("Who wrote Dune? Frank Herbert.")
        .unwrap();
    let b = llm.tokenizer.encode("Where is Paris?").unwrap();
    let out = llm.forward_extend(&mut cache, &a, &[30]).unwrap();
    assert_eq!(out.hidden[&30].len, a.len());
    // The same prompt again: its last token is run again.
    let again = llm.forward_extend(&mut cache, &a, &[30]).unwrap();
    assert_eq!(again.hidden[&30].len, 1);
    assert!(rel_l2(&again.hidden[&30].last(), &out.hidden[&30].last()) < 1e-4);
    let other = llm.forward_extend(&mut cache, &b, &[30]).unwrap();
    assert_eq!(other.hidden[&30].len, b.len());
    assert_eq!(cache.stats.fresh, 2);
    // Deeper layers than the cache holds: read afresh too.
    let mut shallow = PrefixCache::default();
    llm.forward_extend(&mut shallow, &a, &[10]).unwrap();
    let longer = [a.clone(), b.clone()].concat();
    let deeper = llm.forward_extend(&mut shallow, &longer, &[20]).unwrap();
    assert_eq!(deeper.hidden[&20].len, longer.len());
    assert!(llm.forward_extend(&mut shallow, &[], &[1]).is_err());
}

#[test]
fn prompts_that_share_a_beginning_reuse_it_and_equal_the_whole_prompt() {
    let llm = Llm::load(
        &model_path("SmolLM2-135M-Instruct.Q4_1.gguf"),
        &Device::flex(),
    )
    .unwrap();
    let layers = [0, 16, 24, 30];
    let chat = |text: &str| {
        llm.chat_ids(&[serde_json::json!({"role": "user", "content": text})])
            .unwrap()
    };
    // One-message prompts share the template's system part and the user header.
    let first = chat("Who wrote the novel Dune?");
    let second = chat("What is the boiling point of water at sea level?");
    let shared = first
        .iter()
        .zip(&second)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(shared > 10, "the system part is shared: {shared} tokens");
    let mut cache = PrefixCache::default();
    llm.forward_extend(&mut cache, &first, &layers).unwrap();
    let out = llm.forward_extend(&mut cache, &second, &layers).unwrap();
    let whole = llm
        .forward(std::slice::from_ref(&second), &layers, false)
        .unwrap()
        .remove(0);
    for layer in layers {
        let (new, all) = (&out.hidden[&layer], &whole.hidden[&layer]);
        assert_eq!(new.len, second.len() - shared, "layer {layer}");
        let err = rel_l2(&new.data, &all.data[shared * all.dim..]);
        assert!(err < 1e-4, "layer {layer}: relative L2 error {err}");
    }
    assert_eq!(cache.tokens(), &second[..]);
    assert_eq!(cache.stats.fresh, 1);
    assert_eq!(cache.stats.reused, shared);
    // Back to the first prompt: the shorter common part is kept, the rest recomputed.
    let back = llm.forward_extend(&mut cache, &first, &layers).unwrap();
    assert_eq!(back.hidden[&30].len, first.len() - shared);
}
