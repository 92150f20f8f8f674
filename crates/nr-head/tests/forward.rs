//! Forward passes: a hand-checked linear head, layer mixing, unit outputs, padding invariance,
//! shape errors, gradient flow to every parameter.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use common::*;
use nr_head::{AttentionPool, HeadConfig, HeadError, HeadKind, LayerMix, Projection};

/// Row `row` of the head's output `out` `[rows, D]` is `y / ||y||` within 1e-5.
fn assert_normalised_row(out: &[f32], row: usize, y: &[f64]) {
    let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
    for (d, v) in y.iter().enumerate() {
        let (got, want) = (out[row * D + d] as f64, v / norm);
        assert!(
            (got - want).abs() < 1e-5,
            "row {row} dim {d}: {got} vs {want}"
        );
    }
}

#[test]
fn linear_head_is_the_normalised_map_of_the_masked_mean() {
    let device = Device::flex();
    device.seed(1);
    let head = HeadConfig::new(HeadKind::Linear, H, D)
        .init(&device)
        .unwrap();
    let Projection::Linear(linear) = &head.projection else {
        panic!("a linear head")
    };
    let w = host(linear.weight.val()); // [H, D]
    let bias = host(linear.bias.as_ref().unwrap().val());
    let lengths = [3, 1];
    let (hidden, mask) = inputs(&mut Rng::new(2), 1, &lengths, 3, &device);
    let x = host(hidden.clone());
    let out = host(head.forward(hidden, mask).unwrap());
    for (row, &len) in lengths.iter().enumerate() {
        let mean: Vec<f64> = (0..H)
            .map(|h| {
                (0..len)
                    .map(|t| x[(row * 3 + t) * H + h] as f64)
                    .sum::<f64>()
                    / len as f64
            })
            .collect();
        let y: Vec<f64> = (0..D)
            .map(|d| bias[d] as f64 + (0..H).map(|h| mean[h] * w[h * D + d] as f64).sum::<f64>())
            .collect();
        assert_normalised_row(&out, row, &y);
    }
}

/// Exact (erf) GELU in f64, via the Abramowitz-Stegun 7.1.26 erf (error below 1.5e-7).
fn gelu(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = (1.0 - poly * (-z * z).exp()).copysign(z);
    0.5 * x * (1.0 + erf)
}

#[test]
fn token_mlp_head_pools_the_mlp_of_every_token() {
    let device = Device::flex();
    device.seed(3);
    let config = HeadConfig {
        hidden: 16,
        token_mlp: true,
        ..HeadConfig::new(HeadKind::Mlp, H, D)
    };
    let head = config.init(&device).unwrap();
    let Projection::Mlp(mlp) = &head.projection else {
        panic!("an mlp head")
    };
    let (w1, b1) = (
        host(mlp.up.weight.val()),
        host(mlp.up.bias.as_ref().unwrap().val()),
    );
    let (w2, b2) = (
        host(mlp.down.weight.val()),
        host(mlp.down.bias.as_ref().unwrap().val()),
    );
    let token = |x: &[f32]| -> Vec<f64> {
        let h: Vec<f64> = (0..16)
            .map(|j| {
                gelu(
                    b1[j] as f64
                        + (0..H)
                            .map(|i| x[i] as f64 * w1[i * 16 + j] as f64)
                            .sum::<f64>(),
                )
            })
            .collect();
        (0..D)
            .map(|d| b2[d] as f64 + (0..16).map(|j| h[j] * w2[j * D + d] as f64).sum::<f64>())
            .collect()
    };
    let lengths = [3, 1];
    let (hidden, mask) = inputs(&mut Rng::new(4), 1, &lengths, 3, &device);
    let x = host(hidden.clone());
    let out = host(head.forward(hidden.clone(), mask.clone()).unwrap());
    for (row, &len) in lengths.iter().enumerate() {
        let mut y = [0.0; D];
        for t in 0..len {
            let start = (row * 3 + t) * H;
            for (acc, v) in y.iter_mut().zip(token(&x[start..start + H])) {
                *acc += v / len as f64;
            }
        }
        assert_normalised_row(&out, row, &y);
    }
    // Pooling first gives another vector for the 3-token row (GELU is not linear), the same one
    // for the 1-token row.
    let pooled_first = HeadConfig {
        token_mlp: false,
        ..config
    }
    .init(&device)
    .unwrap()
    .load_record(head.clone().into_record());
    let other = host(pooled_first.forward(hidden, mask).unwrap());
    let gap = |row: usize| {
        (0..D)
            .map(|d| (out[row * D + d] - other[row * D + d]).abs())
            .fold(0.0, f32::max)
    };
    assert!(gap(0) > 1e-3, "3-token row: {}", gap(0));
    assert!(gap(1) < 1e-6, "1-token row: {}", gap(1));
}

#[test]
fn token_mlp_is_refused_for_linear_and_mapper_heads() {
    for kind in [HeadKind::Linear, HeadKind::Mapper] {
        let config = HeadConfig {
            token_mlp: true,
            ..HeadConfig::new(kind, H, D)
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("token_mlp"), "{kind:?}: {err}");
    }
}

#[test]
fn layer_mix_weights_layers_by_the_softmax_of_its_logits() {
    let device = Device::flex();
    let mut mix = LayerMix::new(2, &device);
    // A fresh mix is the mean of the layers.
    let x = tensor(vec![1.0, 2.0, 5.0, 10.0], [1, 2, 1, 2], &device);
    assert_eq!(host(mix.forward(x.clone())), [3.0, 6.0]);
    // Logits (0, ln 3) weigh the layers 1/4 and 3/4.
    mix.logits = Param::from_tensor(tensor(vec![0.0, 3f32.ln()], [2], &device));
    let out = host(mix.forward(x));
    assert!(
        (out[0] - 4.0).abs() < 1e-6 && (out[1] - 8.0).abs() < 1e-6,
        "{out:?}"
    );
}

