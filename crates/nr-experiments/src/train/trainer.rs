//! The head trainer: AdamW with warm-up + cosine schedule and gradient clipping, early stopping on
//! dev MRR@10, atomic checkpoints each epoch, `--resume`, NaN detection, JSONL step metrics.
//!
//! Deterministic for a seed on the CPU backend: the head's initialisation and the batch order
//! derive from `training.seed` only.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use nr_data::Qrels;
use nr_head::{Head, HeadConfig};
use serde::{Deserialize, Serialize};

use super::batch::target_batch;
use super::losses::batch_losses;
use super::order::epoch_batches;
use super::schedule::warmup_cosine;
use super::targets::TrainTargets;
use crate::atomic_file::write_atomic;
use crate::manifest::{LossSpec, TrainingSpec};
use crate::native::{TokenRows, encode_head, head_batch};
use crate::vectors::Vectors;

/// What training needs besides settings.
pub struct FitData<'a> {
    /// Token states of the training turns (in memory, or a feature store on disk).
    pub train_x: &'a dyn TokenRows,
    pub train_y: &'a TrainTargets,
    pub dev_x: &'a dyn TokenRows,
    pub dev_ids: &'a [String],
    pub dev_qrels: &'a Qrels,
    pub passages: &'a Vectors,
}

/// Progress saved with each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    pub step: usize,
    pub best_dev_mrr10: f64,
    pub best_epoch: usize,
    pub epochs_without_gain: usize,
    /// Dev MRR@10 after each epoch.
    pub dev_history: Vec<f64>,
}

/// Dev MRR@10 of a head.
pub fn dev_mrr10(head: &Head, data: &FitData, device: &Device) -> Result<f64> {
    let q = Vectors {
        ids: data.dev_ids.to_vec(),
        dim: data.passages.dim,
        data: encode_head(head, data.dev_x, device)?,
    };
    crate::retrieval::mrr10(&q, data.passages, data.dev_qrels)
}

fn checkpoint_paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join("checkpoint-head"),
        dir.join("checkpoint-optimizer.bin"),
        dir.join("checkpoint-state.json"),
    )
}

/// The optimizer's state is keyed by parameter ids, which a head loaded from disk does not have:
/// the checkpoint keeps the ids (in the module's visit order) and [`restore_param_ids`] gives them
/// back to the reloaded head, so the restored Adam moments apply to their own parameters.
fn param_ids_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint-param-ids.json")
}

/// Gives the parameters of `module`, in visit order, the ids `ids`.
struct RestoreIds {
    ids: std::collections::VecDeque<u64>,
}

impl burn::module::ModuleMapper for RestoreIds {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::tensor::Tensor<D>>,
    ) -> burn::module::Param<burn::tensor::Tensor<D>> {
        let (id, value, mapper) = param.consume();
        let id = self.ids.pop_front().map_or(id, burn::module::ParamId::from);
        burn::module::Param::from_mapped_value(id, value, mapper)
    }
}

/// The head with the parameter ids saved at `path` (refusing a list of another length).
fn restore_param_ids(head: Head, path: &Path) -> Result<Head> {
    let ids: Vec<u64> = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?,
    )
    .with_context(|| format!("{}: not a list of parameter ids", path.display()))?;
    let count = burn::module::list_param_ids(&head).len();
    if ids.len() != count {
        bail!(
            "{}: {} parameter ids for a head of {count} parameters",
            path.display(),
            ids.len()
        );
    }
    Ok(head.map(&mut RestoreIds { ids: ids.into() }))
}

/// The ids of the head's parameters in visit order.
fn param_ids(head: &Head) -> Vec<u64> {
    burn::module::list_param_ids(head)
        .iter()
        .map(|id| id.val())
        .collect()
}

/// The seed of epoch `epoch`'s randomness (batch order; dropout after the first epoch): a function
/// of the training seed and the epoch only, so a resumed run draws what the uninterrupted run drew.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9)
}

