//! Loading a Llama-family chat LLM from a GGUF file.
//!
//! GGUF names tensors the llama.cpp way (`blk.3.attn_q.weight`); [`GgufLlamaWeights`] presents them
//! under HF names so [`super::build::build_llama`] serves both formats. llama.cpp's converter permutes
//! the rows of Q and K for its interleaved RoPE in `llama` files; they are permuted back here so the
//! decoder uses HF's rotate-half RoPE for every source.

use std::path::Path;

use burn::tensor::Device;

use super::config::LlamaConfig;
use super::{ChatTemplate, Llm, LlmTokenizer};
use crate::error::{BackboneError, Result};
use crate::gguf::GgufFile;
use crate::weights::{HostTensor, WeightSource};

/// GGUF architectures this decoder implements, and whether their q/k/v projections carry biases.
const GGUF_ARCHITECTURES: &[(&str, bool)] =
    &[("llama", false), ("qwen2", true), ("mistral", false)];

pub(super) fn load(path: &Path, device: &Device) -> Result<Llm> {
    let gguf = GgufFile::open(path)?;
    let config = config_from_gguf(&gguf)?;
    let tokenizer = LlmTokenizer::from_gguf(&gguf)?;
    let template_src = gguf
        .chat_template()?
        .ok_or_else(|| BackboneError::missing(path, "key 'tokenizer.chat_template'"))?
        .to_string();
    let template = ChatTemplate::new(
        &template_src,
        &tokenizer.token_text(tokenizer.bos_id),
        &tokenizer.token_text(tokenizer.stop_ids.first().copied()),
    )?;
    let weights = GgufLlamaWeights::new(&gguf, &config);
    let model = super::build::build_llama(config.clone(), &weights, device)?;
    Ok(Llm {
        model,
        tokenizer,
        template,
        source: path.to_path_buf(),
    })
}

fn meta_int(gguf: &GgufFile, key: &str) -> Result<usize> {
    let v = gguf
        .metadata(key)
        .ok_or_else(|| BackboneError::missing(gguf.path(), format!("key '{key}'")))?;
    v.as_integer()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| {
            BackboneError::malformed(
                gguf.path(),
                format!("key '{key}' is not a non-negative integer"),
            )
        })
}

/// An optional integer key: `None` when absent, an error naming the key when present but not a
/// non-negative integer (a malformed value is never replaced by a default).
fn meta_int_opt(gguf: &GgufFile, key: &str) -> Result<Option<usize>> {
    if gguf.metadata(key).is_none() {
        return Ok(None);
    }
    meta_int(gguf, key).map(Some)
}

fn meta_float(gguf: &GgufFile, key: &str) -> Result<Option<f64>> {
    match gguf.metadata(key) {
        None => Ok(None),
        Some(v) => v.as_float().map(Some).ok_or_else(|| {
            BackboneError::malformed(gguf.path(), format!("key '{key}' is not a number"))
        }),
    }
}

/// Hyper-parameters from the `{arch}.*` keys.
pub fn config_from_gguf(gguf: &GgufFile) -> Result<LlamaConfig> {
    let path = gguf.path();
    let arch = gguf
        .metadata("general.architecture")
        .and_then(|v| v.as_str())
        .ok_or_else(|| BackboneError::missing(path, "key 'general.architecture'"))?
        .to_string();
    let &(_, attention_bias) = GGUF_ARCHITECTURES
        .iter()
        .find(|(name, _)| *name == arch)
        .ok_or_else(|| {
            BackboneError::unsupported(path, format!("general.architecture = {arch}"))
        })?;
    let hidden_size = meta_int(gguf, &format!("{arch}.embedding_length"))?;
    let num_heads = meta_int(gguf, &format!("{arch}.attention.head_count"))?;
    let num_kv_heads =
        meta_int_opt(gguf, &format!("{arch}.attention.head_count_kv"))?.unwrap_or(num_heads);
    let head_dim = meta_int_opt(gguf, &format!("{arch}.attention.key_length"))?
        .unwrap_or(hidden_size / num_heads.max(1));
    let vocab_size = match meta_int_opt(gguf, &format!("{arch}.vocab_size"))? {
        Some(v) => v,
        None => gguf
            .metadata("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .map(|a| a.len())
            .ok_or_else(|| {
                BackboneError::missing(
                    path,
                    format!("key '{arch}.vocab_size' or 'tokenizer.ggml.tokens'"),
                )
            })?,
    };
    let config = LlamaConfig {
        vocab_size,
        hidden_size,
        intermediate_size: meta_int(gguf, &format!("{arch}.feed_forward_length"))?,
        num_layers: meta_int(gguf, &format!("{arch}.block_count"))?,
        num_heads,
        num_kv_heads,
        head_dim,
        rms_norm_eps: meta_float(gguf, &format!("{arch}.attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5),
        rope_theta: meta_float(gguf, &format!("{arch}.rope.freq_base"))?.unwrap_or(10_000.0),
        max_position_embeddings: meta_int_opt(gguf, &format!("{arch}.context_length"))?
            .unwrap_or(4096),
        tie_word_embeddings: !gguf.contains("output.weight"),
        attention_bias,
        architecture: arch,
    };
    config.validate(path)?;
    Ok(config)
}

/// GGUF tensors under HF names, with llama.cpp's Q/K row permutation undone: a GGUF file seen as
/// an HF checkpoint (also handy to convert one into the other).
pub struct GgufLlamaWeights<'a> {
    file: &'a GgufFile,
    config: &'a LlamaConfig,
}

impl<'a> GgufLlamaWeights<'a> {
    pub fn new(file: &'a GgufFile, config: &'a LlamaConfig) -> Self {
        Self { file, config }
    }
}

/// Maps an HF tensor name to its GGUF name.
fn gguf_name(hf: &str) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, local) = rest.split_once('.')?;
    let (module, kind) = local.rsplit_once('.')?;
    let module = match module {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{module}.{kind}"))
}

/// Undoes llama.cpp's `permute(w, n_head)`: rows grouped per head as (pairs, 2) become (2, pairs).
fn unpermute_rows(t: HostTensor, n_head: usize) -> HostTensor {
    let rows = t.shape[0];
    let cols: usize = t.shape[1..].iter().product();
    let head_dim = rows / n_head;
    let half = head_dim / 2;
    let mut data = vec![0.0f32; t.data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let from = h * head_dim + i * 2 + j;
                let to = h * head_dim + j * half + i;
                data[to * cols..(to + 1) * cols]
                    .copy_from_slice(&t.data[from * cols..(from + 1) * cols]);
            }
        }
    }
    HostTensor {
        data,
        shape: t.shape,
    }
}

