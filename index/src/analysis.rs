//! Text analysis: how text becomes the terms of the index, for documents and queries alike.
//!
//! Words are split on anything that is not a letter or digit, lowercased, stemmed when the language is
//! known and has a stemmer, and folded to ASCII last (`café` and `cafe` are one term; stemming first,
//! because stemmers expect the accents of their language). Chinese, Japanese and Korean runs are cut into
//! overlapping bigrams (`東京都` → `東京`, `京都`), so any two adjacent characters are findable without a
//! dictionary.
//!
//! A document's text reaches tantivy [`tagged`] with its language, and the `text` field's tokenizer
//! ([`TaggedTokenizer`]) analyses it in that language, so one field holds text of every language, each
//! stemmed its own way (handing tantivy tokens instead, as pre-tokenized text, cost a JSON round trip of
//! every token). Queries get every stemmed form of a word (or only the one of `language:xx`), so
//! `running` finds an English post indexed as `run`.

use std::cell::RefCell;

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream,
    Tokenizer,
};

use crate::language;

/// The name the plain analyzer is registered under in the index (the text field of schema versions
/// before 4).
pub const PLAIN: &str = "plaza_plain";
/// The name of the tokenizer of `text`: text [`tagged`] with its language, analysed in that language.
pub const TAGGED: &str = "plaza_tagged";
/// The name of the tokenizer of `grams`: text [`tagged`] with its language, its pairs of common words
/// ([`crate::common_grams`]).
pub const GRAMS: &str = "plaza_grams";

/// Marks where the language code before a [`tagged`] text ends (a control character text from HTML
/// does not start with).
const TAG_END: char = '\u{1}';

/// Terms longer than this (in bytes) are dropped: they are URLs, hashes or noise.
const MAX_TERM_BYTES: usize = 40;

/// Whether a character belongs to a script written without spaces between words (or, for Hangul,
/// whose words are better matched by bigrams).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF     // Hangul Jamo
        | 0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3130..=0x318F   // Hangul compatibility Jamo
        | 0x31F0..=0x31FF   // Katakana extensions
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0xFF66..=0xFF9F   // half-width Katakana
        | 0x20000..=0x2FFFF // CJK extensions B–F
    )
}

/// Splits text into words and CJK bigrams (the first step of every analyzer here).
#[derive(Clone, Default)]
pub struct PlazaTokenizer {
    tokens: Vec<Token>,
}

/// The tokens of one text, handed out one by one.
pub struct PlazaTokenStream<'a> {
    tokens: &'a mut Vec<Token>,
    next: usize,
}

impl TokenStream for PlazaTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for PlazaTokenizer {
    type TokenStream<'a> = PlazaTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> PlazaTokenStream<'a> {
        self.tokens.clear();
        split(text, &mut self.tokens);
        PlazaTokenStream {
            tokens: &mut self.tokens,
            next: 0,
        }
    }
}

fn push(tokens: &mut Vec<Token>, text: &str, from: usize, to: usize) {
    let position = tokens.len();
    tokens.push(Token {
        offset_from: from,
        offset_to: to,
        position,
        text: text[from..to].to_owned(),
        position_length: 1,
    });
}

/// Emits the bigrams of a CJK run given as (byte offset, char) pairs; a lone character stands alone.
fn push_bigrams(tokens: &mut Vec<Token>, text: &str, run: &[(usize, char)]) {
    match run {
        [] => {}
        [(at, c)] => push(tokens, text, *at, at + c.len_utf8()),
        _ => {
            for pair in run.windows(2) {
                let (from, _) = pair[0];
                let (at, c) = pair[1];
                push(tokens, text, from, at + c.len_utf8());
            }
        }
    }
}

fn split(text: &str, tokens: &mut Vec<Token>) {
    let mut word_start: Option<usize> = None;
    let mut cjk_run: Vec<(usize, char)> = Vec::new();
    for (at, c) in text.char_indices() {
        if is_cjk(c) {
            if let Some(start) = word_start.take() {
                push(tokens, text, start, at);
            }
            cjk_run.push((at, c));
        } else if c.is_alphanumeric() {
            push_bigrams(tokens, text, &cjk_run);
            cjk_run.clear();
            word_start.get_or_insert(at);
        } else {
            push_bigrams(tokens, text, &cjk_run);
            cjk_run.clear();
            if let Some(start) = word_start.take() {
                push(tokens, text, start, at);
            }
        }
    }
    push_bigrams(tokens, text, &cjk_run);
    if let Some(start) = word_start {
        push(tokens, text, start, text.len());
    }
}

