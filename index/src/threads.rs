//! Threads as far as the index holds them: the posts a post replies to, up through `inReplyTo`, each
//! one a lookup of an indexed post (Mastodon's `ancestors` of a status's context). The walk stops at
//! the first post not indexed (not public, not consenting, never seen), at a loop, or at a depth.

use std::collections::HashSet;

use crate::error::Result;
use crate::index::Index;
use crate::results::PostHit;

/// Walks up from `parent` with `lookup`, at most `max_depth` posts, stopping at the first unknown
/// post or a post seen before; returns the posts root first. `parent_of` tells a post's parent.
pub fn walk_up<T>(
    parent: Option<String>,
    max_depth: usize,
    mut lookup: impl FnMut(&str) -> Result<Option<T>>,
    parent_of: impl Fn(&T) -> Option<String>,
) -> Result<Vec<T>> {
    let mut seen = HashSet::new();
    let mut chain = Vec::new();
    let mut next = parent;
    while let Some(uri) = next {
        if chain.len() >= max_depth || !seen.insert(uri.clone()) {
            break;
        }
        let Some(found) = lookup(&uri)? else {
            break;
        };
        next = parent_of(&found);
        chain.push(found);
    }
    chain.reverse();
    Ok(chain)
}

impl Index {
    /// The indexed posts `post` replies to, directly or not, root first, at most `max_depth`.
    pub fn ancestors(&self, post: &PostHit, max_depth: usize) -> Result<Vec<PostHit>> {
        walk_up(
            post.post.in_reply_to.clone(),
            max_depth,
            |uri| self.post(uri),
            |hit: &PostHit| hit.post.in_reply_to.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn chain(links: &[(&str, &str)]) -> HashMap<String, Option<String>> {
        links
            .iter()
            .map(|(post, parent)| {
                let parent = (!parent.is_empty()).then(|| parent.to_string());
                (post.to_string(), parent)
            })
            .collect()
    }

    fn walk(posts: &HashMap<String, Option<String>>, from: &str, max: usize) -> Vec<String> {
        walk_up(
            Some(from.to_owned()),
            max,
            |uri| {
                Ok(posts
                    .get(uri)
                    .map(|parent| (uri.to_owned(), parent.clone())))
            },
            |(_, parent): &(String, Option<String>)| parent.clone(),
        )
        .expect("walk")
        .into_iter()
        .map(|(uri, _)| uri)
        .collect()
    }

    #[test]
    fn walks_to_the_root_and_returns_it_first() {
        let posts = chain(&[("c", "b"), ("b", "a"), ("a", "")]);
        assert_eq!(walk(&posts, "c", 40), ["a", "b", "c"]);
    }

    #[test]
    fn stops_at_an_unknown_post_a_loop_or_the_depth() {
        let posts = chain(&[("c", "b"), ("b", "gone")]);
        assert_eq!(walk(&posts, "c", 40), ["b", "c"]);
        let looped = chain(&[("x", "y"), ("y", "x")]);
        assert_eq!(walk(&looped, "x", 40), ["y", "x"]);
        let long = chain(&[("d", "c"), ("c", "b"), ("b", "a"), ("a", "")]);
        assert_eq!(walk(&long, "d", 2), ["c", "d"]);
        assert!(walk(&long, "nothing", 40).is_empty());
    }
}