#[test]
fn outputs_are_unit_vectors_unchanged_by_padding_and_batching() {
    let device = Device::flex();
    for config in configs(2) {
        device.seed(3);
        let head = config.init(&device).unwrap().valid();
        let lengths = [4, 2, 1];
        let mut rng = Rng::new(4);
        let (hidden, mask) = inputs(&mut rng, 2, &lengths, 4, &device);
        let batch = host(head.forward(hidden.clone(), mask.clone()).unwrap());
        for row in batch.chunks(D) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{:?}: norm {norm}", config.kind);
        }
        // Each row alone, cut to its real tokens, gives the same vector.
        for (i, &len) in lengths.iter().enumerate() {
            let one = hidden.clone().narrow(0, i, 1).narrow(2, 0, len);
            let one_mask = mask.clone().narrow(0, i, 1).narrow(1, 0, len);
            let alone = host(head.forward(one, one_mask).unwrap());
            for (a, b) in alone.iter().zip(&batch[i * D..(i + 1) * D]) {
                assert!((a - b).abs() < 1e-5, "{config:?} row {i}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn forward_rejects_inputs_of_the_wrong_shape() {
    let device = Device::flex();
    let head = configs(2)[0].init(&device).unwrap();
    let mask = Tensor::<2>::ones([1, 3], &device);
    let err = head
        .forward(Tensor::zeros([1, 1, 3, H], &device), mask.clone())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "head input: hidden has shape [1, 1, 3, 12], expected [batch >= 1, 2, tokens >= 1, 12]"
    );
    let err = head
        .forward(Tensor::zeros([1, 2, 3, H + 1], &device), mask)
        .unwrap_err();
    assert!(
        matches!(
            err,
            HeadError::Input {
                tensor: "hidden",
                ..
            }
        ),
        "{err}"
    );
    let err = head.forward(
        Tensor::zeros([1, 2, 3, H], &device),
        Tensor::ones([1, 2], &device),
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "head input: mask has shape [1, 2], expected [1, 3] (batch, tokens of hidden)"
    );
}

/// Counts float parameters and those with a non-zero gradient.
struct GradientCensus<'a> {
    grads: &'a GradientsParams,
    params: usize,
    nonzero: usize,
}

impl ModuleVisitor for GradientCensus<'_> {
    fn visit_float<const N: usize>(&mut self, param: &Param<Tensor<N>>) {
        self.params += 1;
        if let Some(g) = self.grads.get::<N>(param.id)
            && host(g.abs().sum())[0] > 0.0
        {
            self.nonzero += 1;
        }
    }
}

#[test]
fn every_parameter_of_every_head_gets_a_gradient() {
    let device = Device::flex().autodiff();
    for config in configs(3) {
        device.seed(5);
        let head = config.init(&device).unwrap();
        let (hidden, mask) = inputs(&mut Rng::new(6), 3, &[3, 2], 3, &device);
        let target = tensor(Rng::new(7).vec(2 * D), [2, D], &device);
        let loss = (head.forward(hidden, mask).unwrap() * target).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &head);
        let mut census = GradientCensus {
            grads: &grads,
            params: 0,
            nonzero: 0,
        };
        head.visit(&mut census);
        eprintln!(
            "{:?} head: {} parameter tensors",
            config.kind, census.params
        );
        assert!(census.params >= 3, "{} parameter tensors", census.params);
        assert_eq!(
            census.nonzero, census.params,
            "{:?}: parameters without gradient",
            config
        );
    }
}

#[test]
fn attention_pool_weights_real_tokens_by_the_softmax_of_their_scores() {
    let device = Device::flex();
    // Two rows of 3 token slots, width 2: row 0 has 3 real tokens, row 1 has 2 (one padding slot).
    let x = [
        1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 3.0, -1.0, 1.0, 1.0, 100.0, 100.0,
    ];
    let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
    let xs = || tensor(x.to_vec(), [2, 3, 2], &device);
    let ms = || tensor(mask.to_vec(), [2, 3], &device);
    let mut pool = AttentionPool::new(2, &device);
    // Zero scores: the masked mean (padding ignored).
    let fresh = host(pool.forward(xs(), ms()));
    let want_mean = [1.0, 1.0, 2.0, 0.0];
    for (g, w) in fresh.iter().zip(want_mean) {
        assert!((g - w).abs() < 1e-6, "{fresh:?}");
    }
    // Score vector (1, -1): row 0 scores (1, -1, 0), row 1 scores (4, 0) (padding excluded).
    pool.score = burn::module::Param::from_tensor(tensor(vec![1.0, -1.0], [2], &device));
    let e = |v: f64| v.exp();
    let z0 = e(1.0) + e(-1.0) + e(0.0);
    let w0 = [e(1.0) / z0, e(-1.0) / z0, e(0.0) / z0];
    let z1 = e(4.0) + e(0.0);
    let w1 = [e(4.0) / z1, e(0.0) / z1];
    let want = [
        w0[0] + w0[2] * 2.0,
        w0[1] + w0[2] * 2.0,
        w1[0] * 3.0 + w1[1],
        -w1[0] + w1[1],
    ];
    let got = host(pool.forward(xs(), ms()));
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
    let weights = host(pool.weights(xs(), ms()));
    assert_eq!(weights[5], 0.0, "padding gets no weight");
}

#[test]
fn token_pooling_by_attention_is_refused_for_the_mapper() {
    let config = HeadConfig {
        token_pooling: nr_head::TokenPooling::Attention,
        ..HeadConfig::new(HeadKind::Mapper, H, D)
    };
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("token_pooling"), "{err}");
}
