//! The relay's own RSA key pair, kept in the data directory.
//!
//! Generated on first start and stored as PKCS#8 PEM readable by the owner only; every later start
//! loads the same key, because instances cache it and a new key would make them refuse the relay.

use std::path::Path;

use crate::httpsig::PrivateKey;
use crate::{Error, Result};

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "relay-key.pem";

/// Loads the key from `data_dir`, generating and saving it when absent.
pub fn load_or_generate(data_dir: &Path) -> Result<PrivateKey> {
    let path = data_dir.join(KEY_FILE);
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        let pem = std::fs::read_to_string(&path).map_err(io)?;
        return PrivateKey::from_pkcs8_pem(&pem);
    }
    let key = PrivateKey::generate()?;
    write_private(&path, key.to_pkcs8_pem()?.as_bytes()).map_err(io)?;
    tracing::info!(path = %path.display(), "generated the relay key pair");
    Ok(key)
}

/// Writes a file that only its owner can read, atomically (temporary file, then rename).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
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

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        assert!(load_or_generate(dir.path()).is_err());
    }
}
