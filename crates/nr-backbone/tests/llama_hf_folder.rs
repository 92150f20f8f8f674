//! The HF-folder loader against the GGUF loader: a 2-layer HF checkpoint (sharded safetensors,
//! tokenizer.json, tokenizer_config.json) is written from the GGUF's first layers, and both loaders
//! must compute the same hidden states. Also the one-line errors of malformed folders.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::Device;
use common::{fixture, ids, model_path, rel_l2};
use nr_backbone::gguf::{GgufFile, GgufTokenizer};
use nr_backbone::llama::{GgufLlamaWeights, Llm, config_from_gguf};
use nr_backbone::weights::WeightSource;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

const LAYERS: usize = 2;

fn gguf_path() -> PathBuf {
    model_path("SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn gguf_llm() -> &'static Llm {
    static LLM: OnceLock<Llm> = OnceLock::new();
    LLM.get_or_init(|| Llm::load(&gguf_path(), &Device::flex()).unwrap())
}

fn hf_tensor_names() -> Vec<String> {
    let mut names = vec![
        "model.embed_tokens.weight".to_string(),
        "model.norm.weight".to_string(),
    ];
    for i in 0..LAYERS {
        for m in [
            "input_layernorm",
            "post_attention_layernorm",
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ] {
            names.push(format!("model.layers.{i}.{m}.weight"));
        }
    }
    names
}

fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                s.clone(),
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// One tensor of a shard: name, shape, values.
type ShardTensor = (String, Vec<usize>, Vec<f32>);

/// Writes the HF folder (skipping `omit`, overriding config keys) and returns its path.
fn write_hf_folder(dir: &Path, omit: Option<&str>, config_patch: &[(&str, serde_json::Value)]) {
    let gguf = GgufFile::open(&gguf_path()).unwrap();
    let config = config_from_gguf(&gguf).unwrap();
    let weights = GgufLlamaWeights::new(&gguf, &config);
    let mut shards: [Vec<ShardTensor>; 2] = [Vec::new(), Vec::new()];
    let mut weight_map = serde_json::Map::new();
    for name in hf_tensor_names() {
        if Some(name.as_str()) == omit {
            continue;
        }
        let t = weights.tensor(&name).unwrap();
        let shard = usize::from(name.starts_with("model.layers"));
        weight_map.insert(
            name.clone(),
            format!("model-0000{}-of-00002.safetensors", shard + 1).into(),
        );
        shards[shard].push((name, t.shape, t.data));
    }
    for (i, shard) in shards.iter().enumerate() {
        write_safetensors(
            &dir.join(format!("model-0000{}-of-00002.safetensors", i + 1)),
            shard,
        );
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let mut hf_config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "max_position_embeddings": config.max_position_embeddings,
        "tie_word_embeddings": true,
    });
    for (k, v) in config_patch {
        hf_config[*k] = v.clone();
    }
    std::fs::write(dir.join("config.json"), hf_config.to_string()).unwrap();
    let tok = GgufTokenizer::from_gguf(&gguf).unwrap();
    tok.tokenizer()
        .save(dir.join("tokenizer.json"), false)
        .unwrap();
    let tok_config = serde_json::json!({
        "chat_template": gguf.chat_template().unwrap().unwrap(),
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>",
        "add_bos_token": false,
    });
    std::fs::write(dir.join("tokenizer_config.json"), tok_config.to_string()).unwrap();
}

fn good_folder() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        write_hf_folder(dir.path(), None, &[]);
        dir
    })
    .path()
}

