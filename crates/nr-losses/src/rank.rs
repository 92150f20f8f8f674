//! Rank distillation: the student's scores over the teacher's candidates should rank them as the
//! teacher does.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};

use crate::error::{LossError, positive, shape};

/// Student scores of each row's candidates: `student [B, D]`, `candidates [B, K, D]` ->
/// `<s_i, c_ik>` `[B, K]`.
pub fn candidate_scores(student: Tensor<2>, candidates: Tensor<3>) -> Result<Tensor<2>, LossError> {
    let [b, d] = student.dims();
    let [cb, k, cd] = candidates.dims();
    if cb != b || cd != d {
        return Err(shape("candidates", &[cb, k, cd], format!("[{b}, K, {d}]")));
    }
    Ok(candidates
        .matmul(student.reshape([b, d, 1]))
        .reshape([b, k]))
}

/// Rank distillation `KL(teacher || student)` over each row's `K` candidates, averaged over the
/// batch, with separate temperatures:
///
/// `p_i = softmax(t_i / tau_t)`, `q_i = softmax(s_i / tau_s)`,
/// `L = (1/B) sum_i sum_k p_ik (log p_ik - log q_ik)`.
///
/// `teacher_scores` are constants (no gradient flows into them). The loss is 0 when
/// `s / tau_s = t / tau_t` (up to a per-row constant). Returns a one-element tensor.
pub fn rank_distill(
    student_scores: Tensor<2>,
    teacher_scores: Tensor<2>,
    t_student: f32,
    t_teacher: f32,
) -> Result<Tensor<1>, LossError> {
    positive("t_student", t_student)?;
    positive("t_teacher", t_teacher)?;
    let [b, k] = student_scores.dims();
    if b == 0 || k == 0 {
        return Err(shape(
            "student_scores",
            &[b, k],
            "[batch >= 1, K >= 1]".into(),
        ));
    }
    if teacher_scores.dims() != [b, k] {
        return Err(shape(
            "teacher_scores",
            &teacher_scores.dims(),
            format!("[{b}, {k}]"),
        ));
    }
    let teacher = teacher_scores.detach() / t_teacher as f64;
    let log_p = log_softmax(teacher.clone(), 1);
    let p = softmax(teacher, 1);
    let log_q = log_softmax(student_scores / t_student as f64, 1);
    Ok((p * (log_p - log_q)).sum_dim(1).mean())
}
