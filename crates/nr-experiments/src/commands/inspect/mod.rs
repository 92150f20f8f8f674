//! `nr inspect ...`: JSON views of what the frozen models compute.

mod chat_file;
mod encode;
mod generate;
mod hidden;
mod query_vector;
mod tokenize;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum InspectCommand {
    /// Token ids of a text: `{"ids": [...]}`.
    Tokenize(tokenize::TokenizeArgs),
    /// Hidden states of a chat prompt at chosen layers.
    Hidden(hidden::HiddenArgs),
    /// Greedy (or sampled) generation from a chat prompt.
    Generate(generate::GenerateArgs),
    /// Teacher embeddings of texts.
    Encode(encode::EncodeArgs),
    /// A native encoder's query vector of a conversation, with its head and lexicon inputs, dumped
    /// as safetensors (to check another implementation against).
    QueryVector(query_vector::QueryVectorArgs),
}

pub fn run(cmd: InspectCommand) -> anyhow::Result<()> {
    match cmd {
        InspectCommand::Tokenize(args) => tokenize::run(args),
        InspectCommand::Hidden(args) => hidden::run(args),
        InspectCommand::Generate(args) => generate::run(args),
        InspectCommand::Encode(args) => encode::run(args),
        InspectCommand::QueryVector(args) => query_vector::run(args),
    }
}
