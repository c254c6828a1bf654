//! What every command runs with: the [`Options`] `main` builds from the
//! command line and the config file, and the one place that turns them
//! into our identity, the history and a [`NodeConfig`] for each way
//! lantalk runs ([`Role`]). No clap types here, and no I/O beyond opening
//! the data directory's files.

use std::path::PathBuf;

use crate::identity::{self, Identity};
use crate::net::{AckPolicy, HistoryOff, Listen, NodeConfig, Policy};
use crate::store::{Store, StoreError};

/// The settings every command shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Display name (`None`: the hostname).
    pub name: Option<String>,
    /// TCP port to listen on (`None`: 7342, or a free one if busy).
    pub port: Option<u16>,
    /// mDNS only on these interfaces (empty: all).
    pub interfaces: Vec<String>,
    /// Run mDNS discovery.
    pub mdns: bool,
    /// The data directory (`None`: the platform's).
    pub data_dir: Option<PathBuf>,
    /// Keep a history.
    pub history: bool,
    /// Refuse plaintext sessions and raw text.
    pub require_encryption: bool,
    /// Serve the web client on the listening port.
    pub web: bool,
    /// Let browsers without the join token in without asking (`listen
    /// --web-open`).
    pub web_open: bool,
}

/// A random prefix that makes the ids of this run's messages unique.
pub fn message_prefix() -> anyhow::Result<String> {
    identity::random_hex::<8>()
}

/// The ways lantalk runs a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The chat screen: listens, advertises and browses, shows history.
    Chat,
    /// `lantalk listen`: listens and advertises; acknowledges what it
    /// stored, or without history what it printed.
    Listen,
    /// `lantalk send`: connects out only.
    Send,
}

impl Options {
    /// The web client for a node listening as `me`.
    fn web_server(
        &self,
        me: &Identity,
        role: Role,
        history: &Result<Store, HistoryOff>,
    ) -> anyhow::Result<crate::net::Http> {
        let config = crate::web::Config {
            dir: me.dir.clone(),
            name: me.hello.name.clone(),
            fingerprint: me.keys.fingerprint.grouped(),
            history: history.as_ref().ok().cloned(),
            // Nobody is there to accept a browser without the token.
            open: role == Role::Listen && self.web_open,
            // The chat screen's user answers them.
            ask: role == Role::Chat,
        };
        Ok(std::sync::Arc::new(crate::web::Server::new(config)?))
    }

    /// Our identity: `--name`, and the keys of the data directory, which
    /// `listening` also locks for as long as the identity is held.
    pub fn identity(&self, listening: bool) -> anyhow::Result<Identity> {
        Identity::load(self.name.as_deref(), self.data_dir.as_deref(), listening)
    }

    /// The data directory, without loading anything from it.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        identity::data_dir(self.data_dir.as_deref())
    }

    /// Opens (creating it if needed) the history database in `dir`, unless
    /// history is off (`Ok(None)`).
    pub fn open_history(&self, dir: &std::path::Path) -> Result<Option<Store>, StoreError> {
        if !self.history {
            return Ok(None);
        }
        Store::open(dir).map(Some)
    }

    /// The node for `role`, running as `me` with `history`.
    pub fn node(
        &self,
        me: &Identity,
        role: Role,
        history: Result<Store, HistoryOff>,
    ) -> anyhow::Result<NodeConfig> {
        // Without history, printing is all `listen` keeps of a text.
        let acks = match role {
            Role::Listen if history.is_err() => AckPolicy::Consumer,
            _ => AckPolicy::Stored,
        };
        Ok(NodeConfig {
            hello: me.hello.clone(),
            listen: match role {
                Role::Send => Listen::Off,
                Role::Chat | Role::Listen => Listen::Port(self.port),
            },
            mdns: self.mdns && role != Role::Send,
            browse: role == Role::Chat,
            interfaces: self.interfaces.clone(),
            host: identity::hostname_label().unwrap_or_else(|| me.hello.name.clone()),
            policy: Policy::of(me, self.require_encryption)?,
            acks,
            show_history: role == Role::Chat,
            // The lantalk holding the directory serves `send`s run on it.
            control: (role != Role::Send && me.holds_lock())
                .then(|| me.dir.join(crate::net::control::SOCKET)),
            http: match role {
                Role::Chat | Role::Listen if self.web => Some(self.web_server(me, role, &history)?),
                _ => None,
            },
            history,
        })
    }
}
