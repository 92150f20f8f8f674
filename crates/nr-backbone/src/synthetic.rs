//! Random-weight models in the exact shapes of real ones, written in the formats real ones come in.
//!
//! Throughput depends on a model's shape, not on its values, and a machine that cannot receive a
//! 100 MB model file (the borrowed GPU machine takes 64 MiB per transfer) can still write one:
//! [`write_llama_gguf`] writes a Llama-family decoder (Llama or Qwen2) as a GGUF v3 file (byte-level
//! BPE tokenizer of the 256 byte symbols and ChatML special tokens, padded to the vocabulary size; a
//! ChatML template), [`write_bert_folder`] a BERT encoder as a sentence-transformers folder
//! (safetensors, `tokenizer.json`, mean pooling, normalisation). Both load with the ordinary
//! loaders ([`crate::llama::Llm::load`], [`crate::teacher::TeacherEncoder::load`]) and are
//! deterministic in their seed. Weights are uniform with standard deviation 0.02 (norm weights 1,
//! BERT's biases 0, Qwen2's q/k/v biases random like the weights), the scale of a freshly
//! initialised transformer, so activations stay finite through every layer.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{BackboneError, Result};
use crate::gguf::{
    CHAT_TEMPLATE_KEY, GgmlType, GgufArray, GgufValue, GgufWriter, TOKEN_TYPE_CONTROL,
};

/// Standard deviation of the random weights.
const WEIGHT_STD: f32 = 0.02;

/// The ChatML template (the one SmolLM2 ships, with a neutral system line).
const CHATML_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The decoder's special tokens, at ids 0, 1, 2 as in SmolLM2.
const LLAMA_SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Which member of the Llama family a synthetic decoder is: what the GGUF names it, and the parts
/// that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderFamily {
    /// Llama / SmolLM2: no biases, output tied to the token embedding.
    Llama,
    /// Qwen2: q/k/v biases, an untied output matrix, the `qwen2` pre-tokenizer.
    Qwen2,
}

impl DecoderFamily {
    /// `general.architecture` of the GGUF file.
    pub fn architecture(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
        }
    }
}

/// The shape of a Llama-family decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaShape {
    pub family: DecoderFamily,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub rope_theta: f32,
    pub context_length: usize,
}

impl LlamaShape {
    /// SmolLM2-135M-Instruct: 30 layers of width 576, 9 query and 3 key/value heads.
    pub fn smollm2_135m() -> Self {
        Self {
            family: DecoderFamily::Llama,
            vocab_size: 49_152,
            hidden_size: 576,
            intermediate_size: 1536,
            num_layers: 30,
            num_heads: 9,
            num_kv_heads: 3,
            rope_theta: 100_000.0,
            context_length: 8192,
        }
    }

    /// A small decoder for correctness checks: 2 layers of width 64, grouped-query attention.
    pub fn tiny() -> Self {
        Self {
            family: DecoderFamily::Llama,
            vocab_size: 320,
            hidden_size: 64,
            intermediate_size: 128,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            rope_theta: 10_000.0,
            context_length: 512,
        }
    }

    /// Qwen2.5-Coder-1.5B-Instruct: 28 layers of width 1536, 12 query and 2 key/value heads.
    pub fn qwen2_5_1_5b() -> Self {
        Self {
            family: DecoderFamily::Qwen2,
            vocab_size: 151_936,
            hidden_size: 1536,
            intermediate_size: 8960,
            num_layers: 28,
            num_heads: 12,
            num_kv_heads: 2,
            rope_theta: 1_000_000.0,
            context_length: 32_768,
        }
    }

    /// [`LlamaShape::tiny`] as a Qwen2 decoder (biases, untied output).
    pub fn qwen2_tiny() -> Self {
        Self {
            family: DecoderFamily::Qwen2,
            ..Self::tiny()
        }
    }

    /// Weights of the decoder (Llama: token embedding tied to the output; Qwen2: untied, and q/k/v
    /// biases).
    pub fn parameters(&self) -> usize {
        let head_dim = self.hidden_size / self.num_heads;
        let kv = self.num_kv_heads * head_dim;
        let mut layer = 2 * self.hidden_size * self.hidden_size
            + 2 * self.hidden_size * kv
            + 3 * self.hidden_size * self.intermediate_size
            + 2 * self.hidden_size;
        let mut embeddings = self.vocab_size * self.hidden_size;
        if self.family == DecoderFamily::Qwen2 {
            layer += self.hidden_size + 2 * kv;
            embeddings *= 2;
        }
        embeddings + self.num_layers * layer + self.hidden_size
    }
}