/// Keeps the lines of the step log up to `step` (a killed run may have logged steps past its last
/// checkpoint, which the resumed run logs again); returns the log opened for appending.
fn step_log(path: &Path, keep_through: Option<usize>) -> Result<std::fs::File> {
    let kept = match keep_through {
        None => String::new(),
        Some(step) => std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .is_some_and(|s| s as usize <= step)
            })
            .map(|l| format!("{l}\n"))
            .collect(),
    };
    write_atomic(path, kept.as_bytes())?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| path.display().to_string())
}

/// The progress bar's message: every loss term of the last step and the epoch's examples/s.
fn progress_message(terms: &BTreeMap<String, f32>, examples_per_sec: f64) -> String {
    let losses: Vec<String> = terms
        .iter()
        .map(|(name, v)| format!("{name} {v:.3}"))
        .collect();
    format!("{} | {examples_per_sec:.0} ex/s", losses.join(" "))
}

/// One optimiser step of `head` on the training turns `rows`: batch tensors, forward pass, the
/// manifest's loss terms, backward pass, AdamW update. `device` is an autodiff device. Returns the
/// updated head and each loss term's value; a non-finite term is an error naming it.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    head: Head,
    optim: &mut ModuleOptimizer,
    lr: f64,
    x: &dyn TokenRows,
    y: &TrainTargets,
    passages: &Vectors,
    rows: &[usize],
    losses: &LossSpec,
    device: &Device,
) -> Result<(Head, BTreeMap<String, f32>)> {
    let (h, mask) = head_batch(x, rows, device);
    let targets = target_batch(
        y,
        passages,
        rows,
        losses.false_negative_margin,
        losses.teacher_top1_as_positive,
        device,
    );
    let student = head.forward(h, mask)?;
    // A batch that no configured term applies to (contrastive only, no gold passage) leaves the
    // head as it is and reports no terms.
    let Some(nr_losses::TotalLoss { total: loss, terms }) =
        batch_losses(student, &targets, losses)?
    else {
        return Ok((head, BTreeMap::new()));
    };
    if let Some((name, v)) = terms.iter().find(|(_, v)| !v.is_finite()) {
        bail!("loss '{name}' is {v}");
    }
    let grads = GradientsParams::from_grads(loss.backward(), &head);
    let head = optim.step(lr, head, grads);
    Ok((head, terms))
}

