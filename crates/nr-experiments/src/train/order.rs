//! Which rows form each training batch of an epoch.
//!
//! Token inputs (the mapper, attention pooling) pad every row of a batch to the batch's longest,
//! so rows of similar length are batched together: the standard length-bucketed sampler.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::native::TokenRows;

/// Batches per bucketing window: each window of shuffled rows is sorted by length before it is
/// cut into batches (wider windows pad less and mix less).
pub const BUCKET_BATCHES: usize = 16;

/// The batches of one epoch, drawn from `seed` alone. Rows are shuffled; where they differ in
/// length, each window of [`BUCKET_BATCHES`] batches is sorted by length (stable) and cut, and the
/// batches are shuffled again, so a batch pads to about its own rows' length. Rows of one length
/// (pooled inputs) keep the shuffled order, cut in `batch`es as they come.
pub fn epoch_batches<R: TokenRows + ?Sized>(x: &R, batch: usize, seed: u64) -> Vec<Vec<usize>> {
    let batch = batch.max(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.shuffle(&mut rng);
    if x.is_empty() || x.common_length().is_some() {
        return order.chunks(batch).map(<[usize]>::to_vec).collect();
    }
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(x.len().div_ceil(batch));
    for window in order.chunks_mut(batch * BUCKET_BATCHES) {
        window.sort_by_key(|&r| x.tokens(r));
        batches.extend(window.chunks(batch).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::HeadInputs;

    /// Token states a set of batches holds once padded (rows x the batch's longest row).
    fn padded_tokens(x: &HeadInputs, batches: &[Vec<usize>]) -> usize {
        batches
            .iter()
            .map(|b| b.len() * b.iter().map(|&r| x.tokens(r)).max().unwrap_or(0))
            .sum()
    }

    fn inputs(lengths: &[usize]) -> HeadInputs {
        let mut offsets = vec![0];
        for l in lengths {
            offsets.push(offsets.last().unwrap() + l);
        }
        let total = *offsets.last().unwrap();
        HeadInputs {
            layers: 1,
            dim: 1,
            offsets,
            data: vec![0.0; total],
        }
    }

    #[test]
    fn pooled_rows_are_the_seeded_shuffle_cut_in_order() {
        let x = inputs(&[1; 10]);
        let mut order: Vec<usize> = (0..10).collect();
        order.shuffle(&mut StdRng::seed_from_u64(5));
        let want: Vec<Vec<usize>> = order.chunks(4).map(<[usize]>::to_vec).collect();
        assert_eq!(epoch_batches(&x, 4, 5), want);
    }

    #[test]
    fn rows_of_two_lengths_are_batched_without_padding() {
        // 64 rows alternating 1 and 100 tokens, batches of 4: one window of 16 batches holds all
        // rows, so every batch is all-short or all-long: 32 x 1 + 32 x 100 = 3,232 padded tokens,
        // exactly the real ones; shuffled batches pad almost every batch to 100.
        let lengths: Vec<usize> = (0..64).map(|i| if i % 2 == 0 { 1 } else { 100 }).collect();
        let x = inputs(&lengths);
        let batches = epoch_batches(&x, 4, 3);
        assert_eq!(padded_tokens(&x, &batches), 3232);
        let mut rows: Vec<usize> = batches.concat();
        rows.sort_unstable();
        assert_eq!(rows, (0..64).collect::<Vec<_>>(), "every row once");
        assert!(batches.iter().all(|b| b.len() == 4));
        assert_eq!(
            batches,
            epoch_batches(&x, 4, 3),
            "drawn from the seed alone"
        );
        assert_ne!(batches, epoch_batches(&x, 4, 4));
    }

    #[test]
    fn windows_bound_how_far_a_row_moves_and_the_last_batch_may_be_short() {
        // 71 rows of lengths 1..=71, batches of 2: windows of 32 shuffled rows, the last of 7
        // rows, so 16 + 16 + 4 = 36 batches, one of them a single row.
        let x = inputs(&(1..=71).collect::<Vec<_>>());
        let batches = epoch_batches(&x, 2, 0);
        assert_eq!(batches.len(), 36);
        assert_eq!(batches.iter().filter(|b| b.len() == 1).count(), 1);
        let mut rows: Vec<usize> = batches.concat();
        rows.sort_unstable();
        assert_eq!(rows, (0..71).collect::<Vec<_>>());
        // Sorted within windows: inside each batch the rows are in ascending length.
        assert!(
            batches
                .iter()
                .all(|b| b.windows(2).all(|w| x.tokens(w[0]) <= x.tokens(w[1])))
        );
    }
}
