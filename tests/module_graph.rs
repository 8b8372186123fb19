//! The crate's import graph, read from the sources: no two files may import each other, directly or
//! through others, and the parts below the HTTP surface import nothing of it. Import circles made
//! `app.rs` (state and wiring in one) and a dozen files depend on each other; this keeps them from
//! coming back.
//!
//! Every `crate::…`, `super::…` and `self::…` path outside comments, strings and test code is an edge
//! from the file it is written in to the file of the longest module prefix it names (`crate::store::Entry`
//! → `src/store/mod.rs`). Test modules (`#[cfg(test)] mod …`) are left out: tests may reach anywhere.
//! So are a module's uses of its own submodules: a `mod.rs` is the facade of the files under it, which
//! may use the types it defines (the store's files add methods to `Store`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Circles that are known and not yet broken, each with the files in it. A circle found must lie
/// inside one of these; remove an entry once its circle is gone.
const KNOWN_CIRCLES: &[&[&str]] = &[];

/// Top-level parts below the HTTP surface: they serve `web`, never the other way round.
const BELOW_WEB: &[&str] = &[
    "ap",
    "httpsig",
    "store",
    "federation",
    "discovery",
    "moderation",
];

/// A module path (`store::tail`) for every source file of the library, and its source.
fn library_files() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut test_only = BTreeSet::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                test_only.extend(test_only_children(&path, &text));
                files.insert(path, text);
            }
        }
    }
    files
        .into_iter()
        .filter(|(path, _)| !test_only.contains(path))
        .filter_map(|(path, text)| Some((module_of(&src, &path)?, text)))
        .collect()
}

/// `src/store/tail.rs` → `store::tail`, `src/store/mod.rs` → `store`; `None` for the crate roots.
fn module_of(src: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.is_empty() || parts == ["lib"] || parts == ["main"] {
        return None;
    }
    Some(parts.join("::"))
}

/// The files that `#[cfg(test)] mod name;` (or `#[cfg(test)] #[path = "…"] mod name;`) declares in
/// `path`.
fn test_only_children(path: &Path, text: &str) -> Vec<PathBuf> {
    let dir = path.parent().expect("parent");
    let own_dir = match path.file_stem().and_then(|s| s.to_str()) {
        Some("mod" | "lib" | "main") => dir.to_path_buf(),
        Some(stem) => dir.join(stem),
        None => dir.to_path_buf(),
    };
    let mut children = Vec::new();
    for (at, _) in text.match_indices("#[cfg(test)]") {
        let rest = text[at + "#[cfg(test)]".len()..].trim_start();
        let (explicit, rest) = match rest.strip_prefix("#[path = \"") {
            Some(after) => {
                let end = after.find('"').expect("path attribute");
                let close = after[end..].find(']').expect("attribute end");
                (Some(&after[..end]), after[end + close + 1..].trim_start())
            }
            None => (None, rest),
        };
        let rest = rest.strip_prefix("pub(crate) ").unwrap_or(rest);
        let Some(declaration) = rest.strip_prefix("mod ") else {
            continue;
        };
        let name: String = declaration
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !declaration[name.len()..].trim_start().starts_with(';') {
            continue;
        }
        match explicit {
            Some(file) => children.push(dir.join(file)),
            None => {
                children.push(own_dir.join(format!("{name}.rs")));
                children.push(own_dir.join(&name).join("mod.rs"));
            }
        }
    }
    children
}

/// The source with comments, string and character literals blanked and `#[cfg(test)]` items (a
/// module body in braces) removed.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_string_at(&chars, i) {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && chars[j + 1..].iter().take(hashes).all(|h| *h == '#') {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && char_literal_len(&chars, i).is_some() {
            i += char_literal_len(&chars, i).unwrap_or(1);
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    remove_test_modules(&out)
}

/// Whether `r` at `i` starts a raw string (`r"`, `r#"`), not an identifier ending in `r`.
fn raw_string_at(chars: &[char], i: usize) -> bool {
    let word = |k: usize| chars[k].is_alphanumeric() || chars[k] == '_';
    // `br"…"` is a raw byte string; `for"` or `xr"` would not be Rust.
    let after_b = i > 0 && chars[i - 1] == 'b' && (i < 2 || !word(i - 2));
    if i > 0 && word(i - 1) && !after_b {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// The length of a character literal at `i` (`'a'`, `'\n'`, `'\u{..}'`), `None` for a lifetime.
fn char_literal_len(chars: &[char], i: usize) -> Option<usize> {
    if chars.get(i + 1) == Some(&'\\') {
        let end = chars.get(i + 3..)?.iter().position(|c| *c == '\'')?;
        return Some(end + 4);
    }
    (chars.get(i + 2) == Some(&'\'')).then_some(3)
}

/// `code` without the `#[cfg(test)]` modules written inline (`#[cfg(test)] mod tests { … }`).
fn remove_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find(['{', ';']) else {
            break;
        };
        if after.as_bytes()[open] == b';' || !after[..open].contains("mod ") {
            out.push_str("#[cfg(test)]");
            rest = &after["#[cfg(test)]".len()..];
            continue;
        }
        let mut depth = 0;
        let mut end = after.len();
        for (k, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The module paths `code` (of module `module`) names through `crate::`, `super::` or `self::`,
/// with `use` trees (`crate::a::{b, c::{d}}`) expanded.
fn named_paths(module: &str, code: &str) -> BTreeSet<Vec<String>> {
    let own: Vec<String> = module.split("::").map(String::from).collect();
    let mut paths = BTreeSet::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let root = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|r| starts_word && chars[i..].iter().take(r.len()).copied().eq(r.chars()));
        let Some(root) = root else {
            i += 1;
            continue;
        };
        let base: Vec<String> = match root {
            "crate::" => Vec::new(),
            // A `mod.rs` module's parent is one level up, like any other file's.
            "super::" => own[..own.len() - 1].to_vec(),
            _ => own.clone(),
        };
        let (tree, len) = use_tree(&chars[i + root.len()..]);
        for path in expand(&tree) {
            let mut full = base.clone();
            full.extend(path);
            paths.insert(full);
        }
        i += root.len() + len;
    }
    paths
}

/// The path (or `{…}` tree) at the start of `chars` with runs of whitespace made one space, and how
/// many chars it took.
fn use_tree(chars: &[char]) -> (String, usize) {
    let mut tree = String::new();
    let mut depth = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => break,
            c if c.is_alphanumeric() || c == '_' || c == ':' || c == '*' || c == ',' => {}
            c if c.is_whitespace() => {
                if !tree.ends_with(' ') {
                    tree.push(' ');
                }
                i += 1;
                continue;
            }
            _ if depth == 0 => break,
            _ => {}
        }
        tree.push(c);
        i += 1;
    }
    (tree, i)
}

