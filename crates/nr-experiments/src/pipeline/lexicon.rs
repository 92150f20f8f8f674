//! The lexicon stage: the lexical part of the native head, learnt from the experiment's passages
//! and training rewrites (no labels), its message weights and its mix with the dense head chosen
//! on dev MRR@10. See `crate::train::lexicon` for the method.

use std::collections::HashSet;

use anyhow::Result;
use nr_head::{LexicalMix, Lexicon};

use super::dataset::gold_ids;
use super::{Experiment, RunOptions, Stage, cached};
use crate::native::lexical::native_vectors;
use crate::native::{LexicalInput, conversations};
use crate::progress::progress;
use crate::retrieval;
use crate::train::lexicon::{
    FitOptions, fit_table, fold_weights, initial_table, mix_grid, token_weights,
};
use crate::train::targets::TrainTargets;
use crate::vectors::Vectors;

/// A fitted lexicon with the mix chosen on dev.
pub struct ChosenLexicon {
    pub lexicon: Lexicon,
    pub mix: LexicalMix,
    pub dev_mrr10: f64,
}

impl Experiment {
    /// What the lexicon reads of each turn of a split (the conversation prompt's messages).
    pub fn lexical_inputs(&self, turns: &[nr_data::QreccTurn]) -> Result<Vec<LexicalInput>> {
        self.features
            .lexical_inputs(&self.llm, &conversations(turns))
    }

    /// Teacher embeddings of every LLM token's text (`[vocab, dim]`), cached.
    fn token_embeddings(&self, opts: &RunOptions) -> Result<Vectors> {
        let tok = &self.llm.tokenizer;
        let vocab = tok.vocab_size();
        let texts: Vec<String> = (0..vocab as u32)
            .map(|i| tok.decode(&[i]).unwrap_or_default())
            .collect();
        let ids: Vec<String> = (0..vocab).map(|i| i.to_string()).collect();
        let key = self
            .llm_key("lexicon-token-embeddings")
            .setting("teacher", &self.teacher.weights_hash)
            .inputs(texts.iter().map(String::as_str))
            .finish();
        cached::vectors(
            &self.cache,
            &key,
            opts.force.contains(&Stage::Train),
            &ids,
            || {
                tracing::info!("lexicon: teacher embeddings of {vocab} token texts");
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let rows = self.teacher.encoder.encode_many(&refs, 256, true)?;
                Ok((self.teacher.encoder.dim(), rows.concat()))
            },
        )
    }

