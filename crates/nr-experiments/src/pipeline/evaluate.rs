//! Retrieval and scoring of every system on the test split, with significance against
//! generate-then-encode and per-query latency of making the query vector.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use nr_backbone::llama::GenerateOptions;
use nr_data::{Qrels, Run};
use nr_eval::{PairedComparison, SignificanceSettings};
use serde::Serialize;

use super::teacher_side::context_question_text;
use super::{Experiment, RunOptions};
use crate::latency::{LATENCY_SAMPLE, Latency, median, ms_since};
use crate::native::first_line;
use crate::retrieval;
use crate::vectors::Vectors;

/// The baseline system every other is compared with.
pub const GTE: &str = "generate_then_encode";

/// Query vectors of some systems for the test turns, their latencies, and how many query vectors
/// each latency is the median of.
#[derive(Default)]
pub struct SystemVectors {
    pub vectors: BTreeMap<String, Vectors>,
    pub latency: BTreeMap<String, Latency>,
    pub latency_samples: BTreeMap<String, usize>,
}

fn time_ms<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let out = f()?;
    Ok((out, ms_since(start)))
}

/// Teacher on the raw question, on context + question, on the human rewrite (oracle), and
/// generate-then-encode, for the test turns.
pub fn baseline_systems(ctx: &Experiment, opts: &RunOptions) -> Result<SystemVectors> {
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
    for name in [GTE, "raw_question", "context_question"] {
        out.latency_samples.insert(name.into(), n);
    }
    Ok(out)
}

/// Scores of one system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemResult {
    pub mean: BTreeMap<String, f64>,
    #[serde(skip)]
    pub per_query: BTreeMap<String, BTreeMap<String, f64>>,
    /// 95% bootstrap confidence interval of each metric's mean.
    pub ci95: BTreeMap<String, (f64, f64)>,
    /// The paired comparison with generate-then-encode, per metric: mean difference, its 95%
    /// bootstrap interval and the randomization-test p-value (what `nr eval --baseline` reports).
    pub vs_gte: BTreeMap<String, PairedComparison>,
    #[serde(skip)]
    pub run: Run,
}

/// The significance settings of an experiment (those of `nr eval` too).
pub fn significance_settings(eval: &crate::manifest::EvaluationSpec) -> SignificanceSettings {
    SignificanceSettings {
        resamples: eval.bootstrap,
        permutations: eval.permutations,
        level: 0.95,
        seed: eval.seed,
    }
}

