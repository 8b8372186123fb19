//! What matching one post against every topic costs (issue 16 asks ≤ 50 µs per post at 1,000 topics,
//! 50 of them curated searches). Run: `cargo bench -p plaza-index --bench topic_match`
//! (`-- --posts N`, default 20,000).
//!
//! Posts (the mix of the relay's `search` benchmark, simplified): English 40 %, German, French, Spanish
//! and Japanese 15 % each, skewed word frequencies over 5,000 synthetic words per language, 3 to ~120
//! words (median ~20), 0–3 hashtags of 5,000, 500 instances, 80 % with a declared language (the rest
//! detected), 10 % with described media, 30 % replies. Topics: 700 hashtags, 20 languages, 230 instances
//! and 50 curated searches mixing words, phrases, hashtags, `OR`, exclusions and operators.
//!
//! Printed: the time to compile the topics, then mean, p50 and p99 of `Matcher::matches` per post
//! (reading the post's JSON excluded), and how many topics (and curated searches) a post matched on
//! average.

use std::hint::black_box;
use std::time::{Duration, Instant};

use plaza_index::document::Post;
use plaza_index::query::{self, QueryLimits};
use plaza_index::topic_match::{Matcher, Rule};
use serde_json::{Value, json};

const WORDS: usize = 5_000;
const TAGS: usize = 5_000;
const INSTANCES: usize = 500;

/// A small deterministic generator (splitmix64): the benchmark needs no randomness crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A rank in 0..n, low ranks far more often (a cube of a uniform draw: roughly Zipf-like).
    fn skewed(&mut self, n: usize) -> usize {
        ((self.unit().powi(3)) * n as f64) as usize
    }
}

/// Word `rank` of a language: its syllables are the digits of the rank (frequent words are short).
fn word(syllables: &[&str], rank: usize) -> String {
    let mut n = rank + 1;
    let mut out = String::new();
    while n > 0 {
        out.push_str(syllables[n % syllables.len()]);
        n /= syllables.len();
    }
    out
}

struct Language {
    code: &'static str,
    syllables: &'static [&'static str],
}

const LANGUAGES: [Language; 5] = [
    Language {
        code: "en",
        syllables: &[
            "the", "co", "op", "work", "ers", "ly", "bak", "ry", "mu", "ni", "ty", "den",
        ],
    },
    Language {
        code: "de",
        syllables: &[
            "ge", "nos", "sen", "schaft", "ver", "ein", "ar", "beit", "bau", "hof", "ung",
        ],
    },
    Language {
        code: "fr",
        syllables: &[
            "co", "o", "pé", "ra", "ti", "ve", "bou", "lan", "ge", "rie", "mai", "son",
        ],
    },
    Language {
        code: "es",
        syllables: &[
            "co", "o", "pe", "ra", "ti", "va", "pa", "na", "de", "rí", "a", "ción",
        ],
    },
    Language {
        code: "ja",
        syllables: &[
            "協", "同", "組", "合", "東", "京", "都", "の", "パ", "ン", "焼", "き",
        ],
    },
];

fn language(rng: &mut Rng) -> &'static Language {
    match rng.below(100) {
        0..40 => &LANGUAGES[0],
        40..55 => &LANGUAGES[1],
        55..70 => &LANGUAGES[2],
        70..85 => &LANGUAGES[3],
        _ => &LANGUAGES[4],
    }
}

fn text(language: &Language, rng: &mut Rng) -> String {
    let n = (3.0 + (-rng.unit().max(1e-9).ln()) * 24.0).min(120.0) as usize;
    let separator = if language.code == "ja" { "" } else { " " };
    (0..n)
        .map(|_| word(language.syllables, rng.skewed(WORDS)))
        .collect::<Vec<_>>()
        .join(separator)
}

