//! Where the node's events go: to its one user (the chat screen or
//! `listen`, which gets every event and may push back), and copies to the
//! clients of the control socket (`lantalk send`, see
//! [`crate::net::control`]), each told only about the session its
//! `Connect` opened and the peer that session reached. A client is never
//! waited for: one whose queue is full is dropped, which ends its
//! connection.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::net::control::ClientId;
use crate::net::{NetEvent, SessionId};
use crate::peer::PeerId;

/// A client of the control socket, as the node knows it.
#[derive(Debug)]
struct Client {
    /// Its events.
    tx: mpsc::Sender<NetEvent>,
    /// The session being opened for its `Connect`.
    opening: Option<SessionId>,
    /// The session that `Connect` opened, once open.
    opened: Option<SessionId>,
    /// The peer it reached: its acks, waits, failures and closes are
    /// the client's business.
    peer: Option<PeerId>,
}

/// The node's event sinks.
#[derive(Debug)]
pub(super) struct Events {
    /// The node's user: every event.
    main: mpsc::Sender<NetEvent>,
    /// Control clients. A lock only so that sending takes `&self` like the
    /// channel it replaces; the node's task is the only one to take it,
    /// never across an `.await`.
    clients: Mutex<HashMap<ClientId, Client>>,
}

impl Events {
    pub(super) fn new(main: mpsc::Sender<NetEvent>) -> Self {
        Self {
            main,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The user's channel, for tasks that report on their own.
    pub(super) fn main(&self) -> mpsc::Sender<NetEvent> {
        self.main.clone()
    }

    /// Tells the user (waiting while its channel is full), and the clients
    /// the event concerns.
    pub(super) async fn send(
        &self,
        event: NetEvent,
    ) -> Result<(), mpsc::error::SendError<NetEvent>> {
        self.tee(&event);
        self.main.send(event).await
    }

    /// Copies `event` to the clients it concerns.
    fn tee(&self, event: &NetEvent) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if clients.is_empty() {
            return;
        }
        clients.retain(|_, client| {
            let concerned = match event {
                NetEvent::SessionOpened { peer, session, .. } => {
                    let ours = client.opening == Some(*session);
                    if ours {
                        client.opening = None;
                        client.opened = Some(*session);
                        client.peer = Some(peer.id.clone());
                    }
                    ours
                }
                NetEvent::Acked { peer, .. }
                | NetEvent::SessionClosed { peer, .. }
                | NetEvent::Waiting { to: peer, .. }
                | NetEvent::SendFailed { to: peer, .. } => client.peer.as_ref() == Some(peer),
                _ => false,
            };
            // Full: it does not read; closed: it is gone.
            !concerned || client.tx.try_send(event.clone()).is_ok()
        });
    }

    /// A client connected.
    pub(super) fn joined(&self, id: ClientId, tx: mpsc::Sender<NetEvent>) {
        let client = Client {
            tx,
            opening: None,
            opened: None,
            peer: None,
        };
        self.lock().insert(id, client);
    }

    /// A client left (or is unknown already): the session its `Connect`
    /// opened, if any.
    pub(super) fn left(&self, id: ClientId) -> Option<SessionId> {
        self.lock().remove(&id).and_then(|c| c.opened)
    }

    /// The session `sid` answers client `id`'s `Connect`.
    pub(super) fn opening(&self, id: ClientId, sid: SessionId) {
        if let Some(client) = self.lock().get_mut(&id) {
            client.opening = Some(sid);
        }
    }

    /// An event for client `id` only (its `Connect` failed).
    pub(super) fn to_client(&self, id: ClientId, event: NetEvent) {
        let mut clients = self.lock();
        if let Some(client) = clients.get(&id)
            && client.tx.try_send(event).is_err()
        {
            clients.remove(&id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, Client>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
