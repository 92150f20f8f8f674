//! A linear projection of the decoder: burn's `Linear` in f32 on any device, or, on the CPU, the
//! same weights packed as bf16 for [`PackedBf16`] (see [`crate::kernels`]).

use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};

use crate::error::Result;
use crate::kernels::PackedBf16;
use crate::weights::to_host;

/// `y = x W + b` over the last axis.
#[derive(Debug)]
pub struct Projection {
    /// The f32 weights `[in, out]` (burn's layout) and bias: the reference, and the path on
    /// every device without a fast kernel.
    pub linear: Linear,
    /// The weights as bf16 pairs, when the bf16 path is on.
    bf16: Option<PackedBf16>,
}

impl From<Linear> for Projection {
    fn from(linear: Linear) -> Self {
        Self { linear, bf16: None }
    }
}

impl Projection {
    /// Packs the weights for the bf16 kernel (`true`) or drops the packed copy (`false`). The
    /// caller checks that the device is the CPU and the CPU has the kernel.
    pub(crate) fn use_bf16(&mut self, on: bool) -> Result<()> {
        self.bf16 = if on {
            let w = self.linear.weight.val();
            let [k, n] = w.dims();
            Some(PackedBf16::pack(&to_host(w)?, k, n))
        } else {
            None
        };
        Ok(())
    }

    /// The packed bf16 weights when the bf16 path is on and there is no bias: what a fused host
    /// path (the MLP) can use directly.
    pub(crate) fn bf16_without_bias(&self) -> Option<&PackedBf16> {
        self.bf16.as_ref().filter(|_| self.linear.bias.is_none())
    }

    /// `x [.., in]` -> `[.., out]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let Some(packed) = &self.bf16 else {
            return self.linear.forward(x);
        };
        let y = on_host(x, packed.cols(), |rows, n| packed.matmul(rows, n));
        match &self.linear.bias {
            Some(b) => y + b.val().unsqueeze(),
            None => y,
        }
    }
}

/// Runs `f` on the rows of a CPU tensor `x [.., in]` (row-major, `f(rows, count)`) and returns its
/// `[.., out]` result as a tensor on the same device: the round trip of every bf16 host path.
pub(crate) fn on_host<const D: usize>(
    x: Tensor<D>,
    out: usize,
    f: impl FnOnce(&[f32], usize) -> Vec<f32>,
) -> Tensor<D> {
    let mut dims = x.dims();
    let device = x.device();
    let count = dims[..D - 1].iter().product();
    // The host copy of a CPU tensor cannot fail; a failure here is a bug, not bad input.
    let host = to_host(x).expect("reading a CPU tensor");
    dims[D - 1] = out;
    Tensor::from_data(TensorData::new(f(&host, count), dims.to_vec()), &device)
}
