//! CPU fast paths chosen at run time from the CPU's features, with burn's f32 matmul as the fallback.
//!
//! - [`bf16_gemm`]: decoder projections with bf16 weights and f32 sums (AVX-512 BF16).
//! - [`attention`]: masked softmax attention of one head in f32 (AVX-512 F), for the decoder's host pass.
//! - [`swiglu`]: the MLP's `silu(gate) * up` on the host, between two bf16 projections.

pub mod attention;
pub mod bf16_gemm;
pub mod exp;
pub mod swiglu;

use serde::{Deserialize, Serialize};

pub use bf16_gemm::{PackedBf16, RoundedRows};

/// Deterministic values in [-1, 1] for the kernels' tests.
#[cfg(test)]
pub(crate) fn test_values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
            (h % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// Number format of the decoder's projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 where the device is the CPU (flex) and the CPU has AVX-512 BF16, f32 elsewhere.
    #[default]
    Auto,
    /// f32 everywhere: the reference the parity tests hold the decoder to.
    F32,
    /// bf16 weights and inputs, f32 sums; an error where the CPU cannot run it.
    Bf16,
}

impl Precision {
    /// Its name as manifests and `--precision` write it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Precision::Auto),
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!("precision '{other}': expected auto, f32 or bf16")),
        }
    }
}

/// Whether this CPU has AVX-512 F (the 16-wide exp, SiLU and attention kernels).
pub fn avx512f_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs [`PackedBf16`] (AVX-512 F and BF16). `NR_DISABLE_BF16=1` turns it off,
/// so the fallback can be exercised on any machine.
pub fn bf16_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        if std::env::var_os("NR_DISABLE_BF16").is_some_and(|v| v != "0") {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// The CPU features the fast paths look for, as `name=yes|no` words (for benchmark reports).
pub fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        [
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("avx512f", has!("avx512f")),
            ("avx512bf16", has!("avx512bf16")),
            ("avx512vnni", has!("avx512vnni")),
        ]
        .iter()
        .map(|(n, on)| format!("{n}={}", if *on { "yes" } else { "no" }))
        .collect::<Vec<_>>()
        .join(" ")
            + &format!(" amx-bf16={}", if amx_bf16() { "yes" } else { "no" })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// AMX-BF16 as the kernel reports it (`std` detects AMX on nightly only).
#[cfg(target_arch = "x86_64")]
fn amx_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .find(|l| l.starts_with("flags"))
            .is_some_and(|l| l.split_whitespace().any(|f| f == "amx_bf16"))
    })
}
