//! Host-side choice of each turn's positive and hard negatives from the teacher's ranking.

/// The passage a turn learns to retrieve: its gold passage, or, when it has none and
/// `teacher_top1_fallback` is on, the teacher's best candidate. `teacher_ranking` is the teacher's
/// top-K list `(passage, score)`, best first.
pub fn positive_passage<P: Copy>(
    gold: Option<P>,
    teacher_ranking: &[(P, f32)],
    teacher_top1_fallback: bool,
) -> Option<P> {
    gold.or_else(|| {
        teacher_top1_fallback
            .then(|| teacher_ranking.first().map(|&(p, _)| p))
            .flatten()
    })
}

/// Keep mask of the teacher's candidates as hard negatives for a turn whose positive is
/// `positive`: the positive itself is dropped, and with a `margin` every candidate whose teacher
/// score is within the margin of the positive's (`score > positive_score - margin`) is dropped as
/// a likely false negative (a relevant passage the qrels do not list). Without a positive score
/// (the positive is not among the teacher's candidates and its score is unknown) no margin applies.
pub fn hard_negative_keep<P: PartialEq + Copy>(
    teacher_ranking: &[(P, f32)],
    positive: P,
    positive_score: Option<f32>,
    margin: Option<f32>,
) -> Vec<bool> {
    teacher_ranking
        .iter()
        .map(|&(p, score)| {
            let close = match (positive_score, margin) {
                (Some(ps), Some(m)) => score > ps - m,
                _ => false,
            };
            p != positive && !close
        })
        .collect()
}
