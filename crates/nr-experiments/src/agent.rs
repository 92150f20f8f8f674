//! The conversational search agent: each user turn, the LLM reads the conversation, a trained head
//! turns its hidden states into a query vector, the teacher-encoded corpus is searched, and the LLM
//! answers with the retrieved passages in its context. With generate-then-encode instead, the LLM
//! writes a standalone query and the teacher encodes it (the baseline, for side-by-side use).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use nr_backbone::llama::{GenerateOptions, Llm};
use nr_backbone::teacher::TeacherEncoder;
use nr_data::{Passage, PassageReader, TensorCache, fit_conversation};
use nr_head::{Head, LexicalMix, Lexicon, lexicon_path};
use serde::Serialize;

use crate::manifest::{BackboneSpec, HiddenSource, Manifest};
use crate::pipeline::llm_features::{
    context_features, first_line, lexical_input, prompt_length, query_token_features,
    question_prompt,
};
use crate::pipeline::teacher_side::Teacher;
use crate::train::examples::Vectors;
use crate::train::head_meta_for;
use crate::train::lexicon::native_vectors;
use crate::train::standardize::Standardizer;
use crate::train::trainer::encode;

/// How the agent makes its query vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryMode {
    /// The trained head on the LLM's hidden states (no second model at query time).
    Native,
    /// The LLM writes a standalone query and the teacher encodes it.
    GenerateThenEncode,
}

/// What to load: the head's run folder names the models and settings it was trained with.
pub struct AgentOptions {
    /// The head's stem (`runs/X/head`), beside `manifest.resolved.toml` and `head.standardize.json`.
    pub head: PathBuf,
    /// Passage collection to search (JSONL file or folder).
    pub corpus: PathBuf,
    /// Cache folder for the corpus index (the run's cache when absent).
    pub cache: Option<PathBuf>,
    /// Other model paths than the run's (must be the same models: the head refuses others).
    pub llm: Option<PathBuf>,
    pub teacher: Option<PathBuf>,
    pub mode: QueryMode,
    /// Passages retrieved and reported per turn.
    pub top_k: usize,
    /// Retrieved passages shown to the LLM when it answers (0: no answer is generated).
    pub answer_passages: usize,
    pub max_answer_tokens: usize,
}

/// Milliseconds spent on each part of a turn.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TurnTimings {
    pub prefill_ms: f64,
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
    head: Head,
    /// The head's lexical part and its mix with the dense vector, when the head has one.
    lexicon: Option<(Lexicon, LexicalMix)>,
    standardizer: Standardizer,
    backbone: BackboneSpec,
    layers: Vec<usize>,
    passages: Vec<Passage>,
    index: Vectors,
    options: AgentOptions,
    device: Device,
    /// Alternating user and assistant messages of the turns so far.
    history: Vec<String>,
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

