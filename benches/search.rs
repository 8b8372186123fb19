//! The discovery index under a realistic load: builds an index of synthetic posts through the same
//! `add_post` the relay calls (ActivityPub JSON in, consent checked, HTML parsed, language read or
//! detected), then times a fixed mix of queries.
//!
//! Run: `cargo bench --bench search` (1,000,000 posts; several minutes), or
//! `cargo bench --bench search -- --posts 50000` for a quick run. Other flags: `--queries N` (per
//! class, default 200), `--feeders N` (threads calling `add_post`, default 2), `--writer-mb N` (the
//! index writer's memory budget while ingesting, default 128; the relay's `index_writer_memory_mb`),
//! `--writer-threads N` (tantivy's indexing threads, default 1 as the relay), `--commit-docs N` (commit
//! every N posts, default 250,000; the relay commits every `index_commit_ms`, a few thousand posts at most),
//! `--dir PATH` (keep the index there instead of a temporary directory), `--query-only --dir PATH`
//! (time the queries on an index kept earlier), `--show-slowest` (print each class's three slowest
//! queries: what to profile next).
//!
//! The corpus: five languages (English 40 %, German, French, Spanish and Japanese 15 % each), words
//! drawn from a Zipf distribution (exponent 1.07) over 50,000 words per language (the ~50 most frequent
//! of each Latin-script one are its real function words, the rest made of syllables), post lengths from 3
//! to about 120 words (median ~20, as on Mastodon), Japanese as running CJK text, 0–3 hashtags from
//! 5,000 (Zipf), 10,000 authors on 500 instances, publication times over a year, 80 % with a
//! `contentMap` (the rest go through language detection), 10 % with media, 2 % polls, 30 % replies.
//!
//! Printed: ingest rate (wall time of `add_post` and the commits, generating the JSON excluded) and the
//! process's CPU per post while ingesting (generation included), index
//! size on disk, peak RSS while ingesting and — after reopening — with the index open and queried (the
//! peak is reset in between through `/proc/self/clear_refs`), and p50/p99 latency of each query class
//! with and without facets (relevance order, 20 results with snippets and authors, as the API serves),
//! and p50/p99 of the relay's search page (`/search`: the query with facets, built and rendered), of
//! the FASP `account_search` directory query (a few terms, as the endpoint builds it) and of
//! `follow_recommendation` (for the authors of the newest posts).
//!
//! Trends: one post in seven links one of 997 news pages (chosen from the post number, so the rest of
//! the corpus is unchanged); 400 of the newest posts get 0–12 boosts each from random authors (the
//! share signals the relay's store would hand over), then p50/p99 of the trends calls (content,
//! hashtags, links; windows of 4, 24 and 168 hours; no language, `en` or `de`; 20 results).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plaza_index::{Index, IndexConfig, SearchRequest};
use serde_json::{Value, json};

/// The allocator the relay runs with (see `src/main.rs`), set up as the relay sets it up
/// (`plaza::allocator::tune`, first thing in `main`): ingest allocates many short-lived strings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "cargo bench --bench search -- [--posts N] [--queries N] [--feeders N] \
[--writer-mb N] [--writer-threads N] [--commit-docs N] [--dir PATH] [--query-only --dir PATH] [--show-slowest]
(the module documentation of benches/search.rs says what each does)";

const AUTHORS: usize = 10_000;
const INSTANCES: usize = 500;
const WORDS_PER_LANGUAGE: usize = 50_000;
const TAGS: usize = 5_000;
const ZIPF_EXPONENT: f64 = 1.07;
const DAY: i64 = 86_400;

