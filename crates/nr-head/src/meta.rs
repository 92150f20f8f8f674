//! What a head belongs to: the backbone whose hidden states it reads and the teacher whose space it
//! writes. Stored in the sidecar and compared on load.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::HeadConfig;
use crate::error::HeadError;

/// The frozen LLM a head reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneInfo {
    /// A name that identifies the model (e.g. its file name).
    pub name: String,
    /// Width `H` of its hidden states.
    pub hidden_size: usize,
    /// Layer indices the head reads, in the order of the head's layer axis (0 = embeddings,
    /// `i` = output of block `i`, the number of blocks = the final normed output).
    pub layers: Vec<usize>,
    /// Where the states come from (e.g. `context` or `query_tokens`) and how they are pooled.
    pub source: String,
}

/// The frozen sentence encoder whose embedding space the head targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherInfo {
    pub name: String,
    /// Width `D` of its embeddings.
    pub dim: usize,
}

/// The backbone and teacher a head was trained for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadMeta {
    pub backbone: BackboneInfo,
    pub teacher: TeacherInfo,
}

impl HeadMeta {
    /// Checks that `config` fits this backbone and teacher (input width = hidden size, output
    /// width = teacher dimension, one mixed layer per listed layer); `path` names the file at fault.
    pub fn check_config(&self, config: &HeadConfig, path: &Path) -> Result<(), HeadError> {
        let pairs = [
            (
                "config.input_dim",
                config.input_dim,
                "backbone.hidden_size",
                self.backbone.hidden_size,
            ),
            (
                "config.output_dim",
                config.output_dim,
                "teacher.dim",
                self.teacher.dim,
            ),
            (
                "config.layers",
                config.layers,
                "the length of backbone.layers",
                self.backbone.layers.len(),
            ),
        ];
        for (field, value, other, want) in pairs {
            if value != want {
                return Err(HeadError::malformed(
                    path,
                    format!("{field} = {value} disagrees with {other} = {want}"),
                ));
            }
        }
        Ok(())
    }

    /// Checks that a head made for `self` may run in the setup `expected`: same hidden size and
    /// teacher dimension (else the tensors do not fit), same backbone, layers, source and teacher
    /// (else the head would read or write another space). `path` is the sidecar.
    pub fn check_matches(&self, expected: &HeadMeta, path: &Path) -> Result<(), HeadError> {
        let (b, e) = (&self.backbone, &expected.backbone);
        let checks: [(&'static str, String, String, &'static str); 6] = [
            (
                "backbone.hidden_size",
                b.hidden_size.to_string(),
                e.hidden_size.to_string(),
                "the head reads hidden states of another width",
            ),
            (
                "teacher.dim",
                self.teacher.dim.to_string(),
                expected.teacher.dim.to_string(),
                "the head writes vectors of another width",
            ),
            (
                "backbone.name",
                b.name.clone(),
                e.name.clone(),
                "trained on another LLM",
            ),
            (
                "teacher.name",
                self.teacher.name.clone(),
                expected.teacher.name.clone(),
                "trained for another teacher's space",
            ),
            (
                "backbone.layers",
                format!("{:?}", b.layers),
                format!("{:?}", e.layers),
                "trained on other layers",
            ),
            (
                "backbone.source",
                b.source.clone(),
                e.source.clone(),
                "trained on another source",
            ),
        ];
        for (field, found, want, why) in checks {
            if found != want {
                return Err(HeadError::Mismatch {
                    path: path.to_path_buf(),
                    field,
                    found,
                    expected: want,
                    why,
                });
            }
        }
        Ok(())
    }
}
