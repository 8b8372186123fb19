//! Helpers shared by the unit tests: the real payloads of `../shared/fixtures`.

use serde_json::Value;

/// The shared fixtures directory.
fn directory() -> String {
    format!("{}/../../shared/fixtures", env!("CARGO_MANIFEST_DIR"))
}

/// Every JSON fixture, parsed, with its name.
pub fn fixtures() -> Vec<(String, Value)> {
    let dir = directory();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
    let mut names: Vec<String> = entries
        .map(|e| {
            e.expect("fixture entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| (name.clone(), fixture(&name)))
        .collect()
}

/// A fixture from the shared fixtures directory, parsed.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/{name}", directory());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
