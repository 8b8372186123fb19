//! The common shape of post HTML read in one scan, without building a tree: what Mastodon and most
//! servers send (paragraphs, line breaks, links, spans and a few inline elements, every tag closed in
//! order, quoted attributes, the usual entities). Parsing it with the HTML5 tree builder cost about a
//! sixth of the index's work per post outside tantivy.
//!
//! The scan accepts only markup whose HTML5 reading is plain (no element is closed implicitly, none is
//! reopened, no character needs the parser's error recovery) and returns `None` for anything else —
//! comments, other elements, misnested or unclosed tags, unknown entities, unquoted attributes, CR or
//! NUL — which [`crate::html::render`] then hands to the HTML5 parser. On what it accepts it gives the
//! parser's result exactly (tested against it).

use crate::html::{Rendered, Writer};

/// The elements read here: `p` (only outside every other), `br`, and inline elements whose start and
/// end tags the HTML5 tree builder applies as written when they nest in order (`a` never inside `a`).
const ELEMENTS: &[&str] = &[
    "p", "br", "a", "span", "b", "strong", "i", "em", "u", "s", "del", "code",
];

/// Most attributes an element may have here (more go to the parser).
const MAX_ATTRIBUTES: usize = 16;

/// Reads `fragment` if it has the common shape; `None` sends it to the HTML5 parser.
pub(crate) fn render(fragment: &str) -> Option<Rendered> {
    // The parser turns CR into LF, drops NUL and a leading byte-order mark.
    if fragment.contains(['\r', '\0']) || fragment.starts_with('\u{feff}') {
        return None;
    }
    let mut out = Writer::default();
    let mut open: Vec<&'static str> = Vec::new();
    let mut text = String::new();
    let mut rest = fragment;
    while !rest.is_empty() {
        let at = rest.find(['<', '&']).unwrap_or(rest.len());
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix('&') {
            let (decoded, used) = reference(after)?;
            decoded.push_to(&mut text);
            rest = &after[used..];
        } else if !rest.is_empty() {
            if !text.is_empty() {
                out.text(&text);
                text.clear();
            }
            let (tag, used) = Tag::read(rest)?;
            rest = &rest[used..];
            match tag {
                Tag::Start { name: "br", .. } => {
                    out.open("br", |_| None);
                    out.close("br");
                }
                Tag::Start { closed: true, .. } => return None,
                Tag::Start {
                    name, attributes, ..
                } => {
                    let allowed = match name {
                        "p" => open.is_empty(),
                        "a" => !open.contains(&"a"),
                        _ => true,
                    };
                    if !allowed {
                        return None;
                    }
                    out.open(name, |wanted| {
                        attributes
                            .iter()
                            .find(|(n, _)| *n == wanted)
                            .map(|(_, v)| v.as_str())
                    });
                    open.push(name);
                }
                Tag::End(name) => {
                    if open.pop() != Some(name) {
                        return None;
                    }
                    out.close(name);
                }
            }
        }
    }
    if !open.is_empty() {
        return None;
    }
    if !text.is_empty() {
        out.text(&text);
    }
    Some(out.finish())
}

/// One tag read.
enum Tag {
    /// A start tag of one of [`ELEMENTS`]: its attributes (names lowercase, first of each name, values
    /// decoded) and whether it ended with `/>`.
    Start {
        name: &'static str,
        attributes: Vec<(String, String)>,
        closed: bool,
    },
    /// An end tag of one of [`ELEMENTS`] (not `br`).
    End(&'static str),
}

/// The HTML5 tokenizer's whitespace between a tag's parts.
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | ' ')
}

