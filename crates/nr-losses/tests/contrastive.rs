//! InfoNCE: hand-computed values, masking, the monotonic invariant, gradients; positive and hard
//! negative selection.

mod common;

use common::*;
use nr_losses::{HardNegatives, InfoNce, LossError, hard_negative_keep, positive_passage};

fn nce(temperature: f32, in_batch: bool) -> InfoNce {
    InfoNce {
        temperature,
        in_batch,
    }
}

#[test]
fn one_positive_one_negative_matches_hand_value() {
    let d = cpu();
    // Scores: positive 1, negative 0, tau 1 -> -log(e / (e + 1)) = log(1 + e^-1).
    let hard = HardNegatives {
        vectors: t3(&[0.0, 1.0], [1, 1, 2], &d),
        keep: t2(&[1.0], [1, 1], &d),
    };
    let s = t2(&[1.0, 0.0], [1, 2], &d);
    let loss = nce(1.0, false).loss(s.clone(), s, Some(hard)).unwrap();
    let want = (1.0 + (-1.0f64).exp()).ln();
    assert!((scalar(loss) - want).abs() < 1e-6);
}

#[test]
fn in_batch_negatives_match_hand_value() {
    let d = cpu();
    // tau = 0.5. Row 0: positive 1/0.5 = 2, in-batch 0.6/0.5 = 1.2.
    // Row 1: positive 0.8/0.5 = 1.6, in-batch 0.
    let s = t2(&[1.0, 0.0, 0.0, 1.0], [2, 2], &d);
    let p = t2(&[1.0, 0.0, 0.6, 0.8], [2, 2], &d);
    let loss = scalar(nce(0.5, true).loss(s, p, None).unwrap());
    let l0 = -2.0 + (2.0f64.exp() + 1.2f64.exp()).ln();
    let l1 = -1.6 + (1.6f64.exp() + 1.0).ln();
    assert!((loss - (l0 + l1) / 2.0).abs() < 1e-6, "{loss}");
    assert!((loss - 0.277_500_703).abs() < 1e-6);
}

#[test]
fn a_masked_negative_counts_as_absent() {
    let d = cpu();
    let mut rng = Rng::new(3);
    let (s, p, n) = (
        rng.unit_rows(2, 4),
        rng.unit_rows(2, 4),
        rng.unit_rows(2 * 3, 4),
    );
    // Keep the first two negatives of each row; the third is masked.
    let keep3 = t2(&[1.0, 1.0, 0.0, 1.0, 1.0, 0.0], [2, 3], &d);
    let masked = HardNegatives {
        vectors: t3(&n, [2, 3, 4], &d),
        keep: keep3,
    };
    let two: Vec<f64> = n
        .chunks(4)
        .enumerate()
        .filter(|(i, _)| i % 3 != 2)
        .flat_map(|(_, r)| r.to_vec())
        .collect();
    let absent = HardNegatives {
        vectors: t3(&two, [2, 2, 4], &d),
        keep: t2(&[1.0; 4], [2, 2], &d),
    };
    let a = scalar(
        nce(0.1, true)
            .loss(t2(&s, [2, 4], &d), t2(&p, [2, 4], &d), Some(masked))
            .unwrap(),
    );
    let b = scalar(
        nce(0.1, true)
            .loss(t2(&s, [2, 4], &d), t2(&p, [2, 4], &d), Some(absent))
            .unwrap(),
    );
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    assert!(a > 0.01, "the loss is not trivially zero: {a}");
}

#[test]
fn a_shared_positive_is_not_an_in_batch_negative() {
    let d = cpu();
    let mut rng = Rng::new(5);
    let s = rng.unit_rows(2, 4);
    let p1 = rng.unit_rows(1, 4);
    let p = [p1.clone(), p1].concat();
    let n = rng.unit_rows(2 * 2, 4);
    let hard = || HardNegatives {
        vectors: t3(&n, [2, 2, 4], &d),
        keep: t2(&[1.0; 4], [2, 2], &d),
    };
    let with = scalar(
        nce(0.2, true)
            .loss(t2(&s, [2, 4], &d), t2(&p, [2, 4], &d), Some(hard()))
            .unwrap(),
    );
    let without = scalar(
        nce(0.2, false)
            .loss(t2(&s, [2, 4], &d), t2(&p, [2, 4], &d), Some(hard()))
            .unwrap(),
    );
    assert!((with - without).abs() < 1e-6, "{with} vs {without}");
}

