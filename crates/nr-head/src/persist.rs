//! Saving and loading heads: `<stem>.safetensors` holds the weights (written with burn-store) and
//! `<stem>.json` the sidecar ([`HeadSidecar`]: the config and the backbone and teacher the head
//! belongs to). Both files are written atomically (temporary sibling, then rename), the sidecar
//! last.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::config::HeadConfig;
use crate::error::HeadError;
use crate::head::Head;
use crate::meta::{BackboneInfo, HeadMeta, TeacherInfo};

/// The `format` value of every sidecar.
pub const SIDECAR_FORMAT: &str = "nr-head";
/// The sidecar layout version this crate writes and reads.
pub const SIDECAR_VERSION: u32 = 1;

/// The JSON file beside a head's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSidecar {
    /// Always [`SIDECAR_FORMAT`]; tells a head's sidecar from any other JSON.
    pub format: String,
    /// [`SIDECAR_VERSION`] at the time of writing.
    pub version: u32,
    pub config: HeadConfig,
    pub backbone: BackboneInfo,
    pub teacher: TeacherInfo,
}

impl HeadSidecar {
    /// The backbone and teacher part.
    pub fn meta(&self) -> HeadMeta {
        HeadMeta {
            backbone: self.backbone.clone(),
            teacher: self.teacher.clone(),
        }
    }

    /// Reads and checks `<stem>.json`: format, version, and that the config fits the backbone and
    /// teacher it names.
    pub fn read(stem: &Path) -> Result<Self, HeadError> {
        let path = sidecar_path(stem);
        let text = std::fs::read_to_string(&path).map_err(|e| HeadError::io(&path, e))?;
        let sidecar: HeadSidecar = serde_json::from_str(&text)
            .map_err(|e| HeadError::malformed(&path, format!("not a head sidecar: {e}")))?;
        if sidecar.format != SIDECAR_FORMAT {
            return Err(HeadError::malformed(
                &path,
                format!(
                    "format is '{}', expected '{SIDECAR_FORMAT}'",
                    sidecar.format
                ),
            ));
        }
        if sidecar.version != SIDECAR_VERSION {
            return Err(HeadError::malformed(
                &path,
                format!(
                    "version is {}, this build reads {SIDECAR_VERSION}",
                    sidecar.version
                ),
            ));
        }
        sidecar.meta().check_config(&sidecar.config, &path)?;
        Ok(sidecar)
    }
}

/// `<stem>.safetensors`.
pub fn weights_path(stem: &Path) -> PathBuf {
    with_suffix(stem, ".safetensors")
}

/// `<stem>.json`.
pub fn sidecar_path(stem: &Path) -> PathBuf {
    with_suffix(stem, ".json")
}

/// Appends `suffix` to the file name (unlike `with_extension`, keeps any dot in the stem).
pub(crate) fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = stem.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `bytes` to a temporary sibling of `path`, flushes it to disk and renames it over `path`,
/// so a reader sees the old file or the new one, never a torn one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HeadError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| HeadError::io(dir, e))?;
    }
    let tmp = with_suffix(path, &format!(".tmp-{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| HeadError::io(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| HeadError::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Head {
    /// Writes `<stem>.safetensors` and `<stem>.json`. Fails, writing nothing, when the head's
    /// config does not fit `meta` (input width, output width, number of layers).
    pub fn save(&self, stem: &Path, meta: &HeadMeta) -> Result<(), HeadError> {
        let (weights, json) = (weights_path(stem), sidecar_path(stem));
        meta.check_config(self.config(), &json)?;
        let sidecar = HeadSidecar {
            format: SIDECAR_FORMAT.into(),
            version: SIDECAR_VERSION,
            config: self.config().clone(),
            backbone: meta.backbone.clone(),
            teacher: meta.teacher.clone(),
        };
        let text = serde_json::to_string_pretty(&sidecar)
            .map_err(|e| HeadError::malformed(&json, e.to_string()))?;
        self.save_weights(&weights)?;
        write_atomic(&json, text.as_bytes())
    }

    /// Writes only the weights to `path` (safetensors, atomically), for a caller that keeps the
    /// config in a sidecar of its own; [`Head::load_weights`] reads them back.
    pub fn save_weights(&self, path: &Path) -> Result<(), HeadError> {
        let mut store = SafetensorsStore::from_bytes(None);
        self.save_into(&mut store)
            .map_err(|e| HeadError::malformed(path, e.to_string()))?;
        let bytes = store
            .get_bytes()
            .map_err(|e| HeadError::malformed(path, e.to_string()))?;
        write_atomic(path, &bytes)
    }

    /// Loads the head saved at `stem` onto `device`, refusing one made for another setup than
    /// `expected` (see [`HeadMeta::check_matches`]) and weights that do not fit the sidecar's
    /// config (missing, extra or misshapen tensors). On an autodiff device the loaded head trains.
    pub fn load(stem: &Path, expected: &HeadMeta, device: &Device) -> Result<Head, HeadError> {
        let sidecar = HeadSidecar::read(stem)?;
        sidecar
            .meta()
            .check_matches(expected, &sidecar_path(stem))?;
        Self::load_weights(&weights_path(stem), &sidecar.config, device)
    }

    /// Loads the head saved at `stem` whatever it was made for (inspection, export); the sidecar's
    /// own consistency is still checked.
    pub fn load_any(stem: &Path, device: &Device) -> Result<(Head, HeadSidecar), HeadError> {
        let sidecar = HeadSidecar::read(stem)?;
        let head = Self::load_weights(&weights_path(stem), &sidecar.config, device)?;
        Ok((head, sidecar))
    }

    /// Loads weights written by [`Head::save_weights`] into a head built from `config`, refusing
    /// missing, extra or misshapen tensors.
    pub fn load_weights(
        path: &Path,
        config: &HeadConfig,
        device: &Device,
    ) -> Result<Head, HeadError> {
        let path = path.to_path_buf();
        let bytes = std::fs::read(&path).map_err(|e| HeadError::io(&path, e))?;
        let mut head = config.init(device)?;
        let mut store = SafetensorsStore::from_bytes(Some(bytes))
            .validate(false)
            .allow_partial(true);
        let result = head
            .load_from(&mut store)
            .map_err(|e| HeadError::malformed(&path, e.to_string()))?;
        if let Some(error) = result.errors.first() {
            return Err(HeadError::malformed(&path, error.to_string()));
        }
        if let Some((name, _)) = result.missing.first() {
            return Err(HeadError::malformed(
                &path,
                format!(
                    "tensor '{name}' is missing ({} missing in all)",
                    result.missing.len()
                ),
            ));
        }
        if let Some(name) = result.unused.first() {
            return Err(HeadError::malformed(
                &path,
                format!("tensor '{name}' is not part of a {:?} head", config.kind),
            ));
        }
        Ok(head)
    }
}
