//! The Llama-family decoder as burn modules: RMSNorm, RoPE, grouped-query attention, SwiGLU MLP.
//!
//! Batches are **left-padded**: every row ends at the last column, so the last token of each prompt
//! is at the same index and generation appends one column per step. Padding is expressed by the
//! additive attention mask and by per-row position ids, so a padded row computes exactly what it
//! computes alone.

use std::collections::BTreeMap;

use burn::nn::{Embedding, RmsNorm};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::LlamaConfig;
use super::host_decoder::{HostDecoder, HostKv};
use super::projection::{Projection, on_host};
use super::rope::{Rope, RopeAngles};
use crate::error::{BackboneError, Result};
use crate::kernels::swiglu::silu_mul_in_place;
use crate::kernels::{PackedBf16, Precision, bf16_supported};
use crate::weights::to_host;

/// Added to attention scores of masked keys. Every query row keeps at least one key (padding
/// queries attend to themselves), so no softmax row is all `-inf`; an infinite mask also keeps
/// `exp` off glibc's slow underflow path that a large finite negative takes.
pub const MASKED: f32 = f32::NEG_INFINITY;

/// Self-attention with grouped key/value heads.
#[derive(Debug)]
pub struct Attention {
    pub q_proj: Projection,
    pub k_proj: Projection,
    pub v_proj: Projection,
    pub o_proj: Projection,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

/// SwiGLU feed-forward block: `down(silu(gate(x)) * up(x))`.
#[derive(Debug)]
pub struct Mlp {
    pub gate_proj: Projection,
    pub up_proj: Projection,
    pub down_proj: Projection,
}

/// One pre-norm decoder layer.
#[derive(Debug)]
pub struct DecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Mlp,
}

/// Keys and values of the tokens seen so far, per layer.
#[derive(Debug, Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<LayerKv>>,
}

/// One layer's keys and values, held where the pass that filled them runs.
#[derive(Debug, Clone)]
enum LayerKv {
    /// Keys and values `[batch, kv_heads, seen, head_dim]` on the model's device (boxed: a
    /// tensor handle is far larger than the host variant).
    Tensors(Box<(Tensor<4>, Tensor<4>)>),
    /// On the host, for [`HostDecoder`].
    Host(HostKv),
}

impl LayerKv {
    fn len(&self) -> usize {
        match self {
            LayerKv::Tensors(kv) => kv.0.dims()[2],
            LayerKv::Host(kv) => kv.len(),
        }
    }

    /// As tensors on `device` (a cache the host pass filled, read by the burn path).
    fn into_tensors(self, device: &Device) -> (Tensor<4>, Tensor<4>) {
        match self {
            LayerKv::Tensors(kv) => *kv,
            LayerKv::Host(kv) => {
                let (k, v, dims) = kv.to_rows();
                let tensor = |data| Tensor::from_data(TensorData::new(data, dims), device);
                (tensor(k), tensor(v))
            }
        }
    }

    /// On the host (a cache the burn path filled, read by the host pass).
    fn into_host(self) -> HostKv {
        match self {
            LayerKv::Host(kv) => kv,
            LayerKv::Tensors(kv) => {
                let (k, v) = *kv;
                let dims = k.dims();
                HostKv::from_rows(&read_cpu(k), &read_cpu(v), dims)
            }
        }
    }
}

/// The values of a CPU tensor (its read cannot fail: a failure is a bug, not bad input).
fn read_cpu<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    to_host(t).expect("reading a CPU tensor")
}

impl KvCache {
    /// Number of cached positions (0 when empty).
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, LayerKv::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the first `len` positions of every layer (no-op when it holds no more).
    pub fn truncate(&mut self, len: usize) {
        for layer in self.layers.iter_mut().flatten() {
            match layer {
                LayerKv::Tensors(kv) => {
                    let (k, v) = &mut **kv;
                    let [b, h, s, d] = k.dims();
                    if s > len {
                        *k = k.clone().slice([0..b, 0..h, 0..len, 0..d]);
                        *v = v.clone().slice([0..b, 0..h, 0..len, 0..d]);
                    }
                }
                LayerKv::Host(kv) => kv.truncate(len),
            }
        }
    }
}

