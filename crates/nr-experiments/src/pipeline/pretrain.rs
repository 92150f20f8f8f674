//! The pre-training stage: teacher emulation from unlabelled text. The dense head learns to map
//! the LLM's states of passage windows (each read as a one-turn conversation) onto the teacher's
//! embedding of the same window, before it is trained on the QReCC turns (`[pretrain]` of the
//! manifest). Its fidelity, the mean cosine between the head's vector and the teacher's embedding,
//! is measured on windows of the passages that dev and test turns are judged against, which no
//! stage ever trains on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use nr_data::{QreccTurn, Qrels, passage_window_turns, read_text_corpus, window_turns};
use nr_head::{Head, HeadConfig, HeadMeta};
use serde::Serialize;

use super::dataset::{Split, gold_ids, next_million};
use super::evaluate::mean_row_cosine;
use super::native_head::{in_memory, ridge_init};
use super::targets::targets_of_queries;
use super::{Experiment, RunOptions};
use crate::manifest::{LossTerm, PretrainMethod, PretrainSpec};
use crate::native::{HeadInputs, Standardizer, encode_head};
use crate::train::trainer::{FitData, fit};
use crate::vectors::Vectors;

/// The split name of the pre-training windows (their hidden states are cached under it).
pub const PRETRAIN: &str = "pretrain";

/// The split name of the held-out windows the fidelity is measured on.
pub const HELDOUT: &str = "pretrain-heldout";

/// Whether split `name` holds passage windows, which the LLM reads as their own query.
pub fn is_window_split(name: &str) -> bool {
    name == PRETRAIN || name == HELDOUT
}

/// Held-out windows the fidelity is measured on.
const FIDELITY_WINDOWS: usize = 1000;

/// The held-out windows are numbered from this far past the pre-training windows' first number,
/// so at most this many windows pre-train a head (`pretrain.texts + pretrain.corpus_texts`).
pub const HELDOUT_NUMBERS: u32 = 500_000;

/// What the pre-training stage produced, written to `OUTPUT/pretrain.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainReport {
    /// Windows pre-trained on, passage and corpus windows together.
    pub texts: usize,
    /// Of which windows of `pretrain.corpus`.
    pub corpus_texts: usize,
    pub method: PretrainMethod,
    /// Dev MRR@10 of the pre-trained head alone (no fine-tuning, no lexicon).
    pub dev_mrr10: f64,
    /// Held-out windows the fidelities are measured on.
    pub heldout_windows: usize,
    /// Mean cosine with the teacher on held-out windows: the pre-trained head, then the final one.
    pub fidelity_pretrained: f64,
    pub fidelity_final: Option<f64>,
}

/// The pre-trained head (a saved head's stem, the initialisation of the training that follows),
/// with the held-out windows to measure the final head on.
pub struct Pretrained {
    pub stem: PathBuf,
    pub report: PretrainReport,
    heldout: HeldoutWindows,
}

/// Windows of the dev and test gold passages, which nothing trains on: the head's (standardised)
/// inputs and the teacher's embeddings.
struct HeldoutWindows {
    x: HeadInputs,
    y: Vec<f32>,
    dim: usize,
}

impl HeldoutWindows {
    /// Mean cosine of `head`'s vectors with the teacher's embeddings.
    fn fidelity(&self, head: &Head, device: &burn::tensor::Device) -> Result<f64> {
        let v = encode_head(head, &self.x, device)?;
        Ok(mean_row_cosine(&v, &self.y, self.dim))
    }
}

impl Pretrained {
    /// Records the fidelity of the head that training ended with and writes the report.
    pub fn finish(mut self, head: &Head, ctx: &Experiment, path: &Path) -> Result<PretrainReport> {
        self.report.fidelity_final = Some(self.heldout.fidelity(head, &ctx.device)?);
        tracing::info!(
            "pre-training: fidelity on {} held-out windows, pre-trained {:.4}, final {:.4}",
            self.report.heldout_windows,
            self.report.fidelity_pretrained,
            self.report.fidelity_final.unwrap_or(f64::NAN)
        );
        crate::atomic_file::write_atomic(
            path,
            serde_json::to_string_pretty(&self.report)?.as_bytes(),
        )?;
        Ok(self.report)
    }
}

