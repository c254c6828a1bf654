//! Command-line arguments (clap derive). Types only: no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other failure
  2  usage error
  3  peer not found within the timeout
  4  could not connect, or a message was not acknowledged";

/// Chat between devices on the same LAN: peers find each other by name over
/// mDNS and talk over TCP. Without a command, opens the chat screen.
#[derive(Debug, Parser)]
#[command(name = "lantalk", version = env!("LANTALK_VERSION"), after_help = EXIT_CODES)]
pub struct Cli {
    /// Options that apply to every command.
    #[command(flatten)]
    pub global: Global,
    /// Do not ring the terminal bell for messages in conversations not on screen
    #[arg(long)]
    pub no_bell: bool,
    /// What to do; without a command, the chat screen opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// Display name shown to peers, at most 63 bytes [default: the name last
    /// chosen with /name, else this machine's hostname]
    #[arg(long, global = true, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,
    /// TCP port the chat screen and `listen` listen on; 0 picks any free
    /// port [default: 7342, or a free port if 7342 is busy]. `send` does
    /// not listen and ignores it: give the peer's port in PEER (HOST:PORT)
    #[arg(long, global = true, value_name = "N")]
    pub port: Option<u16>,
    /// Use only this network interface for mDNS (repeatable)
    #[arg(long = "interface", global = true, value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// Turn mDNS discovery off: peers are reached by HOST:PORT only
    #[arg(long, global = true)]
    pub no_mdns: bool,
    /// Where the keys, known peers and history are kept [default: the
    /// platform data directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep no history: do not open or create the history database
    #[arg(long, global = true)]
    pub no_history: bool,
    /// Refuse plaintext sessions and raw text (nc); only encrypted (TLS)
    /// sessions are opened or accepted
    #[arg(long, global = true)]
    pub require_encryption: bool,
    /// Serve no web client: connections starting with an HTTP request are
    /// closed, as they were before lantalk served one
    #[arg(long, global = true)]
    pub no_web: bool,
    /// Read settings from FILE instead of config.toml in the platform config
    /// directory (~/.config/lantalk/ on Linux); flags override the file
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More logging on stderr (-v, -vv)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a message to a peer and wait until it is acknowledged
    ///
    /// The TEXT words form one message. Without TEXT, every line of standard
    /// input is a message (`tail -f log | lantalk send laptop`).
    Send {
        /// Peer name or host as found by mDNS (`laptop`, `laptop.local`), or
        /// HOST:PORT, or an IP address with or without a port (`10.0.0.2`,
        /// `::1`, `[::1]:7342`; without one, 7342) to skip discovery
        peer: String,
        /// The message; words are joined with spaces
        text: Vec<String>,
        /// Seconds to look for the peer on the network
        #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = parse_secs)]
        timeout: f64,
    },
    /// List the lantalk peers on the network
    Peers {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
        /// Seconds to browse before printing
        #[arg(long, default_value_t = 2.0, value_name = "SECS", value_parser = parse_secs)]
        timeout: f64,
    },
    /// Advertise, accept sessions and print every message received
    Listen {
        /// One JSON object per message, one per line
        #[arg(long)]
        json: bool,
        /// Print the address a phone's browser opens, and its QR code, on
        /// stderr once listening
        #[arg(long)]
        qr: bool,
        /// Let browsers without the join token in (nobody is there to
        /// accept them): anyone on the network can then chat
        #[arg(long)]
        web_open: bool,
    },
    /// Show the stored conversation with a peer, oldest first, or without
    /// PEER the conversations
    ///
    /// Lines read `YYYY-MM-DD HH:MM NAME: TEXT` (local time, the sender's
    /// clock); a text to a raw peer (which never acknowledges) ends in
    /// `(sent)`. Without PEER, one line per conversation, newest first:
    /// `YYYY-MM-DD HH:MM  NAME  KIND[, N undelivered]`. Without a history,
    /// or with no conversation with PEER, exits 3 (the known conversations
    /// are listed).
    History {
        /// The peer: its name (the latest one, case-insensitive), its peer id,
        /// or `raw IP` for a raw text peer
        peer: Option<String>,
        /// One JSON object per message (seq, peer, name, outgoing, id, ts,
        /// body, state), one per line; without PEER, one per conversation
        /// (peer, name, kind, last_ts, undelivered)
        #[arg(long)]
        json: bool,
        /// Show the newest N messages (or matches)
        #[arg(long, default_value_t = 50, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Only messages with all these words (full-text search; a word
        /// ending in `*` is a prefix)
        #[arg(long, value_name = "WORDS", allow_hyphen_values = true)]
        search: Option<String>,
    },
    /// Continue a peer's conversation with a new key (reinstalled, a new
    /// device)
    ///
    /// A peer is its key: a new key, even under a known name, is a new peer
    /// with a conversation of its own, and nothing waiting for the old key
    /// goes to it. When you know the new key is the same peer (compare the
    /// fingerprint with what its screen shows), this moves the conversation
    /// of PEER, and what waits for it, to the key FP.
    Trust {
        /// The peer whose conversation moves: its name, NAME#START (the
        /// start of its id, when several peers share a name), or its id
        peer: String,
        /// The new key: its fingerprint (64 hex characters, spaces allowed)
        #[arg(long, visible_alias = "fp", value_name = "FP")]
        fingerprint: Option<String>,
    },
    /// Show the code to compare with a peer to rule out anyone in the middle
    ///
    /// The code comes from both keys: it is the same on both screens only if
    /// each side sees the other's real key. Read it out; if PEER shows the
    /// same (`lantalk verify YOU` there, or /verify in the chat screen), run
    /// again with --yes to mark the key verified. Exits 3 for a peer whose key
    /// is not known yet (exchange a message first).
    Verify {
        /// The peer: its name, NAME#START (the start of its id, when
        /// several peers share a name), or its peer id
        peer: String,
        /// The codes matched: mark PEER's key verified
        #[arg(long)]
        yes: bool,
    },
    /// Print the address a phone's browser opens to chat, and its QR code,
    /// on stderr
    ///
    /// `http://ADDR:PORT/#t=TOKEN`, ADDR this machine's address on the LAN,
    /// PORT `--port` or 7342, and the same by its `.local` name; the token
    /// lets the browser in without asking. Starts nothing: the chat screen or
    /// `listen` must be running for the page to open.
    Web {
        /// Replace the join token first: every address shown before stops
        /// working
        #[arg(long)]
        new_token: bool,
        /// Forget every browser let in without the token (by the chat
        /// screen's Ctrl+Y or `listen --web-open`): each must bring the
        /// token or be accepted again
        #[arg(long)]
        forget_browsers: bool,
    },
    /// Print a completion script for SHELL on standard output
    ///
    /// bash: `lantalk completions bash > ~/.local/share/bash-completion/completions/lantalk`;
    /// zsh: `lantalk completions zsh > "${fpath[1]}/_lantalk"`;
    /// fish: `lantalk completions fish > ~/.config/fish/completions/lantalk.fish`
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on standard output
    ///
    /// Read it with `lantalk man | man -l -`, or install it:
    /// `lantalk man > ~/.local/share/man/man1/lantalk.1`
    Man,
}

/// A display name: what `/name` takes (an mDNS label holds 63 bytes).
pub(crate) fn parse_name(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.chars().any(char::is_control) || name.len() > 63 {
        return Err("a name is at most 63 bytes, without control characters".into());
    }
    Ok(name.to_owned())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 86400"
        )),
    }
}
