//! An approximate nearest-neighbour index: USearch's HNSW graph over inner product, saved to one
//! file (`NAME`, plus `NAME.json`: what it indexes, `NAME.ids`: row -> id, and with re-scoring
//! `NAME.f16`: the vectors in f16) and served either loaded or memory-mapped
//! ([`HnswIndex::open`]), so a collection's vectors need not fit in RAM.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::atomic::temp_path;
use crate::index_files::{read_ids, read_sidecar, write_ids, write_sidecar};
pub use crate::index_files::{rescore_path, sidecar_paths};
use crate::meta::VectorMeta;
use crate::parquet::{ROW_GROUP, count_rows, for_each_batch};
use crate::rescore::{RescoreStore, RescoreWriter};
use crate::vectors::check_query_rows;
use crate::{IndexError, IndexKind, Result, Vectors};

/// How vectors are stored inside the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HnswStorage {
    F32,
    /// Half the memory of f32; recall barely moves for unit vectors (docs/scale.md).
    F16,
    /// A quarter of f32's memory and the fastest distances; coarse scores, which `rescore`
    /// replaces by f16 ones.
    #[default]
    I8,
}

impl std::str::FromStr for HnswStorage {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(HnswStorage::F32),
            "f16" => Ok(HnswStorage::F16),
            "i8" => Ok(HnswStorage::I8),
            other => Err(format!("unknown index storage `{other}` (f32, f16 or i8)")),
        }
    }
}

/// The graph's shape and search effort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HnswParams {
    /// Links per node (HNSW's M).
    pub connectivity: usize,
    /// Candidates kept while inserting (efConstruction).
    pub expansion_add: usize,
    /// Candidates kept while searching (ef): recall against speed.
    pub expansion_search: usize,
    pub storage: HnswStorage,
    /// Re-score the graph's candidates (ef of them) with an f16 copy of the vectors kept beside
    /// the graph: rankings from f16 scores whatever the graph's storage.
    pub rescore: bool,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            connectivity: 32,
            expansion_add: 200,
            expansion_search: 64,
            storage: HnswStorage::I8,
            rescore: true,
        }
    }
}

/// What `NAME.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HnswSidecar {
    #[serde(default)]
    pub kind: IndexKind,
    pub dim: usize,
    pub rows: usize,
    pub params: HnswParams,
    /// The vectors' metadata, when they had it.
    pub vectors: Option<VectorMeta>,
}

/// An HNSW index with the ids of its rows.
pub struct HnswIndex {
    inner: Index,
    /// Id of row `i` (the key of the graph's node `i`).
    pub ids: Vec<String>,
    pub sidecar: HnswSidecar,
    /// The f16 vectors that re-score candidates (`params.rescore`), unless still on their way to
    /// disk.
    rescore: Option<RescoreStore>,
}