/// `text` as the `text` and `grams` fields take it: led by its language, so that each document is
/// analysed in its own language by the field's tokenizer while tantivy indexes it (handing tantivy
/// tokens instead costs a JSON round trip of every token).
pub fn tagged(text: &str, lang: Option<&str>) -> String {
    let lang = lang.unwrap_or_default();
    let mut out = String::with_capacity(1 + lang.len() + 1 + text.len());
    out.push(TAG_END);
    out.push_str(lang);
    out.push(TAG_END);
    out.push_str(text);
    out
}

/// The language and the text of a [`tagged`] text (an untagged one is text of no known language).
fn untag(text: &str) -> (Option<&str>, &str) {
    let Some(rest) = text.strip_prefix(TAG_END) else {
        return (None, text);
    };
    match rest.split_once(TAG_END) {
        Some(("", text)) => (None, text),
        Some((lang, text)) => (Some(lang), text),
        None => (None, text),
    }
}

/// The tokenizer of the `text` field (`grams: false`) or of the `grams` field (`grams: true`) over
/// [`tagged`] text.
#[derive(Clone, Default)]
pub struct TaggedTokenizer {
    grams: bool,
    tokens: Vec<Token>,
}

impl TaggedTokenizer {
    /// The `grams` field's tokenizer.
    pub fn grams() -> Self {
        TaggedTokenizer {
            grams: true,
            tokens: Vec::new(),
        }
    }
}

impl Tokenizer for TaggedTokenizer {
    type TokenStream<'a> = PlazaTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> PlazaTokenStream<'a> {
        let (lang, text) = untag(text);
        let tokens = tokens(text, lang);
        self.tokens = if self.grams {
            crate::common_grams::grams(&tokens)
        } else {
            tokens
        };
        PlazaTokenStream {
            tokens: &mut self.tokens,
            next: 0,
        }
    }
}

/// Registers the index's tokenizers with `manager`.
pub fn register(manager: &tantivy::tokenizer::TokenizerManager) {
    manager.register(PLAIN, analyzer(None));
    manager.register(TAGGED, TaggedTokenizer::default());
    manager.register(GRAMS, TaggedTokenizer::grams());
}

fn build(language: Option<tantivy::tokenizer::Language>) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(PlazaTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TERM_BYTES))
        .filter(LowerCaser)
        .dynamic();
    match language {
        Some(language) => builder
            .filter_dynamic(Stemmer::new(language))
            .filter_dynamic(AsciiFoldingFilter)
            .build(),
        None => builder.filter_dynamic(AsciiFoldingFilter).build(),
    }
}

/// The analyzer for text of a language (`None`, or a language without stemmer: no stemming).
pub fn analyzer(lang: Option<&str>) -> TextAnalyzer {
    build(lang.and_then(language::stemmer))
}

/// One analyzer per stemmed language plus the plain one, kept per thread (analyzers are stateful).
struct Analyzers {
    plain: TextAnalyzer,
    stemmed: Vec<(&'static str, TextAnalyzer)>,
}

thread_local! {
    static ANALYZERS: RefCell<Analyzers> = RefCell::new(Analyzers {
        plain: build(None),
        stemmed: language::STEMMED.iter().map(|(code, l)| (*code, build(Some(*l)))).collect(),
    });
}

fn run(analyzer: &mut TextAnalyzer, text: &str, out: &mut Vec<Token>) {
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().clone());
    }
}

/// The tokens of `text` in language `lang` (stemmed when it has a stemmer), positions from 0.
pub fn tokens(text: &str, lang: Option<&str>) -> Vec<Token> {
    let mut out = Vec::new();
    ANALYZERS.with(|cell| {
        let mut analyzers = cell.borrow_mut();
        let analyzers = &mut *analyzers;
        let chosen = lang
            .and_then(|l| analyzers.stemmed.iter_mut().find(|(c, _)| *c == l))
            .map(|(_, a)| a)
            .unwrap_or(&mut analyzers.plain);
        run(chosen, text, &mut out);
    });
    out
}

