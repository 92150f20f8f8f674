//! TREC run files: `qid Q0 docno rank score tag` lines, a system's ranking for each query.
//!
//! Documents keep file order; the rank column is ignored on reading, as trec_eval does (it
//! re-sorts by score). A document listed twice for one query is an error, as in trec_eval.
//! `#` comment lines and blank lines are skipped.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{DataError, Result};

/// A retrieved document and the system's score for it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredDoc {
    /// The document id.
    pub doc_id: String,
    /// The retrieval score (higher is better); trec_eval ranks by it.
    pub score: f64,
}

/// The documents retrieved for one query, in stored order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryRun {
    /// The query (QReCC: the turn id).
    pub query_id: String,
    /// Retrieved documents; for runs built in memory, best first.
    pub docs: Vec<ScoredDoc>,
}

/// A run: the rankings of a set of queries, in first-seen order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    queries: Vec<QueryRun>,
    index: HashMap<String, usize>,
}

impl Run {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a TREC run file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses TREC run text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut run = Run::new();
        let mut seen: HashSet<(usize, &str)> = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let line_err = |problem: String| DataError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                problem,
            };
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = trimmed.split_whitespace().collect();
            let [qid, _q0, doc, _rank, score, _tag] = cols[..] else {
                return Err(line_err(format!(
                    "expected 6 columns `qid Q0 docno rank score tag`, found {}",
                    cols.len()
                )));
            };
            let score: f64 = score
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite())
                .ok_or_else(|| line_err(format!("score {score:?} is not a finite number")))?;
            let qi = run.query_index_or_insert(qid);
            if !seen.insert((qi, doc)) {
                return Err(line_err(format!(
                    "document {doc:?} listed twice for query {qid:?}"
                )));
            }
            run.queries[qi].docs.push(ScoredDoc {
                doc_id: doc.to_string(),
                score,
            });
        }
        Ok(run)
    }

    fn query_index_or_insert(&mut self, query_id: &str) -> usize {
        if let Some(&qi) = self.index.get(query_id) {
            return qi;
        }
        self.index.insert(query_id.to_string(), self.queries.len());
        self.queries.push(QueryRun {
            query_id: query_id.to_string(),
            docs: Vec::new(),
        });
        self.queries.len() - 1
    }

    /// Sets the ranking of a query (best first), replacing any earlier one.
    ///
    /// A document listed twice is an error, because trec_eval rejects such runs.
    pub fn insert(&mut self, query_id: &str, docs: Vec<ScoredDoc>) -> Result<(), String> {
        let mut seen = HashSet::with_capacity(docs.len());
        if let Some(dup) = docs.iter().find(|d| !seen.insert(d.doc_id.as_str())) {
            return Err(format!(
                "document {:?} listed twice for query {query_id:?}",
                dup.doc_id
            ));
        }
        let qi = self.query_index_or_insert(query_id);
        self.queries[qi].docs = docs;
        Ok(())
    }

    /// The ranking of one query.
    pub fn get(&self, query_id: &str) -> Option<&QueryRun> {
        self.index.get(query_id).map(|&i| &self.queries[i])
    }

    /// All queries in first-seen order.
    pub fn queries(&self) -> &[QueryRun] {
        &self.queries
    }

    /// Number of queries.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether the run holds no query.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Writes the run as a TREC run file with ranks 1, 2, ... in stored order.
    ///
    /// Scores are written with Rust's shortest round-trip formatting, so reading the file back
    /// gives the same f64 values (an f32 score converted to f64 round-trips too).
    pub fn write(&self, path: impl AsRef<Path>, tag: &str) -> Result<()> {
        let path = path.as_ref();
        let unfit = |what: &str, value: &str| DataError::Content {
            path: path.to_path_buf(),
            problem: format!("{what} {value:?} is empty or holds whitespace; TREC columns cannot"),
        };
        let fits = |s: &str| !s.is_empty() && !s.chars().any(char::is_whitespace);
        if !fits(tag) {
            return Err(unfit("run tag", tag));
        }
        for q in &self.queries {
            if !fits(&q.query_id) {
                return Err(unfit("query id", &q.query_id));
            }
            if let Some(d) = q.docs.iter().find(|d| !fits(&d.doc_id)) {
                return Err(unfit("document id", &d.doc_id));
            }
        }
        let io = |e| DataError::io(path, e);
        let mut out = BufWriter::new(File::create(path).map_err(io)?);
        for q in &self.queries {
            for (rank, d) in q.docs.iter().enumerate() {
                writeln!(
                    out,
                    "{} Q0 {} {} {} {tag}",
                    q.query_id,
                    d.doc_id,
                    rank + 1,
                    d.score
                )
                .map_err(io)?;
            }
        }
        out.flush().map_err(io)
    }
}
