//! Each topic actor's own key: read from the store, or made on first need. RSA generation takes tens
//! of milliseconds of CPU, so it runs on the blocking pool, and the `max_topics` cap bounds how many
//! keys anyone can make the relay generate.

use crate::httpsig::keys::PrivateKey;
use crate::store::Store;
use crate::store::topics::TopicKey;
use crate::topics::Topic;
use crate::{Error, Result};

/// The key of `topic`, generated and stored when the topic is new and fewer than `max_topics` exist;
/// [`Error::Unavailable`] when the cap is reached.
pub async fn key_for(store: &Store, topic: &Topic, max_topics: u64) -> Result<TopicKey> {
    if let Some(key) = store.topic_key(topic).await? {
        return Ok(key);
    }
    let full = || {
        Error::Unavailable(format!(
            "no new topics: the limit of {max_topics} is reached"
        ))
    };
    if store.topic_count().await? >= max_topics {
        return Err(full());
    }
    let fresh = fresh().await?;
    store
        .create_topic(topic, fresh, max_topics)
        .await?
        .ok_or_else(full)
}

/// Key generations at once: each takes tens of milliseconds of one core, so more at once would not
/// be faster on a small machine, and each busy blocking thread keeps memory of its own afterwards
/// (a burst of new topics grew the relay by hundreds of MB).
static GENERATING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A new key pair, made off the runtime, one at a time.
pub async fn fresh() -> Result<TopicKey> {
    let _turn = GENERATING
        .acquire()
        .await
        .map_err(|e| Error::Crypto(format!("key generation closed: {e}")))?;
    tokio::task::spawn_blocking(|| -> Result<TopicKey> {
        let key = PrivateKey::generate()?;
        Ok(TopicKey {
            private_pem: key.to_pkcs8_pem()?,
            public_pem: key.public_key_pem().to_owned(),
        })
    })
    .await
    .map_err(|e| Error::Crypto(format!("key generation task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_topic_keeps_one_real_key_and_the_cap_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        let coop = Topic::tag("coop").expect("tag");
        let first = key_for(&store, &coop, 1).await.expect("made");
        let parsed = PrivateKey::from_pkcs8_pem(&first.private_pem).expect("a usable key");
        assert_eq!(parsed.public_key_pem(), first.public_pem);
        assert_eq!(key_for(&store, &coop, 1).await.expect("kept"), first);
        let es = Topic::language("es").expect("es");
        assert!(matches!(
            key_for(&store, &es, 1).await,
            Err(Error::Unavailable(_))
        ));
        assert!(matches!(
            key_for(&store, &es, 0).await,
            Err(Error::Unavailable(_))
        ));
    }
}
