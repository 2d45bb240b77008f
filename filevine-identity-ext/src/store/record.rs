//! What a store holds: a token set as bytes, sealed with AES-256-GCM when
//! the application gave keys, or the mark of a deleted one.
//!
//! Layout (format 2): `FVTS`, a format byte (2), a mode byte, then
//! - mode 0 (plain): the JSON;
//! - mode 1 (sealed): the 8-byte id of the key that sealed it
//!   ([`StoreEncryptionKeys`]), a 12-byte nonce and the ciphertext with its
//!   tag. The header (key id included) and the store key are the
//!   associated data, so a sealed value moved to another key, or its
//!   header changed, does not open;
//! - mode 2 (deleted): nothing. A signed-out entry is replaced by this
//!   mark rather than removed, so its version keeps growing and a refresh
//!   that raced the sign-out fails its compare-and-swap and sees that the
//!   entry was deleted (it never writes a token set back).
//!
//! - mode 3 (sealed bytes): as mode 1, for a value that is not a token set
//!   (the command line tool's sign-in record); the mode byte is
//!   authenticated, so neither kind opens as the other.
//!
//! Format 1 (no key id) is still read: plain, or sealed with whichever of
//! the keys opens it.
//!
//! Anything that does not decode — truncated, corrupted, sealed with
//! another key, another format, plain text where a key is configured — is
//! treated as absent (the caller logs why, never the content).

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filevine_identity::SecretString;
use serde::{Deserialize, Serialize};

use super::encryption::{KEY_ID_LEN, StoreEncryptionKeys, key_id};
use super::key::StoreKey;
use crate::crypto::backend::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use crate::crypto::fill_random;
use crate::error::RandomnessUnavailable;
use crate::grant::{AccessToken, IdToken, RefreshToken, TokenSet};
use crate::jose::DpopKey;
use crate::secret::StoreEncryptionKey;
use crate::time::{Clock, SharedDeadline};

const MAGIC: &[u8; 4] = b"FVTS";
/// The format this SDK writes.
const FORMAT: u8 = 2;
/// The format before key ids (read only).
const FORMAT_1: u8 = 1;
const PLAIN: u8 = 0;
const SEALED: u8 = 1;
const DELETED: u8 = 2;
/// Sealed bytes that are not a token set (an application's own record).
const SEALED_BYTES: u8 = 3;
const HEADER_LEN: usize = 6;
/// What a deleted entry holds.
pub(crate) const TOMBSTONE: &[u8] = &[b'F', b'V', b'T', b'S', FORMAT, DELETED];
/// Largest value decoded: a token set is a few kilobytes at most.
pub(crate) const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A token set as the store keeps it, with wall-clock expiry.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoredTokens {
    pub(crate) access_token: Option<AccessToken>,
    pub(crate) refresh_token: Option<RefreshToken>,
    pub(crate) id_token: Option<IdToken>,
    /// The key DPoP-bound tokens of the set are bound to: it lives as long
    /// as they do, sealed with them.
    pub(crate) dpop_key: Option<DpopKey>,
    /// Which provider wrote the set, and when in its sequence: lets a
    /// provider tell its own write that landed late (a compare-and-swap
    /// whose outcome it never saw) from another process's.
    pub(crate) origin: Option<Origin>,
}

/// The writer of a stored token set: a provider's random lease owner id
/// (not a secret) and the number of the set in that provider's sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) writer: String,
    pub(crate) seq: u64,
}

/// Longest writer id read back (the SDK's are 22 characters).
const MAX_WRITER_LEN: usize = 64;

impl From<TokenSet> for StoredTokens {
    fn from(set: TokenSet) -> Self {
        let dpop_key = set.access_token.dpop_key().cloned();
        Self {
            access_token: Some(set.access_token),
            refresh_token: set.refresh_token,
            id_token: set.id_token,
            dpop_key,
            origin: None,
        }
    }
}

