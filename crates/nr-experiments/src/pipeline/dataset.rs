//! The data of an experiment: QReCC turns of each split, their qrels, and the passage collection.

use std::collections::HashSet;

use anyhow::Result;
use nr_data::{
    Passage, QreccTurn, Qrels, corpus_sentence_turns, read_qrecc_turns, standalone_rewrite_turns,
};

use crate::manifest::DataSpec;

/// One split's turns and judgments.
#[derive(Debug, Clone)]
pub struct Split {
    pub name: &'static str,
    pub turns: Vec<QreccTurn>,
    pub qrels: Qrels,
    /// Lengths of the consecutive runs of turns whose LLM features are cached apart (conversation
    /// turns, then corpus sentences), so that adding corpus sentences leaves the turns' cache valid.
    pub parts: Vec<usize>,
}

impl Split {
    pub fn new(name: &'static str, turns: Vec<QreccTurn>, qrels: Qrels) -> Self {
        let parts = vec![turns.len()];
        Self {
            name,
            turns,
            qrels,
            parts,
        }
    }

    /// The split's turns in its cached parts (see [`Split::parts`]).
    pub fn part_turns(&self) -> Vec<&[QreccTurn]> {
        let mut start = 0;
        self.parts
            .iter()
            .map(|&n| {
                start += n;
                &self.turns[start - n..start]
            })
            .collect()
    }

    /// Turn ids in order.
    pub fn ids(&self) -> Vec<String> {
        self.turns.iter().map(QreccTurn::id).collect()
    }
}

/// Train (with any extra training turns), dev, test and the passages.
#[derive(Debug, Clone)]
pub struct ExperimentData {
    pub train: Split,
    pub dev: Split,
    pub test: Split,
    pub passages: Vec<Passage>,
}

fn read_turns(path: &std::path::Path, limit: Option<usize>) -> Result<Vec<QreccTurn>> {
    let mut turns = read_qrecc_turns(path)?;
    if let Some(n) = limit {
        turns.truncate(n);
    }
    Ok(turns)
}

impl ExperimentData {
    /// Reads every file the manifest names, applying its size limits.
    pub fn load(spec: &DataSpec) -> Result<Self> {
        // Training turns still allowed by `max_train_turns` after `turns`.
        let room = |turns: &[QreccTurn]| {
            spec.max_train_turns
                .map_or(usize::MAX, |n| n.saturating_sub(turns.len()))
        };
        let mut train_turns = read_turns(&spec.train, spec.max_train_turns)?;
        for extra in &spec.extra_train {
            let more = read_turns(extra, Some(room(&train_turns)))?;
            train_turns.extend(more);
        }
        if spec.standalone_rewrites {
            let mut standalone = standalone_rewrite_turns(&train_turns, next_million(&train_turns));
            standalone.truncate(room(&train_turns));
            train_turns.extend(standalone);
        }
        let mut train = Split::new("train", train_turns, Qrels::read(&spec.qrels_train)?);
        let dev = Split::new(
            "dev",
            read_turns(&spec.dev, spec.max_eval_turns)?,
            Qrels::read(&spec.qrels_dev)?,
        );
        let test = Split::new(
            "test",
            read_turns(&spec.test, spec.max_eval_turns)?,
            Qrels::read(&spec.qrels_test)?,
        );
        let passages = read_passages(spec, &[&train, &dev, &test])?;
        if spec.corpus_sentences > 0 {
            // Never the passages that evaluation turns are judged against.
            let held_out: HashSet<&str> = [&dev, &test].iter().flat_map(|s| gold_ids(s)).collect();
            let n = spec.corpus_sentences.min(room(&train.turns));
            let sentences =
                corpus_sentence_turns(&passages, &held_out, n, next_million(&train.turns));
            if !sentences.is_empty() {
                train.parts.push(sentences.len());
                train.turns.extend(sentences);
            }
        }
        Ok(Self {
            train,
            dev,
            test,
            passages,
        })
    }
}

/// The next multiple of 1,000,000 above every conversation number in `turns`: where generated
/// standalone turns are numbered, clear of real conversations.
pub fn next_million(turns: &[QreccTurn]) -> u32 {
    turns.iter().map(|t| t.conversation_no).max().unwrap_or(0) / 1_000_000 * 1_000_000 + 1_000_000
}

