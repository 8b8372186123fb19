//! `plaza search`: asks a running relay's Mastodon-compatible search (`GET /api/v2/search`) and prints
//! what it found as a readable table, or as the JSON the relay sent. The request and the table are
//! plain functions (tested without a relay); `main.rs` does the HTTP call.

use serde_json::Value;

/// What `--type` may ask for.
pub const TYPES: [&str; 3] = ["statuses", "accounts", "hashtags"];

/// Widest text column of the table, in characters.
const TEXT_WIDTH: usize = 72;

/// The search address on the relay at `base` for `query`, of one type or all.
pub fn request_url(base: &str, query: &str, kind: Option<&str>, limit: usize) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    pairs.append_pair("q", query);
    if let Some(kind) = kind {
        pairs.append_pair("type", kind);
    }
    pairs.append_pair("limit", &limit.to_string());
    format!(
        "{}/api/v2/search?{}",
        base.trim_end_matches('/'),
        pairs.finish()
    )
}

/// Text of an HTML fragment on one line, cut to `width` characters.
fn one_line(html: &str, width: usize) -> String {
    let text = plaza_index::html::render(html).text;
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    cut(&words, width)
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() > width {
        let head: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{head}…")
    } else {
        text.to_owned()
    }
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Rows as aligned columns under a header.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// The answer of `/api/v2/search` (`{accounts, statuses, hashtags}`) as tables, one per non-empty
/// kind, or a line saying nothing matched.
pub fn render_table(answer: &Value) -> String {
    let list = |key: &str| {
        answer
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut out = String::new();
    let statuses = list("statuses");
    if !statuses.is_empty() {
        let rows: Vec<Vec<String>> = statuses
            .iter()
            .map(|s| {
                let account = s.get("account").unwrap_or(&Value::Null);
                let mut body = one_line(text(s, "content"), TEXT_WIDTH);
                let warning = text(s, "spoiler_text");
                if !warning.is_empty() {
                    body = cut(&format!("[CW {warning}] {body}"), TEXT_WIDTH);
                }
                vec![
                    text(s, "created_at")
                        .get(..16)
                        .unwrap_or_default()
                        .replace('T', " "),
                    format!("@{}", text(account, "acct")),
                    body,
                    text(s, "url").to_owned(),
                ]
            })
            .collect();
        out.push_str(&format!("Posts ({})\n", rows.len()));
        out.push_str(&table(&["DATE (UTC)", "AUTHOR", "TEXT", "URL"], &rows));
    }
    let accounts = list("accounts");
    if !accounts.is_empty() {
        let rows: Vec<Vec<String>> = accounts
            .iter()
            .map(|a| {
                let kind = if a.get("group").and_then(Value::as_bool) == Some(true) {
                    "group"
                } else if a.get("bot").and_then(Value::as_bool) == Some(true) {
                    "bot"
                } else {
                    ""
                };
                vec![
                    format!("@{}", text(a, "acct")),
                    cut(text(a, "display_name"), 30),
                    kind.to_owned(),
                    one_line(text(a, "note"), TEXT_WIDTH),
                ]
            })
            .collect();
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("Accounts ({})\n", rows.len()));
        out.push_str(&table(&["HANDLE", "NAME", "KIND", "BIO"], &rows));
    }
    let hashtags = list("hashtags");
    if !hashtags.is_empty() {
        let rows: Vec<Vec<String>> = hashtags
            .iter()
            .map(|t| {
                let week: u64 = t
                    .get("history")
                    .and_then(Value::as_array)
                    .map(|days| {
                        days.iter()
                            .filter_map(|d| match d.get("uses") {
                                Some(Value::String(s)) => s.parse::<u64>().ok(),
                                Some(v) => v.as_u64(),
                                None => None,
                            })
                            .sum()
                    })
                    .unwrap_or(0);
                vec![
                    format!("#{}", text(t, "name")),
                    week.to_string(),
                    text(t, "url").to_owned(),
                ]
            })
            .collect();
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("Hashtags ({})\n", rows.len()));
        out.push_str(&table(&["TAG", "USES (7 DAYS)", "URL"], &rows));
    }
    if out.is_empty() {
        out.push_str("Nothing found.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_the_mastodon_request() {
        assert_eq!(
            request_url(
                "http://127.0.0.1:8080/",
                "bakery #coop",
                Some("statuses"),
                20
            ),
            "http://127.0.0.1:8080/api/v2/search?q=bakery+%23coop&type=statuses&limit=20"
        );
        assert_eq!(
            request_url("https://r.example", "x", None, 5),
            "https://r.example/api/v2/search?q=x&limit=5"
        );
    }

    #[test]
    fn renders_each_kind_as_a_table() {
        let answer = json!({
            "statuses": [{
                "created_at": "2026-11-26T10:00:00.000Z",
                "content": "<p>Fresh <b>sourdough</b> &amp; rye</p><p>every day</p>",
                "spoiler_text": "",
                "url": "https://a.example/@bakers/1",
                "account": {"acct": "bakers@a.example"}
            }],
            "accounts": [{
                "acct": "riders@b.example", "display_name": "Riders", "group": true, "bot": false,
                "note": "<p>A #coop</p>"
            }],
            "hashtags": [{"name": "coop", "url": "https://r.example/tags/coop",
                          "history": [{"day": "1", "uses": "2", "accounts": "1"}, {"day": "0", "uses": "3", "accounts": "1"}]}]
        });
        let out = render_table(&answer);
        assert!(out.contains("Posts (1)"), "{out}");
        assert!(out.contains("2026-11-26 10:00  @bakers@a.example  Fresh sourdough & rye every day  https://a.example/@bakers/1"), "{out}");
        assert!(
            out.contains("@riders@b.example  Riders  group  A #coop"),
            "{out}"
        );
        assert!(out.contains("#coop  5"), "{out}");
        assert_eq!(
            render_table(&json!({"statuses": [], "accounts": [], "hashtags": []})),
            "Nothing found.\n"
        );
    }

    #[test]
    fn long_text_is_cut() {
        let long = "word ".repeat(50);
        let out = one_line(&long, 20);
        assert_eq!(out.chars().count(), 20);
        assert!(out.ends_with('…'));
    }
}