/// Retrieval, metrics and significance of every system.
pub fn score_systems(
    ctx: &Experiment,
    passages: &Vectors,
    systems: &BTreeMap<String, Vectors>,
) -> Result<BTreeMap<String, SystemResult>> {
    let eval = &ctx.manifest.evaluation;
    let metrics: Vec<String> = eval.metrics.iter().map(|m| m.to_string()).collect();
    let qrels: &Qrels = &ctx.data.test.qrels;
    let mut results = BTreeMap::new();
    let index = nr_index::SearchIndex::build(&ctx.manifest.index, Cow::Borrowed(passages))?;
    for (name, vectors) in systems {
        let run = retrieval::search_on(&index, vectors, passages, eval.depth)?;
        let scored = nr_eval::evaluate(qrels, &run, &metrics)?;
        results.insert(
            name.clone(),
            SystemResult {
                mean: scored.mean,
                per_query: scored.per_query,
                ci95: BTreeMap::new(),
                vs_gte: BTreeMap::new(),
                run,
            },
        );
    }
    let gte = results.get(GTE).map(|r| r.per_query.clone());
    let settings = significance_settings(eval);
    for result in results.values_mut() {
        for metric in &metrics {
            let values: Vec<f64> = result.per_query.values().map(|m| m[metric]).collect();
            let ci = nr_eval::bootstrap_ci(&values, eval.bootstrap, settings.level, eval.seed);
            result.ci95.insert(metric.clone(), ci);
            if let Some(gte) = &gte {
                let (a, b): (Vec<f64>, Vec<f64>) = result
                    .per_query
                    .iter()
                    .map(|(q, m)| (m[metric], gte[q][metric]))
                    .unzip();
                if !a.is_empty() {
                    result
                        .vs_gte
                        .insert(metric.clone(), nr_eval::compare_paired(&a, &b, settings)?);
                }
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
    systems
        .iter()
        .filter(|(_, v)| v.ids == r.ids && v.dim == r.dim && !v.ids.is_empty())
        .map(|(name, v)| (name.clone(), mean_row_cosine(&v.data, &r.data, r.dim)))
        .collect()
}

/// Mean cosine of the rows of `a` with the rows of `b` at the same index (`dim` wide; a zero row
/// counts as 0).
pub fn mean_row_cosine(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let rows = a.len() / dim;
    let mut sum = 0.0f64;
    for (x, y) in a.chunks_exact(dim).zip(b.chunks_exact(dim)) {
        let dot: f64 = x
            .iter()
            .zip(y)
            .map(|(p, q)| (*p as f64) * (*q as f64))
            .sum();
        let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
        let ny: f64 = y.iter().map(|q| (*q as f64).powi(2)).sum::<f64>().sqrt();
        if nx > 0.0 && ny > 0.0 {
            sum += dot / (nx * ny);
        }
    }
    sum / rows.max(1) as f64
}

/// Whether each scored turn of `result` has a gold passage in its top 10.
fn hits_at_10(result: &SystemResult, qrels: &Qrels) -> BTreeMap<String, bool> {
    result
        .per_query
        .keys()
        .map(|q| {
            let judged = qrels.get(q);
            let hit = result.run.get(q).is_some_and(|r| {
                r.docs.iter().take(10).any(|d| {
                    judged
                        .and_then(|j| j.relevance(&d.doc_id))
                        .is_some_and(|rel| rel > 0)
                })
            });
            (q.clone(), hit)
        })
        .collect()
}

/// Share of scored turns on which each system agrees with generate-then-encode: both retrieve a
/// gold passage in their top 10, or both retrieve none (the paper's "agreement on retrieval points").
pub fn agreement_with_gte(
    results: &BTreeMap<String, SystemResult>,
    qrels: &Qrels,
) -> BTreeMap<String, f64> {
    let Some(gte) = results.get(GTE).map(|g| hits_at_10(g, qrels)) else {
        return BTreeMap::new();
    };
    results
        .iter()
        .filter(|(_, r)| !r.per_query.is_empty())
        .map(|(name, r)| {
            let hits = hits_at_10(r, qrels);
            let agree = hits
                .iter()
                .filter(|(q, hit)| gte.get(*q) == Some(hit))
                .count();
            (name.clone(), agree as f64 / hits.len() as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system whose run retrieves `doc` first for each query id.
    fn result(first: &[(&str, &str)]) -> SystemResult {
        let mut run = Run::new();
        for (q, doc) in first {
            run.insert(
                q,
                vec![nr_data::ScoredDoc {
                    doc_id: doc.to_string(),
                    score: 1.0,
                }],
            )
            .unwrap();
        }
        SystemResult {
            mean: BTreeMap::new(),
            per_query: first
                .iter()
                .map(|(q, _)| (q.to_string(), BTreeMap::new()))
                .collect(),
            ci95: BTreeMap::new(),
            vs_gte: BTreeMap::new(),
            run,
        }
    }

    #[test]
    fn agreement_counts_turns_where_both_hit_or_both_miss() {
        // Gold: a -> g, b -> g, c -> g, d -> g.
        let mut qrels = Qrels::new();
        for q in ["a", "b", "c", "d"] {
            qrels.add(q, "g", 1).unwrap();
        }
        let results = BTreeMap::from([
            (
                GTE.to_string(),
                result(&[("a", "g"), ("b", "x"), ("c", "g"), ("d", "x")]),
            ),
            (
                "native".to_string(),
                result(&[("a", "g"), ("b", "x"), ("c", "x"), ("d", "g")]),
            ),
        ]);
        let agree = agreement_with_gte(&results, &qrels);
        assert_eq!(agree["native"], 0.5, "a (both hit) and b (both miss) of 4");
        assert_eq!(agree[GTE], 1.0);
    }

    #[test]
    fn mean_row_cosine_is_the_average_of_row_cosines() {
        // Rows: identical (1), orthogonal (0), opposite and scaled (-1).
        let a = [1.0, 0.0, 0.0, 2.0, 3.0, 4.0];
        let b = [2.0, 0.0, 5.0, 0.0, -0.3, -0.4];
        assert!((mean_row_cosine(&a, &b, 2) - 0.0).abs() < 1e-12);
        assert!((mean_row_cosine(&a[..2], &b[..2], 2) - 1.0).abs() < 1e-12);
        assert!((mean_row_cosine(&a[4..], &b[4..], 2) + 1.0).abs() < 1e-12);
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
