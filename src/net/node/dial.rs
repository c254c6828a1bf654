//! Opening sessions: to a peer whose texts wait (at its advertised or last
//! addresses, over TLS whenever its key is known), to a target the user
//! gave (`/connect`, `lantalk send ADDR`), and the retries while a peer
//! cannot be reached. Each dial runs on a task of its own and reports back
//! as a [`Dialled`].

use std::net::SocketAddr;

use tokio::time::Instant;

use super::Node;
use crate::net::{DialError, Expect, Handshaken, NetEvent, Target, dial, next_session_id};
use crate::peer::{PeerId, PeerKind};

/// What a dial was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Deliver the texts waiting for this peer: whoever answers must be it.
    Deliver(PeerId),
    /// The user asked for a session (answered with `SessionOpened` or
    /// `ConnectFailed`), or a control client did (answered to it alone).
    Connect(Option<crate::net::control::ClientId>),
}

/// The outcome of a dial.
pub(super) struct Dialled {
    purpose: Purpose,
    /// What was dialled, for messages.
    target: String,
    /// The addresses tried.
    addrs: Vec<SocketAddr>,
    result: Result<Handshaken, DialError>,
}

impl Node {
    /// Dials a peer by id if we know where it might be and no dial is
    /// already under way. Returns false when there is no address to try
    /// (or it cannot be dialled at all).
    pub(super) fn dial_peer(&mut self, id: &PeerId) -> bool {
        let Some(state) = self.peers.get_mut(id) else {
            return false;
        };
        if !state.kind.capabilities().dialable {
            return false;
        }
        if state.dialling {
            return true;
        }
        let advert = state.advert.clone();
        let advert = advert.as_ref();
        let addrs = advert.map_or_else(|| state.addrs.clone(), |a| a.addrs.clone());
        if addrs.is_empty() {
            return false;
        }
        state.dialling = true;
        // The name its pin is under: the one it chose (TXT nick), else the
        // one it last gave.
        let nick = advert
            .map(|a| a.nick.clone())
            .or_else(|| state.name.clone())
            .unwrap_or_default();
        let target = advert
            .map(|a| a.name.clone())
            .unwrap_or_else(|| id.to_string());
        // TLS whenever its key is known; that key required only while the
        // advertisement is live (see `Expect`).
        let fp = state.fp;
        let expect = Expect {
            fp: advert.and_then(|a| a.fp),
            dialled: true,
        };
        self.spawn_dial(
            Purpose::Deliver(id.clone()),
            target,
            addrs,
            nick,
            id,
            fp,
            expect,
        );
        true
    }

