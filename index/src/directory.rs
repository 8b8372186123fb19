//! The index directory: tantivy's memory-mapped directory, except for the document stores.
//!
//! A document store (`.store`: every document's source JSON and display data, most of the index's
//! bytes) is read a compressed block at a time, a few blocks per search, scattered over the whole file.
//! Memory-mapped, every block a search ever read stays in the process's resident memory as mapped file
//! pages, so a relay that has served enough searches holds nearly the whole store resident. Read with
//! `pread` instead, a block costs a short-lived buffer and the kernel's page cache (shared, evictable,
//! not the process's RSS). Postings, term dictionaries and fast fields stay memory-mapped: they are what
//! searches read most, and in place.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::directory::error::{DeleteError, OpenDirectoryError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, OwnedBytes, WatchCallback,
    WatchHandle, WritePtr,
};

/// Whether a file of the index is read with `pread` rather than mapped.
fn read_unmapped(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "store")
}

/// A file read with positioned reads.
#[derive(Debug)]
struct PreadFile {
    file: File,
    len: usize,
}

impl FileHandle for PreadFile {
    fn read_bytes(&self, range: Range<usize>) -> std::io::Result<OwnedBytes> {
        if range.start > range.end || range.end > self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("read of {range:?} beyond a file of {} bytes", self.len),
            ));
        }
        let mut buffer = vec![0; range.len()];
        self.file.read_exact_at(&mut buffer, range.start as u64)?;
        Ok(OwnedBytes::new(buffer))
    }
}

impl tantivy::HasLen for PreadFile {
    fn len(&self) -> usize {
        self.len
    }
}

/// The directory of an index on disk (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct IndexDirectory {
    root: PathBuf,
    mmap: MmapDirectory,
}

impl IndexDirectory {
    pub(crate) fn open(dir: &Path) -> Result<IndexDirectory, OpenDirectoryError> {
        Ok(IndexDirectory {
            root: dir.to_owned(),
            mmap: MmapDirectory::open(dir)?,
        })
    }
}

impl Directory for IndexDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        if !read_unmapped(path) {
            return self.mmap.get_file_handle(path);
        }
        let full = self.root.join(path);
        let io_error = |io_error| OpenReadError::IoError {
            io_error: Arc::new(io_error),
            filepath: path.to_owned(),
        };
        let file = File::open(&full).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OpenReadError::FileDoesNotExist(path.to_owned()),
            _ => io_error(e),
        })?;
        let len = file.metadata().map_err(io_error)?.len();
        let len = usize::try_from(len).map_err(|e| io_error(std::io::Error::other(e)))?;
        Ok(Arc::new(PreadFile { file, len }))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.mmap.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.mmap.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.mmap.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.mmap.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.mmap.atomic_write(path, data)
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        self.mmap.sync_directory()
    }

    fn acquire_lock(
        &self,
        lock: &Lock,
    ) -> Result<DirectoryLock, tantivy::directory::error::LockError> {
        self.mmap.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.mmap.watch(watch_callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_are_read_unmapped_and_exactly() {
        assert!(read_unmapped(Path::new("0123abcd.store")));
        assert!(!read_unmapped(Path::new("0123abcd.idx")));
        assert!(!read_unmapped(Path::new("0123abcd.store.temp")));
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.store"), b"0123456789").expect("write");
        let directory = IndexDirectory::open(dir.path()).expect("open");
        let handle = directory
            .get_file_handle(Path::new("a.store"))
            .expect("handle");
        assert_eq!(handle.len(), 10);
        assert_eq!(handle.read_bytes(2..5).expect("read").as_slice(), b"234");
        assert_eq!(handle.read_bytes(10..10).expect("empty").as_slice(), b"");
        assert!(handle.read_bytes(5..11).is_err());
        assert!(matches!(
            directory.get_file_handle(Path::new("missing.store")),
            Err(OpenReadError::FileDoesNotExist(_))
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_open_and_searched_index_maps_no_document_store() {
        use serde_json::json;
        let dir = tempfile::tempdir().expect("tempdir");
        let index = crate::Index::open(dir.path(), crate::IndexConfig::default()).expect("open");
        let author = json!({"id": "https://a.example/users/ann", "type": "Person",
            "preferredUsername": "ann", "indexable": true, "discoverable": true});
        let post = json!({"id": "https://a.example/users/ann/statuses/1", "type": "Note",
            "attributedTo": "https://a.example/users/ann", "content": "<p>fresh bread</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"]});
        index.add_post(&post, &author, "a.example").expect("add");
        index.commit().expect("commit");
        let page = index
            .search_posts(&crate::SearchRequest::new("bread"))
            .expect("search");
        assert_eq!(page.hits.len(), 1);
        assert_eq!(page.hits[0].account.acct, "ann@a.example");
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let root = dir.path().to_string_lossy();
        let mapped: Vec<&str> = maps.lines().filter(|l| l.contains(&*root)).collect();
        assert!(!mapped.is_empty(), "the other index files are mapped");
        assert!(!mapped.iter().any(|l| l.ends_with(".store")), "{mapped:#?}");
    }
}
