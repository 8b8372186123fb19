//! Topic feeds (issue 16): a hashtag or a language that an instance or a person can follow through the
//! relay instead of the whole firehose.
//!
//! Each topic is its own ActivityPub `Service` actor with its own key, so that what it carries shows as
//! a boost by the topic and a follower can tell topics apart. This part holds what a topic *is*, free of
//! I/O: [`topic`] names, case-folding and handles; [`follow`] what a Follow or Undo at a topic inbox
//! asks for and the Accept; [`actor`] the documents the relay serves for a topic. Only [`keys`] does
//! I/O (a topic's key, made on first need). Keys and followers live in the store (`store::topics`);
//! the HTTP handlers in `web::topics` only translate.

pub mod actor;
pub mod follow;
pub mod keys;
pub mod topic;

pub use topic::{Topic, TopicKind};
