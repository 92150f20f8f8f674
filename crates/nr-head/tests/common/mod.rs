//! Test helpers: small configs, seeded inputs, host copies of tensors.

#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};
use nr_head::{
    BackboneInfo, HeadConfig, HeadKind, HeadMeta, MapperPooling, TeacherInfo, TokenPooling,
};

pub const H: usize = 12;
pub const D: usize = 8;

/// A deterministic generator (SplitMix64) of uniform values in `[-1, 1)`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

pub fn tensor<const N: usize>(data: Vec<f32>, shape: [usize; N], device: &Device) -> Tensor<N> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

pub fn host<const N: usize>(t: Tensor<N>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// One config of each head kind (both mapper poolings, a linear head pooling by attention, and a
/// token-wise MLP pooled by attention), `layers` mixed layers, small widths.
pub fn configs(layers: usize) -> Vec<HeadConfig> {
    let base = |kind| HeadConfig {
        layers,
        hidden: 16,
        ..HeadConfig::new(kind, H, D)
    };
    let mlp = HeadConfig {
        input_layernorm: true,
        dropout: 0.1,
        ..base(HeadKind::Mlp)
    };
    let mapper = HeadConfig {
        mapper_heads: 2,
        mapper_width: Some(8),
        ..base(HeadKind::Mapper)
    };
    let mapper_mean = HeadConfig {
        mapper_pooling: MapperPooling::Mean,
        input_layernorm: true,
        ..mapper.clone()
    };
    let linear_attention = HeadConfig {
        token_pooling: TokenPooling::Attention,
        ..base(HeadKind::Linear)
    };
    let token_mlp_attention = HeadConfig {
        token_mlp: true,
        token_pooling: TokenPooling::Attention,
        input_layernorm: true,
        ..base(HeadKind::Mlp)
    };
    vec![
        base(HeadKind::Linear),
        mlp,
        mapper,
        mapper_mean,
        linear_attention,
        token_mlp_attention,
    ]
}

/// The setup a test head belongs to: a backbone of width [`H`] read at `layers` layers and a
/// teacher of width [`D`].
pub fn meta(layers: usize) -> HeadMeta {
    HeadMeta {
        backbone: BackboneInfo {
            name: "tiny-llm.gguf".into(),
            hidden_size: H,
            layers: (0..layers).map(|l| 10 + l).collect(),
            source: "context".into(),
        },
        teacher: TeacherInfo {
            name: "tiny-teacher".into(),
            dim: D,
        },
    }
}

/// Random hidden states `[batch, layers, tokens, H]` and a mask giving row `i` `lengths[i]` real
/// tokens (the rest is padding filled with large values that must not leak into the result).
pub fn inputs(
    rng: &mut Rng,
    layers: usize,
    lengths: &[usize],
    tokens: usize,
    device: &Device,
) -> (Tensor<4>, Tensor<2>) {
    let b = lengths.len();
    let mut hidden = rng.vec(b * layers * tokens * H);
    let mut mask = vec![0.0f32; b * tokens];
    for (i, &len) in lengths.iter().enumerate() {
        for t in 0..tokens {
            if t < len {
                mask[i * tokens + t] = 1.0;
            } else {
                for l in 0..layers {
                    let start = ((i * layers + l) * tokens + t) * H;
                    hidden[start..start + H].iter_mut().for_each(|x| *x += 50.0);
                }
            }
        }
    }
    (
        tensor(hidden, [b, layers, tokens, H], device),
        tensor(mask, [b, tokens], device),
    )
}
