//! The whole index at a glance: documents per kind (for metrics) and the list of instances. Counting
//! runs under the search time budget; what it left out marks the answer `partial`.

use tantivy::collector::{Count, DocSetCollector};
use tantivy::query::{BooleanQuery, Occur, Query as TantivyQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::schema::Value as _;
use tantivy::{TantivyDocument, Term};

use crate::budget::{Budgeted, Deadline};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::instance::InstanceRecord;
use crate::results::{Counts, InstanceView};
use crate::schema;

fn term(field: tantivy::schema::Field, value: &str) -> Box<dyn TantivyQuery> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

impl Index {
    /// Documents per kind, as of the last commit.
    pub fn counts(&self) -> Result<Counts> {
        let shared = &*self.shared;
        let f = &shared.fields;
        let deadline = Deadline::after(shared.config.limits.time_budget);
        let searcher = shared.reader.searcher();
        let count = |q: &dyn TantivyQuery| {
            searcher
                .search(q, &Budgeted::new(Count, &deadline))
                .map(|n| n as u64)
        };
        let listed = BooleanQuery::new(vec![
            (Occur::Must, term(f.kind, schema::KIND_ACTOR)),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_bool(f.listed, true),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        Ok(Counts {
            posts: count(&*term(f.kind, schema::KIND_POST))?,
            actors: count(&*term(f.kind, schema::KIND_ACTOR))?,
            profiles: count(&listed)?,
            instances: count(&*term(f.kind, schema::KIND_INSTANCE))?,
            partial: deadline.exceeded(),
        })
    }

    /// Every instance recorded, by host, with the number of its posts indexed (`partial` on those whose
    /// posts the time budget left uncounted or half counted).
    pub fn instances(&self) -> Result<Vec<InstanceView>> {
        let shared = &*self.shared;
        let f = &shared.fields;
        let deadline = Deadline::after(shared.config.limits.time_budget);
        let searcher = shared.reader.searcher();
        let addresses = searcher.search(&*term(f.kind, schema::KIND_INSTANCE), &DocSetCollector)?;
        let mut views = Vec::with_capacity(addresses.len());
        for address in addresses {
            let doc: TantivyDocument = searcher.doc(address)?;
            let source = doc
                .get_first(f.source)
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| Error::Unusable("instance document without source".into()))?;
            let record: InstanceRecord = serde_json::from_slice(source)
                .map_err(|e| Error::Unusable(format!("instance source: {e}")))?;
            let mut view = record.view();
            let posts = BooleanQuery::new(vec![
                (Occur::Must, term(f.kind, schema::KIND_POST)),
                (Occur::Must, term(f.instance, &record.host)),
            ]);
            view.posts = searcher.search(&posts, &Budgeted::new(Count, &deadline))? as u64;
            view.partial = deadline.exceeded();
            views.push(view);
        }
        views.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(views)
    }
}