/// What one forward pass returns.
#[derive(Debug)]
pub struct ForwardOutput {
    /// Requested hidden states by layer index (0 = embeddings, i = output of layer i,
    /// `num_layers` = after the final norm), each `[batch, seq, hidden]`.
    pub hidden: BTreeMap<usize, Tensor<3>>,
    /// Final-normed states of the last column `[batch, hidden]`, the input of the LM head.
    pub last_normed: Tensor<2>,
}

/// The decoder weights plus RoPE tables.
#[derive(Debug)]
pub struct LlamaModel {
    pub config: LlamaConfig,
    pub embed_tokens: Embedding,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    /// `[hidden, vocab]` projection; for tied models it holds the transposed embedding matrix.
    pub lm_head: Projection,
    pub rope: Rope,
    pub device: Device,
    /// What the projections run in: [`Precision::F32`] or [`Precision::Bf16`], never `Auto`.
    pub precision: Precision,
    /// The layers packed for the host pass, when the projections run in bf16 on a CPU that runs
    /// it (then the layers' own projections stay f32 and unpacked).
    pub(crate) host: Option<HostDecoder>,
}

impl Attention {
    fn forward(
        &self,
        x: Tensor<3>,
        angles: &RopeAngles,
        mask: &Tensor<4>,
        cache: Option<&mut Option<LayerKv>>,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let device = x.device();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = self
            .q_proj
            .forward(x.clone())
            .reshape([b, s, h, d])
            .swap_dims(1, 2);
        let k = self
            .k_proj
            .forward(x.clone())
            .reshape([b, s, kvh, d])
            .swap_dims(1, 2);
        let v = self
            .v_proj
            .forward(x)
            .reshape([b, s, kvh, d])
            .swap_dims(1, 2);
        let q = angles.rotate(q);
        let k = angles.rotate(k);
        let (k, v) = match cache {
            Some(slot) => {
                let (k, v) = match slot.take().map(|kv| kv.into_tensors(&device)) {
                    Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
                    None => (k, v),
                };
                *slot = Some(LayerKv::Tensors(Box::new((k.clone(), v.clone()))));
                (k, v)
            }
            None => (k, v),
        };
        let total = k.dims()[2];
        let rep = h / kvh;
        let (k, v) = if rep == 1 {
            (k, v)
        } else {
            let expand = |t: Tensor<4>| {
                t.unsqueeze_dim::<5>(2)
                    .expand([b, kvh, rep, total, d])
                    .reshape([b, h, total, d])
            };
            (expand(k), expand(v))
        };
        // softmax(q k^T / sqrt(d) + mask) v. Written out: on flex it measured faster than the fused
        // `module::attention` kernel for these shapes (docs/performance.md).
        let scores = q.matmul(k.swap_dims(2, 3)) / (d as f64).sqrt() + mask.clone();
        let out = softmax(scores, 3).matmul(v);
        let out = out.swap_dims(1, 2).reshape([b, s, h * d]);
        self.o_proj.forward(out)
    }
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if let (Some(gate), Some(up), Some(down)) = (
            self.gate_proj.bf16_without_bias(),
            self.up_proj.bf16_without_bias(),
            self.down_proj.bf16_without_bias(),
        ) {
            return Self::forward_bf16(x, gate, up, down);
        }
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }

    /// The bf16 path on the host, one round trip per layer: the input rounded once for gate and
    /// up, `silu(gate) * up` in place, then down.
    fn forward_bf16(
        x: Tensor<3>,
        gate: &PackedBf16,
        up: &PackedBf16,
        down: &PackedBf16,
    ) -> Tensor<3> {
        on_host(x, down.cols(), |x, n| {
            let rows = gate.round_input(x, n);
            let mut hidden = gate.matmul_rows(&rows);
            silu_mul_in_place(&mut hidden, &up.matmul_rows(&rows));
            down.matmul(&hidden, n)
        })
    }
}