impl Tag {
    /// Reads the tag `markup` starts with (at its `<`) and the bytes it takes.
    fn read(markup: &str) -> Option<(Tag, usize)> {
        let after = markup.strip_prefix('<')?;
        let (end, after) = match after.strip_prefix('/') {
            Some(after) => (true, after),
            None => (false, after),
        };
        if !after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let name_len = after
            .find(|c: char| is_space(c) || c == '/' || c == '>')
            .unwrap_or(after.len());
        let name = known(&after[..name_len])?;
        let mut rest = &after[name_len..];
        if end {
            if name == "br" {
                return None;
            }
            rest = rest.trim_start_matches(is_space);
            let rest = rest.strip_prefix('>')?;
            return Some((Tag::End(name), markup.len() - rest.len()));
        }
        let mut attributes: Vec<(String, String)> = Vec::new();
        loop {
            rest = rest.trim_start_matches(is_space);
            let end = match rest.strip_prefix('>') {
                Some(after) => Some((false, after)),
                None => rest.strip_prefix("/>").map(|after| (true, after)),
            };
            if let Some((closed, after)) = end {
                let tag = Tag::Start {
                    name,
                    attributes,
                    closed,
                };
                return Some((tag, markup.len() - after.len()));
            }
            let (attribute, used) = attribute(rest)?;
            rest = &rest[used..];
            if !attributes.iter().any(|(n, _)| *n == attribute.0) {
                if attributes.len() == MAX_ATTRIBUTES {
                    return None;
                }
                attributes.push(attribute);
            }
        }
    }
}

/// The element of [`ELEMENTS`] a tag name (any case) names.
fn known(name: &str) -> Option<&'static str> {
    ELEMENTS
        .iter()
        .find(|e| e.eq_ignore_ascii_case(name))
        .copied()
}

/// Reads one attribute (`name`, `name="value"` or `name='value'`) and the bytes it takes; `None` for
/// any other form.
fn attribute(markup: &str) -> Option<((String, String), usize)> {
    let name_len = markup
        .find(|c: char| is_space(c) || matches!(c, '/' | '>' | '='))
        .unwrap_or(markup.len());
    let name = &markup[..name_len];
    if name.is_empty() || name.contains(['"', '\'', '<']) {
        return None;
    }
    let name = name.to_ascii_lowercase();
    let rest = markup[name_len..].trim_start_matches(is_space);
    let Some(rest) = rest.strip_prefix('=') else {
        // No value: the spaces read before whatever follows belong to no attribute.
        let used = markup.len() - rest.len();
        return Some(((name, String::new()), used));
    };
    let rest = rest.trim_start_matches(is_space);
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let body = &rest[1..];
    let close = body.find(quote)?;
    let value = decode(&body[..close])?;
    let after = &body[close + 1..];
    if !after.starts_with(|c: char| is_space(c) || c == '/' || c == '>') {
        return None;
    }
    Some(((name, value), markup.len() - after.len()))
}

/// `text` with its character references decoded, if each is one [`reference`] reads.
fn decode(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let (decoded, used) = reference(&rest[at + 1..])?;
        decoded.push_to(&mut out);
        rest = &rest[at + 1 + used..];
    }
    out.push_str(rest);
    Some(out)
}

