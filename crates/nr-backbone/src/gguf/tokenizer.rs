//! The tokenizer stored in a GGUF file (`tokenizer.ggml.*`), rebuilt with the `tokenizers` crate.
//!
//! Only GPT-2 style byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is supported: the vocabulary
//! is `tokenizer.ggml.tokens` (index = id), the merges are `tokenizer.ggml.merges` (`"Ġ t"` pairs)
//! and the pre-tokenizer follows llama.cpp's `tokenizer.ggml.pre`:
//! - `smollm`: individual digits, then byte-level with the GPT-2 regex and no prefix space;
//! - `gpt2`, and `default` (files without a dedicated pre-tokenizer): byte-level with the GPT-2 regex;
//! - `llama-bpe`/`llama3`: the Llama 3 split regex (digits in runs of up to 3), then byte-level;
//!   BPE ignores merges for whole-word vocabulary hits as HF's Llama 3 tokenizer does;
//! - `qwen2`: NFC, the Qwen2 split regex (single digits), then byte-level.
//!
//! Tokens of type CONTROL (3) become special added tokens (matched in text, skippable on decode),
//! USER_DEFINED (4) ones plain added tokens. The decoder is byte-level. BOS (and EOS) are added
//! by the post-processor when `tokenizer.ggml.add_bos_token` (`add_eos_token`) is true; without
//! the key BOS is added for `llama-bpe` only, as llama.cpp does.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Merges, Vocab};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use super::reader::GgufFile;
use crate::error::{BackboneError, Result};

/// Key of the tokenizer model type.
pub const MODEL_KEY: &str = "tokenizer.ggml.model";
/// Key of the pre-tokenizer name.
pub const PRE_KEY: &str = "tokenizer.ggml.pre";
/// Key of the token strings.
pub const TOKENS_KEY: &str = "tokenizer.ggml.tokens";
/// Key of the token types.
pub const TOKEN_TYPE_KEY: &str = "tokenizer.ggml.token_type";
/// Key of the BPE merges.
pub const MERGES_KEY: &str = "tokenizer.ggml.merges";

/// llama.cpp's token type of control tokens (`<|im_start|>`, ...).
pub const TOKEN_TYPE_CONTROL: i32 = 3;
/// llama.cpp's token type of user-defined added tokens.
pub const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// The split regex of Llama 3 (`llama-bpe`): letters, digit runs of 1-3, punctuation, spaces.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The split regex of Qwen2: as Llama 3 but each digit on its own.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Special token ids and the flags that say which of them encoding adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `tokenizer.ggml.bos_token_id`
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`
    pub eos: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`
    pub pad: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`
    pub unk: Option<u32>,
    /// Whether encoding with special tokens prepends BOS (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// Whether encoding with special tokens appends EOS (`tokenizer.ggml.add_eos_token`).
    pub add_eos: bool,
}

/// A GGUF file's tokenizer: a ready `tokenizers::Tokenizer` plus its special ids.
#[derive(Clone)]
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    special: SpecialTokens,
}

impl GgufTokenizer {
    /// Builds the tokenizer described by the file's `tokenizer.ggml.*` keys.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let path = file.path();
        let model = file.get_str(MODEL_KEY)?;
        if model != "gpt2" {
            return Err(BackboneError::unsupported(
                path,
                format!(
                    "key '{MODEL_KEY}': tokenizer model '{model}' (only 'gpt2' byte-level BPE is implemented)"
                ),
            ));
        }
        let pre = file.opt_str(PRE_KEY)?.unwrap_or("default");
        let tokens = file.get_string_array(TOKENS_KEY)?;
        let token_types: Vec<i32> = match file.metadata(TOKEN_TYPE_KEY) {
            Some(_) => file.get_int_array(TOKEN_TYPE_KEY)?,
            None => vec![1; tokens.len()],
        };
        if token_types.len() != tokens.len() {
            return Err(BackboneError::malformed(
                path,
                format!(
                    "key '{TOKEN_TYPE_KEY}': {} entries for {} tokens",
                    token_types.len(),
                    tokens.len()
                ),
            ));
        }
        let merges = file
            .get_string_array(MERGES_KEY)?
            .iter()
            .enumerate()
            .map(|(i, m)| match m.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(BackboneError::malformed(
                    path,
                    format!("key '{MERGES_KEY}': merge {i} {m:?} has no space"),
                )),
            })
            .collect::<Result<Merges>>()?;
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();

        let special = read_special_tokens(file, tokens.len(), pre)?;
        let is_llama3 = matches!(pre, "llama-bpe" | "llama3");
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(is_llama3)
            .build()
            .map_err(|e| BackboneError::malformed(path, format!("key '{MERGES_KEY}': {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);

        let byte_level =
            |trim_offsets: bool, use_regex: bool| ByteLevel::new(false, trim_offsets, use_regex);
        let split = |regex: &str| -> Result<PreTokenizerWrapper> {
            Split::new(
                SplitPattern::Regex(regex.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map(Into::into)
            .map_err(|e| BackboneError::Tokenizer(format!("pre-tokenizer '{pre}': {e}")))
        };
        let pre_tokenizer: PreTokenizerWrapper = match pre {
            "smollm" => Sequence::new(vec![
                Digits::new(true).into(),
                byte_level(true, true).into(),
            ])
            .into(),
            "gpt2" | "default" => byte_level(true, true).into(),
            "llama-bpe" | "llama3" => {
                Sequence::new(vec![split(LLAMA3_REGEX)?, byte_level(true, false).into()]).into()
            }
            "qwen2" => {
                tokenizer.with_normalizer(Some(NFC));
                Sequence::new(vec![split(QWEN2_REGEX)?, byte_level(false, false).into()]).into()
            }
            other => {
                return Err(BackboneError::unsupported(
                    path,
                    format!(
                        "key '{PRE_KEY}': pre-tokenizer '{other}' (supported: smollm, gpt2, default, llama-bpe, qwen2)"
                    ),
                ));
            }
        };
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

        let added = |kind: i32, special: bool| -> Vec<AddedToken> {
            tokens
                .iter()
                .zip(&token_types)
                .filter(|&(_, &t)| t == kind)
                .map(|(tok, _)| AddedToken::from(tok.clone(), special))
                .collect()
        };
        tokenizer.add_special_tokens(&added(TOKEN_TYPE_CONTROL, true));
        tokenizer.add_tokens(&added(TOKEN_TYPE_USER_DEFINED, false));

        if let Some(template) = post_processor(tokens, &special).map_err(|e| {
            BackboneError::Tokenizer(format!("{}: BOS/EOS template: {e}", path.display()))
        })? {
            tokenizer.with_post_processor(Some(template));
        }
        Ok(Self { tokenizer, special })
    }

    /// The underlying `tokenizers` tokenizer (special tokens are parsed in input text).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Unwraps the underlying `tokenizers` tokenizer.
    pub fn into_tokenizer(self) -> Tokenizer {
        self.tokenizer
    }

    /// The special token ids and BOS/EOS flags.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// Number of tokens in the vocabulary (with added tokens).
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) are recognised.
    /// With `add_special_tokens`, BOS/EOS are added as the file asks.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, add_special_tokens)
            .map_err(|e| BackboneError::Tokenizer(format!("encoding {:?}: {e}", short(text))))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`, leaving out special tokens if `skip_special_tokens`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(|e| BackboneError::Tokenizer(format!("decoding {} ids: {e}", ids.len())))
    }

    /// The id of a token string (e.g. `<|im_end|>`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// The token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .finish()
    }
}

