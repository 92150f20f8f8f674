//! The teacher's parts on hand-computed values: length buckets, padding, pooling, normalisation,
//! the fast exact GELU, and configuration of bge/e5-style folders (CLS pooling, prompts) without
//! new code.

mod common;

use common::minilm_dir as model_dir;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use nr_backbone::teacher::activation::erf;
use nr_backbone::teacher::{
    PaddedBatch, Pooling, TeacherConfig, TeacherEncoder, gelu_exact, l2_normalize, length_buckets,
};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 data")
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

#[test]
fn length_buckets_group_longest_first_and_keep_ties_in_order() {
    let buckets = length_buckets(&[3, 7, 5, 7, 1], 2);
    assert_eq!(buckets, vec![vec![1, 3], vec![2, 0], vec![4]]);
    assert_eq!(length_buckets(&[], 4), Vec::<Vec<usize>>::new());
    assert_eq!(
        length_buckets(&[2, 2], 0),
        vec![vec![0], vec![1]],
        "batch size 0 acts as 1"
    );
}

#[test]
fn padded_batch_pads_right_and_masks_padded_keys() {
    let rows: Vec<Vec<u32>> = vec![vec![101, 5, 102], vec![101, 102]];
    let batch = PaddedBatch::new(&rows, 0).expect("batch");
    assert_eq!(batch.ids, vec![101, 5, 102, 101, 102, 0]);
    assert_eq!(batch.lengths, vec![3, 2]);
    assert_eq!(batch.seq, 3);
    assert!(batch.is_padded());

    let device = Device::default();
    let mask: Vec<bool> = batch
        .attention_padding(&device)
        .expect("padded")
        .into_data()
        .try_to_vec()
        .expect("bool");
    let row0 = [false; 9];
    let row1 = [false, false, true, false, false, true, false, false, true];
    assert_eq!(mask, [row0.as_slice(), row1.as_slice()].concat());
    assert_eq!(
        values(batch.token_mask(&device)),
        vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    );

    let even = PaddedBatch::new(&[vec![1u32, 2], vec![3, 4]], 0).expect("batch");
    assert!(
        even.attention_padding(&device).is_none(),
        "no mask when nothing is padded"
    );

    let empty: [Vec<u32>; 0] = [];
    assert!(PaddedBatch::new(&empty, 0).is_err());
    assert!(PaddedBatch::new(&[vec![1u32], vec![]], 0).is_err());
}

/// Two texts of 3 positions and width 2; the first has a padding position holding [5, 6].
fn hidden_and_mask(device: &Device) -> (Tensor<3>, Tensor<2>) {
    let hidden = [
        1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, 0.0, 2.0, -2.0, 7.0, 7.0,
    ];
    let mask = [1.0f32, 1.0, 0.0, 1.0, 1.0, 1.0];
    (
        Tensor::from_data(TensorData::new(hidden.to_vec(), [2, 3, 2]), device),
        Tensor::from_data(TensorData::new(mask.to_vec(), [2, 3]), device),
    )
}

#[test]
fn pooling_modes_ignore_padding() {
    let device = Device::default();
    let pool = |mode: Pooling| {
        let (hidden, mask) = hidden_and_mask(&device);
        values(mode.pool(hidden, mask))
    };
    assert_close(&pool(Pooling::Mean), &[2.0, 3.0, 8.0 / 3.0, 5.0 / 3.0]);
    assert_close(&pool(Pooling::Cls), &[1.0, 2.0, -1.0, 0.0]);
    assert_close(&pool(Pooling::Max), &[3.0, 4.0, 7.0, 7.0]);
    let (s2, s3) = (2f32.sqrt(), 3f32.sqrt());
    assert_close(
        &pool(Pooling::MeanSqrtLen),
        &[4.0 / s2, 6.0 / s2, 8.0 / s3, 5.0 / s3],
    );
}

#[test]
fn l2_normalize_gives_unit_rows_and_leaves_zero_rows_zero() {
    let device = Device::default();
    let x: Tensor<2> = Tensor::from_data(
        TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]),
        &device,
    );
    assert_close(&values(l2_normalize(x)), &[0.6, 0.8, 0.0, 0.0]);
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn bge_style_folder_configures_cls_pooling_prompts_and_length() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::copy(model_dir().join("config.json"), dir.join("config.json")).expect("config");
    write(
        &dir.join("modules.json"),
        r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
            {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
    );
    write(
        &dir.join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false,
            "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}"#,
    );
    write(
        &dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 512, "do_lower_case": true}"#,
    );
    write(
        &dir.join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "Represent this sentence for searching relevant passages: ", "document": ""},
            "default_prompt_name": null, "similarity_fn_name": "cosine"}"#,
    );
    let cfg = TeacherConfig::from_folder(dir).expect("config");
    assert_eq!(cfg.pooling, Pooling::Cls);
    assert!(cfg.normalize);
    assert_eq!(cfg.max_seq_len, 512);
    assert_eq!(
        cfg.prompts["query"],
        "Represent this sentence for searching relevant passages: "
    );
    assert_eq!(cfg.default_prompt_name, None);
    assert_eq!(cfg.transformer_dir, dir);
}

