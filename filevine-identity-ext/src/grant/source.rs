//! Credentials that change while a process runs: a PAT or a client secret
//! rotated by hand, mounted as a file by a secret manager or Kubernetes, or
//! fetched by the application's own code.
//!
//! A provider with a source asks it for the credentials on every refresh
//! (never on the hot path: a cached token is served without it), and once
//! more when the identity provider refuses them (`invalid_client`, or a
//! PAT's `invalid_grant`): when the answer differs, the request is retried
//! exactly once with the new value. During a client secret changeover a
//! source may give two, newer first; the older is tried once when the newer
//! is refused.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::config::env::{CLIENT_ID, CLIENT_SECRET_FILE, Lookup, PAT_FILE};
use crate::error::ConfigError;
use crate::grant::{ClientId, ClientSecret, Credentials, PersonalAccessToken};

/// Largest credentials file read (a PAT or two secrets are far smaller).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Where a provider gets its credentials on each refresh (never on the hot
/// path: a cached token is served without asking). When the identity
/// provider refuses them (`invalid_client`, a PAT's `invalid_grant`), the
/// source is asked once more; if the answer differs, or a changeover gave
/// two values (newer first), the request is retried exactly once.
/// Implement it for a secret manager; files are [`FileCredentials`].
/// Set with [`TokenProviderBuilder::credential_source`](crate::provider::TokenProviderBuilder::credential_source).
///
/// ```
/// use filevine_identity_ext::grant::{CredentialSource, Credentials};
/// use filevine_identity_ext::{ConfigError, PersonalAccessToken};
///
/// #[derive(Debug)]
/// struct Vault;
///
/// #[async_trait::async_trait]
/// impl CredentialSource for Vault {
///     fn grant_type(&self) -> &'static str {
///         "personal_access_token"
///     }
///     fn name(&self) -> String {
///         "vault:filevine/pat".into()
///     }
///     async fn credentials(&self) -> Result<Vec<Credentials>, ConfigError> {
///         // Ask the secret manager here.
///         Ok(vec![Credentials::personal_access_token(PersonalAccessToken::new("fvpat_…")?)])
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The `grant_type` every credential of this source uses
    /// (`personal_access_token` or `client_credentials`).
    fn grant_type(&self) -> &'static str;

    /// A stable, non-secret name for the source (a file path, a secret
    /// manager's key): it names the provider's token store entry.
    fn name(&self) -> String;

    /// The credentials to use now, newer first (a second one only during a
    /// client secret changeover). Called on each refresh.
    ///
    /// # Errors
    /// A [`ConfigError`] naming what could not be read (never its content).
    async fn credentials(&self) -> Result<Vec<Credentials>, ConfigError>;

    /// The identity provider refused what [`credentials`](Self::credentials)
    /// gave last: a source that caches what it read drops that, so the
    /// next call reads again (the provider calls it before asking once
    /// more). Does nothing by default.
    fn refused(&self) {}
}

/// Credentials read from files, re-read when a file changes (its size or
/// modification time, checked on each refresh): `FILEVINE_PAT_FILE` and
/// `FILEVINE_CLIENT_SECRET_FILE`, as secret managers and Kubernetes mount
/// them.
///
/// The PAT file holds the PAT; the client secret file holds the secret, or
/// two lines during a changeover (the newer first). Surrounding whitespace
/// is ignored.
///
/// ```
/// use filevine_identity_ext::grant::FileCredentials;
/// use filevine_identity_ext::ClientId;
///
/// let source = FileCredentials::personal_access_token("/run/secrets/filevine-pat");
/// let machine = FileCredentials::client_credentials(ClientId::new("reporting")?, "/run/secrets/client-secret");
/// # Ok::<(), filevine_identity_ext::ConfigError>(())
/// ```
pub struct FileCredentials {
    pat_file: Option<PathBuf>,
    client: Option<(ClientId, PathBuf)>,
    /// The files' stamps when last read, and what they gave.
    cached: Mutex<Option<(Vec<FileStamp>, Vec<Credentials>)>>,
    /// The environment variable that named each file, when one did: its
    /// errors name it.
    named_by: Vec<(PathBuf, &'static str)>,
}

/// What tells a file changed: its size, its modification time, and on Unix
/// its device, inode and status-change time. A rotation can keep the size
/// and the modification time (`cp -p`, `rsync -t`, a PAT of the same
/// length), not the status-change time, which the kernel sets on every
/// write; a secret swapped in by a rename (Kubernetes) is another inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// `(device, inode, ctime seconds, ctime nanoseconds)`.
    #[cfg(unix)]
    identity: (u64, u64, i64, i64),
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            identity: (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl fmt::Debug for FileCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCredentials")
            .field("pat_file", &self.pat_file)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl FileCredentials {
    /// A PAT read from `path`.
    pub fn personal_access_token(path: impl Into<PathBuf>) -> Self {
        Self { pat_file: Some(path.into()), client: None, cached: Mutex::default(), named_by: Vec::new() }
    }

    /// The client credentials grant with the secret read from `path`.
    pub fn client_credentials(id: ClientId, secret_file: impl Into<PathBuf>) -> Self {
        Self { pat_file: None, client: Some((id, secret_file.into())), cached: Mutex::default(), named_by: Vec::new() }
    }

    /// Sends a client id and the secret read from `secret_file` with the PAT.
    #[must_use]
    pub fn with_client(mut self, id: ClientId, secret_file: impl Into<PathBuf>) -> Self {
        self.client = Some((id, secret_file.into()));
        self
    }

    fn files(&self) -> impl Iterator<Item = &Path> {
        self.pat_file.iter().map(PathBuf::as_path).chain(self.client.iter().map(|(_, path)| path.as_path()))
    }

    fn read(&self) -> Result<Vec<Credentials>, ConfigError> {
        let secrets = match &self.client {
            Some((id, path)) => {
                Some((id, parse_secrets(&self.read_file(path)?).map_err(|reason| self.error(path, reason))?))
            }
            None => None,
        };
        match (&self.pat_file, secrets) {
            (Some(path), secrets) => {
                let pat = parse_pat(&self.read_file(path)?).map_err(|reason| self.error(path, reason))?;
                let pat = Credentials::personal_access_token(pat);
                Ok(match secrets {
                    Some((id, secrets)) => {
                        secrets.into_iter().map(|secret| pat.clone().with_client(id.clone(), secret)).collect()
                    }
                    None => vec![pat],
                })
            }
            (None, Some((id, secrets))) => {
                Ok(secrets.into_iter().map(|secret| Credentials::client_credentials(id.clone(), secret)).collect())
            }
            (None, None) => Err(ConfigError::MissingVar { name: PAT_FILE, hint: "" }),
        }
    }
}

/// A client secret file's content: the secret, or two lines during a
/// changeover (newer first). The error names the problem, never the text.
pub(crate) fn parse_secrets(text: &str) -> Result<Vec<ClientSecret>, &'static str> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() || lines.len() > 2 {
        return Err("it must hold the client secret, or two lines (newer first)");
    }
    lines.into_iter().map(|line| ClientSecret::new(line).map_err(|_| "it is not a client secret")).collect()
}

