//! Where the key that seals the token cache lives, in the order `gh auth`
//! users expect: `FILEVINE_STORE_KEY` when set (a server, CI); else the OS
//! keyring (Secret Service on Linux, Keychain on macOS, the Credential
//! Manager on Windows, through the `keyring` crate), so the key is not
//! kept beside the tokens it seals; else, without a keyring (a server, a
//! container, CI), `<config dir>/store.key`.
//!
//! Moving to the keyring keeps the user signed in: an existing `store.key`
//! is copied into the keyring, read back, and only then removed, so the
//! same key keeps opening the same cache. `FILEVINE_KEYRING=off` keeps the
//! key in the file.
//!
//! Only the key goes to the keyring; the tokens stay in the file store
//! (a keyring is slow to search and small).

use std::path::{Path, PathBuf};

use filevine_identity_ext::store::{StoreEncryptionKey, StoreEncryptionKeys};

use crate::error::CliError;

/// The keyring service name of the tool's entries.
const SERVICE: &str = "filevine-auth";
/// Turns the keyring off (`off`, `0`, `false`, `no`).
pub const KEYRING_VAR: &str = "FILEVINE_KEYRING";

/// Where the sealing key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `FILEVINE_STORE_KEY`.
    Environment,
    /// The OS keyring.
    Keyring,
    /// A file of its own, beside the cache: the keyring is off
    /// (`FILEVINE_KEYRING=off`) or there is none.
    File { path: PathBuf, keyring_off: bool },
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Environment => f.write_str("FILEVINE_STORE_KEY (the environment)"),
            Self::Keyring => f.write_str(KEYRING_NAME),
            Self::File { path, keyring_off: true } => write!(f, "{} ({KEYRING_VAR}=off)", path.display()),
            Self::File { path, keyring_off: false } => write!(f, "{} (no OS keyring here)", path.display()),
        }
    }
}

/// The platform's keyring, by name.
const KEYRING_NAME: &str = if cfg!(target_os = "macos") {
    "the OS keyring (Keychain)"
} else if cfg!(windows) {
    "the OS keyring (Credential Manager)"
} else {
    "the OS keyring (Secret Service)"
};

/// The keys that seal the cache of `dir`, and where they came from.
pub async fn load(dir: &Path) -> Result<(StoreEncryptionKeys, KeySource), CliError> {
    if let Ok(keys) = std::env::var(filevine_identity_ext::store::STORE_KEY)
        && !keys.trim().is_empty()
    {
        return Ok((StoreEncryptionKeys::parse(&keys)?, KeySource::Environment));
    }
    let off = std::env::var(KEYRING_VAR).is_ok_and(|v| matches!(v.trim(), "off" | "0" | "false" | "no"));
    if !off {
        let dir = dir.to_owned();
        // The keyring's calls block (D-Bus round trips): off the runtime.
        let found = tokio::task::spawn_blocking(move || from_keyring(&dir))
            .await
            .map_err(|e| CliError::Failed(format!("the keyring lookup stopped: {e}")))??;
        if let Some(key) = found {
            return Ok((key.into(), KeySource::Keyring));
        }
    }
    let path = dir.join("store.key");
    Ok((local_key(dir)?.into(), KeySource::File { path, keyring_off: off }))
}

/// The keyring entry of the cache in `dir`: one per configuration
/// directory, so two directories (two users' profiles, tests) never share
/// a key by accident.
fn entry(dir: &Path) -> keyring::Result<keyring::Entry> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    keyring::Entry::new(SERVICE, &format!("store-key:{}", dir.display()))
}

