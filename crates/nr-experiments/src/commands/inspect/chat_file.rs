//! Reading a chat file: a JSON list of `{"role", "content"}` messages.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// One message of a chat file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatFileMessage {
    pub role: String,
    pub content: String,
}

/// Reads and checks a chat file.
pub fn read_chat_file(path: &Path) -> Result<Vec<ChatFileMessage>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let messages: Vec<ChatFileMessage> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected a JSON list of {{\"role\", \"content\"}} messages",
            path.display()
        )
    })?;
    if messages.is_empty() {
        bail!("{}: the chat has no messages", path.display());
    }
    Ok(messages)
}
