//! This node's name among the nodes sharing a database, when the configuration gives none: made once
//! (the host name and a random suffix) and kept in the data directory, so a restarted node is the
//! same node — its index goes on from its own cursor (`indexer@{node}`) instead of being built again
//! from the log, and it takes its own leases back at once instead of waiting for them to expire.

use std::path::Path;

use crate::config::usable_node_id as usable;
use crate::federation::keyfile::write_private;
use crate::{Error, Result};

/// File name of the node id inside the data directory.
pub const NODE_ID_FILE: &str = "node-id";

/// The node id kept in `data_dir`, made and saved on first start. A file that does not hold a usable
/// id (empty, too long, with spaces) is an error naming it, not replaced: an operator wrote it.
pub fn load_or_create(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(NODE_ID_FILE);
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if usable(id) {
                Ok(id.to_owned())
            } else {
                Err(Error::Config(format!(
                    "{} does not hold a usable node id (1 to 100 characters, no spaces): \
                     correct it, or remove it to have a new one made",
                    path.display()
                )))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = fresh();
            write_private(&path, format!("{id}\n").as_bytes()).map_err(io)?;
            tracing::info!(node = %id, path = %path.display(), "made this node's id");
            Ok(id)
        }
        Err(source) => Err(io(source)),
    }
}

/// A new node id: the host name and a random suffix.
fn fresh() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| usable(h) && h.len() <= 90)
        .unwrap_or_else(|| "node".into());
    format!("{host}-{:06x}", fastrand::u32(..0x100_0000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create(dir.path()).expect("made");
        assert!(usable(&first), "{first:?}");
        assert_eq!(load_or_create(dir.path()).expect("read"), first);
        let other = tempfile::tempdir().expect("tempdir");
        assert_ne!(
            load_or_create(other.path()).expect("made"),
            first,
            "another data directory is another node"
        );
    }

    #[test]
    fn an_operators_id_is_read_and_a_broken_one_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(NODE_ID_FILE), "relay-a\n").expect("write");
        assert_eq!(load_or_create(dir.path()).expect("read"), "relay-a");
        std::fs::write(dir.path().join(NODE_ID_FILE), "two words").expect("write");
        let e = load_or_create(dir.path()).expect_err("refused");
        assert!(e.to_string().contains("node-id"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(NODE_ID_FILE)).expect("read"),
            "two words",
            "left as the operator wrote it"
        );
    }
}
