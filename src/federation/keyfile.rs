//! The relay's own RSA key pair, kept in the data directory — or, for a relay on PostgreSQL, in the
//! database, where every node finds the same one.
//!
//! Generated on first start and stored as PKCS#8 PEM (the file readable by the owner only); every
//! later start loads the same key, because instances cache it and a new key would make them refuse the
//! relay. On PostgreSQL the store keeps it ([`Store::offer_relay_key`]): the first node to start
//! stores its key — the data directory's file when there is one (a relay moved to PostgreSQL keeps
//! its identity), else a new one — and every node uses the one stored.

use std::path::Path;

use crate::httpsig::PrivateKey;
use crate::store::Store;
use crate::{Error, Result};

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "relay-key.pem";

/// The relay's key for a relay on `store`: the database's on PostgreSQL (stored on first start),
/// else the file in `data_dir` ([`load_or_generate`]).
pub async fn load_for(store: &Store, data_dir: &Path) -> Result<PrivateKey> {
    if !store.is_postgres() {
        return load_or_generate(data_dir);
    }
    let pem = match store.relay_key().await? {
        Some(pem) => pem,
        None => {
            let offered = match read_pem(data_dir)? {
                Some(pem) => pem,
                None => PrivateKey::generate()?.to_pkcs8_pem()?,
            };
            store.offer_relay_key(offered).await?
        }
    };
    PrivateKey::from_pkcs8_pem(&pem)
}

/// The key file's PEM in `data_dir`, when there is one.
pub fn read_pem(data_dir: &Path) -> Result<Option<String>> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(pem) => Ok(Some(pem)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Loads the key from `data_dir`, generating and saving it when absent.
pub fn load_or_generate(data_dir: &Path) -> Result<PrivateKey> {
    if let Some(pem) = read_pem(data_dir)? {
        return PrivateKey::from_pkcs8_pem(&pem);
    }
    let path = data_dir.join(KEY_FILE);
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let key = PrivateKey::generate()?;
    write_private(&path, key.to_pkcs8_pem()?.as_bytes()).map_err(io)?;
    tracing::info!(path = %path.display(), "generated the relay key pair");
    Ok(key)
}

/// Writes a file that only its owner can read, atomically (temporary file, then rename).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_generated_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path()).unwrap();
        let second = load_or_generate(dir.path()).unwrap();
        assert_eq!(first.public_key_pem(), second.public_key_pem());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// On PostgreSQL the key is the database's: two nodes starting together on one database (each
    /// with a data directory of its own) end up with the same key, and a later start keeps it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_on_one_database_share_one_key() {
        let db = crate::store::test_db::TestDb::postgres();
        let (a, b) = (db.open().await, db.open().await);
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (key_a, key_b) = tokio::join!(load_for(&a, dir_a.path()), load_for(&b, dir_b.path()));
        let (key_a, key_b) = (key_a.unwrap(), key_b.unwrap());
        assert_eq!(key_a.public_key_pem(), key_b.public_key_pem());
        assert!(
            !dir_a.path().join(KEY_FILE).exists(),
            "no key file on PostgreSQL"
        );
        let again = load_for(&db.open().await, dir_b.path()).await.unwrap();
        assert_eq!(again.public_key_pem(), key_a.public_key_pem());
    }

    /// A relay that ran on PostgreSQL with its key in the data directory keeps that key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_data_directorys_key_becomes_the_databases() {
        let dir = tempfile::tempdir().unwrap();
        let file = load_or_generate(dir.path()).unwrap();
        let db = crate::store::test_db::TestDb::postgres();
        let key = load_for(&db.open().await, dir.path()).await.unwrap();
        assert_eq!(key.public_key_pem(), file.public_key_pem());
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        assert!(load_or_generate(dir.path()).is_err());
    }
}