/// Why a stored value was not used. Names the cause, never the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    TooLarge,
    NotATokenSet,
    OtherFormat(u8),
    Sealed,
    Plain,
    WrongKey,
    Malformed,
    /// The mark of a deleted (signed-out) entry.
    Deleted,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge => f.write_str("it is larger than any token set"),
            Self::NotATokenSet => f.write_str("it is not a stored token set (truncated or foreign)"),
            Self::OtherFormat(format) => {
                write!(f, "it has format version {format}, this SDK reads {FORMAT_1} and {FORMAT}")
            }
            Self::Sealed => f.write_str("it is encrypted and no store key is configured"),
            Self::Plain => f.write_str("it is not encrypted but a store key is configured"),
            Self::WrongKey => f.write_str("it does not decrypt with any configured key (another key, or corrupted)"),
            Self::Malformed => f.write_str("its content is not a valid token set"),
            Self::Deleted => f.write_str("it was deleted (signed out)"),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// Seconds since the epoch, to the millisecond (rounded down: never
    /// later than the truth; whole seconds would cost a short-lived token
    /// up to a second of its life on every process that reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<f64>,
    /// Seconds the access token was issued for, to the millisecond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lifetime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<SecretString>,
    /// The DPoP key pair, PKCS#8 in base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_key: Option<SecretString>,
    /// The writing provider's id ([`Origin`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    writer: Option<String>,
    /// The set's number in its writer's sequence ([`Origin`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    /// The monotonic clock the writer read, by its origin (32 hex digits),
    /// when other processes read it too ([`TimeSource::monotonic_origin`](crate::time::TimeSource::monotonic_origin)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clock: Option<String>,
    /// The access token's deadline on that clock, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline: Option<u64>,
}

/// Encodes `tokens` for the store under `key`, sealed when `seal` is given.
///
/// # Errors
/// Only when sealing and the OS random number generator fails.
pub(crate) fn encode(
    tokens: &StoredTokens,
    key: &StoreKey,
    seal: Option<&StoreEncryptionKeys>,
) -> Result<Vec<u8>, RandomnessUnavailable> {
    let shared = tokens.access_token.as_ref().and_then(AccessToken::shared_deadline);
    let wire = Wire {
        access_token: tokens.access_token.as_ref().map(|t| SecretString::from(t.expose_secret())),
        token_type: tokens.access_token.as_ref().map(|t| t.token_type().to_owned()),
        scope: tokens.access_token.as_ref().and_then(|t| t.granted().map(str::to_owned)),
        expires_at: tokens
            .access_token
            .as_ref()
            .map(|t| millis(t.expiry().duration_since(UNIX_EPOCH).unwrap_or_default())),
        lifetime: tokens.access_token.as_ref().map(|t| millis(t.lifetime())),
        refresh_token: tokens.refresh_token.as_ref().map(|t| t.secret().clone()),
        id_token: tokens.id_token.as_ref().map(|t| t.secret().clone()),
        dpop_key: tokens.dpop_key.as_ref().map(|k| SecretString::from(URL_SAFE_NO_PAD.encode(k.pkcs8()))),
        writer: tokens.origin.as_ref().map(|origin| origin.writer.clone()),
        seq: tokens.origin.as_ref().map(|origin| origin.seq),
        clock: shared.map(|shared| format!("{:032x}", shared.origin)),
        deadline: shared.map(|shared| shared.monotonic),
    };
    let json = zeroize::Zeroizing::new(serde_json::to_vec(&wire).unwrap_or_else(|_| unreachable!("plain fields")));
    match seal {
        None => {
            let mut out = Vec::with_capacity(HEADER_LEN + json.len());
            out.extend_from_slice(MAGIC);
            out.push(FORMAT);
            out.push(PLAIN);
            out.extend_from_slice(&json);
            Ok(out)
        }
        Some(keys) => sealed(SEALED, &json, key, keys),
    }
}

/// `FVTS`, the format, `mode`, the sealing key's id, a fresh nonce and
/// `plain` sealed under the header and `key`.
fn sealed(
    mode: u8,
    plain: &[u8],
    key: &StoreKey,
    keys: &StoreEncryptionKeys,
) -> Result<Vec<u8>, RandomnessUnavailable> {
    let seal = keys.current();
    let mut out = Vec::with_capacity(HEADER_LEN + KEY_ID_LEN + NONCE_LEN + plain.len() + 16);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.push(mode);
    out.extend_from_slice(&key_id(seal));
    let mut nonce = [0u8; NONCE_LEN];
    // A nonce must never repeat under one key; 96 random bits make a
    // repeat negligible for far more writes than a store sees.
    fill_random(&mut nonce)?;
    let aad = associated_data(&out, key);
    let mut body = zeroize::Zeroizing::new(plain.to_vec());
    cipher(seal)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut *body)
        .unwrap_or_else(|_| unreachable!("AES-GCM seals any length a record has"));
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Seals `json` as if it were a token set's JSON (the fuzzer reaches the
/// parser behind the decryption with it).
#[cfg(fuzzing)]
pub(crate) fn seal_as_token_set(
    json: &[u8],
    key: &StoreKey,
    keys: &StoreEncryptionKeys,
) -> Result<Vec<u8>, RandomnessUnavailable> {
    sealed(SEALED, json, key, keys)
}

