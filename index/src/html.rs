//! HTML of posts and bios, read with a real HTML5 parser (html5ever through `scraper`): the plain text to
//! index and show in snippets, and a safe re-rendering (paragraphs, line breaks, links, emphasis; every
//! attribute but a link's `http(s)` address dropped, scripts and styles gone) for result entities.
//!
//! The tree is walked iteratively, so deeply nested markup cannot exhaust the stack; and since the HTML5
//! tree builder's work grows with the square of the nesting depth, markup nested deeper than
//! [`MAX_DEPTH`] (or longer than [`MAX_BYTES`]) is cut there before parsing: no post needs it, and a
//! hostile one must not cost seconds.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// Deepest element nesting parsed; the rest of the fragment is dropped.
pub const MAX_DEPTH: usize = 128;

/// Longest fragment parsed, in bytes; the rest is dropped.
pub const MAX_BYTES: usize = 256 * 1024;

/// Elements without an end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// The longest prefix of `fragment` within [`MAX_BYTES`] whose tags (counted roughly: start tags of
/// non-void elements open, end tags close) never nest deeper than [`MAX_DEPTH`].
fn bounded(fragment: &str) -> &str {
    let mut end = fragment.len().min(MAX_BYTES);
    while !fragment.is_char_boundary(end) {
        end -= 1;
    }
    let fragment = &fragment[..end];
    let bytes = fragment.as_bytes();
    let mut depth = 0usize;
    for (at, _) in fragment.match_indices('<') {
        match bytes.get(at + 1) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(b) if b.is_ascii_alphabetic() => {
                let name: String = fragment[at + 1..]
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_lowercase())
                    .collect();
                if !VOID.contains(&name.as_str()) {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return &fragment[..at];
                    }
                }
            }
            _ => {}
        }
    }
    fragment
}

/// Text and safe HTML of one fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The text, with paragraphs and line breaks as newlines.
    pub text: String,
    /// The fragment re-rendered with only harmless elements.
    pub html: String,
    /// The http(s) addresses of its links that are neither mentions nor hashtags (by their `class`
    /// or `rel`, as Mastodon and the others mark them), in order, at most [`MAX_LINKS`].
    pub links: Vec<String>,
}

/// Most links kept per fragment.
pub const MAX_LINKS: usize = 10;

/// Whether an `a` element with these `class` and `rel` attributes is a mention or a hashtag rather
/// than a shared link.
fn is_mention_or_tag(class: Option<&str>, rel: Option<&str>) -> bool {
    let marked = |v: Option<&str>, words: &[&str]| {
        v.is_some_and(|v| v.split_whitespace().any(|w| words.contains(&w)))
    };
    marked(class, &["mention", "hashtag"]) || marked(rel, &["tag"])
}

/// Elements that end a line of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
];

/// Elements kept (without attributes) in the safe rendering; `a` and `br` are handled apart.
const KEPT: &[&str] = &[
    "p",
    "b",
    "strong",
    "i",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "del",
    "s",
];

/// Elements whose content is never text.
const SKIPPED: &[&str] = &["script", "style", "template", "head", "title"];

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

fn newline(text: &mut String) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
}

/// Parses an HTML fragment into its text and a safe rendering: the common shape of post HTML in one
/// scan ([`crate::simple_html`]), anything else with the HTML5 parser.
pub fn render(fragment: &str) -> Rendered {
    let fragment = bounded(fragment);
    crate::simple_html::render(fragment).unwrap_or_else(|| parsed(fragment))
}

/// [`render`] with the HTML5 parser, whatever the fragment.
pub(crate) fn parsed(fragment: &str) -> Rendered {
    let document = Html::parse_fragment(fragment);
    let mut out = Writer::default();
    for edge in document.root_element().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Text(t) => out.text(t),
                Node::Element(e) => out.open(e.name(), |name| e.attr(name)),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(e) = node.value() {
                    out.close(e.name());
                }
            }
        }
    }
    out.finish()
}

/// Writes a fragment's text and safe rendering as its elements open and close, whichever reader reads
/// it.
#[derive(Default)]
pub(crate) struct Writer {
    out: Rendered,
    /// How many skipped elements (scripts, styles) are open.
    skipping: usize,
    /// Whether each open `a` was written (only links with an http(s) address are).
    links: Vec<bool>,
}

