//! Text analysis: how text becomes the terms of the index, for documents and queries alike.
//!
//! Words are split on anything that is not a letter or digit, lowercased, stemmed when the language is
//! known and has a stemmer, and folded to ASCII last (`café` and `cafe` are one term; stemming first,
//! because stemmers expect the accents of their language). Chinese, Japanese and Korean runs are cut into
//! overlapping bigrams (`東京都` → `東京`, `京都`), so any two adjacent characters are findable without a
//! dictionary.
//!
//! A document's text is analysed in its own language by the thread that builds the document
//! ([`analysed`]), so one field holds text of every language, each stemmed its own way, and reaches
//! tantivy as its terms in a line the fields' tokenizer ([`TermsTokenizer`]) only splits: tantivy's
//! one indexing thread is left with the postings while the threads feeding it share the analysis
//! (tantivy's own pre-tokenized text would cost a copy of every token, and a JSON round trip in its
//! document). Queries get every stemmed form of a word (or only the one of `language:xx`), so
//! `running` finds an English post indexed as `run`.

use std::cell::RefCell;
use std::hash::BuildHasher;

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream,
    Tokenizer,
};

use crate::language;

/// The name the plain analyzer is registered under in the index (the text field of schema versions
/// before 4).
pub const PLAIN: &str = "plaza_plain";
/// The name of the tokenizer of `text`, which takes the terms of [`analysed`] text (the name is kept
/// from schema 4, whose `text` tokenizer analysed text led by its language: the terms are the same).
pub const TAGGED: &str = "plaza_tagged";
/// The name of the tokenizer of `grams`, which takes the pairs of common words of [`analysed`] text
/// ([`crate::common_grams`]).
pub const GRAMS: &str = "plaza_grams";

/// Ends each term in the line [`analysed`] makes (a control character no term holds: terms come from
/// runs of letters and digits, grams are two terms and a space); an empty term before it is a position
/// left out.
const TERM_END: char = '\u{3}';

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
    tokens: &'a mut [Token],
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
        let tokens = &mut self.tokens;
        tokens.clear();
        split(text, |from, to, _| {
            let position = tokens.len();
            tokens.push(token(position, &text[from..to], from, to));
        });
        PlazaTokenStream { tokens, next: 0 }
    }
}

fn token(position: usize, text: &str, from: usize, to: usize) -> Token {
    Token {
        offset_from: from,
        offset_to: to,
        position,
        text: text.to_owned(),
        position_length: 1,
    }
}

/// Writes token `n` of `tokens`, reusing the string of the one there before (a tokenizer's buffer
/// keeps its tokens' allocations from one text to the next).
fn put(tokens: &mut Vec<Token>, n: usize, position: usize, text: &str, from: usize, to: usize) {
    match tokens.get_mut(n) {
        Some(slot) => {
            slot.text.clear();
            slot.text.push_str(text);
            slot.offset_from = from;
            slot.offset_to = to;
            slot.position = position;
        }
        None => tokens.push(token(position, text, from, to)),
    }
}

/// Emits the bigrams of a CJK run given as (byte offset, char) pairs; a lone character stands alone.
fn emit_bigrams(run: &[(usize, char)], emit: &mut impl FnMut(usize, usize, bool)) {
    match run {
        [] => {}
        [(at, c)] => emit(*at, at + c.len_utf8(), true),
        _ => {
            for pair in run.windows(2) {
                let (from, _) = pair[0];
                let (at, c) = pair[1];
                emit(from, at + c.len_utf8(), true);
            }
        }
    }
}

