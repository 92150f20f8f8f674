//! The native encoder stage: fit the standardiser, the dense head (early stopping on dev) and the
//! lexicon on the experiment's splits, save the encoder as one folder (`OUTPUT/head`), and return
//! its test query vectors and the latency of making one as the agent does.

use anyhow::{Context, Result};
use burn::tensor::Device;
use nr_head::{Head, HeadConfig, HeadMeta};

use super::evaluate::SystemVectors;
use super::pretrain::pretrain_head;
use super::{Experiment, RunOptions, targets};
use crate::latency::LATENCY_SAMPLE;
use crate::manifest::{HeadInit, TrainingSpec};
use crate::native::{
    HeadInputs, ModelPaths, NativeEncoder, SplitRows, Standardizer, conversations, encode_head,
    model_name,
};
use crate::train::ridge;
use crate::train::trainer::{self, FitData, fit};
use crate::vectors::Vectors;

/// The system name of the native encoder's rows in reports.
pub const NATIVE: &str = "native";

/// The pre-training stage's figures inside a run's output folder.
pub const PRETRAIN_REPORT: &str = "pretrain.json";

/// The dev figures every choice of the native encoder was made on, inside a run's output folder.
pub const SELECTION_REPORT: &str = "selection.json";

/// What dev chose: the dense head's epoch and dev MRR@10, and with the lexicon its mix and the
/// native encoder's dev MRR@10.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Selection {
    pub dense_best_epoch: usize,
    pub dense_dev_mrr10: f64,
    pub lexicon_mix: Option<nr_head::LexicalMix>,
    pub native_dev_mrr10: f64,
}

/// The encoder folder inside a run's output folder.
pub fn encoder_dir(output: &std::path::Path) -> std::path::PathBuf {
    output.join("head")
}

/// What the encoder of an experiment belongs to: its LLM and teacher, by name and width.
pub fn head_meta(ctx: &Experiment) -> HeadMeta {
    let m = &ctx.manifest;
    ctx.features.head_meta(
        &model_name(&m.backbone.path),
        ctx.llm.hidden_size(),
        &model_name(&m.teacher.path),
        ctx.teacher.encoder.dim(),
    )
}

/// Inputs that a closed-form fit needs in memory.
pub(super) fn in_memory(x: &SplitRows) -> Result<&HeadInputs> {
    x.in_memory().ok_or_else(|| {
        anyhow::anyhow!(
            "a ridge fit needs the training inputs in memory: set backbone.feature_store = false"
        )
    })
}

