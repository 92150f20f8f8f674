//! Random unit vectors, any number of them, to measure an index at a scale no real collection
//! here reaches. Two models:
//! - [`Synthetic::new`]: a cluster centre plus a point of a shared low-dimensional latent space
//!   plus a little isotropic noise, normalised. Its latent part dominates, so the set is close
//!   to an isotropic Gaussian of `latent` dimensions: harder for a graph index than real
//!   embeddings (docs/scale.md).
//! - [`Synthetic::like`]: fitted to a real set of vectors (a smoothed bootstrap): a random real
//!   vector plus a Gaussian combination of the offsets to its nearest real neighbours,
//!   normalised. Each point keeps the local covariance of the real set where it is drawn, so
//!   the set inherits the real set's clusters and local intrinsic dimension.
//!
//! Row `i` depends only on the seed, the stream and `i`, so shards can be made independently
//! and in parallel.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{IndexError, Result, Vectors};

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

/// The shape of a set fitted to real vectors ([`Synthetic::like`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LikeSpec {
    /// Real neighbours whose offsets span each point's local Gaussian.
    pub neighbours: usize,
    /// Spread of a point around its real anchor, in units of the anchor's mean squared
    /// distance to those neighbours (1: as far as the neighbours are).
    pub spread: f32,
    pub seed: u64,
}

/// A synthetic set's fixed parts.
pub struct Synthetic {
    dim: usize,
    seed: u64,
    model: Model,
}

enum Model {
    Clusters {
        clusters: usize,
        centres: Vec<f32>,
        /// `[latent, dim]`.
        basis: Vec<f32>,
    },
    Like {
        /// The real vectors, row-major.
        anchors: Vec<f32>,
        /// `[anchors, k]`: each anchor's nearest other real vectors.
        neighbours: Vec<u32>,
        k: usize,
        spread: f32,
    },
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
            dim: spec.dim,
            seed: spec.seed,
            model: Model::Clusters {
                clusters: spec.clusters,
                centres,
                basis,
            },
        }
    }

    /// A model fitted to `real` (unit vectors; at least two): see the module's documentation.
    pub fn like(real: &Vectors, spec: &LikeSpec) -> Result<Self> {
        let n = real.len();
        if n < 2 || spec.neighbours == 0 {
            return Err(IndexError::Invalid(format!(
                "a synthetic set like {n} real vectors with {} neighbours each: needs two vectors and one neighbour",
                spec.neighbours
            )));
        }
        let k = spec.neighbours.min(n - 1);
        let hits = nr_eval::search::exact_search(&real.data, &real.data, real.dim, k + 1)
            .map_err(|e| IndexError::Invalid(e.to_string()))?;
        let mut neighbours = Vec::with_capacity(n * k);
        for (i, row) in hits.iter().enumerate() {
            let others = row.iter().map(|&(j, _)| j).filter(|&j| j != i).take(k);
            neighbours.extend(others.map(|j| j as u32));
        }
        Ok(Synthetic {
            dim: real.dim,
            seed: spec.seed,
            model: Model::Like {
                anchors: real.data.clone(),
                neighbours,
                k,
                spread: spec.spread,
            },
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows `rows` of `stream`, row-major.
    pub fn rows(&self, stream: Stream, rows: Range<usize>) -> Vec<f32> {
        let d = self.dim;
        let mut out = vec![0.0f32; rows.len() * d];
        let stream_id = match stream {
            Stream::Passages => 0u64,
            Stream::Queries => 1u64,
        };
        out.par_chunks_mut(d).zip(rows).for_each(|(v, i)| {
            let seed =
                self.seed ^ (stream_id << 62) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            match &self.model {
                Model::Clusters {
                    clusters,
                    centres,
                    basis,
                } => {
                    let c = rng.random_range(0..*clusters);
                    v.copy_from_slice(&centres[c * d..(c + 1) * d]);
                    for b in basis.chunks(d) {
                        let z = gaussian(&mut rng) * 0.9;
                        v.iter_mut().zip(b).for_each(|(x, b)| *x += z * b);
                    }
                    let noise = 0.15 / (d as f32).sqrt();
                    v.iter_mut().for_each(|x| *x += gaussian(&mut rng) * noise);
                }
                Model::Like {
                    anchors,
                    neighbours,
                    k,
                    spread,
                } => {
                    let a = rng.random_range(0..anchors.len() / d);
                    let anchor = &anchors[a * d..(a + 1) * d];
                    v.copy_from_slice(anchor);
                    // Weights ~ N(0, spread / k): the offset's covariance is `spread` times the
                    // mean outer product of the anchor's neighbour offsets.
                    let sd = (spread / *k as f32).sqrt();
                    for &j in &neighbours[a * k..(a + 1) * k] {
                        let w = gaussian(&mut rng) * sd;
                        let x = &anchors[j as usize * d..(j as usize + 1) * d];
                        v.iter_mut()
                            .zip(x.iter().zip(anchor))
                            .for_each(|(v, (x, a))| *v += w * (x - a));
                    }
                }
            }
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

    fn real() -> Vectors {
        // e1, (e1 + e2)/sqrt(2), e3: nearest other vectors (one each): 1, 0 and (a tie) 0.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let data = vec![1.0, 0.0, 0.0, h, h, 0.0, 0.0, 0.0, 1.0];
        Vectors::new(vec!["a".into(), "b".into(), "c".into()], 3, data).unwrap()
    }

    #[test]
    fn a_fitted_set_moves_each_real_vector_only_towards_its_neighbours() {
        let like = |spread| {
            let spec = LikeSpec {
                neighbours: 1,
                spread,
                seed: 3,
            };
            Synthetic::like(&real(), &spec).unwrap()
        };
        let is_real = |v: &[f32]| {
            real()
                .data
                .chunks(3)
                .any(|r| r.iter().zip(v).all(|(a, b)| (a - b).abs() < 1e-6))
        };
        // Without spread every row is one of the real vectors.
        let copies = like(0.0).rows(Stream::Passages, 0..50);
        for v in copies.chunks(3) {
            assert!(is_real(v), "{v:?}");
        }
        // With it, a row stays in the plane of its anchor and that anchor's neighbour: rows
        // drawn around a or b have no e3 part, rows drawn around c no e2 part.
        let rows = like(1.0).rows(Stream::Passages, 0..200);
        let (mut moved, mut around_c) = (0, 0);
        for v in rows.chunks(3) {
            let n: f32 = v.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-5, "{n}");
            assert!(v[1] == 0.0 || v[2] == 0.0, "{v:?}");
            around_c += usize::from(v[1] == 0.0 && v[2] > 0.5);
            moved += usize::from(!is_real(v));
        }
        assert!(moved == 200 && around_c > 30, "{moved} {around_c}");
        assert_eq!(
            like(1.0).rows(Stream::Passages, 100..200),
            rows[300..].to_vec()
        );
    }

    #[test]
    fn a_fitted_set_needs_two_real_vectors() {
        let one = Vectors::new(vec!["a".into()], 2, vec![1.0, 0.0]).unwrap();
        let spec = LikeSpec {
            neighbours: 4,
            spread: 1.0,
            seed: 0,
        };
        let err = Synthetic::like(&one, &spec).err().unwrap().to_string();
        assert!(err.contains("needs two vectors"), "{err}");
    }
}
