//! Whom a session is with, and whether to go on with it: the rules of
//! PROTOCOL.md section 9 applied once both `hello`s are known.
//!
//! - A peer is its key. A certificate proves an id: the `hello` id must be
//!   the one derived from the fingerprint of the certificate presented.
//! - A dialled peer that advertised `fp=` must present exactly that key.
//! - A key met for the first time is remembered as a new peer, whatever
//!   name it gives: a name is a label, several keys may share one.
//! - An id whose key is known is never accepted without that key
//!   (plaintext, or TLS without a certificate): no downgrade.
//! - With `require_encryption`, plaintext sessions are refused.
//!
//! Refusals are [`Refusal`] values; the known peers are asked through their
//! owning thread, so judging never blocks the runtime.

use std::net::SocketAddr;

use crate::protocol::{Fingerprint, Hello, Refusal};
use crate::trust::{KnownPeers, Met, Pin};

use super::stream::Transport;
use super::tls::Tls;

/// How this side secures its sessions and judges peers.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Our TLS configuration; `None` speaks only plaintext (tests of
    /// the plaintext protocol, benchmarks).
    pub tls: Option<Tls>,
    /// The keys met; `None` remembers nothing (no data directory).
    pub known: Option<KnownPeers>,
    /// Refuse plaintext and raw sessions.
    pub require_encryption: bool,
}

/// What the dialling side knows of the peer before connecting (all
/// default for a session that came to us).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// The key the peer must present: the one its live advertisement
    /// carries (TXT `fp=`).
    pub fp: Option<Fingerprint>,
    /// We dialled it (the address is remembered with its key).
    pub dialled: bool,
}

/// How an open session is protected and its peer known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Link {
    /// TLS; the peer proved it holds the key of this fingerprint, which
    /// its id is derived from.
    Authenticated {
        /// The peer's certificate fingerprint.
        fp: Fingerprint,
        /// The people compared the verification code for this key.
        verified: bool,
        /// Met just now: the first session with this key.
        first: bool,
    },
    /// TLS, but the client presented no certificate (a script without a
    /// key): private on the wire, the id it claims unproven.
    Unauthenticated,
    /// In clear: the framed protocol, or raw lines of text (`nc`).
    Plain,
}

impl Link {
    /// Whether the session is encrypted.
    pub fn encrypted(&self) -> bool {
        matches!(self, Self::Authenticated { .. } | Self::Unauthenticated)
    }