struct Args {
    posts: usize,
    queries: usize,
    feeders: usize,
    /// Tantivy's indexing threads.
    writer_threads: usize,
    /// Posts between commits.
    commit_docs: usize,
    /// The index writer's memory budget while ingesting (the relay's `index_writer_memory_mb`).
    writer_mb: usize,
    dir: Option<PathBuf>,
    /// Internal: only the query phase, on the index in `dir` (run in a fresh process, so its memory is
    /// that of an open index and not what ingesting left behind).
    query_only: bool,
    /// Print the slowest queries of each class (what to profile next).
    show_slowest: bool,
}

fn args() -> Args {
    let mut args = Args {
        posts: 1_000_000,
        queries: 200,
        feeders: 2,
        writer_threads: 1,
        commit_docs: 250_000,
        writer_mb: 128,
        dir: None,
        query_only: false,
        show_slowest: false,
    };
    let mut it = std::env::args().skip(1);
    // The number after a flag; `current` when it is missing or not a number.
    let number = |it: &mut std::iter::Skip<std::env::Args>, current: usize| {
        it.next().and_then(|v| v.parse().ok()).unwrap_or(current)
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--posts" => args.posts = number(&mut it, args.posts),
            "--queries" => args.queries = number(&mut it, args.queries),
            "--feeders" => args.feeders = number(&mut it, args.feeders).max(1),
            "--writer-mb" => args.writer_mb = number(&mut it, args.writer_mb).max(15),
            "--writer-threads" => {
                args.writer_threads = number(&mut it, args.writer_threads).clamp(1, 8)
            }
            "--commit-docs" => args.commit_docs = number(&mut it, args.commit_docs).max(1),
            "--help" | "-h" => {
                println!("{}", USAGE);
                std::process::exit(0);
            }
            "--dir" => args.dir = it.next().map(PathBuf::from),
            "--query-only" => args.query_only = true,
            "--show-slowest" => args.show_slowest = true,
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    args
}

/// Samples ranks 0..n with probability proportional to 1 / (rank + 1)^s.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|r| {
                total += 1.0 / (r as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        let cumulative = cumulative.into_iter().map(|c| c / total).collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let u = rng.f64();
        self.cumulative.partition_point(|&c| c < u)
    }
}

/// A language of the synthetic corpus: its code and its words by frequency rank.
struct Language {
    code: &'static str,
    words: Vec<String>,
    cjk: bool,
}

