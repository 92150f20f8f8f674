//! `nr data build-qrecc`: an answers-as-passages benchmark from the official QReCC JSON files, in
//! the layout of `../shared/data/qrecc-offline` (see nr-data's corpus builder).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use nr_data::{AnswerCorpus, AnswerSources, QreccTurn, read_qrecc_turns, write_collection};

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Build passages.jsonl and qrels_{split}.txt from qrecc_{split}.json files.
    BuildQrecc(BuildArgs),
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Folder holding qrecc_train.json, qrecc_test.json and optionally qrecc_dev.json.
    #[arg(long)]
    input: PathBuf,
    /// Folder to write (created): the JSON files are copied, passages.jsonl and qrels written.
    #[arg(long)]
    output: PathBuf,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    let DataCommand::BuildQrecc(args) = cmd;
    std::fs::create_dir_all(&args.output).with_context(|| args.output.display().to_string())?;
    let mut splits: Vec<(&str, Vec<QreccTurn>)> = Vec::new();
    for split in ["train", "dev", "test"] {
        let path = args.input.join(format!("qrecc_{split}.json"));
        if path.is_file() {
            splits.push((split, read_qrecc_turns(&path)?));
            std::fs::copy(&path, args.output.join(format!("qrecc_{split}.json")))?;
        }
    }
    if splits.is_empty() {
        bail!("{}: no qrecc_{{train,dev,test}}.json", args.input.display());
    }
    let all: Vec<QreccTurn> = splits.iter().flat_map(|(_, t)| t.iter().cloned()).collect();
    let mut passages = None;
    for (split, turns) in &splits {
        let corpus = AnswerCorpus::build(&all, turns, AnswerSources::TurnAndContextAnswers);
        corpus.qrels.write(args.output.join(format!("qrels_{split}.txt")))?;
        println!("{split}: {} turns, {} judged", turns.len(), corpus.qrels.len());
        passages = Some(corpus.passages);
    }
    let passages = passages.unwrap_or_default();
    write_collection(args.output.join("passages.jsonl"), &passages)?;
    println!("passages.jsonl: {} passages", passages.len());
    Ok(())
}