    /// Whether the peer proved the key its id comes from: only such a
    /// session is given texts that were waiting for that id.
    pub fn proves_id(&self) -> bool {
        matches!(self, Self::Authenticated { .. })
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
    /// A policy that speaks TLS with `tls` and remembers keys in `known`.
    pub fn new(tls: Tls, known: KnownPeers, require_encryption: bool) -> Self {
        Self {
            tls: Some(tls),
            known: Some(known),
            require_encryption,
        }
    }

    /// The policy of `me`: TLS with its keys, the keys met kept in its data
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

    /// Plaintext only, remembering nothing: for tests and benchmarks of the
    /// framed protocol itself.
    pub fn plaintext() -> Self {
        Self {
            tls: None,
            known: None,
            require_encryption: false,
        }
    }

    /// Judges the peer's `hello` on a connection carried by `transport`,
    /// with the peer at `addr`.
    pub async fn judge(
        &self,
        transport: Transport,
        hello: &Hello,
        expect: &Expect,
        addr: SocketAddr,
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
            self.no_key_claim(hello, expect.dialled && link == Link::Plain)
                .await?;
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
        let met = if expect.dialled {
            Met::Dialled(addr)
        } else {
            Met::Inbound
        };
        match known.pin(&hello.name, fp, met).await {
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
            Err(e) => Err(unusable(&hello.name, &e)),
        }
    }

    /// A peer without a certificate may not claim an id whose key is known;
    /// one we dialled that answered in clear (`plain_dialled`: an address
    /// typed by hand that closed on our TLS hello, or an advert without a
    /// key) may not even use the name of a peer known by its key: what we
    /// meant to reach there would have had that key.
    async fn no_key_claim(&self, hello: &Hello, plain_dialled: bool) -> Result<(), Refusal> {
        let Some(known) = &self.known else {
            return Ok(());
        };
        let claimed = match known.by_id(&hello.id).await {
            Err(e) => return Err(unusable(&hello.name, &e)),
            Ok(found) => found,
        };
        let claimed = match claimed {
            Some(k) => Some(k),
            None if plain_dialled => match known.named(&hello.name).await {
                Err(e) => return Err(unusable(&hello.name, &e)),
                Ok(keys) => keys.into_iter().find(|k| k.replaced_by.is_none()),
            },
            None => None,
        };
        match claimed {
            Some(k) => Err(Refusal::KeyClaimed {
                name: hello.name.clone(),
                pinned_name: k.name,
                pinned: k.fp,
            }),
            None => Ok(()),
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
    /// TLS, and plaintext only if the peer behaves as a lantalk from before
    /// TLS (it closes the connection on a TLS hello without a word): an
    /// address typed by hand where no key was ever reached.
    TlsThenPlain,
}

impl Policy {
    /// How to reach the peer `name` with id `id`, whose key is `fp` as far
    /// as we know (advertised): TLS when it offers one or its key is known,
    /// plaintext only for a peer that never offered a key (an older
    /// lantalk), and not at all then if encryption is required.
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
            // An unreadable file counts as known: never fall back to clear.
            if !matches!(known.by_id(id).await, Ok(None)) {
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

    /// How to reach an address typed by hand: TLS, falling back to
    /// plaintext only where no key was ever reached at any of `addrs`.
    pub async fn reach_address(&self, addrs: &[SocketAddr]) -> Reach {
        match (&self.tls, self.require_encryption) {
            (None, _) => return Reach::Plain,
            (Some(_), true) => return Reach::Tls,
            (Some(_), false) => {}
        }
        if let Some(known) = &self.known {
            for addr in addrs {
                // An unreadable file counts as known: never fall back to clear.
                if !matches!(known.reached_at(*addr).await, Ok(None)) {
                    return Reach::Tls;
                }
            }
        }
        Reach::TlsThenPlain
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

    const ADDR: SocketAddr = SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
        7342,
    );

    fn dialled(fp: Option<Fingerprint>) -> Expect {
        Expect { fp, dialled: true }
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
            code(p.judge(tls, &liar, &none, ADDR).await.unwrap_err()),
            ErrorCode::Untrusted
        );
        let e = p
            .judge(tls, &honest, &dialled(Some(fp(b"x"))), ADDR)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("someone may be in the middle"),
            "{e}"
        );
        assert_eq!(
            p.judge(tls, &honest, &dialled(Some(key)), ADDR)
                .await
                .unwrap(),
            Link::Authenticated {
                fp: key,
                verified: false,
                first: true
            }
        );
        assert_eq!(
            p.judge(tls, &honest, &none, ADDR).await.unwrap(),
            Link::Authenticated {
                fp: key,
                verified: false,
                first: false
            }
        );
    }

    /// Another key under a known name is another peer, met for the first
    /// time: not refused, and not taken for the first.
    #[tokio::test]
    async fn a_new_key_under_a_known_name_is_a_new_peer() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let (old, new) = (fp(b"old"), fp(b"new"));
        let none = Expect::default();
        for (key, first) in [(old, true), (new, true), (old, false)] {
            let link = p
                .judge(
                    Transport::Tls(Some(key)),
                    &hello("b", key.peer_id()),
                    &none,
                    ADDR,
                )
                .await
                .unwrap();
            assert_eq!(
                link,
                Link::Authenticated {
                    fp: key,
                    verified: false,
                    first
                }
            );
        }
    }

    #[tokio::test]
    async fn an_id_known_by_its_key_is_never_accepted_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let key = fp(b"b");
        p.judge(
            Transport::Tls(Some(key)),
            &hello("b", key.peer_id()),
            &Expect::default(),
            ADDR,
        )
        .await
        .unwrap();
        let none = Expect::default();
        for transport in [Transport::Plain, Transport::Tls(None)] {
            let by_id = hello("c", key.peer_id());
            let by_id = p.judge(transport, &by_id, &none, ADDR).await;
            assert_eq!(code(by_id.unwrap_err()), ErrorCode::Untrusted);
            // The name alone is a label: another peer may use it.
            let by_name = hello("b", fp(b"z").peer_id());
            assert!(p.judge(transport, &by_name, &none, ADDR).await.is_ok());
        }
        let phone = hello("phone", fp(b"p").peer_id());
        assert_eq!(
            p.judge(Transport::Tls(None), &phone, &none, ADDR)
                .await
                .unwrap(),
            Link::Unauthenticated
        );
        assert_eq!(
            p.judge(Transport::Plain, &phone, &none, ADDR)
                .await
                .unwrap(),
            Link::Plain
        );
        // Dialling: a known id is reached over TLS even without an advertised key.
        assert_eq!(p.reach("x", &key.peer_id(), None).await, Ok(Reach::Tls));
        assert_eq!(
            p.reach("old", &fp(b"o").peer_id(), None).await,
            Ok(Reach::Plain)
        );
        assert_eq!(
            p.reach("new", &fp(b"n").peer_id(), Some(fp(b"n"))).await,
            Ok(Reach::Tls)
        );
    }