fn post(n: usize, rng: &mut Rng) -> Post {
    let host = format!("i{}.example", rng.below(INSTANCES));
    let author_id = format!("https://{host}/users/u{}", rng.below(10_000));
    let author = json!({
        "id": author_id,
        "type": if n.is_multiple_of(50) { "Organization" } else { "Person" },
        "preferredUsername": format!("u{n}"),
    });
    let language = language(rng);
    let tags: Vec<String> = (0..rng.below(4))
        .map(|_| format!("tag{}", rng.skewed(TAGS)))
        .collect();
    let mut html = format!("<p>{}</p>", text(language, rng));
    for tag in &tags {
        html.push_str(&format!(
            " <a href=\"https://{host}/tags/{tag}\" rel=\"tag\">#<span>{tag}</span></a>"
        ));
    }
    let mut object = json!({
        "id": format!("{author_id}/statuses/{n}"),
        "type": "Note",
        "attributedTo": author_id,
        "content": html,
        "published": "2024-06-01T10:00:00Z",
        "tag": tags.iter().map(|t| json!({"type": "Hashtag", "name": format!("#{t}")})).collect::<Vec<_>>(),
    });
    if rng.below(100) < 80 {
        object["contentMap"] = json!({ language.code: html });
    }
    if rng.below(100) < 10 {
        object["attachment"] = json!([{"type": "Document", "mediaType": "image/jpeg",
            "url": format!("https://{host}/m/{n}.jpg"), "name": text(language, rng)}]);
    }
    if rng.below(100) < 30 {
        object["inReplyTo"] = Value::String(format!("https://{host}/statuses/{}", rng.next()));
    }
    Post::from_json(&object, &author, &host).expect("a valid post")
}

/// The 50 curated searches: frequent words, so that they do match and reach the text.
fn curated(rng: &mut Rng) -> Vec<String> {
    (0..50)
        .map(|i| {
            let language = &LANGUAGES[i % 4];
            let mut w = || word(language.syllables, rng.skewed(200));
            let tag = format!("tag{}", i * 7);
            match i % 6 {
                0 => format!("{} {}", w(), w()),
                1 => format!("\"{} {}\"", w(), w()),
                2 => format!("#{tag} OR #tag{} -is:reply", i * 7 + 1),
                3 => format!("language:{} {} -{}", language.code, w(), w()),
                4 => format!("type:organization {} OR {} has:media", w(), w()),
                _ => format!("{} OR #{tag} -\"{} {}\"", w(), w(), w()),
            }
        })
        .collect()
}

fn main() {
    let mut posts_wanted = 20_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--posts" {
            posts_wanted = args.next().and_then(|n| n.parse().ok()).expect("--posts N");
        }
    }
    let mut rng = Rng(16);
    let posts: Vec<Post> = (0..posts_wanted).map(|n| post(n, &mut rng)).collect();

    let codes = [
        "en", "de", "fr", "es", "ja", "it", "pt", "nl", "sv", "pl", "ru", "uk", "ko", "zh", "ar",
        "tr", "fi", "da", "no", "cs",
    ];
    let mut rules: Vec<Rule> = Vec::new();
    rules.extend((0..700).map(|i| Rule::Tag(format!("tag{i}"))));
    rules.extend(codes.iter().map(|c| Rule::Language((*c).to_owned())));
    rules.extend((0..230).map(|i| Rule::Instance(format!("i{i}.example"))));
    for q in curated(&mut rng) {
        let parsed = query::parse(&q, &QueryLimits::default()).expect("curated query parses");
        rules.push(Rule::Query(parsed));
    }
    let topics = rules.len();
    // The curated searches come last: their ids are the highest.
    let first_curated = u32::try_from(topics - 50).expect("few topics");
    let started = Instant::now();
    let matcher = Matcher::new((0u32..).zip(rules));
    let compiled = started.elapsed();

    // One pass to warm up (thread-local analyzers, caches), then the measured one.
    for post in posts.iter().take(1_000) {
        black_box(matcher.matches(post));
    }
    let mut times: Vec<Duration> = Vec::with_capacity(posts.len());
    let (mut matched, mut by_search) = (0usize, 0usize);
    for post in &posts {
        let started = Instant::now();
        let ids = black_box(matcher.matches(post));
        times.push(started.elapsed());
        matched += ids.len();
        by_search += ids.iter().filter(|id| **id >= first_curated).count();
    }
    let total: Duration = times.iter().sum();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!("topic matching: {topics} topics (50 curated searches), compiled in {compiled:?}");
    println!(
        "{} posts: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs per post; {:.2} topics matched per post ({:.2} of them curated searches)",
        posts.len(),
        micros(total) / posts.len() as f64,
        micros(at(0.5)),
        micros(at(0.99)),
        matched as f64 / posts.len() as f64,
        by_search as f64 / posts.len() as f64,
    );
}