    /// The fitted lexicon (cached): passages not judged for dev or test and the training rewrites,
    /// each with its teacher embedding as the target.
    fn fitted_lexicon(
        &self,
        passages: &Vectors,
        train_y: &TrainTargets,
        opts: &RunOptions,
    ) -> Result<Lexicon> {
        let spec = &self.manifest.lexicon;
        let tok = &self.llm.tokenizer;
        let dim = passages.dim;
        let held_out: HashSet<&str> = [&self.data.dev, &self.data.test]
            .into_iter()
            .flat_map(gold_ids)
            .collect();
        let mut names: Vec<&str> = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        let mut targets: Vec<f32> = Vec::new();
        if spec.fit_passages {
            let allowed = self
                .data
                .passages
                .iter()
                .enumerate()
                .filter(|(_, p)| !held_out.contains(p.id.as_str()));
            for (i, p) in allowed.take(spec.max_fit_passages.unwrap_or(usize::MAX)) {
                names.push(&p.id);
                texts.push(&p.contents);
                targets.extend_from_slice(passages.row(i));
            }
        }
        if spec.fit_rewrites {
            for (i, t) in self
                .data
                .train
                .turns
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.rewrite.trim().is_empty())
            {
                names.push("rewrite");
                texts.push(&t.rewrite);
                targets.extend_from_slice(&train_y.teacher_query[i * dim..(i + 1) * dim]);
            }
        }
        anyhow::ensure!(
            !texts.is_empty(),
            "lexicon: no fitting texts (fit_passages and fit_rewrites are off, or both sets are empty)"
        );
        let vocab = tok.vocab_size();
        let ids: Vec<String> = (0..vocab).map(|i| i.to_string()).collect();
        let key = self
            .llm_key("lexicon-table")
            .setting("teacher", &self.teacher.weights_hash)
            .setting("sif", spec.sif)
            .setting("epochs", spec.epochs)
            .setting("lr", spec.lr)
            .setting("batch_size", spec.batch_size)
            .setting("max_tokens", spec.max_tokens)
            .setting("seed", self.manifest.training.seed)
            .inputs(names.iter().zip(&texts).flat_map(|(n, t)| [*n, *t]))
            .finish();
        let fitted = cached::vectors(
            &self.cache,
            &key,
            opts.force.contains(&Stage::Train),
            &ids,
            || {
                let tokens = texts
                    .iter()
                    .map(|t| {
                        let mut ids = tok.encode_continuation(t)?;
                        ids.truncate(spec.max_tokens);
                        Ok(ids)
                    })
                    .collect::<Result<Vec<_>>>()?;
                // The teacher's token embeddings are read only when the fit itself must run.
                let initial = self.token_embeddings(opts)?;
                let weights = token_weights(&tokens, vocab, spec.sif);
                let start = initial_table(initial.data, dim);
                tracing::info!(
                    "lexicon: fitting {} token rows on {} texts, {} epochs",
                    vocab,
                    texts.len(),
                    spec.epochs
                );
                let fit = FitOptions {
                    epochs: spec.epochs,
                    lr: spec.lr,
                    batch_size: spec.batch_size,
                    seed: self.manifest.training.seed,
                };
                let bar = progress(spec.epochs, "lexicon epochs", true);
                let (table, _) = fit_table(
                    &start,
                    &weights,
                    &tokens,
                    &targets,
                    dim,
                    &fit,
                    |epoch, cos| {
                        bar.inc(1);
                        tracing::info!(
                            "lexicon epoch {}: mean training cosine {cos:.4}",
                            epoch + 1
                        );
                    },
                )?;
                bar.finish_and_clear();
                Ok((dim, fold_weights(table, &weights, dim)))
            },
        )?;
        let mut lexicon = Lexicon::new(dim, fitted.data)?;
        lexicon.round_to_f16();
        Ok(lexicon)
    }

    /// Fits the lexicon and chooses its mix with the dense head on dev MRR@10. `dense_dev` holds
    /// the dense head's dev vectors.
    pub fn train_lexicon(
        &self,
        passages: &Vectors,
        train_y: &TrainTargets,
        dense_dev: &[f32],
        opts: &RunOptions,
    ) -> Result<ChosenLexicon> {
        let spec = &self.manifest.lexicon;
        let lexicon = self.fitted_lexicon(passages, train_y, opts)?;
        let dev_inputs = self.lexical_inputs(&self.data.dev.turns)?;
        let grid = mix_grid(
            &spec.user_weights,
            &spec.assistant_weights,
            &spec.decays,
            &spec.dense_weights,
        );
        anyhow::ensure!(
            !grid.is_empty(),
            "lexicon: every candidate list (user, assistant, decay, dense weights) needs a value"
        );
        let mut best: Option<(f64, LexicalMix)> = None;
        for how in grid {
            let data = native_vectors(&lexicon, &dev_inputs, Some(dense_dev), &how)?;
            let q = Vectors {
                ids: self.data.dev.ids(),
                dim: passages.dim,
                data,
            };
            let mrr = retrieval::mrr10(&q, passages, &self.data.dev.qrels)?;
            tracing::debug!("lexicon {how:?}: dev MRR@10 {mrr:.4}");
            if best.as_ref().is_none_or(|(m, _)| mrr > *m) {
                best = Some((mrr, how));
            }
        }
        let (dev_mrr10, mix) = best.expect("a non-empty grid");
        tracing::info!("lexicon: chose {mix:?} (dev MRR@10 {dev_mrr10:.4})");
        Ok(ChosenLexicon {
            lexicon,
            mix,
            dev_mrr10,
        })
    }
}
