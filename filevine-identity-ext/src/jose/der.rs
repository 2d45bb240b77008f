//! The little DER and PEM the key formats need: PEM armour off, an RSA
//! JWK's integers into PKCS#1, a SEC1 EC key into PKCS#8 (the crypto
//! backends read PKCS#8 and PKCS#1 only). No parser of our own: the
//! backend parses every key.

use base64::Engine as _;
use zeroize::Zeroizing;

/// One PEM block: its label (`PRIVATE KEY`, …) and its DER bytes.
pub(crate) struct Pem {
    pub(crate) label: String,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Pem {
    /// The label only: the body is key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem").field("label", &self.label).finish_non_exhaustive()
    }
}

/// The first PEM block of `text`.
pub(crate) fn pem(text: &str) -> Result<Pem, String> {
    let start = text.find("-----BEGIN ").ok_or("no `-----BEGIN` line")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or("the BEGIN line does not end with `-----`")?;
    let label = rest[..label_end].to_owned();
    let body = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body.find(&end_marker).ok_or_else(|| format!("no `-----END {label}-----` line"))?;
    let base64: Zeroizing<String> = Zeroizing::new(body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect());
    if base64.contains(':') {
        return Err("PEM headers (an encrypted key) are not supported".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64.as_bytes())
        .map_err(|_| "the PEM body is not base64".to_owned())?;
    Ok(Pem { label, der: Zeroizing::new(der) })
}

/// A DER length.
fn length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A DER element with `tag` around `content`.
fn element(tag: u8, content: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + 6));
    out.push(tag);
    length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A non-negative DER INTEGER from big-endian bytes.
fn unsigned(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let trimmed = &bytes[bytes.iter().take_while(|b| **b == 0).count().min(bytes.len().saturating_sub(1))..];
    let mut content = Zeroizing::new(Vec::with_capacity(trimmed.len() + 1));
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    element(0x02, &content)
}

/// PKCS#1 `RSAPrivateKey` from its eight integers (n, e, d, p, q, dp, dq,
/// qi), big-endian.
pub(crate) fn rsa_private_key(integers: &[&[u8]; 8]) -> Zeroizing<Vec<u8>> {
    let mut content = Zeroizing::new(vec![0x02, 0x01, 0x00]);
    for integer in integers {
        content.extend_from_slice(&unsigned(integer));
    }
    element(0x30, &content)
}

/// A SEC1 `ECPrivateKey` from the private scalar and the uncompressed
/// public point (a JWK's `d`, and `04 || x || y`).
pub(crate) fn sec1(private: &[u8], public_point: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut content = Zeroizing::new(vec![0x02, 0x01, 0x01]);
    content.extend_from_slice(&element(0x04, private));
    let mut bits = Zeroizing::new(vec![0x00]);
    bits.extend_from_slice(public_point);
    content.extend_from_slice(&element(0xa1, &element(0x03, &bits)));
    element(0x30, &content)
}

/// `AlgorithmIdentifier` for an EC P-256 key: id-ecPublicKey, prime256v1.
const EC_P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03,
    0x01, 0x07,
];

/// A SEC1 `ECPrivateKey` (`EC PRIVATE KEY`) for P-256 as PKCS#8.
pub(crate) fn sec1_to_pkcs8(sec1: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut content = Zeroizing::new(vec![0x02, 0x01, 0x00]);
    content.extend_from_slice(EC_P256_ALGORITHM);
    content.extend_from_slice(&element(0x04, sec1));
    element(0x30, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_lengths_follow_der() {
        assert_eq!(*unsigned(&[0x00, 0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(*unsigned(&[0x80]), [0x02, 0x02, 0x00, 0x80], "a high bit gets a zero byte");
        assert_eq!(*unsigned(&[]), [0x02, 0x01, 0x00]);
        assert_eq!(*unsigned(&[0, 0]), [0x02, 0x01, 0x00]);
        let long = element(0x04, &[7; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn pem_blocks_and_their_faults() {
        let block = pem("junk\n-----BEGIN PRIVATE KEY-----\nAQID\nBA==\n-----END PRIVATE KEY-----\n").unwrap();
        assert_eq!((block.label.as_str(), &block.der[..]), ("PRIVATE KEY", &[1, 2, 3, 4][..]));
        assert!(pem("no armour").unwrap_err().contains("BEGIN"));
        assert!(pem("-----BEGIN X-----\nAQID\n").unwrap_err().contains("END X"));
        assert!(pem("-----BEGIN X-----\n!!\n-----END X-----").unwrap_err().contains("base64"));
        let encrypted = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAQID\n-----END RSA PRIVATE KEY-----";
        assert!(pem(encrypted).unwrap_err().contains("encrypted"));
    }
}
