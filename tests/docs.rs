//! The documentation stays true: every `plaza …` command shown in README.md and docs/ exists with the
//! subcommands and options shown (asked of the built binary with `--help`), every benchmark it names
//! exists with the options shown, every relative link and anchor resolves, every source path named in
//! code or in Cargo.toml's comments exists, every configuration key is in the reference, and the README's
//! test command is the one CI runs.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A Markdown file split into what the checks read: fenced code lines (continuations joined), prose
/// lines, inline code spans of the prose, and headings.
struct Doc {
    code_lines: Vec<String>,
    prose: Vec<String>,
    spans: Vec<String>,
    headings: Vec<String>,
}

fn parse(text: &str) -> Doc {
    let mut doc = Doc {
        code_lines: Vec::new(),
        prose: Vec::new(),
        spans: Vec::new(),
        headings: Vec::new(),
    };
    let mut fence: Option<String> = None;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(lang.trim().to_string()),
            };
            continue;
        }
        match &fence {
            Some(lang) if lang == "text" => {}
            Some(_) => match line.strip_suffix('\\') {
                Some(head) => pending.push_str(head),
                None => {
                    pending.push_str(line);
                    doc.code_lines.push(std::mem::take(&mut pending));
                }
            },
            None => {
                if let Some(heading) = trimmed.strip_prefix('#') {
                    let heading = heading.trim_start_matches('#');
                    if heading.starts_with(' ') {
                        doc.headings.push(heading.trim().to_string());
                    }
                }
                let mut parts = line.split('`');
                parts.next();
                while let Some(span) = parts.next() {
                    doc.spans.push(span.to_string());
                    parts.next();
                }
                doc.prose.push(line.to_string());
            }
        }
    }
    doc
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every anchor a document offers, duplicates numbered as GitHub does (`name`, `name-1`, …).
fn anchors(doc: &Doc) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for heading in &doc.headings {
        let base = slug(heading);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of `[text](target)` and `![alt](target)` links in prose lines (code spans removed).
fn links(doc: &Doc) -> Vec<String> {
    let mut out = Vec::new();
    for line in &doc.prose {
        let without_code: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect();
        let mut rest = without_code.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn relative_links_and_anchors_resolve() {
    let files = documents();
    let parsed: HashMap<PathBuf, Doc> = files
        .iter()
        .map(|f| (f.canonicalize().expect("document path"), parse(&read(f))))
        .collect();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let doc = &parsed[&file.canonicalize().expect("path")];
        for target in links(doc) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a file's folder").join(path)
            };
            let Ok(resolved) = resolved.canonicalize() else {
                broken.push(format!("{}: {target}: no such file", name(file)));
                continue;
            };
            if let Some(fragment) = fragment {
                let offered = match parsed.get(&resolved) {
                    Some(doc) => anchors(doc),
                    None if resolved.extension().is_some_and(|e| e == "md") => {
                        anchors(&parse(&read(&resolved)))
                    }
                    None => BTreeSet::new(),
                };
                if !offered.contains(fragment) {
                    broken.push(format!(
                        "{}: {target}: no heading with that anchor in {} (it has: {offered:?})",
                        name(file),
                        name(&resolved)
                    ));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} relative links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Source paths the documents and Cargo.toml's comments name, root-relative.
fn named_paths(text: &str) -> Vec<String> {
    const ROOTS: &[&str] = &[
        "src/",
        "index/",
        "tests/",
        "benches/",
        "config/",
        "templates/",
        "static/",
        "docs/",
        ".ci/",
    ];
    text.split(|c: char| c.is_whitespace() || "`()[],;:".contains(c))
        .filter(|word| ROOTS.iter().any(|r| word.starts_with(r)))
        .map(|word| word.trim_end_matches('.').to_string())
        .filter(|word| {
            word.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        })
        .collect()
}

#[test]
fn named_source_paths_exist() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let doc = parse(&read(&file));
        for span in &doc.spans {
            for path in named_paths(span) {
                checked += 1;
                if !root().join(&path).exists() {
                    missing.push(format!("{}: `{path}`", name(&file)));
                }
            }
        }
    }
    let manifest = read(&root().join("Cargo.toml"));
    for comment in manifest
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('#'))
    {
        for path in named_paths(comment) {
            checked += 1;
            if !root().join(&path).exists() {
                missing.push(format!("Cargo.toml comment: {path}"));
            }
        }
    }
    assert!(checked > 30, "only {checked} paths found");
    assert!(
        missing.is_empty(),
        "paths named but not in the tree:\n{}",
        missing.join("\n")
    );
}

/// Splits a shell command line into words: quotes group, `#` after a space starts a comment.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None if c == '#' && !in_word => break,
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// What a documented command line asks for.
enum Shown {
    /// The `plaza` binary with these arguments.
    Plaza(Vec<String>),
    /// `cargo bench --bench NAME` with these arguments after `--`.
    Bench(String, Vec<String>),
}

fn shown(line: &str) -> Option<Shown> {
    let mut words = words(line);
    // Leading environment assignments (`PLAZA_X=… cargo run`).
    while words.first().is_some_and(|w| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
    }) {
        words.remove(0);
    }
    let words: Vec<String> = words
        .into_iter()
        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        .filter(|w| !w.is_empty() && !w.contains('…'))
        .collect();
    let first: Vec<&str> = words.iter().map(String::as_str).take(3).collect();
    match first.as_slice() {
        ["plaza", ..] => Some(Shown::Plaza(words[1..].to_vec())),
        ["cargo", "run", "--release"] | ["cargo", "run"] => {
            let rest = words.iter().skip_while(|w| *w != "--").skip(1).cloned();
            Some(Shown::Plaza(rest.collect()))
        }
        ["cargo", "bench", "--bench"] => {
            let bench = words.get(3)?.clone();
            let rest = words.iter().skip_while(|w| *w != "--").skip(1).cloned();
            Some(Shown::Bench(bench, rest.collect()))
        }
        _ => None,
    }
}

