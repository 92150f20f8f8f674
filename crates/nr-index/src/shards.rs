//! A collection cut into `N` contiguous shards: shard `I` is written by whoever runs it (one job
//! array task each), reruns skip finished shards, and [`verify_shards`] checks that the set covers
//! every id exactly once.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::meta::VectorMeta;
use crate::parquet::{parquet_files, read_ids, read_meta};
use crate::{IndexError, Result};

/// Shard `index` (0-based) of `count`; written `I/N` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("shard `{s}`: expected I/N with 0 <= I < N (e.g. 3/16)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        Shard::new(index, count).ok_or_else(bad)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Shard `index` of `count`, when `index < count`.
    pub fn new(index: usize, count: usize) -> Option<Self> {
        (index < count).then_some(Shard { index, count })
    }

    /// Every shard of `count`.
    pub fn all(count: usize) -> impl Iterator<Item = Shard> {
        (0..count).map(move |index| Shard { index, count })
    }

    /// The rows of a `total`-row collection this shard covers: contiguous, sizes differing by at
    /// most one, together exactly `0..total`.
    pub fn rows(&self, total: usize) -> Range<usize> {
        let start = |i: usize| i * total / self.count;
        start(self.index)..start(self.index + 1)
    }

    /// The shard's file name: `part-00003-of-00016.parquet`.
    pub fn file_name(&self) -> String {
        format!("part-{:05}-of-{:05}.parquet", self.index, self.count)
    }
}

/// What [`verify_shards`] found in a complete set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    pub files: usize,
    pub shards: usize,
    pub rows: usize,
    pub meta: VectorMeta,
}

/// Checks a folder of shards: one set (metadata agrees), every shard of `N` present once with the
/// rows its plan gives, every id once, and, when `expected` ids are given, exactly those ids.
pub fn verify_shards(dir: &Path, expected: Option<&[String]>) -> Result<Coverage> {
    let files = parquet_files(dir)?;
    let mut first: Option<(PathBuf, VectorMeta)> = None;
    let mut seen_shards: Vec<Option<PathBuf>> = Vec::new();
    let mut ids_seen: HashSet<String> = HashSet::new();
    let mut rows = 0usize;
    for file in &files {
        let meta = read_meta(file)?.ok_or_else(|| {
            IndexError::file(
                file,
                "no `native_retrieval` metadata: not a shard written by nr",
            )
        })?;
        let shard = meta.shard.ok_or_else(|| {
            IndexError::file(file, "metadata field `shard` is missing: not a sharded set")
        })?;
        match &first {
            None => {
                seen_shards = vec![None; shard.count];
                first = Some((file.clone(), meta.clone()));
            }
            Some((first_file, first_meta)) => {
                if !first_meta.same_set(&meta)
                    || first_meta.shard.map(|s| s.count) != Some(shard.count)
                {
                    return Err(IndexError::file(
                        file,
                        format!(
                            "metadata differs from {}'s: not one set of shards",
                            first_file.display()
                        ),
                    ));
                }
            }
        }
        if let Some(other) = &seen_shards[shard.index] {
            return Err(IndexError::file(
                file,
                format!("shard {shard} is also in {}", other.display()),
            ));
        }
        seen_shards[shard.index] = Some(file.clone());
        let ids = read_ids(file)?;
        if let Some(source) = &meta.source {
            let want = shard.rows(source.rows).len();
            if ids.len() != want {
                return Err(IndexError::file(
                    file,
                    format!(
                        "shard {shard} holds {} rows, its plan over {} texts gives {want}",
                        ids.len(),
                        source.rows
                    ),
                ));
            }
        }
        rows += ids.len();
        for id in ids {
            if !ids_seen.insert(id.clone()) {
                return Err(IndexError::file(
                    file,
                    format!("id `{id}` is in more than one row"),
                ));
            }
        }
    }
    let (_, meta) = first.expect("parquet_files returns at least one file");
    let missing: Vec<String> = seen_shards
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_none())
        .map(|(i, _)| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(IndexError::file(
            dir,
            format!(
                "{} of {} shards missing: {}",
                missing.len(),
                seen_shards.len(),
                abbreviate(&missing)
            ),
        ));
    }
    if let Some(source) = &meta.source
        && rows != source.rows
    {
        return Err(IndexError::file(
            dir,
            format!("{rows} rows for a source of {}", source.rows),
        ));
    }
    if let Some(expected) = expected {
        let want: HashSet<&str> = expected.iter().map(String::as_str).collect();
        let absent: Vec<String> = want
            .iter()
            .filter(|id| !ids_seen.contains(**id))
            .map(|s| s.to_string())
            .collect();
        let extra: Vec<String> = ids_seen
            .iter()
            .filter(|id| !want.contains(id.as_str()))
            .cloned()
            .collect();
        if !absent.is_empty() || !extra.is_empty() {
            return Err(IndexError::file(
                dir,
                format!(
                    "{} ids of the collection have no vector ({}), {} vectors are of ids not in it ({})",
                    absent.len(),
                    abbreviate(&absent),
                    extra.len(),
                    abbreviate(&extra)
                ),
            ));
        }
    }
    Ok(Coverage {
        files: files.len(),
        shards: seen_shards.len(),
        rows,
        meta,
    })
}

fn abbreviate(items: &[String]) -> String {
    let mut s = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        s.push_str(", ...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_row_once_with_balanced_sizes() {
        for (total, count) in [(10, 3), (23_290, 16), (5, 8), (0, 2)] {
            let ranges: Vec<_> = Shard::all(count).map(|s| s.rows(total)).collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end, total);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
            assert!(
                sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                "{sizes:?}"
            );
        }
        assert_eq!(Shard::new(1, 3).unwrap().rows(10), 3..6);
    }

    #[test]
    fn shards_parse_from_i_of_n() {
        assert_eq!(
            "3/16".parse::<Shard>().unwrap(),
            Shard {
                index: 3,
                count: 16
            }
        );
        for bad in ["16/16", "3", "a/4", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(
            Shard::new(3, 16).unwrap().file_name(),
            "part-00003-of-00016.parquet"
        );
    }
}