/// Trains a head from `config` (or from the head saved at `init`, which then counts as epoch 0)
/// and returns the best one on dev (and the training state).
#[allow(clippy::too_many_arguments)]
pub fn fit(
    config: &HeadConfig,
    meta: &nr_head::HeadMeta,
    training: &TrainingSpec,
    losses: &LossSpec,
    data: &FitData,
    device: &Device,
    dir: &Path,
    resume: bool,
    init: Option<&Path>,
) -> Result<(Head, TrainState)> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let ad = device.clone().autodiff();
    ad.seed(training.seed);
    let (ckpt_head, ckpt_optim, ckpt_state) = checkpoint_paths(dir);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(training.weight_decay)
        .with_grad_clipping(
            training
                .grad_clip
                .map(burn::grad_clipping::GradientClippingConfig::Norm),
        )
        .init();
    let (mut head, mut state) = if resume && ckpt_state.is_file() {
        let state: TrainState = serde_json::from_slice(&std::fs::read(&ckpt_state)?)
            .with_context(|| ckpt_state.display().to_string())?;
        let head = restore_param_ids(Head::load(&ckpt_head, meta, &ad)?, &param_ids_path(dir))?;
        let record = burn::optim::OptimizerRecord::load(&ckpt_optim)
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", ckpt_optim.display()))?;
        optim = optim.load_record(record);
        tracing::info!("resuming after epoch {} (step {})", state.epoch, state.step);
        (head, state)
    } else if let Some(stem) = init {
        let head = Head::load(stem, meta, &ad)?;
        let valid = head.valid();
        let mrr = dev_mrr10(&valid, data, device)?;
        tracing::info!("initial head {}: dev MRR@10 {mrr:.4}", stem.display());
        valid.save(&dir.join("best-head"), meta)?;
        let state = TrainState {
            epoch: 0,
            step: 0,
            best_dev_mrr10: mrr,
            best_epoch: 0,
            epochs_without_gain: 0,
            dev_history: vec![],
        };
        (head, state)
    } else {
        let state = TrainState {
            epoch: 0,
            step: 0,
            best_dev_mrr10: f64::NEG_INFINITY,
            best_epoch: 0,
            epochs_without_gain: 0,
            dev_history: vec![],
        };
        (config.init(&ad)?, state)
    };
    let n = data.train_x.len();
    if n == 0 {
        bail!("no training turns");
    }
    let steps_per_epoch = n.div_ceil(training.batch_size.max(1));
    let total = steps_per_epoch * training.epochs;
    let warmup = ((total as f64) * training.warmup_ratio).round() as usize;
    let resumed = resume && state.step > 0;
    let mut log = step_log(&dir.join("steps.jsonl"), resumed.then_some(state.step))?;
    let bar = crate::progress::progress(total - state.step.min(total), "training", true);
    let mut best = if (state.best_epoch > 0 || init.is_some())
        && dir.join("best-head.safetensors").is_file()
    {
        Some(Head::load(&dir.join("best-head"), meta, device)?)
    } else {
        None
    };
    while state.epoch < training.epochs {
        let seed = epoch_seed(training.seed, state.epoch);
        let batches = epoch_batches(data.train_x, training.batch_size, seed);
        // The backend's randomness (dropout) restarts from the epoch's seed, so a run resumed at
        // this epoch draws what the uninterrupted run drew. Not before the first epoch: a random
        // head's parameters are initialised lazily, at its first forward pass, from the training
        // seed set above.
        if state.epoch > 0 {
            ad.seed(seed);
        }
        let start = Instant::now();
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        let mut seen = 0;
        for (b, rows) in batches.iter().enumerate() {
            let lr = warmup_cosine(training.lr, state.step, total, warmup);
            let terms;
            (head, terms) = train_step(
                head,
                &mut optim,
                lr,
                data.train_x,
                data.train_y,
                data.passages,
                rows,
                losses,
                &ad,
            )
            .with_context(|| {
                format!(
                    "epoch {} step {} (batch {b} of the epoch)",
                    state.epoch + 1,
                    state.step
                )
            })?;
            for (name, v) in &terms {
                *sums.entry(name.clone()).or_default() += *v as f64;
            }
            state.step += 1;
            let line = serde_json::json!({ "epoch": state.epoch + 1, "step": state.step, "lr": lr, "loss": terms });
            writeln!(log, "{line}")?;
            seen += rows.len();
            bar.set_message(progress_message(
                &terms,
                seen as f64 / start.elapsed().as_secs_f64(),
            ));
            bar.inc(1);
        }
        state.epoch += 1;
        let valid = head.valid();
        let mrr = dev_mrr10(&valid, data, device)?;
        let rate = n as f64 / start.elapsed().as_secs_f64();
        let means: BTreeMap<&String, f64> = sums
            .iter()
            .map(|(k, v)| (k, v / steps_per_epoch as f64))
            .collect();
        tracing::info!(
            "epoch {}: dev MRR@10 {mrr:.4}, {rate:.0} examples/s, mean losses {means:?}",
            state.epoch
        );
        state.dev_history.push(mrr);
        if mrr > state.best_dev_mrr10 {
            state.best_dev_mrr10 = mrr;
            state.best_epoch = state.epoch;
            state.epochs_without_gain = 0;
            valid.save(&dir.join("best-head"), meta)?;
            best = Some(valid);
        } else {
            state.epochs_without_gain += 1;
        }
        // Checkpoint: head, optimizer, state; each written atomically, the state last.
        head.valid().save(&ckpt_head, meta)?;
        write_atomic(
            &param_ids_path(dir),
            serde_json::to_string(&param_ids(&head))?.as_bytes(),
        )?;
        let bytes = optim
            .to_record()
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("optimizer state: {e:?}"))?;
        write_atomic(&ckpt_optim, &bytes)?;
        write_atomic(
            &ckpt_state,
            serde_json::to_string_pretty(&state)?.as_bytes(),
        )?;
        if state.epochs_without_gain >= training.patience.max(1) {
            tracing::info!(
                "early stop: no dev gain for {} epochs",
                state.epochs_without_gain
            );
            break;
        }
    }
    bar.finish_and_clear();
    let best = best.context("training ran no epoch")?;
    Ok((best, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::HeadInputs;
    use nr_head::HeadKind;

    #[test]
    fn the_progress_message_names_every_loss_term_and_the_throughput() {
        let terms: BTreeMap<String, f32> = [("total", 2.5f32), ("align", 0.25), ("rank", 1.0)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        assert_eq!(
            progress_message(&terms, 7085.4),
            "align 0.250 rank 1.000 total 2.500 | 7085 ex/s"
        );
    }

    /// Two turns of one 4-d token, targets in 3-d, three passages; `bad` goes into turn 0's input.
    fn tiny(bad: f32) -> (HeadInputs, TrainTargets, Vectors) {
        let x = HeadInputs {
            layers: 1,
            dim: 4,
            offsets: vec![0, 1, 2],
            data: vec![bad, 0.5, -0.5, 1.0, 0.2, 0.1, 0.3, -1.0],
        };
        let y = TrainTargets {
            teacher_query: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            dim: 3,
            positive: vec![Some(0), None],
            candidates: vec![vec![(0, 0.9), (1, 0.5)], vec![(2, 0.8), (1, 0.1)]],
        };
        let passages = Vectors {
            ids: vec!["a".into(), "b".into(), "c".into()],
            dim: 3,
            data: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        };
        (x, y, passages)
    }

    fn step(bad: f32) -> Result<(Head, BTreeMap<String, f32>)> {
        step_on(bad, &[0, 1], &LossSpec::default())
    }

    fn step_on(
        bad: f32,
        rows: &[usize],
        losses: &LossSpec,
    ) -> Result<(Head, BTreeMap<String, f32>)> {
        let device = Device::default().autodiff();
        let head = HeadConfig::new(HeadKind::Linear, 4, 3)
            .init(&device)
            .unwrap();
        let mut optim = AdamWConfig::new().init();
        let (x, y, passages) = tiny(bad);
        train_step(
            head, &mut optim, 1e-3, &x, &y, &passages, rows, losses, &device,
        )
    }

    #[test]
    fn a_contrastive_only_batch_without_gold_passages_is_skipped() {
        let losses = LossSpec {
            use_terms: vec![crate::manifest::LossTerm::Contrastive],
            ..LossSpec::default()
        };
        // Turn 1 has no gold passage: nothing to learn, no terms, no error.
        let (_, terms) = step_on(0.3, &[1], &losses).unwrap();
        assert!(terms.is_empty(), "{terms:?}");
        // Turn 0 has one: the contrastive term alone, and the total equals it.
        let (_, terms) = step_on(0.3, &[0], &losses).unwrap();
        assert_eq!(
            terms.keys().map(String::as_str).collect::<Vec<_>>(),
            ["contrastive", "total"]
        );
        assert_eq!(terms["contrastive"], terms["total"]);
    }

    #[test]
    fn a_step_reports_every_loss_term() {
        let (_, terms) = step(0.3).unwrap();
        let names: Vec<&str> = terms.keys().map(String::as_str).collect();
        assert_eq!(names, ["align", "contrastive", "rank", "total"]);
        let sum = terms["align"] + terms["contrastive"] + terms["rank"];
        assert!(
            (terms["total"] - sum).abs() < 1e-5,
            "default weights are 1: {terms:?}"
        );
    }

    #[test]
    fn a_nan_input_is_an_error_naming_the_loss_term() {
        let Err(err) = step(f32::NAN) else {
            panic!("a NaN input must not train")
        };
        assert_eq!(err.to_string(), "loss 'align' is NaN");
    }
}
