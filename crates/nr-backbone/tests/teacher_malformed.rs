//! Broken teacher folders fail with one line naming the file and the key or tensor at fault.
//!
//! Each test builds a folder in a temporary directory from the real all-MiniLM-L6-v2 files
//! (symlinked, not copied) with one thing wrong.

mod common;

use common::minilm_dir as model_dir;

use std::path::Path;

use burn::tensor::Device;
use nr_backbone::teacher::TeacherEncoder;

/// A temp folder with links to the real model's files, except those in `leave_out`.
fn folder_without(leave_out: &[&str]) -> tempfile::TempDir {
    let src = model_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&src).expect("model dir") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        if !leave_out.contains(&name.as_ref()) {
            std::os::unix::fs::symlink(src.join(name.as_ref()), tmp.path().join(name.as_ref()))
                .expect("symlink");
        }
    }
    tmp
}

/// MiniLM's config.json with `hidden_size` (and `intermediate_size`) changed.
fn write_config_with_hidden_size(dir: &Path, hidden: usize) {
    let text = std::fs::read_to_string(model_dir().join("config.json")).expect("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    config["hidden_size"] = hidden.into();
    config["intermediate_size"] = (4 * hidden).into();
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config");
}

fn load_error(dir: &Path) -> String {
    match TeacherEncoder::load(dir, &Device::default()) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_one_line(msg: &str) {
    assert!(!msg.contains('\n'), "error spans several lines: {msg:?}");
}

#[test]
fn missing_tokenizer_json_names_it() {
    let tmp = folder_without(&["tokenizer.json"]);
    let msg = load_error(tmp.path());
    assert_one_line(&msg);
    assert_eq!(
        msg,
        format!("{}: missing tokenizer.json", tmp.path().display())
    );
}

#[test]
fn hidden_size_disagreeing_with_the_weights_names_the_tensor_and_both_shapes() {
    // Without modules.json the pooling config (which also states the width) is not read, so the
    // weights are the first thing that disagrees with config.json.
    let tmp = folder_without(&["config.json", "modules.json", "1_Pooling"]);
    write_config_with_hidden_size(tmp.path(), 768);
    let msg = load_error(tmp.path());
    assert_one_line(&msg);
    assert_eq!(
        msg,
        format!(
            "{}: tensor 'embeddings.word_embeddings.weight' has shape [30522, 384], expected [30522, 768]",
            tmp.path().display()
        )
    );
}

#[test]
fn pooling_width_disagreeing_with_config_names_the_pooling_file() {
    let tmp = folder_without(&["config.json"]);
    write_config_with_hidden_size(tmp.path(), 768);
    let msg = load_error(tmp.path());
    assert_one_line(&msg);
    assert!(
        msg.starts_with(
            &tmp.path()
                .join("1_Pooling/config.json")
                .display()
                .to_string()
        ),
        "{msg}"
    );
    assert!(
        msg.contains("'word_embedding_dimension' 384 differs from the model's hidden_size 768"),
        "{msg}"
    );
}

#[test]
fn missing_config_key_names_the_key() {
    let tmp = folder_without(&["config.json"]);
    let text = std::fs::read_to_string(model_dir().join("config.json")).expect("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    config
        .as_object_mut()
        .expect("object")
        .remove("num_attention_heads");
    std::fs::write(tmp.path().join("config.json"), config.to_string()).expect("write");
    let msg = load_error(tmp.path());
    assert_one_line(&msg);
    assert!(
        msg.starts_with(&tmp.path().join("config.json").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("missing field `num_attention_heads`"), "{msg}");
}

#[test]
fn missing_weights_and_missing_folder_are_named() {
    let tmp = folder_without(&["model.safetensors"]);
    let msg = load_error(tmp.path());
    assert_one_line(&msg);
    assert_eq!(
        msg,
        format!(
            "{}: missing model.safetensors (or model.safetensors.index.json)",
            tmp.path().display()
        )
    );

    let nowhere = tmp.path().join("no-such-model");
    assert_eq!(
        load_error(&nowhere),
        format!("{}: missing model folder", nowhere.display())
    );
}

#[test]
fn unsupported_module_in_modules_json_is_named() {
    let tmp = folder_without(&["modules.json"]);
    let modules = r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
        {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
        {"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#;
    std::fs::write(tmp.path().join("modules.json"), modules).expect("write");
    let msg = load_error(tmp.path());
    assert_one_line(&msg);
    assert_eq!(
        msg,
        format!(
            "{}: unsupported: module 'sentence_transformers.models.Dense' (only Transformer, Pooling and Normalize)",
            tmp.path().join("modules.json").display()
        )
    );
}