#[test]
fn hf_folder_and_gguf_give_the_same_prompts_and_hidden_states() {
    let hf = Llm::load(good_folder(), &Device::flex()).unwrap();
    assert_eq!(hf.num_layers(), LAYERS);
    let reference = fixture("smollm2_reference.json");
    let norm_weight = GgufLlamaWeights::new(
        &GgufFile::open(&gguf_path()).unwrap(),
        &config_from_gguf(&GgufFile::open(&gguf_path()).unwrap()).unwrap(),
    )
    .tensor("model.norm.weight")
    .unwrap()
    .data;
    for case in reference["cases"].as_array().unwrap() {
        let messages = case["messages"].as_array().unwrap();
        assert_eq!(
            hf.render_chat(messages).unwrap(),
            case["prompt"].as_str().unwrap()
        );
        let prompt_ids = hf.chat_ids(messages).unwrap();
        assert_eq!(prompt_ids, ids(&case["input_ids"]));
        let from_hf = hf
            .forward(std::slice::from_ref(&prompt_ids), &[0, 1, 2], false)
            .unwrap()
            .remove(0);
        let from_gguf = gguf_llm()
            .forward(&[prompt_ids], &[0, 1, 2], false)
            .unwrap()
            .remove(0);
        for layer in [0, 1] {
            let err = rel_l2(&from_hf.hidden[&layer].data, &from_gguf.hidden[&layer].data);
            assert!(err < 1e-6, "layer {layer}: rel L2 {err:.2e}");
        }
        // Index 2 of the 2-layer model is the final norm of layer 2's output.
        let raw = &from_gguf.hidden[&2];
        let mut normed = Vec::with_capacity(raw.data.len());
        for t in 0..raw.len {
            let x = raw.token(t);
            let rms =
                (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64 + 1e-5).sqrt();
            normed.extend(
                x.iter()
                    .zip(&norm_weight)
                    .map(|(v, w)| (*v as f64 / rms) as f32 * w),
            );
        }
        let err = rel_l2(&from_hf.hidden[&2].data, &normed);
        assert!(err < 1e-5, "final norm: rel L2 {err:.2e}");
    }
}

fn load_error(dir: &Path) -> String {
    Llm::load(dir, &Device::flex()).unwrap_err().to_string()
}

#[test]
fn malformed_hf_folders_give_one_line_errors_naming_file_and_key() {
    // Copy the good folder's files except what each case breaks.
    let copy = |skip: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(good_folder()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().to_string();
            if !skip.contains(&name.as_str()) {
                std::fs::copy(entry.path(), dir.path().join(&name)).unwrap();
            }
        }
        dir
    };
    let mut cases: HashMap<&str, (tempfile::TempDir, Vec<&str>)> = HashMap::new();

    let d = copy(&["config.json"]);
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(good_folder().join("config.json")).unwrap())
            .unwrap();
    cfg["architectures"] = serde_json::json!(["GPTNeoXForCausalLM"]);
    std::fs::write(d.path().join("config.json"), cfg.to_string()).unwrap();
    cases.insert(
        "unknown architecture",
        (d, vec!["config.json", "GPTNeoXForCausalLM"]),
    );

    let d = copy(&["config.json"]);
    cfg["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
    cfg["intermediate_size"] = serde_json::json!(1024);
    std::fs::write(d.path().join("config.json"), cfg.to_string()).unwrap();
    cases.insert(
        "shape mismatch",
        (
            d,
            vec![
                "model.layers.0.mlp.gate_proj.weight",
                "[1536, 576]",
                "[1024, 576]",
            ],
        ),
    );

    let d = copy(&["tokenizer.json"]);
    cases.insert("missing tokenizer", (d, vec!["tokenizer.json"]));

    let d = copy(&["model-00002-of-00002.safetensors"]);
    std::fs::write(
        d.path().join("model-00002-of-00002.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json",
    )
    .unwrap();
    cases.insert(
        "corrupt shard",
        (
            d,
            vec!["model-00002-of-00002.safetensors", "invalid safetensors"],
        ),
    );

    for (what, (dir, needles)) in &cases {
        let msg = load_error(dir.path());
        assert!(!msg.contains('\n'), "{what}: multi-line error: {msg}");
        for needle in needles {
            assert!(
                msg.contains(needle),
                "{what}: error '{msg}' does not name '{needle}'"
            );
        }
    }

    // A missing tensor is named.
    let dir = tempfile::tempdir().unwrap();
    write_hf_folder(dir.path(), Some("model.layers.1.mlp.up_proj.weight"), &[]);
    let msg = load_error(dir.path());
    assert!(
        msg.contains("missing tensor 'model.layers.1.mlp.up_proj.weight'"),
        "{msg}"
    );
}
