//! A store in a directory on a local (or mounted) file system.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use std::time::SystemTime;

use super::api::{Listing, ReadBound, Store, StoreError};
use super::file::open_regular;

/// A directory on a local (or mounted) file system.
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn io(&self, op: &'static str, key: &str) -> impl FnOnce(io::Error) -> StoreError + '_ {
        let key = key.to_owned();
        move |source| StoreError::Io {
            store: self.location(),
            op,
            key,
            source,
        }
    }

    /// A fresh name in `<root>/tmp`, on the same file system as the objects
    /// so that the final rename is atomic.
    /// A temporary file in the store, on the file system of its keys so the
    /// final rename is atomic; deleted if it is dropped unpublished.
    fn scratch(&self) -> io::Result<tempfile::NamedTempFile> {
        let dir = self.root.join("tmp");
        fs::create_dir_all(&dir)?;
        tempfile::Builder::new().suffix(".part").tempfile_in(dir)
    }
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    // A directory the user reaches as a file (even a mounted share) is
    // taken to be set up by the user; it needs no warning.
    fn is_remote(&self) -> bool {
        false
    }

    /// A local file needs no deadline: it is a regular file, and its
    /// reader reads no more than it expects.
    fn get(&self, key: &str, _bound: ReadBound) -> Result<Box<dyn Read + Send>, StoreError> {
        match open_regular(&self.path(key)) {
            Ok(Ok(f)) => Ok(Box::new(f)),
            Ok(Err(kind)) => Err(StoreError::NotAFile {
                store: self.location(),
                key: key.to_owned(),
                kind,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                store: self.location(),
                key: key.to_owned(),
            }),
            Err(e) => Err(self.io("read", key)(e)),
        }
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.path(key).try_exists().map_err(self.io("look up", key))
    }

    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError> {
        let dest = self.path(key);
        let parent = dest.parent().expect("keys have a parent");
        fs::create_dir_all(parent).map_err(self.io("create the directory of", key))?;
        let tmp = self.scratch().map_err(self.io("stage", key))?;
        // A rename keeps a single copy when `src` is on the same file system;
        // otherwise copy into the store's scratch space first.
        if fs::rename(src, tmp.path()).is_err() {
            fs::copy(src, tmp.path()).map_err(self.io("write", key))?;
            let _ = fs::remove_file(src);
        }
        tmp.persist(&dest)
            .map(drop)
            .map_err(|e| self.io("publish", key)(e.error))
    }

    fn list(&self, prefix: &str) -> Result<Option<Vec<Listing>>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![self.path(prefix)];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io("list", prefix)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(self.io("list", prefix))?;
                let path = entry.path();
                if entry.file_type().map_err(self.io("list", prefix))?.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let meta = entry.metadata().map_err(self.io("list", prefix))?;
                    out.push(Listing {
                        key: rel.to_string_lossy().replace('\\', "/"),
                        modified: meta.modified().map_err(self.io("list", prefix))?,
                        size: meta.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Some(out))
    }

    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StoreError> {
        match fs::metadata(self.path(key)) {
            Ok(m) => Ok(Some(m.modified().map_err(self.io("look up", key))?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("look up", key)(e)),
        }
    }

    fn touch(&self, key: &str) -> Result<(), StoreError> {
        fs::File::options()
            .write(true)
            .open(self.path(key))
            .and_then(|f| f.set_modified(SystemTime::now()))
            .map_err(self.io("touch", key))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io("delete", key)(e)),
            _ => Ok(()),
        }
    }
}
