//! `nr data build-qrecc`: an answers-as-passages benchmark from the official QReCC JSON files, in
//! the layout of `../shared/data/qrecc-offline` (see nr-data's corpus builder).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use nr_data::{
    AnswerCorpus, AnswerSources, QreccTurn, read_qrecc_turns, write_collection, write_qrecc_turns,
};

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
    /// Without a qrecc_dev.json (the official release has none), hold out every training
    /// conversation whose number is a multiple of this as the dev split.
    #[arg(long, default_value_t = 10)]
    dev_every: u32,
}

/// Splits training turns into (train, dev) by conversation: conversation numbers divisible by
/// `every` go to dev, so no conversation is in both.
pub fn hold_out_dev(turns: Vec<QreccTurn>, every: u32) -> (Vec<QreccTurn>, Vec<QreccTurn>) {
    turns
        .into_iter()
        .partition(|t| t.conversation_no % every.max(1) != 0)
}

pub fn run(cmd: DataCommand) -> Result<()> {
    let DataCommand::BuildQrecc(args) = cmd;
    anyhow::ensure!(
        args.dev_every > 0,
        "--dev-every: must be at least 1 (every conversation divisible by it goes to dev)"
    );
    std::fs::create_dir_all(&args.output).with_context(|| args.output.display().to_string())?;
    let mut splits: Vec<(&str, Vec<QreccTurn>)> = Vec::new();
    for split in ["train", "dev", "test"] {
        let path = args.input.join(format!("qrecc_{split}.json"));
        if path.is_file() {
            splits.push((split, read_qrecc_turns(&path)?));
        }
    }
    if splits.is_empty() {
        bail!("{}: no qrecc_{{train,dev,test}}.json", args.input.display());
    }
    let has_dev = splits.iter().any(|(s, _)| *s == "dev");
    if let (false, Some(i)) = (has_dev, splits.iter().position(|(s, _)| *s == "train")) {
        let (train, dev) = hold_out_dev(std::mem::take(&mut splits[i].1), args.dev_every);
        println!(
            "dev: held out {} training turns (conversations divisible by {})",
            dev.len(),
            args.dev_every
        );
        splits[i].1 = train;
        splits.insert(i + 1, ("dev", dev));
    }
    for (split, turns) in &splits {
        write_qrecc_turns(args.output.join(format!("qrecc_{split}.json")), turns)?;
    }
    let all: Vec<QreccTurn> = splits.iter().flat_map(|(_, t)| t.iter().cloned()).collect();
    let mut passages = None;
    for (split, turns) in &splits {
        let corpus = AnswerCorpus::build(&all, turns, AnswerSources::TurnAndContextAnswers);
        corpus
            .qrels
            .write(args.output.join(format!("qrels_{split}.txt")))?;
        println!(
            "{split}: {} turns, {} judged",
            turns.len(),
            corpus.qrels.len()
        );
        passages = Some(corpus.passages);
    }
    let passages = passages.unwrap_or_default();
    write_collection(args.output.join("passages.jsonl"), &passages)?;
    println!("passages.jsonl: {} passages", passages.len());
    Ok(())
}