/// A language's words, most frequent first: its real most frequent words (the function words the index
/// lists as common, as in any real text), then words made of its syllables.
fn latin_words(code: &str, syllables: &[&str], seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut words: Vec<String> = plaza_index::common_grams::common_words(code)
        .iter()
        .map(|w| (*w).to_owned())
        .collect();
    let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
    while words.len() < WORDS_PER_LANGUAGE {
        // Frequent words are short, as in real languages.
        let max = 1 + (words.len() as f64).log10().max(0.0) as usize;
        let n = 1 + rng.usize(..max.clamp(1, 4));
        let word: String = (0..n)
            .map(|_| syllables[rng.usize(..syllables.len())])
            .collect();
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

fn languages() -> Vec<Language> {
    let en = [
        "the", "an", "ing", "er", "co", "op", "work", "ers", "ly", "ment", "bak", "ry", "com",
        "mu", "ni", "ty", "shar", "ed", "fo", "od", "gar", "den", "hou", "sing", "to", "wn", "ta",
        "ble",
    ];
    let de = [
        "ge", "nos", "sen", "schaft", "ver", "ein", "ar", "beit", "bau", "er", "hof", "ung",
        "lich", "keit", "stadt", "haus", "brot", "mit", "glie", "der", "zu", "sam", "men", "wohn",
    ];
    let fr = [
        "co", "o", "pé", "ra", "ti", "ve", "bou", "lan", "ge", "rie", "mai", "son", "é", "té",
        "ment", "ri", "ère", "jar", "din", "par", "ta", "ge", "quar", "tier", "ci", "toy", "en",
    ];
    let es = [
        "co", "o", "pe", "ra", "ti", "va", "pa", "na", "de", "rí", "a", "ca", "sa", "ción", "ba",
        "rrio", "tra", "ba", "jo", "ve", "ci", "nos", "huer", "to", "mer", "ca", "do",
    ];
    let mut cjk: Vec<String> = (0x3041u32..0x3097)
        .chain(0x4E00..0x4E00 + 2_000)
        .filter_map(char::from_u32)
        .map(String::from)
        .collect();
    fastrand::Rng::with_seed(5).shuffle(&mut cjk);
    vec![
        Language {
            code: "en",
            words: latin_words("en", &en, 1),
            cjk: false,
        },
        Language {
            code: "de",
            words: latin_words("de", &de, 2),
            cjk: false,
        },
        Language {
            code: "fr",
            words: latin_words("fr", &fr, 3),
            cjk: false,
        },
        Language {
            code: "es",
            words: latin_words("es", &es, 4),
            cjk: false,
        },
        Language {
            code: "ja",
            words: cjk,
            cjk: true,
        },
    ]
}

/// Everything the generator needs, built once.
struct Corpus {
    languages: Vec<Language>,
    word_zipf: Zipf,
    char_zipf: Zipf,
    tag_zipf: Zipf,
    tags: Vec<String>,
    authors: Vec<(Value, String)>,
    now: i64,
}

impl Corpus {
    fn new() -> Corpus {
        let languages = languages();
        let char_count = languages[4].words.len();
        let authors = (0..AUTHORS)
            .map(|i| {
                let host = format!("i{}.example", i % INSTANCES);
                let id = format!("https://{host}/users/u{i}");
                let actor = json!({
                    "id": id,
                    "type": if i % 50 == 0 { "Organization" } else { "Person" },
                    "preferredUsername": format!("u{i}"),
                    "name": format!("User {i}"),
                    "summary": format!("<p>Member of a co-op, account {i}</p>"),
                    "indexable": true,
                    "discoverable": i % 3 == 0,
                    "published": "2022-01-01T00:00:00Z",
                    "icon": {"type": "Image", "url": format!("https://{host}/a/{i}.png")},
                });
                (actor, host)
            })
            .collect();
        Corpus {
            languages,
            word_zipf: Zipf::new(WORDS_PER_LANGUAGE, ZIPF_EXPONENT),
            char_zipf: Zipf::new(char_count, ZIPF_EXPONENT),
            tag_zipf: Zipf::new(TAGS, ZIPF_EXPONENT),
            tags: (0..TAGS).map(|i| format!("tag{i}")).collect(),
            authors,
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    fn language(&self, rng: &mut fastrand::Rng) -> &Language {
        match rng.u32(..100) {
            0..40 => &self.languages[0],
            40..55 => &self.languages[1],
            55..70 => &self.languages[2],
            70..85 => &self.languages[3],
            _ => &self.languages[4],
        }
    }

    /// Words in a post: 3 to ~120, median about 20.
    fn length(rng: &mut fastrand::Rng) -> usize {
        let u = rng.f64().max(1e-9);
        (3.0 + (-u.ln()) * 24.0).min(120.0) as usize
    }

    fn text(&self, language: &Language, rng: &mut fastrand::Rng) -> String {
        let n = Self::length(rng);
        let mut text = String::with_capacity(n * 8);
        if language.cjk {
            for i in 0..n * 2 {
                text.push_str(&language.words[self.char_zipf.sample(rng)]);
                if i % 17 == 16 {
                    text.push('、');
                }
            }
            text.push('。');
        } else {
            for i in 0..n {
                if i > 0 {
                    text.push(' ');
                }
                text.push_str(&language.words[self.word_zipf.sample(rng)]);
            }
        }
        text
    }

    /// One post as the relay would receive it, with its author and instance.
    fn post(&self, n: usize, rng: &mut fastrand::Rng) -> (Value, &Value, &str) {
        let (author, host) = &self.authors[rng.usize(..AUTHORS)];
        let language = self.language(rng);
        let text = self.text(language, rng);
        let tags: Vec<&String> = (0..rng.usize(..4))
            .map(|_| &self.tags[self.tag_zipf.sample(rng)])
            .collect();
        let mut html = format!("<p>{text}</p>");
        if n.is_multiple_of(7) {
            let page = n.wrapping_mul(2_654_435_761) % 997;
            html.push_str(&format!(
                " <a href=\"https://news{}.example/story/{page}\">news</a>",
                page % 50
            ));
        }
        for tag in &tags {
            html.push_str(&format!(
                " <a href=\"https://{host}/tags/{tag}\" class=\"mention hashtag\" rel=\"tag\">#<span>{tag}</span></a>"
            ));
        }
        let published = self.now - rng.i64(0..365 * DAY);
        let published = time::OffsetDateTime::from_unix_timestamp(published)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        let id = format!("{}/statuses/{n}", author["id"].as_str().expect("id"));
        let mut post = json!({
            "id": id,
            "type": "Note",
            "attributedTo": author["id"],
            "content": html,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": [format!("{}/followers", author["id"].as_str().expect("id"))],
            "published": published,
            "url": format!("https://{host}/@x/{n}"),
            "sensitive": rng.u32(..100) < 5,
            "tag": tags.iter().map(|t| json!({"type": "Hashtag", "name": format!("#{t}"),
                "href": format!("https://{host}/tags/{t}")})).collect::<Vec<_>>(),
        });
        if rng.u32(..100) < 80 {
            post["contentMap"] = json!({ language.code: html });
        }
        if rng.u32(..100) < 10 {
            post["attachment"] = json!([{"type": "Document", "mediaType": "image/jpeg",
                "url": format!("https://{host}/m/{n}.jpg"), "name": self.text(language, rng)}]);
        }
        if rng.u32(..100) < 2 {
            post["type"] = json!("Question");
            post["oneOf"] = json!([{"name": "yes"}, {"name": "no"}]);
        }
        if rng.u32(..100) < 30 {
            post["inReplyTo"] = json!(format!("https://{host}/statuses/{}", rng.u64(..)));
        }
        (post, author, host)
    }
}

fn status(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user and system) this process has used so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Feeds `posts` posts through `add_post` from `feeders` threads (the index takes `&self`, so the relay
/// may feed it from several). Returns the wall time and the CPU time spent generating JSON.
fn ingest(index: &Index, corpus: &Corpus, posts: usize, feeders: usize) -> (Duration, Duration) {
    let started = Instant::now();
    let generating: Duration = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..feeders)
            .map(|f| {
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(42 + f as u64);
                    let mut generating = Duration::ZERO;
                    for n in (f..posts).step_by(feeders) {
                        let t = Instant::now();
                        let (post, author, host) = corpus.post(n, &mut rng);
                        generating += t.elapsed();
                        let verdict = index.add_post(&post, author, host).expect("add_post");
                        assert!(verdict.allowed());
                        if f == 0 && (n + feeders) % 100_000 < feeders {
                            eprintln!(
                                "  {} posts, {:.0} s",
                                n + 1,
                                started.elapsed().as_secs_f64()
                            );
                        }
                    }
                    generating
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("feeder")).sum()
    });
    index.commit().expect("commit");
    // Generation ran in parallel on `feeders` threads: its share of the wall time.
    (started.elapsed(), generating / feeders as u32)
}

/// The query mix: each class is a function making one query string.
/// A query class: its name and how to make one query of it.
type QueryClass<'a> = (&'static str, Box<dyn Fn(&mut fastrand::Rng) -> String + 'a>);

fn classes(corpus: &Corpus) -> Vec<QueryClass<'_>> {
    // Query words: ranks spread log-uniformly from the 20th to the 20,000th most frequent word.
    let word = move |rng: &mut fastrand::Rng, lang: &Language| -> String {
        let rank = (20f64 * (1000f64).powf(rng.f64())) as usize;
        lang.words[rank.min(lang.words.len() - 1)].clone()
    };
    let latin = move |rng: &mut fastrand::Rng| &corpus.languages[rng.usize(..4)];
    vec![
        (
            "single word",
            Box::new(move |rng: &mut fastrand::Rng| {
                let lang = latin(rng);
                word(rng, lang)
            }),
        ),
        (
            "two words",
            Box::new(move |rng: &mut fastrand::Rng| {
                let lang = latin(rng);
                format!("{} {}", word(rng, lang), word(rng, lang))
            }),
        ),
        (
            "phrase",
            Box::new(move |rng: &mut fastrand::Rng| {
                // Two adjacent words of a generated post: a phrase that exists.
                let lang = latin(rng);
                let text = corpus.text(lang, rng);
                let words: Vec<&str> = text.split(' ').collect();
                let i = rng.usize(..words.len().saturating_sub(1).max(1));
                format!("\"{}\"", words[i..(i + 2).min(words.len())].join(" "))
            }),
        ),
        (
            "#tag",
            Box::new(move |rng: &mut fastrand::Rng| {
                format!("#{}", corpus.tags[corpus.tag_zipf.sample(rng)])
            }),
        ),
        (
            "from:",
            Box::new(move |rng: &mut fastrand::Rng| {
                let i = rng.usize(..AUTHORS);
                format!("from:u{i}@i{}.example", i % INSTANCES)
            }),
        ),
        (
            "date range",
            Box::new(move |rng: &mut fastrand::Rng| {
                let start = corpus.now - rng.i64(30 * DAY..365 * DAY);
                let day = |t: i64| {
                    let d = time::OffsetDateTime::from_unix_timestamp(t)
                        .expect("time")
                        .date();
                    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
                };
                format!("after:{} before:{}", day(start), day(start + 14 * DAY))
            }),
        ),
    ]
}

fn main() {
    plaza::allocator::tune();
    let args = args();
    let corpus = Corpus::new();
    if args.query_only {
        let dir = args.dir.as_deref().expect("--query-only needs --dir");
        queries(&corpus, dir, args.queries, args.show_slowest);
        return;
    }
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().join("index"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear the index directory");
    }
    let config = IndexConfig {
        writer_memory_bytes: args.writer_mb << 20,
        writer_threads: args.writer_threads,
        commit_interval: Duration::from_secs(30),
        commit_docs: args.commit_docs,
        ..IndexConfig::default()
    };
    println!(
        "plaza-index search benchmark: {} posts fed by {} threads, {} indexing thread(s), {} MiB writer budget, {} queries per class",
        args.posts, args.feeders, args.writer_threads, args.writer_mb, args.queries
    );
    let cpu_before = process_cpu();
    let (wall, generating) = {
        let index = Index::open(&dir, config).expect("open");
        ingest(&index, &corpus, args.posts, args.feeders)
    };
    let ingest_time = wall.saturating_sub(generating);
    println!(
        "ingest: {:.0} posts/s ({:.1} s of wall time in add_post and commits; generating the JSON took {:.1} s more)",
        args.posts as f64 / ingest_time.as_secs_f64(),
        ingest_time.as_secs_f64(),
        generating.as_secs_f64()
    );
    let cpu = process_cpu().saturating_sub(cpu_before);
    println!(
        "ingest CPU: {:.0} µs per post, generation included ({:.2} cores busy on average)",
        cpu.as_secs_f64() * 1e6 / args.posts as f64,
        cpu.as_secs_f64() / wall.as_secs_f64()
    );
    println!("peak RSS while ingesting: {}", mib(status("VmHWM:")));
    println!(
        "index size on disk: {:.0} MiB",
        dir_size(&dir) as f64 / (1 << 20) as f64
    );
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args([
            "--query-only",
            "--queries",
            &args.queries.to_string(),
            "--dir",
        ])
        .arg(&dir)
        .args(args.show_slowest.then_some("--show-slowest"))
        .status()
        .expect("query phase");
    assert!(status.success(), "query phase failed");
}

/// The query phase: opens the index as the relay would and times each query class.
fn queries(corpus: &Corpus, dir: &Path, queries: usize, show_slowest: bool) {
    let index = Index::open(
        dir,
        IndexConfig {
            writer_memory_bytes: 32 << 20,
            ..IndexConfig::default()
        },
    )
    .expect("reopen");
    let counts = index.counts().expect("counts");
    let segments = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "idx"))
                .count()
        })
        .unwrap_or(0);
    println!(
        "documents: {} posts, {} actors ({} listed), {} segments",
        counts.posts, counts.actors, counts.profiles, segments
    );
    let mut rng = fastrand::Rng::with_seed(7);
    println!(
        "{:<12} {:>10} {:>10} {:>12} {:>12} {:>10}",
        "query", "p50", "p99", "p50 facets", "p99 facets", "hits p50"
    );
    let (mut worst, mut worst_faceted) = (Duration::ZERO, Duration::ZERO);
    for (name, make) in classes(corpus) {
        let mut plain = Vec::with_capacity(queries);
        let mut faceted = Vec::with_capacity(queries);
        let mut hits = Vec::with_capacity(queries);
        let mut slowest: Vec<(Duration, String)> = Vec::with_capacity(queries);
        for i in 0..queries + 10 {
            let q = make(&mut rng);
            let mut request = SearchRequest::new(q.clone());
            let t = Instant::now();
            let page = index
                .search_posts(&request)
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            let plain_time = t.elapsed();
            request.facets = true;
            let t = Instant::now();
            let with_facets = index
                .search_posts(&request)
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            let facet_time = t.elapsed();
            assert!(with_facets.facets.is_some());
            // The first ten warm the caches.
            if i >= 10 {
                plain.push(plain_time);
                faceted.push(facet_time);
                hits.push(page.total);
                slowest.push((plain_time.max(facet_time), q));
            }
        }
        plain.sort();
        faceted.sort();
        hits.sort_unstable();
        worst = worst.max(percentile(&plain, 0.99));
        worst_faceted = worst_faceted.max(percentile(&faceted, 0.99));
        println!(
            "{:<12} {:>10} {:>10} {:>12} {:>12} {:>10}",
            name,
            ms(percentile(&plain, 0.5)),
            ms(percentile(&plain, 0.99)),
            ms(percentile(&faceted, 0.5)),
            ms(percentile(&faceted, 0.99)),
            hits[hits.len() / 2],
        );
        if show_slowest {
            slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
            for (time, q) in slowest.iter().take(3) {
                println!("    slowest: {} (with or without facets) {q}", ms(*time));
            }
        }
    }
    let page = search_page(corpus, &index, queries);
    let (account_search, recommend) = fasp_calls(&index, queries);
    let trends = trends(corpus, &index, queries);
    // One line to compare runs by (the regression guard of docs/performance.md).
    println!(
        "summary: {} posts; worst query p99 {} ({} with facets), search page p99 {}, trends p99 {}, \
         account_search p99 {}, follow_recommendation p99 {}",
        counts.posts,
        ms(worst),
        ms(worst_faceted),
        ms(page),
        ms(trends),
        ms(account_search),
        ms(recommend)
    );
    println!(
        "peak RSS of the process with the index open and queried: {} (at the end: {} anonymous, {} of mapped index files)",
        mib(status("VmHWM:")),
        mib(status("RssAnon:")),
        mib(status("RssFile:"))
    );
    println!(
        "resident pages of mapped index files by kind: {}",
        mapped_by_kind(dir)
    );
}