impl Agent {
    /// Loads the head with the models and settings of its run, and indexes the corpus (cached).
    pub fn load(options: AgentOptions, device: Device) -> Result<Self> {
        let run_dir = options
            .head
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let manifest_path = run_dir.join("manifest.resolved.toml");
        ensure!(
            manifest_path.is_file(),
            "{}: not found; --head must name a head inside the output folder of `nr run`",
            manifest_path.display()
        );
        let manifest = Manifest::load(&manifest_path, &[])?;
        let llm_path = options
            .llm
            .clone()
            .unwrap_or(manifest.backbone.path.clone());
        let teacher_path = options
            .teacher
            .clone()
            .unwrap_or(manifest.teacher.path.clone());
        let llm = Llm::load(&llm_path, &device)?;
        let encoder = TeacherEncoder::load(&teacher_path, &device)?;
        let layers = manifest.backbone.resolve_layers(llm.num_layers())?;
        let expected = head_meta_for(
            &manifest.backbone,
            &llm_path,
            llm.hidden_size(),
            &layers,
            &teacher_path,
            encoder.dim(),
        );
        let head = Head::load(&options.head, &expected, &device)?;
        let lexicon = if lexicon_path(&options.head).is_file() {
            Some(Lexicon::load(&options.head, &expected)?)
        } else {
            None
        };
        let standardizer = read_standardizer(
            &run_dir.join("head.standardize.json"),
            layers.len() * llm.hidden_size(),
        )?;

        let teacher = Teacher {
            weights_hash: crate::pipeline::model_hash(&teacher_path)?,
            encoder,
            batch_size: manifest.teacher.batch_size,
        };
        let passages = PassageReader::open(&options.corpus)?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| options.corpus.display().to_string())?;
        ensure!(
            !passages.is_empty(),
            "{}: the collection holds no passages",
            options.corpus.display()
        );
        let cache = TensorCache::new(options.cache.as_ref().unwrap_or(&manifest.cache));
        let index = teacher.passage_index(&passages, &cache, false)?;
        Ok(Self {
            llm,
            teacher,
            head,
            lexicon,
            standardizer,
            backbone: manifest.backbone,
            layers,
            passages,
            index,
            options,
            device,
            history: Vec::new(),
        })
    }

    /// Passages of the corpus.
    pub fn passage(&self, index: usize) -> &Passage {
        &self.passages[index]
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.history.clear();
    }

    /// One user turn: retrieve, then answer (or take `recorded_answer` as the assistant's reply,
    /// to replay a logged conversation).
    pub fn turn(
        &mut self,
        question: &str,
        recorded_answer: Option<&str>,
    ) -> Result<(TurnResult, Vec<usize>)> {
        let mut timings = TurnTimings::default();
        let (query_vector, query) = match (self.options.mode, self.backbone.source) {
            (QueryMode::Native, HiddenSource::Context) => {
                (self.native_context(question, &mut timings)?, None)
            }
            (QueryMode::Native, HiddenSource::QueryTokens) => {
                let prompt = self.prompt(question, Some(&self.backbone.rewrite_instruction))?;
                let q = self.generate_query(&prompt, &mut timings)?;
                let dense = self.native_query_tokens(prompt, &q, &mut timings)?;
                (self.with_lexicon(question, dense, &mut timings)?, Some(q))
            }
            (QueryMode::GenerateThenEncode, _) => {
                let prompt = self.prompt(question, Some(&self.backbone.rewrite_instruction))?;
                let q = self.generate_query(&prompt, &mut timings)?;
                let start = Instant::now();
                let v = self.teacher.encoder.encode(&[q.as_str()])?.concat();
                timings.teacher_ms = ms_since(start);
                (v, Some(q))
            }
        };
        let start = Instant::now();
        let hits = nr_eval::search::exact_search(
            &query_vector,
            &self.index.data,
            self.index.dim,
            self.options.top_k,
        )?
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
            self.backbone.max_prompt_tokens,
            &count,
        );
        Ok(self.llm.chat_ids(&fitted.messages)?)
    }

    fn head_vector(
        &self,
        mut x: crate::train::examples::HeadInputs,
        timings: &mut TurnTimings,
    ) -> Result<Vec<f32>> {
        let start = Instant::now();
        self.standardizer.apply(&mut x);
        let v = encode(&self.head, &x, &self.device)?;
        timings.head_ms = ms_since(start);
        Ok(v)
    }

    fn native_context(&self, question: &str, timings: &mut TurnTimings) -> Result<Vec<f32>> {
        let b = &self.backbone;
        let system = b.system_prompt.as_deref();
        let count = prompt_length(&self.llm);
        let (prompt, q) = question_prompt(
            &self.llm,
            &self.history,
            question,
            system,
            b.max_prompt_tokens,
            &count,
        )?;
        let start = Instant::now();
        let x = context_features(
            &self.llm,
            &[prompt],
            &self.layers,
            b.pool,
            b.pool_k,
            Some(&[q]),
            1,
            false,
        )?;
        timings.prefill_ms = ms_since(start);
        let dense = self.head_vector(x, timings)?;
        self.with_lexicon(question, dense, timings)
    }

    /// The dense head's vector mixed with the lexicon's vector of the conversation, when the head
    /// has a lexicon (as the pipeline does on the test split).
    fn with_lexicon(
        &self,
        question: &str,
        dense: Vec<f32>,
        timings: &mut TurnTimings,
    ) -> Result<Vec<f32>> {
        let Some((lexicon, how)) = &self.lexicon else {
            return Ok(dense);
        };
        let b = &self.backbone;
        let count = prompt_length(&self.llm);
        let start = Instant::now();
        let input = lexical_input(
            &self.llm,
            &self.history,
            question,
            b.system_prompt.as_deref(),
            b.max_prompt_tokens,
            &count,
        )?;
        let v = native_vectors(lexicon, &[input], Some(&dense), how)?;
        timings.head_ms += ms_since(start);
        Ok(v)
    }

    /// The head on the query's tokens read after the rewrite `prompt`.
    fn native_query_tokens(
        &self,
        prompt: Vec<u32>,
        query: &str,
        timings: &mut TurnTimings,
    ) -> Result<Vec<f32>> {
        let start = Instant::now();
        let x = query_token_features(
            &self.llm,
            &[prompt],
            &[query.to_string()],
            &self.layers,
            self.backbone.pool,
            1,
            false,
        )?;
        timings.prefill_ms += ms_since(start);
        self.head_vector(x, timings)
    }

    /// The LLM's standalone query for the rewrite `prompt` (greedy, first line).
    fn generate_query(&self, prompt: &[u32], timings: &mut TurnTimings) -> Result<String> {
        let opts = GenerateOptions {
            max_new_tokens: self.backbone.max_new_tokens,
            ..Default::default()
        };
        let start = Instant::now();
        let g = self.llm.generate(&[prompt.to_vec()], &opts)?.remove(0);
        timings.generation_ms = ms_since(start);
        Ok(first_line(&g.text))
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

/// The input statistics saved beside a head, checked against the width the head reads.
fn read_standardizer(path: &Path, width: usize) -> Result<Standardizer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let s: Standardizer =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    if s.mean.len() != width || s.std.len() != width {
        bail!(
            "{}: mean/std have {} values but the head reads {width} (layers x hidden size)",
            path.display(),
            s.mean.len()
        );
    }
    Ok(s)
}
