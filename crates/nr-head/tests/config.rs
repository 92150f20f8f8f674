//! Head configs: manifest tables, defaults, validation.

use nr_head::{HeadConfig, HeadError, HeadKind, MapperPooling};

fn parse(text: &str) -> Result<HeadConfig, String> {
    toml::from_str(text).map_err(|e| e.message().to_string())
}

#[test]
fn a_manifest_head_table_parses_with_defaults() {
    let c = parse(
        "kind = \"mlp\"\ninput_dim = 576\noutput_dim = 384\nhidden = 2048\ndropout = 0.1\n\
         input_layernorm = true\n",
    )
    .unwrap();
    assert_eq!(c.kind, HeadKind::Mlp);
    assert_eq!(
        (c.input_dim, c.output_dim, c.hidden, c.dropout),
        (576, 384, 2048, 0.1)
    );
    assert!(c.input_layernorm);
    // Defaults: one layer, the paper's 2-block 8-head mapper of width D pooling by a query.
    assert_eq!((c.layers, c.mapper_layers, c.mapper_heads), (1, 2, 8));
    assert_eq!(
        (c.mapper_width(), c.mapper_pooling),
        (384, MapperPooling::Query)
    );

    let m = parse(
        "kind = \"mapper\"\ninput_dim = 576\noutput_dim = 384\nlayers = 3\nmapper_pooling = \
         \"mean\"\nmapper_width = 256\n",
    )
    .unwrap();
    assert_eq!(
        (m.kind, m.layers, m.mapper_width()),
        (HeadKind::Mapper, 3, 256)
    );
    assert_eq!(m.mapper_pooling, MapperPooling::Mean);
}

#[test]
fn unknown_keys_and_kinds_are_rejected() {
    let err = parse("kind = \"mlp\"\ninput_dim = 4\noutput_dim = 4\nhiden = 8\n").unwrap_err();
    assert!(err.contains("unknown field `hiden`"), "{err}");
    let err = parse("kind = \"rnn\"\ninput_dim = 4\noutput_dim = 4\n").unwrap_err();
    assert!(err.contains("unknown variant `rnn`"), "{err}");
    let err = parse("kind = \"linear\"\ninput_dim = 4\n").unwrap_err();
    assert!(err.contains("missing field `output_dim`"), "{err}");
}

#[test]
fn out_of_range_values_are_rejected_on_parse_and_init() {
    let table = |extra: &str| format!("kind = \"mapper\"\ninput_dim = 12\noutput_dim = 8\n{extra}");
    let err = parse(&table("dropout = 1.0")).unwrap_err();
    assert_eq!(err, "head config: dropout: 1 is not in [0, 1)");
    let err = parse(&table("mapper_heads = 3")).unwrap_err();
    assert_eq!(
        err,
        "head config: mapper_heads: 3 does not divide the mapper width 8"
    );
    let err = parse(&table("layers = 0")).unwrap_err();
    assert_eq!(err, "head config: layers: must be positive");
    // A mapper-only problem does not concern a linear head.
    assert!(parse("kind = \"linear\"\ninput_dim = 12\noutput_dim = 8\nmapper_heads = 3").is_ok());

    let bad = HeadConfig {
        mapper_heads: 5,
        ..HeadConfig::new(HeadKind::Mapper, 12, 8)
    };
    let err = bad.init(&burn::tensor::Device::flex()).unwrap_err();
    assert!(
        matches!(
            err,
            HeadError::Config {
                field: "mapper_heads",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn configs_round_trip_through_json_and_toml() {
    let c = HeadConfig {
        layers: 2,
        mapper_width: Some(16),
        mapper_pooling: MapperPooling::Mean,
        ..HeadConfig::new(HeadKind::Mapper, 12, 8)
    };
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<HeadConfig>(&json).unwrap(), c);
    let text = toml::to_string(&c).unwrap();
    assert_eq!(toml::from_str::<HeadConfig>(&text).unwrap(), c);
}