impl DecoderLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        angles: &RopeAngles,
        mask: &Tensor<4>,
        cache: Option<&mut Option<LayerKv>>,
    ) -> Tensor<3> {
        let attn =
            self.self_attn
                .forward(self.input_layernorm.forward(x.clone()), angles, mask, cache);
        let x = x + attn;
        let mlp = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()));
        x + mlp
    }
}

impl LlamaModel {
    /// Runs the projections in `precision` (`Auto`: bf16 where the device is the CPU and the CPU
    /// has AVX-512 BF16, f32 elsewhere) and returns what it chose. Attention scores, norms and
    /// the residual stream stay f32 whatever the choice.
    pub fn set_precision(&mut self, precision: Precision) -> Result<Precision> {
        let cpu_has_bf16 = self.runs_on_cpu() && bf16_supported();
        let chosen = match precision {
            Precision::F32 => Precision::F32,
            Precision::Auto if cpu_has_bf16 => Precision::Bf16,
            Precision::Auto => Precision::F32,
            Precision::Bf16 if cpu_has_bf16 => Precision::Bf16,
            Precision::Bf16 => {
                return Err(BackboneError::Input(format!(
                    "precision bf16: needs the flex (CPU) device on a CPU with AVX-512 BF16 ({}; device {:?}); use \"auto\" or \"f32\"",
                    crate::kernels::cpu_features(),
                    self.device
                )));
            }
        };
        if chosen != self.precision {
            let on = chosen == Precision::Bf16;
            self.host = None;
            if on && HostDecoder::supported(self) {
                self.host = Some(HostDecoder::new(self)?);
            }
            // The layers' own projections are packed only where the host pass does not run them.
            let layers_on = on && self.host.is_none();
            for layer in &mut self.layers {
                let a = &mut layer.self_attn;
                for p in [&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj] {
                    p.use_bf16(layers_on)?;
                }
                let m = &mut layer.mlp;
                for p in [&mut m.gate_proj, &mut m.up_proj, &mut m.down_proj] {
                    p.use_bf16(layers_on)?;
                }
            }
            self.lm_head.use_bf16(on)?;
            self.precision = chosen;
        }
        Ok(chosen)
    }

    /// Whether the model lives on the flex (CPU) device, where the CPU kernels apply.
    fn runs_on_cpu(&self) -> bool {
        #[cfg(feature = "flex")]
        {
            self.device == Device::flex()
        }
        #[cfg(not(feature = "flex"))]
        {
            false
        }
    }

    /// Hidden states of the layers in `want` only, stopping after the deepest one: extraction of a
    /// middle layer skips the layers above it. No KV cache, no logits.
    pub fn hidden_states(
        &self,
        ids: Tensor<2, Int>,
        positions: &Tensor<2, Int>,
        mask: &Tensor<4>,
        want: &[usize],
    ) -> BTreeMap<usize, Tensor<3>> {
        let n = self.layers.len();
        let deepest = want.iter().copied().max().unwrap_or(0);
        if deepest >= n {
            return self.forward(ids, positions, mask, None, want).hidden;
        }
        self.run_layers(ids, positions, mask, None, want, deepest).0
    }

    /// [`Self::hidden_states`] of new tokens after those in `cache` (whose first `depth` layers it
    /// extends): `depth` decoder layers are run, and the final norm when a wanted layer is the
    /// last one.
    pub fn hidden_states_cached(
        &self,
        ids: Tensor<2, Int>,
        positions: &Tensor<2, Int>,
        mask: &Tensor<4>,
        cache: &mut KvCache,
        want: &[usize],
        depth: usize,
    ) -> BTreeMap<usize, Tensor<3>> {
        let n = self.layers.len();
        let (mut hidden, x) = self.run_layers(ids, positions, mask, Some(cache), want, depth);
        if depth == n && want.contains(&n) {
            hidden.insert(n, self.norm.forward(x));
        }
        hidden
    }

