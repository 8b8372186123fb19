//! Reading string fast fields by term ordinal: collectors count or group ordinals while they collect
//! and name them once per segment at the end, in one sorted pass over the column's dictionary (a
//! lookup per ordinal would decode a dictionary block each time).

use std::collections::HashMap;

use tantivy::DocId;
use tantivy::columnar::StrColumn;

/// The first value's ordinal of `doc` in `column`, if it has one.
pub fn first_ord(column: &Option<StrColumn>, doc: DocId) -> Option<u64> {
    column.as_ref()?.term_ords(doc).next()
}

/// The names of `ords` in `column`.
pub fn names(
    column: &Option<StrColumn>,
    ords: impl IntoIterator<Item = u64>,
) -> HashMap<u64, String> {
    let mut sorted: Vec<u64> = ords.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let names = names_in_order(column, &sorted);
    sorted.into_iter().zip(names).collect()
}

/// The names of `sorted` (ordinals in increasing order, no repeats) in `column`, in that order.
pub fn names_in_order(column: &Option<StrColumn>, sorted: &[u64]) -> Vec<String> {
    let mut out = Vec::with_capacity(sorted.len());
    if let Some(column) = column {
        let _ = column.dictionary().sorted_ords_to_term_cb(sorted, |bytes| {
            out.push(String::from_utf8_lossy(bytes).into_owned());
        });
    }
    out
}
