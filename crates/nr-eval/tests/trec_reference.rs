//! Metrics equal pytrec_eval's (../shared/fixtures/trec_metrics_reference.json) to 1e-9.

use nr_data::{Qrels, Run, ScoredDoc};

#[test]
fn every_metric_per_query_and_mean_equals_pytrec_eval() {
    let path = nr_data::shared_path("fixtures/trec_metrics_reference.json");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut qrels = Qrels::new();
    for (q, docs) in f["qrels"].as_object().unwrap() {
        for (d, rel) in docs.as_object().unwrap() {
            qrels.add(q, d, rel.as_i64().unwrap() as i32).unwrap();
        }
    }
    let mut run = Run::new();
    for (q, docs) in f["run"].as_object().unwrap() {
        let docs = docs
            .as_object()
            .unwrap()
            .iter()
            .map(|(d, s)| ScoredDoc {
                doc_id: d.clone(),
                score: s.as_f64().unwrap(),
            })
            .collect();
        run.insert(q, docs).unwrap();
    }
    let ours = [
        "recall_10",
        "recall_100",
        "ndcg_cut_3",
        "ndcg_cut_10",
        "P_10",
        "map",
        "mrr_10",
    ];
    let theirs = [
        "recall_10",
        "recall_100",
        "ndcg_cut_3",
        "ndcg_cut_10",
        "P_10",
        "map",
        "recip_rank_at_10",
    ];
    let names: Vec<String> = ours.iter().map(|s| s.to_string()).collect();
    let e = nr_eval::evaluate(&qrels, &run, &names).unwrap();
    let per_query = f["per_query"].as_object().unwrap();
    assert_eq!(e.per_query.len(), per_query.len());
    for (q, values) in per_query {
        for (o, t) in ours.iter().zip(theirs) {
            let want = values[t].as_f64().unwrap();
            let got = e.per_query[q][*o];
            assert!((got - want).abs() < 1e-9, "{q} {o}: {got} vs {want}");
        }
    }
    for (o, t) in ours.iter().zip(theirs) {
        let want = f["mean"][t].as_f64().unwrap();
        assert!(
            (e.mean[*o] - want).abs() < 1e-9,
            "mean {o}: {} vs {want}",
            e.mean[*o]
        );
    }
}
