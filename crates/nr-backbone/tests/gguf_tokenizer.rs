//! Tokenizers rebuilt from small hand-written `tokenizer.ggml.*` metadata: pre-tokenizer choice,
//! BOS/EOS handling, control tokens, and errors naming the key at fault.

use nr_backbone::gguf::{GgufArray, GgufFile, GgufTokenizer, GgufValue, GgufWriter};

const TOKENS: [&str; 15] = [
    "<s>", "</s>", "a", "b", "Ġ", "1", "2", "3", "ab", "Ġ1", "12", "123", "Ġ12", "Ġ123", "<ctl>",
];
const MERGES: [&str; 6] = ["a b", "Ġ 1", "1 2", "12 3", "Ġ1 2", "Ġ12 3"];
// ids
const BOS: u32 = 0;
const EOS: u32 = 1;
const A: u32 = 2;
const B: u32 = 3;
const SPACE: u32 = 4;
const ONE: u32 = 5;
const TWO: u32 = 6;
const THREE: u32 = 7;
const AB: u32 = 8;
const N123: u32 = 11;
const SPACE_123: u32 = 13;
const CTL: u32 = 14;

fn strings(v: &[&str]) -> GgufValue {
    GgufValue::Array(GgufArray::String(v.iter().map(|s| s.to_string()).collect()))
}

/// A writer with the tiny vocabulary (tokens 0, 1 and 14 are CONTROL); `overrides` replace or
/// add keys.
fn tiny(overrides: &[(&str, GgufValue)]) -> GgufWriter {
    let mut types = vec![1i32; TOKENS.len()];
    types[0] = 3;
    types[1] = 3;
    types[CTL as usize] = 3;
    let defaults = [
        ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
        ("tokenizer.ggml.pre", GgufValue::String("smollm".into())),
        ("tokenizer.ggml.tokens", strings(&TOKENS)),
        (
            "tokenizer.ggml.token_type",
            GgufValue::Array(GgufArray::I32(types)),
        ),
        ("tokenizer.ggml.merges", strings(&MERGES)),
        ("tokenizer.ggml.bos_token_id", GgufValue::U32(BOS)),
        ("tokenizer.ggml.eos_token_id", GgufValue::U32(EOS)),
    ];
    let mut w = GgufWriter::new();
    for (k, v) in overrides {
        w.add_metadata(*k, v.clone());
    }
    for (k, v) in defaults {
        if !overrides.iter().any(|(o, _)| *o == k) {
            w.add_metadata(k, v);
        }
    }
    w
}