    /// An address where a key was reached is never tried in clear again.
    #[tokio::test]
    async fn an_address_that_answered_with_a_key_is_never_tried_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        assert_eq!(p.reach_address(&[ADDR]).await, Reach::TlsThenPlain);
        let key = fp(b"b");
        p.judge(
            Transport::Tls(Some(key)),
            &hello("b", key.peer_id()),
            &dialled(None),
            ADDR,
        )
        .await
        .unwrap();
        assert_eq!(p.reach_address(&[ADDR]).await, Reach::Tls);
        let other: SocketAddr = "10.0.0.9:7342".parse().unwrap();
        assert_eq!(p.reach_address(&[other, ADDR]).await, Reach::Tls);
        assert_eq!(p.reach_address(&[other]).await, Reach::TlsThenPlain);
    }

    /// What answers in clear where we dialled may not go by the name of a
    /// peer known by its key (a relay that kills TLS and renames the
    /// hellos); coming to us in clear, that name is only a label.
    #[tokio::test]
    async fn a_plaintext_answer_to_our_dial_may_not_use_a_name_known_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        let key = fp(b"b");
        let b = hello("b", key.peer_id());
        p.judge(Transport::Tls(Some(key)), &b, &Expect::default(), ADDR)
            .await
            .unwrap();
        let renamed = hello("B", fp(b"relay").peer_id());
        let e = p
            .judge(Transport::Plain, &renamed, &dialled(None), ADDR)
            .await
            .unwrap_err();
        assert!(matches!(e, Refusal::KeyClaimed { .. }), "{e}");
        assert_eq!(
            p.judge(Transport::Plain, &renamed, &Expect::default(), ADDR)
                .await
                .unwrap(),
            Link::Plain
        );
        let stranger = hello("old", fp(b"old").peer_id());
        assert_eq!(
            p.judge(Transport::Plain, &stranger, &dialled(None), ADDR)
                .await
                .unwrap(),
            Link::Plain
        );
    }

    #[tokio::test]
    async fn require_encryption_refuses_plaintext_but_not_tls_without_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), true);
        let phone = hello("phone", fp(b"p").peer_id());
        let none = Expect::default();
        let e = p
            .judge(Transport::Plain, &phone, &none, ADDR)
            .await
            .unwrap_err();
        assert_eq!(code(e), ErrorCode::EncryptionRequired);
        assert!(
            p.judge(Transport::Tls(None), &phone, &none, ADDR)
                .await
                .is_ok()
        );
        assert_eq!(
            p.reach("old", &fp(b"o").peer_id(), None).await,
            Err(Refusal::NoKeyOffered { name: "old".into() })
        );
        assert_eq!(p.reach_address(&[ADDR]).await, Reach::Tls);
    }
}