/// A split of standalone window turns, each source's cached in parts of `chunk` turns (so the
/// passage windows' parts stay the same whatever corpus windows follow them).
fn window_split<const N: usize>(
    name: &'static str,
    sources: [Vec<QreccTurn>; N],
    chunk: usize,
) -> Split {
    let parts: Vec<usize> = sources
        .iter()
        .flat_map(|turns| {
            let n = turns.len();
            (0..n.div_ceil(chunk)).map(move |i| chunk.min(n - i * chunk))
        })
        .collect();
    let mut split = Split::new(name, sources.concat(), Qrels::default());
    split.parts = parts;
    split
}

/// The first `pretrain.corpus_texts` windows of the `pretrain.corpus` files' paragraphs (source
/// `corpus-window`), numbered from `first_no`.
fn corpus_windows(spec: &PretrainSpec, first_no: u32) -> Result<Vec<QreccTurn>> {
    if spec.corpus_texts == 0 {
        return Ok(Vec::new());
    }
    let mut docs = Vec::new();
    for path in &spec.corpus {
        docs.extend(read_text_corpus(path)?);
    }
    let windows = window_turns(
        &docs,
        &HashSet::new(),
        spec.max_sentences,
        spec.corpus_texts,
        first_no,
        "corpus-window",
    );
    if windows.len() < spec.corpus_texts {
        tracing::warn!(
            "pretrain.corpus_texts = {}: the corpus gives {} windows; pre-training on those",
            spec.corpus_texts,
            windows.len()
        );
    }
    Ok(windows)
}

/// Pre-trains the dense head as `[pretrain]` says, saves it under `dir`, and measures it on dev
/// (MRR@10) and on held-out windows (fidelity). `dev_x` is standardised already.
#[allow(clippy::too_many_arguments)]
pub fn pretrain_head(
    ctx: &Experiment,
    config: &HeadConfig,
    meta: &HeadMeta,
    standardizer: &Standardizer,
    dev_x: &HeadInputs,
    passages: &Vectors,
    opts: &RunOptions,
    dir: &Path,
) -> Result<Pretrained> {
    let m = &ctx.manifest;
    let spec = &m.pretrain;
    let data = &ctx.data;
    let held_out: HashSet<&str> = [&data.dev, &data.test]
        .into_iter()
        .flat_map(gold_ids)
        .collect();
    let first_no = next_million(&data.train.turns).max(next_million(&data.dev.turns));
    let windows = passage_window_turns(
        &data.passages,
        &held_out,
        spec.max_sentences,
        spec.texts,
        first_no,
    );
    if windows.len() < spec.texts {
        tracing::warn!(
            "pretrain.texts = {}: the collection gives {} windows; pre-training on those",
            spec.texts,
            windows.len()
        );
    }
    let corpus = corpus_windows(spec, first_no + windows.len() as u32)?;
    anyhow::ensure!(
        !windows.is_empty() || !corpus.is_empty(),
        "pretrain.texts = {}: the collection gives no window outside the dev and test gold passages",
        spec.texts
    );
    tracing::info!(
        "pre-training on {} passage windows and {} corpus windows",
        windows.len(),
        corpus.len()
    );
    let corpus_texts = corpus.len();
    let split = window_split(PRETRAIN, [windows, corpus], spec.chunk);
    let mut x = ctx.split_rows(&split, opts)?;
    x.standardize(standardizer);
    let texts: Vec<String> = split.turns.iter().map(|t| t.rewrite.clone()).collect();
    let y = targets_of_queries(ctx, &split, &texts, passages)?;

    let fit_data = FitData {
        train_x: &x,
        train_y: &y,
        dev_x,
        dev_ids: &data.dev.ids(),
        dev_qrels: &data.dev.qrels,
        passages,
    };
    std::fs::create_dir_all(dir)?;
    let stem = match spec.method {
        PretrainMethod::Ridge => {
            let x = in_memory(&x)?;
            ridge_init(config, meta, &m.training, x, &fit_data, &ctx.device, dir)?
        }
        PretrainMethod::Align => {
            let training = crate::manifest::TrainingSpec {
                epochs: spec.epochs,
                lr: spec.lr,
                patience: spec.patience,
                ..m.training.clone()
            };
            let losses = crate::manifest::LossSpec {
                use_terms: vec![LossTerm::Align],
                ..m.losses.clone()
            };
            fit(
                config,
                meta,
                &training,
                &losses,
                &fit_data,
                &ctx.device,
                dir,
                opts.resume,
                None,
            )?;
            dir.join("best-head")
        }
    };
    let head = Head::load(&stem, meta, &ctx.device)?;
    let dev_mrr10 = crate::train::trainer::dev_mrr10(&head, &fit_data, &ctx.device)?;

    let heldout = heldout_windows(ctx, &held_out, standardizer, first_no, opts)?;
    let fidelity = heldout.fidelity(&head, &ctx.device)?;
    tracing::info!(
        "pre-trained head ({} windows, {:?}): dev MRR@10 {dev_mrr10:.4}, fidelity {fidelity:.4} on {} held-out windows",
        split.turns.len(),
        spec.method,
        heldout.x.len()
    );
    Ok(Pretrained {
        stem,
        report: PretrainReport {
            texts: split.turns.len(),
            corpus_texts,
            method: spec.method,
            dev_mrr10,
            heldout_windows: heldout.x.len(),
            fidelity_pretrained: fidelity,
            fidelity_final: None,
        },
        heldout,
    })
}

