//! The commands for scripts: `send`, `peers`, `listen`, `history`, `trust`,
//! `verify` and `web`. `send` and `listen` run the one engine (`net::node`) and
//! only print what it tells them; the others read the data directory or
//! browse. Each takes the [`Options`] `main` built; prints to
//! stdout/stderr and never touches a TUI.
//!
//! stdout carries only results (received messages, peer lists); status lines
//! ("listening on port …", "phone connected") go to stderr.

mod history;
mod listen;
mod peers;
mod send;
mod trust;
mod web;

use std::fmt;
use std::time::Duration;

use anyhow::anyhow;

pub use history::history;
pub use listen::listen;
pub use peers::peers;
pub use send::send;
pub use trust::{trust, verify};
pub use web::web;

use crate::identity::Identity;
use crate::net::Discovery;
use crate::options::Options;

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

    /// Discovery failed while in use: said with its causes.
    pub(crate) fn from_discovery(e: crate::net::DiscoveryError) -> Self {
        Self::new(Exit::Other, anyhow!("{}", crate::error_chain(&e)))
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

/// Our identity for a command (see [`Options::identity`]). A data
/// directory that cannot be written is told on stderr, not fatal.
pub(crate) fn identity_of(options: &Options, listening: bool) -> anyhow::Result<Identity> {
    let me = options.identity(listening)?;
    for warning in &me.warnings {
        status!("{warning}");
    }
    Ok(me)
}

/// Starts mDNS to look for peers. Fails when it cannot work at all (say why,
/// and that `HOST:PORT` still works); a limitation (no network, one IP family
/// only) is told on stderr and the search goes on.
pub(crate) async fn start_discovery(options: &Options) -> Result<Discovery, Failure> {
    if !options.mdns {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("discovery is off (--no-mdns): give the peer as HOST:PORT"),
        ));
    }
    let discovery = Discovery::start(&options.interfaces).await.map_err(|e| {
        Failure::from_other(anyhow!(
            "{}; cannot look for peers (give the peer as HOST:PORT)",
            crate::error_chain(&e)
        ))
    })?;
    if let Some(why) = discovery.health().await.limitation() {
        status!("{why}");
    }
    Ok(discovery)
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}
