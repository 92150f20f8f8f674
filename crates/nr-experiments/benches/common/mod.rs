//! What every benchmark of the suite shares: where the models and data are, repeated timings, and
//! the JSON file each one writes to `results/bench/<name>.json` (read by `bench/report.py`).
#![allow(dead_code)] // each bench uses part of it

use std::path::PathBuf;
use std::time::Instant;

use nr_experiments::atomic_file::write_atomic;
use serde::Serialize;

/// The repository root.
pub fn root() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .nth(2)
        .expect("crates/<name> sits two levels below the root")
        .to_path_buf()
}

/// A file under `models/` (fetched by `just models`), or a panic that says so.
pub fn model(name: &str) -> PathBuf {
    let path = root().join("models").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `just models` first",
        path.display()
    );
    path
}

/// A file of the offline QReCC layout (`just data` links or builds `data/qrecc-offline`).
pub fn qrecc(name: &str) -> PathBuf {
    let path = root().join("data/qrecc-offline").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `just data` first",
        path.display()
    );
    path
}

/// An environment variable as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[allow(unused_imports)] // used by the search bench only
pub use nr_experiments::throughput::unit_rows;

/// Seconds taken by `f`.
pub fn seconds(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// One measured case: the value of every run, in `unit`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub case: String,
    pub unit: String,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: Vec<f64>,
    /// Peers this row is held against, beyond the reference row of the same case (see
    /// [`Row::against`]); `bench/report.py` pairs them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compare: Vec<Comparison>,
}

/// ours / the fastest of some reference cases (rows of `results/bench/<bench>.reference*.json`),
/// with a goal.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub name: String,
    pub cases: Vec<String>,
    pub target: Option<f64>,
}

impl Row {
    /// This row compared with the fastest of the reference `cases` (the first comparison is the
    /// row's `ours_over_reference` in results/bench.json).
    pub fn against(mut self, name: &str, cases: &[&str], target: Option<f64>) -> Self {
        self.compare.push(Comparison {
            name: name.into(),
            cases: cases.iter().map(|c| c.to_string()).collect(),
            target,
        });
        self
    }

    pub fn new(case: impl Into<String>, unit: &str, runs: Vec<f64>) -> Self {
        assert!(!runs.is_empty(), "a row needs at least one run");
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Self {
            case: case.into(),
            unit: unit.into(),
            median,
            min: sorted[0],
            max: sorted[n - 1],
            runs,
            compare: Vec::new(),
        }
    }
}

/// A ratio between two rows of one benchmark, with the goal it is held to (`value >= target`).
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub name: String,
    pub value: f64,
    pub target: Option<f64>,
}

/// What one benchmark writes.
#[derive(Debug, Clone, Serialize)]
pub struct BenchFile {
    pub bench: String,
    /// The stack that was measured (ours: backend and threads).
    pub stack: String,
    /// The workload, in words.
    pub workload: String,
    pub rows: Vec<Row>,
    /// Ratios within this benchmark.
    pub ratios: Vec<Ratio>,
    /// Goal for ours / reference of the same case, when `bench/` has a reference script.
    pub target_vs_reference: Option<f64>,
}

/// Seconds since the Unix epoch, stamped on each result file by [`BenchFile::finish`].
fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl BenchFile {
    /// Prints the rows as a Markdown table and writes `results/bench/<bench>.json` (temp file +
    /// rename, so a crashed run never leaves half a file).
    pub fn finish(&self) {
        println!("\n{}: {}\n{}\n", self.bench, self.workload, self.stack);
        println!("| case | median | min | max | unit |");
        println!("|---|---|---|---|---|");
        for r in &self.rows {
            println!(
                "| {} | {:.4} | {:.4} | {:.4} | {} |",
                r.case, r.median, r.min, r.max, r.unit
            );
        }
        for r in &self.ratios {
            println!(
                "{}: {:.2}{}",
                r.name,
                r.value,
                r.target
                    .map_or(String::new(), |t| format!(" (goal >= {t})"))
            );
        }
        let path = root()
            .join("results/bench")
            .join(format!("{}.json", self.bench));
        let mut json = serde_json::to_value(self).unwrap();
        json["unix_time"] = unix_time().into();
        write_atomic(&path, &serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        println!("wrote {}", path.display());
    }
}

/// Rayon's threads in this process.
pub fn threads() -> usize {
    rayon::current_num_threads()
}
