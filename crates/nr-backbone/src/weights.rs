//! Where model weights come from, independent of the file format.
//!
//! Models are built by asking a [`WeightSource`] for each tensor by its HF name, in PyTorch layout
//! (row-major, `[out_features, in_features]` for linear layers), de-quantised to `f32`. Both an HF
//! safetensors folder ([`SafetensorsWeights`]) and a GGUF file implement it, so one model-building
//! routine serves both.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{BackboneError, Result};

/// A tensor on the host: `f32` values in row-major order with its shape (PyTorch order).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

/// A named store of weights that a model can be built from.
pub trait WeightSource {
    /// The file the weights come from, for error messages.
    fn path(&self) -> &Path;
    /// Whether a tensor of this name exists.
    fn contains(&self, name: &str) -> bool;
    /// The tensor of this name, de-quantised to `f32`, in PyTorch layout.
    fn tensor(&self, name: &str) -> Result<HostTensor>;

    /// The tensor, checked to have exactly `expected` shape.
    fn tensor_with_shape(&self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        let t = self.tensor(name)?;
        if t.shape != expected {
            return Err(BackboneError::Shape {
                path: self.path().to_path_buf(),
                tensor: name.to_string(),
                found: t.shape,
                expected: expected.to_vec(),
            });
        }
        Ok(t)
    }
}

/// A burn tensor of rank `D` from host data.
pub fn to_device<const D: usize>(t: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// The values of a tensor on the host, as `f32` in row-major order.
pub fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| BackboneError::Input(format!("reading a tensor back from the device: {e:?}")))
}

/// The transpose of a 2-D host tensor, laid out contiguously. Transposing on the host (once, at
/// load) rather than with `Tensor::transpose` keeps weights contiguous: a strided weight would be
/// copied again by every matmul.
pub fn transposed(t: &HostTensor) -> HostTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut data = vec![0.0f32; t.data.len()];
    for r in 0..rows {
        for c in 0..cols {
            data[c * rows + r] = t.data[r * cols + c];
        }
    }
    HostTensor {
        data,
        shape: vec![cols, rows],
    }
}

/// A `Linear` from PyTorch weights `[out, in]` (+ optional bias `[out]`); burn stores `[in, out]`.
pub fn linear(
    src: &dyn WeightSource,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    with_bias: bool,
    device: &Device,
) -> Result<Linear> {
    let w = src.tensor_with_shape(&format!("{prefix}.weight"), &[d_out, d_in])?;
    let weight: Tensor<2> = to_device(transposed(&w), device);
    let bias = if with_bias {
        let b = src.tensor_with_shape(&format!("{prefix}.bias"), &[d_out])?;
        Some(Param::from_tensor(to_device::<1>(b, device)))
    } else {
        None
    };
    Ok(Linear {
        weight: Param::from_tensor(weight),
        bias,
    })
}

/// An `Embedding` table `[n, d]`.
pub fn embedding(
    src: &dyn WeightSource,
    name: &str,
    n: usize,
    d: usize,
    device: &Device,
) -> Result<Embedding> {
    let w = src.tensor_with_shape(name, &[n, d])?;
    Ok(Embedding {
        weight: Param::from_tensor(to_device::<2>(w, device)),
    })
}

/// A vector `[d]` (norm weights, biases).
pub fn vector(src: &dyn WeightSource, name: &str, d: usize, device: &Device) -> Result<Tensor<1>> {
    Ok(to_device(src.tensor_with_shape(name, &[d])?, device))
}

/// A `LayerNorm` with weight and bias under `prefix` (`.weight`/`.bias`, or the older `.gamma`/`.beta`).
pub fn layer_norm(
    src: &dyn WeightSource,
    prefix: &str,
    d: usize,
    eps: f64,
    device: &Device,
) -> Result<LayerNorm> {
    let pick = |a: &str, b: &str| {
        let first = format!("{prefix}.{a}");
        if src.contains(&first) {
            first
        } else {
            format!("{prefix}.{b}")
        }
    };
    let mut norm = burn::nn::LayerNormConfig::new(d)
        .with_epsilon(eps)
        .init(device);
    norm.gamma = Param::from_tensor(vector(src, &pick("weight", "gamma"), d, device)?);
    norm.beta = Some(Param::from_tensor(vector(
        src,
        &pick("bias", "beta"),
        d,
        device,
    )?));
    Ok(norm)
}