/// The shape of a BERT encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct BertShape {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub max_positions: usize,
    /// `max_seq_length` of the sentence-transformers folder.
    pub max_seq_length: usize,
}

impl BertShape {
    /// all-MiniLM-L6-v2: 6 layers of width 384, 12 heads, sequences of at most 256 tokens.
    pub fn minilm_l6() -> Self {
        Self {
            vocab_size: 30_522,
            hidden_size: 384,
            intermediate_size: 1536,
            num_layers: 6,
            num_heads: 12,
            max_positions: 512,
            max_seq_length: 256,
        }
    }

    /// A small encoder for correctness checks: 2 layers of width 32.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 200,
            hidden_size: 32,
            intermediate_size: 64,
            num_layers: 2,
            num_heads: 4,
            max_positions: 128,
            max_seq_length: 128,
        }
    }
}

/// Random values of standard deviation [`WEIGHT_STD`] (uniform, so bounded).
fn random_weights(rng: &mut StdRng, n: usize) -> Vec<f32> {
    let bound = WEIGHT_STD * 3f32.sqrt();
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

/// The GPT-2 byte-level symbols, one per byte, in byte order.
fn byte_symbols() -> Vec<String> {
    let mut symbols: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    // The alphabet is a set; GPT-2 orders its byte tokens by byte value, which maps the printable
    // ASCII range onto itself: sorting by code point is enough to make the vocabulary reproducible.
    symbols.sort_unstable();
    symbols.into_iter().map(String::from).collect()
}

/// Writes a random decoder of `shape` as a GGUF v3 file at `path` (matrices Q8_0, norms F32, like
/// the quantised files llama.cpp users load).
pub fn write_llama_gguf(path: &Path, shape: &LlamaShape, seed: u64) -> Result<()> {
    let bad = |what: String| BackboneError::Input(format!("synthetic llama: {what}"));
    if shape.num_heads == 0
        || !shape.hidden_size.is_multiple_of(shape.num_heads)
        || shape.num_kv_heads == 0
        || !shape.num_heads.is_multiple_of(shape.num_kv_heads)
    {
        return Err(bad(format!(
            "{} heads and {} key/value heads do not divide width {}",
            shape.num_heads, shape.num_kv_heads, shape.hidden_size
        )));
    }
    let mut tokens: Vec<String> = LLAMA_SPECIALS.iter().map(|s| s.to_string()).collect();
    tokens.extend(byte_symbols());
    if shape.vocab_size < tokens.len() {
        return Err(bad(format!(
            "vocabulary of {} is below the {} special and byte tokens",
            shape.vocab_size,
            tokens.len()
        )));
    }
    // Specials and unused ids are control tokens: the unused ones are never produced by the
    // tokenizer and never matched in text.
    let token_types: Vec<i32> = (0..shape.vocab_size)
        .map(|id| {
            let byte = (LLAMA_SPECIALS.len()..tokens.len()).contains(&id);
            if byte { 1 } else { TOKEN_TYPE_CONTROL }
        })
        .collect();
    for id in tokens.len()..shape.vocab_size {
        tokens.push(format!("<|unused_{id}|>"));
    }

    let head_dim = shape.hidden_size / shape.num_heads;
    let arch = shape.family.architecture();
    let mut w = GgufWriter::new();
    let meta = |w: &mut GgufWriter, key: &str, v: usize| {
        w.add_metadata(format!("{arch}.{key}"), GgufValue::U32(v as u32));
    };
    w.add_metadata("general.architecture", GgufValue::String(arch.into()));
    w.add_metadata(
        "general.name",
        GgufValue::String(format!("synthetic {arch} (seed {seed})")),
    );
    meta(&mut w, "block_count", shape.num_layers);
    meta(&mut w, "context_length", shape.context_length);
    meta(&mut w, "embedding_length", shape.hidden_size);
    meta(&mut w, "feed_forward_length", shape.intermediate_size);
    meta(&mut w, "attention.head_count", shape.num_heads);
    meta(&mut w, "attention.head_count_kv", shape.num_kv_heads);
    meta(&mut w, "vocab_size", shape.vocab_size);
    meta(&mut w, "rope.dimension_count", head_dim);
    w.add_metadata(
        format!("{arch}.rope.freq_base"),
        GgufValue::F32(shape.rope_theta),
    );
    w.add_metadata(
        format!("{arch}.attention.layer_norm_rms_epsilon"),
        GgufValue::F32(1e-5),
    );
    let pre = match shape.family {
        DecoderFamily::Llama => "smollm",
        DecoderFamily::Qwen2 => "qwen2",
    };
    w.add_metadata("tokenizer.ggml.model", GgufValue::String("gpt2".into()));
    w.add_metadata("tokenizer.ggml.pre", GgufValue::String(pre.into()));
    w.add_metadata(
        "tokenizer.ggml.tokens",
        GgufValue::Array(GgufArray::String(tokens)),
    );
    w.add_metadata(
        "tokenizer.ggml.token_type",
        GgufValue::Array(GgufArray::I32(token_types)),
    );
    w.add_metadata(
        "tokenizer.ggml.merges",
        GgufValue::Array(GgufArray::String(Vec::new())),
    );
    for (key, id) in [("bos", 1u32), ("eos", 2), ("unknown", 0), ("padding", 2)] {
        w.add_metadata(format!("tokenizer.ggml.{key}_token_id"), GgufValue::U32(id));
    }
    w.add_metadata("tokenizer.ggml.add_bos_token", GgufValue::Bool(false));
    w.add_metadata(CHAT_TEMPLATE_KEY, GgufValue::String(CHATML_TEMPLATE.into()));

    let mut rng = StdRng::seed_from_u64(seed);
    let h = shape.hidden_size;
    let kv = shape.num_kv_heads * head_dim;
    let ones = |n: usize| vec![1.0f32; n];
    // Matrices are Q8_0 as in quantised files; biases stay F32 as llama.cpp writes them.
    let mut random = |w: &mut GgufWriter, name: &str, dims: &[usize]| {
        let data = random_weights(&mut rng, dims.iter().product());
        let ty = if dims.len() == 2 {
            GgmlType::Q8_0
        } else {
            GgmlType::F32
        };
        w.add_tensor(name, dims, &data, ty).map(|_| ())
    };
    let qwen2 = shape.family == DecoderFamily::Qwen2;
    random(&mut w, "token_embd.weight", &[shape.vocab_size, h])?;
    if qwen2 {
        random(&mut w, "output.weight", &[shape.vocab_size, h])?;
    }
    w.add_tensor("output_norm.weight", &[h], &ones(h), GgmlType::F32)?;
    for i in 0..shape.num_layers {
        let name = |m: &str| format!("blk.{i}.{m}.weight");
        w.add_tensor(&name("attn_norm"), &[h], &ones(h), GgmlType::F32)?;
        w.add_tensor(&name("ffn_norm"), &[h], &ones(h), GgmlType::F32)?;
        random(&mut w, &name("attn_q"), &[h, h])?;
        random(&mut w, &name("attn_k"), &[kv, h])?;
        random(&mut w, &name("attn_v"), &[kv, h])?;
        if qwen2 {
            // Random, not zero: a bias that is never read would still pass a parity test.
            for (m, n) in [("attn_q", h), ("attn_k", kv), ("attn_v", kv)] {
                random(&mut w, &format!("blk.{i}.{m}.bias"), &[n])?;
            }
        }
        random(&mut w, &name("attn_output"), &[h, h])?;
        random(&mut w, &name("ffn_gate"), &[shape.intermediate_size, h])?;
        random(&mut w, &name("ffn_up"), &[shape.intermediate_size, h])?;
        random(&mut w, &name("ffn_down"), &[h, shape.intermediate_size])?;
    }
    w.write(path)
}

/// The WordPiece vocabulary: BERT's special tokens at their usual ids, then letters, digits and
/// punctuation (whole and `##`-continued), padded with unused tokens.
fn wordpiece_vocab(size: usize) -> Result<Vec<String>> {
    let mut vocab: Vec<String> = vec!["[PAD]".into()];
    let specials = ["[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    vocab.extend(specials.iter().map(|s| s.to_string()));
    let symbols: Vec<char> = ('a'..='z')
        .chain('0'..='9')
        .chain(".,;:!?'\"()-/&%$#@*+=<>[]_".chars())
        .collect();
    vocab.extend(symbols.iter().map(|c| c.to_string()));
    vocab.extend(('a'..='z').chain('0'..='9').map(|c| format!("##{c}")));
    if size < vocab.len() {
        return Err(BackboneError::Input(format!(
            "synthetic bert: vocabulary of {size} is below the {} special and symbol tokens",
            vocab.len()
        )));
    }
    for id in vocab.len()..size {
        vocab.push(format!("[unused{id}]"));
    }
    Ok(vocab)
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| BackboneError::io(path, e))
}

/// Writes a random BERT encoder of `shape` as a sentence-transformers folder `dir` (created if
/// needed): `config.json`, `model.safetensors` (F32), `tokenizer.json`, mean pooling, L2 normalisation.
pub fn write_bert_folder(dir: &Path, shape: &BertShape, seed: u64) -> Result<()> {
    if shape.num_heads == 0 || !shape.hidden_size.is_multiple_of(shape.num_heads) {
        return Err(BackboneError::Input(format!(
            "synthetic bert: {} heads do not divide width {}",
            shape.num_heads, shape.hidden_size
        )));
    }
    std::fs::create_dir_all(dir.join("1_Pooling")).map_err(|e| BackboneError::io(dir, e))?;
    std::fs::create_dir_all(dir.join("2_Normalize")).map_err(|e| BackboneError::io(dir, e))?;
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "max_position_embeddings": shape.max_positions,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "vocab_size": shape.vocab_size,
        "pad_token_id": 0,
        "_name_or_path": format!("synthetic bert (seed {seed})"),
    });
    write_text(&dir.join("config.json"), &format!("{config:#}"))?;
    let modules = serde_json::json!([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]);
    write_text(&dir.join("modules.json"), &format!("{modules:#}"))?;
    let pooling = serde_json::json!({
        "word_embedding_dimension": shape.hidden_size,
        "pooling_mode_cls_token": false,
        "pooling_mode_mean_tokens": true,
        "pooling_mode_max_tokens": false,
        "pooling_mode_mean_sqrt_len_tokens": false,
    });
    write_text(&dir.join("1_Pooling/config.json"), &format!("{pooling:#}"))?;
    let st = serde_json::json!({"max_seq_length": shape.max_seq_length, "do_lower_case": false});
    write_text(&dir.join("sentence_bert_config.json"), &format!("{st:#}"))?;

    write_wordpiece_tokenizer(&dir.join("tokenizer.json"), shape.vocab_size)?;
    write_bert_weights(&dir.join("model.safetensors"), shape, seed)
}

