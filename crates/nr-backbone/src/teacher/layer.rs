//! One BERT encoder layer: self-attention and a feed-forward block, each followed by a residual add
//! and a LayerNorm (post-LN, as in the original BERT).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Tensor};

use super::config::{BertConfig, HiddenAct};
use crate::error::Result;
use crate::weights::{WeightSource, layer_norm, linear};

/// Whether the backend's fused attention reads a boolean mask the other way round. burn-tch 0.22.1
/// hands burn's mask (true = key excluded) to PyTorch's `scaled_dot_product_attention`, where true
/// means "attends": padded sentences came out wrong (caught by the cross-backend test). With an
/// additive bias (here all zeros) burn-tch takes its reference path, which reads the mask burn's way.
fn inverts_boolean_masks(device: &Device) -> bool {
    #[cfg(feature = "tch")]
    if matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::LibTorch(_)
    ) {
        return true;
    }
    let _ = device;
    false
}

/// A post-LN transformer encoder layer with BERT's weight names.
///
/// Query, key and value projections are fused into one `[hidden, 3 * hidden]` matrix so each layer
/// starts with a single matrix product instead of three.
#[derive(Module, Debug)]
pub struct BertLayer {
    /// `attention.self.{query,key,value}` side by side: output columns are q, then k, then v.
    pub qkv: Linear,
    /// `attention.output.dense`.
    pub attention_output: Linear,
    /// `attention.output.LayerNorm`.
    pub attention_norm: LayerNorm,
    /// `intermediate.dense`.
    pub intermediate: Linear,
    /// `output.dense`.
    pub output: Linear,
    /// `output.LayerNorm`.
    pub output_norm: LayerNorm,
    pub num_heads: usize,
    #[module(skip)]
    pub activation: HiddenAct,
}

impl BertLayer {
    /// Builds layer `prefix` (e.g. `encoder.layer.3`) from HF-named weights.
    pub fn load(
        src: &dyn WeightSource,
        prefix: &str,
        cfg: &BertConfig,
        device: &Device,
    ) -> Result<Self> {
        let d = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let proj = |name: &str| {
            linear(
                src,
                &format!("{prefix}.attention.self.{name}"),
                d,
                d,
                true,
                device,
            )
        };
        let parts = [proj("query")?, proj("key")?, proj("value")?];
        let weight = Tensor::cat(parts.iter().map(|l| l.weight.val()).collect(), 1);
        let biases: Option<Vec<Tensor<1>>> = parts
            .iter()
            .map(|l| l.bias.as_ref().map(|b| b.val()))
            .collect();
        let bias = biases.map(|b| Param::from_tensor(Tensor::cat(b, 0)));
        Ok(Self {
            qkv: Linear {
                weight: Param::from_tensor(weight),
                bias,
            },
            attention_output: linear(
                src,
                &format!("{prefix}.attention.output.dense"),
                d,
                d,
                true,
                device,
            )?,
            attention_norm: layer_norm(
                src,
                &format!("{prefix}.attention.output.LayerNorm"),
                d,
                eps,
                device,
            )?,
            intermediate: linear(
                src,
                &format!("{prefix}.intermediate.dense"),
                d,
                cfg.intermediate_size,
                true,
                device,
            )?,
            output: linear(
                src,
                &format!("{prefix}.output.dense"),
                cfg.intermediate_size,
                d,
                true,
                device,
            )?,
            output_norm: layer_norm(src, &format!("{prefix}.output.LayerNorm"), d, eps, device)?,
            num_heads: cfg.num_attention_heads,
            activation: cfg.hidden_act,
        })
    }

    /// `x` `[batch, seq, hidden]`; `padding` `[batch, 1, seq, seq]` is true where a key position is
    /// padding (those keys get zero attention weight). Returns `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<3>, padding: Option<Tensor<4, Bool>>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let heads = self.num_heads;
        let head_dim = hidden / heads;

        // [batch, seq, 3 * hidden] -> [batch, 3 * heads, seq, head_dim]; q, k, v are views of it.
        let qkv = self
            .qkv
            .forward(x.clone())
            .reshape([batch, seq, 3 * heads, head_dim])
            .swap_dims(1, 2);
        let q = qkv.clone().narrow(1, 0, heads);
        let k = qkv.clone().narrow(1, heads, heads);
        let v = qkv.narrow(1, 2 * heads, heads);
        // softmax(q k^T / sqrt(head_dim)) v in f32, padded keys excluded.
        let bias = padding
            .as_ref()
            .filter(|_| inverts_boolean_masks(&x.device()))
            .map(|_| Tensor::zeros([batch, heads, seq, seq], &x.device()));
        let context = attention(q, k, v, padding, bias, AttentionModuleOptions::default());
        let context = context.swap_dims(1, 2).reshape([batch, seq, hidden]);

        let x = self
            .attention_norm
            .forward(self.attention_output.forward(context) + x);
        let inner = self.intermediate.forward(x.clone());
        let inner = self.activation.apply(inner);
        self.output_norm.forward(self.output.forward(inner) + x)
    }
}
