//! Rank distillation: hand-computed values, invariants, gradients.

mod common;

use common::*;
use nr_losses::{LossError, candidate_scores, rank_distill};

#[test]
fn rank_distill_matches_hand_value() {
    let d = cpu();
    // p = softmax(1, 0) = (e/(e+1), 1/(e+1)), q = (1/2, 1/2): KL = sum p log(2p) = 0.1109441.
    let loss = rank_distill(
        t2(&[0.0, 0.0], [1, 2], &d),
        t2(&[1.0, 0.0], [1, 2], &d),
        1.0,
        1.0,
    )
    .unwrap();
    assert!((scalar(loss) - 0.110_944_07).abs() < 1e-6);
    // The teacher temperature divides the teacher's scores: (2, 0) at 2 is (1, 0) at 1.
    let loss = rank_distill(
        t2(&[0.0, 0.0], [1, 2], &d),
        t2(&[2.0, 0.0], [1, 2], &d),
        1.0,
        2.0,
    )
    .unwrap();
    assert!((scalar(loss) - 0.110_944_07).abs() < 1e-6);
}

#[test]
fn rank_distill_is_zero_for_identical_score_lists() {
    let d = cpu();
    let v = Rng::new(2).vec(3 * 6);
    let loss = rank_distill(t2(&v, [3, 6], &d), t2(&v, [3, 6], &d), 0.05, 0.05).unwrap();
    assert!(scalar(loss).abs() < 1e-6);
    // Also when the student's list is the teacher's shifted by a constant per row.
    let shifted: Vec<f64> = v
        .iter()
        .enumerate()
        .map(|(i, x)| x + (i / 6) as f64)
        .collect();
    let loss = rank_distill(t2(&shifted, [3, 6], &d), t2(&v, [3, 6], &d), 0.05, 0.05).unwrap();
    assert!(scalar(loss).abs() < 1e-5);
    // And positive otherwise.
    let other = Rng::new(9).vec(3 * 6);
    let loss = rank_distill(t2(&other, [3, 6], &d), t2(&v, [3, 6], &d), 0.05, 0.05).unwrap();
    assert!(scalar(loss) > 0.1);
}

fn reference(s: &[f64], t: &[f64], k: usize, ts: f64, tt: f64) -> f64 {
    let rows = s.len() / k;
    let mut total = 0.0;
    for i in 0..rows {
        let zs: Vec<f64> = s[i * k..(i + 1) * k].iter().map(|x| x / ts).collect();
        let zt: Vec<f64> = t[i * k..(i + 1) * k].iter().map(|x| x / tt).collect();
        let (ls, lt) = (logsumexp(&zs), logsumexp(&zt));
        total += zs
            .iter()
            .zip(&zt)
            .map(|(a, b)| (b - lt).exp() * ((b - lt) - (a - ls)))
            .sum::<f64>();
    }
    total / rows as f64
}

#[test]
fn rank_distill_values_and_gradients_match_an_f64_reference() {
    let (b, k, ts, tt) = (3, 5, 0.5, 0.25);
    let mut rng = Rng::new(13);
    let s = rng.vec(b * k);
    let t = rng.vec(b * k);
    let d = autodiff();
    let student = t2(&s, [b, k], &d).require_grad();
    let teacher = t2(&t, [b, k], &d).require_grad();
    let loss = rank_distill(student.clone(), teacher.clone(), ts as f32, tt as f32).unwrap();
    let grads = loss.backward();
    let got = host(student.grad(&grads).expect("student gradient"));
    let f = |x: &[f64]| reference(x, &t, k, ts, tt);
    assert!((scalar(loss) - f(&s)).abs() < 1e-5);
    assert_close(
        &got,
        &finite_differences(f, &s, 1e-6),
        1e-5,
        1e-4,
        "rank gradient",
    );
    // The teacher is a target: no gradient reaches it.
    let teacher_grad = teacher.grad(&grads).map(host).unwrap_or_default();
    assert!(teacher_grad.iter().all(|g| *g == 0.0), "{teacher_grad:?}");
}

#[test]
fn candidate_scores_are_dot_products() {
    let d = cpu();
    let s = t2(&[1.0, 2.0], [1, 2], &d);
    let c = t3(&[3.0, 4.0, -1.0, 0.5], [1, 2, 2], &d);
    assert_eq!(host(candidate_scores(s, c).unwrap()), [11.0, 0.0]);
}

#[test]
fn rank_distill_rejects_bad_inputs() {
    let d = cpu();
    let s = t2(&[0.0, 0.0], [1, 2], &d);
    let err = rank_distill(s.clone(), s.clone(), 1.0, f32::NAN).unwrap_err();
    assert!(
        matches!(
            err,
            LossError::Parameter {
                name: "t_teacher",
                ..
            }
        ),
        "{err}"
    );
    let err = rank_distill(s, t2(&[0.0; 3], [1, 3], &d), 1.0, 1.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "loss input: teacher_scores has shape [1, 3], expected [1, 2]"
    );
}
