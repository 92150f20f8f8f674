//! trec_eval's conventions on hand-made qrels and runs, and breakdowns on the real QReCC test split.

use std::path::Path;

use nr_data::{Qrels, Run, read_qrecc_turns};
use nr_eval::{EvalOptions, Metric, evaluate, evaluate_with, means_by_source};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn equal_scores_rank_by_document_id_descending_and_the_rank_column_is_ignored() {
    // d1 and d3 tie at 0.5; trec_eval puts d3 (greater id) first, whatever the rank column says.
    let qrels = Qrels::parse("q 0 d1 1\n", Path::new("qrels")).unwrap();
    let run = Run::parse(
        "q Q0 d1 1 0.5 t\nq Q0 d3 2 0.5 t\nq Q0 d2 3 0.9 t\n",
        Path::new("run"),
    )
    .unwrap();
    let e = evaluate(&qrels, &run, &names(&["mrr_10", "P_2", "recall_2", "map"])).unwrap();
    // Order: d2 (0.9), d3 (0.5), d1 (0.5): the relevant d1 is at rank 3.
    assert_eq!(e.per_query["q"]["mrr_10"], 1.0 / 3.0);
    assert_eq!(e.per_query["q"]["P_2"], 0.0);
    assert_eq!(e.per_query["q"]["recall_2"], 0.0);
    assert_eq!(e.per_query["q"]["map"], 1.0 / 3.0);
}

#[test]
fn only_queries_with_relevant_documents_and_a_ranking_are_scored_unless_complete() {
    let qrels = Qrels::parse(
        "q1 0 d1 1\nq2 0 d2 0\nq3 0 d3 2\nq3 0 d4 1\n",
        Path::new("qrels"),
    )
    .unwrap();
    // q2 has no relevant document, q4 has no judgments, q3 is missing from the run.
    let run = Run::parse(
        "q1 Q0 d1 1 1.0 t\nq2 Q0 d2 1 1.0 t\nq4 Q0 d1 1 1.0 t\n",
        Path::new("run"),
    )
    .unwrap();
    let metrics = names(&["recall_10", "ndcg_cut_10"]);
    let e = evaluate(&qrels, &run, &metrics).unwrap();
    assert_eq!(e.per_query.keys().collect::<Vec<_>>(), ["q1"]);
    assert_eq!(e.mean["recall_10"], 1.0);
    let c = evaluate_with(&qrels, &run, &metrics, EvalOptions { complete: true }).unwrap();
    assert_eq!(c.per_query.keys().collect::<Vec<_>>(), ["q1", "q3"]);
    assert_eq!(c.per_query["q3"]["ndcg_cut_10"], 0.0);
    assert_eq!(c.mean["recall_10"], 0.5);
    assert!(e.paired(&c, "recall_10").is_err());
    assert_eq!(c.paired(&c, "recall_10").unwrap().0, [1.0, 0.0]);
}

#[test]
fn graded_ndcg_uses_grades_as_gains_with_log2_discounts() {
    // Ranking: d1 (grade 1), d9 (unjudged), d2 (grade 2). Ideal: 2, 1.
    let qrels = Qrels::parse("q 0 d1 1\nq 0 d2 2\nq 0 d5 0\n", Path::new("qrels")).unwrap();
    let run = Run::parse(
        "q Q0 d1 1 3 t\nq Q0 d9 2 2 t\nq Q0 d2 3 1 t\n",
        Path::new("run"),
    )
    .unwrap();
    let e = evaluate(&qrels, &run, &names(&["ndcg_cut_3", "ndcg_cut_1", "P_5"])).unwrap();
    let dcg = 1.0 + 2.0 / 4f64.log2();
    let ideal = 2.0 + 1.0 / 3f64.log2();
    assert!((e.per_query["q"]["ndcg_cut_3"] - dcg / ideal).abs() < 1e-15);
    assert_eq!(e.per_query["q"]["ndcg_cut_1"], 0.5);
    // P_5 divides by 5 although only 3 documents were retrieved.
    assert_eq!(e.per_query["q"]["P_5"], 0.4);
}

#[test]
fn metric_names_round_trip_and_unknown_names_are_errors() {
    for name in [
        "recall_10",
        "recall_100",
        "ndcg_cut_3",
        "ndcg_cut_10",
        "P_10",
        "map",
        "mrr_10",
        "recip_rank",
    ] {
        assert_eq!(Metric::parse(name).unwrap().to_string(), name);
    }
    assert_eq!(Metric::parse("recip_rank_at_10").unwrap(), Metric::Mrr(10));
    for bad in ["ndcg", "P_0", "recall_x", "MAP", "mrr10"] {
        let err = Metric::parse(bad).unwrap_err().to_string();
        assert!(err.starts_with(&format!("unknown metric '{bad}'")), "{err}");
    }
}

#[test]
fn a_perfect_run_on_qrecc_test_scores_one_per_conversation_source() {
    let dir = nr_data::shared_path("data/qrecc-offline");
    let qrels = Qrels::read(dir.join("qrels_test.txt")).unwrap();
    let turns = read_qrecc_turns(dir.join("qrecc_test.json")).unwrap();
    let mut run = Run::new();
    for q in qrels.queries() {
        let docs = q
            .judgments()
            .iter()
            .map(|j| nr_data::ScoredDoc {
                doc_id: j.doc_id.clone(),
                score: 1.0,
            })
            .collect();
        run.insert(&q.query_id, docs).unwrap();
    }
    let e = evaluate(&qrels, &run, &names(&["recall_10", "mrr_10"])).unwrap();
    assert_eq!(e.per_query.len(), 304);
    let by_source = means_by_source(&e, &turns);
    // python: Counter(source of each qrels_test.txt turn) = quac 236, nq 68.
    assert_eq!(by_source.keys().collect::<Vec<_>>(), ["nq", "quac"]);
    assert_eq!(by_source["quac"]["recall_10"], (1.0, 236));
    assert_eq!(by_source["nq"]["mrr_10"], (1.0, 68));
}