/// Reads the special ids (each checked to be inside the vocabulary) and the BOS/EOS flags.
fn read_special_tokens(file: &GgufFile, n_tokens: usize, pre: &str) -> Result<SpecialTokens> {
    let id = |key: &str| -> Result<Option<u32>> {
        let id = file.opt_u32(key)?;
        match id {
            Some(i) if i as usize >= n_tokens => Err(BackboneError::malformed(
                file.path(),
                format!("key '{key}': token id {i} is outside the vocabulary of {n_tokens} tokens"),
            )),
            _ => Ok(id),
        }
    };
    let special = SpecialTokens {
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?,
        pad: id("tokenizer.ggml.padding_token_id")?,
        unk: id("tokenizer.ggml.unknown_token_id")?,
        add_bos: file
            .opt_bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(matches!(pre, "llama-bpe" | "llama3")),
        add_eos: file
            .opt_bool("tokenizer.ggml.add_eos_token")?
            .unwrap_or(false),
    };
    for (flag, token, key) in [
        (special.add_bos, special.bos, "tokenizer.ggml.add_bos_token"),
        (special.add_eos, special.eos, "tokenizer.ggml.add_eos_token"),
    ] {
        if flag && token.is_none() {
            return Err(BackboneError::malformed(
                file.path(),
                format!("key '{key}' is true but the token id is missing"),
            ));
        }
    }
    Ok(special)
}

/// A template that adds BOS/EOS around each sequence, or `None` when neither is added.
fn post_processor(
    tokens: &[String],
    special: &SpecialTokens,
) -> tokenizers::Result<Option<TemplateProcessing>> {
    let bos = special
        .bos
        .filter(|_| special.add_bos)
        .map(|id| (tokens[id as usize].clone(), id));
    let eos = special
        .eos
        .filter(|_| special.add_eos)
        .map(|id| (tokens[id as usize].clone(), id));
    if bos.is_none() && eos.is_none() {
        return Ok(None);
    }
    let piece = |seq: &str, type_id: u32| -> Vec<String> {
        let mut out = Vec::new();
        if let Some((t, _)) = &bos {
            out.push(format!("{t}:{type_id}"));
        }
        out.push(format!("{seq}:{type_id}"));
        if let Some((t, _)) = &eos {
            out.push(format!("{t}:{type_id}"));
        }
        out
    };
    let special_tokens: Vec<(String, u32)> = bos.iter().chain(eos.iter()).cloned().collect();
    let template = TemplateProcessing::builder()
        .try_single(piece("$A", 0))?
        .try_pair([piece("$A", 0), piece("$B", 1)].concat())?
        .special_tokens(special_tokens)
        .build()?;
    Ok(Some(template))
}

/// The first 40 characters of `text`, for messages.
fn short(text: &str) -> String {
    text.chars().take(40).collect()
}
