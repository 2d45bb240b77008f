//! The record format's tests: round trips, every way a value is unreadable,
//! and the seal's associated data.

use super::*;

fn set() -> StoredTokens {
    let access = AccessToken::new(
        SecretString::from("SENTINEL-access"),
        "Bearer".to_owned(),
        Some("openid email".into()),
        &crate::time::Clock::System,
        crate::time::Clock::System.now(),
        Duration::from_secs(1200),
        None,
    )
    .unwrap();
    StoredTokens {
        access_token: Some(access),
        refresh_token: Some(RefreshToken::new("SENTINEL-refresh").unwrap()),
        id_token: Some(IdToken::new("SENTINEL-id")),
        dpop_key: None,
        origin: Some(Origin { writer: "w-1".into(), seq: 7 }),
    }
}

fn key() -> StoreKey {
    StoreKey::session("s")
}

fn keys() -> StoreEncryptionKeys {
    StoreEncryptionKeys::new(StoreEncryptionKey::generate().unwrap())
}

/// A clock two "processes" share (same origin) or not.
#[derive(Debug)]
struct Shared(std::sync::Mutex<(Duration, Duration)>, u128);

impl crate::time::TimeSource for Shared {
    fn monotonic(&self) -> Duration {
        self.0.lock().unwrap().0
    }
    fn wall(&self) -> Duration {
        self.0.lock().unwrap().1
    }
    fn monotonic_origin(&self) -> Option<u128> {
        Some(self.1)
    }
}

#[test]
fn a_wall_clock_set_back_does_not_lengthen_a_token_read_on_the_same_monotonic_clock() {
    let wall = Duration::from_secs(1_800_000_000);
    let clock = std::sync::Arc::new(Shared(std::sync::Mutex::new((Duration::from_secs(50), wall)), 7));
    let writer = crate::time::Clock::Source(clock.clone());
    let access = AccessToken::new(
        SecretString::from("SENTINEL-access"),
        "Bearer".to_owned(),
        None,
        &writer,
        writer.now(),
        Duration::from_secs(1200),
        None,
    )
    .unwrap();
    let tokens = StoredTokens { access_token: Some(access), ..set() };
    let bytes = encode(&tokens, &key(), None).unwrap();
    // 1000 s later the wall clock is set back by 600 s.
    *clock.0.lock().unwrap() = (Duration::from_secs(1050), wall + Duration::from_secs(400));
    let same = decode_at(&bytes, &key(), None, &writer).unwrap().access_token.unwrap();
    assert_eq!(same.expires_in(), Duration::from_secs(200), "the monotonic deadline holds");
    // Another machine's clock at the same readings: only the wall
    // clock says anything, and it says 800 s.
    let other = crate::time::Clock::Source(std::sync::Arc::new(Shared(
        std::sync::Mutex::new((Duration::from_secs(1050), wall + Duration::from_secs(400))),
        8,
    )));
    let elsewhere = decode_at(&bytes, &key(), None, &other).unwrap().access_token.unwrap();
    assert_eq!(elsewhere.expires_in(), Duration::from_secs(800));
    // Past the monotonic deadline, the token is gone on the same clock.
    *clock.0.lock().unwrap() = (Duration::from_secs(1250), wall + Duration::from_secs(600));
    assert!(decode_at(&bytes, &key(), None, &writer).unwrap().access_token.is_none());
    // A clock field without a deadline (or a malformed origin) is not a
    // token set.
    for bad in [
        r#""clock":"00000000000000000000000000000007""#,
        r#""clock":"7","deadline":5"#,
        r#""clock":"0000000000000000000000000000000G","deadline":5"#,
        r#""clock":"+0000000000000000000000000000007","deadline":5"#,
    ] {
        let json = format!(r#"{{"access_token":"a","expires_at":1000.5,"lifetime":1200,{bad}}}"#);
        let mut value = b"FVTS\x02\x00".to_vec();
        value[4] = FORMAT;
        value[5] = PLAIN;
        value.extend_from_slice(json.as_bytes());
        assert_eq!(decode(&value, &key(), None).err(), Some(Unreadable::Malformed), "{bad}");
    }
}

#[test]
fn plain_and_sealed_round_trip() {
    let seal = keys();
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
        assert_eq!(back.origin, Some(Origin { writer: "w-1".into(), seq: 7 }));
    }
}

