//! The conversational search agent: each user turn, the LLM reads the conversation, a trained head
//! turns its hidden states into a query vector, the teacher-encoded corpus is searched, and the LLM
//! answers with the retrieved passages in its context. With generate-then-encode instead, the LLM
//! writes a standalone query and the teacher encodes it (the baseline, for side-by-side use).

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use nr_backbone::llama::{GenerateOptions, Llm, PrefixCache};
use nr_backbone::teacher::TeacherEncoder;
use nr_data::{Passage, TensorCache, fit_conversation};
use nr_index::SearchIndex;
use serde::Serialize;

use crate::latency::ms_since;
use crate::native::prompt::prompt_length;
use crate::native::{Conversation, NativeEncoder};
use crate::pipeline::teacher_side::Teacher;

/// How the agent makes its query vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryMode {
    /// The trained head on the LLM's hidden states (no second model at query time).
    Native,
    /// The LLM writes a standalone query and the teacher encodes it.
    GenerateThenEncode,
}

/// What to load: the encoder folder names the models and settings it was trained with.
pub struct AgentOptions {
    /// The native encoder's folder (`runs/X/head`, or a copy of it anywhere).
    pub head: PathBuf,
    /// Passage collection to search (JSONL file or folder).
    pub corpus: PathBuf,
    /// Cache folder for the corpus index.
    pub cache: PathBuf,
    /// Other model paths than those the encoder was trained with (must be the same models: the
    /// encoder refuses others).
    pub llm: Option<PathBuf>,
    pub teacher: Option<PathBuf>,
    pub mode: QueryMode,
    /// Passages retrieved and reported per turn.
    pub top_k: usize,
    /// Retrieved passages shown to the LLM when it answers (0: no answer is generated).
    pub answer_passages: usize,
    pub max_answer_tokens: usize,
    /// The index searched: exact, or HNSW built over the corpus vectors when the agent loads.
    pub index: nr_index::IndexSpec,
    /// The decoder's projections (see [`nr_backbone::kernels::Precision`]).
    pub precision: nr_backbone::kernels::Precision,
}

/// Milliseconds spent on each part of a turn.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TurnTimings {
    pub prefill_ms: f64,
    /// Prompt tokens the LLM ran this turn (native retrieval: only the turn's new tokens, the
    /// earlier ones come from its cache).
    pub prefill_tokens: usize,
    /// Tokens of the whole prompt.
    pub prompt_tokens: usize,
    pub generation_ms: f64,
    pub teacher_ms: f64,
    pub head_ms: f64,
    pub search_ms: f64,
    pub answer_ms: f64,
}

/// One retrieved passage.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

/// What one user turn produced.
#[derive(Debug, Clone, Serialize)]
pub struct TurnResult {
    pub turn: usize,
    pub question: String,
    /// The generated standalone query (generate-then-encode and `query_tokens` heads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub retrieved: Vec<Hit>,
    /// The LLM's answer, or the recorded one when a script supplies it.
    pub answer: String,
    pub timings: TurnTimings,
}

/// A loaded agent and its conversation so far.
pub struct Agent {
    llm: Llm,
    teacher: Teacher,
    encoder: NativeEncoder,
    passages: Vec<Passage>,
    /// The passages' teacher vectors, searched exactly or through HNSW as the options ask.
    index: SearchIndex<'static>,
    options: AgentOptions,
    /// Alternating user and assistant messages of the turns so far.
    history: Vec<String>,
    /// What the LLM has read of the conversation so far (each turn's prefill runs its new tokens).
    prefix: PrefixCache,
}

impl Agent {
    /// Loads the encoder folder with its models (those it names, or `options.llm` /
    /// `options.teacher`), and indexes the corpus (cached).
    pub fn load(options: AgentOptions, device: Device) -> Result<Self> {
        // The user's inputs first (a bad corpus fails before any model loads).
        let passages = nr_data::read_collection(&options.corpus)?;
        ensure!(
            !passages.is_empty(),
            "{}: the collection holds no passages",
            options.corpus.display()
        );
        let sidecar = NativeEncoder::read_sidecar(&options.head)?;
        let llm_path = options.llm.clone().unwrap_or(sidecar.models.llm.clone());
        let teacher_path = options
            .teacher
            .clone()
            .unwrap_or(sidecar.models.teacher.clone());
        for (path, flag) in [(&llm_path, "--llm"), (&teacher_path, "--teacher")] {
            ensure!(
                path.exists(),
                "{}: not found (the encoder was trained with it there); name the model with {flag}",
                path.display()
            );
        }
        let mut llm = Llm::load(&llm_path, &device)?;
        llm.set_precision(options.precision)
            .context("--precision")?;
        let encoder_model = TeacherEncoder::load(&teacher_path, &device)?;
        let encoder = NativeEncoder::load(
            &options.head,
            &llm_path,
            &llm,
            &teacher_path,
            encoder_model.dim(),
            &device,
        )?;
        let teacher = Teacher {
            weights_hash: crate::pipeline::model_hash(&teacher_path)?,
            encoder: encoder_model,
            batch_size: sidecar.models.teacher_batch_size,
        };
        let cache = TensorCache::new(&options.cache);
        let vectors = teacher.passage_index(&passages, &cache, false)?;
        let index = SearchIndex::build(&options.index, Cow::Owned(vectors))?;
        Ok(Self {
            llm,
            teacher,
            encoder,
            passages,
            index,
            options,
            history: Vec::new(),
            prefix: PrefixCache::default(),
        })
    }

