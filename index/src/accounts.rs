//! Accounts by the names clients know them by: the numeric account id ([`crate::account_id`], Mastodon's
//! `/api/v1/accounts/{id}`) and the `user@host` handle (Mastodon's `/api/v1/accounts/lookup`). Each is
//! one term lookup among the actor documents, which the index keeps for every listed profile and every
//! author whose posts may be indexed; an actor it does not hold is unknown.

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query as TantivyQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{TantivyDocument, Term};

use crate::error::Result;
use crate::index::Index;
use crate::results::AccountView;
use crate::schema;
use crate::search::stored_json;

impl Index {
    /// The account with this account id, if the index holds its actor.
    pub fn account_by_id(&self, id: u64) -> Result<Option<AccountView>> {
        self.actor_where(Term::from_field_u64(self.shared.fields.account, id))
    }

    /// The account with this `user@host` handle (any case, no leading `@`), if the index holds its
    /// actor.
    pub fn account_by_handle(&self, handle: &str) -> Result<Option<AccountView>> {
        let handle = handle.trim().trim_start_matches('@').to_lowercase();
        self.actor_where(Term::from_field_text(self.shared.fields.handle, &handle))
    }

    fn actor_where(&self, wanted: Term) -> Result<Option<AccountView>> {
        let shared = &*self.shared;
        let term = |term| -> Box<dyn TantivyQuery> {
            Box::new(TermQuery::new(term, IndexRecordOption::Basic))
        };
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                term(Term::from_field_text(
                    shared.fields.kind,
                    schema::KIND_ACTOR,
                )),
            ),
            (Occur::Must, term(wanted)),
        ]);
        let searcher = shared.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        match top.first() {
            Some((_, address)) => {
                let doc: TantivyDocument = searcher.doc(*address)?;
                stored_json(&doc, shared.fields.data).map(Some)
            }
            None => Ok(None),
        }
    }
}