/// Calls `emit(from, to, cjk)` with the byte range of each word and CJK bigram of `text`, in order (a
/// token's position is the number of tokens before it); `cjk` is true for a bigram or a lone CJK
/// character.
fn split(text: &str, mut emit: impl FnMut(usize, usize, bool)) {
    let mut word_start: Option<usize> = None;
    let mut cjk_run: Vec<(usize, char)> = Vec::new();
    for (at, c) in text.char_indices() {
        if is_cjk(c) {
            if let Some(start) = word_start.take() {
                emit(start, at, false);
            }
            cjk_run.push((at, c));
        } else if c.is_alphanumeric() {
            emit_bigrams(&cjk_run, &mut emit);
            cjk_run.clear();
            word_start.get_or_insert(at);
        } else {
            emit_bigrams(&cjk_run, &mut emit);
            cjk_run.clear();
            if let Some(start) = word_start.take() {
                emit(start, at, false);
            }
        }
    }
    emit_bigrams(&cjk_run, &mut emit);
    if let Some(start) = word_start {
        emit(start, text.len(), false);
    }
}

/// The `text` and `grams` fields' values of `text` in language `lang`: the terms of its words (each
/// followed by [`TERM_END`], a dropped word leaving its position empty) and its pairs of common words.
/// [`TermsTokenizer`] hands them to tantivy as they are.
pub fn analysed(text: &str, lang: Option<&str>) -> Analysed {
    let mut out = Analysed {
        terms: String::with_capacity(text.len() + 16),
        grams: String::new(),
    };
    let mut grams = crate::common_grams::Grams::new();
    let mut next = 0;
    for_each_term(text, lang, |position, term, from, to| {
        for _ in next..position {
            out.terms.push(TERM_END);
        }
        next = position + 1;
        out.terms.push_str(term);
        out.terms.push(TERM_END);
        if let Some(gram) = grams.next(position, term, from, to) {
            out.grams.push_str(gram.text);
            out.grams.push(TERM_END);
        }
    });
    out
}

/// What [`analysed`] makes of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysed {
    /// The `text` field's value.
    pub terms: String,
    /// The `grams` field's value.
    pub grams: String,
}

/// The tokenizer of the `text` and `grams` fields: each term of an [`analysed`] line becomes a token as
/// it is, at its position. Its tokens' strings are reused from one text to the next.
#[derive(Clone, Default)]
pub struct TermsTokenizer {
    tokens: Vec<Token>,
}

/// Tokens a tokenizer keeps for reuse after a long text (each holds a string).
const KEPT_TOKENS: usize = 1024;

impl Tokenizer for TermsTokenizer {
    type TokenStream<'a> = PlazaTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, line: &'a str) -> PlazaTokenStream<'a> {
        let tokens = &mut self.tokens;
        tokens.truncate(KEPT_TOKENS);
        let mut n = 0;
        let mut from = 0;
        for (position, term) in line.split_terminator(TERM_END).enumerate() {
            let to = from + term.len();
            if !term.is_empty() {
                put(tokens, n, position, term, from, to);
                n += 1;
            }
            from = to + TERM_END.len_utf8();
        }
        PlazaTokenStream {
            tokens: &mut tokens[..n],
            next: 0,
        }
    }
}

