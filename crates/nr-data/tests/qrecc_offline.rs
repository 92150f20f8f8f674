//! nr-data on the real offline QReCC files (../shared/data/qrecc-offline).

use std::path::PathBuf;

use nr_data::{AnswerCorpus, AnswerSources, PassageReader, Qrels, read_qrecc_turns};

fn data(name: &str) -> PathBuf {
    nr_data::qrecc_offline(name)
}

#[test]
fn rebuilding_the_corpus_from_qrecc_test_json_reproduces_qrels_test_exactly() {
    let turns = read_qrecc_turns(data("qrecc_test.json")).unwrap();
    assert_eq!(turns.len(), 342);
    let corpus = AnswerCorpus::build(&turns, &turns, AnswerSources::TurnAnswers);
    let expected = std::fs::read_to_string(data("qrels_test.txt")).unwrap();
    assert_eq!(corpus.qrels.to_trec_string(), expected);
    assert_eq!(corpus.qrels.len(), 304);
    // Every rebuilt passage is in the shipped collection with the same text.
    let shipped: std::collections::HashMap<String, String> =
        PassageReader::open(data("passages.jsonl"))
            .unwrap()
            .map(|p| p.map(|p| (p.id, p.contents)).unwrap())
            .collect();
    assert_eq!(shipped.len(), 23_290);
    for p in &corpus.passages {
        assert_eq!(shipped.get(&p.id), Some(&p.contents), "passage {}", p.id);
    }
}

#[test]
fn qrels_and_turn_ids_agree_on_every_split() {
    for (json, qrels) in [
        ("qrecc_train.json", "qrels_train.txt"),
        ("qrecc_dev.json", "qrels_dev.txt"),
    ] {
        let turns = read_qrecc_turns(data(json)).unwrap();
        let q = Qrels::read(data(qrels)).unwrap();
        let ids: std::collections::HashSet<String> = turns.iter().map(|t| t.id()).collect();
        assert!(
            q.queries().iter().all(|qq| ids.contains(&qq.query_id)),
            "{qrels} names unknown turns"
        );
    }
}
