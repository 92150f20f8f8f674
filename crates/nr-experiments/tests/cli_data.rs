//! `nr data build-qrecc` on files laid out like the official release (train and test, no dev).

mod common;

use std::collections::BTreeSet;

use common::{nr, shared_data};
use serde_json::Value;

fn turns(path: &std::path::Path) -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn without_a_dev_file_whole_training_conversations_are_held_out_as_dev() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("official");
    std::fs::create_dir_all(&input).unwrap();
    for split in ["train", "test"] {
        std::fs::copy(
            shared_data(&format!("qrecc_{split}.json")),
            input.join(format!("qrecc_{split}.json")),
        )
        .unwrap();
    }
    let output = dir.path().join("built");
    let out = nr(&[
        "data",
        "build-qrecc",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let original = turns(&input.join("qrecc_train.json"));
    let (train, dev) = (
        turns(&output.join("qrecc_train.json")),
        turns(&output.join("qrecc_dev.json")),
    );
    let conv = |t: &Value| t["Conversation_no"].as_u64().unwrap();
    assert_eq!(train.len() + dev.len(), original.len());
    assert!(!dev.is_empty() && dev.iter().all(|t| conv(t) % 10 == 0));
    assert!(train.iter().all(|t| conv(t) % 10 != 0));
    let expected_dev: Vec<&Value> = original.iter().filter(|t| conv(t) % 10 == 0).collect();
    assert_eq!(
        dev.iter().collect::<Vec<_>>(),
        expected_dev,
        "dev turns keep their fields and order"
    );
    assert_eq!(
        turns(&output.join("qrecc_test.json")),
        turns(&input.join("qrecc_test.json"))
    );

    // Every split has qrels, and each judged turn belongs to that split.
    for (split, split_turns) in [("train", &train), ("dev", &dev)] {
        let ids: BTreeSet<String> = split_turns
            .iter()
            .map(|t| format!("{}_{}", t["Conversation_no"], t["Turn_no"]))
            .collect();
        let qrels = std::fs::read_to_string(output.join(format!("qrels_{split}.txt"))).unwrap();
        assert!(qrels.lines().count() > 0, "{split}: no qrels");
        for line in qrels.lines() {
            let qid = line.split_whitespace().next().unwrap();
            assert!(
                ids.contains(qid),
                "{split}: judged turn {qid} is not in the split"
            );
        }
    }
    // The test qrels match the shipped offline benchmark's, which was built the same way.
    assert_eq!(
        std::fs::read_to_string(output.join("qrels_test.txt")).unwrap(),
        std::fs::read_to_string(shared_data("qrels_test.txt")).unwrap()
    );
}
