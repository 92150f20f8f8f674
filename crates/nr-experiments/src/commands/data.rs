//! `nr data build-qrecc`: an answers-as-passages benchmark from the official QReCC JSON files, in
//! the layout of `../shared/data/qrecc-offline` (see nr-data's corpus builder).
//! `nr data heldout`: the turns of InfoCQR's sampled file that the benchmark's splits left out, as
//! a test split scored on the benchmark's own collection.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use nr_data::{
    AnswerCorpus, AnswerSources, QreccTurn, Qrels, answer_passage_id, read_collection,
    read_infocqr_turns, read_qrecc_turns, write_collection, write_qrecc_turns,
};

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Build passages.jsonl and qrels_{split}.txt from qrecc_{split}.json files.
    BuildQrecc(BuildArgs),
    /// Write a held-out test split: the turns of an InfoCQR sampled QReCC file from conversations
    /// that no split of a benchmark folder holds, judged against that folder's passages.
    Heldout(HeldoutArgs),
}

#[derive(clap::Args)]
pub struct HeldoutArgs {
    /// InfoCQR's sampled QReCC file (e.g. ../shared/data/qrecc/infocqr/dev-sampled2k-modified.json).
    #[arg(long)]
    infocqr: PathBuf,
    /// The benchmark folder whose qrecc_*.json splits are excluded and whose passages.jsonl judges.
    #[arg(long)]
    benchmark: PathBuf,
    /// Folder to write (created): qrecc_test.json and qrels_test.txt.
    #[arg(long)]
    output: PathBuf,
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
    match cmd {
        DataCommand::BuildQrecc(args) => build_qrecc(args),
        DataCommand::Heldout(args) => heldout(args),
    }
}

/// The turns of `candidates` whose conversation no split in `benchmark` holds, and their qrels:
/// each turn whose answer is a passage of `collection_ids` is judged against it.
pub fn heldout_split(
    candidates: Vec<QreccTurn>,
    benchmark: &[QreccTurn],
    collection_ids: &HashSet<String>,
) -> (Vec<QreccTurn>, Qrels) {
    let seen: HashSet<u32> = benchmark.iter().map(|t| t.conversation_no).collect();
    let turns: Vec<QreccTurn> = candidates
        .into_iter()
        .filter(|t| !seen.contains(&t.conversation_no))
        .collect();
    let mut qrels = Qrels::new();
    for turn in &turns {
        if let Some(id) = answer_passage_id(&turn.answer).filter(|id| collection_ids.contains(id)) {
            // A repeated turn id keeps its first judgment.
            let _ = qrels.add(&turn.id(), &id, 1);
        }
    }
    (turns, qrels)
}

fn heldout(args: HeldoutArgs) -> Result<()> {
    let mut benchmark = Vec::new();
    for split in ["train", "train_rewrites_only", "dev", "test"] {
        let path = args.benchmark.join(format!("qrecc_{split}.json"));
        if path.is_file() {
            benchmark.extend(read_qrecc_turns(&path)?);
        }
    }
    if benchmark.is_empty() {
        bail!("{}: no qrecc_*.json split", args.benchmark.display());
    }
    let collection = args.benchmark.join("passages.jsonl");
    let ids: HashSet<String> = read_collection(&collection)?
        .into_iter()
        .map(|p| p.id)
        .collect();
    let candidates = read_infocqr_turns(&args.infocqr)?;
    let n_candidates = candidates.len();
    let (turns, qrels) = heldout_split(candidates, &benchmark, &ids);
    std::fs::create_dir_all(&args.output).with_context(|| args.output.display().to_string())?;
    write_qrecc_turns(args.output.join("qrecc_test.json"), &turns)?;
    qrels.write(args.output.join("qrels_test.txt"))?;
    println!(
        "{}: {} of {} turns are outside every split of {}; {} judged against {}",
        args.output.display(),
        turns.len(),
        n_candidates,
        args.benchmark.display(),
        qrels.len(),
        collection.display()
    );
    Ok(())
}

fn build_qrecc(args: BuildArgs) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(conversation_no: u32, turn_no: u32, answer: &str) -> QreccTurn {
        QreccTurn {
            context: vec![],
            question: "q".into(),
            rewrite: "q".into(),
            answer: answer.into(),
            answer_url: String::new(),
            conversation_no,
            turn_no,
            conversation_source: "quac".into(),
        }
    }

    #[test]
    fn heldout_keeps_unseen_conversations_and_judges_answers_in_the_collection() {
        let long = "An answer long enough to be a passage.";
        let other = "Another answer that is long enough too.";
        let id = answer_passage_id(long).unwrap();
        let candidates = vec![
            turn(1, 3, long),   // conversation 1 is in the benchmark: dropped
            turn(2, 1, long),   // kept, judged
            turn(2, 2, "Yes."), // kept, too short to be a passage
            turn(3, 1, other),  // kept, answer not in the collection
        ];
        let benchmark = vec![turn(1, 1, long)];
        let ids: HashSet<String> = [id.clone()].into();
        let (turns, qrels) = heldout_split(candidates, &benchmark, &ids);
        let kept: Vec<String> = turns.iter().map(QreccTurn::id).collect();
        assert_eq!(kept, ["2_1", "2_2", "3_1"]);
        assert_eq!(qrels.len(), 1);
        assert_eq!(qrels.get("2_1").unwrap().relevance(&id), Some(1));
    }
}