/// Registers the index's tokenizers with `manager`.
pub fn register(manager: &tantivy::tokenizer::TokenizerManager) {
    manager.register(PLAIN, analyzer(None));
    manager.register(TAGGED, TermsTokenizer::default());
    manager.register(GRAMS, TermsTokenizer::default());
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

/// One analyzer per stemmed language plus the plain one, kept per thread (analyzers are stateful), each
/// with the terms of the words it analysed lately.
struct Analyzers {
    plain: Memoised,
    stemmed: Vec<(&'static str, Memoised)>,
}

/// An analyzer and the terms it made of words lately (`None`: the word is dropped, too long).
///
/// Every filter after the tokenizer (length, lowercase, stemmer, ASCII folding) works on one token
/// alone, so a word always becomes the same term: a text's terms are its words' remembered terms, a
/// hash lookup instead of lowercasing, stemming and folding each word again. Words follow Zipf's law,
/// so most words of a text have been seen moments before. Each word is kept next to its term in one
/// string, so a lookup touches the table and one place of that string (the lookups are cache misses:
/// a map of boxed words and a list of boxed terms cost five of them). Emptied when full.
struct Memoised {
    analyzer: TextAnalyzer,
    /// The words remembered, each followed by its term.
    arena: String,
    /// Where each word is in `arena`.
    table: hashbrown::HashTable<Remembered>,
    hasher: foldhash::fast::RandomState,
    /// The term of a word too long to remember.
    scratch: String,
}

/// A remembered word: `arena[at..at + word]`, its term right after it (`term` bytes; [`DROPPED`]: none).
#[derive(Clone, Copy)]
struct Remembered {
    at: u32,
    word: u16,
    term: u16,
}

/// [`Remembered::term`] of a word the analyzer drops.
const DROPPED: u16 = u16::MAX;

/// Words a thread remembers per analyzer.
const REMEMBERED_WORDS: usize = 16_384;

/// Longest word remembered, in bytes (longer ones are analysed each time: they are rare, and most are
/// dropped as too long anyway).
const REMEMBERED_WORD_BYTES: usize = 64;

impl Memoised {
    fn new(language: Option<tantivy::tokenizer::Language>) -> Self {
        Memoised {
            analyzer: build(language),
            arena: String::new(),
            table: hashbrown::HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            scratch: String::new(),
        }
    }

    /// The term of one word (a token of [`split`]).
    fn term(&mut self, word: &str) -> Option<&str> {
        if word.len() > REMEMBERED_WORD_BYTES {
            let mut stream = self.analyzer.token_stream(word);
            if !stream.advance() {
                return None;
            }
            self.scratch.clear();
            self.scratch.push_str(&stream.token().text);
            return Some(&self.scratch);
        }
        let hash = self.hasher.hash_one(word);
        let arena = &self.arena;
        let found = self
            .table
            .find(hash, |r| {
                arena.get(r.at as usize..r.at as usize + usize::from(r.word)) == Some(word)
            })
            .copied();
        let remembered = match found {
            Some(r) => r,
            None => self.remember(hash, word),
        };
        if remembered.term == DROPPED {
            return None;
        }
        let from = remembered.at as usize + usize::from(remembered.word);
        self.arena.get(from..from + usize::from(remembered.term))
    }

    /// Analyses `word` (of at most [`REMEMBERED_WORD_BYTES`]) and remembers its term.
    fn remember(&mut self, hash: u64, word: &str) -> Remembered {
        if self.table.len() >= REMEMBERED_WORDS {
            self.table.clear();
            self.arena.clear();
        }
        let at = self.arena.len();
        self.arena.push_str(word);
        let mut stream = self.analyzer.token_stream(word);
        let term = if stream.advance() {
            let term = &stream.token().text;
            self.arena.push_str(term);
            // A term is never much longer than its word (folding `ß` gives `ss`).
            u16::try_from(term.len()).unwrap_or(DROPPED)
        } else {
            DROPPED
        };
        let remembered = Remembered {
            // The arena holds at most REMEMBERED_WORDS words and terms of a few hundred bytes.
            at: u32::try_from(at).unwrap_or(u32::MAX),
            word: u16::try_from(word.len()).unwrap_or(u16::MAX),
            term,
        };
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table.insert_unique(hash, remembered, |r| {
            let at = r.at as usize;
            hasher.hash_one(&arena[at..at + usize::from(r.word)])
        });
        remembered
    }
}

thread_local! {
    static ANALYZERS: RefCell<Analyzers> = RefCell::new(Analyzers {
        plain: Memoised::new(None),
        stemmed: language::STEMMED
            .iter()
            .map(|(code, l)| (*code, Memoised::new(Some(*l))))
            .collect(),
    });
}

fn run(analyzer: &mut TextAnalyzer, text: &str, out: &mut Vec<Token>) {
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().clone());
    }
}

