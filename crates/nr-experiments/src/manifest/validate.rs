//! The one validation pass that `nr validate` and `nr run` share, before any stage, after
//! [`Manifest::load`] has checked the values ([`Manifest::check`]): every file the manifest names: data files parsed (with their line
//! numbers), duplicate passages, empty or unscorable splits, model headers, layers against the
//! model, and writable output and cache folders. One line per problem.

use std::path::Path;

use crate::manifest::Manifest;

/// Every problem of a loaded manifest's files and folders, one line each (empty: ready to run).
pub fn problems(manifest: &Manifest) -> Vec<String> {
    let mut p = Vec::new();
    let d = &manifest.data;
    let mut missing = false;
    for (field, path) in [
        ("data.train", &d.train),
        ("data.dev", &d.dev),
        ("data.test", &d.test),
        ("data.passages", &d.passages),
        ("data.qrels_train", &d.qrels_train),
        ("data.qrels_dev", &d.qrels_dev),
        ("data.qrels_test", &d.qrels_test),
        ("backbone.path", &manifest.backbone.path),
        ("teacher.path", &manifest.teacher.path),
    ]
    .into_iter()
    .chain(d.extra_train.iter().map(|p| ("data.extra_train", p)))
    {
        if !path.exists() {
            p.push(format!("{field} = {}: not found", path.display()));
            missing = true;
        }
    }
    if !missing {
        data_problems(manifest, &mut p);
        model_problems(manifest, &mut p);
    }
    if let nr_index::IndexSpec::Binary(b) = &manifest.index
        && b.candidates < 1
    {
        p.push("index.candidates = 0: must be at least 1".to_string());
    }
    if let nr_index::IndexSpec::Hnsw(h) = &manifest.index {
        for (field, value, least) in [
            ("index.connectivity", h.connectivity, 2),
            ("index.expansion_add", h.expansion_add, 1),
            ("index.expansion_search", h.expansion_search, 1),
        ] {
            if value < least {
                p.push(format!("{field} = {value}: must be at least {least}"));
            }
        }
    }
    for (field, dir) in [("output", &manifest.output), ("cache", &manifest.cache)] {
        if let Err(e) = writable(dir) {
            p.push(format!("{field} = {}: not writable ({e})", dir.display()));
        }
    }
    p
}

/// The data files parsed: turns, qrels, passages (each error names the file and line).
fn data_problems(manifest: &Manifest, p: &mut Vec<String>) {
    let d = &manifest.data;
    let mut turns =
        |path: &Path, field: &str, must_have: bool| match nr_data::read_qrecc_turns(path) {
            Ok(t) if must_have && t.is_empty() => {
                p.push(format!("{field} = {}: holds no turns", path.display()));
                None
            }
            Ok(t) => Some(t),
            Err(e) => {
                p.push(e.to_string());
                None
            }
        };
    turns(&d.train, "data.train", true);
    let dev = turns(&d.dev, "data.dev", true);
    let test = turns(&d.test, "data.test", true);
    for path in &d.extra_train {
        turns(path, "data.extra_train", false);
    }
    let mut qrels = |path: &Path, field: &str| match nr_data::Qrels::read(path) {
        Ok(q) if q.is_empty() => {
            p.push(format!("{field} = {}: holds no judgments", path.display()));
            None
        }
        Ok(q) => Some(q),
        Err(e) => {
            p.push(e.to_string());
            None
        }
    };
    qrels(&d.qrels_train, "data.qrels_train");
    let qrels_dev = qrels(&d.qrels_dev, "data.qrels_dev");
    let qrels_test = qrels(&d.qrels_test, "data.qrels_test");
    // Splits that would score nothing: no turn of the (kept) split has a judgment.
    let limit = d.max_eval_turns.unwrap_or(usize::MAX);
    for (field, split, q) in [
        ("data.dev", &dev, &qrels_dev),
        ("data.test", &test, &qrels_test),
    ] {
        if let (Some(turns), Some(q)) = (split, q)
            && !turns.iter().take(limit).any(|t| q.get(&t.id()).is_some())
        {
            p.push(format!(
                "{field}: none of its turns is judged in the qrels: every metric would be 0"
            ));
        }
    }
    let mut passages = 0usize;
    match nr_data::read_unique_passages(&d.passages, |_| passages += 1) {
        Ok(()) if passages == 0 => p.push(format!(
            "data.passages = {}: the collection holds no passages",
            d.passages.display()
        )),
        Ok(()) => {}
        Err(e) => p.push(e.to_string()),
    }
}

/// The models' headers, and the layers the manifest reads against the LLM's depth.
fn model_problems(manifest: &Manifest, p: &mut Vec<String>) {
    match nr_backbone::llama::read_config(&manifest.backbone.path) {
        Ok(config) => {
            if let Err(e) = manifest.backbone.resolve_layers(config.num_layers) {
                p.push(format!("{e} ({})", manifest.backbone.path.display()));
            }
            if manifest.backbone.path.is_dir()
                && let Err(e) =
                    nr_backbone::weights::SafetensorsWeights::open_folder(&manifest.backbone.path)
            {
                p.push(e.to_string());
            }
        }
        Err(e) => p.push(e.to_string()),
    }
    match nr_backbone::teacher::TeacherConfig::from_folder(&manifest.teacher.path) {
        Ok(config) => {
            if let Err(e) =
                nr_backbone::weights::SafetensorsWeights::open_folder(&config.transformer_dir)
            {
                p.push(e.to_string());
            }
        }
        Err(e) => p.push(e.to_string()),
    }
}

/// Whether `dir` (or, when it does not exist yet, its nearest existing ancestor, where it would be
/// created) takes a file: a probe is written and removed; nothing is created otherwise.
fn writable(dir: &Path) -> std::io::Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(std::io::Error::other("it exists and is not a folder"));
    }
    let existing = dir
        .ancestors()
        .find(|a| a.is_dir() || a.as_os_str().is_empty())
        .filter(|a| !a.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = existing.join(format!(".nr-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}
