//! Whom a session is with, and whether to go on with it: the rules of
//! PROTOCOL.md section 9 applied once both `hello`s are known.
//!
//! - A certificate proves an id: the `hello` id must be the one derived from
//!   the fingerprint of the certificate the peer presented.
//! - A dialled peer that advertised `fp=` must present exactly that key.
//! - The first key seen under a name is pinned; another key under that name
//!   is refused (loudly) until someone trusts it.
//! - A name or id known by its key is never accepted without that key
//!   (plaintext, or TLS without a certificate): no downgrade.
//! - With `require_encryption`, plaintext sessions are refused.

use crate::protocol::{ErrorCode, Fingerprint, Hello, ProtocolError};
use crate::trust::{KnownPeers, Pin};

use super::stream::Transport;
use super::tls::Tls;

/// How this side secures its sessions and judges peers.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Our TLS configuration; `None` speaks only plaintext (tests of
    /// the plaintext protocol, benchmarks).
    pub tls: Option<Tls>,
    /// The pinned keys; `None` pins nothing (no data directory).
    pub known: Option<KnownPeers>,
    /// Refuse plaintext and raw sessions.
    pub require_encryption: bool,
}

/// What the dialling side knows of the peer before connecting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// The fingerprint its advertisement carries now (TXT `fp=`). Only a
    /// live advertisement: a key remembered from an earlier one is the
    /// pin's business (a changed key can then be trusted).
    pub fp: Option<Fingerprint>,
}

/// How an open session is protected and its peer known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// TLS; the peer proved it holds the key of this fingerprint, which is
    /// the one pinned for its name.
    Authenticated {
        /// The peer's certificate fingerprint.
        fp: Fingerprint,
        /// The people compared the verification code for this key.
        verified: bool,
        /// Pinned just now: the first session with this key under this name.
        first: bool,
    },
    /// TLS, but the client presented no certificate (a phone script):
    /// private on the wire, the name unproven.
    Unauthenticated,
    /// Framed protocol in clear.
    Plain,
    /// Lines of text in clear (`nc`).
    Raw,
}

impl Link {
    /// Whether the session is encrypted.
    pub fn encrypted(&self) -> bool {
        matches!(self, Self::Authenticated { .. } | Self::Unauthenticated)
    }

    /// A word or two for people: `verified`, `encrypted`, `encrypted,
    /// unauthenticated` or `plaintext`.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Authenticated { verified: true, .. } => "encrypted, verified",
            Self::Authenticated { .. } => "encrypted",
            Self::Unauthenticated => "encrypted, unauthenticated",
            Self::Plain | Self::Raw => "plaintext",
        }
    }
}

/// A refusal whose reason both sides may read.
fn untrusted(name: &str, why: String) -> ProtocolError {
    ProtocolError::Refused {
        code: ErrorCode::Untrusted,
        told: why.clone(),
        why,
        name: name.to_owned(),
    }
}

/// What a plaintext peer is told when encryption is required.
pub const ENCRYPTION_REQUIRED: &str =
    "this lantalk accepts only encrypted sessions (TLS); plaintext and raw text are refused";

impl Policy {
    /// A policy that speaks TLS with `tls` and pins in `known`.
    pub fn new(tls: Tls, known: KnownPeers, require_encryption: bool) -> Self {
        Self {
            tls: Some(tls),
            known: Some(known),
            require_encryption,
        }
    }

    /// The policy of `me`: TLS with its keys, the peers pinned in its data
    /// directory.
    pub fn of(me: &crate::identity::Identity, require_encryption: bool) -> anyhow::Result<Self> {
        let tls = Tls::new(&me.keys).map_err(|e| {
            anyhow::anyhow!(
                "cannot use the keys in {}: {e}",
                me.dir.join(crate::identity::KEY_FILE).display()
            )
        })?;
        Ok(Self::new(tls, KnownPeers::new(&me.dir), require_encryption))
    }