/// `plaza <chain> --help`: its text, or why it failed.
fn help(chain: &[String]) -> Result<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_plaza"))
        .args(chain)
        .arg("--help")
        .env_remove("PLAZA_ADMIN_URL")
        .output()
        .map_err(|e| format!("cannot run plaza: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "`plaza {} --help` failed: {}",
            chain.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The subcommands a help text lists under `Commands:`.
fn subcommands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

/// The long options a help text lists.
fn options(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split(['=', '<']).next().unwrap_or_default().to_string())
        .collect()
}

/// Checks one `plaza` invocation against the binary: each subcommand exists where it is used, each
/// option is one its (sub)command takes.
fn check_plaza(
    args: &[String],
    helps: &mut HashMap<Vec<String>, Result<String, String>>,
) -> Result<(), String> {
    let mut chain: Vec<String> = Vec::new();
    let mut after_option = false;
    let mut text = helps
        .entry(chain.clone())
        .or_insert_with(|| help(&[]))
        .clone()?;
    for arg in args {
        if arg.starts_with("--") {
            let option = arg.split('=').next().unwrap_or_default();
            if !options(&text).contains(option) {
                return Err(format!(
                    "`plaza {}` has no option {option}",
                    chain.join(" ")
                ));
            }
            after_option = !arg.contains('=');
            continue;
        }
        if arg.starts_with('-') {
            after_option = true;
            continue;
        }
        let commands = subcommands(&text);
        if commands.contains(arg) {
            chain.push(arg.clone());
            text = helps
                .entry(chain.clone())
                .or_insert_with(|| help(&chain))
                .clone()?;
        } else if !commands.is_empty()
            && !after_option
            && !arg.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        {
            return Err(format!(
                "`plaza {}` has no subcommand {arg:?} (it has {commands:?})",
                chain.join(" ")
            ));
        }
        after_option = false;
    }
    Ok(())
}

/// Checks one benchmark invocation: the bench is declared and its source takes each option shown.
fn check_bench(bench: &str, args: &[String]) -> Result<(), String> {
    let manifest = read(&root().join("Cargo.toml"));
    if !manifest.contains(&format!("[[bench]]\nname = \"{bench}\"")) {
        return Err(format!("Cargo.toml declares no bench {bench:?}"));
    }
    let source = std::fs::read_to_string(root().join("benches").join(format!("{bench}.rs")))
        .map_err(|e| format!("benches/{bench}.rs: {e}"))?;
    for option in args.iter().filter(|a| a.starts_with("--")) {
        if !source.contains(&format!("\"{option}\"")) {
            return Err(format!("benches/{bench}.rs does not read {option}"));
        }
    }
    Ok(())
}

#[test]
fn every_command_shown_exists() {
    let mut helps = HashMap::new();
    let mut wrong = Vec::new();
    let (mut plaza, mut benches) = (0, 0);
    for file in documents() {
        let doc = parse(&read(&file));
        let candidates = doc.code_lines.iter().chain(doc.spans.iter());
        for line in candidates {
            let outcome = match shown(line) {
                Some(Shown::Plaza(args)) => {
                    plaza += 1;
                    check_plaza(&args, &mut helps)
                }
                Some(Shown::Bench(bench, args)) => {
                    benches += 1;
                    check_bench(&bench, &args)
                }
                None => continue,
            };
            if let Err(why) = outcome {
                wrong.push(format!("{}: `{}`: {why}", name(&file), line.trim()));
            }
        }
    }
    assert!(plaza >= 25, "only {plaza} plaza commands found");
    assert!(benches >= 5, "only {benches} benchmark commands found");
    assert!(
        wrong.is_empty(),
        "commands that do not exist:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_catches_what_it_should() {
    let mut helps = HashMap::new();
    let args = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_string).collect() };
    assert!(
        check_plaza(
            &args("admin block spam.example --software --purge"),
            &mut helps
        )
        .is_ok()
    );
    assert!(check_plaza(&args("admin blok spam.example"), &mut helps).is_err());
    assert!(check_plaza(&args("admin block spam.example --softwar"), &mut helps).is_err());
    assert!(check_plaza(&args("serve --no-such-option"), &mut helps).is_err());
    assert!(check_bench("load", &args("--subscribers")).is_ok());
    assert!(check_bench("load", &args("--no-such-option")).is_err());
    assert!(check_bench("nope", &[]).is_err());
    assert_eq!(
        slug("ActivityPub: subscribing and relaying"),
        "activitypub-subscribing-and-relaying"
    );
    assert_eq!(
        slug("Behind a TLS-terminating `proxy`"),
        "behind-a-tls-terminating-proxy"
    );
    assert_eq!(
        words("plaza admin block x --reason \"spam wave\" --purge  # comment"),
        [
            "plaza",
            "admin",
            "block",
            "x",
            "--reason",
            "spam wave",
            "--purge"
        ]
    );
}

