//! Synthetic training data for trainer tests: passages, targets and a head's metadata.

use nr_experiments::train::targets::TrainTargets;
use nr_experiments::vectors::Vectors;
use nr_head::{BackboneInfo, HeadMeta, TeacherInfo};
use rand::Rng;
use rand::rngs::StdRng;

/// Values uniform in [-1, 1).
pub fn uniform(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// `passages` random passages `p0..` of width `out`, and targets for `turns` turns: a random
/// teacher query each, gold passage `i % passages`, and `candidates` candidates from the gold on
/// with scores 1.0, 0.9, ...
pub fn targets(
    rng: &mut StdRng,
    turns: usize,
    passages: usize,
    out: usize,
    candidates: usize,
) -> (Vectors, TrainTargets) {
    let vectors = Vectors {
        ids: (0..passages).map(|i| format!("p{i}")).collect(),
        dim: out,
        data: uniform(rng, passages * out),
    };
    let y = TrainTargets {
        teacher_query: uniform(rng, turns * out),
        dim: out,
        positive: (0..turns).map(|i| Some(i % passages)).collect(),
        candidates: (0..turns)
            .map(|i| {
                (0..candidates)
                    .map(|k| ((i + k) % passages, 1.0 - k as f32 * 0.1))
                    .collect()
            })
            .collect(),
    };
    (vectors, y)
}

/// Metadata of a head over a synthetic backbone of width `dim` and teacher of width `out`.
pub fn meta(dim: usize, out: usize, source: &str) -> HeadMeta {
    HeadMeta {
        backbone: BackboneInfo {
            name: "synthetic".into(),
            hidden_size: dim,
            layers: vec![1],
            source: source.into(),
        },
        teacher: TeacherInfo {
            name: "synthetic".into(),
            dim: out,
        },
    }
}
