//! Passage collections in Pyserini jsonl: one `{"id": ..., "contents": ...}` object per line.
//!
//! A collection is one `.jsonl` file or a folder of them (searched recursively, files taken in
//! sorted path order, as the official QReCC collection ships as many files). [`PassageReader`]
//! streams passages one line at a time so that encoders can work through collections larger than
//! memory; [`read_collection`] collects them for small collections.
//! Extra fields on a line are ignored (Pyserini allows them); blank lines are skipped.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// One passage of a collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// The passage id as used in qrels and run files.
    pub id: String,
    /// The passage text.
    pub contents: String,
}

/// Streams the passages of a jsonl file or a folder of jsonl files, in order.
pub struct PassageReader {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(PathBuf, BufReader<File>, usize)>,
    line: String,
}

impl PassageReader {
    /// Opens a `.jsonl` file or a folder holding `.jsonl` files (recursively).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
        let files = if meta.is_dir() {
            let mut files = Vec::new();
            collect_jsonl_files(path, &mut files)?;
            if files.is_empty() {
                return Err(DataError::Content {
                    path: path.to_path_buf(),
                    problem: "folder holds no .jsonl files".to_string(),
                });
            }
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        Ok(PassageReader {
            files: files.into_iter(),
            current: None,
            line: String::new(),
        })
    }

    /// Reads the next passage, or `None` after the last line of the last file.
    fn next_passage(&mut self) -> Result<Option<Passage>> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.next() else {
                    return Ok(None);
                };
                let file = File::open(&path).map_err(|e| DataError::io(&path, e))?;
                self.current = Some((path, BufReader::with_capacity(1 << 20, file), 0));
            }
            let (path, reader, line_no) = self.current.as_mut().expect("opened above");
            self.line.clear();
            let n = reader
                .read_line(&mut self.line)
                .map_err(|e| DataError::io(path.as_path(), e))?;
            if n == 0 {
                self.current = None;
                continue;
            }
            *line_no += 1;
            if self.line.trim().is_empty() {
                continue;
            }
            let passage: Passage =
                serde_json::from_str(&self.line).map_err(|e| DataError::Line {
                    path: path.clone(),
                    line: *line_no,
                    problem: format!("not a {{\"id\", \"contents\"}} object: {e}"),
                })?;
            return Ok(Some(passage));
        }
    }
}

impl PassageReader {
    /// The file and line of the passage read last (`None` before the first one).
    pub fn position(&self) -> Option<(&Path, usize)> {
        self.current
            .as_ref()
            .map(|(path, _, line)| (path.as_path(), *line))
    }
}

impl Iterator for PassageReader {
    type Item = Result<Passage>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_passage() {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => None,
            Err(e) => {
                // Stop after the first error: later lines of a broken file say nothing reliable.
                self.files = Vec::new().into_iter();
                self.current = None;
                Some(Err(e))
            }
        }
    }
}

fn collect_jsonl_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| DataError::io(&path, e))?;
        if file_type.is_dir() {
            collect_jsonl_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "jsonl") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a whole collection into memory, rejecting duplicate ids (they would make qrels ambiguous)
/// with the file and line of the second occurrence and the line of the first.
pub fn read_collection(path: impl AsRef<Path>) -> Result<Vec<Passage>> {
    let mut passages = Vec::new();
    read_unique_passages(path.as_ref(), |p| passages.push(p))?;
    Ok(passages)
}

/// Streams the passages of a collection to `keep`, failing on the first line that is malformed or
/// repeats an earlier passage's id (naming both lines).
pub fn read_unique_passages(path: &Path, mut keep: impl FnMut(Passage)) -> Result<()> {
    let mut reader = PassageReader::open(path)?;
    let mut seen: std::collections::HashMap<String, (PathBuf, usize)> =
        std::collections::HashMap::new();
    while let Some(passage) = reader.next() {
        let passage = passage?;
        let (file, line) = reader
            .position()
            .map(|(f, l)| (f.to_path_buf(), l))
            .unwrap_or((path.to_path_buf(), 0));
        if let Some((first_file, first_line)) = seen.get(&passage.id) {
            let first = if *first_file == file {
                format!("line {first_line}")
            } else {
                format!("{}:{first_line}", first_file.display())
            };
            return Err(DataError::Line {
                path: file,
                line,
                problem: format!("duplicate passage id {:?} (first at {first})", passage.id),
            });
        }
        seen.insert(passage.id.clone(), (file, line));
        keep(passage);
    }
    Ok(())
}

/// Writes passages as Pyserini jsonl, one object per line.
pub fn write_collection<'a>(
    path: impl AsRef<Path>,
    passages: impl IntoIterator<Item = &'a Passage>,
) -> Result<()> {
    let path = path.as_ref();
    let io = |e| DataError::io(path, e);
    let mut out = BufWriter::new(File::create(path).map_err(io)?);
    for p in passages {
        serde_json::to_writer(&mut out, p).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)
}