/// A PAT file's content, surrounding whitespace ignored.
pub(crate) fn parse_pat(text: &str) -> Result<PersonalAccessToken, &'static str> {
    PersonalAccessToken::new(text.trim()).map_err(|_| "it is empty")
}

/// What an I/O failure on a credentials file means, in a person's words.
fn io_reason(kind: std::io::ErrorKind) -> String {
    match kind {
        std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
        std::io::ErrorKind::PermissionDenied => "it cannot be read (permission denied)".to_owned(),
        other => format!("it cannot be read ({other})"),
    }
}

impl FileCredentials {
    /// An error about `path`, naming the variable that named it.
    fn error(&self, path: &Path, reason: &str) -> ConfigError {
        let reason = match self.named_by.iter().find(|(named, _)| named == path) {
            Some((_, variable)) => format!("{reason} (the file {variable} names)"),
            None => reason.to_owned(),
        };
        ConfigError::CredentialsFile { path: path.to_owned(), reason }
    }

    /// Reads a credentials file, bounded in size.
    fn read_file(&self, path: &Path) -> Result<zeroize::Zeroizing<String>, ConfigError> {
        use std::io::Read as _;
        let file = std::fs::File::open(path).map_err(|e| self.error(path, &io_reason(e.kind())))?;
        let mut text = zeroize::Zeroizing::new(String::new());
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| self.error(path, &format!("it could not be read as UTF-8 text ({})", e.kind())))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(self.error(path, "it is larger than 64 KiB"));
        }
        Ok(text)
    }
}

