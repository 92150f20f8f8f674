//! A split's head inputs as training reads them: in memory, or token states in feature stores on
//! disk (`backbone.feature_store`), so that the training set is not bounded by RAM.

use nr_data::FeatureStore;

use super::inputs::{HeadInputs, TokenRows};
use super::standardize::Standardizer;

/// Head inputs of one split, read turn by turn through [`TokenRows`].
pub enum SplitRows {
    /// Every turn's states as f32 in RAM.
    Memory(HeadInputs),
    /// The split's cached parts as f16 feature stores, read a turn at a time.
    Stored(StoredRows),
}

impl SplitRows {
    /// Standardises the inputs: in place in memory, on every read from a store.
    pub fn standardize(&mut self, standardizer: &Standardizer) {
        match self {
            SplitRows::Memory(x) => standardizer.apply(x),
            SplitRows::Stored(rows) => rows.standardizer = Some(standardizer.clone()),
        }
    }

    /// The inputs when they are in memory (what closed-form fits need).
    pub fn in_memory(&self) -> Option<&HeadInputs> {
        match self {
            SplitRows::Memory(x) => Some(x),
            SplitRows::Stored(_) => None,
        }
    }

    fn rows(&self) -> &dyn TokenRows {
        match self {
            SplitRows::Memory(x) => x,
            SplitRows::Stored(rows) => rows,
        }
    }
}

impl TokenRows for SplitRows {
    fn layers(&self) -> usize {
        self.rows().layers()
    }
    fn dim(&self) -> usize {
        self.rows().dim()
    }
    fn len(&self) -> usize {
        self.rows().len()
    }
    fn tokens(&self, i: usize) -> usize {
        self.rows().tokens(i)
    }
    fn turn<'a>(&'a self, i: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        match self {
            SplitRows::Memory(x) => HeadInputs::turn(x, i),
            SplitRows::Stored(rows) => rows.turn(i, scratch),
        }
    }
}

/// Feature stores of consecutive parts of a split, one after the other, standardised on read.
pub struct StoredRows {
    parts: Vec<FeatureStore>,
    /// Index of each part's first turn, plus the total.
    first: Vec<usize>,
    layers: usize,
    dim: usize,
    standardizer: Option<Standardizer>,
}

impl StoredRows {
    /// The parts in order; they must share their layers and width.
    pub fn new(parts: Vec<FeatureStore>) -> anyhow::Result<Self> {
        let (layers, dim) = parts
            .first()
            .map(|p| (p.layers(), p.dim()))
            .ok_or_else(|| anyhow::anyhow!("a split on disk needs at least one feature store"))?;
        let mut first = vec![0];
        for p in &parts {
            anyhow::ensure!(
                (p.layers(), p.dim()) == (layers, dim),
                "feature stores of one split differ in shape: {} x {} and {layers} x {dim}",
                p.layers(),
                p.dim()
            );
            first.push(first.last().unwrap() + p.len());
        }
        Ok(Self {
            parts,
            first,
            layers,
            dim,
            standardizer: None,
        })
    }

    fn locate(&self, i: usize) -> (usize, usize) {
        let part = self.first.partition_point(|&f| f <= i) - 1;
        (part, i - self.first[part])
    }
}

impl TokenRows for StoredRows {
    fn layers(&self) -> usize {
        self.layers
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn len(&self) -> usize {
        *self.first.last().unwrap()
    }
    fn tokens(&self, i: usize) -> usize {
        let (p, j) = self.locate(i);
        self.parts[p].tokens(j)
    }
    fn turn<'a>(&'a self, i: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        let (p, j) = self.locate(i);
        self.parts[p].turn(j, scratch);
        if let Some(s) = &self.standardizer {
            s.apply_tokens(scratch);
        }
        scratch
    }
}
