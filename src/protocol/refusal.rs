//! Why a peer is refused for who it is or how it comes, as a value: the
//! caller matches on the variant, people read its `Display`, and the peer
//! is told [`Refusal::told`] in an `error` message.
//!
//! A new key is never refused for its name: a peer is its key, and a key
//! met for the first time is a new peer, whatever it calls itself. What is
//! refused is a key that contradicts what we know: another key than the
//! advertised one, an id its certificate does not prove, a session without
//! a key claiming an id known by one, an advert for a known name whose key
//! is none of that name's.

use std::net::SocketAddr;

use super::{ErrorCode, Fingerprint};

/// What a plaintext peer is told when encryption is required.
pub const ENCRYPTION_REQUIRED: &str =
    "this lantalk accepts only encrypted sessions (TLS); plaintext and raw text are refused";

/// A peer refused for its identity or its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It advertises one key on mDNS and presented another: a relay may be
    /// in the middle. Nothing to trust; refused outright.
    AdvertMismatch {
        /// The name it gave.
        name: String,
        /// The key in its advertisement.
        advertised: Fingerprint,
        /// The key it presented.
        presented: Fingerprint,
    },
    /// Its `hello` claims an id its certificate does not prove.
    IdNotProven {
        /// The name it gave.
        name: String,
        /// The id it claimed.
        claimed: String,
        /// The id its certificate proves.
        proven: String,
    },
    /// It came without a key (plaintext, or TLS without a certificate) but
    /// used a name or an id known by its key.
    KeyClaimed {
        /// The name it gave.
        name: String,
        /// The pin it would be claiming: that peer's name ...
        pinned_name: String,
        /// ... and its key.
        pinned: Fingerprint,
    },
    /// `send NAME`: the advert found for `NAME` offers a key that is none
    /// of the keys known by that name (an mDNS spoofer, or another device
    /// that took the name). Not dialled.
    AdvertDisagrees {
        /// The name asked for.
        name: String,
        /// The keys known by that name.
        pinned: Vec<Fingerprint>,
        /// The key the advert offers (`None`: it offers none).
        advertised: Option<Fingerprint>,
    },
    /// A plaintext session, and this side requires encryption.
    EncryptionRequired {
        /// The name it gave.
        name: String,
    },
    /// A raw text connection, and this side requires encryption.
    RawTextRefused {
        /// Where it came from.
        addr: SocketAddr,
    },
    /// We would reach it in clear (it offers no key), and this side
    /// requires encryption: not dialled at all.
    NoKeyOffered {
        /// Its name.
        name: String,
    },
    /// The known peers could not be read, so nobody's key can be checked.
    KnownPeersUnusable {
        /// The name it gave.
        name: String,
        /// What is wrong with the file.
        why: String,
    },
}

impl Refusal {
    /// The `error` code the peer is sent.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::EncryptionRequired { .. } | Self::RawTextRefused { .. } => {
                ErrorCode::EncryptionRequired
            }
            Self::NoKeyOffered { .. } => ErrorCode::EncryptionRequired,
            _ => ErrorCode::Untrusted,
        }
    }

    /// The name the peer gave, if it got that far.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::AdvertMismatch { name, .. }
            | Self::IdNotProven { name, .. }
            | Self::KeyClaimed { name, .. }
            | Self::AdvertDisagrees { name, .. }
            | Self::EncryptionRequired { name }
            | Self::NoKeyOffered { name }
            | Self::KnownPeersUnusable { name, .. } => Some(name),
            Self::RawTextRefused { .. } => None,
        }
    }

    /// What the peer is told, in its `error` message.
    pub fn told(&self) -> String {
        match self {
            Self::EncryptionRequired { .. }
            | Self::RawTextRefused { .. }
            | Self::NoKeyOffered { .. } => ENCRYPTION_REQUIRED.to_owned(),
            other => other.to_string(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AdvertMismatch {
                name,
                advertised,
                presented,
            } => write!(
                f,
                "{name:?} advertises the key {} but presented {}: someone may be in the middle",
                advertised.grouped(),
                presented.grouped()
            ),
            Self::IdNotProven {
                claimed, proven, ..
            } => write!(
                f,
                "the hello claims the id {claimed} but the certificate proves the id {proven}"
            ),
            Self::KeyClaimed {
                name,
                pinned_name,
                pinned,
            } => write!(
                f,
                "{name:?} is known by its key ({}); a session without that key cannot be {pinned_name:?}",
                pinned.grouped()
            ),
            Self::AdvertDisagrees {
                name,
                pinned,
                advertised,
            } => {
                let keys: Vec<String> = pinned.iter().map(|k| k.grouped()).collect();
                let offered = match advertised {
                    Some(k) => format!("offers the key {}", k.grouped()),
                    None => "offers no key".to_owned(),
                };
                write!(
                    f,
                    "the advert for {name:?} {offered}, but {name:?} is known by {}: \
                     not sent. Someone may be pretending to be it, or another device took \
                     the name; `lantalk peers` shows them apart, and if it is {name:?} with a \
                     new key, `lantalk trust {name} --fingerprint KEY` after comparing the key",
                    keys.join(" or ")
                )
            }
            Self::EncryptionRequired { name } => write!(
                f,
                "refused a plaintext session from {name:?} (--require-encryption)"
            ),
            Self::RawTextRefused { addr } => {
                write!(f, "refused raw text from {addr} (encryption is required)")
            }
            Self::NoKeyOffered { name } => write!(
                f,
                "{name:?} does not offer encryption (no fp= in its advertisement: an older lantalk?); \
                 refused because encryption is required"
            ),
            Self::KnownPeersUnusable { why, .. } => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disagreeing_advert_names_the_keys_and_the_way_out() {
        let (old, new) = (Fingerprint::of_cert(b"a"), Fingerprint::of_cert(b"b"));
        let r = Refusal::AdvertDisagrees {
            name: "laptop".into(),
            pinned: vec![old],
            advertised: Some(new),
        };
        let why = r.to_string();
        assert!(
            why.contains(&old.grouped()) && why.contains(&new.grouped()),
            "{why}"
        );
        assert!(why.contains("lantalk trust laptop --fingerprint"), "{why}");
        assert_eq!(r.code(), ErrorCode::Untrusted);
        assert_eq!(r.name(), Some("laptop"));
        let plain = Refusal::EncryptionRequired { name: "p".into() };
        assert_eq!(plain.told(), ENCRYPTION_REQUIRED);
        assert_eq!(plain.code(), ErrorCode::EncryptionRequired);
    }
}
