//! Retrieval and scoring of every system on the test split, with significance against
//! generate-then-encode and per-query latency of making the query vector.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use nr_backbone::llama::GenerateOptions;
use nr_data::{Qrels, Run, ScoredDoc};
use serde::Serialize;

use super::llm_features::first_line;
use super::teacher_side::context_question_text;
use super::{Experiment, RunOptions};
use crate::train::examples::Vectors;

/// The baseline system every other is compared with.
pub const GTE: &str = "generate_then_encode";

/// Median milliseconds per query of each part of making the query vector.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub prefill_ms: f64,
    pub generation_ms: f64,
    pub teacher_ms: f64,
    pub head_ms: f64,
}

impl Latency {
    pub fn total(&self) -> f64 {
        self.prefill_ms + self.generation_ms + self.teacher_ms + self.head_ms
    }
}

/// Query vectors of some systems for the test turns, and their latencies.
#[derive(Default)]
pub struct SystemVectors {
    pub vectors: BTreeMap<String, Vectors>,
    pub latency: BTreeMap<String, Latency>,
}

/// Turns timed for latency (batch 1, one after another).
pub const LATENCY_SAMPLE: usize = 8;

/// The median of `xs` (0 when empty).
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn time_ms<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let out = f()?;
    Ok((out, start.elapsed().as_secs_f64() * 1e3))
}

/// Teacher on the raw question, on context + question, on the human rewrite (oracle), and
/// generate-then-encode, for the test turns.
pub fn baseline_systems(
    ctx: &Experiment,
    _passages: &Vectors,
    opts: &RunOptions,
) -> Result<SystemVectors> {
    let test = &ctx.data.test;
    let ids = test.ids();
    let texts = |f: &dyn Fn(&nr_data::QreccTurn) -> String| {
        test.turns.iter().map(f).collect::<Vec<String>>()
    };
    let mut out = SystemVectors::default();
    let raw = texts(&|t| t.question.clone());
    let ctxq = texts(&context_question_text);
    let rewrite = texts(&|t| t.rewrite.clone());
    out.vectors.insert(
        "raw_question".into(),
        ctx.teacher.queries(&ids, &raw, &ctx.cache, false)?,
    );
    out.vectors.insert(
        "context_question".into(),
        ctx.teacher.queries(&ids, &ctxq, &ctx.cache, false)?,
    );
    out.vectors.insert(
        "human_rewrite".into(),
        ctx.teacher.queries(&ids, &rewrite, &ctx.cache, false)?,
    );
    let generated = ctx.rewrites(test.name, &test.turns, opts)?;
    out.vectors.insert(
        GTE.into(),
        ctx.teacher.queries(&ids, &generated, &ctx.cache, false)?,
    );

    // Latency on a few turns, batch 1.
    let n = test.turns.len().min(LATENCY_SAMPLE);
    let prompts = ctx.rewrite_prompts(&test.turns)?;
    let gen_opts = GenerateOptions {
        max_new_tokens: ctx.manifest.backbone.max_new_tokens,
        ..Default::default()
    };
    let (mut prefill, mut generation, mut teacher_ms) = (Vec::new(), Vec::new(), Vec::new());
    for prompt in prompts.iter().take(n) {
        let (_, p) = time_ms(|| Ok(ctx.llm.forward(std::slice::from_ref(prompt), &[], true)?))?;
        let (g, total) =
            time_ms(|| Ok(ctx.llm.generate(std::slice::from_ref(prompt), &gen_opts)?))?;
        let query = first_line(&g[0].text);
        let (_, t) = time_ms(|| Ok(ctx.teacher.encoder.encode(&[query.as_str()])?))?;
        prefill.push(p);
        generation.push((total - p).max(0.0));
        teacher_ms.push(t);
    }
    let mut raw_ms: Vec<f64> = Vec::new();
    let mut ctxq_ms: Vec<f64> = Vec::new();
    for i in 0..n {
        raw_ms.push(time_ms(|| Ok(ctx.teacher.encoder.encode(&[raw[i].as_str()])?))?.1);
        ctxq_ms.push(time_ms(|| Ok(ctx.teacher.encoder.encode(&[ctxq[i].as_str()])?))?.1);
    }
    out.latency.insert(
        GTE.into(),
        Latency {
            prefill_ms: median(&mut prefill),
            generation_ms: median(&mut generation),
            teacher_ms: median(&mut teacher_ms),
            head_ms: 0.0,
        },
    );
    out.latency.insert(
        "raw_question".into(),
        Latency {
            teacher_ms: median(&mut raw_ms),
            ..Default::default()
        },
    );
    out.latency.insert(
        "context_question".into(),
        Latency {
            teacher_ms: median(&mut ctxq_ms),
            ..Default::default()
        },
    );
    Ok(out)
}

