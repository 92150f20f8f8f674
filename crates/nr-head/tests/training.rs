//! Heads train: a linear head learns a fixed random linear map, a mapper learns a map of its mean
//! token. Also shows how to run an optimiser step in burn 0.22.

mod common;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use common::*;
use nr_head::{Head, HeadConfig, HeadKind, MapperPooling, l2_normalize};

/// Mean `1 - cos` between the head's output and unit targets.
fn cosine_loss(head: &Head, hidden: Tensor<4>, mask: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let out = head.forward(hidden, mask).unwrap();
    ((out * target).sum_dim(1).neg() + 1.0).mean()
}

/// Loss of the best constant unit vector: `1 - |mean of the targets|`. A head that beats it by far
/// has learned how its output depends on its input.
fn constant_baseline(target: &Tensor<2>) -> f32 {
    let mean = target.clone().mean_dim(0);
    1.0 - host(mean.square().sum().sqrt())[0]
}

/// Full-batch AdamW for `steps` steps; returns the trained head and the first and last losses.
fn fit(
    mut head: Head,
    hidden: Tensor<4>,
    mask: Tensor<2>,
    target: Tensor<2>,
    steps: usize,
    lr: f64,
) -> (Head, f32, f32) {
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    for step in 0..steps {
        let loss = cosine_loss(&head, hidden.clone(), mask.clone(), target.clone());
        last = host(loss.clone())[0];
        if step == 0 {
            first = last;
        }
        // backward -> gradients of the head's parameters -> one optimiser step.
        let grads = GradientsParams::from_grads(loss.backward(), &head);
        head = optim.step(lr, head, grads);
    }
    (head, first, last)
}

#[test]
fn a_linear_head_fits_a_random_linear_map() {
    let device = Device::flex().autodiff();
    device.seed(11);
    let n = 256;
    let mut rng = Rng::new(12);
    let x = tensor(rng.vec(n * H), [n, 1, 1, H], &device);
    let map = tensor(rng.vec(H * D), [H, D], &device);
    let target = l2_normalize(x.clone().reshape([n, H]).matmul(map)).detach();
    let mask = Tensor::<2>::ones([n, 1], &device);
    let baseline = constant_baseline(&target);

    let head = HeadConfig::new(HeadKind::Linear, H, D)
        .init(&device)
        .unwrap();
    let (head, first, last) = fit(head, x.clone(), mask.clone(), target.clone(), 300, 1e-2);
    eprintln!("linear head: loss {first} -> {last} in 300 steps, constant baseline {baseline}");
    // The map is exactly representable, so the loss must approach 0: far below both where it
    // started and what the best constant output achieves.
    assert!(
        first > 0.5 && baseline > 0.5,
        "first {first}, baseline {baseline}"
    );
    assert!(
        last < 0.01,
        "loss {last} after 300 steps (first {first}, baseline {baseline})"
    );
    // The valid() copy (no autodiff) computes the same loss.
    let check = cosine_loss(&head.valid(), x.inner(), mask.inner(), target.inner());
    assert!((host(check)[0] - last).abs() < 5e-3);
}

#[test]
fn a_mapper_learns_a_map_of_its_tokens() {
    let device = Device::flex().autodiff();
    device.seed(13);
    let (n, tokens) = (96, 4);
    let mut rng = Rng::new(14);
    let lengths: Vec<usize> = (0..n).map(|i| 1 + i % tokens).collect();
    let (hidden, mask) = inputs(&mut rng, 1, &lengths, tokens, &device);
    // Target: a fixed linear map of the mean over the real tokens.
    let real = hidden.clone().reshape([n, tokens, H]) * mask.clone().reshape([n, tokens, 1]);
    let count = mask.clone().sum_dim(1).reshape([n, 1]);
    let mean = real.sum_dim(1).reshape([n, H]) / count;
    let target = l2_normalize(mean.matmul(tensor(rng.vec(H * D), [H, D], &device))).detach();
    let baseline = constant_baseline(&target);

    let config = HeadConfig {
        hidden: 32,
        mapper_heads: 2,
        mapper_width: Some(16),
        mapper_pooling: MapperPooling::Query,
        ..HeadConfig::new(HeadKind::Mapper, H, D)
    };
    let head = config.init(&device).unwrap();
    let (_, first, last) = fit(head, hidden, mask, target, 200, 3e-3);
    eprintln!("mapper head: loss {first} -> {last} in 200 steps, constant baseline {baseline}");
    assert!(
        last < 0.25 * baseline && last < 0.25 * first,
        "loss {last} (first {first}, baseline {baseline})"
    );
}
