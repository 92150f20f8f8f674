//! Builds a [`LlamaModel`] from any [`WeightSource`] that names tensors the HF way.

use burn::module::Param;
use burn::nn::{Linear, RmsNorm, RmsNormConfig};
use burn::tensor::Device;

use super::config::LlamaConfig;
use super::model::{Attention, DecoderLayer, LlamaModel, Mlp};
use super::rope::Rope;
use crate::error::Result;
use crate::kernels::Precision;
use crate::weights::{WeightSource, embedding, linear, to_device, transposed, vector};

/// RoPE tables are built up to this many positions at most (memory: 2 x positions x head_dim floats).
const MAX_ROPE_POSITIONS: usize = 32_768;

fn rms_norm(
    src: &dyn WeightSource,
    name: &str,
    d: usize,
    eps: f64,
    device: &Device,
) -> Result<RmsNorm> {
    let mut norm = RmsNormConfig::new(d).with_epsilon(eps).init(device);
    norm.gamma = Param::from_tensor(vector(src, name, d, device)?);
    Ok(norm)
}

/// Reads every tensor of the decoder (HF names: `model.layers.{i}.self_attn.q_proj.weight`, ...),
/// checking each shape against `config`.
pub fn build_llama(
    config: LlamaConfig,
    src: &dyn WeightSource,
    device: &Device,
) -> Result<LlamaModel> {
    let (h, hd) = (config.hidden_size, config.head_dim);
    let (q_out, kv_out) = (config.num_heads * hd, config.num_kv_heads * hd);
    let eps = config.rms_norm_eps;
    let embed_tokens = embedding(
        src,
        "model.embed_tokens.weight",
        config.vocab_size,
        h,
        device,
    )?;
    let mut layers = Vec::with_capacity(config.num_layers);
    for i in 0..config.num_layers {
        let p = format!("model.layers.{i}");
        let bias = config.attention_bias;
        layers.push(DecoderLayer {
            input_layernorm: rms_norm(src, &format!("{p}.input_layernorm.weight"), h, eps, device)?,
            self_attn: Attention {
                q_proj: linear(
                    src,
                    &format!("{p}.self_attn.q_proj"),
                    h,
                    q_out,
                    bias,
                    device,
                )?
                .into(),
                k_proj: linear(
                    src,
                    &format!("{p}.self_attn.k_proj"),
                    h,
                    kv_out,
                    bias,
                    device,
                )?
                .into(),
                v_proj: linear(
                    src,
                    &format!("{p}.self_attn.v_proj"),
                    h,
                    kv_out,
                    bias,
                    device,
                )?
                .into(),
                o_proj: linear(
                    src,
                    &format!("{p}.self_attn.o_proj"),
                    q_out,
                    h,
                    false,
                    device,
                )?
                .into(),
                num_heads: config.num_heads,
                num_kv_heads: config.num_kv_heads,
                head_dim: hd,
            },
            post_attention_layernorm: rms_norm(
                src,
                &format!("{p}.post_attention_layernorm.weight"),
                h,
                eps,
                device,
            )?,
            mlp: Mlp {
                gate_proj: linear(
                    src,
                    &format!("{p}.mlp.gate_proj"),
                    h,
                    config.intermediate_size,
                    false,
                    device,
                )?
                .into(),
                up_proj: linear(
                    src,
                    &format!("{p}.mlp.up_proj"),
                    h,
                    config.intermediate_size,
                    false,
                    device,
                )?
                .into(),
                down_proj: linear(
                    src,
                    &format!("{p}.mlp.down_proj"),
                    config.intermediate_size,
                    h,
                    false,
                    device,
                )?
                .into(),
            },
        });
    }
    let norm = rms_norm(src, "model.norm.weight", h, eps, device)?;
    let lm_head = if !config.tie_word_embeddings && src.contains("lm_head.weight") {
        linear(src, "lm_head", h, config.vocab_size, false, device)?.into()
    } else {
        // Tied head: logits = h . E^T, stored transposed once so each step is a plain matmul.
        let e = src.tensor_with_shape("model.embed_tokens.weight", &[config.vocab_size, h])?;
        Linear {
            weight: Param::from_tensor(to_device::<2>(transposed(&e), device)),
            bias: None,
        }
        .into()
    };
    let rope = Rope::new(
        hd,
        config.rope_theta,
        config.max_position_embeddings.min(MAX_ROPE_POSITIONS),
        device,
    );
    Ok(LlamaModel {
        config,
        embed_tokens,
        layers,
        norm,
        lm_head,
        rope,
        device: device.clone(),
        precision: Precision::F32,
        host: None,
    })
}
