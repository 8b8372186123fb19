//! Remote HTML made safe to show: post content, bios and profile field values come from other servers
//! and are untrusted, so before a page includes them they pass an allowlist sanitiser (ammonia): only
//! text formatting and links survive; scripts, event handlers, styles, images and every URL scheme but
//! http(s) are dropped, and links get `rel="nofollow noopener noreferrer ugc"`. Everything else on the
//! pages is plain text that the templates escape.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The sanitiser for post content, bios and field values.
static CONTENT: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a",
        "p",
        "br",
        "span",
        "strong",
        "b",
        "em",
        "i",
        "u",
        "s",
        "del",
        "ins",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "sub",
        "sup",
        "small",
    ]
    .into_iter()
    .collect();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(tags)
        .add_tag_attributes("a", ["href"])
        .add_tag_attributes("ol", ["start", "reversed"])
        .add_tag_attributes("li", ["value"])
        .url_schemes(["http", "https"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("nofollow noopener noreferrer ugc"))
        .strip_comments(true);
    builder
});

/// The sanitiser for search snippets: highlighted words (`<b>`) in otherwise escaped text.
static SNIPPET: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder.tags(["b"].into_iter().collect());
    builder
});

/// Post content, a bio or a field value, reduced to safe formatting and links.
pub fn content(html: &str) -> String {
    CONTENT.clean(html).to_string()
}

/// A snippet with its highlights as `<mark>`; any other markup is dropped.
pub fn snippet(html: &str) -> String {
    // After cleaning, `<b>` and `</b>` can only be the highlight tags: text `<` is escaped as `&lt;`.
    SNIPPET
        .clean(html)
        .to_string()
        .replace("<b>", "<mark>")
        .replace("</b>", "</mark>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_script_urls_are_dropped() {
        let dirty = r#"<p>Hello <script>alert(1)</script><img src=x onerror="alert(2)">
            <a href="javascript:alert(3)">click</a> <a href="https://ok.example/" onclick="x()">ok</a>
            <span style="color:red" class="h-card">styled</span><iframe src="https://evil.example"></iframe>
            <svg onload="alert(4)"></svg><form action="https://evil.example"><input></form></p>"#;
        let clean = content(dirty);
        for bad in [
            "<script",
            "alert(1)",
            "onerror",
            "javascript:",
            "onclick",
            "<img",
            "style=",
            "<iframe",
            "<svg",
            "onload",
            "<form",
            "<input",
        ] {
            assert!(!clean.contains(bad), "{bad} survived: {clean}");
        }
        assert!(clean.contains("Hello"), "{clean}");
        assert!(
            clean.contains(
                r#"<a href="https://ok.example/" rel="nofollow noopener noreferrer ugc">ok</a>"#
            ),
            "{clean}"
        );
        assert!(clean.contains(">click</a>"), "{clean}");
    }

    #[test]
    fn formatting_survives() {
        let html = "<p>one<br>two <strong>bold</strong> <em>it</em></p><ul><li>x</li></ul>";
        assert_eq!(content(html), html);
    }

    #[test]
    fn relative_and_data_links_are_dropped() {
        let clean = content(r#"<a href="/admin">a</a><a href="data:text/html,<script>">b</a>"#);
        assert!(!clean.contains("href"), "{clean}");
    }

    #[test]
    fn snippets_keep_only_highlights() {
        assert_eq!(
            snippet("a <b>bakery</b> &lt;script&gt; <i>x</i><script>y</script>"),
            "a <mark>bakery</mark> &lt;script&gt; x"
        );
    }
}
