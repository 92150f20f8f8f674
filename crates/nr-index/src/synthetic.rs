//! Clustered random unit vectors, any number of them, to measure an index at a scale no real
//! collection here reaches. Each vector is a cluster centre plus a point of a low-dimensional
//! latent space plus a little isotropic noise, normalised: like sentence embeddings, the set has
//! clusters and an intrinsic dimension far below its width (uniform noise in 384 dimensions, the
//! hardest case for any graph index, looks like no real embedding set). Row `i` depends only on
//! the seed, the stream and `i`, so shards can be made independently and in parallel.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// The shape of a synthetic set.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    pub dim: usize,
    pub clusters: usize,
    /// Dimension of the latent space around each centre.
    pub latent: usize,
    pub seed: u64,
}

/// Which rows: the collection, or queries drawn from the same distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Passages,
    Queries,
}

/// A synthetic set's fixed parts: the centres and the latent basis.
pub struct Synthetic {
    spec: SyntheticSpec,
    centres: Vec<f32>,
    basis: Vec<f32>,
}

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    // Box-Muller.
    let u: f32 = rng.random_range(f32::EPSILON..1.0);
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn normalise(v: &mut [f32]) {
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= n);
}

impl Synthetic {
    pub fn new(spec: SyntheticSpec) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let mut centres: Vec<f32> = (0..spec.clusters * spec.dim)
            .map(|_| gaussian(&mut rng))
            .collect();
        centres.chunks_mut(spec.dim).for_each(normalise);
        let scale = 1.0 / (spec.dim as f32).sqrt();
        let basis = (0..spec.latent * spec.dim)
            .map(|_| gaussian(&mut rng) * scale)
            .collect();
        Synthetic {
            spec,
            centres,
            basis,
        }
    }

    pub fn dim(&self) -> usize {
        self.spec.dim
    }

    /// Rows `rows` of `stream`, row-major.
    pub fn rows(&self, stream: Stream, rows: Range<usize>) -> Vec<f32> {
        let d = self.spec.dim;
        let mut out = vec![0.0f32; rows.len() * d];
        let stream_id = match stream {
            Stream::Passages => 0u64,
            Stream::Queries => 1u64,
        };
        out.par_chunks_mut(d).zip(rows).for_each(|(v, i)| {
            let seed =
                self.spec.seed ^ (stream_id << 62) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let c = rng.random_range(0..self.spec.clusters);
            v.copy_from_slice(&self.centres[c * d..(c + 1) * d]);
            for l in 0..self.spec.latent {
                let z = gaussian(&mut rng) * 0.9;
                let b = &self.basis[l * d..(l + 1) * d];
                v.iter_mut().zip(b).for_each(|(x, b)| *x += z * b);
            }
            let noise = 0.15 / (d as f32).sqrt();
            v.iter_mut().for_each(|x| *x += gaussian(&mut rng) * noise);
            normalise(v);
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_unit_length_and_do_not_depend_on_how_they_are_cut() {
        let s = Synthetic::new(SyntheticSpec {
            dim: 16,
            clusters: 4,
            latent: 3,
            seed: 7,
        });
        let all = s.rows(Stream::Passages, 0..10);
        let parts = [
            s.rows(Stream::Passages, 0..4),
            s.rows(Stream::Passages, 4..10),
        ]
        .concat();
        assert_eq!(all, parts);
        for v in all.chunks(16) {
            let n: f32 = v.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-5, "{n}");
        }
        assert_ne!(s.rows(Stream::Queries, 0..1), all[..16].to_vec());
    }
}
