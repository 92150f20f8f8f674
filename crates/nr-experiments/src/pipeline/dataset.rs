//! The data of an experiment: QReCC turns of each split, their qrels, and the passage collection.

use std::collections::HashSet;

use anyhow::{Context, Result};
use nr_data::{Passage, PassageReader, Qrels, QreccTurn, read_qrecc_turns};

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
