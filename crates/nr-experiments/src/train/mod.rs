//! Training native heads inside an experiment, and the query vectors they give on the test split.

pub mod batch;
pub mod examples;
pub mod lexicon;
pub mod losses;
pub mod ridge;
pub mod schedule;
pub mod standardize;
pub mod trainer;

use std::time::Instant;

use anyhow::{Context, Result};
use nr_head::{BackboneInfo, Head, HeadConfig, HeadMeta, TeacherInfo};

use std::path::Path;

use crate::manifest::{BackboneSpec, HeadInit, HiddenSource, Manifest};
use crate::pipeline::evaluate::{LATENCY_SAMPLE, Latency, SystemVectors, median};
use crate::pipeline::{Experiment, RunOptions, Stage, targets};
use examples::Vectors;
use trainer::{FitData, encode, fit};

/// The head configuration of a manifest for a backbone of width `input_dim` and a teacher of width
/// `output_dim`: the `[head]` table plus the widths and the number of mixed layers.
pub fn head_config(manifest: &Manifest, input_dim: usize, output_dim: usize) -> Result<HeadConfig> {
    let mut table = manifest.head.clone();
    table.insert("input_dim".into(), toml::Value::Integer(input_dim as i64));
    table.insert("output_dim".into(), toml::Value::Integer(output_dim as i64));
    table
        .entry("layers")
        .or_insert(toml::Value::Integer(manifest.backbone.layers.len() as i64));
    use serde::Deserialize;
    HeadConfig::deserialize(toml::Value::Table(table))
        .map_err(|e| anyhow::anyhow!("{}", e.message().trim()))
}

/// What a head belongs to, stored beside its weights: the LLM and teacher (by file name), the LLM's
/// width, the layers and source it reads, the teacher's dimension.
pub fn head_meta_for(
    backbone: &BackboneSpec,
    llm_path: &Path,
    hidden_size: usize,
    layers: &[usize],
    teacher_path: &Path,
    teacher_dim: usize,
) -> HeadMeta {
    let name = |p: &Path| {
        p.file_name()
            .map_or(String::new(), |f| f.to_string_lossy().to_string())
    };
    HeadMeta {
        backbone: BackboneInfo {
            name: name(llm_path),
            hidden_size,
            layers: layers.to_vec(),
            source: backbone.source_name().into(),
        },
        teacher: TeacherInfo {
            name: name(teacher_path),
            dim: teacher_dim,
        },
    }
}

/// [`head_meta_for`] the models of an experiment.
pub fn head_meta(ctx: &Experiment) -> HeadMeta {
    let m = &ctx.manifest;
    head_meta_for(
        &m.backbone,
        &m.backbone.path,
        ctx.llm.hidden_size(),
        &ctx.layers,
        &m.teacher.path,
        ctx.teacher.encoder.dim(),
    )
}

