//! The compute device, chosen by name among the backends compiled in (cargo features `flex`,
//! `wgpu`, `cuda`, `tch`).

use anyhow::{Result, bail};
use burn::tensor::Device;

/// Names accepted by `--device`, for help texts.
pub const DEVICE_HELP: &str =
    "flex (CPU, default), wgpu, cuda[:N], tch (LibTorch CPU), tch-cuda[:N]; only those compiled in";

/// Parses a device name; `None` picks the first compiled backend in the order flex, cuda, wgpu, tch.
pub fn parse_device(name: Option<&str>) -> Result<Device> {
    let name = match name {
        Some(n) => n.to_string(),
        None => std::env::var("NR_DEVICE").unwrap_or_else(|_| default_name().to_string()),
    };
    let (kind, index) = match name.split_once(':') {
        Some((k, i)) => (
            k,
            i.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--device {name}: bad index '{i}'"))?,
        ),
        None => (name.as_str(), 0),
    };
    let _ = index; // only cuda and tch-cuda read it
    match kind {
        #[cfg(feature = "flex")]
        "flex" | "cpu" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(index)),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch" => Ok(Device::libtorch()),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch-cuda" => Ok(Device::libtorch_cuda(index)),
        other => bail!(
            "--device {other}: not one of the backends compiled in ({DEVICE_HELP}); rebuild with --features {other}"
        ),
    }
}

fn default_name() -> &'static str {
    if cfg!(feature = "flex") {
        "flex"
    } else if cfg!(feature = "cuda") {
        "cuda"
    } else if cfg!(feature = "wgpu") {
        "wgpu"
    } else {
        "tch"
    }
}