/// The `k` best passages of each query by inner product: (passage index, score), best first.
pub fn top_k(queries: &Vectors, passages: &Vectors, k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
    anyhow::ensure!(
        queries.dim == passages.dim,
        "query vectors have {} dimensions but the passage index has {}",
        queries.dim,
        passages.dim
    );
    Ok(nr_eval::search::exact_search(
        &queries.data,
        &passages.data,
        passages.dim,
        k,
    )?)
}

/// Mean MRR@10 of query vectors against `qrels`: the model-selection figure of every dev choice.
pub fn mrr10(queries: &Vectors, passages: &Vectors, qrels: &Qrels) -> Result<f64> {
    let hits = top_k(queries, passages, 10)?;
    let run = to_run(queries, passages, &hits)?;
    let scored = nr_eval::evaluate(qrels, &run, &["mrr_10".to_string()])?;
    Ok(scored.mean["mrr_10"])
}

/// A TREC run from search results.
pub fn to_run(queries: &Vectors, passages: &Vectors, hits: &[Vec<(usize, f32)>]) -> Result<Run> {
    let mut run = Run::new();
    for (qid, list) in queries.ids.iter().zip(hits) {
        let docs = list
            .iter()
            .map(|&(i, s)| ScoredDoc {
                doc_id: passages.ids[i].clone(),
                score: s as f64,
            })
            .collect();
        run.insert(qid, docs).map_err(anyhow::Error::msg)?;
    }
    Ok(run)
}

/// Scores of one system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemResult {
    pub mean: BTreeMap<String, f64>,
    #[serde(skip)]
    pub per_query: BTreeMap<String, BTreeMap<String, f64>>,
    /// 95% bootstrap confidence interval of each metric's mean.
    pub ci95: BTreeMap<String, (f64, f64)>,
    /// Paired randomization-test p-value against generate-then-encode, per metric.
    pub p_vs_gte: BTreeMap<String, f64>,
    #[serde(skip)]
    pub run: Run,
}

/// Retrieval, metrics and significance of every system.
pub fn score_systems(
    ctx: &Experiment,
    passages: &Vectors,
    systems: &BTreeMap<String, Vectors>,
) -> Result<BTreeMap<String, SystemResult>> {
    let eval = &ctx.manifest.evaluation;
    let qrels: &Qrels = &ctx.data.test.qrels;
    let mut results = BTreeMap::new();
    for (name, vectors) in systems {
        let hits = top_k(vectors, passages, eval.depth)?;
        let run = to_run(vectors, passages, &hits)?;
        let scored = nr_eval::evaluate(qrels, &run, &eval.metrics)?;
        results.insert(
            name.clone(),
            SystemResult {
                mean: scored.mean,
                per_query: scored.per_query,
                ci95: BTreeMap::new(),
                p_vs_gte: BTreeMap::new(),
                run,
            },
        );
    }
    let gte = results.get(GTE).map(|r| r.per_query.clone());
    for result in results.values_mut() {
        for metric in &eval.metrics {
            let values: Vec<f64> = result.per_query.values().map(|m| m[metric]).collect();
            let ci = nr_eval::bootstrap_ci(&values, eval.bootstrap, 0.95, eval.seed);
            result.ci95.insert(metric.clone(), ci);
            if let Some(gte) = &gte {
                let (a, b): (Vec<f64>, Vec<f64>) = result
                    .per_query
                    .iter()
                    .map(|(q, m)| (m[metric], gte[q][metric]))
                    .unzip();
                result.p_vs_gte.insert(
                    metric.clone(),
                    nr_eval::randomization_test(&a, &b, eval.permutations, eval.seed),
                );
            }
        }
    }
    Ok(results)
}