    /// Embeddings, then the first `depth` decoder layers; keeps the requested layers' outputs
    /// (indices 0..depth, the final norm excluded) and returns the last output.
    fn run_layers(
        &self,
        ids: Tensor<2, Int>,
        positions: &Tensor<2, Int>,
        mask: &Tensor<4>,
        mut cache: Option<&mut KvCache>,
        want: &[usize],
        depth: usize,
    ) -> (BTreeMap<usize, Tensor<3>>, Tensor<3>) {
        let mut hidden = BTreeMap::new();
        let mut x = self.embed_tokens.forward(ids);
        if want.contains(&0) {
            hidden.insert(0, x.clone());
        }
        if let Some(c) = cache.as_deref_mut() {
            c.layers.resize(self.layers.len(), None);
        }
        if let Some(host) = &self.host {
            return self.run_layers_host(host, x, positions, mask, cache, want, depth, hidden);
        }
        let angles = self.rope.angles(positions);
        for (i, layer) in self.layers.iter().take(depth).enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = layer.forward(x, &angles, mask, slot);
            if i + 1 < self.layers.len() && want.contains(&(i + 1)) {
                hidden.insert(i + 1, x.clone());
            }
        }
        (hidden, x)
    }

    /// [`Self::run_layers`] through the host pass, from the embeddings `x`.
    #[allow(clippy::too_many_arguments)]
    fn run_layers_host(
        &self,
        host: &HostDecoder,
        x: Tensor<3>,
        positions: &Tensor<2, Int>,
        mask: &Tensor<4>,
        mut cache: Option<&mut KvCache>,
        want: &[usize],
        depth: usize,
        mut hidden: BTreeMap<usize, Tensor<3>>,
    ) -> (BTreeMap<usize, Tensor<3>>, Tensor<3>) {
        let dims = x.dims();
        let [b, s, _] = dims;
        let (cos, sin) = self.rope.angles(positions).into_parts();
        let (cos, sin) = (read_cpu(cos), read_cpu(sin));
        let mask = read_cpu(mask.clone());
        let mut x = read_cpu(x);
        let n = self.layers.len();
        let device = &self.device;
        let tensor =
            |data: &[f32]| Tensor::<3>::from_data(TensorData::new(data.to_vec(), dims), device);
        let mut kv: Vec<HostKv> = match cache.as_deref_mut() {
            Some(c) => c.layers[..depth]
                .iter_mut()
                .map(|slot| {
                    slot.take()
                        .map_or_else(|| host.empty_kv(b), LayerKv::into_host)
                })
                .collect(),
            None => (0..depth).map(|_| host.empty_kv(b)).collect(),
        };
        host.run(&mut x, b, s, (&cos, &sin), &mask, &mut kv, |layer, x| {
            if layer < n && want.contains(&layer) {
                hidden.insert(layer, tensor(x));
            }
        });
        if let Some(c) = cache {
            for (slot, kv) in c.layers.iter_mut().zip(kv) {
                *slot = Some(LayerKv::Host(kv));
            }
        }
        (hidden, tensor(&x))
    }

    /// Runs `ids` `[batch, seq]` at `positions` `[batch, seq]` with an additive `mask`
    /// `[batch, 1, seq, cached + seq]`, appending to `cache` when given, and returns the hidden states
    /// of the layers in `want` (see [`ForwardOutput::hidden`]).
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        positions: &Tensor<2, Int>,
        mask: &Tensor<4>,
        cache: Option<&mut KvCache>,
        want: &[usize],
    ) -> ForwardOutput {
        let n = self.layers.len();
        let (mut hidden, x) = self.run_layers(ids, positions, mask, cache, want, n);
        let normed = self.norm.forward(x);
        let [b, s, hdim] = normed.dims();
        let last_normed = normed.clone().narrow(1, s - 1, 1).reshape([b, hdim]);
        if want.contains(&n) {
            hidden.insert(n, normed);
        }
        ForwardOutput {
            hidden,
            last_normed,
        }
    }

    /// Next-token logits `[batch, vocab]` from final-normed states `[batch, hidden]`.
    pub fn logits(&self, last_normed: Tensor<2>) -> Tensor<2> {
        self.lm_head.forward(last_normed)
    }
}
