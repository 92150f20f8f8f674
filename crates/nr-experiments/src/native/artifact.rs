//! A native encoder saved as one self-describing folder that loads without its run folder or
//! manifest:
//!
//! - `encoder.json`: the one sidecar (format, version, features, head config, the LLM and teacher
//!   the head belongs to, the standardiser, where the models were at training time);
//! - `head.safetensors`: the dense head's weights;
//! - `head.lexicon.safetensors`: the lexicon's table, when the encoder has one.
//!
//! Weights are written first and the sidecar last, each atomically, so a folder with a sidecar is
//! complete.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use nr_head::{BackboneInfo, Head, HeadConfig, HeadMeta, Lexicon, TeacherInfo, lexicon_path};
use serde::{Deserialize, Serialize};

use super::encoder::NativeEncoder;
use super::spec::{FeatureSpec, model_name};
use super::standardize::Standardizer;
use crate::atomic_file::write_atomic;

/// The `format` of every encoder sidecar.
pub const ENCODER_FORMAT: &str = "nr-native-encoder";
/// The sidecar layout this build writes and reads.
pub const ENCODER_VERSION: u32 = 1;
/// The sidecar's file name inside the folder.
pub const SIDECAR_FILE: &str = "encoder.json";
/// The stem of the weight files inside the folder.
const HEAD_STEM: &str = "head";

/// Where the LLM and teacher were when the encoder was trained: defaults for a user who does not
/// name them (the encoder checks that the models it gets are the ones it was trained for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPaths {
    pub llm: PathBuf,
    pub teacher: PathBuf,
    /// Texts per forward pass of the teacher when indexing a corpus.
    pub teacher_batch_size: usize,
}

/// `encoder.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSidecar {
    /// Always [`ENCODER_FORMAT`].
    pub format: String,
    /// [`ENCODER_VERSION`] at the time of writing.
    pub version: u32,
    pub features: FeatureSpec,
    pub head: HeadConfig,
    pub backbone: BackboneInfo,
    pub teacher: TeacherInfo,
    pub standardizer: Standardizer,
    /// Whether `head.lexicon.safetensors` belongs to the encoder.
    pub lexicon: bool,
    pub models: ModelPaths,
}

impl EncoderSidecar {
    fn meta(&self) -> HeadMeta {
        HeadMeta {
            backbone: self.backbone.clone(),
            teacher: self.teacher.clone(),
        }
    }
}

/// The sidecar of the encoder folder `dir`.
pub fn sidecar_path(dir: &Path) -> PathBuf {
    dir.join(SIDECAR_FILE)
}

impl NativeEncoder {
    /// Saves the encoder into the folder `dir` (created if needed), with the model paths it was
    /// trained with.
    pub fn save(&self, dir: &Path, models: &ModelPaths) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let stem = dir.join(HEAD_STEM);
        let sidecar = sidecar_path(dir);
        self.meta.check_config(self.head.config(), &sidecar)?;
        self.head.save_weights(&nr_head::weights_path(&stem))?;
        match &self.lexicon {
            Some((lexicon, how)) => lexicon.save(&stem, how, &self.meta)?,
            None => match std::fs::remove_file(lexicon_path(&stem)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| lexicon_path(&stem).display().to_string());
                }
                _ => {}
            },
        }
        let json = EncoderSidecar {
            format: ENCODER_FORMAT.into(),
            version: ENCODER_VERSION,
            features: self.features.clone(),
            head: self.head.config().clone(),
            backbone: self.meta.backbone.clone(),
            teacher: self.meta.teacher.clone(),
            standardizer: self.standardizer.clone(),
            lexicon: self.lexicon.is_some(),
            models: models.clone(),
        };
        write_atomic(&sidecar, serde_json::to_string_pretty(&json)?.as_bytes())
    }

    /// Reads the sidecar of the encoder folder `dir`, checking format, version and consistency.
    pub fn read_sidecar(dir: &Path) -> Result<EncoderSidecar> {
        let path = sidecar_path(dir);
        if !path.is_file() {
            bail!(
                "{}: not found; a native encoder is the folder `nr run` writes as OUTPUT/head",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let sidecar: EncoderSidecar = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not an encoder sidecar: {e}", path.display()))?;
        if sidecar.format != ENCODER_FORMAT || sidecar.version != ENCODER_VERSION {
            bail!(
                "{}: format {} version {}, this build reads {ENCODER_FORMAT} version {ENCODER_VERSION}",
                path.display(),
                sidecar.format,
                sidecar.version
            );
        }
        sidecar.meta().check_config(&sidecar.head, &path)?;
        Ok(sidecar)
    }

    /// Loads the encoder saved in `dir` onto `device`, for the LLM at `llm_path` (`llm`, already
    /// loaded) and the teacher at `teacher_path` of width `teacher_dim`: models other than those it
    /// was trained for are refused, naming the field that differs.
    pub fn load(
        dir: &Path,
        llm_path: &Path,
        llm: &nr_backbone::llama::Llm,
        teacher_path: &Path,
        teacher_dim: usize,
        device: &Device,
    ) -> Result<NativeEncoder> {
        let sidecar = Self::read_sidecar(dir)?;
        let path = sidecar_path(dir);
        for &layer in &sidecar.features.layers {
            if layer > llm.num_layers() {
                bail!(
                    "{}: features.layers: layer {layer} does not exist in {} (0..={})",
                    path.display(),
                    llm_path.display(),
                    llm.num_layers()
                );
            }
        }
        let expected = sidecar.features.head_meta(
            &model_name(llm_path),
            llm.hidden_size(),
            &model_name(teacher_path),
            teacher_dim,
        );
        let meta = sidecar.meta();
        meta.check_matches(&expected, &path)?;
        let stem = dir.join(HEAD_STEM);
        let head = Head::load_weights(&nr_head::weights_path(&stem), &sidecar.head, device)?;
        let lexicon = if sidecar.lexicon {
            Some(Lexicon::load(&stem, &meta)?)
        } else {
            None
        };
        NativeEncoder::new(
            sidecar.features,
            meta,
            sidecar.standardizer,
            head,
            lexicon,
            device.clone(),
        )
        .with_context(|| path.display().to_string())
    }
}