impl Writer {
    /// Text (entities decoded).
    pub(crate) fn text(&mut self, t: &str) {
        if self.skipping == 0 {
            self.out.text.push_str(t);
            escape(t, &mut self.out.html);
        }
    }

    /// An element `name` (lowercase) opens, its attributes (values decoded) given by `attr`.
    pub(crate) fn open<'a>(&mut self, name: &str, attr: impl Fn(&str) -> Option<&'a str>) {
        let out = &mut self.out;
        if SKIPPED.contains(&name) {
            self.skipping += 1;
        } else if self.skipping > 0 {
        } else if name == "br" {
            out.text.push('\n');
            out.html.push_str("<br>");
        } else if name == "a" {
            let href =
                attr("href").filter(|h| h.starts_with("https://") || h.starts_with("http://"));
            if let Some(href) = href
                && out.links.len() < MAX_LINKS
                && !is_mention_or_tag(attr("class"), attr("rel"))
                && !out.links.iter().any(|l| l == href)
            {
                out.links.push(href.to_owned());
            }
            if let Some(href) = href {
                out.html.push_str("<a href=\"");
                escape(href, &mut out.html);
                out.html
                    .push_str("\" rel=\"nofollow noopener noreferrer\">");
            }
            self.links.push(href.is_some());
        } else {
            if BLOCKS.contains(&name) {
                newline(&mut out.text);
            }
            if KEPT.contains(&name) {
                out.html.push('<');
                out.html.push_str(name);
                out.html.push('>');
            }
        }
    }

    /// The element `name` (lowercase) closes.
    pub(crate) fn close(&mut self, name: &str) {
        let out = &mut self.out;
        if SKIPPED.contains(&name) {
            self.skipping = self.skipping.saturating_sub(1);
        } else if self.skipping > 0 {
        } else if name == "a" {
            if self.links.pop() == Some(true) {
                out.html.push_str("</a>");
            }
        } else {
            if KEPT.contains(&name) {
                out.html.push_str("</");
                out.html.push_str(name);
                out.html.push('>');
            }
            if BLOCKS.contains(&name) {
                newline(&mut out.text);
            }
        }
    }

    /// The text and rendering written.
    pub(crate) fn finish(mut self) -> Rendered {
        self.out.text = self.out.text.trim().to_owned();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_breaks_become_lines() {
        let r = render("<p>Hello <b>world</b></p><p>second<br>line</p>");
        assert_eq!(r.text, "Hello world\nsecond\nline");
        assert_eq!(r.html, "<p>Hello <b>world</b></p><p>second<br>line</p>");
    }

    #[test]
    fn entities_are_decoded_in_text_and_escaped_in_html() {
        let r = render("<p>caf&eacute; &amp; &lt;tea&gt;</p>");
        assert_eq!(r.text, "café & <tea>");
        assert_eq!(r.html, "<p>café &amp; &lt;tea&gt;</p>");
    }

    #[test]
    fn scripts_attributes_and_bad_links_are_dropped() {
        let r = render(
            r#"<p onclick="x()">hi<script>alert(1)</script><a href="javascript:alert(1)">x</a> <a href="https://a.example/?q=1&amp;r=2" class="u-url">link</a></p>"#,
        );
        assert_eq!(r.text, "hix link");
        assert_eq!(
            r.html,
            "<p>hix <a href=\"https://a.example/?q=1&amp;r=2\" rel=\"nofollow noopener noreferrer\">link</a></p>"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let html = format!("{}deep{}", "<div>".repeat(50_000), "</div>".repeat(50_000));
        assert_eq!(render(&html).text, "");
        let fine = format!(
            "{}deep{}<p>after</p>",
            "<span>".repeat(100),
            "</span>".repeat(100)
        );
        assert_eq!(render(&fine).text, "deep\nafter");
        let siblings = "<p>x</p>".repeat(1_000);
        assert_eq!(render(&siblings).text.len(), 1_999);
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(render("just text").text, "just text");
    }
}
