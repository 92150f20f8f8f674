//! Saving and loading: bit-exact round trips, the sidecar, and the errors of a head loaded against
//! another setup or from damaged files.

mod common;

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use common::*;
use nr_head::{Head, HeadConfig, HeadError, HeadKind, HeadSidecar, sidecar_path, weights_path};

fn outputs(head: &Head, layers: usize, device: &Device) -> Vec<f32> {
    let (hidden, mask) = inputs(&mut Rng::new(21), layers, &[3, 1], 3, device);
    host(head.forward(hidden, mask).unwrap())
}

fn saved_head(dir: &Path, config: &HeadConfig) -> std::path::PathBuf {
    let stem = dir.join("head");
    let head = config.init(&Device::flex()).unwrap();
    head.save(&stem, &meta(config.layers)).unwrap();
    stem
}

#[test]
fn every_head_kind_round_trips_bit_for_bit() {
    let device = Device::flex();
    for config in configs(2) {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("sub").join("head.v1");
        device.seed(8);
        let head = config.init(&device).unwrap();
        head.save(&stem, &meta(2)).unwrap();
        // Exactly the two files, under names that keep the stem's dot.
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["head.v1.json", "head.v1.safetensors"]);

        let loaded = Head::load(&stem, &meta(2), &device).unwrap();
        assert_eq!(loaded.config(), &config);
        assert_eq!(loaded.num_params(), head.num_params());
        assert_eq!(
            outputs(&loaded, 2, &device),
            outputs(&head, 2, &device),
            "{config:?}"
        );

        let sidecar = HeadSidecar::read(&stem).unwrap();
        assert_eq!((sidecar.format.as_str(), sidecar.version), ("nr-head", 1));
        assert_eq!(sidecar.config, config);
        assert_eq!(sidecar.meta(), meta(2));
    }
}

#[test]
fn the_sidecar_is_plain_json_naming_backbone_and_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let stem = saved_head(dir.path(), &configs(1)[1]);
    let text = std::fs::read_to_string(sidecar_path(&stem)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["config"]["kind"], "mlp");
    assert_eq!(json["config"]["input_dim"], H);
    assert_eq!(json["backbone"]["name"], "tiny-llm.gguf");
    assert_eq!(json["backbone"]["hidden_size"], H);
    assert_eq!(json["backbone"]["layers"], serde_json::json!([10]));
    assert_eq!(json["teacher"]["dim"], D);
}

#[test]
fn a_head_loaded_on_an_autodiff_device_trains() {
    let dir = tempfile::tempdir().unwrap();
    let stem = saved_head(dir.path(), &configs(1)[0]);
    let device = Device::flex().autodiff();
    let head = Head::load(&stem, &meta(1), &device).unwrap();
    let (hidden, mask) = inputs(&mut Rng::new(1), 1, &[2], 2, &device);
    let grads = head
        .forward(hidden, mask)
        .unwrap()
        .narrow(1, 0, 1)
        .sum()
        .backward();
    let nr_head::Projection::Linear(linear) = &head.projection else {
        panic!("linear")
    };
    assert!(linear.weight.val().grad(&grads).is_some());
}

/// An edit of the running setup and the error it must cause.
type MetaChange = Box<dyn Fn(&mut nr_head::HeadMeta)>;