#[async_trait::async_trait]
impl CredentialSource for FileCredentials {
    fn grant_type(&self) -> &'static str {
        if self.pat_file.is_some() { "personal_access_token" } else { "client_credentials" }
    }

    fn name(&self) -> String {
        let files: Vec<String> = self.files().map(|p| p.display().to_string()).collect();
        format!("file:{}", files.join(","))
    }

    /// Stats the files; reads them again only when one changed.
    async fn credentials(&self) -> Result<Vec<Credentials>, ConfigError> {
        let stamps: Vec<FileStamp> = self
            .files()
            .map(|path| {
                let meta = std::fs::metadata(path).map_err(|e| self.error(path, &io_reason(e.kind())))?;
                Ok(FileStamp::of(&meta))
            })
            .collect::<Result<_, ConfigError>>()?;
        let mut cached = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, credentials)) = cached.as_ref()
            && *seen == stamps
        {
            return Ok(credentials.clone());
        }
        let credentials = self.read()?;
        tracing::debug!(source = %self.name(), "read the credentials files");
        *cached = Some((stamps, credentials.clone()));
        Ok(credentials)
    }

    /// Forgets what was read: the next call reads the files whatever their
    /// stamps say.
    fn refused(&self) {
        *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// `FILEVINE_PAT_FILE` / `FILEVINE_CLIENT_SECRET_FILE` (with
/// `FILEVINE_CLIENT_ID`) as a [`FileCredentials`]; `None` when neither is set.
pub(crate) fn from_lookup(lookup: Lookup<'_>) -> Result<Option<FileCredentials>, ConfigError> {
    let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let client = match var(CLIENT_SECRET_FILE) {
        Some(path) => {
            let id = var(CLIENT_ID).ok_or(ConfigError::MissingVar {
                name: CLIENT_ID,
                hint: " (it is needed because FILEVINE_CLIENT_SECRET_FILE is set)",
            })?;
            let id =
                ClientId::new(id).map_err(|e| ConfigError::MalformedVar { name: CLIENT_ID, reason: e.to_string() })?;
            Some((id, PathBuf::from(path)))
        }
        None => None,
    };
    let pat_file = var(PAT_FILE).map(PathBuf::from);
    if pat_file.is_none() && client.is_none() {
        return Ok(None);
    }
    let mut named_by = Vec::new();
    if let Some(path) = &pat_file {
        named_by.push((path.clone(), PAT_FILE));
    }
    if let Some((_, path)) = &client {
        named_by.push((path.clone(), CLIENT_SECRET_FILE));
    }
    Ok(Some(FileCredentials { pat_file, client, cached: Mutex::default(), named_by }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rotation that keeps the size and the modification time (`cp -p`,
    /// `rsync -t`, a PAT of the same length) is still seen; so is a secret
    /// swapped in by a rename. After a refusal the files are read again
    /// whatever their stamps.
    #[tokio::test]
    async fn a_rotation_keeping_size_and_mtime_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let pat = dir.path().join("pat");
        std::fs::write(&pat, "fvpat_aaaa").unwrap();
        let mtime = std::fs::metadata(&pat).unwrap().modified().unwrap();
        let source = FileCredentials::personal_access_token(&pat);
        assert_eq!(source.credentials().await.unwrap()[0].secrets(), ["fvpat_aaaa"]);
        // ctime has a tick's resolution: a write in the same tick would keep it.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&pat, "fvpat_bbbb").unwrap();
        std::fs::File::options().write(true).open(&pat).unwrap().set_modified(mtime).unwrap();
        assert_eq!(std::fs::metadata(&pat).unwrap().modified().unwrap(), mtime, "size and mtime as before");
        assert_eq!(source.credentials().await.unwrap()[0].secrets(), ["fvpat_bbbb"]);
        // Swapped in by a rename, size and mtime kept.
        let next = dir.path().join("pat.next");
        std::fs::write(&next, "fvpat_cccc").unwrap();
        std::fs::File::options().write(true).open(&next).unwrap().set_modified(mtime).unwrap();
        std::fs::rename(&next, &pat).unwrap();
        assert_eq!(source.credentials().await.unwrap()[0].secrets(), ["fvpat_cccc"]);
        // After a refusal, read again (nothing cached).
        source.refused();
        assert!(source.cached.lock().unwrap().is_none());
        assert_eq!(source.credentials().await.unwrap()[0].secrets(), ["fvpat_cccc"]);
    }

    #[tokio::test]
    async fn files_are_read_and_reread_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let (pat, secret) = (dir.path().join("pat"), dir.path().join("secret"));
        std::fs::write(&pat, "  fvpat_one\n").unwrap();
        std::fs::write(&secret, "new-secret\nold-secret\n").unwrap();
        let source = FileCredentials::personal_access_token(&pat).with_client(ClientId::new("app").unwrap(), &secret);
        let first = source.credentials().await.unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].secrets(), ["fvpat_one", "new-secret"]);
        assert_eq!(first[1].secrets(), ["fvpat_one", "old-secret"]);
        std::fs::write(&pat, "fvpat_two_longer").unwrap();
        assert_eq!(source.credentials().await.unwrap()[0].secrets()[0], "fvpat_two_longer");
        assert_eq!(source.grant_type(), "personal_access_token");
        assert!(source.name().contains("pat") && !format!("{source:?}").contains("fvpat"));
    }

    #[tokio::test]
    async fn bad_files_name_the_file_and_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = FileCredentials::personal_access_token(&missing).credentials().await.unwrap_err();
        assert!(error.to_string().contains("missing") && error.to_string().contains("does not exist"), "{error}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let error = FileCredentials::personal_access_token(&empty).credentials().await.unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
        let three = dir.path().join("three");
        std::fs::write(&three, "SENTINEL-a\nSENTINEL-b\nSENTINEL-c\n").unwrap();
        let error =
            FileCredentials::client_credentials(ClientId::new("app").unwrap(), &three).credentials().await.unwrap_err();
        assert!(error.to_string().contains("two lines") && !error.to_string().contains("SENTINEL"), "{error}");
        let big = dir.path().join("big");
        std::fs::write(&big, "x".repeat(70_000)).unwrap();
        let error = FileCredentials::personal_access_token(&big).credentials().await.unwrap_err();
        assert!(error.to_string().contains("64 KiB"), "{error}");
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let error = FileCredentials::personal_access_token(&binary).credentials().await.unwrap_err();
        assert!(error.to_string().contains("UTF-8"), "{error}");
    }
}