/// Fits the ridge initialisation for every penalty of `training.ridge_lambdas`, keeps the one with
/// the best dev MRR@10 and saves it as `dir/ridge-head`; returns that stem.
pub(super) fn ridge_init(
    config: &HeadConfig,
    meta: &HeadMeta,
    training: &TrainingSpec,
    train_x: &HeadInputs,
    data: &FitData,
    device: &Device,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf> {
    anyhow::ensure!(
        !training.ridge_lambdas.is_empty(),
        "training.ridge_lambdas is empty"
    );
    let a = ridge::design_matrix(train_x, config.input_layernorm);
    let y = ridge::target_matrix(data.train_y);
    let solutions = ridge::ridge_solutions(&a, &y, &training.ridge_lambdas)?;
    let mut best: Option<(f64, f64, Head)> = None;
    for (lambda, w) in training.ridge_lambdas.iter().zip(&solutions) {
        let head = ridge::linear_head(config, w, device)?;
        let mrr = trainer::dev_mrr10(&head, data, device)?;
        tracing::info!("ridge lambda {lambda}: dev MRR@10 {mrr:.4}");
        if best.as_ref().is_none_or(|(m, _, _)| mrr > *m) {
            best = Some((mrr, *lambda, head));
        }
    }
    let (mrr, lambda, head) = best.expect("at least one penalty");
    tracing::info!("ridge init: lambda {lambda} (dev MRR@10 {mrr:.4})");
    let stem = dir.join("ridge-head");
    head.save(&stem, meta)?;
    Ok(stem)
}

/// Trains the manifest's encoder on train (every choice on dev), saves it, and returns its test
/// query vectors under the system name [`NATIVE`] with the latency of making one.
pub fn train_native(
    ctx: &Experiment,
    passages: &Vectors,
    opts: &RunOptions,
) -> Result<SystemVectors> {
    let m = &ctx.manifest;
    let mut train_x = ctx.split_rows(&ctx.data.train, opts)?;
    let mut dev_x = ctx.head_inputs(&ctx.data.dev, opts)?;
    let test_x = ctx.head_inputs(&ctx.data.test, opts)?;
    let standardizer = Standardizer::fit(&train_x, m.training.standardize);
    train_x.standardize(&standardizer);
    standardizer.apply(&mut dev_x);
    let train_y = targets::targets(ctx, &ctx.data.train, passages, opts)?;
    let config = m
        .head
        .config(
            ctx.llm.hidden_size(),
            ctx.teacher.encoder.dim(),
            ctx.features.layers.len(),
        )
        .context("[head]")?;
    let meta = head_meta(ctx);
    let dir = m.output.join("training");
    let data = FitData {
        train_x: &train_x,
        train_y: &train_y,
        dev_x: &dev_x,
        dev_ids: &ctx.data.dev.ids(),
        dev_qrels: &ctx.data.dev.qrels,
        passages,
    };
    std::fs::create_dir_all(&dir)?;
    let pretrained = if m.pretrain.enabled() {
        Some(pretrain_head(
            ctx,
            &config,
            &meta,
            &standardizer,
            &dev_x,
            passages,
            opts,
            &m.output.join("pretrain"),
        )?)
    } else {
        None
    };
    let init = match (&pretrained, m.training.init) {
        (Some(p), _) => Some(p.stem.clone()),
        (None, HeadInit::Random) => None,
        (None, HeadInit::Ridge) => Some(ridge_init(
            &config,
            &meta,
            &m.training,
            in_memory(&train_x)?,
            &data,
            &ctx.device,
            &dir,
        )?),
    };
    let (head, state) = fit(
        &config,
        &meta,
        &m.training,
        &m.losses,
        &data,
        &ctx.device,
        &dir,
        opts.resume,
        init.as_deref(),
    )?;
    tracing::info!(
        "best dev MRR@10 {:.4} at epoch {}",
        state.best_dev_mrr10,
        state.best_epoch
    );
    if let Some(p) = pretrained {
        p.finish(&head, ctx, &m.output.join(PRETRAIN_REPORT))?;
    }
    // The lexical part: fitted without labels, its mix with the dense vector chosen on dev.
    let mut selection = Selection {
        dense_best_epoch: state.best_epoch,
        dense_dev_mrr10: state.best_dev_mrr10,
        lexicon_mix: None,
        native_dev_mrr10: state.best_dev_mrr10,
    };
    let lexicon = if m.lexicon.enabled {
        let dense_dev = encode_head(&head, &dev_x, &ctx.device)?;
        let chosen = ctx.train_lexicon(passages, &train_y, &dense_dev, opts)?;
        selection.lexicon_mix = Some(chosen.mix);
        selection.native_dev_mrr10 = chosen.dev_mrr10;
        Some((chosen.lexicon, chosen.mix))
    } else {
        None
    };
    crate::atomic_file::write_atomic(
        &m.output.join(SELECTION_REPORT),
        serde_json::to_string_pretty(&selection)?.as_bytes(),
    )?;
    drop((train_x, dev_x));
    let encoder = NativeEncoder::new(
        ctx.features.clone(),
        meta,
        standardizer,
        head,
        lexicon,
        ctx.device.clone(),
    )?;
    encoder.save(
        &encoder_dir(&m.output),
        &ModelPaths {
            llm: m.backbone.path.clone(),
            teacher: m.teacher.path.clone(),
            teacher_batch_size: m.teacher.batch_size,
        },
    )?;

    let test = conversations(&ctx.data.test.turns);
    let lexical = encoder.lexical_inputs(&ctx.llm, &test)?;
    let vectors = Vectors {
        ids: ctx.data.test.ids(),
        dim: passages.dim,
        data: encoder.encode(&test_x, lexical.as_deref())?,
    };
    // Latency, batch 1, on the agent's own path.
    let sample = &test[..test.len().min(LATENCY_SAMPLE)];
    let (latency, measured) = encoder.latency(&ctx.llm, sample)?;
    tracing::info!(
        "native latency: median of {measured} query vectors, {:.1} ms",
        latency.total()
    );
    let mut out = SystemVectors::default();
    out.vectors.insert(NATIVE.into(), vectors);
    out.latency.insert(NATIVE.into(), latency);
    out.latency_samples.insert(NATIVE.into(), measured);
    Ok(out)
}
