//! [`FileStore`]: one file per key in a directory only its owner can use.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::contract::{Entry, StoreError, TokenStore};
use super::record::MAX_VALUE_BYTES;
use super::sweep::SweepClock;

/// Token sets as files: `<dir>/<key>.token`, one per key.
///
/// - The directory is created 0700 and files 0600 (on Unix). Before any
///   read or write the directory is checked: a real directory (not a
///   symbolic link), owned by this process's user, that nobody else can
///   read or enter; anything else is refused with an error naming it.
///   Files are opened without following symbolic links and must be
///   regular files of the same owner, so a link planted in the directory
///   cannot redirect a write or feed a read.
/// - Writes are atomic: a temporary file created exclusively (a leftover
///   one is removed, never reused), `fsync`, `rename` over the old one,
///   `fsync` of the directory. A reader sees the old value or the new one.
/// - Compare-and-swap holds an OS lock on `<key>.lock` while it reads and
///   writes, so two processes never both win.
/// - The lease is an OS lock (`flock`) on `<key>.lease`, held while a
///   refresh runs: two processes on one machine make one exchange, and a
///   process that dies releases it at once (the OS does), so the lease time
///   is not needed here.
/// - Entries expire with the `ttl` of their last write; at most once a
///   minute a write removes the expired files of the directory.
///
/// Blocking file I/O runs on Tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    /// The lease files this process holds locked, by key and owner.
    leases: Arc<Mutex<HashMap<(String, String), File>>>,
    /// When expired files were last removed.
    swept: SweepClock,
}

const KIND: &str = "file";
/// How often a write removes expired files.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn refused(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, what)
}

impl FileStore {
    /// A store in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), leases: Arc::default(), swept: SweepClock::default() }
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
        self.check_dir()
    }

    /// Refuses a directory that is a symbolic link, belongs to another
    /// user, or that others can use. `NotFound` when it does not exist.
    fn check_dir(&self) -> std::io::Result<()> {
        let metadata = std::fs::symlink_metadata(&self.dir)?;
        if metadata.file_type().is_symlink() || !metadata.is_dir() {
            return Err(refused(format!(
                "the token directory {} is not a directory (a symbolic link is not followed)",
                self.dir.display()
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let me = rustix::process::geteuid().as_raw();
            if metadata.uid() != me {
                return Err(refused(format!(
                    "the token directory {} belongs to user {}, not to this process's user {me}",
                    self.dir.display(),
                    metadata.uid()
                )));
            }
            if metadata.mode() & 0o077 != 0 {
                return Err(refused(format!(
                    "the token directory {} is open to other users (mode {:o}); make it 0700",
                    self.dir.display(),
                    metadata.mode() & 0o777
                )));
            }
        }
        Ok(())
    }

    fn read(&self, key: &str) -> std::io::Result<Option<Entry>> {
        match self.check_dir() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        }
        let path = self.path(key, "token")?;
        let mut file = match open_private(&path, OpenOptions::new().read(true)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        // One byte more than the largest entry: a larger file is not ours.
        std::io::Read::by_ref(&mut file).take((MAX_VALUE_BYTES + 64) as u64).read_to_end(&mut bytes)?;
        let Some((version, expires, value)) = parse(&bytes) else {
            // Not `<version> <expiry>\n<value>`: corrupt. Version 0 with
            // its bytes, so the caller treats it as absent and may
            // overwrite it.
            return Ok(Some(Entry { version: 0, value: bytes }));
        };
        if expires.is_some_and(|expires| expires <= now_millis()) {
            return Ok(None);
        }
        Ok(Some(Entry { version, value: value.to_vec() }))
    }

    fn write(&self, key: &str, version: u64, value: &[u8], ttl: Duration) -> std::io::Result<()> {
        self.ensure_dir()?;
        let path = self.path(key, "token")?;
        let temp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let mut file = create_exclusive(&temp)?;
        let expires = now_millis().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        file.write_all(format!("{version} {expires}\n").as_bytes())?;
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
        let lock = lock_path(&self.path(key, "lock")?, true)?.ok_or_else(unreachable_lock)?;
        let result = work();
        lock.unlock()?;
        result
    }

    /// Removes expired entries, at most once a minute per store (a write
    /// pays for it; no background task is needed).
    fn sweep(&self) {
        if !self.swept.due(SWEEP_EVERY) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".token")) else { continue };
            if let Err(error) = self.remove_if_expired(key) {
                tracing::debug!(store = KIND, %error, "could not remove an expired token file");
            }
        }
    }

    fn remove_if_expired(&self, key: &str) -> std::io::Result<()> {
        let path = self.path(key, "token")?;
        // Under the key's lock, without waiting: a busy key is in use.
        let Some(lock) = lock_path(&self.path(key, "lock")?, false)? else { return Ok(()) };
        let mut header = Vec::with_capacity(48);
        if let Ok(file) = open_private(&path, OpenOptions::new().read(true)) {
            file.take(48).read_to_end(&mut header)?;
        }
        let expired = match header.iter().position(|&b| b == b'\n') {
            Some(end) => parse(&header[..=end]).and_then(|(_, expires, _)| expires).is_some_and(|e| e <= now_millis()),
            None => false,
        };
        if expired {
            std::fs::remove_file(&path)?;
            // The lock file goes too, while locked: a process that opened
            // it before sees that its path moved on and opens it again.
            let _ = std::fs::remove_file(self.path(key, "lock")?);
        }
        lock.unlock()
    }
}

