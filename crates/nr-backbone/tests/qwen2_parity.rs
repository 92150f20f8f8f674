//! The qwen2 architecture (q/k/v biases, untied output, the Qwen2 pre-tokenizer) against
//! transformers: a tiny random qwen2 GGUF written by the project's writer (reference:
//! tests/fixtures/qwen2_tiny_reference.json), and the real Qwen2.5-Coder-1.5B-Instruct Q4_K_M file
//! (tests/fixtures/qwen2_5_coder_1_5b_reference.json; `scripts/fetch-models.sh --qwen`). Both
//! references are written by scripts/reference/qwen2_reference.py.

mod common;

use std::sync::OnceLock;

use burn::tensor::Device;
use common::decoder_reference::{
    assert_chat_template_matches, assert_greedy_tokens_match, assert_hidden_states_match,
    assert_top10_logits_match,
};
use common::{ids, local_fixture, model_path};
use nr_backbone::gguf::GgufFile;
use nr_backbone::llama::{Llm, config_from_gguf};
use nr_backbone::synthetic::{LlamaShape, write_llama_gguf};
use sha2::{Digest, Sha256};

const QWEN_FILE: &str = "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf";

fn sha256_hex(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_tiny_qwen2_matches_transformers_at_every_layer_and_in_its_logits() {
    let reference = local_fixture("qwen2_tiny_reference.json");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qwen2-tiny.gguf");
    let shape = LlamaShape::qwen2_tiny();
    write_llama_gguf(&path, &shape, 7).unwrap();
    assert_eq!(
        sha256_hex(&path),
        reference["file_sha256"].as_str().unwrap(),
        "the writer no longer writes the file the reference was computed on"
    );
    let file = GgufFile::open(&path).unwrap();
    let params: u64 = file.tensor_infos().iter().map(|t| t.n_elements()).sum();
    assert_eq!(params, shape.parameters() as u64);
    let config = config_from_gguf(&file).unwrap();
    assert_eq!(config.architecture, "qwen2");
    assert!(config.attention_bias);

    let llm = Llm::load(&path, &Device::flex()).unwrap();
    let layers: Vec<u64> = reference["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap())
        .collect();
    assert_eq!(layers, [0, 1, 2]);
    for (c, case) in reference["cases"].as_array().unwrap().iter().enumerate() {
        assert_hidden_states_match(&llm, case, &format!("tiny case {c}"));
        // Logits of a random model are ~0.1: 1e-4 is the reference's 1e-3 relative.
        assert_top10_logits_match(&llm, case, 1e-4, &format!("tiny case {c}"));
    }
}

fn qwen() -> &'static Llm {
    static LLM: OnceLock<Llm> = OnceLock::new();
    LLM.get_or_init(|| Llm::load(&model_path(QWEN_FILE), &Device::flex()).unwrap())
}

fn qwen_reference() -> &'static serde_json::Value {
    static REF: OnceLock<serde_json::Value> = OnceLock::new();
    REF.get_or_init(|| local_fixture("qwen2_5_coder_1_5b_reference.json"))
}

fn qwen_cases() -> &'static [serde_json::Value] {
    qwen_reference()["cases"].as_array().unwrap()
}

#[test]
fn qwen2_5_coder_tokenizer_matches_transformers_on_the_files_own_vocabulary() {
    let file = GgufFile::open(&model_path(QWEN_FILE)).unwrap();
    assert_eq!(
        file.get_str("tokenizer.ggml.pre").unwrap(),
        "qwen2",
        "the real file is the qwen2 pre-tokenizer's test"
    );
    let tokenizer = &qwen().tokenizer;
    for case in qwen_reference()["tokenizer"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got = tokenizer.encode(text).unwrap();
        assert_eq!(got, ids(&case["ids"]), "ids of {text:?}");
        assert_eq!(
            tokenizer.decode(&got).unwrap(),
            case["decoded"].as_str().unwrap(),
            "decoded {text:?}"
        );
    }
}

#[test]
fn qwen2_5_coder_chat_template_renders_the_reference_prompts_and_ids() {
    assert_chat_template_matches(qwen(), qwen_cases());
}

#[test]
fn qwen2_5_coder_hidden_states_logits_and_greedy_tokens_match_transformers() {
    for (c, case) in qwen_cases().iter().enumerate() {
        assert_hidden_states_match(qwen(), case, &format!("case {c}"));
        assert_top10_logits_match(qwen(), case, 1e-2, &format!("case {c}"));
    }
    assert_greedy_tokens_match(qwen(), qwen_cases(), "greedy");
}
