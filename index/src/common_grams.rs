//! Pairs of common words indexed as terms of their own ("common grams"), so that a phrase of two very
//! frequent words is one posting list instead of a check of positions in every post holding both.
//!
//! A phrase query reads the positions of its words in each post that has all of them. For `"of the"`
//! or `"de la"` that is most posts of the language: at a million posts, a few hundred thousand
//! candidates at ~130 ns each, the slowest searches the index serves. A language's most frequent words
//! are few and known, so each post's adjacent pairs of them (`of the`) go into the `grams` field as one
//! term, and a phrase whose words are such a pair reads that term's postings only.
//!
//! The rewrite is exact whatever the list holds: a pair is indexed exactly when both of its final terms
//! (lowercased, stemmed, folded — as they are in `text`) are in [`is_common`] and stand side by side, and
//! a phrase uses the pair's term exactly when both of its terms are in it. A list that misses a frequent
//! word costs speed, never results. Changing the lists changes what is indexed: bump
//! [`crate::schema::SCHEMA_VERSION`] with them.

use std::sync::OnceLock;

use foldhash::{HashSet, HashSetExt};
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{Bm25Weight, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::Token;
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyError, Term};

use crate::analysis;

/// The most frequent words of each language with a stemmer and a large share of the fediverse's posts,
/// in order of frequency (function words: articles, prepositions, pronouns, auxiliaries). Short on
/// purpose: pairs of these are a sizeable share of all adjacent pairs, and each kept pair is a term in
/// every post that has it.
const COMMON_WORDS: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the", "of", "and", "to", "a", "in", "is", "it", "that", "for", "you", "was", "on",
            "with", "as", "are", "be", "this", "have", "i", "at", "or", "not", "but", "by", "from",
            "they", "we", "he", "she", "his", "her", "an", "my", "so", "do", "if", "all", "will",
            "can", "there", "what", "about", "just", "our", "your", "me", "has", "been", "more",
        ],
    ),
    (
        "de",
        &[
            "der", "die", "und", "in", "den", "von", "zu", "das", "mit", "sich", "des", "auf",
            "für", "ist", "im", "dem", "nicht", "ein", "eine", "als", "auch", "es", "an", "werden",
            "aus", "er", "hat", "dass", "sie", "nach", "wird", "bei", "einer", "um", "am", "sind",
            "noch", "wie", "einem", "über", "einen", "so", "zum", "war", "haben", "nur", "oder",
            "aber", "vor", "zur", "ich", "wir",
        ],
    ),
    (
        "fr",
        &[
            "de", "la", "le", "et", "les", "des", "en", "un", "du", "une", "que", "est", "pour",
            "qui", "dans", "a", "par", "plus", "pas", "au", "sur", "ne", "se", "ce", "il", "sont",
            "je", "avec", "on", "nous", "vous", "mais", "ou", "son", "sa", "aux", "ses", "cette",
            "elle", "été", "y", "ont", "leur", "lui", "comme", "tout", "être", "l", "d", "qu", "n",
            "s", "c", "j",
        ],
    ),
    (
        "es",
        &[
            "de", "la", "que", "el", "en", "y", "a", "los", "se", "del", "las", "un", "por", "con",
            "no", "una", "su", "para", "es", "al", "lo", "como", "más", "o", "pero", "sus", "le",
            "ha", "me", "si", "sin", "sobre", "este", "ya", "entre", "cuando", "todo", "esta",
            "ser", "son", "dos", "también", "fue", "había", "era", "muy", "hasta", "desde", "está",
            "mi",
        ],
    ),
    (
        "it",
        &[
            "di", "e", "il", "la", "che", "in", "a", "per", "un", "è", "del", "non", "una", "i",
            "le", "si", "con", "da", "sono", "al", "della", "lo", "ma", "come", "gli", "ha",
            "anche", "più", "nel", "dei", "se", "ci", "mi", "alla", "questo", "delle", "o", "io",
            "ti", "l", "ne", "tutto", "quando", "essere", "suo", "sua", "molto", "già", "dell",
            "nella",
        ],
    ),
    (
        "pt",
        &[
            "de", "a", "o", "que", "e", "do", "da", "em", "um", "para", "é", "com", "não", "uma",
            "os", "no", "se", "na", "por", "mais", "as", "dos", "como", "mas", "foi", "ao", "ele",
            "das", "tem", "à", "seu", "sua", "ou", "ser", "quando", "muito", "há", "nos", "já",
            "está", "eu", "também", "só", "pelo", "pela", "até", "isso", "ela", "entre", "era",
        ],
    ),
    (
        "nl",
        &[
            "de", "van", "een", "het", "en", "in", "is", "dat", "op", "te", "zijn", "met", "voor",
            "niet", "die", "aan", "er", "om", "ook", "als", "maar", "bij", "of", "door", "naar",
            "dan", "wordt", "heeft", "nog", "uit", "je", "ik", "we", "hij", "ze", "kan", "zo",
            "al", "wat", "werd", "over", "worden", "was", "deze", "tot", "hun", "meer", "dit",
            "wel", "geen",
        ],
    ),
];

