//! Helpers shared by the unit tests: the real payloads of `../shared/fixtures`.

use serde_json::Value;

/// A fixture from the shared fixtures directory, parsed.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../shared/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