#[test]
fn the_loss_falls_as_the_positive_score_rises() {
    let d = cpu();
    // Student (cos a, sin a): its score with the positive (1, 0) rises as a shrinks, while the
    // negatives stay fixed.
    let p = t2(&[1.0, 0.0], [1, 2], &d);
    let n = [0.0, 1.0, -0.6, 0.8];
    let mut last = f64::INFINITY;
    for step in 0..=10 {
        let a = std::f64::consts::PI * (1.0 - step as f64 / 10.0) / 2.0;
        let s = t2(&[a.cos(), a.sin()], [1, 2], &d);
        let hard = HardNegatives {
            vectors: t3(&n, [1, 2, 2], &d),
            keep: t2(&[1.0, 1.0], [1, 2], &d),
        };
        let loss = scalar(nce(0.5, false).loss(s, p.clone(), Some(hard)).unwrap());
        assert!(loss < last, "step {step}: {loss} after {last}");
        last = loss;
    }
}

/// f64 reference of InfoNCE with in-batch negatives (same-passage columns skipped) and masked
/// hard negatives.
fn reference(
    s: &[f64],
    p: &[f64],
    n: &[f64],
    keep: &[f64],
    (b, k, dim): (usize, usize, usize),
    tau: f64,
) -> f64 {
    let row = |v: &[f64], i: usize| v[i * dim..(i + 1) * dim].to_vec();
    let mut total = 0.0;
    for i in 0..b {
        let si = row(s, i);
        let pos = dot(&si, &row(p, i)) / tau;
        let mut z = vec![pos];
        for j in (0..b).filter(|&j| j != i) {
            z.push(dot(&si, &row(p, j)) / tau);
        }
        for kk in 0..k {
            if keep[i * k + kk] > 0.5 {
                z.push(dot(&si, &row(n, i * k + kk)) / tau);
            }
        }
        total += logsumexp(&z) - pos;
    }
    total / b as f64
}

#[test]
fn info_nce_values_and_gradients_match_an_f64_reference() {
    let (b, k, dim, tau) = (3, 4, 5, 0.2);
    let mut rng = Rng::new(11);
    let s = rng.vec(b * dim);
    let p = rng.unit_rows(b, dim);
    let n = rng.unit_rows(b * k, dim);
    let keep = [1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
    let d = autodiff();
    let student = t2(&s, [b, dim], &d).require_grad();
    let hard = HardNegatives {
        vectors: t3(&n, [b, k, dim], &d),
        keep: t2(&keep, [b, k], &d),
    };
    let loss = nce(tau as f32, true)
        .loss(student.clone(), t2(&p, [b, dim], &d), Some(hard))
        .unwrap();
    let grads = loss.backward();
    let got = host(student.grad(&grads).expect("student gradient"));
    let f = |x: &[f64]| reference(x, &p, &n, &keep, (b, k, dim), tau);
    let (value, want_value) = (scalar(loss), f(&s));
    assert!(
        (value - want_value).abs() < 1e-5 * want_value.abs().max(1.0),
        "{value} vs {want_value}"
    );
    assert_close(
        &got,
        &finite_differences(f, &s, 1e-6),
        1e-5,
        1e-4,
        "InfoNCE gradient",
    );
}

#[test]
fn info_nce_rejects_bad_inputs() {
    let d = cpu();
    let s = t2(&[1.0, 0.0], [1, 2], &d);
    let err = nce(0.0, false)
        .loss(s.clone(), s.clone(), None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Parameter {
                name: "temperature",
                ..
            }
        ),
        "{err}"
    );
    let hard = HardNegatives {
        vectors: t3(&[0.0; 3], [1, 1, 3], &d),
        keep: t2(&[1.0], [1, 1], &d),
    };
    let err = nce(0.1, false).loss(s.clone(), s, Some(hard)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "loss input: hard negative vectors has shape [1, 1, 3], expected [1, K, 2]"
    );
}

#[test]
fn positive_is_gold_or_optionally_the_teacher_top1() {
    let ranking = [(7usize, 0.9f32), (3, 0.8)];
    assert_eq!(positive_passage(Some(3), &ranking, true), Some(3));
    assert_eq!(positive_passage(None, &ranking, true), Some(7));
    assert_eq!(positive_passage(None, &ranking, false), None);
    assert_eq!(positive_passage::<usize>(None, &[], true), None);
}

#[test]
fn hard_negatives_drop_the_positive_and_close_scores() {
    let ranking = [(1usize, 0.90f32), (2, 0.85), (3, 0.70), (4, 0.60)];
    // Without a margin only the positive (2) is dropped.
    assert_eq!(
        hard_negative_keep(&ranking, 2, Some(0.85), None),
        [true, false, true, true]
    );
    // Margin 0.1 around the positive's 0.85: scores above 0.75 are likely false negatives.
    assert_eq!(
        hard_negative_keep(&ranking, 2, Some(0.85), Some(0.1)),
        [false, false, true, true]
    );
    // A positive outside the list with unknown score: no margin can apply.
    assert_eq!(
        hard_negative_keep(&ranking, 9, None, Some(0.1)),
        [true, true, true, true]
    );
}
