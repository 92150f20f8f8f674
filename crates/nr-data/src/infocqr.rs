//! QReCC turns as InfoCQR ships them (`datasets/qrecc/*-sampled*.json` of smartyfh/InfoCQR).
//!
//! InfoCQR's sampled QReCC files hold single turns with SCAI field names: `NewContext` (the
//! history, with the conversation's first question replaced by its human rewrite), `Truth_rewrite`,
//! `Truth_answer`. The offline benchmark's splits were cut from one such file; the turns it left
//! out make a held-out test split (`nr data heldout`).

use std::path::Path;

use serde_json::Value;

use crate::error::{DataError, Result};
use crate::qrecc::QreccTurn;

/// Reads an InfoCQR sampled QReCC file as QReCC turns (`NewContext` becomes `Context`,
/// `Truth_rewrite` `Rewrite`, `Truth_answer` `Answer`; `Truth_passages` is not needed).
pub fn read_infocqr_turns(path: impl AsRef<Path>) -> Result<Vec<QreccTurn>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    parse_infocqr_turns(&text, path)
}

/// Parses InfoCQR JSON text; `path` only names the source in errors.
pub fn parse_infocqr_turns(text: &str, path: &Path) -> Result<Vec<QreccTurn>> {
    let shape = |problem: String| DataError::QreccShape {
        path: path.to_path_buf(),
        problem,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| shape(format!("not JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(shape("not a JSON list of InfoCQR turns".into()));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let field_error = |field: &str, problem: &str| DataError::QreccField {
                path: path.to_path_buf(),
                index,
                field: field.into(),
                problem: problem.into(),
            };
            let string = |field: &str| -> Result<String> {
                match item.get(field) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(field_error(field, "expected a string")),
                    None => Err(field_error(field, "missing")),
                }
            };
            let number = |field: &str| -> Result<u32> {
                item.get(field)
                    .ok_or_else(|| field_error(field, "missing"))?
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| field_error(field, "expected a non-negative integer"))
            };
            let context = match item.get("NewContext") {
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|p| {
                        p.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| field_error("NewContext", "expected strings"))
                    })
                    .collect::<Result<Vec<_>>>()?,
                Some(_) => return Err(field_error("NewContext", "expected a list of strings")),
                None => return Err(field_error("NewContext", "missing")),
            };
            Ok(QreccTurn {
                context,
                question: string("Question")?,
                rewrite: string("Truth_rewrite")?,
                answer: string("Truth_answer")?,
                answer_url: string("Answer_URL")?,
                conversation_no: number("Conversation_no")?,
                turn_no: number("Turn_no")?,
                conversation_source: string("Conversation_source")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TURN: &str = r#"[{"Answer_URL": "https://en.wikipedia.org/wiki/X", "Conversation_no": 9467,
        "Conversation_source": "nq", "Question": "where was it formed",
        "Truth_answer": "In Melbourne, in 1901.", "Truth_passages": ["p0"],
        "Truth_rewrite": "where was australia's first government formed", "Turn_no": 2,
        "NewContext": ["where was australia's first election", "In March 1901."]}]"#;

    #[test]
    fn maps_scai_fields_onto_qrecc_turns() {
        let turns = parse_infocqr_turns(TURN, Path::new("s.json")).unwrap();
        assert_eq!(turns.len(), 1);
        let t = &turns[0];
        assert_eq!(t.id(), "9467_2");
        assert_eq!(t.context.len(), 2);
        assert_eq!(t.context[1], "In March 1901.");
        assert_eq!(t.rewrite, "where was australia's first government formed");
        assert_eq!(t.answer, "In Melbourne, in 1901.");
        assert_eq!(t.conversation_source, "nq");
    }

    #[test]
    fn a_missing_or_mistyped_field_names_file_turn_and_field() {
        let missing = TURN.replace("\"Truth_rewrite\"", "\"Rewrite\"");
        let err = parse_infocqr_turns(&missing, Path::new("s.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.json: turn 0: field `Truth_rewrite`: missing"
        );
        let mistyped = TURN.replace("\"Turn_no\": 2", "\"Turn_no\": \"2\"");
        let err = parse_infocqr_turns(&mistyped, Path::new("s.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.json: turn 0: field `Turn_no`: expected a non-negative integer"
        );
        let err = parse_infocqr_turns("{}", Path::new("s.json")).unwrap_err();
        assert_eq!(err.to_string(), "s.json: not a JSON list of InfoCQR turns");
    }
}