/// Whether `value` is a token set stored in the clear (its secrets
/// readable by whoever reads the store, its logs or its traffic).
#[cfg(feature = "postgres")]
pub(crate) fn is_unsealed_token_set(value: &[u8]) -> bool {
    value.len() > HEADER_LEN && &value[..4] == MAGIC && value[5] == PLAIN
}

/// Seals `plain` (any bytes) for the store under `key` with the sealing key.
pub(crate) fn seal_bytes(
    plain: &[u8],
    key: &StoreKey,
    keys: &StoreEncryptionKeys,
) -> Result<Vec<u8>, RandomnessUnavailable> {
    sealed(SEALED_BYTES, plain, key, keys)
}

/// Opens what [`seal_bytes`] sealed under `key` with one of `keys`.
pub(crate) fn open_bytes(
    value: &[u8],
    key: &StoreKey,
    keys: &StoreEncryptionKeys,
) -> Result<zeroize::Zeroizing<Vec<u8>>, Unreadable> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Unreadable::TooLarge);
    }
    if value.len() < HEADER_LEN + KEY_ID_LEN + NONCE_LEN || &value[..4] != MAGIC || value[5] != SEALED_BYTES {
        return Err(Unreadable::NotATokenSet);
    }
    if value[4] != FORMAT {
        return Err(Unreadable::OtherFormat(value[4]));
    }
    let seal = keys.by_id(&value[HEADER_LEN..HEADER_LEN + KEY_ID_LEN]).ok_or(Unreadable::WrongKey)?;
    open(&value[..HEADER_LEN + KEY_ID_LEN], &value[HEADER_LEN + KEY_ID_LEN..], key, seal)
}

/// Decodes a stored value, its access token's expiry on the system clock;
/// see [`Unreadable`] for what is refused.
pub(crate) fn decode(
    value: &[u8],
    key: &StoreKey,
    seal: Option<&StoreEncryptionKeys>,
) -> Result<StoredTokens, Unreadable> {
    decode_at(value, key, seal, &Clock::System)
}

/// [`decode`] with the access token's expiry on `clock` (a provider's).
pub(crate) fn decode_at(
    value: &[u8],
    key: &StoreKey,
    seal: Option<&StoreEncryptionKeys>,
    clock: &Clock,
) -> Result<StoredTokens, Unreadable> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Unreadable::TooLarge);
    }
    if value.len() < HEADER_LEN || &value[..4] != MAGIC {
        return Err(Unreadable::NotATokenSet);
    }
    let format = value[4];
    if format != FORMAT && format != FORMAT_1 {
        return Err(Unreadable::OtherFormat(format));
    }
    let json = match (value[5], seal) {
        (DELETED, _) if format == FORMAT => {
            return Err(if value.len() == HEADER_LEN { Unreadable::Deleted } else { Unreadable::NotATokenSet });
        }
        (PLAIN, None) => zeroize::Zeroizing::new(value[HEADER_LEN..].to_vec()),
        (PLAIN, Some(_)) => return Err(Unreadable::Plain),
        (SEALED, None) => return Err(Unreadable::Sealed),
        (SEALED, Some(keys)) if format == FORMAT => {
            let rest = &value[HEADER_LEN..];
            if rest.len() < KEY_ID_LEN + NONCE_LEN {
                return Err(Unreadable::NotATokenSet);
            }
            // A key id that names none of the keys: sealed with a key this
            // process does not have.
            let seal = keys.by_id(&rest[..KEY_ID_LEN]).ok_or(Unreadable::WrongKey)?;
            open(&value[..HEADER_LEN + KEY_ID_LEN], &rest[KEY_ID_LEN..], key, seal)?
        }
        (SEALED, Some(keys)) => {
            // Format 1 names no key: the first that opens it.
            let header = &value[..HEADER_LEN];
            let body = &value[HEADER_LEN..];
            if body.len() < NONCE_LEN {
                return Err(Unreadable::NotATokenSet);
            }
            keys.iter().find_map(|seal| open(header, body, key, seal).ok()).ok_or(Unreadable::WrongKey)?
        }
        _ => return Err(Unreadable::NotATokenSet),
    };
    // serde_json's error text can quote the input: only its category is kept.
    let wire: Wire = serde_json::from_slice(&json).map_err(|_| Unreadable::Malformed)?;
    tokens(wire, clock).ok_or(Unreadable::Malformed)
}

