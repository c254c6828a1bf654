//! Certificate fingerprints, the peer ids derived from them, and the short
//! verification code two people compare out loud (PROTOCOL.md section 9).

use std::fmt;
use std::str::FromStr;

use ring::digest::{SHA256, digest};

/// The SHA-256 of a DER certificate: who a peer provably is once it has
/// completed a TLS handshake with that certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_cert(der: &[u8]) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, der).as_ref());
        Self(out)
    }

    /// The peer id this certificate proves: the first 128 bits of the
    /// fingerprint as 32 lowercase hex characters.
    pub fn peer_id(&self) -> String {
        hex(&self.0[..16])
    }

    /// The fingerprint in groups of four hex characters, for people to read.
    pub fn grouped(&self) -> String {
        let hex = self.to_string();
        hex.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    /// 64 lowercase hex characters, as TXT `fp=` carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A string that is not 64 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fingerprint is 64 hex characters (SHA-256)")]
pub struct BadFingerprint;

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    /// Accepts 64 hex characters in either case, optionally grouped with
    /// spaces or colons (as people copy them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: Vec<u8> = s.bytes().filter(|b| !matches!(b, b' ' | b':')).collect();
        if digits.len() != 64 {
            return Err(BadFingerprint);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| BadFingerprint)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| BadFingerprint)?;
        }
        Ok(Self(out))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The code both people see for the pair of keys `a` and `b`: the same
/// whichever side computes it, and different when either key differs.
///
/// Forty decimal digits in eight groups of five (about 133 bits): someone
/// who could make key pairs until one gives the code of the pair they want
/// to stand between would need about 2^132 tries (PROTOCOL.md section 9.5),
/// where the twenty digits of version 1 (about 66 bits) left 2^33 a side
/// within reach of an offline search.
pub fn verification_code(a: &Fingerprint, b: &Fingerprint) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut input = Vec::with_capacity(32 + 64);
    input.extend_from_slice(b"lantalk verification code v2");
    input.extend_from_slice(&low.0);
    input.extend_from_slice(&high.0);
    let hash = digest(&SHA256, &input);
    // Eight groups, each from its own 4 bytes: the bias of 2^32 mod 10^5
    // is under 2^-15 per group.
    hash.as_ref()
        .chunks(4)
        .take(8)
        .map(|c| {
            let n = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(seed: &[u8]) -> Fingerprint {
        Fingerprint::of_cert(seed)
    }

    #[test]
    fn peer_id_is_the_first_half_of_the_fingerprint_in_hex() {
        let f = fp(b"certificate");
        assert_eq!(f.to_string().len(), 64);
        assert_eq!(f.peer_id(), f.to_string()[..32]);
        assert!(crate::protocol::is_valid_peer_id(&f.peer_id()));
    }

    #[test]
    fn fingerprints_parse_back_in_the_forms_people_copy() {
        let f = fp(b"x");
        assert_eq!(f.to_string().parse::<Fingerprint>(), Ok(f));
        assert_eq!(f.grouped().parse::<Fingerprint>(), Ok(f));
        assert_eq!(f.to_string().to_uppercase().parse::<Fingerprint>(), Ok(f));
        assert_eq!("abc".parse::<Fingerprint>(), Err(BadFingerprint));
        assert_eq!("zz".repeat(32).parse::<Fingerprint>(), Err(BadFingerprint));
        assert_eq!("é".repeat(32).parse::<Fingerprint>(), Err(BadFingerprint));
    }

    #[test]
    fn the_code_is_symmetric_and_changes_with_either_key() {
        let (a, b, c) = (fp(b"a"), fp(b"b"), fp(b"c"));
        let code = verification_code(&a, &b);
        assert_eq!(code, verification_code(&b, &a));
        assert_ne!(code, verification_code(&a, &c));
        assert_ne!(code, verification_code(&c, &b));
        // Eight groups of five digits: log2(10^40) is about 133 bits.
        assert_eq!(code.len(), 47, "{code}");
        assert!(
            code.split(' ')
                .all(|g| g.len() == 5 && g.bytes().all(|d| d.is_ascii_digit()))
        );
        assert_eq!(code.split(' ').count(), 8);
    }
}