#[test]
fn sealed_values_contain_no_token_text() {
    let seal = keys();
    let bytes = encode(&set(), &key(), Some(&seal)).unwrap();
    assert!(!bytes.windows(8).any(|w| w == b"SENTINEL"));
    // Two writes of the same set differ (fresh nonce).
    assert_ne!(bytes, encode(&set(), &key(), Some(&seal)).unwrap());
}

#[test]
fn bad_values_are_refused_with_their_cause() {
    let seal = keys();
    let other = keys();
    let sealed = encode(&set(), &key(), Some(&seal)).unwrap();
    let plain = encode(&set(), &key(), None).unwrap();
    let cases: Vec<(Vec<u8>, Option<&StoreEncryptionKeys>, Unreadable)> = vec![
        (sealed.clone(), Some(&other), Unreadable::WrongKey),
        (sealed.clone(), None, Unreadable::Sealed),
        (plain.clone(), Some(&seal), Unreadable::Plain),
        (sealed[..sealed.len() - 1].to_vec(), Some(&seal), Unreadable::WrongKey),
        (sealed[..HEADER_LEN + KEY_ID_LEN + 3].to_vec(), Some(&seal), Unreadable::NotATokenSet),
        (b"FVTS\x03\x00{}".to_vec(), None, Unreadable::OtherFormat(3)),
        (TOMBSTONE.to_vec(), None, Unreadable::Deleted),
        (TOMBSTONE.to_vec(), Some(&seal), Unreadable::Deleted),
        (b"FVTS\x02\x02extra".to_vec(), None, Unreadable::NotATokenSet),
        (b"FVTS\x02\x07".to_vec(), None, Unreadable::NotATokenSet),
        (plain[..plain.len() - 2].to_vec(), None, Unreadable::Malformed),
        (b"{\"access_token\":\"x\"}".to_vec(), None, Unreadable::NotATokenSet),
        (Vec::new(), None, Unreadable::NotATokenSet),
        (vec![b'F'; MAX_VALUE_BYTES + 1], None, Unreadable::TooLarge),
        (b"FVTS\x01\x00{\"access_token\":\"x\"}".to_vec(), None, Unreadable::Malformed),
        (b"FVTS\x01\x00{\"surprise\":1}".to_vec(), None, Unreadable::Malformed),
        // A writer without its sequence number, or one no SDK writes.
        (b"FVTS\x02\x00{\"refresh_token\":\"r\",\"writer\":\"w\"}".to_vec(), None, Unreadable::Malformed),
        (b"FVTS\x02\x00{\"refresh_token\":\"r\",\"seq\":3}".to_vec(), None, Unreadable::Malformed),
        (b"FVTS\x02\x00{\"refresh_token\":\"r\",\"writer\":\"\",\"seq\":3}".to_vec(), None, Unreadable::Malformed),
        (
            format!("FVTS\x02\x00{{\"refresh_token\":\"r\",\"writer\":\"{}\",\"seq\":3}}", "w".repeat(65)).into_bytes(),
            None,
            Unreadable::Malformed,
        ),
        (b"FVTS\x02\x00{\"refresh_token\":\"r\",\"writer\":\"w\",\"seq\":-1}".to_vec(), None, Unreadable::Malformed),
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
    for at in [HEADER_LEN, HEADER_LEN + KEY_ID_LEN, HEADER_LEN + KEY_ID_LEN + NONCE_LEN, sealed.len() - 1] {
        let mut flipped = sealed.clone();
        flipped[at] ^= 1;
        assert_eq!(decode(&flipped, &key(), Some(&seal)).unwrap_err(), Unreadable::WrongKey);
    }
    // Moved to another key: does not open.
    assert_eq!(decode(&sealed, &StoreKey::session("t"), Some(&seal)).unwrap_err(), Unreadable::WrongKey);
}

#[test]
fn rotated_keys_open_what_the_previous_key_sealed() {
    let (old, new) = (StoreEncryptionKey::generate().unwrap(), StoreEncryptionKey::generate().unwrap());
    let sealed_with_old = encode(&set(), &key(), Some(&StoreEncryptionKeys::new(old.clone()))).unwrap();
    let rotated = StoreEncryptionKeys::new(new.clone()).with_previous(old.clone());
    let back = decode(&sealed_with_old, &key(), Some(&rotated)).unwrap();
    assert_eq!(back.refresh_token.unwrap().expose_secret(), "SENTINEL-refresh");
    // Written again: sealed with the new key, so the old one can go.
    let rewritten = encode(&set(), &key(), Some(&rotated)).unwrap();
    assert_eq!(&rewritten[HEADER_LEN..HEADER_LEN + KEY_ID_LEN], &key_id(&new));
    assert!(decode(&rewritten, &key(), Some(&StoreEncryptionKeys::new(new))).is_ok());
    assert_eq!(decode(&rewritten, &key(), Some(&StoreEncryptionKeys::new(old))).unwrap_err(), Unreadable::WrongKey);
    // A changed key id does not open (it is authenticated).
    let mut relabelled = rewritten.clone();
    relabelled[HEADER_LEN] ^= 1;
    assert_eq!(decode(&relabelled, &key(), Some(&rotated)).unwrap_err(), Unreadable::WrongKey);
}

#[test]
fn sealed_bytes_open_only_as_sealed_bytes_under_their_key() {
    let keys = keys();
    let value = seal_bytes(b"SENTINEL-record", &key(), &keys).unwrap();
    assert!(!value.windows(8).any(|w| w == b"SENTINEL"));
    assert_eq!(&*open_bytes(&value, &key(), &keys).unwrap(), b"SENTINEL-record");
    assert_eq!(open_bytes(&value, &StoreKey::session("t"), &keys).unwrap_err(), Unreadable::WrongKey);
    assert_eq!(open_bytes(&value, &key(), &self::keys()).unwrap_err(), Unreadable::WrongKey);
    // Neither kind opens as the other.
    assert_eq!(decode(&value, &key(), Some(&keys)).unwrap_err(), Unreadable::NotATokenSet);
    let tokens = encode(&set(), &key(), Some(&keys)).unwrap();
    assert_eq!(open_bytes(&tokens, &key(), &keys).unwrap_err(), Unreadable::NotATokenSet);
    assert_eq!(open_bytes(br#"{"method":"login"}"#, &key(), &keys).unwrap_err(), Unreadable::NotATokenSet);
    let mut flipped = value.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(open_bytes(&flipped, &key(), &keys).unwrap_err(), Unreadable::WrongKey);
}

#[test]
fn format_1_values_still_open_with_any_of_the_keys() {
    let (old, new) = (StoreEncryptionKey::generate().unwrap(), StoreEncryptionKey::generate().unwrap());
    // What the previous release wrote: no key id.
    let header = [b'F', b'V', b'T', b'S', FORMAT_1, SEALED];
    let nonce = [7u8; NONCE_LEN];
    let mut body = br#"{"refresh_token":"SENTINEL-r"}"#.to_vec();
    cipher(&old)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&associated_data(&header, &key())),
            &mut body,
        )
        .unwrap();
    let value = [&header[..], &nonce, &body].concat();
    let keys = StoreEncryptionKeys::new(new).with_previous(old);
    assert_eq!(decode(&value, &key(), Some(&keys)).unwrap().refresh_token.unwrap().expose_secret(), "SENTINEL-r");
    assert_eq!(decode(&value, &key(), Some(&self::keys())).unwrap_err(), Unreadable::WrongKey);
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