fn hnsw_err(path: &Path, e: impl std::fmt::Display) -> IndexError {
    IndexError::Hnsw {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

fn new_index(path: &Path, dim: usize, params: &HnswParams, capacity: usize) -> Result<Index> {
    let options = IndexOptions {
        dimensions: dim,
        metric: MetricKind::IP,
        quantization: match params.storage {
            HnswStorage::F32 => ScalarKind::F32,
            HnswStorage::F16 => ScalarKind::F16,
            HnswStorage::I8 => ScalarKind::I8,
        },
        connectivity: params.connectivity,
        expansion_add: params.expansion_add,
        expansion_search: params.expansion_search,
        multi: false,
    };
    let index = Index::new(&options).map_err(|e| hnsw_err(path, e))?;
    index
        .reserve_capacity_and_threads(capacity.max(1), rayon::current_num_threads())
        .map_err(|e| hnsw_err(path, e))?;
    Ok(index)
}

fn add_rows(index: &Index, path: &Path, first_key: usize, dim: usize, data: &[f32]) -> Result<()> {
    data.par_chunks(dim).enumerate().try_for_each(|(i, row)| {
        index
            .add((first_key + i) as u64, row)
            .map_err(|e| hnsw_err(path, e))
    })
}

impl HnswIndex {
    /// Indexes vectors held in memory (a collection that fits in RAM).
    pub fn from_vectors(vectors: &Vectors, params: &HnswParams) -> Result<Self> {
        let here = Path::new("(in memory)");
        let inner = new_index(here, vectors.dim, params, vectors.len())?;
        add_rows(&inner, here, 0, vectors.dim, &vectors.data)?;
        Ok(HnswIndex {
            inner,
            ids: vectors.ids.clone(),
            sidecar: HnswSidecar {
                kind: IndexKind::Hnsw,
                dim: vectors.dim,
                rows: vectors.len(),
                params: params.clone(),
                vectors: None,
            },
            rescore: params
                .rescore
                .then(|| RescoreStore::from_f32(&vectors.data, vectors.dim)),
        })
    }

    /// Builds the index of the Parquet vectors at `vectors` (a file or a folder of shards) into
    /// the file `out`, streaming one batch at a time; `progress(done, total)` after each batch.
    /// Every file is written atomically: a killed build leaves no index.
    pub fn build(
        vectors: &Path,
        out: &Path,
        params: &HnswParams,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<HnswSidecar> {
        let total = count_rows(vectors)?;
        let mut index: Option<Index> = None;
        let mut ids: Vec<String> = Vec::with_capacity(total);
        let mut dim = 0;
        let mut set_meta: Option<VectorMeta> = None;
        let mut rescore = params
            .rescore
            .then(|| RescoreWriter::create(&rescore_path(out)))
            .transpose()?;
        for_each_batch(vectors, ROW_GROUP, |file, meta, batch| {
            if index.is_none() {
                dim = batch.dim;
                set_meta = meta.cloned().map(|m| VectorMeta { shard: None, ..m });
                index = Some(new_index(out, dim, params, total)?);
            } else if batch.dim != dim {
                return Err(IndexError::file(
                    file,
                    format!(
                        "{}-dimensional vectors after {dim}-dimensional ones",
                        batch.dim
                    ),
                ));
            }
            add_rows(
                index.as_ref().expect("made above"),
                out,
                ids.len(),
                dim,
                &batch.data,
            )?;
            if let Some(w) = rescore.as_mut() {
                w.append(&batch.data)?;
            }
            ids.extend(batch.ids);
            progress(ids.len(), total);
            Ok(())
        })?;
        let index = index.ok_or_else(|| IndexError::file(vectors, "no vectors"))?;
        if let Some(w) = rescore {
            w.finish()?;
        }
        let sidecar = HnswSidecar {
            kind: IndexKind::Hnsw,
            dim,
            rows: ids.len(),
            params: params.clone(),
            vectors: set_meta,
        };
        let built = HnswIndex {
            inner: index,
            ids,
            sidecar: sidecar.clone(),
            rescore: None, // written above
        };
        built.save(out)?;
        Ok(sidecar)
    }

    /// Saves the graph, its re-scoring vectors, its ids and its sidecar, each atomically (ids and
    /// sidecar last: an index without its sidecar is never opened).
    pub fn save(&self, out: &Path) -> Result<()> {
        let (json, ids) = sidecar_paths(out);
        if let Some(store) = &self.rescore {
            let mut w = RescoreWriter::create(&rescore_path(out))?;
            w.append_f16(store.rows())?;
            w.finish()?;
        }
        let tmp = temp_path(out);
        let tmp_str = tmp
            .to_str()
            .ok_or_else(|| IndexError::file(out, "path is not UTF-8"))?;
        self.inner.save(tmp_str).map_err(|e| hnsw_err(out, e))?;
        std::fs::rename(&tmp, out).map_err(|e| IndexError::io(out, e))?;
        write_ids(&ids, &self.ids)?;
        write_sidecar(&json, &self.sidecar)
    }

    /// Opens a saved index; `mmap`: serve it from the file (the OS pages vectors in as searches
    /// touch them) instead of reading it into memory.
    pub fn open(path: &Path, mmap: bool) -> Result<Self> {
        let (json, ids_path) = sidecar_paths(path);
        let sidecar: HnswSidecar = read_sidecar(&json)?;
        let ids = read_ids(&ids_path, sidecar.rows)?;
        let inner = new_index(path, sidecar.dim, &sidecar.params, 0)?;
        let path_str = path
            .to_str()
            .ok_or_else(|| IndexError::file(path, "path is not UTF-8"))?;
        if mmap {
            inner.view(path_str)
        } else {
            inner.load(path_str)
        }
        .map_err(|e| hnsw_err(path, e))?;
        if inner.size() != sidecar.rows || inner.dimensions() != sidecar.dim {
            return Err(hnsw_err(
                path,
                format!(
                    "holds {} vectors of {} dimensions, the sidecar says {} of {}",
                    inner.size(),
                    inner.dimensions(),
                    sidecar.rows,
                    sidecar.dim
                ),
            ));
        }
        inner
            .reserve_capacity_and_threads(sidecar.rows, rayon::current_num_threads())
            .ok();
        let rescore = sidecar
            .params
            .rescore
            .then(|| RescoreStore::open(&rescore_path(path), sidecar.rows, sidecar.dim, mmap))
            .transpose()?;
        Ok(HnswIndex {
            inner,
            ids,
            sidecar,
            rescore,
        })
    }

    /// Number of indexed vectors.
    pub fn len(&self) -> usize {
        self.sidecar.rows
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.sidecar.rows == 0
    }

    /// Width of the indexed vectors.
    pub fn dim(&self) -> usize {
        self.sidecar.dim
    }

    /// Sets the search effort (ef) of later searches.
    pub fn set_expansion_search(&mut self, ef: usize) {
        self.inner.change_expansion_search(ef);
        self.sidecar.params.expansion_search = ef;
    }

    /// The `k` rows with the largest inner product for each query (`[n, dim]` row-major) as
    /// `(row, score)`, best first; queries run in parallel.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
        let dim = self.sidecar.dim;
        check_query_rows(queries, dim)?;
        let here = Path::new("(search)");
        let candidates = match &self.rescore {
            Some(_) => k.max(self.sidecar.params.expansion_search),
            None => k,
        };
        queries
            .par_chunks(dim)
            .map(|q| {
                let m = self
                    .inner
                    .search(q, candidates)
                    .map_err(|e| hnsw_err(here, e))?;
                Ok(match &self.rescore {
                    Some(store) => {
                        let rows: Vec<usize> = m.keys.iter().map(|&key| key as usize).collect();
                        store.rerank(q, &rows, k)
                    }
                    // USearch's inner-product distance is 1 - q.p.
                    None => m
                        .keys
                        .iter()
                        .zip(&m.distances)
                        .map(|(&key, &d)| (key as usize, 1.0 - d))
                        .collect(),
                })
            })
            .collect()
    }
}
