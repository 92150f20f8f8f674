//! `nr chat`: conversational search with native retrieval, interactive or from a script.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::agent::{Agent, AgentOptions, QueryMode, TurnResult};

#[derive(clap::Args)]
pub struct ChatArgs {
    /// The native encoder: the folder `nr run` writes as OUTPUT/head, or a copy of it anywhere (it
    /// names the models and settings it was trained with).
    #[arg(long)]
    head: PathBuf,
    /// Passage collection to search (JSONL file or folder); indexed once by the teacher and cached.
    #[arg(long)]
    corpus: PathBuf,
    /// Run the user turns of a JSON file and print one JSON line per turn instead of chatting.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Generate-then-encode instead of native retrieval (the baseline, for comparison).
    #[arg(long)]
    gte: bool,
    /// Print the generated query (generate-then-encode and `query_tokens` heads).
    #[arg(long)]
    show_query: bool,
    /// Print the time of each part of a turn.
    #[arg(long)]
    timings: bool,
    /// Passages retrieved per turn.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Retrieved passages the LLM reads when it answers (0: retrieve only).
    #[arg(long, default_value_t = 3)]
    answer_passages: usize,
    #[arg(long, default_value_t = 96)]
    max_answer_tokens: usize,
    /// Cache folder for the corpus index.
    #[arg(long, default_value = "runs/cache")]
    cache: PathBuf,
    /// The LLM, when it has moved since training (must be the same model).
    #[arg(long)]
    llm: Option<PathBuf>,
    /// The teacher, when it has moved since training (must be the same model).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Compute device: flex (default), wgpu, cuda[:N], tch.
    #[arg(long)]
    device: Option<String>,
    /// Search index: exact (every score computed), hnsw (a graph built over the corpus vectors
    /// at start; for large corpora) or binary (sign bits scanned flat; small corpora).
    #[arg(long, default_value = "exact", value_parser = ["exact", "hnsw", "binary"])]
    index: String,
    /// The LLM's projections: auto (bf16 on a CPU with AVX-512 BF16, else f32), f32 or bf16.
    #[arg(long, default_value = "auto")]
    precision: nr_backbone::kernels::Precision,
}

/// One turn of a script: the user's message, optionally with a recorded assistant reply that
/// replaces the LLM's answer (to replay a logged conversation).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScriptTurn {
    User(String),
    Recorded {
        user: String,
        assistant: Option<String>,
    },
}

/// The turns of a script file: each user message with its recorded reply, if any.
pub(crate) fn read_script(path: &Path) -> Result<Vec<(String, Option<String>)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let turns: Vec<ScriptTurn> = serde_json::from_str(&text).with_context(|| {
        format!("{}: expected a JSON list of user turns (strings or {{\"user\", \"assistant\"}} objects)", path.display())
    })?;
    if turns.is_empty() {
        bail!("{}: the script has no turns", path.display());
    }
    Ok(turns
        .into_iter()
        .map(|t| match t {
            ScriptTurn::User(u) => (u, None),
            ScriptTurn::Recorded { user, assistant } => (user, assistant),
        })
        .collect())
}

pub fn run(args: ChatArgs) -> Result<()> {
    anyhow::ensure!(args.top_k > 0, "--top-k: must be at least 1");
    let script = args.script.as_deref().map(read_script).transpose()?;
    let device = crate::device::parse_device(args.device.as_deref())?;
    let options = AgentOptions {
        head: args.head.clone(),
        corpus: args.corpus.clone(),
        cache: args.cache.clone(),
        llm: args.llm.clone(),
        teacher: args.teacher.clone(),
        mode: if args.gte {
            QueryMode::GenerateThenEncode
        } else {
            QueryMode::Native
        },
        top_k: args.top_k,
        answer_passages: args.answer_passages,
        max_answer_tokens: args.max_answer_tokens,
        index: match args.index.as_str() {
            "hnsw" => nr_index::IndexSpec::Hnsw(nr_index::HnswParams::default()),
            "binary" => nr_index::IndexSpec::Binary(nr_index::BinaryParams::default()),
            _ => nr_index::IndexSpec::Exact,
        },
        precision: args.precision,
    };
    let mut agent = Agent::load(options, device)?;
    match script {
        Some(turns) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let total = turns.len();
            let mut failed = 0;
            for (i, (user, recorded)) in turns.into_iter().enumerate() {
                // A bad turn is reported and skipped; the conversation goes on without it.
                match agent.turn(&user, recorded.as_deref()) {
                    Ok((result, _)) => writeln!(out, "{}", serde_json::to_string(&result)?)?,
                    Err(e) => {
                        failed += 1;
                        eprintln!("turn {}: skipped: {e:#}", i + 1);
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {total} turns failed (reported above)");
            }
            Ok(())
        }
        None => interactive(&mut agent, &args),
    }
}

/// Reads user turns from stdin until EOF or `/quit`; `/reset` starts a new conversation.
fn interactive(agent: &mut Agent, args: &ChatArgs) -> Result<()> {
    eprintln!(
        "native-retrieval chat ({}): /reset starts over, /quit or Ctrl-D ends",
        if args.gte {
            "generate-then-encode"
        } else {
            "native"
        }
    );
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut raw = Vec::new();
    loop {
        eprint!("you> ");
        std::io::stderr().flush()?;
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        // One bad line is reported and the conversation goes on.
        let Ok(line) = std::str::from_utf8(&raw) else {
            eprintln!("(that line is not UTF-8 text; the conversation is unchanged)");
            continue;
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                agent.reset();
                eprintln!("(new conversation)");
                continue;
            }
            _ => {}
        }
        match agent.turn(line, None) {
            Ok((result, shown)) => print_turn(agent, &result, &shown, args),
            Err(e) => eprintln!("(turn failed, the conversation is unchanged: {e:#})"),
        }
    }
    Ok(())
}

fn print_turn(agent: &Agent, result: &TurnResult, shown: &[usize], args: &ChatArgs) {
    if let (true, Some(q)) = (args.show_query, &result.query) {
        println!("query: {q}");
    }
    for (rank, (hit, &i)) in result.retrieved.iter().zip(shown).enumerate() {
        let snippet: String = agent.passage(i).contents.chars().take(100).collect();
        println!(
            "  [{:>2}] {:.3}  {}  {}",
            rank + 1,
            hit.score,
            hit.id,
            snippet.replace('\n', " ")
        );
    }
    if !result.answer.is_empty() {
        println!("assistant> {}", result.answer);
    }
    if args.timings {
        let t = &result.timings;
        println!(
            "  timings: prefill {:.0} ms ({} new of {} tokens), generation {:.0} ms, teacher {:.1} ms, head {:.2} ms, search {:.1} ms, answer {:.0} ms",
            t.prefill_ms,
            t.prefill_tokens,
            t.prompt_tokens,
            t.generation_ms,
            t.teacher_ms,
            t.head_ms,
            t.search_ms,
            t.answer_ms
        );
    }
}
