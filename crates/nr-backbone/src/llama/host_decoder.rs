//! The decoder layers on the CPU in host buffers, where the projections run in bf16: one pass per
//! layer with no tensor round trips. q/k/v are one packed matrix, RoPE and RMSNorm run on the
//! rows in place, attention is [`crate::kernels::attention`] per head over keys kept transposed
//! ([`HostKv`]), and the buffers are allocated once per forward pass, not once per operation.
//!
//! Rows are independent everywhere but in attention, and attention gives a row the same bits
//! whatever rows run beside it, so appending a prompt's tokens to a cache gives the states of a
//! whole-prompt pass exactly.

use rayon::prelude::*;

use super::model::{DecoderLayer, LlamaModel};
use crate::error::Result;
use crate::kernels::PackedBf16;
use crate::kernels::attention::{self, HeadInputs};
use crate::kernels::swiglu::silu_mul_in_place;
use crate::weights::to_host;

/// Query rows of one head per parallel attention task.
const QUERY_BLOCK: usize = 16;

/// Keys and values of one layer, on the host: keys transposed per (row, kv head) so that the
/// attention kernel reads 16 keys as one vector, values as rows.
#[derive(Debug, Clone, Default)]
pub struct HostKv {
    batch: usize,
    heads: usize,
    head_dim: usize,
    len: usize,
    /// Key columns allocated per (row, head), a multiple of 16; columns past `len` are finite.
    cap: usize,
    /// `[batch][heads][head_dim][cap]`.
    kt: Vec<f32>,
    /// `[batch][heads][cap][head_dim]`.
    v: Vec<f32>,
}

impl HostKv {
    fn new(batch: usize, heads: usize, head_dim: usize) -> Self {
        Self {
            batch,
            heads,
            head_dim,
            ..Self::default()
        }
    }

    /// Cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Keeps the first `len` positions.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Room for `extra` more positions (doubling, so a conversation's turns copy rarely).
    fn reserve(&mut self, extra: usize) {
        let need = self.len + extra;
        if need <= self.cap {
            return;
        }
        let cap = need.max(2 * self.cap).next_multiple_of(16);
        let (d, groups) = (self.head_dim, self.batch * self.heads);
        let mut kt = vec![0.0f32; groups * d * cap];
        let mut v = vec![0.0f32; groups * cap * d];
        for g in 0..groups {
            for t in 0..d {
                let from = (g * d + t) * self.cap;
                kt[(g * d + t) * cap..][..self.len].copy_from_slice(&self.kt[from..][..self.len]);
            }
            v[g * cap * d..][..self.len * d]
                .copy_from_slice(&self.v[g * self.cap * d..][..self.len * d]);
        }
        (self.kt, self.v, self.cap) = (kt, v, cap);
    }

    /// Appends `seq` positions per row from the rows of `qkv` (`[batch * seq, stride]`), keys at
    /// column `k_at`, values at `v_at`.
    fn append(&mut self, qkv: &[f32], stride: usize, k_at: usize, v_at: usize, seq: usize) {
        self.reserve(seq);
        let (d, cap) = (self.head_dim, self.cap);
        for b in 0..self.batch {
            for i in 0..seq {
                let row = &qkv[(b * seq + i) * stride..][..stride];
                let j = self.len + i;
                for g in 0..self.heads {
                    let group = b * self.heads + g;
                    let k = &row[k_at + g * d..][..d];
                    for (t, k) in k.iter().enumerate() {
                        self.kt[(group * d + t) * cap + j] = *k;
                    }
                    self.v[(group * cap + j) * d..][..d].copy_from_slice(&row[v_at + g * d..][..d]);
                }
            }
        }
        self.len += seq;
    }

    /// From keys and values `[batch, heads, seen, head_dim]` (a cache the burn path filled).
    pub(crate) fn from_rows(k: &[f32], v: &[f32], dims: [usize; 4]) -> Self {
        let [batch, heads, seen, d] = dims;
        let mut kv = Self::new(batch, heads, d);
        kv.reserve(seen);
        let cap = kv.cap;
        for g in 0..batch * heads {
            for j in 0..seen {
                for t in 0..d {
                    kv.kt[(g * d + t) * cap + j] = k[(g * seen + j) * d + t];
                }
            }
            kv.v[g * cap * d..][..seen * d].copy_from_slice(&v[g * seen * d..][..seen * d]);
        }
        kv.len = seen;
        kv
    }

