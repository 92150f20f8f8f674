//! `nr`: the native-retrieval command line.
//!
//! Subcommands follow the data flow: `inspect` looks inside the frozen models, `eval` scores TREC run
//! files like trec_eval.

use clap::{Parser, Subcommand};
use nr_experiments::commands;

/// Native retrieval: search with an LLM's own hidden states.
#[derive(Parser)]
#[command(name = "nr", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Look inside the frozen models (tokenizer, hidden states, generation, embeddings).
    #[command(subcommand)]
    Inspect(commands::inspect::InspectCommand),
    /// Score a TREC run file against qrels with trec_eval semantics.
    Eval(commands::eval::EvalArgs),
    /// Prepare benchmark data (official QReCC files -> offline layout).
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// Run an experiment manifest end to end (or its ablation grid).
    Run(commands::run::RunArgs),
    /// Check a manifest and every file it names without running anything.
    Validate(commands::validate::ValidateArgs),
    /// Chat with an agent that searches with its own hidden states (a trained head).
    Chat(commands::chat::ChatArgs),
    /// Write a random-weight model in a real model's shape (GGUF decoder or teacher folder).
    #[command(subcommand)]
    MakeModel(commands::make_model::MakeModelCommand),
    /// Rates of each stage (prefill, teacher, head training, search) on one device.
    Throughput(commands::throughput::ThroughputArgs),
    /// Encode a passage collection into Parquet shards with the teacher (one shard or all; resumable).
    Encode(commands::encode::EncodeArgs),
    /// Check a folder of vector shards, or write synthetic vectors.
    #[command(subcommand)]
    Vectors(commands::vectors::VectorsCommand),
    /// Build an HNSW index over Parquet vectors, or measure one against exact search.
    #[command(subcommand)]
    Index(commands::index::IndexCommand),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(cmd) => commands::inspect::run(cmd),
        Command::Eval(args) => commands::eval::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Data(cmd) => commands::data::run(cmd),
        Command::Validate(args) => commands::validate::run(args),
        Command::Chat(args) => commands::chat::run(args),
        Command::MakeModel(cmd) => commands::make_model::run(cmd),
        Command::Throughput(args) => commands::throughput::run(args),
        Command::Encode(args) => commands::encode::run(args),
        Command::Vectors(cmd) => commands::vectors::run(cmd),
        Command::Index(cmd) => commands::index::run(cmd),
    };
    if let Err(err) = result {
        // One line: the chain of causes joined, as ripgrep does.
        eprintln!("nr: {err:#}");
        std::process::exit(2);
    }
}