/// The key from the keyring, put there first when missing (moved from
/// `store.key`, or new). `None` when there is no usable keyring.
fn from_keyring(dir: &Path) -> Result<Option<StoreEncryptionKey>, CliError> {
    let unavailable = |error: keyring::Error| {
        tracing::debug!(%error, "no usable OS keyring; the store key stays in a file");
        Ok(None)
    };
    let entry = match entry(dir) {
        Ok(entry) => entry,
        Err(error) => return unavailable(error),
    };
    let file = dir.join("store.key");
    match entry.get_password() {
        Ok(text) => {
            let key = StoreEncryptionKey::new(text.trim()).map_err(|_| {
                CliError::Failed(format!(
                    "the store key in {KEYRING_NAME} is not a key (44 characters of base64); delete the keyring entry {SERVICE:?} to make a new one (you will sign in again)"
                ))
            })?;
            // A move that stopped between the copy and the removal.
            if read_key_file(&file).ok().flatten().as_ref() == Some(&key) {
                remove_key_file(&file);
            }
            Ok(Some(key))
        }
        Err(keyring::Error::NoEntry) => {
            let (key, moved) = match read_key_file(&file)? {
                Some(key) => (key, true),
                None => (StoreEncryptionKey::generate().map_err(|e| CliError::Failed(e.to_string()))?, false),
            };
            if let Err(error) = entry.set_password(key.expose_secret()) {
                return unavailable(error);
            }
            // Removed only once the keyring gives the same key back.
            match entry.get_password() {
                Ok(back) if StoreEncryptionKey::new(back.trim()).ok().as_ref() == Some(&key) => {}
                Ok(_) | Err(_) => {
                    tracing::warn!("the OS keyring did not give the store key back; keeping it in a file");
                    let _ = entry.delete_credential();
                    return Ok(None);
                }
            }
            if moved {
                remove_key_file(&file);
                tracing::info!("moved the store key from {} into {KEYRING_NAME}", file.display());
            }
            Ok(Some(key))
        }
        Err(error) => unavailable(error),
    }
}

fn remove_key_file(file: &Path) {
    if let Err(error) = std::fs::remove_file(file) {
        tracing::warn!(%error, "could not remove {} after moving the key into the keyring", file.display());
    }
}

/// The key that seals the cache when FILEVINE_STORE_KEY is not set:
/// `<config dir>/store.key` (0600), made on first use. Token sets and the
/// PAT are then never on disk in the clear, and a copy of the token
/// directory alone (a backup, a synced folder) opens nothing; someone who
/// can read both files can, as with any key kept beside its data.
fn local_key(dir: &std::path::Path) -> Result<StoreEncryptionKey, CliError> {
    let path = dir.join("store.key");
    if let Some(key) = read_key_file(&path)? {
        return Ok(key);
    }
    create_private_dir(dir)?;
    let key = StoreEncryptionKey::generate().map_err(|e| CliError::Failed(e.to_string()))?;
    // Written to a temporary file, then linked into place: two processes
    // starting at once agree on the first key, and nobody reads half a file.
    let temp = dir.join(format!(".store.key.{}.tmp", std::process::id()));
    write_private(&temp, key.expose_secret().as_bytes())
        .map_err(CliError::io(format!("writing {}", temp.display())))?;
    let linked = std::fs::hard_link(&temp, &path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(&path)?
            .ok_or_else(|| CliError::Failed(format!("{} vanished while it was being created", path.display()))),
        Err(e) => Err(CliError::io(format!("creating {}", path.display()))(e)),
    }
}

/// Reads `store.key` if it exists, trusting it only when it is a regular
/// file (not a symbolic link) of this user that nobody else can read or
/// write: a key someone else planted or can read protects nothing.
fn read_key_file(path: &std::path::Path) -> Result<Option<StoreEncryptionKey>, CliError> {
    use std::io::Read as _;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(CliError::Failed(format!(
                "{} is a symbolic link; the store key must be a file of its own (remove it to make a new one)",
                path.display()
            )));
        }
        Err(e) => return Err(CliError::io(format!("reading {}", path.display()))(e)),
    };
    let metadata = file.metadata().map_err(CliError::io(format!("reading {}", path.display())))?;
    if !metadata.is_file() {
        return Err(CliError::Failed(format!("{} is not a regular file", path.display())));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = rustix::process::geteuid().as_raw();
        if metadata.uid() != me {
            return Err(CliError::Failed(format!(
                "{} belongs to user {}, not to you (user {me}); it is not trusted",
                path.display(),
                metadata.uid()
            )));
        }
        if metadata.mode() & 0o077 != 0 {
            return Err(CliError::Failed(format!(
                "{} is open to other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                metadata.mode() & 0o777,
                path.display()
            )));
        }
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    // A key is 44 characters; a larger file is not one.
    (&mut file).take(256).read_to_string(&mut text).map_err(CliError::io(format!("reading {}", path.display())))?;
    Ok(Some(StoreEncryptionKey::new(text.trim())?))
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), CliError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(CliError::io(format!("creating {}", dir.display())))
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
