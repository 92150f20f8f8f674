//! Test helpers: tensors from host arrays, a seeded generator, and central finite differences.

#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};

pub fn cpu() -> Device {
    Device::flex()
}

pub fn autodiff() -> Device {
    Device::flex().autodiff()
}

pub fn t1(data: &[f64], device: &Device) -> Tensor<1> {
    let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [data.len()]), device)
}

pub fn t2(data: &[f64], shape: [usize; 2], device: &Device) -> Tensor<2> {
    let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

pub fn t3(data: &[f64], shape: [usize; 3], device: &Device) -> Tensor<3> {
    let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

pub fn scalar(t: Tensor<1>) -> f64 {
    let v = host(t);
    assert_eq!(v.len(), 1, "a loss is one element");
    v[0]
}

/// Values rounded to f32, so host references see exactly what the tensors hold.
pub fn as_f32(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

/// A small deterministic generator (SplitMix64) of uniform values in `[-1, 1)`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f64> {
        as_f32((0..n).map(|_| self.next()).collect())
    }

    /// `rows` random unit vectors of width `dim`, row-major.
    pub fn unit_rows(&mut self, rows: usize, dim: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(rows * dim);
        for _ in 0..rows {
            let v: Vec<f64> = (0..dim).map(|_| self.next()).collect();
            let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            out.extend(v.iter().map(|x| x / n));
        }
        as_f32(out)
    }
}

/// Central finite differences of `f` at `x` in f64.
pub fn finite_differences(f: impl Fn(&[f64]) -> f64, x: &[f64], eps: f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + eps;
            let up = f(&x);
            x[i] = orig - eps;
            let down = f(&x);
            x[i] = orig;
            (up - down) / (2.0 * eps)
        })
        .collect()
}

/// Asserts `|a - b| <= abs + rel * |b|` element-wise.
pub fn assert_close(a: &[f64], b: &[f64], abs: f64, rel: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= abs + rel * y.abs(),
            "{what}[{i}]: {x} vs reference {y}"
        );
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn logsumexp(z: &[f64]) -> f64 {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}