/// Up to [`FIDELITY_WINDOWS`] windows of the passages in `held_out`, with their inputs and
/// teacher embeddings (numbered clear of the pre-training windows, which start at `first_no`).
fn heldout_windows(
    ctx: &Experiment,
    held_out: &HashSet<&str>,
    standardizer: &Standardizer,
    first_no: u32,
    opts: &RunOptions,
) -> Result<HeldoutWindows> {
    let spec = &ctx.manifest.pretrain;
    let gold: Vec<nr_data::Passage> = ctx
        .data
        .passages
        .iter()
        .filter(|p| held_out.contains(p.id.as_str()))
        .cloned()
        .collect();
    let split = window_split(
        HELDOUT,
        [passage_window_turns(
            &gold,
            &HashSet::new(),
            spec.max_sentences,
            FIDELITY_WINDOWS,
            first_no + HELDOUT_NUMBERS,
        )],
        spec.chunk,
    );
    let mut x = ctx.head_inputs(&split, opts)?;
    standardizer.apply(&mut x);
    let texts: Vec<String> = split.turns.iter().map(|t| t.rewrite.clone()).collect();
    let y = ctx
        .teacher
        .queries(&split.ids(), &texts, &ctx.cache, false)?
        .data;
    Ok(HeldoutWindows {
        x,
        y,
        dim: ctx.teacher.encoder.dim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_cached_in_chunks() {
        let turns: Vec<QreccTurn> = (0..12)
            .map(|i| QreccTurn {
                context: Vec::new(),
                question: format!("text {i}"),
                rewrite: format!("text {i}"),
                answer: String::new(),
                answer_url: String::new(),
                conversation_no: i,
                turn_no: 1,
                conversation_source: "passage-window".into(),
            })
            .collect();
        assert_eq!(window_split(PRETRAIN, [turns.clone()], 5).parts, [5, 5, 2]);
        assert_eq!(window_split(HELDOUT, [turns.clone()], 12).parts, [12]);
        let split = window_split(PRETRAIN, [turns[..7].to_vec(), turns[7..].to_vec()], 5);
        assert_eq!(split.parts, [5, 2, 5], "each source in its own parts");
        assert_eq!(split.turns.len(), 12);
    }
}
