//! lantalk: a terminal chat between devices on the same LAN.
//!
//! Peers find each other with mDNS (`_lantalk._tcp.local.`) and talk over TCP
//! with length-prefixed JSON frames (see `assets/PROTOCOL.md`).
//!
//! # Layout
//!
//! ```text
//! main.rs      thin: parse arguments, set up logging, build the options, run one
//!              command or the chat screen, map errors to exit codes
//! cli.rs       clap argument types only
//! config.rs    the config file: finding, parsing, filling in what the flags left out
//! options.rs   what every command runs with: identity, history and the node's
//!              configuration for the chat screen, `listen` and `send`
//! tui.rs       the only owner of the terminal and of the interactive event loop;
//!              keeps the drafts between runs
//! app/         TUI state and update(): pure, no tokio, no clocks
//! ui/          drawing from &App only, one file per pane
//! headless/    the `send`, `peers`, `listen`, `history`, `web` commands and
//!              `trust`/`verify` (one file each); `send` and `listen` only drive the node
//! net/         api.rs: the engine's surface (NetCommand, NetEvent), plain data
//!              node/: the one engine (sessions, delivery and retries, acks, history,
//!              dialling, trust), shared by the chat screen, `listen` and `send`
//!              listener (connection caps), TLS (the only module configuring rustls),
//!              sessions (heartbeat, deadlines), raw text sessions, dialling, the
//!              policy (who is trusted), discovery (the only module naming mdns_sd),
//!              duplicate detection, control (the data directory's Unix socket
//!              through which `send` drives the running lantalk's node)
//! peer.rs      who a peer is: PeerId, PeerKind and what each kind can do, and where
//!              (an address typed without a port means port 7342) (plain data)
//! protocol/    wire format: messages, codec, handshake rules, refusals, fingerprints and
//!              the verification code (no sockets)
//! identity.rs  who we are: display name, key pair and certificate in the data directory
//! files.rs     private files in the data directory: 0700 directory, 0600 files, no
//!              writes through symbolic links, atomic replacement (std only)
//! trust.rs     whom we know: every key met (a peer; its name only a label), owned by
//!              one thread
//! store/       history and outbox in SQLite (the only module naming rusqlite); plain data types
//! sanitize.rs  making peers' text safe to print on a terminal
//! web/         the web client for phones' browsers (HTTP, the page, its WebSocket, the
//!              join token, the address a phone opens and its QR code); the only
//!              module naming the HTTP stack
//! ```
//!
//! # Dependency rule
//!
//! A module may use only the modules its row names (and the items at the
//! crate's root: `status!`, [`error_chain`]); `tests/layering.rs` checks
//! every `crate::` path outside test code against this table.
//!
//! | module | may use |
//! |---|---|
//! | `main` | `cli`, `config`, `options`, `tui`, `headless`, `net`, `sanitize`, `files` |
//! | `cli` | |
//! | `config` | `cli`, `app` |
//! | `options` | `identity`, `net`, `store`, `web` |
//! | `tui` | `app`, `ui`, `net`, `identity`, `peer`, `files`, `web` |
//! | `ui` | `app`, `peer`, `sanitize` |
//! | `app` | `net`, `peer`, `protocol`, `store`, `sanitize` |
//! | `headless` | `options`, `net`, `peer`, `protocol`, `identity`, `store`, `trust`, `sanitize`, `web` |
//! | `net` | `protocol`, `peer`, `store`, `trust`, `identity` |
//! | `store` | `protocol`, `peer`, `files` |
//! | `trust` | `protocol`, `files` |
//! | `identity` | `protocol`, `files` |
//! | `peer` | |
//! | `protocol` | |
//! | `sanitize` | |
//! | `files` | |
//! | `web` | `files`, `net`, `peer`, `protocol`, `store` |
//!
//! `app` takes from `net` only plain data (the types of `net::api`, `Link`,
//! `CloseReason`); `config` takes from `app` only its `Theme`; `tui` takes
//! from `identity` only `save_name` (what `/name` chose is kept),
//! from `files` only the private writing of the drafts it keeps, and
//! from `web` only the address a phone opens and its QR code (`/qr`;
//! `headless` likewise, for `lantalk web` and `listen --qr`, and the
//! browsers remembered, for `lantalk web --forget-browsers`).
#![forbid(unsafe_code)]

/// Prints a status line on stderr, prefixed with `lantalk: `. A closed or full
/// stderr is ignored (`eprintln!` would panic): a status line is never worth
/// dying for.
#[macro_export]
macro_rules! status {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), "lantalk: {}", ::std::format_args!($($arg)*));
    }};
}

/// An error and its causes on one line, `what: why: deeper why`, for
/// people (what `{:#}` prints for an `anyhow::Error`).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        // A wrapper that already quotes its cause is not repeated.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

pub mod app;
pub mod cli;
pub mod config;
pub mod files;
pub mod headless;
pub mod identity;
pub mod net;
pub mod options;
pub mod peer;
pub mod protocol;
pub mod sanitize;
pub mod store;
pub mod trust;
pub mod tui;
pub mod ui;
pub mod web;