/// Fits the ridge initialisation for every penalty of `training.ridge_lambdas`, keeps the one with
/// the best dev MRR@10 and saves it as `dir/ridge-head`; returns that stem.
fn ridge_init(
    config: &HeadConfig,
    meta: &HeadMeta,
    training: &crate::manifest::TrainingSpec,
    data: &FitData,
    device: &burn::tensor::Device,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf> {
    anyhow::ensure!(
        !training.ridge_lambdas.is_empty(),
        "training.ridge_lambdas is empty"
    );
    let a = ridge::design_matrix(data.train_x, config.input_layernorm);
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

/// Trains the manifest's head on train (early stopping on dev) and returns its test query vectors
/// under the system name `native`, with the latency of making one.
pub fn train_native(
    ctx: &Experiment,
    passages: &Vectors,
    opts: &RunOptions,
) -> Result<SystemVectors> {
    let m = &ctx.manifest;
    let mut train_x = ctx.head_inputs(&ctx.data.train, opts)?;
    let mut dev_x = ctx.head_inputs(&ctx.data.dev, opts)?;
    let mut test_x = ctx.head_inputs(&ctx.data.test, opts)?;
    let standardizer = standardize::Standardizer::fit(&train_x, m.training.standardize);
    for x in [&mut train_x, &mut dev_x, &mut test_x] {
        standardizer.apply(x);
    }
    crate::pipeline::cached::write_atomic(
        &m.output.join("head.standardize.json"),
        serde_json::to_string(&standardizer)?.as_bytes(),
    )?;
    let train_y = targets::targets(ctx, &ctx.data.train, passages, opts)?;
    let config =
        head_config(m, ctx.llm.hidden_size(), ctx.teacher.encoder.dim()).context("[head]")?;
    let meta = head_meta(ctx);
    let dir = m.output.join("training");
    if opts.force.contains(&Stage::Train) && dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let data = FitData {
        train_x: &train_x,
        train_y: &train_y,
        dev_x: &dev_x,
        dev_ids: &ctx.data.dev.ids(),
        dev_qrels: &ctx.data.dev.qrels,
        passages,
    };
    std::fs::create_dir_all(&dir)?;
    let init = match m.training.init {
        HeadInit::Random => None,
        HeadInit::Ridge => Some(ridge_init(
            &config,
            &meta,
            &m.training,
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
    head.save(&m.output.join("head"), &meta)?;
    let dense_test = encode(&head, &test_x, &ctx.device)?;
    // The lexical part: fitted without labels, its mix with the dense vector chosen on dev.
    let lexical = if m.lexicon.enabled {
        let dense_dev = encode(&head, &dev_x, &ctx.device)?;
        let chosen = ctx.train_lexicon(passages, &train_y, &dense_dev, opts)?;
        chosen
            .lexicon
            .save(&m.output.join("head"), &chosen.mix, &meta)?;
        Some((chosen, ctx.lexical_inputs(&ctx.data.test.turns)?))
    } else {
        let _ = std::fs::remove_file(nr_head::lexicon_path(&m.output.join("head")));
        None
    };
    let data = match &lexical {
        Some((chosen, inputs)) => {
            lexicon::native_vectors(&chosen.lexicon, inputs, Some(&dense_test), &chosen.mix)?
        }
        None => dense_test,
    };
    let vectors = Vectors {
        ids: ctx.data.test.ids(),
        dim: passages.dim,
        data,
    };

    // Latency of the native query vector, batch 1: the prompt's prefill (or, for query_tokens,
    // generation too) plus the head.
    let n = ctx.data.test.turns.len().min(LATENCY_SAMPLE);
    let (mut prefill, mut generation, mut head_ms) = (Vec::new(), Vec::new(), Vec::new());
    let prompts = match m.backbone.source {
        HiddenSource::Context => ctx.conversation_prompts(&ctx.data.test.turns)?,
        HiddenSource::QueryTokens => ctx.rewrite_prompts(&ctx.data.test.turns)?,
    };
    for (i, prompt) in prompts.iter().take(n).enumerate() {
        let start = Instant::now();
        ctx.llm
            .forward(std::slice::from_ref(prompt), &ctx.layers, false)?;
        prefill.push(start.elapsed().as_secs_f64() * 1e3);
        if m.backbone.source == HiddenSource::QueryTokens {
            let opts = nr_backbone::llama::GenerateOptions {
                max_new_tokens: m.backbone.max_new_tokens,
                collect_layers: ctx.layers.clone(),
                ..Default::default()
            };
            let start = Instant::now();
            ctx.llm.generate(std::slice::from_ref(prompt), &opts)?;
            generation.push((start.elapsed().as_secs_f64() * 1e3 - prefill[i]).max(0.0));
        }
        let one = test_x.select(&[i]);
        let start = Instant::now();
        let dense = encode(&head, &one, &ctx.device)?;
        if let Some((chosen, inputs)) = &lexical {
            lexicon::native_vectors(&chosen.lexicon, &inputs[i..=i], Some(&dense), &chosen.mix)?;
        }
        head_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let latency = Latency {
        prefill_ms: median(&mut prefill),
        generation_ms: median(&mut generation),
        teacher_ms: 0.0,
        head_ms: median(&mut head_ms),
    };
    let mut out = SystemVectors::default();
    out.vectors.insert("native".into(), vectors);
    out.latency.insert("native".into(), latency);
    Ok(out)
}
