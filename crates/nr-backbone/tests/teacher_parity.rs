//! The teacher against sentence-transformers' own numbers for all-MiniLM-L6-v2
//! (`shared/fixtures/minilm_reference.json`): token ids exactly, embeddings within a relative L2
//! error of 1e-3, and the same numbers whether texts are encoded alone, in one padded batch, or in
//! length buckets.

mod common;

use common::minilm_dir as model_dir;

use std::path::Path;

use burn::tensor::Device;
use nr_backbone::teacher::TeacherEncoder;

fn load(dir: &Path) -> TeacherEncoder {
    TeacherEncoder::load(dir, &Device::default())
        .unwrap_or_else(|e| panic!("loading the teacher: {e}"))
}

/// ||a - b|| / ||b||
fn relative_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let norm: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (diff / norm).sqrt()
}

#[test]
fn minilm_reads_its_sentence_transformers_configuration() {
    let teacher = load(&model_dir());
    assert_eq!(teacher.dim(), 384);
    // sentence_bert_config.json's 256, not config.json's 512 nor tokenizer.json's 128.
    assert_eq!(teacher.max_seq_len(), 256);
    assert_eq!(
        teacher.config().pooling,
        nr_backbone::teacher::Pooling::Mean
    );
    assert!(
        teacher.config().normalize,
        "modules.json lists a Normalize module"
    );
    assert_eq!(teacher.config().bert.num_hidden_layers, 6);
}

#[test]
fn token_ids_match_sentence_transformers_including_truncation() {
    let cases = common::minilm_reference();
    let teacher = load(&model_dir());
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let ids = teacher.tokenize(&texts).expect("tokenize");
    for (case, got) in cases.iter().zip(&ids) {
        assert_eq!(got, &case.input_ids, "ids of {:?}", case.text);
    }
    let longest = ids.iter().map(Vec::len).max().unwrap();
    assert_eq!(
        longest, 256,
        "the long text is truncated to max_seq_len, [SEP] kept last"
    );
    assert_eq!(ids.last().unwrap().last(), Some(&102));
}

#[test]
fn padded_batch_embeddings_match_sentence_transformers() {
    let cases = common::minilm_reference();
    let teacher = load(&model_dir());
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    // One batch: every short text is padded to the 256 tokens of the long one.
    let embeddings = teacher.encode(&texts).expect("encode");
    assert_eq!(embeddings.len(), texts.len());
    for (case, got) in cases.iter().zip(&embeddings) {
        assert_eq!(got.len(), 384);
        let err = relative_l2(got, &case.embedding);
        let short: String = case.text.chars().take(40).collect();
        eprintln!("{short:?}: relative L2 error {err:.2e}");
        assert!(err < 1e-3, "{:?}: relative L2 error {err:.2e}", case.text);
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "normalised, got norm {norm}");
    }
}

#[test]
fn one_by_one_and_bucketed_encodings_equal_the_padded_batch() {
    let cases = common::minilm_reference();
    let teacher = load(&model_dir());
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let batched = teacher.encode(&texts).expect("encode batch");
    for (text, in_batch) in texts.iter().zip(&batched) {
        let alone = teacher.encode(&[text]).expect("encode one");
        let err = relative_l2(&alone[0], in_batch);
        assert!(
            err < 1e-5,
            "{text:?}: alone vs padded batch differ by {err:.2e}"
        );
    }
    // Buckets of 4 (the long text with the 3 next longest, then 2): original order kept.
    let bucketed = teacher.encode_many(&texts, 4, false).expect("encode_many");
    for ((text, a), b) in texts.iter().zip(&bucketed).zip(&batched) {
        let err = relative_l2(a, b);
        assert!(
            err < 1e-5,
            "{text:?}: bucketed vs one batch differ by {err:.2e}"
        );
    }
}
