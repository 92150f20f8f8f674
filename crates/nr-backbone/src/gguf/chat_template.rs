//! Chat templates stored in a GGUF file (Jinja source, rendered elsewhere).

use super::reader::GgufFile;
use crate::error::Result;

/// Key of the default chat template.
pub const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";

impl GgufFile {
    /// The default chat template (`tokenizer.chat_template`), `None` if the file has none; a
    /// value that is not a string is an error naming the key.
    pub fn chat_template(&self) -> Result<Option<&str>> {
        self.opt_str(CHAT_TEMPLATE_KEY)
    }

    /// A named chat template (`tokenizer.chat_template.<name>`, e.g. `tool_use`, `rag`).
    pub fn named_chat_template(&self, name: &str) -> Result<Option<&str>> {
        self.opt_str(&format!("{CHAT_TEMPLATE_KEY}.{name}"))
    }

    /// The names of the named chat templates the file holds.
    pub fn chat_template_names(&self) -> Vec<&str> {
        let prefix = format!("{CHAT_TEMPLATE_KEY}.");
        self.metadata_entries()
            .filter_map(|(k, _)| k.strip_prefix(prefix.as_str()))
            .collect()
    }
}
