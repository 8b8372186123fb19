//! Domain block lists as CSV, in the shape Mastodon exports and imports
//! (`#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate`), so that an admin can
//! bring a list from a Mastodon server or a shared blocklist and take Plaza's back. Software blocks have
//! no place in that format and are not exported.

use crate::moderation::blocks::{Block, BlockKind, Severity};
use crate::{Error, Result};

/// The header line Mastodon writes.
pub const HEADER: &str =
    "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate";

/// The columns, in Mastodon's order.
const COLUMNS: [&str; 6] = [
    "domain",
    "severity",
    "reject_media",
    "reject_reports",
    "public_comment",
    "obfuscate",
];

/// What an import read.
#[derive(Debug, Default)]
pub struct Imported {
    /// The valid rows as blocks (created_at and created_by left for the caller).
    pub blocks: Vec<Block>,
    /// Rows that could not be used: line number (from 1) and why.
    pub skipped: Vec<(usize, String)>,
}

/// Writes the domain blocks of `blocks` as a Mastodon CSV export.
pub fn export<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for b in blocks.into_iter().filter(|b| b.kind == BlockKind::Domain) {
        let fields = [
            quote(&b.domain),
            b.severity.as_str().to_string(),
            b.reject_media.to_string(),
            b.reject_reports.to_string(),
            quote(&b.reason),
            b.obfuscate.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Reads a Mastodon domain-block CSV (with or without its header; a file with only a domain per line
/// works too). Bad rows are reported, not fatal; a text that is not CSV at all is.
pub fn import(text: &str) -> Result<Imported> {
    let rows = parse(text)?;
    let mut imported = Imported::default();
    let mut columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    for (index, row) in rows.into_iter().enumerate() {
        let line = index + 1;
        if index == 0
            && row
                .first()
                .is_some_and(|c| matches!(c.trim(), "#domain" | "domain"))
        {
            columns = row
                .iter()
                .map(|c| c.trim().trim_start_matches('#').to_ascii_lowercase())
                .collect();
            continue;
        }
        if field(&columns, &row, "domain").is_empty() {
            continue;
        }
        match row_block(&columns, &row) {
            Ok(block) => imported.blocks.push(block),
            Err(e) => imported.skipped.push((line, e.to_string())),
        }
    }
    Ok(imported)
}

/// The value of column `name` in `row` (empty when the file has no such column).
fn field<'a>(columns: &[String], row: &'a [String], name: &str) -> &'a str {
    columns
        .iter()
        .position(|c| c == name)
        .and_then(|i| row.get(i))
        .map(|s| s.trim())
        .unwrap_or("")
}

fn row_block(columns: &[String], row: &[String]) -> Result<Block> {
    let field = |name: &str| field(columns, row, name);
    let mut block = Block::new(BlockKind::Domain, field("domain"), field("public_comment"))?;
    block.severity = Severity::parse(field("severity"))?;
    block.reject_media = flag(field("reject_media"))?;
    block.reject_reports = flag(field("reject_reports"))?;
    block.obfuscate = flag(field("obfuscate"))?;
    Ok(block)
}

fn flag(value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        other => Err(Error::BadRequest(format!("{other:?} is not true or false"))),
    }
}

/// Quotes a field when it holds a comma, a quote or a line break (RFC 4180).
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Splits CSV text into rows of fields (RFC 4180: quoted fields may hold commas, doubled quotes and
/// line breaks). Blank lines are dropped.
fn parse(text: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                if row.iter().any(|f| !f.trim().is_empty()) {
                    rows.push(std::mem::take(&mut row));
                } else {
                    row.clear();
                }
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(Error::BadRequest(
            "CSV: a quoted field is not closed".into(),
        ));
    }
    row.push(field);
    if row.iter().any(|f| !f.trim().is_empty()) {
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mastodon_export_imports_and_exports_the_same() {
        let mastodon = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n\
                        spam.example,suspend,true,true,\"Spam, lots of it\",false\n\
                        loud.example,silence,false,false,,true\n\
                        kept.example,noop,true,false,media only,false\n";
        let imported = import(mastodon).unwrap();
        assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
        assert_eq!(imported.blocks.len(), 3);
        let spam = &imported.blocks[0];
        assert_eq!(spam.domain, "spam.example");
        assert_eq!(spam.severity, Severity::Suspend);
        assert!(spam.reject_media && spam.reject_reports && !spam.obfuscate);
        assert_eq!(spam.reason, "Spam, lots of it");
        assert_eq!(imported.blocks[1].severity, Severity::Silence);
        assert!(imported.blocks[1].obfuscate);
        assert_eq!(export(&imported.blocks), mastodon);
    }

    #[test]
    fn other_shapes_and_bad_rows() {
        let plain = import("a.example\n\nb.example\r\n").unwrap();
        assert_eq!(
            plain
                .blocks
                .iter()
                .map(|b| b.domain.as_str())
                .collect::<Vec<_>>(),
            ["a.example", "b.example"]
        );
        let reordered =
            import("domain,public_comment,severity\nc.example,\"says \"\"hi\"\"\",silence\n")
                .unwrap();
        assert_eq!(reordered.blocks[0].reason, "says \"hi\"");
        assert_eq!(reordered.blocks[0].severity, Severity::Silence);
        let bad = import(&format!(
            "{HEADER}\nnot a domain,suspend\nd.example,ban\ne.example\n"
        ))
        .unwrap();
        assert_eq!(bad.blocks.len(), 1);
        assert_eq!(bad.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 3]);
        assert!(import("\"open").is_err());
    }

    #[test]
    fn software_blocks_are_not_exported() {
        let soft = Block::new(BlockKind::Software, "spamsoft", "").unwrap();
        assert_eq!(export([&soft]), format!("{HEADER}\n"));
    }
}
