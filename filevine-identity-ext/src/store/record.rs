//! What a store holds: a token set as bytes, sealed with AES-256-GCM when
//! the application gave a key.
//!
//! Layout: `FVTS`, a format byte (1), a mode byte (0 plain JSON, 1 sealed),
//! then the JSON, or a 12-byte nonce and the ciphertext with its tag. The
//! header and the store key are the associated data, so a sealed value
//! moved to another key, or its mode byte flipped, does not open.
//!
//! Anything that does not decode — truncated, corrupted, sealed with another
//! key, another format, plain text where a key is configured — is treated as
//! absent (the caller logs why, never the content).

use std::time::{Duration, UNIX_EPOCH};

use filevine_identity::SecretString;
use serde::{Deserialize, Serialize};

use super::key::StoreKey;
use crate::crypto::backend::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use crate::crypto::fill_random;
use crate::error::RandomnessUnavailable;
use crate::grant::{AccessToken, IdToken, RefreshToken, TokenSet};
use crate::secret::StoreEncryptionKey;

const MAGIC: &[u8; 4] = b"FVTS";
const FORMAT: u8 = 1;
const PLAIN: u8 = 0;
const SEALED: u8 = 1;
const HEADER_LEN: usize = 6;
/// Largest value decoded: a token set is a few kilobytes at most.
pub(crate) const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A token set as the store keeps it, with wall-clock expiry.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoredTokens {
    pub(crate) access_token: Option<AccessToken>,
    pub(crate) refresh_token: Option<RefreshToken>,
    pub(crate) id_token: Option<IdToken>,
}

impl From<TokenSet> for StoredTokens {
    fn from(set: TokenSet) -> Self {
        Self { access_token: Some(set.access_token), refresh_token: set.refresh_token, id_token: set.id_token }
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
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge => f.write_str("it is larger than any token set"),
            Self::NotATokenSet => f.write_str("it is not a stored token set (truncated or foreign)"),
            Self::OtherFormat(format) => write!(f, "it has format version {format}, this SDK reads {FORMAT}"),
            Self::Sealed => f.write_str("it is encrypted and no store key is configured"),
            Self::Plain => f.write_str("it is not encrypted but a store key is configured"),
            Self::WrongKey => f.write_str("it does not decrypt with the configured key (another key, or corrupted)"),
            Self::Malformed => f.write_str("its content is not a valid token set"),
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
}

/// Encodes `tokens` for the store under `key`, sealed when `seal` is given.
///
/// # Errors
/// Only when sealing and the OS random number generator fails.
pub(crate) fn encode(
    tokens: &StoredTokens,
    key: &StoreKey,
    seal: Option<&StoreEncryptionKey>,
) -> Result<Vec<u8>, RandomnessUnavailable> {
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
    };
    let json = zeroize::Zeroizing::new(serde_json::to_vec(&wire).unwrap_or_else(|_| unreachable!("plain fields")));
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + json.len() + 16);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    match seal {
        None => {
            out.push(PLAIN);
            out.extend_from_slice(&json);
        }
        Some(seal) => {
            out.push(SEALED);
            let mut nonce = [0u8; NONCE_LEN];
            // A nonce must never repeat under one key; 96 random bits make
            // a repeat negligible for far more writes than a store sees.
            fill_random(&mut nonce)?;
            let aad = associated_data(&out[..HEADER_LEN], key);
            let mut body = zeroize::Zeroizing::new(json.to_vec());
            cipher(seal)
                .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut *body)
                .unwrap_or_else(|_| unreachable!("AES-GCM seals any length a token set has"));
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&body);
        }
    }
    Ok(out)
}

/// Decodes a stored value; see [`Unreadable`] for what is refused.
pub(crate) fn decode(
    value: &[u8],
    key: &StoreKey,
    seal: Option<&StoreEncryptionKey>,
) -> Result<StoredTokens, Unreadable> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Unreadable::TooLarge);
    }
    if value.len() < HEADER_LEN || &value[..4] != MAGIC {
        return Err(Unreadable::NotATokenSet);
    }
    if value[4] != FORMAT {
        return Err(Unreadable::OtherFormat(value[4]));
    }
    let json = match (value[5], seal) {
        (PLAIN, None) => zeroize::Zeroizing::new(value[HEADER_LEN..].to_vec()),
        (PLAIN, Some(_)) => return Err(Unreadable::Plain),
        (SEALED, None) => return Err(Unreadable::Sealed),
        (SEALED, Some(seal)) => {
            let rest = &value[HEADER_LEN..];
            if rest.len() < NONCE_LEN {
                return Err(Unreadable::NotATokenSet);
            }
            let (nonce, body) = rest.split_at(NONCE_LEN);
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unreadable::NotATokenSet)?;
            let aad = associated_data(&value[..HEADER_LEN], key);
            let mut body = zeroize::Zeroizing::new(body.to_vec());
            let plain =
                cipher(seal).open_in_place(nonce, Aad::from(&aad), &mut body).map_err(|_| Unreadable::WrongKey)?;
            zeroize::Zeroizing::new(plain.to_vec())
        }
        _ => return Err(Unreadable::NotATokenSet),
    };
    // serde_json's error text can quote the input: only its category is kept.
    let wire: Wire = serde_json::from_slice(&json).map_err(|_| Unreadable::Malformed)?;
    tokens(wire).ok_or(Unreadable::Malformed)
}

