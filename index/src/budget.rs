//! The time budget of a search: a [`Deadline`] shared by every engine call one search makes (posts,
//! profiles, tags, counts, instances), and a collector wrapper ([`Budgeted`]) that checks it while it
//! collects: before each segment and then every [`CHECK_EVERY`] matching documents inside a segment, so
//! even one large segment is not scanned past the deadline. What was collected until then is returned
//! and the search is marked partial.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::Weight;
use tantivy::{
    COLLECT_BLOCK_BUFFER_LEN, DocSet, Result, SegmentOrdinal, SegmentReader, TERMINATED,
};

/// Matching documents collected between two looks at the clock (a look costs a few tens of
/// nanoseconds; a thousand documents, some microseconds).
pub const CHECK_EVERY: usize = 1024;

/// When a search must stop, and whether it had to.
#[derive(Debug)]
pub struct Deadline {
    clock: Clock,
    exceeded: AtomicBool,
}

#[derive(Debug)]
enum Clock {
    /// The wall clock passing this instant.
    At(Instant),
    /// Deterministic, for tests: passed after this many looks.
    #[cfg(test)]
    AfterLooks(std::sync::atomic::AtomicUsize),
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline {
            clock: Clock::At(Instant::now() + budget),
            exceeded: AtomicBool::new(false),
        }
    }

    /// A deadline that passes at the `looks + 1`th look at it.
    #[cfg(test)]
    pub fn after_looks(looks: usize) -> Self {
        Deadline {
            clock: Clock::AfterLooks(looks.into()),
            exceeded: AtomicBool::new(false),
        }
    }

    /// Whether the deadline has passed; once it has, the search is marked [`exceeded`](Self::exceeded).
    pub fn passed(&self) -> bool {
        if self.exceeded.load(Ordering::Relaxed) {
            return true;
        }
        let passed = match &self.clock {
            Clock::At(at) => Instant::now() >= *at,
            #[cfg(test)]
            Clock::AfterLooks(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err(),
        };
        if passed {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        passed
    }

    /// Whether some work was left out because the deadline had passed: the result is partial.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }
}

/// Wraps a collector with a deadline.
pub struct Budgeted<'a, C> {
    inner: C,
    deadline: &'a Deadline,
}

impl<'a, C> Budgeted<'a, C> {
    /// `inner`, which stops collecting once `deadline` has passed.
    pub fn new(inner: C, deadline: &'a Deadline) -> Self {
        Budgeted { inner, deadline }
    }
}

impl<C: Collector> Collector for Budgeted<'_, C> {
    type Fruit = C::Fruit;
    type Child = C::Child;

    fn for_segment(&self, ord: SegmentOrdinal, segment: &SegmentReader) -> Result<Self::Child> {
        self.inner.for_segment(ord, segment)
    }

    fn requires_scoring(&self) -> bool {
        self.inner.requires_scoring()
    }

    fn merge_fruits(
        &self,
        fruits: Vec<<Self::Child as SegmentCollector>::Fruit>,
    ) -> Result<Self::Fruit> {
        self.inner.merge_fruits(fruits)
    }

    /// Tantivy's own loop over the matches of a segment, with a look at the deadline every
    /// [`CHECK_EVERY`] documents.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        ord: u32,
        reader: &SegmentReader,
    ) -> Result<<Self::Child as SegmentCollector>::Fruit> {
        let mut child = self.inner.for_segment(ord, reader)?;
        if self.deadline.passed() {
            return Ok(child.harvest());
        }
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let is_alive = |doc| alive.is_none_or(|a| a.is_alive(doc));
        if self.inner.requires_scoring() {
            let mut seen = 0usize;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if is_alive(doc) {
                    child.collect(doc, scorer.score());
                }
                seen += 1;
                if seen.is_multiple_of(CHECK_EVERY) && self.deadline.passed() {
                    break;
                }
                doc = scorer.advance();
            }
        } else {
            let mut buffer = [0; COLLECT_BLOCK_BUFFER_LEN];
            let mut since_look = 0;
            loop {
                let n = scorer.fill_buffer(&mut buffer);
                if n == 0 {
                    break;
                }
                let docs = &mut buffer[..n];
                if alive.is_some() {
                    let mut kept = [0; COLLECT_BLOCK_BUFFER_LEN];
                    let mut n_kept = 0;
                    for &doc in docs.iter().filter(|d| is_alive(**d)) {
                        kept[n_kept] = doc;
                        n_kept += 1;
                    }
                    child.collect_block(&kept[..n_kept]);
                } else {
                    child.collect_block(docs);
                }
                since_look += n;
                if since_look >= CHECK_EVERY {
                    since_look = 0;
                    if self.deadline.passed() {
                        break;
                    }
                }
            }
        }
        Ok(child.harvest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::{AllQuery, TermQuery};
    use tantivy::schema::{IndexRecordOption, STRING, Schema};
    use tantivy::{Index, IndexWriter, TantivyDocument, Term};

    const DOCS: usize = 20 * CHECK_EVERY;

    /// One segment of `DOCS` documents, all with the word `w`.
    fn one_segment() -> (Index, tantivy::schema::Field) {
        let mut schema = Schema::builder();
        let word = schema.add_text_field("w", STRING);
        let index = Index::create_in_ram(schema.build());
        let mut writer: IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        for _ in 0..DOCS {
            let mut doc = TantivyDocument::new();
            doc.add_text(word, "w");
            writer.add_document(doc).expect("add");
        }
        writer.commit().expect("commit");
        (index, word)
    }

    #[test]
    fn the_deadline_stops_collection_inside_a_segment() {
        let (index, word) = one_segment();
        let searcher = index.reader().expect("reader").searcher();
        assert_eq!(searcher.segment_readers().len(), 1);
        let query = TermQuery::new(Term::from_field_text(word, "w"), IndexRecordOption::Basic);
        // Not scored (a count): the deadline passes at the third look, after the first segment began.
        let deadline = Deadline::after_looks(2);
        let counted = searcher
            .search(&query, &Budgeted::new(Count, &deadline))
            .expect("count");
        assert!(deadline.exceeded());
        assert!(counted > 0 && counted < DOCS, "{counted} of {DOCS}");
        // Scored (top documents).
        let deadline = Deadline::after_looks(2);
        let (top, counted) = searcher
            .search(
                &AllQuery,
                &Budgeted::new((TopDocs::with_limit(3).order_by_score(), Count), &deadline),
            )
            .expect("top");
        assert!(deadline.exceeded());
        assert_eq!(top.len(), 3);
        assert!(counted > 0 && counted < DOCS, "{counted} of {DOCS}");
    }

    #[test]
    fn within_the_budget_everything_is_collected() {
        let (index, word) = one_segment();
        let searcher = index.reader().expect("reader").searcher();
        let query = TermQuery::new(Term::from_field_text(word, "w"), IndexRecordOption::Basic);
        let deadline = Deadline::after(Duration::from_secs(3600));
        let counted = searcher
            .search(&query, &Budgeted::new(Count, &deadline))
            .expect("count");
        assert_eq!(counted, DOCS);
        assert!(!deadline.exceeded());
    }

    #[test]
    fn a_passed_deadline_collects_nothing() {
        let (index, _) = one_segment();
        let searcher = index.reader().expect("reader").searcher();
        let deadline = Deadline::after(Duration::ZERO);
        let counted = searcher
            .search(&AllQuery, &Budgeted::new(Count, &deadline))
            .expect("count");
        assert_eq!(counted, 0);
        assert!(deadline.exceeded());
    }
}
