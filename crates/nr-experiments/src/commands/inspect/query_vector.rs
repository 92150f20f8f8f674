//! `nr inspect query-vector`: a native encoder's query vector of one conversation, with what it was
//! made from, written to a safetensors file for other implementations to check themselves against
//! (docs/python/nr_head.py; tests/python_interop.rs).
//!
//! The dump holds (all tensors little-endian; `L` = the head's layers, `H` = the LLM's width):
//!
//! - `vector` `[D]` f32: the query vector, made by `NativeEncoder::query_vector` (the agent's path);
//! - `head_inputs` `[tokens, L, H]` f32: the raw head inputs (before standardisation) of the same
//!   conversation, read the same way; `NativeEncoder::encode` of them gives `vector` (checked);
//! - `lexical.question` `[n]` u32 and `lexical.history.{i}.{user|assistant}` `[n]` u32 (oldest
//!   first): the LLM's tokens the lexicon reads, when the encoder has one;
//! - `prompt_ids` `[T]` u32: the prompt the head's source reads (for `query_tokens`: the rewrite
//!   prompt followed by the query and the end-of-turn token), and `pooled_tokens` `[1]` u32: how
//!   many of its last tokens the pooling reads;
//! - `hidden_states.{layer}` `[T, H]` f32: the LLM's states of that whole prompt at each layer read
//!   (one pass, no cache), as `output_hidden_states[layer]` of transformers;
//! - metadata `nr`: JSON with the conversation, the features and the generated query.
//!
//! The conversation file is what `nr chat --script` reads: a JSON list of turns, each a string or
//! `{"user": ..., "assistant": ...}`; every turn but the last needs its assistant reply (the
//! history), and the last turn's user message is the question.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use nr_backbone::llama::{Llm, PrefixCache};
use nr_head::Speaker;
use safetensors::tensor::{Dtype, TensorView};

use crate::atomic_file::write_atomic;
use crate::commands::chat::read_script;
use crate::device::{DEVICE_HELP, parse_device};
use crate::native::prompt::{prompt_length, query_continuation, question_prompt};
use crate::native::{Conversation, Extraction, HiddenSource, NativeEncoder, Pooling};

#[derive(clap::Args)]
pub struct QueryVectorArgs {
    /// The native encoder folder (`nr run` writes it as OUTPUT/head).
    #[arg(long)]
    head: PathBuf,
    /// JSON list of turns as `nr chat --script` reads them; the last turn is the question.
    #[arg(long)]
    conversation: PathBuf,
    /// The safetensors file to write.
    #[arg(long)]
    dump: PathBuf,
    /// The LLM, when it has moved since training (must be the same model).
    #[arg(long)]
    llm: Option<PathBuf>,
    #[arg(long, help = DEVICE_HELP)]
    device: Option<String>,
}

/// The history (alternating questions and answers) and the question of a conversation file.
fn read_conversation(path: &Path) -> Result<(Vec<String>, String)> {
    let turns = read_script(path)?;
    let n = turns.len();
    let mut history = Vec::new();
    let mut question = String::new();
    for (i, (user, assistant)) in turns.into_iter().enumerate() {
        match (i + 1 == n, assistant) {
            (true, None) => question = user,
            (true, Some(_)) => bail!(
                "{}: the last turn is the question: it has no assistant reply",
                path.display()
            ),
            (false, Some(a)) => history.extend([user, a]),
            (false, None) => bail!(
                "{}: turn {} has no assistant reply (only the last turn, the question, has none)",
                path.display(),
                i + 1
            ),
        }
    }
    Ok((history, question))
}

/// Tensors of a safetensors file, by name: dtype, shape, little-endian bytes.
type Tensors = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

fn f32_tensor(shape: Vec<usize>, values: &[f32]) -> (Dtype, Vec<usize>, Vec<u8>) {
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    (Dtype::F32, shape, bytes)
}

fn u32_tensor(values: &[u32]) -> (Dtype, Vec<usize>, Vec<u8>) {
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    (Dtype::U32, vec![values.len()], bytes)
}

