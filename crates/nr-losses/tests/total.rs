//! The weighted total: value, per-term logging, gradient, weights from a manifest.

mod common;

use common::*;
use nr_losses::{ALIGN, CONTRASTIVE, LossError, LossWeights, RANK, TOTAL, TotalLoss};

#[test]
fn total_is_the_weighted_sum_and_logs_each_term() {
    let d = autodiff();
    let x = t1(&[1.0, 2.0], &d).require_grad();
    // L1 = sum x = 3, L2 = sum x^2 = 5, L3 = 7 with weight 0 (left out).
    let l1 = x.clone().sum();
    let l2 = x.clone().square().sum();
    let l3 = x.clone().sum() + 4.0;
    let out = TotalLoss::weighted_sum(vec![
        (ALIGN, 1.0, l1),
        (CONTRASTIVE, 0.5, l2),
        (RANK, 0.0, l3),
    ])
    .unwrap();
    assert_eq!(
        out.terms.keys().collect::<Vec<_>>(),
        [ALIGN, CONTRASTIVE, TOTAL]
    );
    assert_eq!(out.terms[ALIGN], 3.0);
    assert_eq!(out.terms[CONTRASTIVE], 5.0);
    assert_eq!(out.terms[TOTAL], 5.5);
    // d total / dx = 1 + 0.5 * 2x = (2, 3).
    let grads = out.total.backward();
    assert_eq!(host(x.grad(&grads).unwrap()), [2.0, 3.0]);
}

#[test]
fn total_rejects_bad_weights() {
    let d = cpu();
    let err = TotalLoss::weighted_sum(vec![(ALIGN, 0.0, t1(&[1.0], &d))]).unwrap_err();
    assert!(err.to_string().contains("every term has weight 0"), "{err}");
    let err = TotalLoss::weighted_sum(vec![(ALIGN, -1.0, t1(&[1.0], &d))]).unwrap_err();
    assert!(
        matches!(err, LossError::Parameter { name: "weight", .. }),
        "{err}"
    );
}

#[test]
fn weights_read_from_json_with_defaults_and_reject_typos() {
    let w: LossWeights = serde_json::from_str(r#"{"align": 1.0, "rank": 0.25}"#).unwrap();
    assert_eq!(
        w,
        LossWeights {
            align: 1.0,
            contrastive: 1.0,
            rank: 0.25
        }
    );
    assert_eq!(w.get(RANK), Some(0.25));
    assert_eq!(w.get("other"), None);
    let err = serde_json::from_str::<LossWeights>(r#"{"allign": 1.0}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `allign`"), "{err}");
}