/// Opens `nonce ‖ ciphertext` sealed under `header` and `key`.
fn open(
    header: &[u8],
    body: &[u8],
    key: &StoreKey,
    seal: &StoreEncryptionKey,
) -> Result<zeroize::Zeroizing<Vec<u8>>, Unreadable> {
    let (nonce, body) = body.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unreadable::NotATokenSet)?;
    let aad = associated_data(header, key);
    let mut body = zeroize::Zeroizing::new(body.to_vec());
    let plain = cipher(seal).open_in_place(nonce, Aad::from(&aad), &mut body).map_err(|_| Unreadable::WrongKey)?;
    Ok(zeroize::Zeroizing::new(plain.to_vec()))
}

fn tokens(wire: Wire, clock: &Clock) -> Option<StoredTokens> {
    // A key that does not load makes the set unusable: its tokens are bound
    // to it.
    let dpop_key = match &wire.dpop_key {
        None => None,
        Some(encoded) => {
            let pkcs8 = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.decode(encoded.expose_secret()).ok()?);
            Some(DpopKey::from_pkcs8(&pkcs8)?)
        }
    };
    let access_token = match (wire.access_token, wire.expires_at, wire.lifetime) {
        (Some(secret), Some(expires_at), Some(lifetime)) => {
            let token_type = wire.token_type.as_deref().unwrap_or("Bearer");
            let (expiry, lifetime) = (duration(expires_at)?, duration(lifetime)?);
            let shared = match (wire.clock.as_deref(), wire.deadline) {
                (Some(origin), Some(monotonic)) => Some(SharedDeadline { origin: origin_of(origin)?, monotonic }),
                (None, None) => None,
                _ => return None,
            };
            // An expired token is simply not there any more.
            AccessToken::restore(secret, token_type, wire.scope, clock, expiry, lifetime, dpop_key.as_ref(), shared)
                .ok()?
        }
        (None, None, None) => None,
        _ => return None,
    };
    let refresh_token = match wire.refresh_token {
        Some(secret) if secret.expose_secret().trim().is_empty() => return None,
        other => other.map(RefreshToken::from_secret),
    };
    let origin = match (wire.writer, wire.seq) {
        (Some(writer), Some(seq)) if !writer.is_empty() && writer.len() <= MAX_WRITER_LEN => {
            Some(Origin { writer, seq })
        }
        (None, None) => None,
        _ => return None,
    };
    Some(StoredTokens {
        access_token,
        refresh_token,
        id_token: wire.id_token.map(IdToken::from_secret),
        dpop_key,
        origin,
    })
}

/// A clock's origin as written: exactly 32 lowercase hex digits.
fn origin_of(text: &str) -> Option<u128> {
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

/// Seconds with a millisecond fraction, rounded down.
fn millis(duration: Duration) -> f64 {
    (duration.as_millis() as f64) / 1000.0
}

/// A stored number of seconds: finite, not negative, not absurd.
fn duration(seconds: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(seconds).ok().filter(|d| d.as_secs() < u64::from(u32::MAX) * 4)
}

fn associated_data(header: &[u8], key: &StoreKey) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 64);
    aad.extend_from_slice(header);
    aad.extend_from_slice(key.as_str().as_bytes());
    aad
}

fn cipher(seal: &StoreEncryptionKey) -> LessSafeKey {
    let bytes = seal.bytes();
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &*bytes).unwrap_or_else(|_| unreachable!("a 32-byte key")))
}

#[cfg(test)]
mod tests;
