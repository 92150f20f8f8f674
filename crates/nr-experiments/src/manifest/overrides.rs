//! `--set key.path=value`: change one manifest field from the command line.

use anyhow::{Result, bail};

/// Sets `key.path` in `table` to `value`, parsed as a TOML value (`3`, `true`, `["a", "b"]`) or,
/// failing that, taken as a string (`data.test=other.json`).
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else {
        bail!("expected key.path=value");
    };
    let value = parse_value(raw.trim());
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("empty key segment in '{key}'");
    }
    let mut current = table;
    for part in &parts[..parts.len() - 1] {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => bail!("'{part}' in '{key}' is not a table"),
        };
    }
    current.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// A TOML value from its text, or the text itself as a string.
pub fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_set_nested_values_of_any_type() {
        let mut t: toml::Table =
            toml::from_str("[data]\ntest = \"a.json\"\n[training]\nepochs = 3\n").unwrap();
        apply_override(&mut t, "data.test=b.json").unwrap();
        apply_override(&mut t, "training.epochs=5").unwrap();
        apply_override(&mut t, "losses.use_terms=[\"align\"]").unwrap();
        assert_eq!(t["data"]["test"].as_str(), Some("b.json"));
        assert_eq!(t["training"]["epochs"].as_integer(), Some(5));
        assert_eq!(
            t["losses"]["use_terms"].as_array().unwrap()[0].as_str(),
            Some("align")
        );
        assert!(apply_override(&mut t, "data.test.x=1").is_err());
        assert!(apply_override(&mut t, "novalue").is_err());
    }
}