/// The safetensors file of `tensors`, with `metadata` under the key `nr`.
fn safetensors_bytes(tensors: &Tensors, metadata: &str) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, (dtype, shape, bytes))| {
            Ok((
                name.as_str(),
                TensorView::new(*dtype, shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let meta = HashMap::from([("nr".to_string(), metadata.to_string())]);
    Ok(safetensors::serialize(views, Some(meta))?)
}

/// The prompt the head's source reads and how many of its last tokens the pooling reads.
fn source_prompt(
    encoder: &NativeEncoder,
    llm: &Llm,
    conversation: Conversation,
    query: Option<&str>,
) -> Result<(Vec<u32>, usize)> {
    let f = &encoder.features;
    let one = [conversation];
    let (prompt, k) = match f.source {
        HiddenSource::Context if f.pool.reads_question() => question_prompt(
            llm,
            conversation.history,
            conversation.question,
            f.system_prompt.as_deref(),
            f.max_prompt_tokens,
            &prompt_length(llm),
        )?,
        HiddenSource::Context => (f.conversation_prompts(llm, &one)?.remove(0), f.pool_k),
        HiddenSource::QueryTokens => {
            let query = query.context("a query_tokens head generated no query")?;
            let continuation = query_continuation(llm, query)?;
            let prompt = [
                f.rewrite_prompts(llm, &one)?.remove(0),
                continuation.clone(),
            ]
            .concat();
            (prompt, continuation.len())
        }
    };
    let k = if f.pool == Pooling::Last { 1 } else { k };
    Ok((prompt.clone(), k.clamp(1, prompt.len())))
}

pub fn run(args: QueryVectorArgs) -> Result<()> {
    let (history, question) = read_conversation(&args.conversation)?;
    let device = parse_device(args.device.as_deref())?;
    let sidecar = NativeEncoder::read_sidecar(&args.head)?;
    let llm_path = args.llm.clone().unwrap_or(sidecar.models.llm.clone());
    ensure!(
        llm_path.exists(),
        "{}: not found (the encoder was trained with it there); name the model with --llm",
        llm_path.display()
    );
    let llm = Llm::load(&llm_path, &device)?;
    // The teacher is not run: the encoder is checked against the one its sidecar names.
    let encoder = NativeEncoder::load(
        &args.head,
        &llm_path,
        &llm,
        &sidecar.models.teacher,
        sidecar.teacher.dim,
        &device,
    )?;
    let conversation = Conversation {
        history: &history,
        question: &question,
    };
    let one = [conversation];
    let made = encoder.query_vector(&llm, conversation, &mut PrefixCache::default())?;

    // The same conversation's head and lexicon inputs, read as `query_vector` reads them.
    let queries = made.query.clone().map(|q| vec![q]);
    let x = encoder.features.features(
        &llm,
        &one,
        queries.as_deref(),
        Extraction {
            batch: 1,
            cache: Some(&mut PrefixCache::default()),
            show_progress: false,
        },
    )?;
    let lexical = encoder.lexical_inputs(&llm, &one)?;
    let again = encoder.encode(&x, lexical.as_deref())?;
    let diff = made
        .vector
        .iter()
        .zip(&again)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    ensure!(
        diff <= 1e-5,
        "the dumped inputs give another vector than query_vector (max difference {diff})"
    );

    let mut tensors = Tensors::new();
    tensors.insert(
        "vector".into(),
        f32_tensor(vec![made.vector.len()], &made.vector),
    );
    tensors.insert(
        "head_inputs".into(),
        f32_tensor(vec![x.tokens(0), x.layers, x.dim], x.turn(0)),
    );
    if let Some(lex) = lexical.as_ref().map(|l| &l[0]) {
        tensors.insert("lexical.question".into(), u32_tensor(&lex.question));
        for (i, (speaker, ids)) in lex.history.iter().enumerate() {
            let who = match speaker {
                Speaker::User => "user",
                Speaker::Assistant => "assistant",
            };
            tensors.insert(format!("lexical.history.{i}.{who}"), u32_tensor(ids));
        }
    }
    let (prompt, pooled) = source_prompt(&encoder, &llm, conversation, made.query.as_deref())?;
    let states = llm
        .forward(
            std::slice::from_ref(&prompt),
            &encoder.features.layers,
            false,
        )?
        .remove(0);
    for (layer, s) in &states.hidden {
        tensors.insert(
            format!("hidden_states.{layer}"),
            f32_tensor(vec![s.len, s.dim], &s.data),
        );
    }
    tensors.insert("prompt_ids".into(), u32_tensor(&prompt));
    tensors.insert("pooled_tokens".into(), u32_tensor(&[pooled as u32]));
    let metadata = serde_json::json!({
        "format": "nr-query-vector-dump",
        "history": history,
        "question": question,
        "query": made.query,
        "features": encoder.features,
    });
    let bytes = safetensors_bytes(&tensors, &metadata.to_string())?;
    write_atomic(&args.dump, &bytes)?;
    println!(
        "{}",
        serde_json::json!({
            "dump": args.dump,
            "dim": made.vector.len(),
            "head_inputs": [x.tokens(0), x.layers, x.dim],
            "prompt_tokens": prompt.len(),
            "pooled_tokens": pooled,
            "lexicon": lexical.is_some(),
            "query": made.query,
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::SafeTensors;

    #[test]
    fn the_dump_reads_back_with_its_tensors_and_metadata() {
        let mut t = Tensors::new();
        t.insert("b".into(), u32_tensor(&[1, 2, 3]));
        t.insert("a".into(), f32_tensor(vec![1, 2], &[0.5, -2.0]));
        let bytes = safetensors_bytes(&t, "{\"x\": 1}").unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()["nr"], "{\"x\": 1}");
        let read = SafeTensors::deserialize(&bytes).unwrap();
        let a = read.tensor("a").unwrap();
        assert_eq!((a.dtype(), a.shape()), (Dtype::F32, &[1usize, 2][..]));
        assert_eq!(
            a.data(),
            [0.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
        );
        let b = read.tensor("b").unwrap();
        assert_eq!((b.dtype(), b.data().len()), (Dtype::U32, 12));
    }

    #[test]
    fn the_last_turn_is_the_question_and_earlier_ones_need_replies() {
        let dir = std::env::temp_dir().join(format!("nr-qv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.json");
        std::fs::write(&path, r#"[{"user": "q1", "assistant": "a1"}, "q2"]"#).unwrap();
        let (history, question) = read_conversation(&path).unwrap();
        assert_eq!(
            (history, question.as_str()),
            (vec!["q1".into(), "a1".into()], "q2")
        );
        std::fs::write(&path, r#"["q1", "q2"]"#).unwrap();
        let err = read_conversation(&path).unwrap_err().to_string();
        assert!(err.contains("turn 1 has no assistant reply"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
