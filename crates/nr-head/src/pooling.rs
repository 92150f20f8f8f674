//! Token pooling and L2 normalisation shared by the heads.

use burn::tensor::Tensor;

/// Smallest norm divided by in [`l2_normalize`] (as `torch.nn.functional.normalize`).
pub const NORM_EPS: f64 = 1e-12;

/// Mean over the real tokens: `x [batch, tokens, H]`, `mask [batch, tokens]` (1 = real token,
/// 0 = padding) -> `[batch, H]`. A row without real tokens gives zeros.
pub fn masked_mean(x: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let [b, t, h] = x.dims();
    let m = mask.reshape([b, t, 1]);
    let sum = (x * m.clone()).sum_dim(1).reshape([b, h]);
    let count = m.sum_dim(1).reshape([b, 1]).clamp_min(1.0);
    sum / count
}

/// Rows scaled to unit L2 norm: `x / max(||x||, 1e-12)`. The clamp is applied to the squared
/// norm, so an all-zero row gets a zero gradient instead of the NaN of `sqrt'(0)`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .square()
        .sum_dim(1)
        .clamp_min(NORM_EPS * NORM_EPS)
        .sqrt();
    x / norm
}
