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
    header(out, name, kind, help);
    for (labels, value) in rows {
        let _ = writeln!(out, "{name}{} {value}", labels.as_ref());
    }
}

/// Appends one unlabelled metric family whose value is fractional (seconds, say) to `out`.
pub fn fractional(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Appends the `# HELP` and `# TYPE` lines of a metric family to `out`.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
