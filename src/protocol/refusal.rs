//! Why a peer is refused for who it is or how it comes, as a value: the
//! caller matches on the variant (a changed key can be trusted with
//! `/trust`, a relay in the middle cannot), people read its `Display`, and
//! the peer is told [`Refusal::told`] in an `error` message.

use std::net::SocketAddr;

use super::{ErrorCode, Fingerprint};

/// The start of the warning for a key that is not the pinned one.
pub const KEY_CHANGED: &str = "WARNING: THE KEY OF";

/// What a plaintext peer is told when encryption is required.
pub const ENCRYPTION_REQUIRED: &str =
    "this lantalk accepts only encrypted sessions (TLS); plaintext and raw text are refused";

/// A peer refused for its identity or its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its key is not the one pinned for its name: someone may be
    /// impersonating it, or it was reinstalled. The user may accept the
    /// new key (`/trust`, `lantalk trust NAME`).
    KeyChanged {
        /// The name it gave.
        name: String,
        /// The key pinned for that name.
        pinned: Fingerprint,
        /// The key it presented.
        presented: Fingerprint,
    },
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
            Self::KeyChanged { name, .. }
            | Self::AdvertMismatch { name, .. }
            | Self::IdNotProven { name, .. }
            | Self::KeyClaimed { name, .. }
            | Self::EncryptionRequired { name }
            | Self::NoKeyOffered { name }
            | Self::KnownPeersUnusable { name, .. } => Some(name),
            Self::RawTextRefused { .. } => None,
        }
    }

    /// Whether accepting the peer's new key (`/trust`) would let it in.
    pub fn is_key_changed(&self) -> bool {
        matches!(self, Self::KeyChanged { .. })
    }

    /// What the peer is told, in its `error` message.
    pub fn told(&self) -> String {
        match self {
            Self::KeyChanged {
                name,
                pinned,
                presented,
            } => format!(
                "this peer pinned another key for {name:?} ({}) and refuses yours ({}) until its user accepts it",
                pinned.grouped(),
                presented.grouped()
            ),
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
            Self::KeyChanged {
                name,
                pinned,
                presented,
            } => write!(
                f,
                "{KEY_CHANGED} {name:?} HAS CHANGED: pinned {}, presented {}. \
                 Someone may be impersonating it, or it was reinstalled, or another device uses that name. \
                 Session refused; if you know why, accept the new key with /trust or `lantalk trust {name}` \
                 (or, for another device, /trust also or `lantalk trust {name} --also`)",
                pinned.grouped(),
                presented.grouped()
            ),
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
    fn a_changed_key_names_both_keys_and_how_to_accept_it() {
        let (old, new) = (Fingerprint::of_cert(b"a"), Fingerprint::of_cert(b"b"));
        let r = Refusal::KeyChanged {
            name: "b".into(),
            pinned: old,
            presented: new,
        };
        let why = r.to_string();
        assert!(why.starts_with(KEY_CHANGED), "{why}");
        assert!(why.contains(&old.grouped()) && why.contains(&new.grouped()));
        assert!(why.contains("lantalk trust b"), "{why}");
        assert!(r.told().contains("until its user accepts it"));
        assert!(r.is_key_changed());
        assert_eq!(r.code(), ErrorCode::Untrusted);
        let plain = Refusal::EncryptionRequired { name: "p".into() };
        assert_eq!(plain.told(), ENCRYPTION_REQUIRED);
        assert_eq!(plain.code(), ErrorCode::EncryptionRequired);
        assert!(!plain.is_key_changed());
    }
}