/// The most frequent words of `lang` (ISO 639-1) as this index lists them, most frequent first; empty
/// for a language without a list.
pub fn common_words(lang: &str) -> &'static [&'static str] {
    COMMON_WORDS
        .iter()
        .find(|(code, _)| *code == lang)
        .map_or(&[], |(_, words)| words)
}

/// Every list's words as terms of the index: as the plain analyzer and as their language's analyzer
/// make them (`cette` is `cette` plain and `cet` stemmed in French).
fn common_terms() -> &'static HashSet<String> {
    static TERMS: OnceLock<HashSet<String>> = OnceLock::new();
    TERMS.get_or_init(|| {
        let mut terms = HashSet::new();
        for (lang, words) in COMMON_WORDS {
            for word in *words {
                for analyzed in [None, Some(*lang)] {
                    terms.extend(analysis::tokens(word, analyzed).into_iter().map(|t| t.text));
                }
            }
        }
        terms
    })
}

/// Whether a term of the `text` field is one of the common words' terms.
pub fn is_common(term: &str) -> bool {
    common_terms().contains(term)
}

/// The `grams` term of two adjacent terms (terms never hold a space: the tokenizer splits on it).
pub fn gram(first: &str, second: &str) -> String {
    let mut gram = String::with_capacity(first.len() + 1 + second.len());
    push_gram(&mut gram, first, second);
    gram
}

fn push_gram(out: &mut String, first: &str, second: &str) {
    out.push_str(first);
    out.push(' ');
    out.push_str(second);
}

/// The grams of a text's tokens: one for each two tokens at adjacent positions that are both common,
/// at the first one's position and spanning both.
pub fn grams(tokens: &[Token]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut grams = Grams::new();
    for token in tokens {
        if let Some(gram) = grams.next(
            token.position,
            &token.text,
            token.offset_from,
            token.offset_to,
        ) {
            out.push(Token {
                offset_from: gram.from,
                offset_to: gram.to,
                position: out.len(),
                text: gram.text.to_owned(),
                position_length: 1,
            });
        }
    }
    out
}

/// Makes the grams of a text's terms fed one by one, in order, reusing its strings.
pub(crate) struct Grams {
    /// The previous term's position and start when it is common (its text is in `first`).
    previous: Option<(usize, usize)>,
    first: String,
    made: String,
}

/// A gram [`Grams::next`] made: its term and the byte range it spans.
pub(crate) struct Gram<'a> {
    pub text: &'a str,
    pub from: usize,
    pub to: usize,
}

impl Grams {
    /// Ready for a text. The common words' terms are made now, before any term is fed: they are
    /// made by the analyzers, which are busy while terms are fed.
    pub fn new() -> Self {
        common_terms();
        Grams {
            previous: None,
            first: String::new(),
            made: String::new(),
        }
    }