fn tokens(wire: Wire) -> Option<StoredTokens> {
    let access_token = match (wire.access_token, wire.expires_at, wire.lifetime) {
        (Some(secret), Some(expires_at), Some(lifetime)) => {
            let expiry = UNIX_EPOCH.checked_add(duration(expires_at)?)?;
            let token_type = wire.token_type.as_deref().unwrap_or("Bearer");
            // An expired token is simply not there any more.
            AccessToken::restore(secret, token_type, wire.scope, expiry, duration(lifetime)?).ok()?
        }
        (None, None, None) => None,
        _ => return None,
    };
    let refresh_token = match wire.refresh_token {
        Some(secret) if secret.expose_secret().trim().is_empty() => return None,
        other => other.map(RefreshToken::from_secret),
    };
    Some(StoredTokens { access_token, refresh_token, id_token: wire.id_token.map(IdToken::from_secret) })
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
mod tests {
    use super::*;
    use std::time::Instant;

    fn set() -> StoredTokens {
        let access = AccessToken::new(
            SecretString::from("SENTINEL-access"),
            "Bearer",
            Some("openid email".into()),
            Instant::now(),
            Duration::from_secs(1200),
        )
        .unwrap();
        StoredTokens {
            access_token: Some(access),
            refresh_token: Some(RefreshToken::new("SENTINEL-refresh").unwrap()),
            id_token: Some(IdToken::new("SENTINEL-id")),
        }
    }

    fn key() -> StoreKey {
        StoreKey::session("s")
    }

    #[test]
    fn plain_and_sealed_round_trip() {
        let seal = StoreEncryptionKey::generate().unwrap();
        for seal in [None, Some(&seal)] {
            let bytes = encode(&set(), &key(), seal).unwrap();
            let back = decode(&bytes, &key(), seal).unwrap();
            let access = back.access_token.unwrap();
            assert_eq!(access.expose_secret(), "SENTINEL-access");
            assert_eq!(access.granted(), Some("openid email"));
            assert!(access.lifetime() <= Duration::from_secs(1200));
            assert!(access.lifetime() > Duration::from_millis(1_199_990));
            // Milliseconds, rounded down.
            assert!(access.expires_in() <= Duration::from_secs(1200));
            assert!(access.expires_in() > Duration::from_millis(1_199_000));
            assert_eq!(back.refresh_token.unwrap().expose_secret(), "SENTINEL-refresh");
            assert_eq!(back.id_token.unwrap().expose_secret(), "SENTINEL-id");
        }
    }

    #[test]
    fn sealed_values_contain_no_token_text() {
        let seal = StoreEncryptionKey::generate().unwrap();
        let bytes = encode(&set(), &key(), Some(&seal)).unwrap();
        assert!(!bytes.windows(8).any(|w| w == b"SENTINEL"));
        // Two writes of the same set differ (fresh nonce).
        assert_ne!(bytes, encode(&set(), &key(), Some(&seal)).unwrap());
    }

    #[test]
    fn bad_values_are_refused_with_their_cause() {
        let seal = StoreEncryptionKey::generate().unwrap();
        let other = StoreEncryptionKey::generate().unwrap();
        let sealed = encode(&set(), &key(), Some(&seal)).unwrap();
        let plain = encode(&set(), &key(), None).unwrap();
        let cases: Vec<(Vec<u8>, Option<&StoreEncryptionKey>, Unreadable)> = vec![
            (sealed.clone(), Some(&other), Unreadable::WrongKey),
            (sealed.clone(), None, Unreadable::Sealed),
            (plain.clone(), Some(&seal), Unreadable::Plain),
            (sealed[..sealed.len() - 1].to_vec(), Some(&seal), Unreadable::WrongKey),
            (sealed[..HEADER_LEN + 3].to_vec(), Some(&seal), Unreadable::NotATokenSet),
            (plain[..plain.len() - 2].to_vec(), None, Unreadable::Malformed),
            (b"FVTS\x02\x00{}".to_vec(), None, Unreadable::OtherFormat(2)),
            (b"{\"access_token\":\"x\"}".to_vec(), None, Unreadable::NotATokenSet),
            (Vec::new(), None, Unreadable::NotATokenSet),
            (vec![b'F'; MAX_VALUE_BYTES + 1], None, Unreadable::TooLarge),
            (b"FVTS\x01\x00{\"access_token\":\"x\"}".to_vec(), None, Unreadable::Malformed),
            (b"FVTS\x01\x00{\"surprise\":1}".to_vec(), None, Unreadable::Malformed),
            (
                b"FVTS\x01\x00{\"access_token\":\"a\",\"expires_at\":-1,\"lifetime\":5}".to_vec(),
                None,
                Unreadable::Malformed,
            ),
            (
                b"FVTS\x01\x00{\"access_token\":\"a\",\"expires_at\":1e300,\"lifetime\":5}".to_vec(),
                None,
                Unreadable::Malformed,
            ),
        ];
        for (value, seal, expected) in cases {
            assert_eq!(decode(&value, &key(), seal).unwrap_err(), expected);
        }
        // Flipped bits anywhere in a sealed value.
        for at in [HEADER_LEN, HEADER_LEN + NONCE_LEN, sealed.len() - 1] {
            let mut flipped = sealed.clone();
            flipped[at] ^= 1;
            assert_eq!(decode(&flipped, &key(), Some(&seal)).unwrap_err(), Unreadable::WrongKey);
        }
        // Moved to another key: does not open.
        assert_eq!(decode(&sealed, &StoreKey::session("t"), Some(&seal)).unwrap_err(), Unreadable::WrongKey);
    }

    #[test]
    fn an_expired_access_token_is_absent_but_the_refresh_token_stays() {
        let mut bytes = b"FVTS\x01\x00".to_vec();
        bytes.extend_from_slice(
            br#"{"access_token":"a","token_type":"Bearer","expires_at":1000.5,"lifetime":1200,"refresh_token":"r"}"#,
        );
        let back = decode(&bytes, &key(), None).unwrap();
        assert!(back.access_token.is_none());
        assert_eq!(back.refresh_token.unwrap().expose_secret(), "r");
    }
}