fn write_wordpiece_tokenizer(path: &Path, vocab_size: usize) -> Result<()> {
    let bad = |e: tokenizers::Error| BackboneError::Input(format!("{}: {e}", path.display()));
    let vocab: tokenizers::models::bpe::Vocab = wordpiece_vocab(vocab_size)?
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as u32))
        .collect();
    let model = WordPiece::builder()
        .vocab(vocab)
        .unk_token("[UNK]".into())
        .build()
        .map_err(bad)?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(
        TemplateProcessing::builder()
            .try_single("[CLS] $A [SEP]")
            .and_then(|b| b.try_pair("[CLS] $A [SEP] $B:1 [SEP]:1"))
            .map_err(|e| BackboneError::Input(format!("{}: {e}", path.display())))?
            .special_tokens(vec![("[CLS]", 2), ("[SEP]", 3)])
            .build()
            .map_err(|e| BackboneError::Input(format!("{}: {e}", path.display())))?,
    ));
    let specials: Vec<AddedToken> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|t| AddedToken::from(*t, true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    tokenizer.save(path, false).map_err(bad)
}

fn write_bert_weights(path: &Path, shape: &BertShape, seed: u64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let h = shape.hidden_size;
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut random = |name: String, dims: Vec<usize>| {
        let data = random_weights(&mut rng, dims.iter().product());
        (name, dims, data)
    };
    tensors.push(random(
        "embeddings.word_embeddings.weight".into(),
        vec![shape.vocab_size, h],
    ));
    tensors.push(random(
        "embeddings.position_embeddings.weight".into(),
        vec![shape.max_positions, h],
    ));
    tensors.push(random(
        "embeddings.token_type_embeddings.weight".into(),
        vec![2, h],
    ));
    let mut dense = Vec::new();
    for i in 0..shape.num_layers {
        let p = format!("encoder.layer.{i}");
        for (name, out, inp) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", shape.intermediate_size, h),
            ("output.dense", h, shape.intermediate_size),
        ] {
            dense.push(random(format!("{p}.{name}.weight"), vec![out, inp]));
            dense.push((format!("{p}.{name}.bias"), vec![out], vec![0.0; out]));
        }
    }
    tensors.extend(dense);
    let mut norms = vec!["embeddings.LayerNorm".to_string()];
    for i in 0..shape.num_layers {
        norms.push(format!("encoder.layer.{i}.attention.output.LayerNorm"));
        norms.push(format!("encoder.layer.{i}.output.LayerNorm"));
    }
    for norm in norms {
        tensors.push((format!("{norm}.weight"), vec![h], vec![1.0; h]));
        tensors.push((format!("{norm}.bias"), vec![h], vec![0.0; h]));
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, d)| (n, s, d.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| BackboneError::Input(format!("{}: {n}: {e}", path.display())))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, None, path)
        .map_err(|e| BackboneError::Input(format!("{}: {e}", path.display())))
}
