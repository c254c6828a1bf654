//! The commands for scripts: `send`, `peers`, `listen` and `history`. Built
//! on [`crate::net`] and [`crate::store`]; prints to stdout/stderr and never
//! touches a TUI.
//!
//! stdout carries only results (received messages, peer lists); status lines
//! ("listening on port …", "phone connected") go to stderr.

mod history;
mod listen;
mod peers;
mod send;
mod trust;

use std::fmt;
use std::time::Duration;

use anyhow::anyhow;

use crate::cli::{Command, Global};
use crate::identity::Identity;
use crate::net::{Discovery, DiscoveryError};

/// The exit status a failure maps to (documented in `--help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything not covered below.
    Other = 1,
    /// 2: the command line was wrong.
    Usage = 2,
    /// 3: the peer was not found on the network within the timeout.
    NotFound = 3,
    /// 4: could not connect, or a message was not acknowledged.
    Delivery = 4,
}

/// A failure of a command: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// Exit status class.
    pub exit: Exit,
    /// What went wrong, with its causes.
    pub error: anyhow::Error,
}

impl Failure {
    pub(crate) fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit,
            error: error.into(),
        }
    }

    pub(crate) fn from_other(e: impl Into<anyhow::Error>) -> Self {
        Self::new(Exit::Other, e)
    }

    /// Discovery failed while in use. Its text alone: it already ends with
    /// its source (mdns-sd's error), which `{:#}` would print a second time.
    pub(crate) fn from_discovery(e: DiscoveryError) -> Self {
        Self::new(Exit::Other, anyhow!("{e}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::new(Exit::Other, error)
    }
}

/// Runs a headless command.
pub async fn run(global: Global, command: Command) -> Result<(), Failure> {
    match command {
        Command::Send {
            peer,
            text,
            timeout,
        } => send::send(&global, &peer, text, Duration::from_secs_f64(timeout)).await,
        Command::Peers { json, timeout } => {
            peers::peers(&global, json, Duration::from_secs_f64(timeout)).await
        }
        Command::Listen { json } => listen::listen(&global, json).await,
        Command::History {
            peer,
            json,
            limit,
            search,
        } => history::history(&global, &peer, json, limit as usize, search).await,
        Command::Trust {
            peer,
            fingerprint,
            also,
        } => trust::trust(&global, &peer, fingerprint.as_deref(), also).await,
        Command::Verify { peer, yes } => trust::verify(&global, &peer, yes),
    }
}

/// Our identity for a command: `--name`, and the id from `--data-dir`.
/// `listening` also locks the data directory for as long as it is held. A
/// data directory that cannot be written is told on stderr, not fatal.
pub(crate) fn identity_of(global: &Global, listening: bool) -> anyhow::Result<Identity> {
    let me = Identity::load(
        global.name.as_deref(),
        global.data_dir.as_deref(),
        listening,
    )?;
    if let Some(warning) = &me.warning {
        status!("{warning}");
    }
    Ok(me)
}

/// Starts mDNS to look for peers. Fails when it cannot work at all (say why,
/// and that `HOST:PORT` still works); a limitation (no network, one IP family
/// only) is told on stderr and the search goes on.
pub(crate) async fn start_discovery(global: &Global) -> Result<Discovery, Failure> {
    if global.no_mdns {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("discovery is off (--no-mdns): give the peer as HOST:PORT"),
        ));
    }
    let discovery = Discovery::start(&global.interfaces).await.map_err(|e| {
        Failure::from_other(anyhow!(
            "{e}; cannot look for peers (give the peer as HOST:PORT)"
        ))
    })?;
    if let Some(why) = discovery.health().await.limitation() {
        status!("{why}");
    }
    Ok(discovery)
}

/// For `listen`: tells on stderr what limits discovery now (no network, one
/// IP family only), and then each time that changes, while the runtime runs.
pub(crate) async fn report_discovery(discovery: &Discovery, port: u16) {
    let direct = format!("peers can still connect to port {port} directly");
    if let Some(why) = discovery.health().await.limitation() {
        status!("{why}; {direct}");
    }
    let Ok(mut changes) = discovery.health_changes() else {
        return;
    };
    tokio::spawn(async move {
        while let Some(health) = changes.recv().await {
            match health.limitation() {
                Some(why) => status!("{why}; {direct}"),
                None => status!("mDNS: the network is up; discovery is on"),
            }
        }
    });
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}
