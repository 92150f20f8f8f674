//! `nr chat --script` with the quickstart encoder on a QReCC test conversation: the encoder folder
//! alone, copied elsewhere after its run folder is deleted, retrieves the gold passage of a known
//! turn in its top 10, with the very ranking and scores the pipeline wrote for that turn; an
//! encoder is refused by models or settings other than its own.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::Path;

use common::{model, nr, offline_overrides, shared_data};
use serde_json::{Value, json};

/// Ranked (doc, score) lists of a TREC run file, by query id.
fn read_run(path: &Path) -> BTreeMap<String, Vec<(String, f64)>> {
    let mut out: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        out.entry(f[0].to_string())
            .or_default()
            .push((f[2].to_string(), f[4].parse().unwrap()));
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| b.1.total_cmp(&a.1));
    }
    out
}

/// Relevant documents of each query id.
fn read_gold(path: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[3].parse::<i32>().unwrap() > 0 {
            out.entry(f[0].to_string())
                .or_default()
                .insert(f[2].to_string());
        }
    }
    out
}

fn turn_id(t: &Value) -> String {
    format!("{}_{}", t["Conversation_no"], t["Turn_no"])
}

/// The passages of the collection whose ids are in `keep`, as a JSONL file.
fn write_corpus(path: &Path, keep: &BTreeSet<String>) {
    let file = std::fs::File::open(shared_data("passages.jsonl")).unwrap();
    let mut out = std::fs::File::create(path).unwrap();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.unwrap();
        let p: Value = serde_json::from_str(&line).unwrap();
        if keep.contains(p["id"].as_str().unwrap()) {
            writeln!(out, "{line}").unwrap();
        }
    }
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "chat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn scripted_chat_with_the_quickstart_head_retrieves_the_gold_passage_of_a_known_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["run".into(), "experiments/quickstart.toml".into()];
    args.extend(offline_overrides(dir.path()));
    // 150 training turns and 20 dev and test turns instead of 300 and 100: the agent is checked
    // on one test turn, and the LLM's passes over the training turns and generate-then-encode's
    // test queries (neither needed here) cost the most.
    for set in ["data.max_train_turns=150", "data.max_eval_turns=20"] {
        args.extend(["--set".into(), set.into()]);
    }
    let out = nr(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "quickstart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = dir.path().join("out");
    assert!(
        run_dir.join("head/head.lexicon.safetensors").is_file(),
        "the quickstart encoder has a lexicon"
    );

    // The known turn: the first test turn past the first of its conversation whose gold passage the
    // pipeline's native head ranked in its top 10.
    let native = read_run(&run_dir.join("runs/native.trec"));
    let gold = read_gold(&shared_data("qrels_test.txt"));
    let turns: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(shared_data("qrecc_test.json")).unwrap())
            .unwrap();
    let hit = |t: &Value| {
        let id = turn_id(t);
        let (Some(ranked), Some(relevant)) = (native.get(&id), gold.get(&id)) else {
            return false;
        };
        t["Turn_no"].as_u64().unwrap() > 1
            && ranked.iter().take(10).any(|(d, _)| relevant.contains(d))
    };
    let known = turns
        .iter()
        .find(|t| hit(t))
        .expect("the quickstart head found no gold passage in any top 10");
    let id = turn_id(known);

    // Replay its conversation with the recorded answers; the LLM answers the known turn itself.
    let context: Vec<&str> = known["Context"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut script: Vec<Value> = context
        .chunks(2)
        .map(|qa| json!({"user": qa[0], "assistant": qa[1]}))
        .collect();
    script.push(json!(known["Question"]));
    let script_path = dir.path().join("conversation.json");
    std::fs::write(&script_path, serde_json::to_string(&script).unwrap()).unwrap();

    // A corpus of the pipeline's 100 best passages for the turn, its gold passages and the first
    // passages of the collection (all of them in the quickstart collection).
    let mut keep: BTreeSet<String> = native[&id].iter().map(|(d, _)| d.clone()).collect();
    keep.extend(gold[&id].iter().cloned());
    let file = std::fs::File::open(shared_data("passages.jsonl")).unwrap();
    for line in std::io::BufReader::new(file).lines().take(300) {
        let p: Value = serde_json::from_str(&line.unwrap()).unwrap();
        keep.insert(p["id"].as_str().unwrap().to_string());
    }
    let corpus = dir.path().join("corpus.jsonl");
    write_corpus(&corpus, &keep);

    // The encoder folder alone, copied elsewhere; the run folder is deleted.
    let elsewhere = tempfile::tempdir().unwrap();
    let copied = elsewhere.path().join("my-encoder");
    std::fs::create_dir_all(&copied).unwrap();
    for entry in std::fs::read_dir(run_dir.join("head")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copied.join(entry.file_name())).unwrap();
    }
    std::fs::remove_dir_all(&run_dir).unwrap();
    let cache = dir.path().join("cache");
    let (head, corpus, cache, script_path) = (
        copied.to_str().unwrap(),
        corpus.to_str().unwrap(),
        cache.to_str().unwrap(),
        script_path.to_str().unwrap(),
    );
    // `nr chat` on the copied encoder, the small corpus and the test's cache.
    let chat = |extra: &[&str]| {
        let mut args = vec!["chat", "--head", head, "--corpus", corpus, "--cache", cache];
        args.extend_from_slice(extra);
        nr(&args)
    };
    let lines = json_lines(&chat(&[
        "--script",
        script_path,
        "--max-answer-tokens",
        "16",
    ]));
    assert_eq!(lines.len(), script.len());
    // Turns after the first run only their new tokens (the agent keeps what the LLM read), unless
    // the prompt budget dropped the oldest turn: then the prompt is read afresh.
    let prefill: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["timings"]["prefill_tokens"].as_u64().unwrap(),
                l["timings"]["prompt_tokens"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        prefill.iter().all(|&(new, all)| new > 0 && new <= all),
        "{prefill:?}"
    );
    assert_eq!(
        prefill[0].0, prefill[0].1,
        "the first turn reads its whole prompt"
    );
    assert!(
        prefill[1..].iter().any(|&(new, all)| new < all),
        "no turn reused the earlier ones: {prefill:?}"
    );
    for (line, qa) in lines.iter().zip(context.chunks(2)) {
        assert_eq!(
            line["answer"], qa[1],
            "a recorded answer is the assistant's reply"
        );
    }
    let last = lines.last().unwrap();
    let retrieved: Vec<(String, f64)> = last["retrieved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(retrieved.len(), 10);
    assert!(
        retrieved.iter().any(|(d, _)| gold[&id].contains(d)),
        "gold passage of {id} not in the agent's top 10"
    );
    for ((d, s), (pd, ps)) in retrieved.iter().zip(&native[&id]) {
        assert_eq!(
            d, pd,
            "{id}: the agent's ranking differs from the pipeline's"
        );
        assert!(
            (s - ps).abs() < 1e-4,
            "{id} {d}: agent score {s} vs pipeline {ps}"
        );
    }
    assert!(
        !last["answer"].as_str().unwrap().is_empty(),
        "the LLM answered the last turn"
    );
    for part in ["prefill_ms", "head_ms", "search_ms", "answer_ms"] {
        assert!(
            last["timings"][part].as_f64().unwrap() > 0.0,
            "{part} not measured"
        );
    }
    assert!(
        last.get("query").is_none(),
        "native retrieval generates no query"
    );

    // `--index hnsw` serves the same turns from an HNSW graph of the corpus vectors (f16 inside
    // the graph): the last turn's top 10 are exact search's, up to one near tie at the cut.
    let on_hnsw = json_lines(&chat(&[
        "--script",
        script_path,
        "--answer-passages",
        "0",
        "--index",
        "hnsw",
    ]));
    let ids = |line: &Value| -> BTreeSet<String> {
        line["retrieved"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (exact_ids, hnsw_ids) = (ids(last), ids(on_hnsw.last().unwrap()));
    assert!(
        exact_ids.intersection(&hnsw_ids).count() >= 9,
        "hnsw {hnsw_ids:?} vs exact {exact_ids:?}"
    );
    assert!(hnsw_ids.iter().any(|d| gold[&id].contains(d)));

    // One bad turn of a script (longer than the prompt budget) is reported and skipped; the
    // others are answered and the exit code says that one failed.
    let long = "why ".repeat(2000);
    let bad_script = dir.path().join("bad-script.json");
    std::fs::write(
        &bad_script,
        serde_json::to_string(&json!([known["Question"], long, known["Question"]])).unwrap(),
    )
    .unwrap();
    let out = chat(&[
        "--script",
        bad_script.to_str().unwrap(),
        "--answer-passages",
        "0",
    ]);
    assert!(
        !out.status.success(),
        "a failed turn must show in the exit code"
    );
    let answered = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(answered, 2, "the good turns are still answered");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("turn 2: skipped") && err.contains("prompt budget"),
        "{err}"
    );

    // Interactive: a line that is not UTF-8 is reported and the chat goes on.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nr"))
        .args([
            "chat",
            "--head",
            head,
            "--corpus",
            corpus,
            "--cache",
            cache,
            "--answer-passages",
            "0",
        ])
        .env("NR_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"\xff\xfe not text\n").unwrap();
        stdin
            .write_all(format!("{}\n/quit\n", known["Question"].as_str().unwrap()).as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.trim_start().starts_with("[ 1]"))
            .count(),
        1,
        "the question after the bad line is answered"
    );

    // Generate-then-encode on the same conversation: the generated query is reported.
    let lines = json_lines(&chat(&[
        "--script",
        script_path,
        "--gte",
        "--answer-passages",
        "0",
    ]));
    let last = lines.last().unwrap();
    assert!(!last["query"].as_str().unwrap().is_empty());
    assert!(
        last["timings"]["generation_ms"].as_f64().unwrap() > 0.0
            && last["timings"]["teacher_ms"].as_f64().unwrap() > 0.0
    );

    // An encoder given another LLM than its own (here: the same file under another name) is
    // refused, naming the sidecar and the field.
    let other = dir.path().join("other-llm.gguf");
    std::os::unix::fs::symlink(model("SmolLM2-135M-Instruct.Q4_1.gguf"), &other).unwrap();
    let out = chat(&["--llm", other.to_str().unwrap(), "--script", script_path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().last().unwrap();
    assert!(
        line.contains("encoder.json") && line.contains("backbone.name"),
        "{err}"
    );

    // A sidecar whose features disagree with the layers the head was trained on is refused.
    let sidecar = copied.join("encoder.json");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    let mut json: Value = serde_json::from_str(&text).unwrap();
    json["features"]["layers"] = json!([16, 20]);
    std::fs::write(&sidecar, serde_json::to_string(&json).unwrap()).unwrap();
    let out = chat(&["--script", script_path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().last().unwrap();
    assert!(
        line.contains("encoder.json") && line.contains("layers"),
        "{err}"
    );
}
