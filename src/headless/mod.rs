//! The commands for scripts: `send`, `peers` and `listen`. Built on
//! [`crate::net`]; prints to stdout/stderr and never touches a TUI.
//!
//! stdout carries only results (received messages, peer lists); status lines
//! ("listening on port …", "phone connected") go to stderr.

mod listen;
mod peers;
mod send;

use std::fmt;
use std::time::Duration;

use anyhow::anyhow;

use crate::cli::{Cli, Command, Global};
use crate::identity;
use crate::net::Discovery;
use crate::protocol::{Hello, PROTO_VERSION};

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

/// Runs the command line. `listen` is the default command.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let global = cli.global;
    match cli.command.unwrap_or(Command::Listen { json: false }) {
        Command::Send {
            peer,
            text,
            timeout,
        } => send::send(&global, &peer, text, Duration::from_secs_f64(timeout)).await,
        Command::Peers { json, timeout } => {
            peers::peers(&global, json, Duration::from_secs_f64(timeout)).await
        }
        Command::Listen { json } => listen::listen(&global, json).await,
    }
}

/// Our `hello`, with the display name and the id from the data directory.
pub(crate) fn our_hello(global: &Global) -> anyhow::Result<Hello> {
    let dir = identity::data_dir(global.data_dir.as_deref())?;
    hello_from(global, &dir)
}

fn hello_from(global: &Global, dir: &std::path::Path) -> anyhow::Result<Hello> {
    let id = identity::load_or_create_id(dir)?;
    Ok(Hello {
        proto: PROTO_VERSION,
        id,
        name: identity::display_name(global.name.as_deref()),
        app: concat!("lantalk/", env!("CARGO_PKG_VERSION")).to_owned(),
    })
}

/// Like [`our_hello`], for a process that will be reachable under this
/// identity: also locks the data directory (held while the file is open).
pub(crate) fn listening_identity(global: &Global) -> anyhow::Result<(Hello, std::fs::File)> {
    let dir = identity::data_dir(global.data_dir.as_deref())?;
    let lock = identity::lock_data_dir(&dir)?;
    Ok((hello_from(global, &dir)?, lock))
}

pub(crate) fn start_discovery(global: &Global) -> Result<Discovery, Failure> {
    if global.no_mdns {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!("discovery is off (--no-mdns): give the peer as HOST:PORT"),
        ));
    }
    Discovery::start(&global.interfaces).map_err(Failure::from_other)
}

impl Failure {
    pub(crate) fn from_other(e: impl Into<anyhow::Error>) -> Self {
        Self::new(Exit::Other, e)
    }
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}