    /// Passages of the corpus.
    pub fn passage(&self, index: usize) -> &Passage {
        &self.passages[index]
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.history.clear();
        self.prefix.clear();
    }

    /// One user turn: retrieve, then answer (or take `recorded_answer` as the assistant's reply,
    /// to replay a logged conversation).
    pub fn turn(
        &mut self,
        question: &str,
        recorded_answer: Option<&str>,
    ) -> Result<(TurnResult, Vec<usize>)> {
        let budget = self.encoder.features.max_prompt_tokens;
        let tokens = self.llm.tokenizer.encode_continuation(question)?.len();
        ensure!(
            tokens < budget,
            "the question has {tokens} tokens, more than the prompt budget of {budget}"
        );
        let mut timings = TurnTimings::default();
        let conversation = Conversation {
            history: &self.history,
            question,
        };
        let (query_vector, query) = match self.options.mode {
            QueryMode::Native => {
                let v = self
                    .encoder
                    .query_vector(&self.llm, conversation, &mut self.prefix)?;
                timings.prefill_ms = v.latency.prefill_ms;
                timings.prefill_tokens = v.prefill_tokens;
                timings.prompt_tokens = v.prompt_tokens;
                timings.generation_ms = v.latency.generation_ms;
                timings.head_ms = v.latency.head_ms;
                (v.vector, v.query)
            }
            QueryMode::GenerateThenEncode => {
                let start = Instant::now();
                let q = self
                    .encoder
                    .features
                    .generate_queries(&self.llm, &[conversation], 1, false)?
                    .remove(0);
                timings.generation_ms = ms_since(start);
                let start = Instant::now();
                let v = self.teacher.encoder.encode(&[q.as_str()])?.concat();
                timings.teacher_ms = ms_since(start);
                (v, Some(q))
            }
        };
        let start = Instant::now();
        let hits = self
            .index
            .search(&query_vector, self.options.top_k)?
            .remove(0);
        timings.search_ms = ms_since(start);
        let shown: Vec<usize> = hits.iter().map(|&(i, _)| i).collect();
        let answer = match recorded_answer {
            Some(a) => a.to_string(),
            None if self.options.answer_passages == 0 => String::new(),
            None => {
                let start = Instant::now();
                let a = self.answer(question, &shown)?;
                timings.answer_ms = ms_since(start);
                a
            }
        };
        self.history.push(question.to_string());
        self.history.push(answer.clone());
        let retrieved = hits
            .iter()
            .map(|&(i, s)| Hit {
                id: self.passages[i].id.clone(),
                score: s,
            })
            .collect();
        let result = TurnResult {
            turn: self.history.len() / 2,
            question: question.to_string(),
            query,
            retrieved,
            answer,
            timings,
        };
        Ok((result, shown))
    }

    /// The conversation as a prompt: `system` first, the oldest turns dropped to fit the budget.
    fn prompt(&self, question: &str, system: Option<&str>) -> Result<Vec<u32>> {
        let count = prompt_length(&self.llm);
        let fitted = fit_conversation(
            &self.history,
            question,
            system,
            self.encoder.features.max_prompt_tokens,
            &count,
        );
        Ok(self.llm.chat_ids(&fitted.messages)?)
    }

    /// The LLM's reply with the first `answer_passages` retrieved passages in its system message.
    fn answer(&self, question: &str, retrieved: &[usize]) -> Result<String> {
        let mut system = String::from(
            "You are a helpful assistant. Answer the user's last question briefly, using the passages below when they help.\n",
        );
        for (rank, &i) in retrieved
            .iter()
            .take(self.options.answer_passages)
            .enumerate()
        {
            let text: String = self.passages[i].contents.chars().take(600).collect();
            system.push_str(&format!("\n[{}] {}\n", rank + 1, text));
        }
        let prompt = self.prompt(question, Some(&system))?;
        let opts = GenerateOptions {
            max_new_tokens: self.options.max_answer_tokens,
            ..Default::default()
        };
        Ok(self
            .llm
            .generate(&[prompt], &opts)?
            .remove(0)
            .text
            .trim()
            .to_string())
    }
}
