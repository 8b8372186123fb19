//! The time budget of a search: a collector wrapper that stops collecting once the deadline has passed.
//! Tantivy offers no way to interrupt a segment midway, so the budget is checked before each segment;
//! the segments left out make the result `partial`. Segments are bounded in size by merging, so one
//! segment's work is bounded too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::Weight;
use tantivy::{Result, SegmentOrdinal, SegmentReader};

/// Wraps a collector with a deadline.
pub struct Budgeted<'a, C> {
    inner: C,
    deadline: Instant,
    exceeded: &'a AtomicBool,
}

impl<'a, C> Budgeted<'a, C> {
    /// `inner`, which skips the segments reached after `deadline` and then sets `exceeded`.
    pub fn new(inner: C, deadline: Instant, exceeded: &'a AtomicBool) -> Self {
        Budgeted {
            inner,
            deadline,
            exceeded,
        }
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

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        ord: u32,
        reader: &SegmentReader,
    ) -> Result<<Self::Child as SegmentCollector>::Fruit> {
        if Instant::now() >= self.deadline {
            self.exceeded.store(true, Ordering::Relaxed);
            return Ok(self.inner.for_segment(ord, reader)?.harvest());
        }
        self.inner.collect_segment(weight, ord, reader)
    }
}
