//! Malformed inputs give one-line errors naming the file and the field or line.

use nr_data::{PassageReader, Qrels, parse_qrecc_turns};

fn turn_json(extra: &str, drop: &str) -> String {
    let fields = [
        ("Context", "[\"q1\", \"a1\"]"),
        ("Question", "\"q2\""),
        ("Rewrite", "\"r2\""),
        ("Answer", "\"an answer that is long enough\""),
        ("Answer_URL", "\"\""),
        ("Conversation_no", "7"),
        ("Turn_no", "2"),
        ("Conversation_source", "\"trec\""),
    ];
    let mut parts: Vec<String> = fields
        .iter()
        .filter(|(k, _)| *k != drop)
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    if !extra.is_empty() {
        parts.push(extra.to_string());
    }
    format!("[{{{}}}]", parts.join(", "))
}

#[test]
fn a_well_formed_turn_parses_with_its_qrecc_id() {
    let turns = parse_qrecc_turns(&turn_json("", ""), "t.json".as_ref()).unwrap();
    assert_eq!(turns[0].id(), "7_2");
    assert_eq!(turns[0].context, ["q1", "a1"]);
}

#[test]
fn missing_unknown_and_mistyped_fields_name_file_turn_and_field() {
    let cases = [
        (turn_json("", "Rewrite"), "Rewrite"),
        (turn_json("\"Extra\": 1", ""), "Extra"),
        (
            turn_json("", "").replace("\"Turn_no\": 2", "\"Turn_no\": \"x\""),
            "Turn_no",
        ),
    ];
    for (json, field) in cases {
        let err = parse_qrecc_turns(&json, "conv.json".as_ref())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("conv.json"), "{err}");
        assert!(err.contains(field), "'{err}' does not name {field}");
        assert!(!err.contains('\n'), "{err}");
    }
    let err = parse_qrecc_turns("{\"not\": \"a list\"}", "conv.json".as_ref())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("conv.json"), "{err}");
}

#[test]
fn bad_lines_of_qrels_and_collections_name_file_and_line() {
    let err = Qrels::parse("q1 0 d1 1\nq2 0 d2\n", "qrels.txt".as_ref())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("qrels.txt:2"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    std::fs::write(&path, "{\"id\": \"a\", \"contents\": \"x\"}\n{\"id\": 3}\n").unwrap();
    let results: Vec<_> = PassageReader::open(&path).unwrap().collect();
    assert_eq!(results[0].as_ref().unwrap().id, "a");
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("c.jsonl:2"), "{err}");
}

#[test]
fn a_folder_of_jsonl_files_streams_in_file_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.jsonl"),
        "{\"id\": \"b1\", \"contents\": \"x\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        "{\"id\": \"a1\", \"contents\": \"y\"}\n{\"id\": \"a2\", \"contents\": \"z\"}\n",
    )
    .unwrap();
    let ids: Vec<String> = PassageReader::open(dir.path())
        .unwrap()
        .map(|p| p.unwrap().id)
        .collect();
    assert_eq!(ids, ["a1", "a2", "b1"]);
}