/// Resident memory of the mapped files of the index, summed by file extension (`/proc/self/smaps`).
fn mapped_by_kind(dir: &Path) -> String {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return "n/a".into();
    };
    let dir = dir.to_string_lossy();
    let mut by_kind: std::collections::BTreeMap<String, u64> = Default::default();
    let mut current: Option<String> = None;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            current = fields
                .get(5)
                .filter(|path| path.starts_with(&*dir))
                .map(|path| path.rsplit('.').next().unwrap_or("").to_owned());
        } else if let (Some(kind), Some(&"Rss:")) = (&current, fields.first()) {
            let kib: u64 = fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            *by_kind.entry(kind.clone()).or_default() += kib;
        }
    }
    by_kind
        .iter()
        .map(|(kind, kib)| format!("{kind} {}", mib(Some(*kib))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The relay's search page as a visitor gets it, without the HTTP round trip: the query with facets
/// (relevance, the page's 20 results), the page built from the results (snippets sanitised, avatar
/// links signed, facet and page links) and its template rendered to HTML. Queries cycle through the
/// classes above.
/// Times the search page; its p99.
fn search_page(corpus: &Corpus, index: &Index, queries: usize) -> Duration {
    use askama::Template as _;
    use plaza::federation::net::{AddressPolicy, Http, HttpSettings};
    use plaza::web::media_proxy::MediaProxy;
    use plaza::web::views::{PAGE_SIZE, SearchPage};

    let config = plaza::config::Config::default();
    let http = Http::new(HttpSettings {
        key: std::sync::Arc::new(plaza::httpsig::PrivateKey::generate().expect("key")),
        key_id: "http://localhost:8080/actor#main-key".into(),
        policy: AddressPolicy {
            allow_private: false,
        },
        max_fetch_bytes: 1 << 20,
        fetch_timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(5),
        user_agent: "plaza-bench".into(),
    })
    .expect("http client");
    let media = MediaProxy::with_secret(b"bench", http, 1 << 20, 1 << 20);
    let window = index.config().limits.max_window;
    let classes = classes(corpus);
    let mut rng = fastrand::Rng::with_seed(11);
    let mut times = Vec::with_capacity(queries);
    let mut bytes = Vec::with_capacity(queries);
    for i in 0..queries + 10 {
        let (name, make) = &classes[i % classes.len()];
        let q = make(&mut rng);
        let started = Instant::now();
        let request = SearchRequest {
            limit: PAGE_SIZE,
            facets: true,
            ..SearchRequest::new(q.clone())
        };
        let found = index
            .search_posts(&request)
            .unwrap_or_else(|e| panic!("{name} {q}: {e}"));
        let mut page = SearchPage::new(&config, &q, "relevance", false);
        page.show(&found, 1, window, &media);
        let html = page.render().expect("render");
        let elapsed = started.elapsed();
        // The first ten warm the caches.
        if i >= 10 {
            times.push(elapsed);
            bytes.push(html.len());
        }
    }
    times.sort();
    bytes.sort_unstable();
    println!(
        "search page (query with facets, page built and rendered): p50 {} p99 {} ({} queries over all classes, median page {} KiB)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        times.len(),
        bytes.get(bytes.len() / 2).copied().unwrap_or(0) / 1024,
    );
    percentile(&times, 0.99)
}

/// `queries` calls of `call` (after ten that warm the caches), sorted by duration.
fn timed(queries: usize, mut call: impl FnMut(usize)) -> Vec<Duration> {
    let mut times = Vec::with_capacity(queries);
    for i in 0..queries + 10 {
        let started = Instant::now();
        call(i);
        if i >= 10 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    times
}

/// The FASP discovery calls as the provider endpoints run them on the index: `account_search`'s
/// directory query (built by the endpoint's own parameter reading) for a few terms, and
/// `follow_recommendation` for authors of the newest posts.
/// Returns the worst account_search p99 and the follow_recommendation p99.
fn fasp_calls(index: &Index, queries: usize) -> (Duration, Duration) {
    use plaza::fasp::account_search;
    use plaza_index::{RecommendRequest, TimelineRequest};

    let mut worst = Duration::ZERO;
    for term in ["co-op", "member account", "user", "user 42"] {
        let request = account_search::request(&account_search::Params {
            term: Some(term.into()),
            ..account_search::Params::default()
        })
        .expect("account_search request");
        let mut found = 0;
        let times = timed(queries, |_| {
            found = index.directory(&request).expect("directory").hits.len();
        });
        println!(
            "FASP account_search {term:?}: p50 {} p99 {} ({found} results)",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
        );
        worst = worst.max(percentile(&times, 0.99));
    }
    // Accounts with indexed posts (the newest posts' authors), as a server's active users would be.
    let authors: Vec<String> = index
        .timeline(&TimelineRequest {
            limit: 40,
            ..TimelineRequest::default()
        })
        .expect("timeline")
        .hits
        .into_iter()
        .map(|h| h.account.uri)
        .collect();
    let mut found = Vec::with_capacity(queries + 10);
    let times = timed(queries, |i| {
        let request = RecommendRequest {
            account_uri: authors[i % authors.len()].clone(),
            ..RecommendRequest::default()
        };
        found.push(index.recommend_follows(&request).expect("recommend").len());
    });
    found.sort_unstable();
    println!(
        "FASP follow_recommendation: p50 {} p99 {} (median {} accounts recommended)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        found[found.len() / 2],
    );
    (worst, percentile(&times, 0.99))
}

/// Boosts of some of the newest posts, then the latency of each trends call (see the module
/// documentation).
fn trends(corpus: &Corpus, index: &Index, queries: usize) -> Duration {
    use plaza_index::{ShareSignal, TimelineRequest, TrendRequest};

    let mut rng = fastrand::Rng::with_seed(13);
    let mut recent = Vec::new();
    let mut cursor = None;
    while recent.len() < 400 {
        let page = index
            .timeline(&TimelineRequest {
                limit: 40,
                cursor: cursor.take(),
                ..TimelineRequest::default()
            })
            .expect("timeline");
        recent.extend(page.hits.iter().map(|h| h.post.uri.clone()));
        match page.next_cursor {
            Some(next) if !page.hits.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    let mut shares = Vec::new();
    for uri in &recent {
        for _ in 0..rng.usize(..13) {
            let (author, host) = &corpus.authors[rng.usize(..AUTHORS)];
            shares.push(ShareSignal {
                uri: uri.clone(),
                account: author["id"].as_str().expect("id").to_owned(),
                instance: host.clone(),
            });
        }
    }
    println!(
        "trends: {} boosts of {} recent posts",
        shares.len(),
        recent.len()
    );
    println!(
        "{:<12} {:>10} {:>10} {:>10}",
        "trends", "p50", "p99", "items p50"
    );
    let mut worst = Duration::ZERO;
    for name in ["content", "hashtags", "links"] {
        let mut times = Vec::with_capacity(queries);
        let mut items = Vec::with_capacity(queries);
        for i in 0..queries + 10 {
            let language = [None, Some("en"), Some("de")][(i / 3) % 3];
            let request =
                TrendRequest::new([4, 24, 168][i % 3], 20, language).expect("trend request");
            let started = Instant::now();
            let found = match name {
                "content" => index.trending_posts(&request, &shares),
                "hashtags" => index.trending_tags(&request),
                _ => index.trending_links(&request),
            }
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let elapsed = started.elapsed();
            // The first ten warm the caches.
            if i >= 10 {
                times.push(elapsed);
                items.push(found.len());
            }
        }
        times.sort();
        items.sort_unstable();
        worst = worst.max(percentile(&times, 0.99));
        println!(
            "{:<12} {:>10} {:>10} {:>10}",
            name,
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            items.get(items.len() / 2).copied().unwrap_or(0),
        );
    }
    worst
}
