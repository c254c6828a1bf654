//! The `lantalk` binary: parse arguments, set up logging, run the chat screen
//! or a headless command, map the outcome to an exit code (see `--help`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory as _, Parser};
use lantalk::cli::{Cli, Command, Global};
use lantalk::config::{self, Config};
use lantalk::headless::{self, Exit, Failure};
use lantalk::net::HistoryOff;
use lantalk::options::{Options, Role};
use lantalk::status;
use lantalk::tui::{self, TuiConfig};

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    // Generated from the argument types alone: no config, no runtime.
    match cli.command {
        Some(Command::Completions { shell }) => {
            return print_generated(|out| {
                clap_complete::generate(shell, &mut Cli::command(), "lantalk", out);
                Ok(())
            });
        }
        Some(Command::Man) => {
            return print_generated(|out| clap_mangen::Man::new(Cli::command()).render(out));
        }
        _ => {}
    }
    // Flags > config file > built-in defaults.
    let config = match config::load(cli.global.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            status!("{}", lantalk::sanitize::one_line(&e.to_string(), 400));
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    config.fill(&mut cli.global);
    let options = options(&cli.global);
    // One thread runs every task: a chat moves little data, and hand-offs
    // between worker threads cost more wake-ups and latency than they save.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            status!("cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Other as u8);
        }
    };
    let result = match cli.command {
        Some(command) => {
            init_logging(cli.global.verbose, None);
            runtime.block_on(run(&options, command))
        }
        None => runtime.block_on(chat_screen(
            &options,
            cli.global.verbose,
            !cli.no_bell,
            &config,
        )),
    };
    // A blocked read of stdin must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // A failure can quote a peer (its error message, its name):
            // never let that reach the terminal raw.
            status!("{}", lantalk::sanitize::one_line(&failure.to_string(), 800));
            ExitCode::from(failure.exit as u8)
        }
    }
}

/// Writes what `generate` makes (a completion script, the manual page) on
/// standard output; a closed pipe (`| head`) is no failure.
fn print_generated(
    generate: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> ExitCode {
    let mut out = Vec::new();
    let written = generate(&mut out).and_then(|()| {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&out).and_then(|()| stdout.flush())
    });
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            status!("cannot write to standard output: {e}");
            ExitCode::from(Exit::Other as u8)
        }
        _ => ExitCode::SUCCESS,
    }
}

/// The options every command takes, from the command line (already filled
/// in from the config file).
fn options(global: &Global) -> Options {
    Options {
        name: global.name.clone(),
        port: global.port,
        interfaces: global.interfaces.clone(),
        mdns: !global.no_mdns,
        data_dir: global.data_dir.clone(),
        history: !global.no_history,
        require_encryption: global.require_encryption,
        web: !global.no_web,
        web_open: false,
    }
}

/// Runs a headless command.
async fn run(options: &Options, command: Command) -> Result<(), Failure> {
    match command {
        Command::Send {
            peer,
            text,
            timeout,
        } => headless::send(options, &peer, text, Duration::from_secs_f64(timeout)).await,
        Command::Peers { json, timeout } => {
            headless::peers(options, json, Duration::from_secs_f64(timeout)).await
        }
        Command::Listen { json, qr, web_open } => {
            let options = Options {
                web_open,
                ..options.clone()
            };
            headless::listen(&options, json, qr).await
        }
        Command::Web {
            new_token,
            forget_browsers,
        } => headless::web(options, new_token, forget_browsers).await,
        Command::History {
            peer,
            json,
            limit,
            search,
        } => headless::history(options, peer.as_deref(), json, limit as usize, search).await,
        Command::Trust { peer, fingerprint } => {
            headless::trust(options, &peer, fingerprint.as_deref()).await
        }
        Command::Verify { peer, yes } => headless::verify(options, &peer, yes).await,
        // Handled before the runtime starts.
        Command::Completions { .. } | Command::Man => Ok(()),
    }
}

/// The TUI: listens under our identity, logs to a file (never the screen);
/// bell and colours as the config file says unless `--no-bell` (`bell` false).
async fn chat_screen(
    options: &Options,
    verbose: u8,
    bell: bool,
    file: &Config,
) -> Result<(), Failure> {
    let me = options.identity(true)?;
    let log_path = me.dir.join("lantalk.log");
    init_logging(verbose, Some(&log_path));
    // Said before the screen opens and again once it closes, so it is the
    // last thing on the terminal (the chat screen has no place for it).
    for warning in &me.warnings {
        status!("{warning}");
        tracing::warn!("{warning}");
    }
    let history = match options.open_history(&me.dir) {
        Ok(Some(store)) => Ok(store),
        Ok(None) => Err(HistoryOff::Disabled),
        Err(e) => Err(HistoryOff::Unavailable(lantalk::error_chain(&e))),
    };
    let config = TuiConfig {
        net: options.node(&me, Role::Chat, history)?,
        msg_prefix: lantalk::options::message_prefix()?,
        bell: bell && file.bell(),
        // https://no-color.org: a non-empty NO_COLOR turns colour off.
        theme: file.theme_for(std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())),
        log_path,
        data_dir: me.dir.clone(),
    };
    let result = tui::run(config).await;
    for warning in &me.warnings {
        status!("{warning}");
    }
    result?;
    Ok(())
}

/// Logging to stderr, or to `file` for the TUI. `LANTALK_LOG` takes a filter.
fn init_logging(verbose: u8, file: Option<&Path>) {
    let filter = match verbose {
        0 => "warn,mdns_sd=error",
        1 => "info,mdns_sd=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LANTALK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Private like every file of the data directory: it may quote peers.
    let log = file.and_then(|path| lantalk::files::append_private(path).ok());
    match log {
        Some(log) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(log))
            .init(),
        // Without a log file the TUI logs nothing rather than write on the screen.
        None if file.is_some() => builder.with_writer(std::io::sink).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}