    /// Plaintext only, pinning nothing: for tests and benchmarks of the
    /// framed protocol itself.
    pub fn plaintext() -> Self {
        Self {
            tls: None,
            known: None,
            require_encryption: false,
        }
    }

    /// Judges the peer's `hello` on a connection carried by `transport`.
    pub fn judge(
        &self,
        transport: Transport,
        hello: &Hello,
        expect: &Expect,
    ) -> Result<Link, ProtocolError> {
        let Transport::Tls(Some(fp)) = transport else {
            let link = match transport {
                Transport::Plain => Link::Plain,
                Transport::Tls(_) => Link::Unauthenticated,
            };
            if self.require_encryption && !link.encrypted() {
                return Err(ProtocolError::Refused {
                    code: ErrorCode::EncryptionRequired,
                    why: format!(
                        "refused a plaintext session from {:?} (--require-encryption)",
                        hello.name
                    ),
                    told: ENCRYPTION_REQUIRED.into(),
                    name: hello.name.clone(),
                });
            }
            self.no_key_claim(hello)?;
            return Ok(link);
        };
        if hello.id != fp.peer_id() {
            return Err(untrusted(
                &hello.name,
                format!(
                    "the hello claims the id {} but the certificate proves the id {}",
                    hello.id,
                    fp.peer_id()
                ),
            ));
        }
        if let Some(advertised) = expect.fp
            && advertised != fp
        {
            // Refused outright: no pin to change, nothing to /trust.
            return Err(untrusted(
                &hello.name,
                format!(
                    "{:?} advertises the key {} but presented {}: someone may be in the middle",
                    hello.name,
                    advertised.grouped(),
                    fp.grouped()
                ),
            ));
        }
        let Some(known) = &self.known else {
            return Ok(Link::Authenticated {
                fp,
                verified: false,
                first: false,
            });
        };
        match known.pin(&hello.name, fp) {
            Ok(Pin::First) => Ok(Link::Authenticated {
                fp,
                verified: false,
                first: true,
            }),
            Ok(Pin::Known { verified }) => Ok(Link::Authenticated {
                fp,
                verified,
                first: false,
            }),
            Ok(Pin::Changed { pinned }) => Err(self.changed(&hello.name, &pinned, &fp)),
            Err(e) => Err(untrusted(&hello.name, e.to_string())),
        }
    }

    /// The refusal of a key that is not the one pinned for `name`.
    fn changed(&self, name: &str, pinned: &Fingerprint, fp: &Fingerprint) -> ProtocolError {
        ProtocolError::Refused {
            code: ErrorCode::Untrusted,
            why: key_changed(name, pinned, fp),
            told: format!(
                "this peer pinned another key for {name:?} ({}) and refuses yours ({}) until its user accepts it",
                pinned.grouped(),
                fp.grouped()
            ),
            name: name.to_owned(),
        }
    }

    /// A peer without a certificate may not use a name or an id that is
    /// known by its key.
    fn no_key_claim(&self, hello: &Hello) -> Result<(), ProtocolError> {
        let Some(known) = &self.known else {
            return Ok(());
        };
        match known.claimed(&hello.name, &hello.id) {
            Err(e) => Err(untrusted(&hello.name, e.to_string())),
            Ok(Some(k)) => Err(untrusted(
                &hello.name,
                format!(
                    "{:?} is known by its key ({}); a session without that key cannot be {:?}",
                    hello.name,
                    k.fp.grouped(),
                    k.name
                ),
            )),
            Ok(None) => Ok(()),
        }
    }
}

/// The start of the message for a key that is not the pinned one; the
/// rest names both keys.
pub const KEY_CHANGED: &str = "WARNING: THE KEY OF";

/// The loud warning for a key that is not the one pinned for `name`.
pub fn key_changed(name: &str, pinned: &Fingerprint, presented: &Fingerprint) -> String {
    format!(
        "{KEY_CHANGED} {name:?} HAS CHANGED: pinned {}, presented {}. \
         Someone may be impersonating it, or it was reinstalled, or another device uses that name. \
         Session refused; if you know why, accept the new key with /trust or `lantalk trust {name}` \
         (or, for another device, /trust also or `lantalk trust {name} --also`)",
        pinned.grouped(),
        presented.grouped()
    )
}