#[test]
fn every_setting_is_in_the_reference() {
    let reference = read(&root().join("docs/operations.md"));
    let keys: Vec<String> = read(&root().join("config/plaza.toml"))
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_string()))
        .filter(|k| !k.starts_with('#') && !k.is_empty())
        .collect();
    assert!(keys.len() > 30, "{keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !reference.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "config/plaza.toml keys missing from docs/operations.md: {missing:?}"
    );
}

#[test]
fn the_readme_test_command_is_what_ci_runs() {
    let ci = read(&root().join(".ci/run"));
    let command = ci
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with("cargo test"))
        .expect(".ci/run runs cargo test");
    let readme = parse(&read(&root().join("README.md")));
    assert!(
        readme.code_lines.iter().any(|l| l.trim() == command),
        "README.md does not show CI's test command `{command}`"
    );
}

#[test]
fn every_metric_is_in_the_reference() {
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = read(&file);
        for piece in text.split("\"plaza_").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !["_count", "_sum", "_bucket"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                names.insert(format!("plaza_{name}"));
            }
        }
    }
    assert!(names.len() > 20, "{names:?}");
    let reference = read(&root().join("docs/operations.md"));
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| {
            !reference.contains(&format!("`{n}`")) && !reference.contains(&format!("`{n}{{"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "metrics missing from docs/operations.md#metrics: {missing:?}"
    );
}