/// Weights of an HF folder: `model.safetensors`, or shards listed in `model.safetensors.index.json`.
/// f32, f16 and bf16 tensors are read (memory-mapped) and converted to `f32`.
pub struct SafetensorsWeights {
    path: PathBuf,
    files: Vec<(PathBuf, Mmap)>,
    /// tensor name -> index into `files`
    index: BTreeMap<String, usize>,
}

impl SafetensorsWeights {
    /// Opens the weights of an HF model folder.
    pub fn open_folder(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let shard_files: Vec<PathBuf> = if single.is_file() {
            vec![single]
        } else if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| BackboneError::io(&index_path, e))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| BackboneError::malformed(&index_path, format!("invalid JSON: {e}")))?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| BackboneError::missing(&index_path, "key 'weight_map'"))?;
            let mut names: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            names.sort();
            names.dedup();
            names.into_iter().map(|n| dir.join(n)).collect()
        } else {
            return Err(BackboneError::missing(
                dir,
                "model.safetensors (or model.safetensors.index.json)",
            ));
        };
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for (i, file) in shard_files.into_iter().enumerate() {
            let f = File::open(&file).map_err(|e| BackboneError::io(&file, e))?;
            // SAFETY: the file is opened read-only and not modified while mapped by this process.
            let mmap = unsafe { Mmap::map(&f) }.map_err(|e| BackboneError::io(&file, e))?;
            let st = SafeTensors::deserialize(&mmap).map_err(|e| {
                BackboneError::malformed(&file, format!("invalid safetensors: {e}"))
            })?;
            for name in st.names() {
                index.insert(name.to_string(), i);
            }
            files.push((file, mmap));
        }
        Ok(Self {
            path: dir.to_path_buf(),
            files,
            index,
        })
    }

    /// Names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }
}

impl WeightSource for SafetensorsWeights {
    fn path(&self) -> &Path {
        &self.path
    }

    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn tensor(&self, name: &str) -> Result<HostTensor> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| BackboneError::missing(&self.path, format!("tensor '{name}'")))?;
        let (file, mmap) = &self.files[i];
        let st = SafeTensors::deserialize(mmap)
            .map_err(|e| BackboneError::malformed(file, format!("invalid safetensors: {e}")))?;
        let view = st
            .tensor(name)
            .map_err(|e| BackboneError::malformed(file, format!("tensor '{name}': {e}")))?;
        let bytes = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(BackboneError::unsupported(
                    file,
                    format!("tensor '{name}' has dtype {other:?}"),
                ));
            }
        };
        Ok(HostTensor {
            data,
            shape: view.shape().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    #[test]
    fn f32_f16_and_bf16_tensors_read_as_the_same_f32_values() {
        // Values exactly representable in all three formats.
        let values = [0.5f32, -1.25, 3.0, 0.0, -0.015625, 96.0];
        let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let views = vec![
            (
                "a".to_string(),
                TensorView::new(Dtype::F32, vec![2, 3], &f32_bytes).unwrap(),
            ),
            (
                "b".to_string(),
                TensorView::new(Dtype::F16, vec![2, 3], &f16_bytes).unwrap(),
            ),
            (
                "c".to_string(),
                TensorView::new(Dtype::BF16, vec![3, 2], &bf16_bytes).unwrap(),
            ),
        ];
        safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
        let w = SafetensorsWeights::open_folder(dir.path()).unwrap();
        for name in ["a", "b", "c"] {
            assert_eq!(w.tensor(name).unwrap().data, values, "tensor {name}");
        }
        assert_eq!(w.tensor("c").unwrap().shape, [3, 2]);
        let err = w.tensor_with_shape("a", &[3, 2]).unwrap_err().to_string();
        assert!(
            err.contains("tensor 'a' has shape [2, 3], expected [3, 2]"),
            "{err}"
        );
        let err = w.tensor("zz").unwrap_err().to_string();
        assert!(err.ends_with("missing tensor 'zz'"), "{err}");
    }
}
