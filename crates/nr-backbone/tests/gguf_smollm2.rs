//! The real SmolLM2-135M-Instruct Q4_1 GGUF: header facts, de-quantised values against
//! independent references, and tokenizer parity with the transformers fixture.

// Reference values are written exactly as the oracle printed them (all exact in f32).
#![allow(clippy::excessive_precision)]

use std::path::PathBuf;
use std::sync::OnceLock;

use nr_backbone::gguf::{GgmlType, GgufFile, GgufTokenizer};
use nr_backbone::weights::WeightSource;
use serde_json::Value;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf"
);

fn model() -> &'static GgufFile {
    static FILE: OnceLock<GgufFile> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = PathBuf::from(MODEL);
        assert!(
            path.is_file(),
            "{} is missing: run `just models` (scripts/fetch-models.sh)",
            path.display()
        );
        GgufFile::open(&path).unwrap()
    })
}

fn tokenizer() -> &'static GgufTokenizer {
    static TOKENIZER: OnceLock<GgufTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| GgufTokenizer::from_gguf(model()).unwrap())
}

fn fixture() -> &'static Value {
    static FIXTURE_JSON: OnceLock<Value> = OnceLock::new();
    FIXTURE_JSON.get_or_init(|| {
        let path = nr_data::shared_path("fixtures/smollm2_reference.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    })
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn header_facts() {
    let f = model();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.metadata_entries().count(), 33);
    assert_eq!(f.tensor_infos().len(), 272);
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(f.get_usize("llama.embedding_length").unwrap(), 576);
    assert_eq!(f.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(f.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(f.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(f.get_u32("llama.context_length").unwrap(), 8192);
    assert_eq!(f.get_u32("llama.vocab_size").unwrap(), 49152);
    assert_eq!(f.get_u32("llama.rope.dimension_count").unwrap(), 64);
    assert_eq!(f.get_f32("llama.rope.freq_base").unwrap(), 100000.0);
    assert_eq!(
        f.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap(),
        1e-5
    );
    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(f.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    assert_eq!(
        f.get_string_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );
    assert_eq!(
        f.get_string_array("tokenizer.ggml.merges").unwrap().len(),
        48900
    );
    assert_eq!(
        f.get_string_array("tokenizer.ggml.merges").unwrap()[0],
        "Ġ t"
    );

    let count = |ty| {
        f.tensor_infos()
            .iter()
            .filter(|t| t.ggml_type == ty)
            .count()
    };
    assert_eq!(
        (
            count(GgmlType::Q4_1),
            count(GgmlType::Q8_0),
            count(GgmlType::F32)
        ),
        (210, 1, 61)
    );
    assert!(
        !f.contains("output.weight"),
        "the LM head is tied to token_embd"
    );
    let embd = f.tensor_info("token_embd.weight").unwrap();
    assert_eq!(embd.dims, [576, 49152]);
    assert_eq!(embd.ggml_type, GgmlType::Q8_0);
    assert_eq!(embd.shape(), [49152, 576]);
    let down = f.tensor_info("blk.29.ffn_down.weight").unwrap();
    assert_eq!(
        (down.shape(), down.ggml_type),
        (vec![576, 1536], GgmlType::Q4_1)
    );
    assert_eq!(
        f.tensor_info("blk.0.attn_k.weight").unwrap().shape(),
        [192, 576]
    );
}

#[test]
fn chat_template_is_the_chatml_template() {
    let template = model()
        .chat_template()
        .unwrap()
        .expect("tokenizer.chat_template present");
    assert!(
        template.starts_with("{% for message in messages %}"),
        "{template}"
    );
    assert!(template.contains(
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    ));
    assert!(
        template.contains("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
    assert!(model().chat_template_names().is_empty());
}

#[test]
fn token_embedding_rows_equal_the_reference_layer_0_hidden_states() {
    // Hidden state 0 of the last prompt token is its embedding row (transformers de-quantised
    // the same file; the fixture rounds to 6 decimals).
    let embd = model()
        .tensor_with_shape("token_embd.weight", &[49152, 576])
        .unwrap();
    for case in fixture()["cases"].as_array().unwrap() {
        let last = *ids(&case["input_ids"]).last().unwrap() as usize;
        let reference: Vec<f64> = case["hidden_last_token"]["0"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(reference.len(), 576);
        let row = &embd.data[last * 576..(last + 1) * 576];
        for (i, (&x, &r)) in row.iter().zip(&reference).enumerate() {
            assert!(
                (x as f64 - r).abs() <= 6e-7,
                "token {last} element {i}: {x} vs {r}"
            );
        }
    }
}

#[test]
fn q4_1_and_f32_tensors_match_gguf_py() {
    // Values from gguf-py 0.19 `gguf.quants.dequantize` on this file (reshaped to PyTorch order).
    let f = model();
    let q = f
        .tensor_with_shape("blk.0.attn_q.weight", &[576, 576])
        .unwrap();
    assert_eq!(
        &q.data[..6],
        &[
            -0.0963134765625,
            0.1573486328125,
            -0.0963134765625,
            -0.73046875,
            1.1719970703125,
            -0.0963134765625
        ]
    );
    assert_eq!(
        &q.data[576 * 576 - 4..],
        &[
            0.009185791015625,
            -0.096832275390625,
            -0.14984130859375,
            -0.255859375
        ]
    );
    let sum: f64 = q.data.iter().map(|&v| v as f64).sum();
    assert!((sum - 59.22322082519531).abs() < 1e-3, "sum {sum}");

    let down = f
        .tensor_with_shape("blk.29.ffn_down.weight", &[576, 1536])
        .unwrap();
    assert_eq!(
        &down.data[3 * 1536 + 100..3 * 1536 + 104],
        &[
            0.20257568359375,
            0.28302001953125,
            0.2427978515625,
            0.04168701171875
        ]
    );
    let sum: f64 = down.data.iter().map(|&v| v as f64).sum();
    assert!((sum - 49.83570861816406).abs() < 1e-3, "sum {sum}");

    let norm = f.tensor_with_shape("output_norm.weight", &[576]).unwrap();
    assert_eq!(&norm.data[..4], &[1.7578125, 1.8203125, 1.78125, 1.6015625]);
}

#[test]
fn special_tokens_and_flags() {
    let t = tokenizer();
    let s = t.special();
    assert_eq!(
        (s.bos, s.eos, s.pad, s.unk),
        (Some(1), Some(2), Some(2), Some(0))
    );
    assert!(!s.add_bos && !s.add_eos);
    assert_eq!(t.vocab_size(), 49152);
    assert_eq!(t.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(t.token_to_id("<|im_end|>"), Some(2));
    assert_eq!(t.id_to_token(16).as_deref(), Some("<empty_output>"));
    // add_bos_token is false: asking for special tokens adds nothing.
    assert_eq!(t.encode("Hello", true).unwrap(), [19556]);
}

#[test]
fn tokenizer_cases_match_transformers() {
    let t = tokenizer();
    let cases = fixture()["tokenizer"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            t.encode(text, true).unwrap(),
            ids(&case["ids"]),
            "ids of {text:?}"
        );
        let decoded = t.decode(&ids(&case["ids"]), true).unwrap();
        assert_eq!(
            decoded,
            case["decoded"].as_str().unwrap(),
            "decode of {text:?}"
        );
        assert_eq!(decoded, text, "round trip of {text:?}");
    }
    // The toolchain note's check: digits are split one by one, no prefix space.
    assert_eq!(
        t.encode("Hello world! 12345", false).unwrap(),
        [19556, 905, 17, 216, 33, 34, 35, 36, 37]
    );
}

#[test]
fn rendered_chat_prompts_encode_to_the_reference_input_ids() {
    let t = tokenizer();
    let cases = fixture()["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let expected = ids(&case["input_ids"]);
        assert_eq!(
            t.encode(prompt, true).unwrap(),
            expected,
            "prompt {prompt:?}"
        );
        assert_eq!(t.decode(&expected, false).unwrap(), prompt);
        let without_special = t.decode(&expected, true).unwrap();
        assert!(
            !without_special.contains("<|im_start|>") && without_special.contains("assistant\n")
        );
    }
}