#[test]
fn loading_against_another_setup_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let stem = saved_head(dir.path(), &configs(1)[0]);
    let json = sidecar_path(&stem);
    let device = Device::flex();
    let cases: Vec<(MetaChange, String)> = vec![
        (
            Box::new(|m| m.backbone.hidden_size = 576),
            format!(
                "{}: backbone.hidden_size is 12 in the head but 576 in the running setup (the head \
                 reads hidden states of another width)",
                json.display()
            ),
        ),
        (
            Box::new(|m| m.teacher.dim = 384),
            format!(
                "{}: teacher.dim is 8 in the head but 384 in the running setup (the head writes \
                 vectors of another width)",
                json.display()
            ),
        ),
        (
            Box::new(|m| m.backbone.name = "other.gguf".into()),
            format!(
                "{}: backbone.name is tiny-llm.gguf in the head but other.gguf in the running setup \
                 (trained on another LLM)",
                json.display()
            ),
        ),
        (
            Box::new(|m| m.teacher.name = "bge".into()),
            format!(
                "{}: teacher.name is tiny-teacher in the head but bge in the running setup (trained \
                 for another teacher's space)",
                json.display()
            ),
        ),
        (
            Box::new(|m| m.backbone.layers = vec![30]),
            format!(
                "{}: backbone.layers is [10] in the head but [30] in the running setup (trained on \
                 other layers)",
                json.display()
            ),
        ),
    ];
    for (change, message) in cases {
        let mut expected = meta(1);
        change(&mut expected);
        let err = Head::load(&stem, &expected, &device).unwrap_err();
        assert!(matches!(err, HeadError::Mismatch { .. }), "{err}");
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn saving_against_an_unfitting_setup_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("head");
    let head = HeadConfig::new(HeadKind::Linear, H, D)
        .init(&Device::flex())
        .unwrap();
    let mut wrong = meta(1);
    wrong.teacher.dim = 384;
    let err = head.save(&stem, &wrong).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: config.output_dim = 8 disagrees with teacher.dim = 384",
            sidecar_path(&stem).display()
        )
    );
    let err = head.save(&stem, &meta(2)).unwrap_err();
    assert!(
        err.to_string()
            .contains("config.layers = 1 disagrees with the length of backbone.layers = 2")
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn damaged_or_missing_files_are_errors_naming_the_file() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let stem = saved_head(dir.path(), &configs(1)[1]);
    let (weights, json) = (weights_path(&stem), sidecar_path(&stem));

    // Truncated weights.
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = Head::load(&stem, &meta(1), &device).unwrap_err();
    assert!(matches!(err, HeadError::Malformed { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", weights.display())),
        "{err}"
    );
    assert_eq!(err.to_string().lines().count(), 1, "{err}");

    // Missing weights.
    std::fs::remove_file(&weights).unwrap();
    let err = Head::load(&stem, &meta(1), &device).unwrap_err();
    assert!(matches!(err, HeadError::Io { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&weights.display().to_string()),
        "{err}"
    );

    // A sidecar that is not a head's.
    std::fs::write(&json, "{\"format\": \"nr-head\", \"version\": 1}").unwrap();
    let err = Head::load(&stem, &meta(1), &device).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: not a head sidecar: missing field",
            json.display()
        )),
        "{err}"
    );
    std::fs::write(&json, "[1, 2").unwrap();
    assert!(
        Head::load(&stem, &meta(1), &device)
            .unwrap_err()
            .to_string()
            .contains("not a head sidecar")
    );
}

#[test]
fn weights_that_do_not_fit_the_config_are_refused() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let stem = saved_head(dir.path(), &configs(1)[1]); // mlp, hidden 16
    let json = sidecar_path(&stem);
    let text = std::fs::read_to_string(&json).unwrap();

    // Another hidden width: the first linear map's weight has the wrong shape.
    std::fs::write(&json, text.replace("\"hidden\": 16", "\"hidden\": 32")).unwrap();
    let err = Head::load(&stem, &meta(1), &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}: Shape mismatch for 'projection.",
            weights_path(&stem).display()
        )),
        "{err}"
    );

    // Another kind: the file's tensors belong to an MLP, not a linear head.
    std::fs::write(
        &json,
        text.replace("\"kind\": \"mlp\"", "\"kind\": \"linear\""),
    )
    .unwrap();
    let err = Head::load(&stem, &meta(1), &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}: tensor 'projection.",
            weights_path(&stem).display()
        )),
        "{err}"
    );
}