#[test]
fn plain_hf_folder_defaults_to_unnormalised_mean_pooling() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::copy(model_dir().join("config.json"), dir.join("config.json")).expect("config");
    write(
        &dir.join("tokenizer_config.json"),
        r#"{"model_max_length": 1000000000000000019884624838656}"#,
    );
    let cfg = TeacherConfig::from_folder(dir).expect("config");
    assert_eq!(cfg.pooling, Pooling::Mean);
    assert!(!cfg.normalize);
    assert_eq!(
        cfg.max_seq_len, 512,
        "an unbounded model_max_length falls back to the position table"
    );
    assert!(cfg.prompts.is_empty());
}

#[test]
fn prompts_are_prepended_by_configuration() {
    let mut cfg = TeacherConfig::from_folder(&model_dir()).expect("config");
    cfg.prompts = BTreeMap::from([("query".to_string(), "query: ".to_string())]);
    let teacher = TeacherEncoder::from_config(cfg, &Device::default()).expect("teacher");

    let with_prompt = teacher
        .tokenize_with_prompt(&["When did Frank Herbert die?"], Some("query"))
        .expect("ids");
    let spelled_out = teacher
        .tokenize(&["query: When did Frank Herbert die?"])
        .expect("ids");
    assert_eq!(with_prompt, spelled_out);
    // "query" -> 23032, ":" -> 1024 follow [CLS].
    assert_eq!(&with_prompt[0][..3], &[101, 23032, 1024]);

    let a = teacher
        .encode_many_with_prompt(&["When did Frank Herbert die?"], Some("query"), 8, false)
        .expect("a");
    let b = teacher
        .encode(&["query: When did Frank Herbert die?"])
        .expect("b");
    assert_close(&a[0], &b[0]);

    let err = teacher
        .tokenize_with_prompt(&["x"], Some("passage"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        r#"teacher: no prompt named 'passage' (known: ["query"])"#
    );
}

#[test]
fn transformer_sub_folder_of_older_exports_is_followed() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    // Older sentence-transformers exports keep the transformer in `0_Transformer/`.
    let sub = dir.join("0_Transformer");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::copy(model_dir().join("config.json"), sub.join("config.json")).expect("config");
    write(
        &sub.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 128}"#,
    );
    write(
        &dir.join("modules.json"),
        r#"[{"idx":0,"name":"0","path":"0_Transformer","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
    );
    write(
        &dir.join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 384, "pooling_mode": "max"}"#,
    );
    let cfg = TeacherConfig::from_folder(dir).expect("config");
    assert_eq!(cfg.transformer_dir, sub);
    assert_eq!(cfg.max_seq_len, 128);
    assert_eq!(cfg.pooling, Pooling::Max);
    assert!(!cfg.normalize);
}

#[test]
fn fast_erf_and_gelu_match_reference_values_and_burns_kernel() {
    // erf values from tables (Abramowitz & Stegun 7.1), GELU(1) = 0.5 * (1 + erf(1/sqrt 2)).
    for (x, want) in [
        (0.0f32, 0.0f32),
        (0.5, 0.520_499_9),
        (-0.5, -0.520_499_9),
        (1.0, 0.842_700_8),
        (2.0, 0.995_322_3),
    ] {
        assert!(
            (erf(x) - want).abs() < 5e-7,
            "erf({x}) = {} vs {want}",
            erf(x)
        );
    }
    assert_eq!(erf(9.0), 1.0);
    assert_eq!(erf(-9.0), -1.0);

    let device = Device::default();
    let xs: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 5e-4).collect();
    let x: Tensor<1> = Tensor::from_data(TensorData::new(xs.clone(), [xs.len()]), &device);
    let ours = values(gelu_exact(x.clone()));
    let burns = values(burn::tensor::activation::gelu(x));
    let worst = ours
        .iter()
        .zip(&burns)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 2e-6,
        "fast GELU differs from burn's by up to {worst:e}"
    );
    assert!(
        (ours[22_000] - 0.841_344_7).abs() < 1e-6,
        "GELU(1) = {}",
        ours[22_000]
    );
}