    /// Feeds the next term (at `position`, from the bytes `from..to`); returns the gram it makes
    /// with the term before.
    pub fn next(
        &mut self,
        position: usize,
        term: &str,
        from: usize,
        to: usize,
    ) -> Option<Gram<'_>> {
        let common = is_common(term);
        let start = self
            .previous
            .filter(|(p, _)| common && p + 1 == position)
            .map(|(_, start)| start);
        if start.is_some() {
            self.made.clear();
            push_gram(&mut self.made, &self.first, term);
        }
        self.previous = common.then_some((position, from));
        if common {
            self.first.clear();
            self.first.push_str(term);
        }
        start.map(|from| Gram {
            text: &self.made,
            from,
            to,
        })
    }
}

/// A two-word phrase whose words are both common, matched by its gram's postings and scored exactly as
/// tantivy scores the phrase (BM25 of the two words' statistics, the number of times the pair occurs,
/// the length of `text`), so a phrase read this way finds the same posts in the same order. It reports
/// its words as its terms, so snippets highlight them as they do a phrase's.
#[derive(Debug, Clone)]
pub struct GramPhrase {
    gram: Term,
    words: [Term; 2],
}

impl GramPhrase {
    /// The phrase of `words` (terms of `text`), read from `gram` (their term of `grams`).
    pub fn new(gram: Term, words: [Term; 2]) -> Self {
        GramPhrase { gram, words }
    }
}

impl Query for GramPhrase {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let similarity = match scoring {
            EnableScoring::Enabled {
                statistics_provider,
                ..
            } => Some(Bm25Weight::for_terms(statistics_provider, &self.words)?),
            EnableScoring::Disabled { .. } => None,
        };
        Ok(Box::new(GramPhraseWeight {
            gram: self.gram.clone(),
            text: self.words[0].field(),
            similarity,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for word in &self.words {
            visitor(word, true);
        }
    }
}

struct GramPhraseWeight {
    gram: Term,
    /// The field of the phrase's words, whose lengths BM25 weighs.
    text: Field,
    /// `None` when not scoring.
    similarity: Option<Bm25Weight>,
}

impl GramPhraseWeight {
    fn gram_scorer(
        &self,
        reader: &SegmentReader,
        boost: Score,
    ) -> tantivy::Result<Option<GramScorer>> {
        let record = match self.similarity {
            Some(_) => IndexRecordOption::WithFreqs,
            None => IndexRecordOption::Basic,
        };
        let Some(postings) = reader
            .inverted_index(self.gram.field())?
            .read_postings(&self.gram, record)?
        else {
            return Ok(None);
        };
        let lengths = match self.similarity {
            Some(_) => reader.fieldnorms_readers().get_field(self.text)?,
            None => None,
        };
        Ok(Some(GramScorer {
            postings,
            lengths: lengths.unwrap_or_else(|| FieldNormReader::constant(reader.max_doc(), 1)),
            similarity: self.similarity.as_ref().map(|s| s.boost_by(boost)),
        }))
    }
}

impl Weight for GramPhraseWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.gram_scorer(reader, boost)? {
            Some(scorer) => Box::new(scorer),
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let Some(mut scorer) = self
            .gram_scorer(reader, 1.0)?
            .filter(|scorer| scorer.doc() <= doc)
        else {
            return Err(no_match(doc));
        };
        if scorer.seek(doc) != doc {
            return Err(no_match(doc));
        }
        let mut explanation = Explanation::new("Phrase of common words", scorer.score());
        if let Some(similarity) = &scorer.similarity {
            let length = scorer.lengths.fieldnorm_id(doc);
            explanation.add_detail(similarity.explain(length, scorer.postings.term_freq()));
        }
        Ok(explanation)
    }
}

fn no_match(doc: DocId) -> TantivyError {
    TantivyError::InvalidArgument(format!("document {doc} does not match"))
}

struct GramScorer {
    postings: SegmentPostings,
    lengths: FieldNormReader,
    similarity: Option<Bm25Weight>,
}

impl DocSet for GramScorer {
    fn advance(&mut self) -> DocId {
        self.postings.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.postings.seek(target)
    }

    fn doc(&self) -> DocId {
        self.postings.doc()
    }

