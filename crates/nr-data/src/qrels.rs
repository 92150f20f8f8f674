//! TREC qrels: `qid iter docno rel` lines, the relevance judgments of each query.
//!
//! Queries and their judgments keep file order, so a qrels file that groups each query's lines
//! (as QReCC's do) is written back byte for byte. Like trec_eval, a document judged twice for the
//! same query is an error; `#` comment lines and blank lines are skipped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{DataError, Result};

/// One judgment: a document and its relevance grade (> 0 relevant, 0 judged non-relevant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgment {
    /// The judged document.
    pub doc_id: String,
    /// Relevance grade; graded metrics (nDCG) use it as the gain.
    pub relevance: i32,
}

/// All judgments of one query, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryQrels {
    /// The query (QReCC: the turn id).
    pub query_id: String,
    judgments: Vec<Judgment>,
    by_doc: HashMap<String, usize>,
}

impl QueryQrels {
    /// The judgments in file order.
    pub fn judgments(&self) -> &[Judgment] {
        &self.judgments
    }

    /// The relevance grade of a document, `None` when it was not judged.
    pub fn relevance(&self, doc_id: &str) -> Option<i32> {
        self.by_doc
            .get(doc_id)
            .map(|&i| self.judgments[i].relevance)
    }

    /// How many documents have a grade of at least `level` (trec_eval's relevance level is 1).
    pub fn num_relevant(&self, level: i32) -> usize {
        self.judgments
            .iter()
            .filter(|j| j.relevance >= level)
            .count()
    }
}

/// Relevance judgments for a set of queries, in first-seen order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Qrels {
    queries: Vec<QueryQrels>,
    index: HashMap<String, usize>,
}

impl Qrels {
    /// An empty set of judgments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a TREC qrels file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses TREC qrels text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut qrels = Qrels::new();
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
            let [qid, _iter, doc, rel] = cols[..] else {
                return Err(line_err(format!(
                    "expected 4 columns `qid iter docno rel`, found {}",
                    cols.len()
                )));
            };
            let rel: i32 = rel
                .parse()
                .map_err(|_| line_err(format!("relevance {rel:?} is not an integer")))?;
            qrels.add(qid, doc, rel).map_err(line_err)?;
        }
        Ok(qrels)
    }

    /// Adds one judgment; judging the same document twice for a query is an error.
    pub fn add(&mut self, query_id: &str, doc_id: &str, relevance: i32) -> Result<(), String> {
        let qi = match self.index.get(query_id) {
            Some(&qi) => qi,
            None => {
                self.index.insert(query_id.to_string(), self.queries.len());
                self.queries.push(QueryQrels {
                    query_id: query_id.to_string(),
                    ..QueryQrels::default()
                });
                self.queries.len() - 1
            }
        };
        let q = &mut self.queries[qi];
        if q.by_doc.contains_key(doc_id) {
            return Err(format!(
                "document {doc_id:?} judged twice for query {query_id:?}"
            ));
        }
        q.by_doc.insert(doc_id.to_string(), q.judgments.len());
        q.judgments.push(Judgment {
            doc_id: doc_id.to_string(),
            relevance,
        });
        Ok(())
    }

    /// The judgments of one query.
    pub fn get(&self, query_id: &str) -> Option<&QueryQrels> {
        self.index.get(query_id).map(|&i| &self.queries[i])
    }

    /// All queries in first-seen order.
    pub fn queries(&self) -> &[QueryQrels] {
        &self.queries
    }

    /// Number of queries with at least one judgment.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether no query has a judgment.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// The qrels as TREC text: `qid 0 docno rel`, one line per judgment, in stored order.
    pub fn to_trec_string(&self) -> String {
        let mut out = String::new();
        for q in &self.queries {
            for j in &q.judgments {
                out.push_str(&format!("{} 0 {} {}\n", q.query_id, j.doc_id, j.relevance));
            }
        }
        out
    }

    /// Writes the qrels as a TREC qrels file.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |e| DataError::io(path, e);
        let mut out = BufWriter::new(File::create(path).map_err(io)?);
        out.write_all(self.to_trec_string().as_bytes())
            .map_err(io)?;
        out.flush().map_err(io)
    }
}
