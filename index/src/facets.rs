//! Facet counts of a search: the top values among its matches by instance, language, hashtag,
//! author type and month. Counted by a collector of our own over the string fast fields' term
//! ordinals, named once per segment at the end (see [`crate::str_columns`]).
//!
//! Facets guide a search ("most of this is in German, from these five instances"); they need not
//! be exact when a query matches a hundred thousand posts, and counting each of those costs more
//! than the search itself. So the first matches of a search are all counted (4,096 by default,
//! [`QueryLimits::facets_exact`](crate::QueryLimits)); after that one match in 2 is, then one in 4,
//! 8… (each weighing for the ones it stands for), the stride doubling every as many counted
//! matches — so the work grows with the logarithm of the matches.
//! Sampled counts are marked ([`Facets::sampled`]) and the API says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::{HashMap, HashMapExt};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::results::{FacetCount, Facets};
use crate::str_columns::names_in_order;

/// Values returned per facet (months: the twelve latest).
pub const FACET_SIZE: usize = 10;
const MONTHS: usize = 12;

/// Values a segment hands on per facet (its most frequent), as tantivy's terms aggregation did
/// (`segment_size`, ten times the values asked for): a value outside every segment's hundred most
/// frequent is seldom among the ten most frequent of all, and a top value missing from one
/// segment's list is undercounted by at most that segment's hundredth count.
const SEGMENT_SIZE: usize = FACET_SIZE * 10;

/// A dictionary this small is counted in a vector indexed by ordinal; a larger one in a map.
const DENSE_TERMS: u64 = 1 << 14;

/// The fast fields counted, in the order of [`Facets`]' lists.
const FIELDS: [&str; 5] = ["instance", "lang", "tags", "actor_type", "month"];

/// Counts facets of the documents it collects. Segments are collected one after another, and the
/// sampling goes on across them: `seen` is how many matches the finished segments had.
pub struct FacetCollector {
    seen: Arc<AtomicU64>,
    exact: u64,
}

impl FacetCollector {
    /// A collector for one search that counts the first `exact` matches one by one (at least one).
    pub fn new(exact: u64) -> Self {
        FacetCollector {
            seen: Arc::new(AtomicU64::new(0)),
            exact: exact.max(1),
        }
    }
}

/// Where the sampling stands: which match is counted next and what it weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stride {
    /// Matches counted one by one, and then at each stride.
    exact: u64,
    /// Matches seen so far.
    seen: u64,
    /// One match in `every` is counted, weighing `every`.
    every: u64,
    /// The number of matches seen at which `every` doubles.
    doubles_at: u64,
    /// Matches to pass before the next one counted.
    skip: u64,
}

impl Stride {
    /// The sampling after `seen` matches.
    fn after(seen: u64, exact: u64) -> Stride {
        let (mut every, mut doubles_at) = (1u64, exact);
        while seen >= doubles_at {
            every = every.saturating_mul(2);
            doubles_at = doubles_at.saturating_add(exact.saturating_mul(every));
        }
        let into_phase = seen - (doubles_at - exact.saturating_mul(every));
        Stride {
            exact,
            seen,
            every,
            doubles_at,
            skip: (every - into_phase % every) % every,
        }
    }

    /// One more match: its weight if it is counted.
    fn next(&mut self) -> Option<u64> {
        let weight = if self.skip == 0 {
            self.skip = self.every - 1;
            Some(self.every)
        } else {
            self.skip -= 1;
            None
        };
        self.seen += 1;
        if self.seen == self.doubles_at {
            self.every = self.every.saturating_mul(2);
            self.doubles_at = self
                .doubles_at
                .saturating_add(self.exact.saturating_mul(self.every));
            self.skip = 0;
        }
        weight
    }
}

/// Counts per term ordinal of one column.
enum Counts {
    Dense(Vec<u64>),
    Sparse(HashMap<u64, u64>),
}

impl Counts {
    fn for_column(column: &Option<StrColumn>) -> Counts {
        match column {
            Some(c) if c.dictionary().num_terms() as u64 <= DENSE_TERMS => {
                Counts::Dense(vec![0; c.dictionary().num_terms()])
            }
            _ => Counts::Sparse(HashMap::new()),
        }
    }

    fn add(&mut self, ord: u64, weight: u64) {
        match self {
            Counts::Dense(v) => {
                if let Some(n) = usize::try_from(ord).ok().and_then(|i| v.get_mut(i)) {
                    *n += weight;
                }
            }
            Counts::Sparse(m) => *m.entry(ord).or_default() += weight,
        }
    }

    /// The ordinals counted, in increasing order, and their counts; at most `keep`, the most
    /// frequent.
    fn counted(self, keep: usize) -> (Vec<u64>, Vec<u64>) {
        let mut pairs: Vec<(u64, u64)> = match self {
            Counts::Dense(v) => v
                .into_iter()
                .enumerate()
                .filter(|(_, n)| *n > 0)
                .map(|(ord, n)| (ord as u64, n))
                .collect(),
            Counts::Sparse(m) => {
                let mut pairs: Vec<(u64, u64)> = m.into_iter().collect();
                pairs.sort_unstable();
                pairs
            }
        };
        if pairs.len() > keep {
            pairs.select_nth_unstable_by(keep, |a, b| b.1.cmp(&a.1));
            pairs.truncate(keep);
            pairs.sort_unstable();
        }
        pairs.into_iter().unzip()
    }
}

