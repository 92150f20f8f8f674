//! The data of an experiment: QReCC turns of each split, their qrels, and the passage collection.

use std::collections::HashSet;

use anyhow::{Context, Result};
use nr_data::{Passage, PassageReader, Qrels, QreccTurn, read_qrecc_turns, standalone_rewrite_turns};

use crate::manifest::DataSpec;

/// One split's turns and judgments.
#[derive(Debug, Clone)]
pub struct Split {
    pub name: &'static str,
    pub turns: Vec<QreccTurn>,
    pub qrels: Qrels,
}

impl Split {
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
        let mut train_turns = read_turns(&spec.train, spec.max_train_turns)?;
        for extra in &spec.extra_train {
            let room = spec.max_train_turns.map(|n| n.saturating_sub(train_turns.len()));
            train_turns.extend(read_turns(extra, room)?);
        }
        if spec.standalone_rewrites {
            // Numbered from the next multiple of 1,000,000 above every conversation in use.
            let first = train_turns.iter().map(|t| t.conversation_no).max().unwrap_or(0) / 1_000_000 * 1_000_000 + 1_000_000;
            let mut standalone = standalone_rewrite_turns(&train_turns, first);
            if let Some(n) = spec.max_train_turns {
                standalone.truncate(n.saturating_sub(train_turns.len()));
            }
            train_turns.extend(standalone);
        }
        let train = Split { name: "train", turns: train_turns, qrels: Qrels::read(&spec.qrels_train)? };
        let dev = Split { name: "dev", turns: read_turns(&spec.dev, spec.max_eval_turns)?, qrels: Qrels::read(&spec.qrels_dev)? };
        let test = Split { name: "test", turns: read_turns(&spec.test, spec.max_eval_turns)?, qrels: Qrels::read(&spec.qrels_test)? };
        let passages = read_passages(spec, &[&train, &dev, &test])?;
        Ok(Self { train, dev, test, passages })
    }
}

/// The collection, or with `max_passages` a subset holding every gold passage of the kept turns
/// followed by the first other passages in file order.
fn read_passages(spec: &DataSpec, splits: &[&Split]) -> Result<Vec<Passage>> {
    let reader = PassageReader::open(&spec.passages)?;
    let Some(limit) = spec.max_passages else {
        return reader.collect::<Result<Vec<_>, _>>().with_context(|| spec.passages.display().to_string());
    };
    let gold: HashSet<String> = splits
        .iter()
        .flat_map(|s| s.turns.iter().filter_map(|t| s.qrels.get(&t.id())))
        .flat_map(|q| q.judgments().iter().filter(|j| j.relevance > 0).map(|j| j.doc_id.clone()))
        .collect();
    let mut kept = Vec::new();
    let mut others = Vec::new();
    for p in reader {
        let p = p?;
        if gold.contains(&p.id) {
            kept.push(p);
        } else if others.len() < limit {
            others.push(p);
        }
    }
    let room = limit.saturating_sub(kept.len());
    kept.extend(others.into_iter().take(room));
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> DataSpec {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/qrecc-offline");
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
        assert!(standalone.iter().all(|t| t.context.is_empty() && t.question == t.rewrite && t.turn_no == 1));
        assert_eq!(standalone[0].conversation_no, 1_000_000);
        let limited = ExperimentData::load(&spec("max_train_turns = 4200")).unwrap();
        assert_eq!(limited.train.turns.len(), 4200);
        assert_eq!(limited.train.turns[4199], standalone[29]);
    }
}
