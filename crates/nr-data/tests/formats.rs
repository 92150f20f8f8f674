//! Round trips and strictness of the file formats, and ids against values computed with Python.

use std::path::{Path, PathBuf};

use nr_data::{
    PassageReader, Qrels, Run, ScoredDoc, answer_passage_id, conversation_messages,
    normalize_whitespace, parse_qrecc_turns, read_collection, read_qrecc_turns,
};

fn data(name: &str) -> PathBuf {
    nr_data::qrecc_offline(name)
}

#[test]
fn whitespace_normalisation_matches_python_str_split() {
    // python3 -c "print([hex(c) for c in range(0x110000) if chr(c).isspace()])"
    let python_space: [u32; 29] = [
        0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001,
        0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029,
        0x202f, 0x205f, 0x3000,
    ];
    for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
        let joined = normalize_whitespace(&format!("x{c}{c}y"));
        let is_space = python_space.contains(&(c as u32));
        let want = if is_space {
            "x y".to_string()
        } else {
            format!("x{c}{c}y")
        };
        assert_eq!(joined, want, "U+{:04X}", c as u32);
    }
}

#[test]
fn answer_ids_equal_python_sha1_of_the_normalised_text() {
    // python3: 'a' + hashlib.sha1(' '.join(a.split()).encode()).hexdigest()[:12]
    assert_eq!(
        answer_passage_id("  Josh White was born\n on February 11,\t1914. ").as_deref(),
        Some("a333078ecb363")
    );
    assert_eq!(
        answer_passage_id("exactly twenty chars").as_deref(),
        Some("a5ea75fbc9549")
    );
    // 19 characters after normalisation: too short to be a passage.
    assert_eq!(answer_passage_id("  exactly nineteen  ch "), None);
    assert_eq!(answer_passage_id(""), None);
}

#[test]
fn every_offline_split_parses_with_its_documented_turn_count() {
    for (name, turns) in [
        ("qrecc_train.json", 1066),
        ("qrecc_dev.json", 198),
        ("qrecc_test.json", 342),
        ("qrecc_train_rewrites_only.json", 3104),
    ] {
        let parsed = read_qrecc_turns(data(name)).unwrap();
        assert_eq!(parsed.len(), turns, "{name}");
    }
    let test = read_qrecc_turns(data("qrecc_test.json")).unwrap();
    assert_eq!(
        test[0].id(),
        format!("{}_{}", test[0].conversation_no, test[0].turn_no)
    );
    assert_eq!(test[0].question, "What did he do for this?");
    assert_eq!(test[0].context.len(), 12);
}