/// One segment's counting.
pub struct FacetSegment {
    columns: Vec<Option<StrColumn>>,
    counts: Vec<Counts>,
    /// The weights of the matches counted, added up.
    weight: u64,
    stride: Stride,
    started_at: u64,
    /// The search's matches so far, for the next segment.
    seen: Arc<AtomicU64>,
}

/// What a segment (and then the search) counted: per facet, each value's count; and how many
/// matches there were, which tells whether they were sampled.
pub struct Counted {
    values: Vec<Vec<(String, u64)>>,
    matches: u64,
    weight: u64,
}

impl Collector for FacetCollector {
    type Fruit = Facets;
    type Child = FacetSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<FacetSegment> {
        let fast = reader.fast_fields();
        let columns = FIELDS
            .iter()
            .map(|field| fast.str(field))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let seen = self.seen.load(Ordering::Relaxed);
        Ok(FacetSegment {
            counts: columns.iter().map(Counts::for_column).collect(),
            weight: 0,
            columns,
            stride: Stride::after(seen, self.exact),
            started_at: seen,
            seen: Arc::clone(&self.seen),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Counted>) -> tantivy::Result<Facets> {
        let mut all: Vec<HashMap<String, u64>> = vec![HashMap::new(); FIELDS.len()];
        let (mut matches, mut weight) = (0, 0);
        for fruit in fruits {
            matches += fruit.matches;
            weight += fruit.weight;
            for (into, values) in all.iter_mut().zip(fruit.values) {
                for (value, n) in values {
                    *into.entry(value).or_default() += n;
                }
            }
        }
        // The last match counted weighs for matches that may never have come (the search ended
        // first): scale the counts so that the weights add up to the matches.
        let scale = |n: u64| match weight {
            0 => n,
            w if w == matches => n,
            w => (n as f64 * matches as f64 / w as f64).round() as u64,
        };
        let mut lists = all.into_iter().enumerate().map(|(i, values)| {
            let mut list: Vec<FacetCount> = values
                .into_iter()
                .map(|(value, count)| FacetCount {
                    value,
                    count: scale(count),
                })
                .collect();
            if FIELDS[i] == "month" {
                list.sort_by(|a, b| b.value.cmp(&a.value));
                list.truncate(MONTHS);
            } else {
                list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
                list.truncate(FACET_SIZE);
            }
            list
        });
        let mut next = || lists.next().unwrap_or_default();
        Ok(Facets {
            instance: next(),
            language: next(),
            tag: next(),
            actor_type: next(),
            month: next(),
            sampled: matches > self.exact,
        })
    }
}

impl SegmentCollector for FacetSegment {
    type Fruit = Counted;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let Some(weight) = self.stride.next() else {
            return;
        };
        self.weight += weight;
        for (column, counts) in self.columns.iter().zip(self.counts.iter_mut()) {
            if let Some(column) = column {
                for ord in column.term_ords(doc) {
                    counts.add(ord, weight);
                }
            }
        }
    }

    fn harvest(self) -> Counted {
        self.seen.fetch_max(self.stride.seen, Ordering::Relaxed);
        let values = FIELDS
            .iter()
            .zip(&self.columns)
            .zip(self.counts)
            .map(|((field, column), counts)| {
                let keep = if *field == "month" {
                    usize::MAX
                } else {
                    SEGMENT_SIZE
                };
                let (ords, counts) = counts.counted(keep);
                names_in_order(column, &ords)
                    .into_iter()
                    .zip(counts)
                    .collect()
            })
            .collect();
        Counted {
            values,
            matches: self.stride.seen - self.started_at,
            weight: self.weight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXACT: u64 = 4096;

    /// The weights of `n` matches, sampled from the start.
    fn weights(n: u64) -> Vec<u64> {
        let mut stride = Stride::after(0, EXACT);
        (0..n).map(|_| stride.next().unwrap_or(0)).collect()
    }

    #[test]
    fn the_first_matches_count_exactly_then_one_in_two_four_eight() {
        let w = weights(EXACT * 8);
        assert!(w[..EXACT as usize].iter().all(|&x| x == 1));
        let halves = &w[EXACT as usize..3 * EXACT as usize];
        assert!(halves.chunks(2).all(|c| c == [2, 0]));
        let quarters = &w[3 * EXACT as usize..7 * EXACT as usize];
        assert!(quarters.chunks(4).all(|c| c == [4, 0, 0, 0]));
        // The weights add up to the matches seen (at a phase's end, exactly).
        assert_eq!(w[..7 * EXACT as usize].iter().sum::<u64>(), 7 * EXACT);
    }

    #[test]
    fn work_grows_with_the_logarithm_of_the_matches() {
        let counted = |n: u64| weights(n).iter().filter(|&&x| x > 0).count() as u64;
        assert_eq!(counted(EXACT), EXACT);
        assert!(counted(1_000_000) <= EXACT * 9);
    }

    #[test]
    fn a_segment_takes_up_the_sampling_where_the_last_one_left_it() {
        for split in [0, 1, EXACT - 1, EXACT, EXACT + 1, 3 * EXACT + 5, 20_000] {
            let mut first = Stride::after(0, EXACT);
            let mut whole: Vec<u64> = (0..split).map(|_| first.next().unwrap_or(0)).collect();
            let mut second = Stride::after(split, EXACT);
            assert_eq!(second, first, "split at {split}");
            whole.extend((0..30_000).map(|_| second.next().unwrap_or(0)));
            assert_eq!(whole, weights(split + 30_000), "split at {split}");
        }
    }
}