    /// Keys and values `[batch, heads, len, head_dim]` (for the burn path) and their dims.
    pub(crate) fn to_rows(&self) -> (Vec<f32>, Vec<f32>, [usize; 4]) {
        let (d, cap, len) = (self.head_dim, self.cap, self.len);
        let groups = self.batch * self.heads;
        let mut k = vec![0.0f32; groups * len * d];
        let mut v = vec![0.0f32; groups * len * d];
        for g in 0..groups {
            for j in 0..len {
                for t in 0..d {
                    k[(g * len + j) * d + t] = self.kt[(g * d + t) * cap + j];
                }
            }
            v[g * len * d..][..len * d].copy_from_slice(&self.v[g * cap * d..][..len * d]);
        }
        (k, v, [self.batch, self.heads, len, d])
    }
}

/// One decoder layer's weights as the host pass uses them.
#[derive(Debug)]
struct HostLayer {
    input_norm: Vec<f32>,
    /// q, k and v side by side: `[hidden, (heads + 2 kv_heads) * head_dim]`.
    qkv: PackedBf16,
    qkv_bias: Option<Vec<f32>>,
    o: PackedBf16,
    o_bias: Option<Vec<f32>>,
    post_norm: Vec<f32>,
    gate: PackedBf16,
    up: PackedBf16,
    down: PackedBf16,
}

/// The decoder layers packed for the host pass (see the module docs).
#[derive(Debug)]
pub struct HostDecoder {
    layers: Vec<HostLayer>,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    intermediate: usize,
    eps: f32,
}

/// Work buffers of one forward pass, reused by every layer.
#[derive(Default)]
struct Buffers {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    heads: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// `w[.., cols_a] | w[.., cols_b] | ..`: row-major matrices of equal height side by side.
fn side_by_side(parts: &[(Vec<f32>, usize)], rows: usize) -> Vec<f32> {
    let width: usize = parts.iter().map(|(_, c)| c).sum();
    let mut out = Vec::with_capacity(rows * width);
    for r in 0..rows {
        for (w, cols) in parts {
            out.extend_from_slice(&w[r * cols..(r + 1) * cols]);
        }
    }
    out
}

impl HostDecoder {
    /// Whether the host pass runs `model` on this CPU (AVX-512 BF16; heads 64 or 128 wide).
    pub fn supported(model: &LlamaModel) -> bool {
        crate::kernels::bf16_supported() && attention::supported(model.config.head_dim)
    }

    /// Packs `model`'s layers (call where [`Self::supported`] holds).
    pub fn new(model: &LlamaModel) -> Result<Self> {
        let c = &model.config;
        let layers = model
            .layers
            .iter()
            .map(|l| Self::pack_layer(l, c.hidden_size))
            .collect::<Result<_>>()?;
        let eps = model
            .layers
            .first()
            .map_or(1e-6, |l| l.input_layernorm.epsilon) as f32;
        Ok(Self {
            layers,
            hidden: c.hidden_size,
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
            intermediate: c.intermediate_size,
            eps,
        })
    }

    fn pack_layer(layer: &DecoderLayer, hidden: usize) -> Result<HostLayer> {
        let a = &layer.self_attn;
        let weight = |p: &super::projection::Projection| -> Result<(Vec<f32>, usize)> {
            let w = p.linear.weight.val();
            let cols = w.dims()[1];
            Ok((to_host(w)?, cols))
        };
        let bias = |p: &super::projection::Projection| -> Result<Option<Vec<f32>>> {
            p.linear.bias.as_ref().map(|b| to_host(b.val())).transpose()
        };
        let (q, k, v) = (weight(&a.q_proj)?, weight(&a.k_proj)?, weight(&a.v_proj)?);
        let width = q.1 + k.1 + v.1;
        let qkv = PackedBf16::pack(&side_by_side(&[q, k, v], hidden), hidden, width);
        let qkv_bias = match (bias(&a.q_proj)?, bias(&a.k_proj)?, bias(&a.v_proj)?) {
            (None, None, None) => None,
            (q, k, v) => {
                let or_zero = |b: Option<Vec<f32>>, n: usize| b.unwrap_or_else(|| vec![0.0; n]);
                let q_cols = a.num_heads * a.head_dim;
                let kv_cols = a.num_kv_heads * a.head_dim;
                Some([or_zero(q, q_cols), or_zero(k, kv_cols), or_zero(v, kv_cols)].concat())
            }
        };
        let (o, o_cols) = weight(&a.o_proj)?;
        let pack = |(w, cols): (Vec<f32>, usize)| PackedBf16::pack(&w, w.len() / cols, cols);
        let m = &layer.mlp;
        Ok(HostLayer {
            input_norm: to_host(layer.input_layernorm.gamma.val())?,
            qkv,
            qkv_bias,
            o: pack((o, o_cols)),
            o_bias: bias(&a.o_proj)?,
            post_norm: to_host(layer.post_attention_layernorm.gamma.val())?,
            gate: pack(weight(&m.gate_proj)?),
            up: pack(weight(&m.up_proj)?),
            down: pack(weight(&m.down_proj)?),
        })
    }