fn build(w: &GgufWriter) -> (tempfile::TempDir, GgufFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tok.gguf");
    w.write(&path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    (dir, file)
}

fn tokenizer(overrides: &[(&str, GgufValue)]) -> GgufTokenizer {
    let (_dir, file) = build(&tiny(overrides));
    GgufTokenizer::from_gguf(&file).unwrap()
}

/// The error of building the tokenizer, with the temp path replaced by `FILE`.
fn error(overrides: &[(&str, GgufValue)]) -> String {
    let (_dir, file) = build(&tiny(overrides));
    let err = GgufTokenizer::from_gguf(&file).unwrap_err().to_string();
    assert!(!err.contains('\n'));
    err.replacen(&file.path().display().to_string(), "FILE", 1)
}

fn pre(name: &str) -> (&'static str, GgufValue) {
    ("tokenizer.ggml.pre", GgufValue::String(name.into()))
}

#[test]
fn pre_tokenizers_split_digits_as_their_models_do() {
    // smollm and qwen2: one digit per token; gpt2: digits merge with the space before them;
    // llama-bpe: runs of up to 3 digits, the space on its own.
    assert_eq!(
        tokenizer(&[]).encode("ab 123", false).unwrap(),
        [AB, SPACE, ONE, TWO, THREE]
    );
    assert_eq!(
        tokenizer(&[pre("qwen2")]).encode("ab 123", false).unwrap(),
        [AB, SPACE, ONE, TWO, THREE]
    );
    assert_eq!(
        tokenizer(&[pre("gpt2")]).encode("ab 123", false).unwrap(),
        [AB, SPACE_123]
    );
    assert_eq!(
        tokenizer(&[pre("default")])
            .encode("ab 123", false)
            .unwrap(),
        [AB, SPACE_123]
    );
    assert_eq!(
        tokenizer(&[pre("llama-bpe")])
            .encode("ab 123", false)
            .unwrap(),
        [AB, SPACE, N123]
    );
    for p in ["smollm", "gpt2", "llama-bpe", "qwen2"] {
        assert_eq!(
            tokenizer(&[pre(p)]).decode(&[AB, SPACE_123], true).unwrap(),
            "ab 123",
            "{p}"
        );
    }
}

#[test]
fn control_tokens_are_special_and_parsed_in_text() {
    let t = tokenizer(&[]);
    assert_eq!(t.encode("a<ctl>b", false).unwrap(), [A, CTL, B]);
    assert_eq!(t.decode(&[A, CTL, B], false).unwrap(), "a<ctl>b");
    assert_eq!(t.decode(&[A, CTL, B], true).unwrap(), "ab");
    assert_eq!(t.vocab_size(), TOKENS.len());
}

#[test]
fn bos_and_eos_follow_the_add_flags() {
    let t = tokenizer(&[]);
    assert!(
        !t.special().add_bos,
        "gpt2-style files add no BOS by default"
    );
    assert_eq!(t.encode("ab", true).unwrap(), [AB]);

    let t = tokenizer(&[("tokenizer.ggml.add_bos_token", GgufValue::Bool(true))]);
    assert_eq!(t.encode("ab", true).unwrap(), [BOS, AB]);
    assert_eq!(t.encode("ab", false).unwrap(), [AB]);
    assert_eq!(t.decode(&[BOS, AB], true).unwrap(), "ab");

    let t = tokenizer(&[
        ("tokenizer.ggml.add_bos_token", GgufValue::Bool(true)),
        ("tokenizer.ggml.add_eos_token", GgufValue::Bool(true)),
    ]);
    assert_eq!(t.encode("ab", true).unwrap(), [BOS, AB, EOS]);

    // llama-bpe adds BOS unless the file says otherwise, as llama.cpp does.
    assert_eq!(
        tokenizer(&[pre("llama-bpe")]).encode("ab", true).unwrap(),
        [BOS, AB]
    );
    let t = tokenizer(&[
        pre("llama-bpe"),
        ("tokenizer.ggml.add_bos_token", GgufValue::Bool(false)),
    ]);
    assert_eq!(t.encode("ab", true).unwrap(), [AB]);
}

#[test]
fn unsupported_models_and_pre_tokenizers_name_the_key() {
    assert_eq!(
        error(&[pre("falcon")]),
        "FILE: unsupported: key 'tokenizer.ggml.pre': pre-tokenizer 'falcon' (supported: smollm, gpt2, default, llama-bpe, qwen2)"
    );
    assert_eq!(
        error(&[("tokenizer.ggml.model", GgufValue::String("llama".into()))]),
        "FILE: unsupported: key 'tokenizer.ggml.model': tokenizer model 'llama' (only 'gpt2' byte-level BPE is implemented)"
    );
}

#[test]
fn inconsistent_tokenizer_metadata_names_the_key() {
    assert_eq!(
        error(&[("tokenizer.ggml.merges", strings(&["a b", "Ġ1"]))]),
        "FILE: key 'tokenizer.ggml.merges': merge 1 \"Ġ1\" has no space"
    );
    assert_eq!(
        error(&[("tokenizer.ggml.bos_token_id", GgufValue::U32(99))]),
        "FILE: key 'tokenizer.ggml.bos_token_id': token id 99 is outside the vocabulary of 15 tokens"
    );
    assert_eq!(
        error(&[(
            "tokenizer.ggml.token_type",
            GgufValue::Array(GgufArray::I32(vec![1; 3]))
        )]),
        "FILE: key 'tokenizer.ggml.token_type': 3 entries for 15 tokens"
    );
    assert_eq!(
        error(&[("tokenizer.ggml.tokens", GgufValue::U32(3))]),
        "FILE: key 'tokenizer.ggml.tokens': expected an array, found u32 3"
    );
    let (_dir, file) = build(&{
        let mut w = GgufWriter::new();
        w.add_metadata("tokenizer.ggml.model", GgufValue::String("gpt2".into()));
        w
    });
    let err = GgufTokenizer::from_gguf(&file).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: missing key 'tokenizer.ggml.tokens'",
            file.path().display()
        )
    );
}
