//! Python round trips: vectors written by `nr` read by pyarrow and vectors written by pyarrow read
//! by `nr`, and a head trained here run by docs/python/nr_head.py (numpy + safetensors) giving
//! `nr`'s query vector.
//!
//! The Python is the venv of scripts/python-env.sh (`NR_PYTHON_ENV` or
//! ~/.cache/native-retrieval/python). Without it these tests say so and pass, unless
//! `NR_PYTHON_REQUIRED=1` (scripts/test.sh sets it once the venv is ready): then they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{nr, root, tiny_manifest};
use serde_json::{Value, json};

/// The interop venv's python, or None (with a note) when it is not there and not required.
fn python() -> Option<PathBuf> {
    let env = std::env::var_os("NR_PYTHON_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/native-retrieval/python")
        });
    let py = env.join("bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import numpy, safetensors, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    let required = std::env::var("NR_PYTHON_REQUIRED").is_ok_and(|v| v == "1");
    match (ok, required) {
        (true, _) => Some(py),
        (false, true) => panic!(
            "{} cannot import numpy, safetensors and pyarrow: run scripts/python-env.sh",
            py.display()
        ),
        (false, false) => {
            eprintln!(
                "skipped: no Python interop venv at {} (bash scripts/python-env.sh makes it)",
                env.display()
            );
            None
        }
    }
}

