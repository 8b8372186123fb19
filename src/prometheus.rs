//! The Prometheus text format, shared by every part that reports on `/metrics` (the web layer and
//! the indexer), so none of them has to reach into another for it.

use std::fmt::Write as _;

/// Appends one Prometheus metric family to `out`: its HELP and TYPE lines, then a sample per row
/// (`labels` is the `{k="v",…}` part, or empty for an unlabelled sample).
pub fn series<L: AsRef<str>>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    rows: &[(L, u64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in rows {
        let _ = writeln!(out, "{name}{} {value}", labels.as_ref());
    }
}