/// On the first session with a key under `name`: conversations kept
/// under that name with ids no pinned key proves (the random ids of
/// versions before keys) continue under `id`, the id the key proves.
/// Returns the (old, new) ids merged.
pub async fn carry_over_history(
    store: &crate::store::Store,
    known: &KnownPeers,
    name: &str,
    id: &str,
) -> Vec<(String, String)> {
    let Ok(conversations) = store.conversations().await else {
        return Vec::new();
    };
    let mut merged = Vec::new();
    for c in conversations {
        if c.raw || c.peer == id || c.name != name {
            continue;
        }
        if !matches!(known.by_id(&c.peer), Ok(None)) {
            // A key proves that id: another peer, not an old id.
            continue;
        }
        match store.merge_peer(c.peer.clone(), id.to_owned()).await {
            Ok(_) => merged.push((c.peer, id.to_owned())),
            Err(e) => tracing::warn!("cannot carry the history of {} over to {id}: {e}", c.peer),
        }
    }
    merged
}

/// How to open a session with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// TLS only.
    Tls,
    /// Plaintext only (a peer that does not offer TLS).
    Plain,
    /// TLS, and plaintext if the peer does not speak it (an address typed
    /// by hand: nothing says what is there).
    TlsThenPlain,
}

impl Policy {
    /// How to reach a discovered peer named `name` with id `id`, advertising
    /// `fp` (or nothing): TLS when it offers it or is known by its key,
    /// plaintext only for a peer that never offered a key (an older
    /// lantalk), and not at all then if encryption is required.
    pub fn reach(&self, name: &str, id: &str, fp: Option<Fingerprint>) -> Result<Reach, String> {
        if self.tls.is_none() {
            return Ok(Reach::Plain);
        }
        if fp.is_some() {
            return Ok(Reach::Tls);
        }
        if let Some(known) = &self.known {
            // An unreadable file counts as pinned: never fall back to clear.
            if !matches!(known.claimed(name, id), Ok(None)) {
                // Known by its key: never in clear, whatever the advertisement says.
                return Ok(Reach::Tls);
            }
        }
        if self.require_encryption {
            return Err(format!(
                "{name:?} does not offer encryption (no fp= in its advertisement: an older lantalk?); refused because encryption is required"
            ));
        }
        Ok(Reach::Plain)
    }