    /// Dials `addrs` for `purpose`: TLS or plaintext as the policy says for
    /// a peer named `nick` with id `id` and key `fp`.
    #[allow(clippy::too_many_arguments)]
    fn spawn_dial(
        &self,
        purpose: Purpose,
        target: String,
        addrs: Vec<SocketAddr>,
        nick: String,
        id: &PeerId,
        fp: Option<crate::protocol::Fingerprint>,
        expect: Expect,
    ) {
        let hello = self.hello.clone();
        let policy = self.policy.clone();
        let tx = self.dial_tx.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let result = match policy.reach(&nick, &id, fp).await {
                Ok(reach) => dial(&addrs, &hello, &policy, &expect, reach).await,
                Err(refusal) => Err(DialError::Forbidden(refusal)),
            };
            let _ = tx
                .send(Dialled {
                    purpose,
                    target,
                    addrs,
                    result,
                })
                .await;
        });
    }

    /// [`NetCommand::Connect`](crate::net::NetCommand::Connect).
    pub(super) fn connect(&mut self, target: Target, purpose: Purpose) {
        match target {
            Target::Discovered(peer) => {
                let id = PeerId::new(peer.id.clone());
                let state = self.peers.entry(&id, PeerKind::Lantalk);
                state.addrs = peer.addrs.clone();
                if peer.fp.is_some() {
                    state.fp = peer.fp;
                }
                let fp = state.fp;
                state.advert = Some(*peer.clone());
                let expect = Expect {
                    fp: peer.fp,
                    dialled: true,
                };
                self.spawn_dial(
                    purpose,
                    peer.name.clone(),
                    peer.addrs.clone(),
                    peer.nick.clone(),
                    &id,
                    fp,
                    expect,
                );
            }
            Target::Addrs { label, addrs } => self.dial_address(label, Some(addrs), purpose),
            Target::Address(text) => self.dial_address(text, None, purpose),
        }
    }

    /// An address typed by hand (resolved here when `addrs` is `None`):
    /// nothing says what is there, so nothing is expected of it.
    fn dial_address(&self, target: String, addrs: Option<Vec<SocketAddr>>, purpose: Purpose) {
        let hello = self.hello.clone();
        let policy = self.policy.clone();
        let tx = self.dial_tx.clone();
        tokio::spawn(async move {
            let addrs = match addrs {
                Some(addrs) => Ok(addrs),
                None => tokio::net::lookup_host(target.as_str())
                    .await
                    .map(Iterator::collect)
                    .map_err(|e| DialError::NotDialled(format!("cannot resolve {target}: {e}"))),
            };
            let (addrs, result) = match addrs {
                Ok(addrs) => {
                    let reach = policy.reach_address(&addrs).await;
                    let expect = Expect {
                        fp: None,
                        dialled: true,
                    };
                    let result = dial(&addrs, &hello, &policy, &expect, reach).await;
                    (addrs, result)
                }
                Err(e) => (Vec::new(), Err(e)),
            };
            let _ = tx
                .send(Dialled {
                    purpose,
                    target,
                    addrs,
                    result,
                })
                .await;
        });
    }

    /// A dial ended: the session starts (its `Opened` event sends what
    /// waits), or the failure is told.
    pub(super) async fn dialled(&mut self, dialled: Dialled) {
        if let Purpose::Deliver(id) = &dialled.purpose
            && let Some(state) = self.peers.get_mut(id)
        {
            state.dialling = false;
        }
        match dialled.result {
            Ok(session) => {
                let got = PeerId::new(session.peer.id.clone());
                if let Purpose::Deliver(expected) = &dialled.purpose
                    && *expected != got
                {
                    // Someone else answers at that address now: do not hand
                    // them our texts; they wait for the right peer.
                    let why = format!("{} answered as another peer", dialled.target);
                    self.unreachable(expected.clone(), why).await;
                }
                // Where to retry if this session drops (also for a target
                // discovery may never report).
                self.peers.entry(&got, PeerKind::Lantalk).addrs = dialled.addrs;
                let sid = next_session_id();
                if let Purpose::Connect(Some(client)) = dialled.purpose {
                    self.events.opening(client, sid);
                }
                session.start(sid, self.session_tx.clone());
                // Waiting texts go out when the session's Opened event arrives.
            }
            Err(error) => {
                let refusal = match &error {
                    DialError::Handshake(crate::protocol::ProtocolError::Refused(r)) => {
                        Some(r.clone())
                    }
                    _ => None,
                };
                let reason = match &refusal {
                    Some(refusal) => {
                        let event = NetEvent::Refused {
                            addr: None,
                            refusal: refusal.clone(),
                        };
                        let _ = self.events.send(event).await;
                        // The warning says it all, with both keys.
                        "refused for its key (see the warning)".to_owned()
                    }
                    None => error.to_string(),
                };
                match dialled.purpose {
                    Purpose::Deliver(id) => {
                        self.verify_advert(&id);
                        self.unreachable(id, reason).await;
                    }
                    Purpose::Connect(None) => {
                        let event = NetEvent::ConnectFailed {
                            target: dialled.target,
                            reason,
                            refusal,
                        };
                        let _ = self.events.send(event).await;
                    }
                    Purpose::Connect(Some(client)) => {
                        // The refusal does not cross the socket: its words do.
                        let reason = refusal.as_ref().map_or(reason, ToString::to_string);
                        let event = NetEvent::ConnectFailed {
                            target: dialled.target,
                            reason,
                            refusal,
                        };
                        self.events.to_client(client, event);
                    }
                }
            }
        }
    }

    /// Asks discovery whether the peer is still there (it did not answer,
    /// or it left without a goodbye), so the list does not wait for the TTL.
    pub(super) fn verify_advert(&self, id: &PeerId) {
        if let (Some(discovery), Some(advert)) = (
            &self.discovery,
            self.peers.get(id).and_then(|p| p.advert.as_ref()),
        ) {
            discovery.verify(advert);
        }
    }

    /// The peer could not be reached: its texts wait, and a retry is scheduled.
    pub(super) async fn unreachable(&mut self, id: PeerId, reason: String) {
        let Some(state) = self.peers.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        if let Some(ids) = state.out.unreachable(now) {
            let reason = format!("waiting: {reason}; retrying");
            let retry_in = state.out.retry_at().map(|at| at - now);
            let event = NetEvent::Waiting {
                to: id,
                ids,
                reason,
                retry_in,
            };
            let _ = self.events.send(event).await;
        }
    }

    /// Dials every peer whose retry is due.
    pub(super) fn retry_due(&mut self) {
        for id in self.peers.due(Instant::now()) {
            let open = self.peers.get(&id).is_some_and(|p| !p.sessions.is_empty());
            if !open {
                self.dial_peer(&id);
            }
        }
    }
}