/// A decoded character reference.
enum Decoded {
    /// A named one (or a lone `&`).
    Str(&'static str),
    /// A numeric one.
    Char(char),
}

impl Decoded {
    fn push_to(&self, out: &mut String) {
        match self {
            Decoded::Str(s) => out.push_str(s),
            Decoded::Char(c) => out.push(*c),
        }
    }
}

/// Named references read here (with their `;`).
const NAMED: &[(&str, &str)] = &[
    ("amp;", "&"),
    ("lt;", "<"),
    ("gt;", ">"),
    ("quot;", "\""),
    ("apos;", "'"),
    ("nbsp;", "\u{a0}"),
];

/// Reads the character reference after a `&`: what it stands for and the bytes it takes after the
/// `&`. A `&` before anything but a letter, digit or `#` stands for itself; `None` for references the
/// HTML5 parser reads with its own rules (other names, names without `;`, numbers it replaces).
fn reference(after: &str) -> Option<(Decoded, usize)> {
    let Some(first) = after.chars().next() else {
        return Some((Decoded::Str("&"), 0));
    };
    if first == '#' {
        let digits = &after[1..];
        let (radix, digits, skip) = match digits.strip_prefix(['x', 'X']) {
            Some(hex) => (16, hex, 2),
            None => (10, digits, 1),
        };
        let len = digits.find(';')?;
        let number = &digits[..len];
        if number.is_empty() || number.len() > 6 || !number.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let code = u32::from_str_radix(number, radix).ok()?;
        // Controls, C1 (which HTML maps to Windows-1252), surrogates and noncharacters: the parser's.
        let plain = matches!(code, 0x09 | 0x0A | 0x20..=0x7E | 0xA0..=0xFDCF | 0xFDF0..=0x10FFFF)
            && code & 0xFFFE != 0xFFFE;
        let c = char::from_u32(code).filter(|_| plain)?;
        return Some((Decoded::Char(c), skip + len + 1));
    }
    if !first.is_ascii_alphanumeric() {
        return Some((Decoded::Str("&"), 0));
    }
    NAMED
        .iter()
        .find(|(name, _)| after.starts_with(name))
        .map(|(name, c)| (Decoded::Str(c), name.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HTML5 parser's reading of `fragment`.
    fn parsed(fragment: &str) -> Rendered {
        crate::html::parsed(fragment)
    }

    #[test]
    fn mastodon_post_html_is_read_here_as_the_parser_reads_it() {
        for fragment in [
            "<p>Hello <b>world</b></p><p>second<br>line</p>",
            "<p>caf&#233; &amp; &lt;tea&gt; &quot;x&quot; &#39;y&#39; &#x1F600; a&nbsp;b</p>",
            r#"<p><span class="h-card" translate="no"><a href="https://a.example/@x" class="u-url mention">@<span>x</span></a></span> hi <a href="https://a.example/tags/coop" class="mention hashtag" rel="tag">#<span>coop</span></a></p>"#,
            r#"<p>see <a href="https://news.example/story?id=1&amp;p=2" target="_blank" rel="nofollow noopener noreferrer" translate="no"><span class="invisible">https://</span><span class="ellipsis">news.example/story</span><span class="invisible">?id=1</span></a></p>"#,
            "<P CLASS='x'>Upper <BR/> case</P>",
            "<p>one</p>\n<p>two<br />three</p>  ",
            "plain text & more; 5 &#60; yes",
            "<p>a & b &; c</p>",
            "",
            r#"<a href="http://x.example/" href="https://y.example/">first href wins</a>"#,
            r#"<a href = "https://x.example/" disabled>spaces</a>"#,
            r#"<a href="javascript:alert(1)">x</a> <a>none</a>"#,
            "<p><code>let x = 1;</code> <del>old</del> <s>gone</s> <u>u</u> <em>e</em> <i>i</i></p>",
        ] {
            let fast = render(fragment).unwrap_or_else(|| panic!("not read here: {fragment}"));
            assert_eq!(fast, parsed(fragment), "{fragment}");
        }
    }

    #[test]
    fn anything_else_goes_to_the_parser() {
        for fragment in [
            "<p>a<p>b</p></p>",
            "<b><p>x</p></b>",
            "<a href='https://x/'><a href='https://y/'>y</a></a>",
            "<b><i>x</b></i>",
            "<p>unclosed",
            "</p>",
            "<p>x</br></p>",
            "<div>x</div>",
            "<script>alert(1)</script>",
            "<!-- c --><p>x</p>",
            "<p>a < b</p>",
            "<p>caf&eacute;</p>",
            "<p>&amp</p>",
            "<p>&#128; &#0; &#xD800;</p>",
            "<p>line\r\nbreak</p>",
            "<a href=https://x/>x</a>",
            r#"<a href="x"class="y">x</a>"#,
            "<span/>",
            "<p>x</p",
            "\u{feff}<p>bom</p>",
        ] {
            assert!(render(fragment).is_none(), "read here: {fragment}");
            // The whole path hands it to the parser.
            assert_eq!(
                crate::html::render(fragment),
                parsed(fragment),
                "{fragment}"
            );
        }
    }

    /// Every string in `value`.
    fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_string_of_the_fixtures_renders_as_the_parser_reads_it() {
        let mut read_here = 0;
        for (name, fixture) in crate::test_support::fixtures() {
            let mut found = Vec::new();
            strings(&fixture, &mut found);
            for s in found {
                assert_eq!(crate::html::render(s), parsed(s), "{name}: {s}");
                read_here += usize::from(s.contains('<') && render(s).is_some());
            }
        }
        assert!(
            read_here > 5,
            "{read_here} fixture fragments with tags read here"
        );
    }

    /// Text pieces: words, spaces, the references read here and characters that are markup elsewhere.
    const TEXT: &[&str] = &[
        "word", " ", "\n", "\t", "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x2603;", "&nbsp;",
        "& ", "&;", "café", "東京", "#", "@", ";", "=", "'", "\"", ">", "/", "\u{c}",
    ];

    /// Start tags of inline elements, with their end tags.
    const INLINE: &[(&str, &str)] = &[
        ("<b>", "</b>"),
        ("<I>", "</i>"),
        ("<span>", "</span >"),
        ("<span class=\"invisible\">", "</span>"),
        ("<a href=\"https://l.example/x?a=1&amp;b=2\">", "</a>"),
        (
            "<a href='https://m.example/@u' class='u-url mention'>",
            "</a>",
        ),
        ("<a rel=\"tag\" href=\"https://t.example/tags/x\">", "</a>"),
        (
            "<a\nhref = \"http://plain.example/\" class=\"\" target=\"_blank\" nofollow>",
            "</a>",
        ),
        ("<a href=\"ftp://no.example/\">", "</a>"),
        ("<em>", "</em>"),
        ("<code>", "</code>"),
        ("<del>", "</DEL>"),
    ];

    /// Markup the scan refuses or that breaks the nesting, put in at random.
    const NOISE: &[&str] = &[
        "<p>",
        "</p>",
        "</b>",
        "</a>",
        "<div>",
        "</div>",
        "&copy;",
        "<!-- -->",
        "<",
        "</br>",
        "<p/>",
        "&#150;",
        "&amp",
        "<b/>",
        "\r",
        "<a href=x>",
    ];

    /// Inline content, `depth` levels of elements at most, `a` only outside `a`.
    fn inline(rng: &mut fastrand::Rng, depth: usize, in_link: bool, out: &mut String) {
        for _ in 0..rng.usize(0..6) {
            match rng.usize(0..10) {
                0 => out.push_str(if rng.bool() { "<br>" } else { "<br />" }),
                1..=3 if depth > 0 => {
                    let (start, end) = INLINE[rng.usize(..INLINE.len())];
                    let link = start.starts_with("<a");
                    if link && in_link {
                        continue;
                    }
                    out.push_str(start);
                    inline(rng, depth - 1, in_link || link, out);
                    out.push_str(end);
                }
                _ => out.push_str(TEXT[rng.usize(..TEXT.len())]),
            }
        }
    }

    /// A fragment shaped like post HTML (paragraphs of inline content, or inline content alone),
    /// one in four with a piece of noise put in somewhere.
    fn fragment(rng: &mut fastrand::Rng) -> String {
        let mut out = String::new();
        if rng.bool() {
            inline(rng, 3, false, &mut out);
        } else {
            for _ in 0..rng.usize(1..4) {
                out.push_str(if rng.bool() { "<p>" } else { "<P class=\"x\">" });
                inline(rng, 3, false, &mut out);
                out.push_str("</p>");
                if rng.bool() {
                    out.push_str(TEXT[rng.usize(..TEXT.len())]);
                }
            }
        }
        if rng.usize(0..4) == 0 {
            let mut at = rng.usize(0..=out.len());
            while !out.is_char_boundary(at) {
                at -= 1;
            }
            out.insert_str(at, NOISE[rng.usize(..NOISE.len())]);
        }
        out
    }

    #[test]
    fn what_is_read_here_matches_the_parser_on_many_generated_fragments() {
        let mut rng = fastrand::Rng::with_seed(7);
        let (mut read_here, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let fragment = fragment(&mut rng);
            if let Some(fast) = render(&fragment) {
                read_here += 1;
                assert_eq!(fast, parsed(&fragment), "{fragment:?}");
            } else {
                refused += 1;
            }
        }
        // The generator must exercise both the scan and its refusals.
        assert!(
            read_here > 10_000 && refused > 2_000,
            "{read_here} read, {refused} refused"
        );
    }
}