    /// How to reach an address typed by hand.
    pub fn reach_address(&self) -> Reach {
        match (&self.tls, self.require_encryption) {
            (None, _) => Reach::Plain,
            (Some(_), true) => Reach::Tls,
            (Some(_), false) => Reach::TlsThenPlain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PROTO_VERSION;

    fn fp(seed: &[u8]) -> Fingerprint {
        Fingerprint::of_cert(seed)
    }

    fn hello(name: &str, id: String) -> Hello {
        Hello {
            proto: PROTO_VERSION,
            id,
            name: name.into(),
            app: "test".into(),
        }
    }

    fn policy(dir: &std::path::Path, require_encryption: bool) -> Policy {
        let (keys, _) = crate::identity::Keys::generate().unwrap();
        Policy::new(
            Tls::new(&keys).unwrap(),
            KnownPeers::new(dir),
            require_encryption,
        )
    }

    fn code(e: ProtocolError) -> ErrorCode {
        e.code().unwrap()
    }

    #[test]
    fn a_certificate_must_prove_the_id_and_match_the_advertisement() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let key = fp(b"b");
        let tls = Transport::Tls(Some(key));
        let honest = hello("b", key.peer_id());
        let none = Expect::default();
        let liar = hello("b", fp(b"other").peer_id());
        assert_eq!(
            code(p.judge(tls, &liar, &none).unwrap_err()),
            ErrorCode::Untrusted
        );
        let advertised = Expect { fp: Some(fp(b"x")) };
        let e = p.judge(tls, &honest, &advertised).unwrap_err();
        assert!(
            e.to_string().contains("someone may be in the middle"),
            "{e}"
        );
        assert_eq!(
            p.judge(tls, &honest, &Expect { fp: Some(key) }).unwrap(),
            Link::Authenticated {
                fp: key,
                verified: false,
                first: true
            }
        );
        assert_eq!(
            p.judge(tls, &honest, &none).unwrap(),
            Link::Authenticated {
                fp: key,
                verified: false,
                first: false
            }
        );
    }

    #[test]
    fn another_key_under_a_pinned_name_is_refused_loudly_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let (old, new) = (fp(b"old"), fp(b"new"));
        p.judge(
            Transport::Tls(Some(old)),
            &hello("b", old.peer_id()),
            &Expect::default(),
        )
        .unwrap();
        let e = p
            .judge(
                Transport::Tls(Some(new)),
                &hello("b", new.peer_id()),
                &Expect::default(),
            )
            .unwrap_err();
        let ProtocolError::Refused {
            why, told, name, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert!(why.starts_with(KEY_CHANGED), "{why}");
        assert!(
            why.contains(&old.grouped()) && why.contains(&new.grouped()),
            "{why}"
        );
        assert!(told.contains("until its user accepts it"), "{told}");
        assert_eq!(name, "b");
        // Trusted: accepted from then on.
        p.known.as_ref().unwrap().trust("b", None, false).unwrap();
        assert!(
            p.judge(
                Transport::Tls(Some(new)),
                &hello("b", new.peer_id()),
                &Expect::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn a_name_or_id_known_by_its_key_is_never_accepted_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let key = fp(b"b");
        p.judge(
            Transport::Tls(Some(key)),
            &hello("b", key.peer_id()),
            &Expect::default(),
        )
        .unwrap();
        let none = Expect::default();
        for transport in [Transport::Plain, Transport::Tls(None)] {
            let by_name = p.judge(transport, &hello("b", fp(b"z").peer_id()), &none);
            assert_eq!(code(by_name.unwrap_err()), ErrorCode::Untrusted);
            let by_id = p.judge(transport, &hello("c", key.peer_id()), &none);
            assert_eq!(code(by_id.unwrap_err()), ErrorCode::Untrusted);
        }
        let phone = hello("phone", fp(b"p").peer_id());
        assert_eq!(
            p.judge(Transport::Tls(None), &phone, &none).unwrap(),
            Link::Unauthenticated
        );
        assert_eq!(
            p.judge(Transport::Plain, &phone, &none).unwrap(),
            Link::Plain
        );
        // Dialling: a pinned peer is reached over TLS even if it stops advertising a key.
        assert_eq!(p.reach("b", "whatever", None), Ok(Reach::Tls));
        assert_eq!(p.reach("x", &key.peer_id(), None), Ok(Reach::Tls));
        assert_eq!(p.reach("old", &fp(b"o").peer_id(), None), Ok(Reach::Plain));
        assert_eq!(
            p.reach("new", &fp(b"n").peer_id(), Some(fp(b"n"))),
            Ok(Reach::Tls)
        );
        assert_eq!(p.reach_address(), Reach::TlsThenPlain);
    }

    #[test]
    fn require_encryption_refuses_plaintext_but_not_tls_without_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), true);
        let phone = hello("phone", fp(b"p").peer_id());
        let none = Expect::default();
        let e = p.judge(Transport::Plain, &phone, &none).unwrap_err();
        assert_eq!(code(e), ErrorCode::EncryptionRequired);
        assert!(p.judge(Transport::Tls(None), &phone, &none).is_ok());
        assert!(p.reach("old", &fp(b"o").peer_id(), None).is_err());
        assert_eq!(p.reach_address(), Reach::Tls);
    }
}