/// Runs `code` with `args` (sys.argv[1:]) and returns its stdout parsed as JSON.
fn run_python(py: &Path, code: &str, args: &[&Path]) -> Value {
    let out = Command::new(py)
        .arg("-c")
        .arg(code)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

const READ_WITH_PYARROW: &str = r#"
import json, sys
import pyarrow.parquet as pq
out = {}
for path in sys.argv[1:]:
    t = pq.read_table(path)
    f = t.schema.field("vector").type
    meta = json.loads(t.schema.metadata[b"native_retrieval"])
    out[path] = {
        "columns": t.column_names,
        "list_size": f.list_size,
        "value_type": str(f.value_type),
        "meta": meta,
        "ids": t.column("docid").to_pylist(),
        "vectors": [[float(x) for x in v] for v in t.column("vector").to_pylist()],
    }
print(json.dumps(out))
"#;

const WRITE_WITH_PYARROW: &str = r#"
import json, sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
rng = np.random.default_rng(7)
v = rng.standard_normal((25, 12)).astype(np.float32)
ids = [f"doc-{i}" for i in range(25)]
# Another tool's names and layouts: "id" + a variable-size list of float32 ...
pq.write_table(pa.table({"id": ids, "embedding": [list(r) for r in v]}), sys.argv[1])
# ... and "docid" + a fixed-size list of float16, in two row groups.
h = v.astype(np.float16)
flat = pa.array(h.reshape(-1), type=pa.float16())
pq.write_table(pa.table({"docid": ids, "vector": pa.FixedSizeListArray.from_arrays(flat, 12)}),
               sys.argv[2], row_group_size=10)
print(json.dumps({"ids": ids, "f32": v.tolist(), "f16": h.astype(np.float32).tolist()}))
"#;

#[test]
fn parquet_vectors_round_trip_through_pyarrow_both_ways() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("syn");
    let shards_arg = shards.to_string_lossy().to_string();
    ok(
        nr(&[
            "vectors",
            "synthetic",
            "--count",
            "40",
            "--dim",
            "6",
            "--shards",
            "2",
            "--queries",
            "5",
            "--clusters",
            "4",
            "--latent",
            "3",
            "--dtype",
            "f16",
            "--out",
            &shards_arg,
        ]),
        "nr vectors synthetic",
    );

    // nr -> pyarrow: every shard and the f32 query file, values and metadata as nr reads them.
    let mut files = nr_index::parquet_files(&shards).unwrap();
    assert_eq!(files.len(), 2);
    files.push(dir.path().join("syn-queries.parquet"));
    let read: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let seen = run_python(&py, READ_WITH_PYARROW, &read);
    for (file, dtype) in files.iter().zip(["halffloat", "halffloat", "float"]) {
        let (meta, ours) = nr_index::read_vectors(file).unwrap();
        let meta = meta.expect("nr writes its metadata");
        let theirs = &seen[file.to_string_lossy().as_ref()];
        assert_eq!(theirs["columns"], json!(["docid", "vector"]));
        assert_eq!(theirs["list_size"], json!(6));
        assert_eq!(theirs["value_type"], json!(dtype), "{}", file.display());
        assert_eq!(theirs["meta"]["dim"], json!(6));
        assert_eq!(theirs["meta"]["model"], json!(meta.model));
        // The set's metadata drops the shard; the file's own keeps it.
        let shard = nr_index::parquet::read_meta(file).unwrap().unwrap().shard;
        assert_eq!(
            theirs["meta"]["shard"],
            serde_json::to_value(shard).unwrap()
        );
        let ids: Vec<String> = serde_json::from_value(theirs["ids"].clone()).unwrap();
        assert_eq!(ids, ours.ids);
        let vectors = theirs["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), ours.len());
        for (i, v) in vectors.iter().enumerate() {
            // Both read the same stored values: f16 widened to f32 is exact.
            assert_eq!(floats(v), ours.row(i), "{} row {i}", file.display());
        }
    }
    let first: Vec<String> =
        serde_json::from_value(seen[files[0].to_string_lossy().as_ref()]["ids"].clone()).unwrap();
    assert_eq!(first[..3], ["s0", "s1", "s2"]);

    // pyarrow -> nr: other column names, a variable-size f32 list, a fixed-size f16 list.
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    let written = run_python(&py, WRITE_WITH_PYARROW, &[&a, &b]);
    let ids: Vec<String> = serde_json::from_value(written["ids"].clone()).unwrap();
    for (file, key) in [(&a, "f32"), (&b, "f16")] {
        let (meta, ours) = nr_index::read_vectors(file).unwrap();
        assert!(meta.is_none(), "pyarrow wrote no nr metadata");
        assert_eq!((ours.len(), ours.dim), (25, 12));
        assert_eq!(ours.ids, ids);
        for (i, v) in written[key].as_array().unwrap().iter().enumerate() {
            assert_eq!(floats(v), ours.row(i), "{} row {i}", file.display());
        }
    }
    let shown: Value = serde_json::from_str(&ok(
        nr(&["vectors", "show", &b.to_string_lossy(), "--rows", "1"]),
        "nr vectors show",
    ))
    .unwrap();
    assert_eq!(
        (shown["rows"].clone(), shown["dim"].clone()),
        (json!(25), json!(12))
    );
    assert_eq!(shown["first"][0]["id"], json!("doc-0"));
    assert_eq!(
        floats(&shown["first"][0]["vector"]),
        floats(&written["f16"][0])
    );
}

const HEAD_IN_PYTHON: &str = r#"
import json, sys
import numpy as np
from safetensors.numpy import load_file
sys.path.insert(0, "docs/python")
from nr_head import load_encoder, head_inputs
enc = load_encoder(sys.argv[1])
d = load_file(sys.argv[2])
lexical = None
if "lexical.question" in d:
    keys = sorted((k for k in d if k.startswith("lexical.history.")), key=lambda k: int(k.split(".")[2]))
    lexical = (d["lexical.question"].tolist(), [(k.split(".")[3], d[k].tolist()) for k in keys])
v = enc.vector(d["head_inputs"], lexical)
layers = enc.features["layers"]
states = {l: d[f"hidden_states.{l}"] for l in layers}
rebuilt = head_inputs(enc, states, int(d["pooled_tokens"][0]))
v2 = enc.vector(rebuilt, lexical)
out = {
    "kind": enc.head["kind"],
    "lexicon": enc.table is not None,
    "norm": float(np.linalg.norm(v)),
    "vector_diff": float(np.abs(v - d["vector"]).max()),
    "inputs_diff": float(np.abs(rebuilt - d["head_inputs"]).max()),
    "rebuilt_vector_diff": float(np.abs(v2 - d["vector"]).max()),
}
if len(sys.argv) > 3:
    # transformers' own states of the same prompt (the fixture's last token at each layer the
    # head reads) through the head, against nr's vector made from nr's states.
    case = json.load(open(sys.argv[3]))
    case = next(c for c in case["cases"] if c["messages"][0]["role"] == "system")
    ref = np.array([[case["hidden_last_token"][str(l)] for l in layers]], dtype=np.float32)
    ours = np.stack([d[f"hidden_states.{l}"][-1] for l in layers])[None]
    out["transformers"] = {
        "same_prompt": d["prompt_ids"].tolist() == case["input_ids"],
        "states_rel_l2": float(np.linalg.norm(ours - ref) / np.linalg.norm(ref)),
        "vector_diff": float(np.abs(enc.vector(ref, lexical) - d["vector"]).max()),
    }
print(json.dumps(out))
"#;

/// The conversation of the transformers fixture's case with a system prompt
/// (../shared/fixtures/smollm2_reference.json): nr's prompt of it must be that case's prompt.
const FIXTURE_SYSTEM_PROMPT: &str =
    "Rewrite the user's last question as a standalone search query.";

/// Trains the tiny manifest with `sets`, dumps the fixture conversation's query vector with
/// `nr inspect query-vector` and runs the head in Python on the dump (and, with `fixture`, on
/// transformers' states of the same prompt).
fn python_head_against_nr(py: &Path, sets: &[&str], fixture: Option<&Path>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let manifest = tiny_manifest(dir.path());
    let system = format!("backbone.system_prompt={:?}", FIXTURE_SYSTEM_PROMPT);
    let mut args = vec!["run", manifest.to_str().unwrap(), "--set", &system];
    for s in sets {
        args.extend(["--set", s]);
    }
    ok(nr(&args), "nr run (tiny)");
    let head = dir.path().join("out/head");
    let conversation = dir.path().join("conversation.json");
    std::fs::write(
        &conversation,
        json!([
            {"user": "Who wrote Dune?", "assistant": "Frank Herbert wrote Dune, published in 1965."},
            "When did he die?"
        ])
        .to_string(),
    )
    .unwrap();
    let dump = dir.path().join("dump.safetensors");
    let (h, c, d) = (
        head.to_string_lossy().to_string(),
        conversation.to_string_lossy().to_string(),
        dump.to_string_lossy().to_string(),
    );
    ok(
        nr(&[
            "inspect",
            "query-vector",
            "--head",
            &h,
            "--conversation",
            &c,
            "--dump",
            &d,
        ]),
        "nr inspect query-vector",
    );
    let mut py_args = vec![head.as_path(), dump.as_path()];
    py_args.extend(fixture);
    run_python(py, HEAD_IN_PYTHON, &py_args)
}

fn assert_reproduced(r: &Value, kind: &str, lexicon: bool) {
    eprintln!("measured: {r}");
    assert_eq!(r["kind"], json!(kind), "{r}");
    assert_eq!(r["lexicon"], json!(lexicon), "{r}");
    assert!((r["norm"].as_f64().unwrap() - 1.0).abs() < 1e-5, "{r}");
    // nr's query vector from its own head inputs, and from the LLM's per-layer states as
    // transformers' `output_hidden_states` gives them.
    for key in ["vector_diff", "rebuilt_vector_diff"] {
        assert!(r[key].as_f64().unwrap() <= 1e-4, "{key}: {r}");
    }
    assert!(r["inputs_diff"].as_f64().unwrap() <= 1e-4, "{r}");
}

#[test]
fn python_runs_an_mlp_head_as_nr_does() {
    let Some(py) = python() else { return };
    // The tiny manifest's head: mlp over layers 15 and 30 mixed, last-token pooling; with the
    // input LayerNorm.
    let fixture = common::shared("fixtures/smollm2_reference.json");
    let r = python_head_against_nr(&py, &["head.input_layernorm=true"], Some(&fixture));
    assert_reproduced(&r, "mlp", false);
    // The same head on transformers' states (float32, the GGUF de-quantized by transformers):
    // the states differ from nr's by float32 accumulation order only, and so does the vector.
    let t = &r["transformers"];
    assert_eq!(t["same_prompt"], json!(true), "{r}");
    assert!(t["states_rel_l2"].as_f64().unwrap() <= 1e-3, "{r}");
    assert!(t["vector_diff"].as_f64().unwrap() <= 1e-4, "{r}");
}

#[test]
fn python_runs_a_linear_head_with_the_lexicon_as_nr_does() {
    let Some(py) = python() else { return };
    let r = python_head_against_nr(
        &py,
        &[
            "head.kind=\"linear\"",
            "backbone.pool=\"question\"",
            "lexicon.enabled=true",
        ],
        None,
    );
    assert_reproduced(&r, "linear", true);
}
