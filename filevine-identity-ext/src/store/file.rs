//! [`FileStore`]: one file per key in a directory only its owner can read.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::record::MAX_VALUE_BYTES;
use super::{Entry, StoreError, TokenStore};

/// Token sets as files: `<dir>/<key>.token`, one per key.
///
/// - The directory is created 0700 and files 0600 (on Unix); a directory
///   that others can read is refused.
/// - Writes are atomic: a temporary file in the same directory, `fsync`,
///   `rename` over the old one, `fsync` of the directory. A reader sees the
///   old value or the new one, never half of either.
/// - Compare-and-swap holds an OS lock on `<key>.lock` while it reads and
///   writes, so two processes never both win.
/// - The lease is an OS lock (`flock`) on `<key>.lease`, held while a
///   refresh runs: two processes on one machine make one exchange, and a
///   process that dies releases it at once (the OS does), so the lease time
///   is not needed here.
///
/// Blocking file I/O runs on Tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    /// The lease files this process holds locked, by key and owner.
    leases: Arc<Mutex<HashMap<(String, String), File>>>,
}

const KIND: &str = "file";

impl FileStore {
    /// A store in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), leases: Arc::default() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn blocking<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&FileStore) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || work(&store)).await {
            Ok(result) => result.map_err(|e| StoreError::backend(KIND, operation, e)),
            Err(join) => Err(StoreError::backend(KIND, operation, join)),
        }
    }

    fn path(&self, key: &str, extension: &str) -> std::io::Result<PathBuf> {
        // Keys are StoreKey names (hex); anything else is refused rather
        // than allowed to name a path.
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "a store key must be alphanumeric"));
        }
        Ok(self.dir.join(format!("{key}.{extension}")))
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&self.dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "the token directory {} is readable by other users (mode {:o}); make it 0700",
                        self.dir.display(),
                        mode & 0o777
                    ),
                ));
            }
        }
        Ok(())
    }

    fn read(&self, key: &str) -> std::io::Result<Option<Entry>> {
        let path = self.path(key, "token")?;
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        // One byte more than the largest entry: a larger file is not ours.
        std::io::Read::by_ref(&mut file).take((MAX_VALUE_BYTES + 32) as u64).read_to_end(&mut bytes)?;
        // `<version>\n<value>`; a file that is not is corrupt: version 0
        // with its bytes, so the caller treats it as absent and may
        // overwrite it.
        let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
            return Ok(Some(Entry { version: 0, value: bytes }));
        };
        let version = std::str::from_utf8(&bytes[..newline]).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Some(Entry { version, value: bytes[newline + 1..].to_vec() }))
    }

    fn write(&self, key: &str, version: u64, value: &[u8]) -> std::io::Result<()> {
        self.ensure_dir()?;
        let path = self.path(key, "token")?;
        let temp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(format!("{version}\n").as_bytes())?;
        file.write_all(value)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &path)?;
        // The rename itself is durable only once the directory is.
        File::open(&self.dir)?.sync_all()
    }

    /// Runs `work` holding the OS lock of `key`'s lock file.
    fn locked<T>(&self, key: &str, work: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
        self.ensure_dir()?;
        let lock = lock_file(&self.path(key, "lock")?)?;
        lock.lock()?;
        let result = work();
        lock.unlock()?;
        result
    }
}

fn lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[async_trait::async_trait]
impl TokenStore for FileStore {
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let key = key.to_owned();
        self.blocking("load", move |store| store.read(&key)).await
    }

    async fn save(&self, key: &str, value: &[u8]) -> Result<u64, StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.blocking("save", move |store| {
            store.locked(&key, || {
                let version = store.read(&key)?.map_or(0, |e| e.version) + 1;
                store.write(&key, version, &value)?;
                Ok(version)
            })
        })
        .await
    }

    async fn compare_and_swap(&self, key: &str, expected: u64, value: &[u8]) -> Result<bool, StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.blocking("compare and swap", move |store| {
            store.locked(&key, || {
                if store.read(&key)?.map_or(0, |e| e.version) != expected {
                    return Ok(false);
                }
                store.write(&key, expected + 1, &value)?;
                Ok(true)
            })
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.blocking("delete", move |store| {
            store.locked(&key, || match std::fs::remove_file(store.path(&key, "token")?) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })
        })
        .await
    }

    async fn try_lease(&self, key: &str, owner: &str, _ttl: Duration) -> Result<bool, StoreError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.blocking("take the lease", move |store| {
            let mut leases = store.leases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if leases.contains_key(&(key.clone(), owner.clone())) {
                return Ok(true);
            }
            store.ensure_dir()?;
            let file = lock_file(&store.path(&key, "lease")?)?;
            match file.try_lock() {
                Ok(()) => {
                    leases.insert((key, owner), file);
                    Ok(true)
                }
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            }
        })
        .await
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let file = self
            .leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(key.to_owned(), owner.to_owned()));
        // Closing the file releases the lock.
        drop(file);
        Ok(())
    }

    fn kind(&self) -> &'static str {
        KIND
    }
}