#[test]
fn duplicate_turn_ids_nested_field_errors_and_trailing_text_are_rejected() {
    let turn = r#"{"Context": ["q", "a"], "Question": "q2", "Rewrite": "r", "Answer": "x",
        "Answer_URL": "", "Conversation_no": 3, "Turn_no": 2, "Conversation_source": "nq"}"#;
    let err = parse_qrecc_turns(&format!("[{turn}, {turn}]"), Path::new("d.json"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "d.json: turn 1: field `Turn_no`: duplicate turn id 3_2 (also turn 0)"
    );
    let bad_context = turn.replace(r#"["q", "a"]"#, r#"["q", 5]"#);
    let err = parse_qrecc_turns(&format!("[{turn}, {bad_context}]"), Path::new("d.json"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "d.json: turn 1: field `Context[1]`: expected a string, found a number"
    );
    let negative = turn.replace("\"Turn_no\": 2", "\"Turn_no\": -2");
    let err = parse_qrecc_turns(&format!("[{negative}]"), Path::new("d.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("d.json: turn 0: field `Turn_no`: expected a non-negative integer"),
        "{err}"
    );
    let err = parse_qrecc_turns(&format!("[{turn}] x"), Path::new("d.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("d.json: not a JSON list of QReCC turns"),
        "{err}"
    );
    let err = parse_qrecc_turns("[1]", Path::new("d.json"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "d.json: turn 0: field `(turn)`: expected a JSON object, found a number"
    );
}

#[test]
fn qrels_files_round_trip_byte_for_byte_and_reject_double_judgments() {
    for name in ["qrels_train.txt", "qrels_dev.txt", "qrels_test.txt"] {
        let text = std::fs::read_to_string(data(name)).unwrap();
        let qrels = Qrels::read(data(name)).unwrap();
        assert_eq!(qrels.to_trec_string(), text, "{name}");
    }
    let q = Qrels::parse(
        "# judged by hand\nq1 0 d1 2\n\nq1 0 d2 0\nq2 0 d1 -1\n",
        Path::new("q"),
    )
    .unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q.get("q1").unwrap().relevance("d1"), Some(2));
    assert_eq!(q.get("q1").unwrap().relevance("d3"), None);
    assert_eq!(q.get("q1").unwrap().num_relevant(1), 1);
    assert_eq!(q.get("q2").unwrap().num_relevant(1), 0);
    let err = Qrels::parse("q1 0 d1 1\nq1 0 d1 0\n", Path::new("q.txt")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "q.txt:2: document \"d1\" judged twice for query \"q1\""
    );
    let err = Qrels::parse("q1 0 d1 high\n", Path::new("q.txt")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "q.txt:1: relevance \"high\" is not an integer"
    );
}

#[test]
fn runs_round_trip_scores_exactly_and_reject_what_trec_eval_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.txt");
    let mut run = Run::new();
    let f32_score = 0.1f32 as f64; // 0.10000000149011612: must survive the text round trip
    let docs = vec![
        ScoredDoc {
            doc_id: "d9".into(),
            score: f32_score,
        },
        ScoredDoc {
            doc_id: "d1".into(),
            score: -1.0 / 3.0,
        },
        ScoredDoc {
            doc_id: "d5".into(),
            score: 1e-300,
        },
    ];
    run.insert("q1", docs.clone()).unwrap();
    run.write(&path, "mine").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("q1 Q0 d9 1 0.10000000149011612 mine\nq1 Q0 d1 2 "),
        "{text}"
    );
    let back = Run::read(&path).unwrap();
    assert_eq!(back.get("q1").unwrap().docs, docs);

    let dup = vec![
        ScoredDoc {
            doc_id: "d1".into(),
            score: 1.0,
        },
        ScoredDoc {
            doc_id: "d1".into(),
            score: 0.5,
        },
    ];
    assert!(run.insert("q2", dup).is_err());
    let err = Run::parse("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", Path::new("r.txt")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "r.txt:2: document \"d1\" listed twice for query \"q1\""
    );
    let err = Run::parse("q1 Q0 d1 1 nan t\n", Path::new("r.txt")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "r.txt:1: score \"nan\" is not a finite number"
    );
    let err = Run::parse("q1 Q0 d1 1 0.5\n", Path::new("r.txt")).unwrap_err();
    assert!(
        err.to_string().starts_with("r.txt:1: expected 6 columns"),
        "{err}"
    );

    let mut spaced = Run::new();
    spaced
        .insert(
            "q 1",
            vec![ScoredDoc {
                doc_id: "d".into(),
                score: 1.0,
            }],
        )
        .unwrap();
    let err = spaced
        .write(dir.path().join("bad.txt"), "t")
        .unwrap_err()
        .to_string();
    assert!(err.contains("query id \"q 1\""), "{err}");
}

#[test]
fn collections_stream_nested_folders_and_reject_duplicate_ids() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wayback")).unwrap();
    std::fs::write(
        dir.path().join("wayback/part-1.jsonl"),
        "{\"id\": \"w1\", \"contents\": \"x\", \"title\": \"ignored\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("commoncrawl.jsonl"),
        "{\"id\": \"c1\", \"contents\": \"y\"}\n\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a collection file").unwrap();
    let ids: Vec<String> = read_collection(dir.path())
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["c1", "w1"]);

    std::fs::write(
        dir.path().join("dup.jsonl"),
        "{\"id\": \"w1\", \"contents\": \"z\"}\n",
    )
    .unwrap();
    let err = read_collection(dir.path()).unwrap_err().to_string();
    assert!(err.contains("duplicate passage id \"w1\""), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = PassageReader::open(empty.path()).err().unwrap().to_string();
    assert!(err.ends_with("folder holds no .jsonl files"), "{err}");
    let shipped = read_collection(data("passages.jsonl")).unwrap();
    assert_eq!(shipped.len(), 23_290);
}

#[test]
fn conversations_alternate_roles_and_end_with_the_question() {
    let context: Vec<String> = ["q1", "a1", "q2"].map(String::from).to_vec();
    let messages = conversation_messages(&context, "q3", None);
    let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "user"]);
    assert_eq!(messages[3].content, "q3");
    let json = serde_json::to_string(&messages[0]).unwrap();
    assert_eq!(json, r#"{"role":"user","content":"q1"}"#);
}
