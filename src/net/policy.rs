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
//!
//! Refusals are [`Refusal`] values; the known peers are asked through their
//! owning thread, so judging never blocks the runtime.

use crate::protocol::{Fingerprint, Hello, Refusal};
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
    /// The key the peer must present: the one its live advertisement
    /// carries (TXT `fp=`), or the one that proves the id we dial.
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
    /// In clear: the framed protocol, or raw lines of text (`nc`).
    Plain,
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
            Self::Plain => "plaintext",
        }
    }
}

/// The refusal when the known peers cannot be read: nobody is let in on a
/// key that cannot be checked.
fn unusable(name: &str, e: &crate::trust::TrustError) -> Refusal {
    Refusal::KnownPeersUnusable {
        name: name.to_owned(),
        why: crate::error_chain(e),
    }
}

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
    pub async fn judge(
        &self,
        transport: Transport,
        hello: &Hello,
        expect: &Expect,
    ) -> Result<Link, Refusal> {
        let Transport::Tls(Some(fp)) = transport else {
            let link = match transport {
                Transport::Plain => Link::Plain,
                Transport::Tls(_) => Link::Unauthenticated,
            };
            if self.require_encryption && !link.encrypted() {
                return Err(Refusal::EncryptionRequired {
                    name: hello.name.clone(),
                });
            }
            self.no_key_claim(hello).await?;
            return Ok(link);
        };
        if hello.id != fp.peer_id() {
            return Err(Refusal::IdNotProven {
                name: hello.name.clone(),
                claimed: hello.id.clone(),
                proven: fp.peer_id(),
            });
        }
        if let Some(advertised) = expect.fp
            && advertised != fp
        {
            // Refused outright: no pin to change, nothing to /trust.
            return Err(Refusal::AdvertMismatch {
                name: hello.name.clone(),
                advertised,
                presented: fp,
            });
        }
        let Some(known) = &self.known else {
            return Ok(Link::Authenticated {
                fp,
                verified: false,
                first: false,
            });
        };
        match known.pin(&hello.name, fp).await {
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
            Ok(Pin::Changed { pinned }) => Err(Refusal::KeyChanged {
                name: hello.name.clone(),
                pinned,
                presented: fp,
            }),
            Err(e) => Err(unusable(&hello.name, &e)),
        }
    }

    /// A peer without a certificate may not use a name or an id that is
    /// known by its key.
    async fn no_key_claim(&self, hello: &Hello) -> Result<(), Refusal> {
        let Some(known) = &self.known else {
            return Ok(());
        };
        match known.claimed(&hello.name, &hello.id).await {
            Err(e) => Err(unusable(&hello.name, &e)),
            Ok(Some(k)) => Err(Refusal::KeyClaimed {
                name: hello.name.clone(),
                pinned_name: k.name,
                pinned: k.fp,
            }),
            Ok(None) => Ok(()),
        }
    }
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
    /// How to reach a peer named `name` with id `id`, whose key is `fp` as
    /// far as we know (advertised, or proven in an earlier session): TLS
    /// when it has one or is known by its key, plaintext only for a peer
    /// that never offered a key (an older lantalk), and not at all then if
    /// encryption is required.
    pub async fn reach(
        &self,
        name: &str,
        id: &str,
        fp: Option<Fingerprint>,
    ) -> Result<Reach, Refusal> {
        if self.tls.is_none() {
            return Ok(Reach::Plain);
        }
        if fp.is_some() {
            return Ok(Reach::Tls);
        }
        if let Some(known) = &self.known {
            // An unreadable file counts as pinned: never fall back to clear.
            if !matches!(known.claimed(name, id).await, Ok(None)) {
                // Known by its key: never in clear, whatever the advertisement says.
                return Ok(Reach::Tls);
            }
        }
        if self.require_encryption {
            return Err(Refusal::NoKeyOffered {
                name: name.to_owned(),
            });
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
    use crate::protocol::{ErrorCode, PROTO_VERSION};

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

    fn code(e: Refusal) -> ErrorCode {
        e.code()
    }

    #[tokio::test]
    async fn a_certificate_must_prove_the_id_and_match_the_advertisement() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let key = fp(b"b");
        let tls = Transport::Tls(Some(key));
        let honest = hello("b", key.peer_id());
        let none = Expect::default();
        let liar = hello("b", fp(b"other").peer_id());
        assert_eq!(
            code(p.judge(tls, &liar, &none).await.unwrap_err()),
            ErrorCode::Untrusted
        );
        let advertised = Expect { fp: Some(fp(b"x")) };
        let e = p.judge(tls, &honest, &advertised).await.unwrap_err();
        assert!(
            e.to_string().contains("someone may be in the middle"),
            "{e}"
        );
        assert_eq!(
            p.judge(tls, &honest, &Expect { fp: Some(key) })
                .await
                .unwrap(),
            Link::Authenticated {
                fp: key,
                verified: false,
                first: true
            }
        );
        assert_eq!(
            p.judge(tls, &honest, &none).await.unwrap(),
            Link::Authenticated {
                fp: key,
                verified: false,
                first: false
            }
        );
    }

    #[tokio::test]
    async fn another_key_under_a_pinned_name_is_refused_loudly_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let (old, new) = (fp(b"old"), fp(b"new"));
        p.judge(
            Transport::Tls(Some(old)),
            &hello("b", old.peer_id()),
            &Expect::default(),
        )
        .await
        .unwrap();
        let e = p
            .judge(
                Transport::Tls(Some(new)),
                &hello("b", new.peer_id()),
                &Expect::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            e,
            Refusal::KeyChanged {
                name: "b".into(),
                pinned: old,
                presented: new
            }
        );
        // Trusted: accepted from then on.
        p.known
            .as_ref()
            .unwrap()
            .trust("b", None, false)
            .await
            .unwrap();
        assert!(
            p.judge(
                Transport::Tls(Some(new)),
                &hello("b", new.peer_id()),
                &Expect::default()
            )
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn a_name_or_id_known_by_its_key_is_never_accepted_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let key = fp(b"b");
        p.judge(
            Transport::Tls(Some(key)),
            &hello("b", key.peer_id()),
            &Expect::default(),
        )
        .await
        .unwrap();
        let none = Expect::default();
        for transport in [Transport::Plain, Transport::Tls(None)] {
            let by_name = hello("b", fp(b"z").peer_id());
            let by_name = p.judge(transport, &by_name, &none).await;
            assert_eq!(code(by_name.unwrap_err()), ErrorCode::Untrusted);
            let by_id = hello("c", key.peer_id());
            let by_id = p.judge(transport, &by_id, &none).await;
            assert_eq!(code(by_id.unwrap_err()), ErrorCode::Untrusted);
        }
        let phone = hello("phone", fp(b"p").peer_id());
        assert_eq!(
            p.judge(Transport::Tls(None), &phone, &none).await.unwrap(),
            Link::Unauthenticated
        );
        assert_eq!(
            p.judge(Transport::Plain, &phone, &none).await.unwrap(),
            Link::Plain
        );
        // Dialling: a pinned peer is reached over TLS even if it stops advertising a key.
        assert_eq!(p.reach("b", "whatever", None).await, Ok(Reach::Tls));
        assert_eq!(p.reach("x", &key.peer_id(), None).await, Ok(Reach::Tls));
        assert_eq!(
            p.reach("old", &fp(b"o").peer_id(), None).await,
            Ok(Reach::Plain)
        );
        assert_eq!(
            p.reach("new", &fp(b"n").peer_id(), Some(fp(b"n"))).await,
            Ok(Reach::Tls)
        );
        assert_eq!(p.reach_address(), Reach::TlsThenPlain);
    }

    #[tokio::test]
    async fn require_encryption_refuses_plaintext_but_not_tls_without_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), true);
        let phone = hello("phone", fp(b"p").peer_id());
        let none = Expect::default();
        let e = p.judge(Transport::Plain, &phone, &none).await.unwrap_err();
        assert_eq!(code(e), ErrorCode::EncryptionRequired);
        assert!(p.judge(Transport::Tls(None), &phone, &none).await.is_ok());
        assert_eq!(
            p.reach("old", &fp(b"o").peer_id(), None).await,
            Err(Refusal::NoKeyOffered { name: "old".into() })
        );
        assert_eq!(p.reach_address(), Reach::Tls);
    }
}