/// `a::{b,c::{d,e}}` → `a::b`, `a::c::d`, `a::c::e` (each split into segments; `self` drops out).
fn expand(tree: &str) -> Vec<Vec<String>> {
    let segments = |s: &str| -> Vec<String> {
        s.split("::")
            // `d as e` names `d`.
            .filter_map(|p| p.split_whitespace().next())
            .filter(|p| *p != "self" && *p != "*")
            .map(String::from)
            .collect()
    };
    let Some(open) = tree.find('{') else {
        return vec![segments(tree)];
    };
    let prefix = segments(&tree[..open]);
    let inner = tree[open + 1..]
        .strip_suffix('}')
        .unwrap_or(&tree[open + 1..]);
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    let mut out = vec![prefix.clone()];
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        for tail in expand(part) {
            let mut full = prefix.clone();
            full.extend(tail);
            out.push(full);
        }
    }
    out
}

/// Which files each file imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = library_files();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &files {
        let targets = edges.entry(module.clone()).or_default();
        for path in named_paths(module, &code_only(text)) {
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|m| files.contains_key(m));
            if let Some(target) = target
                && target != *module
                && !target.starts_with(&format!("{module}::"))
            {
                targets.insert(target);
            }
        }
    }
    edges
}

/// The strongly connected components of more than one file (Tarjan's algorithm).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for next in &w.edges[v] {
            let next = next.as_str();
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[v].min(w.low[next]);
                w.low.insert(v, low);
            } else if w.stack.contains(&next) {
                let low = w.low[v].min(w.index[next]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = BTreeSet::new();
            while let Some(top) = w.stack.pop() {
                component.insert(top.to_string());
                if top == v {
                    break;
                }
            }
            if component.len() > 1 {
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            visit(&mut walk, v);
        }
    }
    walk.found
}

#[test]
fn no_file_imports_itself_through_others() {
    let edges = graph();
    assert!(
        edges.contains_key("state") && edges.contains_key("web::routes"),
        "the graph was read: {:?}",
        edges.keys().collect::<Vec<_>>()
    );
    let unknown: Vec<_> = circles(&edges)
        .into_iter()
        .filter(|circle| {
            !KNOWN_CIRCLES
                .iter()
                .any(|known| circle.iter().all(|m| known.contains(&m.as_str())))
        })
        .map(|circle| {
            let detail: Vec<String> = circle
                .iter()
                .map(|m| {
                    let inside: Vec<_> = edges[m].intersection(&circle).collect();
                    format!("{m} -> {inside:?}")
                })
                .collect();
            detail.join("; ")
        })
        .collect();
    assert!(unknown.is_empty(), "import circles: {unknown:#?}");
}

#[test]
fn only_the_binary_reaches_the_wiring() {
    let edges = graph();
    let importers: Vec<_> = edges
        .iter()
        .filter(|(_, targets)| targets.contains("app"))
        .map(|(module, _)| module)
        .collect();
    assert!(importers.is_empty(), "import app: {importers:?}");
    assert!(
        !edges["state"].iter().any(|t| t == "web::routes"),
        "the state knows nothing of routes"
    );
}

#[test]
fn the_parts_below_the_http_surface_import_nothing_of_it() {
    let edges = graph();
    let upward: Vec<String> = edges
        .iter()
        .filter(|(module, _)| BELOW_WEB.iter().any(|p| top(module) == *p))
        .flat_map(|(module, targets)| {
            targets
                .iter()
                .filter(|t| top(t) == "web")
                .map(move |t| format!("{module} -> {t}"))
        })
        .collect();
    assert!(upward.is_empty(), "{upward:#?}");
}

/// The top-level part a module belongs to.
fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn the_reader_sees_circles_and_skips_test_code() {
    let code = code_only(
        "use crate::a::{b, c::{self, d as e}};\n// crate::x\nlet s = \"crate::y\";\nfn f() { super::z::g(); }\n#[cfg(test)]\nmod tests { use crate::t; }\n",
    );
    let paths: Vec<Vec<String>> = named_paths("p::q", &code).into_iter().collect();
    assert_eq!(
        paths,
        vec![
            vec!["a"],
            vec!["a", "b"],
            vec!["a", "c"],
            vec!["a", "c", "d"],
            vec!["p", "z", "g"],
        ]
    );
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
            .into_iter()
            .map(|(from, to)| (from.to_string(), BTreeSet::from([to.to_string()])))
            .collect();
    assert_eq!(
        circles(&edges),
        vec![BTreeSet::from(["a".into(), "b".into(), "c".into()])]
    );
}