    /// A cache for `batch` rows of this decoder's layers.
    pub(crate) fn empty_kv(&self, batch: usize) -> HostKv {
        HostKv::new(batch, self.kv_heads, self.head_dim)
    }

    /// Runs layers `0..depth` over the residual stream `x` (`[batch * seq, hidden]`, the
    /// embeddings on entry, the last layer's output on return) with `rope` (cos and sign-folded
    /// sin of each token's position, `[batch * seq, head_dim]` each, from the model's tables) and
    /// the additive `mask` (`[batch, seq, cached + seq]`), appending to `kv` (one per layer, each
    /// holding `cached` positions). `keep(i, x)` receives the output of layer `i` (1-based).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &self,
        x: &mut [f32],
        batch: usize,
        seq: usize,
        rope: (&[f32], &[f32]),
        mask: &[f32],
        kv: &mut [HostKv],
        mut keep: impl FnMut(usize, &[f32]),
    ) {
        let rows = batch * seq;
        assert_eq!(
            x.len(),
            rows * self.hidden,
            "residual stream of the wrong size"
        );
        assert_eq!(
            (rope.0.len(), rope.1.len()),
            (rows * self.head_dim, rows * self.head_dim),
            "one rotation per token"
        );
        let mut buf = Buffers::default();
        for (i, (layer, kv)) in self.layers.iter().zip(kv.iter_mut()).enumerate() {
            self.layer(layer, x, &mut buf, batch, seq, rope, mask, kv);
            keep(i + 1, x);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        l: &HostLayer,
        x: &mut [f32],
        buf: &mut Buffers,
        batch: usize,
        seq: usize,
        rope: (&[f32], &[f32]),
        mask: &[f32],
        kv: &mut HostKv,
    ) {
        let rows = batch * seq;
        let (h, d) = (self.hidden, self.head_dim);
        let q_cols = self.heads * d;
        let kv_cols = self.kv_heads * d;
        let width = q_cols + 2 * kv_cols;
        let resize = |v: &mut Vec<f32>, n: usize| v.resize(n, 0.0);
        resize(&mut buf.normed, rows * h);
        resize(&mut buf.qkv, rows * width);
        resize(&mut buf.heads, rows * q_cols);
        resize(&mut buf.proj, rows * h);
        resize(&mut buf.gate, rows * self.intermediate);
        resize(&mut buf.up, rows * self.intermediate);

        // Attention block.
        rms_norm(x, &l.input_norm, self.eps, &mut buf.normed);
        l.qkv
            .matmul_rows_into(&l.qkv.round_input(&buf.normed, rows), &mut buf.qkv);
        if let Some(bias) = &l.qkv_bias {
            add_rows(&mut buf.qkv, bias);
        }
        rotate(&mut buf.qkv, width, q_cols + kv_cols, d, rope);
        kv.append(&buf.qkv, width, q_cols, q_cols + kv_cols, seq);
        let keys = kv.len;
        assert_eq!(
            mask.len(),
            rows * keys,
            "mask of the wrong size for {keys} keys"
        );
        self.attend(&buf.qkv, width, kv, mask, seq, &mut buf.heads);
        // Heads `[batch, heads, seq, d]` back to rows `[batch * seq, heads * d]`.
        let heads = &buf.heads;
        buf.normed
            .par_chunks_mut(q_cols)
            .enumerate()
            .for_each(|(r, row)| {
                let (b, i) = (r / seq, r % seq);
                for (hd, dst) in row.chunks_mut(d).enumerate() {
                    dst.copy_from_slice(&heads[((b * self.heads + hd) * seq + i) * d..][..d]);
                }
            });
        l.o.matmul_rows_into(&l.o.round_input(&buf.normed, rows), &mut buf.proj);
        if let Some(bias) = &l.o_bias {
            add_rows(&mut buf.proj, bias);
        }
        add_in_place(x, &buf.proj);

        // MLP block.
        rms_norm(x, &l.post_norm, self.eps, &mut buf.normed);
        let input = l.gate.round_input(&buf.normed, rows);
        l.gate.matmul_rows_into(&input, &mut buf.gate);
        l.up.matmul_rows_into(&input, &mut buf.up);
        silu_mul_in_place(&mut buf.gate, &buf.up);
        l.down
            .matmul_rows_into(&l.down.round_input(&buf.gate, rows), &mut buf.proj);
        add_in_place(x, &buf.proj);
    }

    /// Every head's attention into `out` `[batch, heads, seq, head_dim]`.
    fn attend(
        &self,
        qkv: &[f32],
        width: usize,
        kv: &HostKv,
        mask: &[f32],
        seq: usize,
        out: &mut [f32],
    ) {
        let d = self.head_dim;
        let rep = self.heads / self.kv_heads;
        let keys = kv.len;
        let scale = 1.0 / (d as f32).sqrt();
        let cap = kv.cap;
        out.par_chunks_mut(seq * d)
            .enumerate()
            .for_each(|(bh, head)| {
                let (b, hd) = (bh / self.heads, bh % self.heads);
                let group = b * self.kv_heads + hd / rep;
                let inputs = HeadInputs {
                    q: &qkv[b * seq * width + hd * d..],
                    q_stride: width,
                    kt: &kv.kt[group * d * cap..][..d * cap],
                    kt_stride: cap,
                    v: &kv.v[group * cap * d..][..cap * d],
                    mask: &mask[b * seq * keys..][..seq * keys],
                    mask_stride: keys,
                    keys,
                    head_dim: d,
                    scale,
                };
                head.par_chunks_mut(QUERY_BLOCK * d)
                    .enumerate()
                    .for_each(|(blk, out)| {
                        let first = blk * QUERY_BLOCK;
                        attention::attend(&inputs, first..first + out.len() / d, out);
                    });
            });
    }
}

/// `out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * gamma` per row (as burn's `RmsNorm`).
fn rms_norm(x: &[f32], gamma: &[f32], eps: f32, out: &mut [f32]) {
    let h = gamma.len();
    out.par_chunks_mut(h)
        .zip(x.par_chunks(h))
        .with_min_len(8)
        .for_each(|(out, x)| {
            let mut lanes = [0.0f32; 16];
            let mut chunks = x.chunks_exact(16);
            for c in &mut chunks {
                for (s, v) in lanes.iter_mut().zip(c) {
                    *s += v * v;
                }
            }
            let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
            let rms = ((lanes.iter().sum::<f32>() + tail) / h as f32 + eps).sqrt();
            for ((o, v), g) in out.iter_mut().zip(x).zip(gamma) {
                *o = v / rms * g;
            }
        });
}

/// RoPE in place on the q and k heads (the first `rotated` columns of each row of `width`).
fn rotate(qkv: &mut [f32], width: usize, rotated: usize, d: usize, (cos, sin): (&[f32], &[f32])) {
    let half = d / 2;
    qkv.par_chunks_mut(width)
        .enumerate()
        .with_min_len(8)
        .for_each(|(r, row)| {
            let (c, s) = (&cos[r * d..][..d], &sin[r * d..][..d]);
            for head in row[..rotated].chunks_mut(d) {
                let (lo, hi) = head.split_at_mut(half);
                for i in 0..half {
                    let (a, b) = (lo[i], hi[i]);
                    lo[i] = a * c[i] + b * s[i];
                    hi[i] = b * c[half + i] + a * s[half + i];
                }
            }
        });
}

/// `x[r] += bias` for every row.
fn add_rows(x: &mut [f32], bias: &[f32]) {
    x.par_chunks_mut(bias.len()).for_each(|row| {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    });
}

/// `x += y`.
fn add_in_place(x: &mut [f32], y: &[f32]) {
    x.par_chunks_mut(4096)
        .zip(y.par_chunks(4096))
        .for_each(|(x, y)| {
            for (x, y) in x.iter_mut().zip(y) {
                *x += y;
            }
        });
}
