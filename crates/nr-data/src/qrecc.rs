//! QReCC turns in the official JSON format, read strictly.
//!
//! A QReCC file is a JSON list of turns, each an object with exactly the fields `Context`,
//! `Question`, `Rewrite`, `Answer`, `Answer_URL`, `Conversation_no`, `Turn_no` and
//! `Conversation_source`. Anything else (a missing field, a field of the wrong type, a field the
//! format does not have, two turns with the same id) is an error naming the file, the turn index and
//! the field, because a silently skipped turn changes every metric computed on the split.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DataError, Result};

/// One QReCC turn: the conversation so far, the question, its human rewrite and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QreccTurn {
    /// Earlier questions and answers, alternating, oldest first (question, answer, question, ...).
    #[serde(rename = "Context")]
    pub context: Vec<String>,
    /// The question of this turn as the user asked it (may depend on the context).
    #[serde(rename = "Question")]
    pub question: String,
    /// A human rewrite of the question that can be understood without the context.
    #[serde(rename = "Rewrite")]
    pub rewrite: String,
    /// The gold answer (empty in turns that have none).
    #[serde(rename = "Answer")]
    pub answer: String,
    /// Where the answer was found (may be empty).
    #[serde(rename = "Answer_URL")]
    pub answer_url: String,
    /// Conversation number, the first half of the turn id.
    #[serde(rename = "Conversation_no")]
    pub conversation_no: u32,
    /// Turn number inside the conversation, 1-based, the second half of the turn id.
    #[serde(rename = "Turn_no")]
    pub turn_no: u32,
    /// Which dataset the conversation came from (`quac`, `nq`, `trec`, ...).
    #[serde(rename = "Conversation_source")]
    pub conversation_source: String,
}

impl QreccTurn {
    /// The turn id used by QReCC qrels and run files: `{Conversation_no}_{Turn_no}`.
    pub fn id(&self) -> String {
        format!("{}_{}", self.conversation_no, self.turn_no)
    }
}

/// The fields of a QReCC turn, in the order of the official files.
pub const QRECC_FIELDS: [&str; 8] = [
    "Context",
    "Question",
    "Rewrite",
    "Answer",
    "Answer_URL",
    "Conversation_no",
    "Turn_no",
    "Conversation_source",
];

/// Reads a QReCC JSON file (a list of turns), checking every turn strictly.
///
/// The list is parsed one turn at a time, so only the file text and the typed turns are held in
/// memory, never a JSON tree of the whole file.
pub fn read_qrecc_turns(path: impl AsRef<Path>) -> Result<Vec<QreccTurn>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    parse_qrecc_turns(&text, path)
}

/// Writes turns as a QReCC JSON file (official field names), atomically: a temporary file in the
/// same folder, then a rename.
pub fn write_qrecc_turns(path: impl AsRef<Path>, turns: &[QreccTurn]) -> Result<()> {
    let path = path.as_ref();
    let text = serde_json::to_string_pretty(turns).expect("turns serialise");
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::write(&tmp, text)
        .map_err(|e| DataError::io(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e)));
    if written.is_err() {
        // No temporary file outlives a failed write (a full disk, a folder in the way).
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Parses QReCC JSON text; `path` is only used to name the source in errors.
pub fn parse_qrecc_turns(text: &str, path: &Path) -> Result<Vec<QreccTurn>> {
    let mut field_error = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = TurnListSeed {
        path,
        field_error: &mut field_error,
    };
    let parsed = seed.deserialize(&mut de).and_then(|turns| {
        de.end()?;
        Ok(turns)
    });
    match (parsed, field_error) {
        (_, Some(err)) => Err(err),
        (Ok(turns), None) => Ok(turns),
        (Err(err), None) => Err(DataError::QreccShape {
            path: path.to_path_buf(),
            problem: format!("not a JSON list of QReCC turns: {err}"),
        }),
    }
}

/// Maps each turn id to its `Conversation_source`, for per-source breakdowns of metrics.
pub fn source_by_turn_id(turns: &[QreccTurn]) -> HashMap<String, String> {
    turns
        .iter()
        .map(|t| (t.id(), t.conversation_source.clone()))
        .collect()
}

/// Deserializes the top-level list one element at a time, converting each as it arrives.
struct TurnListSeed<'a> {
    path: &'a Path,
    field_error: &'a mut Option<DataError>,
}

impl<'de> DeserializeSeed<'de> for TurnListSeed<'_> {
    type Value = Vec<QreccTurn>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TurnListSeed<'_> {
    type Value = Vec<QreccTurn>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON list of QReCC turns")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut turns = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        let mut first_index_of_id: HashMap<(u32, u32), usize> = HashMap::new();
        while let Some(value) = seq.next_element::<Value>()? {
            let index = turns.len();
            let fail = |field: &str, problem: String| DataError::QreccField {
                path: self.path.to_path_buf(),
                index,
                field: field.to_string(),
                problem,
            };
            let turn = match turn_from_value(value) {
                Ok(turn) => turn,
                Err((field, problem)) => {
                    *self.field_error = Some(fail(&field, problem));
                    return Err(serde::de::Error::custom("invalid QReCC turn"));
                }
            };
            let key = (turn.conversation_no, turn.turn_no);
            if let Some(first) = first_index_of_id.insert(key, index) {
                *self.field_error = Some(fail(
                    "Turn_no",
                    format!("duplicate turn id {} (also turn {first})", turn.id()),
                ));
                return Err(serde::de::Error::custom("duplicate QReCC turn"));
            }
            turns.push(turn);
        }
        Ok(turns)
    }
}

/// Converts one JSON value into a turn, or names the field at fault and what is wrong with it.
fn turn_from_value(value: Value) -> Result<QreccTurn, (String, String)> {
    let Value::Object(mut obj) = value else {
        return Err((
            "(turn)".to_string(),
            format!("expected a JSON object, found {}", kind(&value)),
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| !QRECC_FIELDS.contains(&k.as_str())) {
        return Err((unknown.clone(), "unknown field".to_string()));
    }
    let mut take = |field: &str| {
        obj.remove(field)
            .ok_or_else(|| (field.to_string(), "missing".to_string()))
    };
    let context = match take("Context")? {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                other => Err((
                    format!("Context[{i}]"),
                    format!("expected a string, found {}", kind(&other)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err((
                "Context".to_string(),
                format!("expected a list of strings, found {}", kind(&other)),
            ));
        }
    };
    Ok(QreccTurn {
        context,
        question: string_field("Question", take("Question")?)?,
        rewrite: string_field("Rewrite", take("Rewrite")?)?,
        answer: string_field("Answer", take("Answer")?)?,
        answer_url: string_field("Answer_URL", take("Answer_URL")?)?,
        conversation_no: number_field("Conversation_no", take("Conversation_no")?)?,
        turn_no: number_field("Turn_no", take("Turn_no")?)?,
        conversation_source: string_field("Conversation_source", take("Conversation_source")?)?,
    })
}

fn string_field(field: &str, value: Value) -> Result<String, (String, String)> {
    match value {
        Value::String(s) => Ok(s),
        other => Err((
            field.to_string(),
            format!("expected a string, found {}", kind(&other)),
        )),
    }
}

fn number_field(field: &str, value: Value) -> Result<u32, (String, String)> {
    match value.as_u64().map(u32::try_from) {
        Some(Ok(n)) => Ok(n),
        _ => Err((
            field.to_string(),
            format!("expected a non-negative integer, found {value}"),
        )),
    }
}

/// A short name of a JSON value's type, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