/// The plain (unstemmed) terms of `text`.
pub fn plain_terms(text: &str) -> Vec<String> {
    tokens(text, None).into_iter().map(|t| t.text).collect()
}

/// The forms a query word or phrase may take in the index: its plain terms, and its terms under each
/// stemmer (only `lang`'s when given), without repeats. Each form is a sequence of terms of equal length.
pub fn query_forms(text: &str, lang: Option<&str>) -> Vec<Vec<String>> {
    ANALYZERS.with(|cell| {
        let mut analyzers = cell.borrow_mut();
        let analyzers = &mut *analyzers;
        let mut forms: Vec<Vec<String>> = Vec::new();
        let mut add = |analyzer: &mut TextAnalyzer| {
            let mut out = Vec::new();
            run(analyzer, text, &mut out);
            let form: Vec<String> = out.into_iter().map(|t| t.text).collect();
            if !form.is_empty() && !forms.contains(&form) {
                forms.push(form);
            }
        };
        add(&mut analyzers.plain);
        for (code, analyzer) in analyzers.stemmed.iter_mut() {
            if lang.is_none_or(|l| l == *code) {
                add(analyzer);
            }
        }
        // Stemming never changes how many terms a text has, but a form of another length would make a
        // broken phrase: keep only forms as long as the plain one.
        if let Some(len) = forms.first().map(Vec::len) {
            forms.retain(|f| f.len() == len);
        }
        forms
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str, lang: Option<&str>) -> Vec<String> {
        tokens(text, lang).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn words_are_lowercased_and_folded() {
        assert_eq!(
            texts("Café CRÈME, naïve!", None),
            ["cafe", "creme", "naive"]
        );
    }

    #[test]
    fn cjk_becomes_bigrams_between_words() {
        assert_eq!(
            texts("東京都 coop 協同組合", None),
            ["東京", "京都", "coop", "協同", "同組", "組合"]
        );
        assert_eq!(texts("猫", None), ["猫"]);
        assert_eq!(
            texts("한국어 텍스트", None),
            ["한국", "국어", "텍스", "스트"]
        );
        let positions: Vec<usize> = tokens("東京都", None).iter().map(|t| t.position).collect();
        assert_eq!(positions, [0, 1]);
    }

    #[test]
    fn known_languages_are_stemmed_then_folded() {
        assert_eq!(texts("running cooperatives", Some("en")), ["run", "cooper"]);
        assert_eq!(texts("coopératives", Some("fr")), ["cooper"]);
        assert_eq!(texts("running", Some("ja")), ["running"]);
    }

    #[test]
    fn query_forms_cover_stemmed_and_plain() {
        let forms = query_forms("running", None);
        assert!(forms.contains(&vec!["running".to_owned()]));
        assert!(forms.contains(&vec!["run".to_owned()]));
        assert_eq!(
            query_forms("running", Some("en")),
            [vec!["running".to_owned()], vec!["run".to_owned()]]
        );
        assert!(query_forms("!!!", None).is_empty());
    }

    #[test]
    fn tagged_text_is_analysed_in_its_language_by_the_field_tokenizers() {
        let stream = |tokenizer: &mut TaggedTokenizer, text: &str| {
            let mut out = Vec::new();
            let mut stream = tokenizer.token_stream(text);
            while stream.advance() {
                out.push(stream.token().text.clone());
            }
            out
        };
        let text = "Running of the cooperatives";
        let mut plain = TaggedTokenizer::default();
        assert_eq!(
            stream(&mut plain, &tagged(text, Some("en"))),
            texts(text, Some("en"))
        );
        assert_eq!(stream(&mut plain, &tagged(text, None)), texts(text, None));
        assert_eq!(
            stream(&mut plain, text),
            texts(text, None),
            "untagged: plain"
        );
        assert_eq!(
            stream(&mut TaggedTokenizer::grams(), &tagged(text, Some("en"))),
            ["of the"]
        );
        assert_eq!(untag(&tagged("", Some("fr"))), (Some("fr"), ""));
    }

    #[test]
    fn long_terms_are_dropped() {
        assert_eq!(texts(&"a".repeat(100), None), Vec::<String>::new());
    }
}