/// `<version>[ <expires ms>]\n<value>` (the version alone: an older file,
/// which does not expire).
fn parse(bytes: &[u8]) -> Option<(u64, Option<u64>, &[u8])> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    let mut fields = header.split(' ');
    let version = fields.next()?.parse().ok()?;
    let expires = match fields.next() {
        Some(expires) => Some(expires.parse().ok()?),
        None => None,
    };
    if fields.next().is_some() {
        return None;
    }
    Some((version, expires, &bytes[newline + 1..]))
}

fn unreachable_lock() -> std::io::Error {
    std::io::Error::other("a blocking lock returned without the lock")
}

/// Opens `path` without following a symbolic link and checks that it is a
/// regular file of this process's user.
fn open_private(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    let file = options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            refused(format!("{} is a symbolic link; it is not followed", path.display()))
        } else {
            e
        }
    })?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(refused(format!("{} is not a regular file", path.display())));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if metadata.uid() != rustix::process::geteuid().as_raw() {
            return Err(refused(format!("{} belongs to another user", path.display())));
        }
    }
    Ok(file)
}

/// Creates `path` exclusively (`O_EXCL | O_NOFOLLOW`, 0600). A leftover file
/// of that name (a crash mid-write) is removed and never written through.
fn create_exclusive(path: &Path) -> std::io::Result<File> {
    let create = || {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        }
        options.open(path)
    };
    match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            create()
        }
        other => other,
    }
}

/// Opens and locks `path` (created 0600 if missing), checking after the
/// lock that the path still names the locked file (a sweep may have
/// removed it meanwhile); `None` when `wait` is false and another holds it.
fn lock_path(path: &Path, wait: bool) -> std::io::Result<Option<File>> {
    loop {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = open_private(path, &mut options)?;
        if wait {
            file.lock()?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        if same_file(&file, path)? {
            return Ok(Some(file));
        }
    }
}

fn same_file(file: &File, path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let (held, named) = (
            file.metadata()?,
            match std::fs::symlink_metadata(path) {
                Ok(named) => named,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            },
        );
        Ok(held.dev() == named.dev() && held.ino() == named.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        Ok(true)
    }
}

#[async_trait::async_trait]
impl TokenStore for FileStore {
    async fn load(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let key = key.to_owned();
        self.blocking("load", move |store| store.read(&key)).await
    }

    async fn save(&self, key: &str, value: &[u8], ttl: Duration) -> Result<u64, StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.blocking("save", move |store| {
            let version = store.locked(&key, || {
                let version = store.read(&key)?.map_or(0, |e| e.version) + 1;
                store.write(&key, version, &value, ttl)?;
                Ok(version)
            })?;
            store.sweep();
            Ok(version)
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.blocking("compare and swap", move |store| {
            let written = store.locked(&key, || {
                if store.read(&key)?.map_or(0, |e| e.version) != expected {
                    return Ok(false);
                }
                store.write(&key, expected + 1, &value, ttl)?;
                Ok(true)
            })?;
            store.sweep();
            Ok(written)
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
            match lock_path(&store.path(&key, "lease")?, false)? {
                Some(file) => {
                    leases.insert((key, owner), file);
                    Ok(true)
                }
                None => Ok(false),
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
