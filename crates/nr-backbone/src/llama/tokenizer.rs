//! The decoder's tokenizer plus the special ids that prompts and generation need.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::error::{BackboneError, Result};

/// A `tokenizers` tokenizer with the ids of BOS, the stop tokens and the padding token.
#[derive(Debug, Clone)]
pub struct LlmTokenizer {
    pub inner: Tokenizer,
    pub bos_id: Option<u32>,
    /// Generation stops at any of these (EOS, `<|im_end|>`, `<|eot_id|>`, ...).
    pub stop_ids: Vec<u32>,
    /// Fills the left of shorter rows in a batch; masked out, so its value never matters.
    pub pad_id: u32,
    /// Whether plain text gets BOS prepended (`add_bos_token`).
    pub add_bos: bool,
}

/// End-of-turn tokens of common chat formats; whichever the vocabulary holds also stops generation.
const END_OF_TURN_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
];

impl LlmTokenizer {
    /// Assembles the tokenizer, adding the chat format's end-of-turn tokens to `stop_ids`.
    pub fn new(
        inner: Tokenizer,
        bos_id: Option<u32>,
        eos_id: Option<u32>,
        pad_id: Option<u32>,
        add_bos: bool,
    ) -> Self {
        let mut stop_ids: Vec<u32> = eos_id.into_iter().collect();
        for tok in END_OF_TURN_TOKENS {
            if let Some(id) = inner.token_to_id(tok)
                && !stop_ids.contains(&id)
            {
                stop_ids.push(id);
            }
        }
        let pad_id = pad_id.or(eos_id).unwrap_or(0);
        Self {
            inner,
            bos_id,
            stop_ids,
            pad_id,
            add_bos,
        }
    }

    /// Loads only the tokenizer of a `.gguf` file or an HF folder (no weights are read).
    pub fn load(path: &Path) -> Result<Self> {
        if path.is_dir() {
            Self::from_hf_folder(path)
        } else {
            let gguf = crate::gguf::GgufFile::open(path)?;
            Self::from_gguf(&gguf)
        }
    }

    /// Builds the tokenizer stored in a GGUF file's `tokenizer.ggml.*` keys.
    pub fn from_gguf(gguf: &crate::gguf::GgufFile) -> Result<Self> {
        let t = crate::gguf::GgufTokenizer::from_gguf(gguf)?;
        let special = t.special().clone();
        Ok(Self::new(
            t.into_tokenizer(),
            special.bos,
            special.eos,
            special.pad,
            special.add_bos,
        ))
    }

    /// Loads `tokenizer.json` of an HF folder; special tokens come from `tokenizer_config.json`.
    pub fn from_hf_folder(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(BackboneError::missing(dir, "tokenizer.json"));
        }
        let inner = Tokenizer::from_file(&path)
            .map_err(|e| BackboneError::malformed(&path, e.to_string()))?;
        let cfg = read_json_or_empty(&dir.join("tokenizer_config.json"))?;
        let id_of = |key: &str| special_token_text(&cfg, key).and_then(|t| inner.token_to_id(&t));
        let add_bos = cfg
            .get("add_bos_token")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let (bos, eos, pad) = (id_of("bos_token"), id_of("eos_token"), id_of("pad_token"));
        Ok(Self::new(inner, bos, eos, pad, add_bos))
    }

    /// Token ids of `text`; special-token text such as `<|im_start|>` maps to its id. BOS is added
    /// only when the model asks for it and the text does not already start with it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| BackboneError::Tokenizer(e.to_string()))?;
        let mut ids = enc.get_ids().to_vec();
        if let (true, Some(bos)) = (self.add_bos, self.bos_id)
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Token ids of `text` as a continuation of earlier tokens: never a BOS.
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| BackboneError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The token that closes a chat turn (`<|im_end|>`, `<|eot_id|>`, ...), else the EOS token.
    pub fn end_of_turn_id(&self) -> Option<u32> {
        END_OF_TURN_TOKENS
            .iter()
            .find_map(|t| self.inner.token_to_id(t))
            .or(self.stop_ids.first().copied())
    }

    /// Text of `ids`, special tokens dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| BackboneError::Tokenizer(e.to_string()))
    }

    /// Tokens in the vocabulary, special tokens included (every id `encode` returns is below it).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The text of a token id (for templates that need `bos_token`/`eos_token`).
    pub fn token_text(&self, id: Option<u32>) -> String {
        id.and_then(|i| self.inner.id_to_token(i))
            .unwrap_or_default()
    }
}

/// Reads a JSON object, or an empty one when the file does not exist.
pub(crate) fn read_json_or_empty(path: &Path) -> Result<serde_json::Value> {
    if !path.is_file() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| BackboneError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| BackboneError::malformed(path, format!("invalid JSON: {e}")))
}

/// `tokenizer_config.json` stores special tokens as a string or as `{"content": ...}`.
fn special_token_text(cfg: &serde_json::Value, key: &str) -> Option<String> {
    match cfg.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    }
}