    fn size_hint(&self) -> u32 {
        self.postings.size_hint()
    }
}

impl Scorer for GramScorer {
    fn score(&mut self) -> Score {
        match &self.similarity {
            Some(similarity) => similarity.score(
                self.lengths.fieldnorm_id(self.postings.doc()),
                self.postings.term_freq(),
            ),
            None => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram_texts(text: &str, lang: Option<&str>) -> Vec<String> {
        grams(&analysis::tokens(text, lang))
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn adjacent_common_words_make_grams() {
        assert_eq!(
            gram_texts("The best of the co-operatives is in the town", Some("en")),
            ["of the", "is in", "in the"]
        );
        assert_eq!(
            gram_texts("de la huerta a la mesa", Some("es")),
            ["de la", "a la"]
        );
        assert!(gram_texts("worker cooperatives organise", Some("en")).is_empty());
    }

    #[test]
    fn grams_are_of_final_terms() {
        // Stemmed (`dans cette` → `dan cet` in French) and folded (`été`, `für`) as `text` holds them.
        assert_eq!(gram_texts("dans cette ville", Some("fr")), ["dan cet"]);
        assert_eq!(gram_texts("a été", Some("fr")), ["a ete"]);
        assert_eq!(
            gram_texts("Für die Genossenschaft", Some("de")),
            ["fur die"]
        );
    }

    #[test]
    fn grams_only_join_words_side_by_side() {
        // A dropped over-long term leaves a gap in positions, as it does for phrases.
        let long = "x".repeat(100);
        assert!(gram_texts(&format!("of {long} the"), None).is_empty());
        let grams = grams(&analysis::tokens("of the and", None));
        let positions: Vec<usize> = grams.iter().map(|t| t.position).collect();
        assert_eq!(positions, [0, 1]);
    }

    #[test]
    fn lists_are_terms_of_their_language() {
        assert!(is_common("the") && is_common("cet") && is_common("cette") && is_common("fur"));
        assert!(!is_common("coop"));
        assert_eq!(common_words("en").first(), Some(&"the"));
        assert!(common_words("ja").is_empty());
    }
}

#[cfg(test)]
mod scoring_tests {
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::PhraseQuery;
    use tantivy::{DocAddress, Index, IndexWriter, TantivyDocument};

    use super::*;
    use crate::schema;

    /// Read from its gram, a phrase finds the posts the phrase query finds, with the same scores.
    #[test]
    fn a_gram_phrase_scores_as_the_phrase_query() {
        let (schema, fields) = schema::build();
        let index = Index::create_in_ram(schema);
        analysis::register(index.tokenizers());
        let mut writer: IndexWriter = index.writer(15_000_000).expect("writer");
        for text in [
            "of the",
            "of the of the",
            "the best of the co-ops of the town and of the people in it",
            "of and the",
            "the of",
            "a long text that has the pair once, of the kind that is usual, among many other words",
            "nothing common here",
        ] {
            let mut doc = TantivyDocument::new();
            crate::ingest::add_text_terms(&mut doc, &fields, text, Some("en"));
            writer.add_document(doc).expect("add");
        }
        writer.commit().expect("commit");
        let searcher = index.reader().expect("reader").searcher();
        let words = ["of", "the"].map(|w| Term::from_field_text(fields.text, w));
        let phrase = PhraseQuery::new(words.to_vec());
        let gram = GramPhrase::new(
            Term::from_field_text(fields.grams, &super::gram("of", "the")),
            words,
        );
        let top = TopDocs::with_limit(10).order_by_score();
        let by_phrase: Vec<(Score, DocAddress)> = searcher.search(&phrase, &top).expect("phrase");
        let by_gram: Vec<(Score, DocAddress)> = searcher.search(&gram, &top).expect("gram");
        assert_eq!(by_phrase.len(), 4);
        assert_eq!(by_gram, by_phrase);
        assert_eq!(searcher.search(&gram, &Count).expect("count"), 4);
        let (_, first) = by_gram[0];
        let explained = gram.explain(&searcher, first).expect("explain");
        assert_eq!(explained.value(), by_gram[0].0);
    }
}
