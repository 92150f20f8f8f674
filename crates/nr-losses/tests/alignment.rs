//! Alignment loss: hand-computed values, the identical-vector invariant, gradients.

mod common;

use common::*;
use nr_losses::{AlignmentKind, LossError, alignment};

#[test]
fn cosine_alignment_matches_hand_values() {
    let d = cpu();
    // Row 0: cos((1,0), (0.6,0.8)) = 0.6 -> 0.4. Row 1: (0,1) vs (0,2), cos = 1 -> 0.
    let s = t2(&[1.0, 0.0, 0.0, 1.0], [2, 2], &d);
    let t = t2(&[0.6, 0.8, 0.0, 2.0], [2, 2], &d);
    let loss = scalar(alignment(s, t, AlignmentKind::Cosine).unwrap());
    assert!((loss - 0.2).abs() < 1e-6, "{loss}");
}

#[test]
fn mse_alignment_matches_hand_values() {
    let d = cpu();
    // Row 0: (0.4)^2 + (0.8)^2 = 0.8. Row 1: 0. Mean 0.4.
    let s = t2(&[1.0, 0.0, 0.0, 1.0], [2, 2], &d);
    let t = t2(&[0.6, 0.8, 0.0, 1.0], [2, 2], &d);
    let loss = scalar(alignment(s, t, AlignmentKind::Mse).unwrap());
    assert!((loss - 0.4).abs() < 1e-6, "{loss}");
}

#[test]
fn alignment_is_zero_for_identical_vectors() {
    let d = cpu();
    let v = Rng::new(1).unit_rows(4, 16);
    for kind in [AlignmentKind::Cosine, AlignmentKind::Mse] {
        let loss = scalar(alignment(t2(&v, [4, 16], &d), t2(&v, [4, 16], &d), kind).unwrap());
        assert!(loss.abs() < 1e-6, "{kind:?}: {loss}");
    }
}

/// The f64 reference of both kinds.
fn reference(s: &[f64], t: &[f64], dim: usize, kind: AlignmentKind) -> f64 {
    let rows = s.len() / dim;
    let per_row = |i: usize| {
        let (a, b) = (&s[i * dim..(i + 1) * dim], &t[i * dim..(i + 1) * dim]);
        match kind {
            AlignmentKind::Cosine => 1.0 - dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt()),
            AlignmentKind::Mse => a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum(),
        }
    };
    (0..rows).map(per_row).sum::<f64>() / rows as f64
}

#[test]
fn alignment_values_and_gradients_match_an_f64_reference() {
    let (rows, dim) = (3, 5);
    let mut rng = Rng::new(7);
    // Student rows deliberately not unit length: the cosine must normalise them.
    let s = rng.vec(rows * dim);
    let t = rng.unit_rows(rows, dim);
    let d = autodiff();
    for kind in [AlignmentKind::Cosine, AlignmentKind::Mse] {
        let student = t2(&s, [rows, dim], &d).require_grad();
        let loss = alignment(student.clone(), t2(&t, [rows, dim], &d), kind).unwrap();
        let grads = loss.backward();
        let got = host(student.grad(&grads).expect("student gradient"));
        let value = scalar(loss);
        let want_value = reference(&s, &t, dim, kind);
        assert!(
            (value - want_value).abs() < 1e-5,
            "{kind:?}: {value} vs {want_value}"
        );
        let want = finite_differences(|x| reference(x, &t, dim, kind), &s, 1e-6);
        assert_close(&got, &want, 1e-5, 1e-4, &format!("{kind:?} gradient"));
    }
}

#[test]
fn alignment_rejects_mismatched_shapes() {
    let d = cpu();
    let err = alignment(
        t2(&[1.0; 6], [2, 3], &d),
        t2(&[1.0; 4], [2, 2], &d),
        AlignmentKind::Cosine,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Shape {
                tensor: "teacher",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "loss input: teacher has shape [2, 2], expected [2, 3] (as student)"
    );
}
