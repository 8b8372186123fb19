//! Rebuilding the index from the sources it stores: every document keeps the JSON it was made from, so
//! a new schema (or new analysis, or stricter consent rules) applies to everything without the network.
//! Actors and instances go first, then posts, each re-checked against the consent rules with its
//! author's stored actor document. The new index is built beside the old one and swapped in at the end;
//! the relay must not have the index open meanwhile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::TermQuery;
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use crate::error::{Error, Result};
use crate::index::{Index, IndexConfig};
use crate::instance::InstanceRecord;
use crate::schema;

/// Author documents kept in memory while posts are rebuilt; past this the cache starts over.
const AUTHOR_CACHE: usize = 50_000;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReindexReport {
    /// Posts indexed again.
    pub posts: u64,
    /// Actors kept again.
    pub actors: u64,
    /// Instances kept again.
    pub instances: u64,
    /// Documents left out: consent no longer given, author missing, or source unreadable.
    pub dropped: u64,
}

/// The fields a rebuild needs, found by name in whatever schema the old index has.
struct OldFields {
    kind: Field,
    id: Field,
    author: Field,
    source: Field,
}

fn corrupt(dir: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: dir.to_owned(),
        reason: reason.to_string(),
    }
}

fn addresses(searcher: &Searcher, field: Field, value: &str) -> Result<Vec<DocAddress>> {
    let query = TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    );
    let mut all: Vec<DocAddress> = searcher
        .search(&query, &DocSetCollector)?
        .into_iter()
        .collect();
    all.sort();
    Ok(all)
}

fn source(
    searcher: &Searcher,
    fields: &OldFields,
    address: DocAddress,
) -> Result<(TantivyDocument, Value)> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let bytes = doc
        .get_first(fields.source)
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| Error::Unusable("document without source".into()))?;
    let value = serde_json::from_slice(bytes).map_err(|e| Error::Unusable(e.to_string()))?;
    Ok((doc, value))
}

fn author_source(
    searcher: &Searcher,
    fields: &OldFields,
    cache: &mut HashMap<String, Option<Value>>,
    id: &str,
) -> Result<Option<Value>> {
    if let Some(found) = cache.get(id) {
        return Ok(found.clone());
    }
    if cache.len() >= AUTHOR_CACHE {
        cache.clear();
    }
    let query = TermQuery::new(
        Term::from_field_text(fields.id, id),
        IndexRecordOption::Basic,
    );
    let found = match searcher
        .search(&query, &TopDocs::with_limit(1).order_by_score())?
        .first()
    {
        Some((_, address)) => source(searcher, fields, *address).ok().map(|(_, v)| v),
        None => None,
    };
    cache.insert(id.to_owned(), found.clone());
    Ok(found)
}

/// The directory a rebuild of `dir` is written to before the swap.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Rebuilds the index in `dir` from its stored sources, calling `progress(done, total)` as it goes.
pub fn reindex(
    dir: &Path,
    config: IndexConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReindexReport> {
    let old = tantivy::Index::open_in_dir(dir).map_err(|e| corrupt(dir, e))?;
    let schema = old.schema();
    let field = |name: &str| {
        schema.get_field(name).map_err(|_| {
            corrupt(
                dir,
                format!("the index has no {name} field to rebuild from"),
            )
        })
    };
    let fields = OldFields {
        kind: field("kind")?,
        id: field("id")?,
        author: field("author")?,
        source: field("source")?,
    };
    let reader = old.reader().map_err(|e| corrupt(dir, e))?;
    let searcher = reader.searcher();
    let fresh_dir = sibling(dir, ".rebuild");
    if fresh_dir.exists() {
        std::fs::remove_dir_all(&fresh_dir)?;
    }
    let fresh = Index::open(&fresh_dir, config)?;
    let actors = addresses(&searcher, fields.kind, schema::KIND_ACTOR)?;
    let instances = addresses(&searcher, fields.kind, schema::KIND_INSTANCE)?;
    let posts = addresses(&searcher, fields.kind, schema::KIND_POST)?;
    let total = (actors.len() + instances.len() + posts.len()) as u64;
    let mut report = ReindexReport::default();
    let mut done = 0u64;
    let mut tick = |done: u64| {
        if done.is_multiple_of(1000) || done == total {
            progress(done, total);
        }
    };
    for address in actors {
        let kept = source(&searcher, &fields, address)
            .and_then(|(_, actor)| fresh.upsert_actor(&actor))
            .map(|outcome| outcome.listed.allowed() || outcome.posts.allowed());
        match kept {
            Ok(true) => report.actors += 1,
            _ => report.dropped += 1,
        }
        done += 1;
        tick(done);
    }
    for address in instances {
        let kept = source(&searcher, &fields, address).and_then(|(_, value)| {
            let record: InstanceRecord =
                serde_json::from_value(value).map_err(|e| Error::Unusable(e.to_string()))?;
            fresh.upsert_instance(&record)
        });
        match kept {
            Ok(()) => report.instances += 1,
            Err(_) => report.dropped += 1,
        }
        done += 1;
        tick(done);
    }
    let mut authors: HashMap<String, Option<Value>> = HashMap::new();
    for address in posts {
        let kept = (|| -> Result<bool> {
            let (doc, value) = source(&searcher, &fields, address)?;
            let Some(author_id) = doc.get_first(fields.author).and_then(|v| v.as_str()) else {
                return Ok(false);
            };
            let Some(author) = author_source(&searcher, &fields, &mut authors, author_id)? else {
                return Ok(false);
            };
            let instance = value
                .get("instance")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let object = value.get("object").unwrap_or(&Value::Null);
            Ok(fresh.add_post(object, &author, instance)?.allowed())
        })();
        match kept {
            Ok(true) => report.posts += 1,
            _ => report.dropped += 1,
        }
        done += 1;
        tick(done);
    }
    fresh.commit()?;
    drop(fresh);
    drop(searcher);
    drop(reader);
    drop(old);
    let retired = sibling(dir, ".old");
    if retired.exists() {
        std::fs::remove_dir_all(&retired)?;
    }
    std::fs::rename(dir, &retired)?;
    std::fs::rename(&fresh_dir, dir)?;
    std::fs::remove_dir_all(&retired)?;
    Ok(report)
}