/// Calls `each(position, term, from, to)` for every term of `text` in language `lang` (stemmed when it
/// has a stemmer), positions from 0, with the byte range of the word it comes from. `each` must not
/// analyse text itself (the thread's analyzers are in use).
pub(crate) fn for_each_term(
    text: &str,
    lang: Option<&str>,
    mut each: impl FnMut(usize, &str, usize, usize),
) {
    ANALYZERS.with(|cell| {
        let mut analyzers = cell.borrow_mut();
        let analyzers = &mut *analyzers;
        let chosen = lang
            .and_then(|l| analyzers.stemmed.iter_mut().find(|(c, _)| *c == l))
            .map(|(_, a)| a)
            .unwrap_or(&mut analyzers.plain);
        let mut position = 0;
        split(text, |from, to, cjk| {
            let word = &text[from..to];
            // Every analyzer leaves CJK as it is (`cjk_is_its_own_term`): nothing to look up.
            let term = if cjk { Some(word) } else { chosen.term(word) };
            if let Some(term) = term {
                each(position, term, from, to);
            }
            position += 1;
        });
    });
}

/// The tokens of `text` in language `lang` (stemmed when it has a stemmer), positions from 0.
pub fn tokens(text: &str, lang: Option<&str>) -> Vec<Token> {
    let mut out = Vec::new();
    for_each_term(text, lang, |position, term, from, to| {
        out.push(token(position, term, from, to));
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
        add(&mut analyzers.plain.analyzer);
        for (code, memoised) in analyzers.stemmed.iter_mut() {
            if lang.is_none_or(|l| l == *code) {
                add(&mut memoised.analyzer);
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

    /// What `for_each_term` takes for granted when it hands on CJK without analysing it: every analyzer
    /// (plain and each stemmed language) leaves each CJK character, and bigrams of them, as they are.
    #[test]
    fn cjk_is_its_own_term() {
        let cjk: Vec<char> = (0..=0x2FFFF)
            .filter_map(char::from_u32)
            .filter(|c| is_cjk(*c))
            .collect();
        // Lone characters (the tokenizer splits a space-separated run into them) and, for the
        // stemmers' suffix rules, bigrams of characters from across the ranges.
        let lone: String = cjk.iter().flat_map(|c| [*c, ' ']).collect();
        let bigrams: String = cjk
            .iter()
            .step_by(97)
            .zip(cjk.iter().rev().step_by(89))
            .flat_map(|(a, b)| [' ', *a, *b, ' ', *b, *a])
            .collect();
        let languages =
            std::iter::once(None).chain(language::STEMMED.iter().map(|(_, l)| Some(*l)));
        for language in languages {
            let mut analyzer = build(language);
            for text in [&lone, &bigrams] {
                let mut stream = analyzer.token_stream(text);
                let mut n = 0;
                while stream.advance() {
                    let token = stream.token();
                    assert_eq!(
                        token.text,
                        text[token.offset_from..token.offset_to],
                        "{language:?}"
                    );
                    n += 1;
                }
                assert_eq!(
                    n,
                    text.split(' ').filter(|w| !w.is_empty()).count(),
                    "{language:?}"
                );
            }
        }
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

    /// The tokens `tokenizer` makes of `line`.
    fn stream(tokenizer: &mut TermsTokenizer, line: &str) -> Vec<Token> {
        let mut out = Vec::new();
        let mut stream = tokenizer.token_stream(line);
        while stream.advance() {
            out.push(stream.token().clone());
        }
        out
    }

    /// The terms and positions of `tokens`.
    fn terms_at(tokens: &[Token]) -> Vec<(String, usize)> {
        tokens
            .iter()
            .map(|t| (t.text.clone(), t.position))
            .collect()
    }

    #[test]
    fn analysed_text_reaches_the_fields_as_the_analyzers_terms_at_their_positions() {
        let long = "x".repeat(MAX_TERM_BYTES + 1);
        let mut tokenizer = TermsTokenizer::default();
        for (text, lang) in [
            ("Running of the cooperatives", Some("en")),
            ("Running of the cooperatives", None),
            // A dropped word keeps its position: the phrase after it stays apart from the one before.
            (&*format!("the coop {long} of the people"), Some("en")),
            ("東京都 coop 協同組合, café", Some("fr")),
            ("", None),
            ("!!!", None),
        ] {
            let line = analysed(text, lang);
            assert_eq!(
                terms_at(&stream(&mut tokenizer, &line.terms)),
                terms_at(&tokens(text, lang)),
                "{lang:?}: {text}"
            );
            let grams: Vec<Token> = crate::common_grams::grams(&tokens(text, lang))
                .into_iter()
                .enumerate()
                .map(|(n, gram)| Token {
                    position: n,
                    ..gram
                })
                .collect();
            assert_eq!(
                terms_at(&stream(&mut tokenizer, &line.grams)),
                terms_at(&grams),
                "grams of {lang:?}: {text}"
            );
        }
        let line = analysed(&format!("the coop {long} of the"), Some("en"));
        assert_eq!(
            terms_at(&stream(&mut tokenizer, &line.terms)),
            [
                ("the".to_owned(), 0),
                ("coop".to_owned(), 1),
                ("of".to_owned(), 3),
                ("the".to_owned(), 4)
            ]
        );
        assert_eq!(
            terms_at(&stream(&mut tokenizer, &line.grams)),
            [("of the".to_owned(), 0)]
        );
    }

    /// The analyzer run over the whole text, as before words' terms were remembered.
    fn analysed_directly(text: &str, lang: Option<&str>) -> Vec<Token> {
        let mut out = Vec::new();
        run(&mut analyzer(lang), text, &mut out);
        out
    }

    #[test]
    fn remembered_terms_are_the_analyzers_terms() {
        let long = "x".repeat(MAX_TERM_BYTES);
        let texts = [
            "Running runners RUN run café Café CAFÉ naïve coopératives".to_owned(),
            format!(
                "東京都 coop 協同組合 {long} Straße straße Ärger 猫 한국어 {}",
                "é".repeat(50)
            ),
            "Running runners RUN run, again: running!".to_owned(),
            String::new(),
        ];
        for lang in [None, Some("en"), Some("fr"), Some("de"), Some("ja")] {
            for text in &texts {
                assert_eq!(
                    tokens(text, lang),
                    analysed_directly(text, lang),
                    "{lang:?}: {text}"
                );
            }
        }
        // More words than a thread remembers: the map is emptied and filled again.
        let many: String = (0..REMEMBERED_WORDS + 100)
            .map(|i| format!("w{i}ing "))
            .collect();
        assert_eq!(
            tokens(&many, Some("en")),
            analysed_directly(&many, Some("en"))
        );
        assert_eq!(
            tokens(&many, Some("en")),
            analysed_directly(&many, Some("en"))
        );
    }

    #[test]
    fn the_tokenizer_reuses_its_tokens_without_leaking_the_previous_text() {
        let mut tokenizer = TermsTokenizer::default();
        let long = analysed("one two three four five six", Some("en"));
        let short = analysed("seven", Some("en"));
        assert_eq!(stream(&mut tokenizer, &long.terms).len(), 6);
        assert_eq!(
            terms_at(&stream(&mut tokenizer, &short.terms)),
            terms_at(&tokens("seven", Some("en")))
        );
        let text = analysed("of the people and of the", Some("en"));
        let made: Vec<String> = stream(&mut tokenizer, &text.grams)
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(made, ["of the", "and of", "of the"]);
        assert_eq!(
            stream(&mut tokenizer, &analysed("people", Some("en")).grams),
            []
        );
    }

    #[test]
    fn long_terms_are_dropped() {
        assert_eq!(texts(&"a".repeat(100), None), Vec::<String>::new());
    }
}
