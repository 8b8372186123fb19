//! Which document ids the index may hold, so that writing a document under an id the index has
//! certainly never held skips tantivy's delete by id. A delete is not free: tantivy applies each one
//! to the segment being built and, at the next commit, to every segment (a term lookup in each), which
//! cost 8% of ingest at a million posts — nearly all of it spent on posts that were new.
//!
//! A blocked Bloom filter: an id sets 4 bits of one 64-bit word, so a check is one memory access and one
//! atomic `fetch_or` both checks and records. It answers "maybe" for every id recorded (and for about
//! one other id in a hundred), never "no" for one recorded: an id is recorded before its document is
//! handed to tantivy, and every id of the index is read into it when the index opens. A full layer is
//! kept and a new one, twice its size, takes the next ids, so the filter grows with the index (about
//! 2 bytes per id) without reading the index again.

use std::hash::BuildHasher;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::error::Result;

/// Bits of filter per id a layer is made for (about 1% false "maybe" when full).
const BITS_PER_ID: usize = 16;

/// Ids the first layer is made for, at least.
const MIN_IDS: usize = 1 << 16;

/// The ids written to the index, as a Bloom filter.
pub(crate) struct KnownIds {
    layers: RwLock<Vec<Layer>>,
    hasher: foldhash::fast::RandomState,
}

/// One filter of fixed size.
struct Layer {
    words: Box<[AtomicU64]>,
    /// Ids it is made for.
    capacity: usize,
    /// Ids recorded in it (new ones only).
    recorded: AtomicUsize,
}

impl Layer {
    fn new(capacity: usize) -> Layer {
        let words = (capacity * BITS_PER_ID / 64).max(1);
        Layer {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            capacity,
            recorded: AtomicUsize::new(0),
        }
    }

    /// The word an id's hash falls in and the bits it sets there.
    fn place(&self, hash: u64) -> (&AtomicU64, u64) {
        // The high half picks the word (multiply-shift: even over any length), the low 24 bits the
        // four bits.
        let word = (((hash >> 32) * self.words.len() as u64) >> 32) as usize;
        let mask = (0..4).fold(0u64, |mask, i| mask | 1 << ((hash >> (6 * i)) & 63));
        (&self.words[word], mask)
    }

    fn contains(&self, hash: u64) -> bool {
        let (word, mask) = self.place(hash);
        word.load(Ordering::Relaxed) & mask == mask
    }

    /// Records a hash; whether it may have been recorded before.
    fn insert(&self, hash: u64) -> bool {
        let (word, mask) = self.place(hash);
        let seen = word.fetch_or(mask, Ordering::Relaxed) & mask == mask;
        if !seen {
            self.recorded.fetch_add(1, Ordering::Relaxed);
        }
        seen
    }

    fn full(&self) -> bool {
        self.recorded.load(Ordering::Relaxed) >= self.capacity
    }
}

impl KnownIds {
    /// An empty filter whose first layer is made for `ids` ids (at least [`MIN_IDS`]).
    pub(crate) fn with_capacity(ids: usize) -> KnownIds {
        KnownIds {
            layers: RwLock::new(vec![Layer::new(ids.max(MIN_IDS))]),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// A filter holding every id of the index `searcher` reads (`field`: the ids' field), with room for
    /// as many again before it grows.
    pub(crate) fn read(
        searcher: &tantivy::Searcher,
        field: tantivy::schema::Field,
    ) -> Result<KnownIds> {
        let docs: u64 = searcher
            .segment_readers()
            .iter()
            .map(|segment| u64::from(segment.max_doc()))
            .sum();
        let known = KnownIds::with_capacity(usize::try_from(docs).unwrap_or(usize::MAX / 2) * 2);
        for segment in searcher.segment_readers() {
            let ids = segment.inverted_index(field)?;
            let mut terms = ids.terms().stream()?;
            while terms.advance() {
                known.record(terms.key());
            }
        }
        Ok(known)
    }

    /// Records `id`; whether the index may already hold a document under it (`false`: certainly not).
    pub(crate) fn record(&self, id: &[u8]) -> bool {
        let hash = self.hasher.hash_one(id);
        loop {
            {
                let layers = self.layers.read().unwrap_or_else(|e| e.into_inner());
                if let Some((newest, older)) = layers.split_last() {
                    if older.iter().any(|layer| layer.contains(hash)) {
                        return true;
                    }
                    if !newest.full() {
                        return newest.insert(hash);
                    }
                }
            }
            let mut layers = self.layers.write().unwrap_or_else(|e| e.into_inner());
            // Another thread may have added a layer meanwhile.
            let next = match layers.last() {
                Some(newest) if !newest.full() => None,
                Some(newest) => Some(newest.capacity * 2),
                None => Some(MIN_IDS),
            };
            if let Some(capacity) = next {
                layers.push(Layer::new(capacity));
            }
        }
    }

    /// Memory the filter holds, in bytes.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        let layers = self.layers.read().unwrap_or_else(|e| e.into_inner());
        layers.iter().map(|layer| layer.words.len() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> Vec<u8> {
        format!("https://a.example/users/alice/statuses/{n}").into_bytes()
    }

    #[test]
    fn every_recorded_id_is_known_and_few_others_are() {
        let known = KnownIds::with_capacity(10_000);
        for n in 0..10_000 {
            known.record(&id(n));
        }
        for n in 0..10_000 {
            assert!(known.record(&id(n)), "recorded id {n} reported new");
        }
        // The first layer was made for 65,536 ids (MIN_IDS): fill it to its capacity, then count
        // false "maybe"s among ids never recorded (each check records it: count, then it is known).
        for n in 10_000..MIN_IDS {
            known.record(&id(n));
        }
        let others = (1_000_000..1_010_000)
            .filter(|&n| known.record(&id(n)))
            .count();
        assert!(others < 400, "{others} of 10,000 new ids reported known");
    }

    #[test]
    fn the_filter_grows_past_its_capacity_and_forgets_nothing() {
        let known = KnownIds::with_capacity(0);
        let ids = MIN_IDS * 5;
        let new = (0..ids).filter(|&n| !known.record(&id(n))).count();
        // A few new ids look known (false "maybe"s), never the reverse.
        assert!(new > ids * 97 / 100, "only {new} of {ids} ids reported new");
        assert!((0..ids).all(|n| known.record(&id(n))));
        // Layers of 65,536, 131,072 and 262,144 ids: 2 bytes per id of room.
        assert_eq!(
            known.bytes(),
            (MIN_IDS + 2 * MIN_IDS + 4 * MIN_IDS) * BITS_PER_ID / 8
        );
    }

    #[test]
    fn threads_recording_at_once_lose_nothing() {
        let known = KnownIds::with_capacity(0);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let known = &known;
                scope.spawn(move || {
                    for n in 0..50_000 {
                        known.record(&id(t * 1_000_000 + n));
                    }
                });
            }
        });
        for t in 0..4 {
            assert!((0..50_000).all(|n| known.record(&id(t * 1_000_000 + n))));
        }
    }
}