/// Ids of the passages judged relevant for some turn of `split`.
pub fn gold_ids(split: &Split) -> impl Iterator<Item = &str> {
    split
        .turns
        .iter()
        .filter_map(|t| split.qrels.get(&t.id()))
        .flat_map(|q| {
            q.judgments()
                .iter()
                .filter(|j| j.relevance > 0)
                .map(|j| j.doc_id.as_str())
        })
}

/// The collection, or with `max_passages` a subset holding every gold passage of the kept turns
/// followed by the first other passages in file order.
fn read_passages(spec: &DataSpec, splits: &[&Split]) -> Result<Vec<Passage>> {
    let gold: HashSet<String> = splits
        .iter()
        .flat_map(|s| gold_ids(s))
        .map(str::to_string)
        .collect();
    let limit = spec.max_passages.unwrap_or(usize::MAX);
    let mut kept = Vec::new();
    let mut others = Vec::new();
    nr_data::read_unique_passages(&spec.passages, |p| {
        if spec.max_passages.is_none() || gold.contains(&p.id) {
            kept.push(p);
        } else if others.len() < limit {
            others.push(p);
        }
    })?;
    let room = limit.saturating_sub(kept.len());
    kept.extend(others.into_iter().take(room));
    anyhow::ensure!(
        !kept.is_empty(),
        "{}: the collection holds no passages",
        spec.passages.display()
    );
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> DataSpec {
        let dir = nr_data::shared_path("data/qrecc-offline");
        let dir = dir.display();
        let text = format!(
            r#"train = "{dir}/qrecc_train.json"
            extra_train = ["{dir}/qrecc_train_rewrites_only.json"]
            standalone_rewrites = true
            dev = "{dir}/qrecc_dev.json"
            test = "{dir}/qrecc_test.json"
            passages = "{dir}/passages.jsonl"
            qrels_train = "{dir}/qrels_train.txt"
            qrels_dev = "{dir}/qrels_dev.txt"
            qrels_test = "{dir}/qrels_test.txt"
            {extra}"#
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn standalone_rewrites_follow_the_training_files_as_one_turn_conversations() {
        let data = ExperimentData::load(&spec("")).unwrap();
        let turns = &data.train.turns;
        // 1,066 + 3,104 turns in the two files, then 3,983 distinct rewrites of turns with
        // history (counted with Python's json module).
        assert_eq!(turns.len(), 1066 + 3104 + 3983);
        let standalone = &turns[1066 + 3104..];
        assert!(
            standalone
                .iter()
                .all(|t| t.context.is_empty() && t.question == t.rewrite && t.turn_no == 1)
        );
        assert_eq!(standalone[0].conversation_no, 1_000_000);
        let limited = ExperimentData::load(&spec("max_train_turns = 4200")).unwrap();
        assert_eq!(limited.train.turns.len(), 4200);
        assert_eq!(limited.train.turns[4199], standalone[29]);
        assert_eq!(data.train.parts, vec![turns.len()]);
    }

    #[test]
    fn corpus_sentences_come_after_the_turns_as_a_part_of_their_own_and_skip_evaluation_gold() {
        let data = ExperimentData::load(&spec("corpus_sentences = 500")).unwrap();
        let turns = 1066 + 3104 + 3983;
        assert_eq!(data.train.parts, vec![turns, 500]);
        let parts = data.train.part_turns();
        assert_eq!((parts[0].len(), parts[1].len()), (turns, 500));
        let sentences = parts[1];
        assert_eq!(
            sentences[0].conversation_no, 2_000_000,
            "after the standalone rewrites' 1,000,000s"
        );
        assert!(
            sentences
                .iter()
                .all(|t| t.conversation_source == "corpus-sentence" && t.context.is_empty())
        );
        let contents: std::collections::HashMap<&str, &str> = data
            .passages
            .iter()
            .map(|p| (p.id.as_str(), p.contents.as_str()))
            .collect();
        let held_out: HashSet<&str> = gold_ids(&data.dev).chain(gold_ids(&data.test)).collect();
        let held_sentences: HashSet<String> = held_out
            .iter()
            .map(|id| nr_data::first_sentence(contents[id]))
            .collect();
        assert!(
            held_out.len() > 400,
            "{} gold passages of dev and test",
            held_out.len()
        );
        assert!(
            sentences
                .iter()
                .all(|t| !held_sentences.contains(&t.question)),
            "a dev/test gold passage became training text"
        );
        let limited =
            ExperimentData::load(&spec("corpus_sentences = 500\nmax_train_turns = 8200")).unwrap();
        assert_eq!(limited.train.parts, vec![turns, 47]);
    }
}