/// Mean cosine of each system's query vectors with those of `reference` (same turns, row by row):
/// how closely a system reproduces the teacher's embedding of the reference text. Systems without
/// the reference's turns or width are left out.
pub fn fidelity(systems: &BTreeMap<String, Vectors>, reference: &str) -> BTreeMap<String, f64> {
    let Some(r) = systems.get(reference) else {
        return BTreeMap::new();
    };
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = a.iter().map(|x| x * x).sum::<f32>().sqrt()
            * b.iter().map(|x| x * x).sum::<f32>().sqrt();
        (dot / n.max(1e-12)) as f64
    };
    systems
        .iter()
        .filter(|(_, v)| v.ids == r.ids && v.dim == r.dim && !v.ids.is_empty())
        .map(|(name, v)| {
            (
                name.clone(),
                (0..v.ids.len())
                    .map(|i| cos(v.row(i), r.row(i)))
                    .sum::<f64>()
                    / v.ids.len() as f64,
            )
        })
        .collect()
}

/// Share of scored turns on which each system agrees with generate-then-encode: both retrieve a
/// gold passage in their top 10, or both retrieve none (the paper's "agreement on retrieval points").
pub fn agreement_with_gte(results: &BTreeMap<String, SystemResult>) -> BTreeMap<String, f64> {
    let Some(gte) = results.get(GTE) else {
        return BTreeMap::new();
    };
    let hit = |m: &BTreeMap<String, f64>| m.get("recall_10").is_some_and(|v| *v > 0.0);
    results
        .iter()
        .filter(|(_, r)| !r.per_query.is_empty())
        .map(|(name, r)| {
            let agree = r
                .per_query
                .iter()
                .filter(|(q, m)| gte.per_query.get(*q).is_some_and(|g| hit(g) == hit(m)))
                .count();
            (name.clone(), agree as f64 / r.per_query.len() as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(per_query: &[(&str, f64)]) -> SystemResult {
        SystemResult {
            mean: BTreeMap::new(),
            per_query: per_query
                .iter()
                .map(|(q, r)| {
                    (
                        q.to_string(),
                        BTreeMap::from([("recall_10".to_string(), *r)]),
                    )
                })
                .collect(),
            ci95: BTreeMap::new(),
            p_vs_gte: BTreeMap::new(),
            run: Run::new(),
        }
    }

    #[test]
    fn agreement_counts_turns_where_both_hit_or_both_miss() {
        let results = BTreeMap::from([
            (
                GTE.to_string(),
                result(&[("a", 1.0), ("b", 0.0), ("c", 0.5), ("d", 0.0)]),
            ),
            (
                "native".to_string(),
                result(&[("a", 0.5), ("b", 0.0), ("c", 0.0), ("d", 1.0)]),
            ),
        ]);
        let agree = agreement_with_gte(&results);
        assert_eq!(agree["native"], 0.5, "a (both hit) and b (both miss) of 4");
        assert_eq!(agree[GTE], 1.0);
    }

    #[test]
    fn fidelity_is_the_mean_row_cosine_with_the_reference() {
        let v = |data: Vec<f32>| Vectors {
            ids: vec!["a".into(), "b".into()],
            dim: 2,
            data,
        };
        let systems = BTreeMap::from([
            ("human_rewrite".to_string(), v(vec![1.0, 0.0, 0.0, 2.0])),
            ("native".to_string(), v(vec![1.0, 1.0, 0.0, -1.0])),
        ]);
        let f = fidelity(&systems, "human_rewrite");
        assert!(
            (f["native"] - (0.5f64.sqrt() - 1.0) / 2.0).abs() < 1e-6,
            "{f:?}"
        );
        assert!((f["human_rewrite"] - 1.0).abs() < 1e-6);
        assert!(fidelity(&systems, "absent").is_empty());
    }
}
