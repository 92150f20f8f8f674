//! Random-weight models: the real models' shapes (checked against the real files), loadable by the
//! ordinary loaders, tokenizers that behave as documented, deterministic in the seed.

mod common;

use burn::tensor::Device;
use nr_backbone::gguf::GgufFile;
use nr_backbone::llama::{Llm, config_from_gguf};
use nr_backbone::synthetic::{BertShape, LlamaShape, write_bert_folder, write_llama_gguf};
use nr_backbone::teacher::{BertConfig, TeacherEncoder};

/// The random model of `shape` and the real file have the same hyper-parameters and weight count.
fn assert_shape_matches_real_gguf(file: &str, shape: &LlamaShape) {
    let real = GgufFile::open(&common::model_path(file)).unwrap();
    let config = config_from_gguf(&real).unwrap();
    assert_eq!(config.architecture, shape.family.architecture());
    assert_eq!(
        (
            config.vocab_size,
            config.hidden_size,
            config.intermediate_size,
            config.num_layers,
            config.num_heads,
            config.num_kv_heads,
            config.rope_theta as f32,
            config.max_position_embeddings,
        ),
        (
            shape.vocab_size,
            shape.hidden_size,
            shape.intermediate_size,
            shape.num_layers,
            shape.num_heads,
            shape.num_kv_heads,
            shape.rope_theta,
            shape.context_length,
        )
    );
    let real_params: u64 = real.tensor_infos().iter().map(|t| t.n_elements()).sum();
    assert_eq!(shape.parameters() as u64, real_params);
}

#[test]
fn smollm2_shape_matches_the_real_gguf() {
    assert_shape_matches_real_gguf(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        &LlamaShape::smollm2_135m(),
    );
}

#[test]
fn qwen2_5_coder_shape_matches_the_real_gguf() {
    assert_shape_matches_real_gguf(
        "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
        &LlamaShape::qwen2_5_1_5b(),
    );
}

#[test]
fn minilm_shape_matches_the_real_folder() {
    let dir = common::minilm_dir();
    let real = BertConfig::from_file(&dir.join("config.json")).unwrap();
    let shape = BertShape::minilm_l6();
    assert_eq!(
        (
            real.vocab_size,
            real.hidden_size,
            real.intermediate_size,
            real.num_hidden_layers,
            real.num_attention_heads,
            real.max_position_embeddings,
        ),
        (
            shape.vocab_size,
            shape.hidden_size,
            shape.intermediate_size,
            shape.num_layers,
            shape.num_heads,
            shape.max_positions,
        )
    );
}

/// Hidden states of the last layer for one chat prompt.
fn last_layer(llm: &Llm, text: &str) -> Vec<f32> {
    let ids = llm
        .chat_ids(&[serde_json::json!({"role": "user", "content": text})])
        .unwrap();
    let out = llm.forward(&[ids], &[llm.num_layers()], false).unwrap();
    out[0].hidden[&llm.num_layers()].data.clone()
}

#[test]
fn a_tiny_random_llama_loads_tokenizes_bytes_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let shape = LlamaShape::tiny();
    let path = dir.path().join("tiny.gguf");
    write_llama_gguf(&path, &shape, 7).unwrap();
    let file = GgufFile::open(&path).unwrap();
    let params: u64 = file.tensor_infos().iter().map(|t| t.n_elements()).sum();
    assert_eq!(params, shape.parameters() as u64);

    let device = Device::flex();
    let llm = Llm::load(&path, &device).unwrap();
    assert_eq!((llm.num_layers(), llm.hidden_size()), (2, 64));
    // No merges: one token per byte, specials whole.
    let ids = llm
        .chat_ids(&[serde_json::json!({"role": "user", "content": "hi"})])
        .unwrap();
    let prompt = llm
        .render_chat(&[serde_json::json!({"role": "user", "content": "hi"})])
        .unwrap();
    let specials = prompt.matches("<|im_start|>").count() + prompt.matches("<|im_end|>").count();
    let plain = prompt.replace("<|im_start|>", "").replace("<|im_end|>", "");
    assert_eq!(ids.len(), plain.len() + specials);
    assert_eq!(ids[0], 1, "<|im_start|> is id 1");
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 2, "two <|im_end|>");

    let a = last_layer(&llm, "what is a llama?");
    assert!(a.iter().all(|x| x.is_finite()));
    assert!(a.iter().any(|&x| x != 0.0));
    let same = {
        let again = dir.path().join("again.gguf");
        write_llama_gguf(&again, &shape, 7).unwrap();
        last_layer(&Llm::load(&again, &device).unwrap(), "what is a llama?")
    };
    assert_eq!(a, same, "the same seed gives the same model");
    let other = {
        let other = dir.path().join("other.gguf");
        write_llama_gguf(&other, &shape, 8).unwrap();
        last_layer(&Llm::load(&other, &device).unwrap(), "what is a llama?")
    };
    assert_ne!(a, other, "another seed gives another model");
}

#[test]
fn a_tiny_random_bert_folder_loads_as_a_teacher() {
    let dir = tempfile::tempdir().unwrap();
    write_bert_folder(dir.path(), &BertShape::tiny(), 3).unwrap();
    let teacher = TeacherEncoder::load(dir.path(), &Device::flex()).unwrap();
    // Lower-cased, split into word pieces of one letter; [CLS] = 2, [SEP] = 3.
    let ids = teacher.tokenize(&["Hi, ab"]).unwrap();
    let vocab_id = |piece: &str| -> u32 {
        let first = 5u32; // after [PAD] [UNK] [CLS] [SEP] [MASK]
        let symbols = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-/&%$#@*+=<>[]_";
        match piece.strip_prefix("##") {
            Some(c) => {
                first
                    + symbols.len() as u32
                    + "abcdefghijklmnopqrstuvwxyz0123456789".find(c).unwrap() as u32
            }
            None => first + symbols.find(piece).unwrap() as u32,
        }
    };
    let want: Vec<u32> = [2]
        .into_iter()
        .chain(["h", "##i", ",", "a", "##b"].map(vocab_id))
        .chain([3])
        .collect();
    assert_eq!(ids, vec![want]);
    let vectors = teacher
        .encode(&["a random sentence", "another one"])
        .unwrap();
    assert_eq!(vectors.len(), 2);
    for v in &vectors {
        assert_eq!(v.len(), 32);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "normalised: {norm}");
    }
    assert_ne!(vectors[0], vectors[1]);
}