impl WeightSource for GgufLlamaWeights<'_> {
    fn path(&self) -> &Path {
        self.file.path()
    }

    fn contains(&self, name: &str) -> bool {
        gguf_name(name).is_some_and(|g| self.file.contains(&g))
    }

    fn tensor(&self, name: &str) -> Result<HostTensor> {
        let g = gguf_name(name).ok_or_else(|| {
            BackboneError::missing(self.file.path(), format!("a GGUF tensor for '{name}'"))
        })?;
        let t = self.file.tensor(&g)?;
        if self.config.architecture != "llama" {
            return Ok(t);
        }
        Ok(match name.rsplit('.').nth(1) {
            Some("q_proj") => unpermute_rows(t, self.config.num_heads),
            Some("k_proj") => unpermute_rows(t, self.config.num_kv_heads),
            _ => t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hyper-parameters of a tiny llama GGUF whose `extra` key holds `value`.
    fn config_with(extra: &str, value: crate::gguf::GgufValue) -> Result<LlamaConfig> {
        use crate::gguf::{GgufArray, GgufValue, GgufWriter};
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", GgufValue::String("llama".into()));
        for (key, v) in [
            ("llama.embedding_length", 8u32),
            ("llama.attention.head_count", 2),
            ("llama.feed_forward_length", 16),
            ("llama.block_count", 1),
        ] {
            w.add_metadata(key, GgufValue::U32(v));
        }
        w.add_metadata(
            "tokenizer.ggml.tokens",
            GgufValue::Array(GgufArray::String(vec!["a".into(), "b".into()])),
        );
        w.add_metadata(extra, value);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        w.write(&path).unwrap();
        config_from_gguf(&GgufFile::open(&path).unwrap())
    }

    #[test]
    fn optional_keys_default_when_absent_and_fail_when_malformed() {
        use crate::gguf::GgufValue;
        let c = config_with("general.name", GgufValue::String("tiny".into())).unwrap();
        assert_eq!((c.num_kv_heads, c.head_dim, c.vocab_size), (2, 4, 2));
        assert_eq!(c.max_position_embeddings, 4096);
        let c = config_with("llama.attention.head_count_kv", GgufValue::U32(1)).unwrap();
        assert_eq!(c.num_kv_heads, 1);
        for key in [
            "llama.attention.head_count_kv",
            "llama.attention.key_length",
            "llama.vocab_size",
            "llama.context_length",
        ] {
            let err = config_with(key, GgufValue::String("three".into()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(key) && err.contains("not a non-negative integer"),
                "{err}"
            );
        }
    }

    #[test]
    fn hf_names_map_to_gguf_names() {
        assert_eq!(
            gguf_name("model.layers.7.self_attn.q_proj.weight").unwrap(),
            "blk.7.attn_q.weight"
        );
        assert_eq!(
            gguf_name("model.layers.0.mlp.down_proj.weight").unwrap(),
            "blk.0.ffn_down.weight"
        );
        assert_eq!(
            gguf_name("model.layers.12.self_attn.k_proj.bias").unwrap(),
            "blk.12.attn_k.bias"
        );
        assert_eq!(
            gguf_name("model.embed_tokens.weight").unwrap(),
            "token_embd.weight"
        );
        assert_eq!(gguf_name("model.layers.1.unknown.weight"), None);
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // 2 heads of head_dim 4, 1 column: llama.cpp's permute maps HF row order
        // [h0: a0 a1 b0 b1 | h1: ...] (halves a, b) to interleaved [a0 b0 a1 b1].
        let gguf = HostTensor {
            data: vec![0., 2., 1., 3., 4., 6., 5., 7.],
            shape: vec![8, 1],
        };
        let hf = unpermute_rows(gguf, 2);
        assert_eq!(hf.data, vec![0., 1., 2., 3., 4., 5., 6., 7.]);
    }
}
