//! The `lantalk` binary: parse arguments, set up logging, run the chat screen
//! or a headless command, map the outcome to an exit code (see `--help`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lantalk::cli::{Cli, Global};
use lantalk::config::{self, Config};
use lantalk::headless::{self, Exit, Failure};
use lantalk::identity::{Identity, hostname_label};
use lantalk::net::node::NodeConfig;
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
    // Flags > config file > built-in defaults.
    let config = match config::load(cli.global.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            status!("{}", lantalk::sanitize::one_line(&e.to_string(), 400));
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    config.fill(&mut cli.global);
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
            runtime.block_on(headless::run(cli.global, command))
        }
        None => runtime.block_on(chat_screen(&cli.global, !cli.no_bell, &config)),
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

/// The TUI: listens under our identity, logs to a file (never the screen);
/// bell and colours as the config file says unless `--no-bell` (`bell` false).
async fn chat_screen(global: &Global, bell: bool, file: &Config) -> Result<(), Failure> {
    let me = Identity::load(global.name.as_deref(), global.data_dir.as_deref(), true)?;
    let log_path = me.dir.join("lantalk.log");
    init_logging(global.verbose, Some(&log_path));
    // Said before the screen opens and again once it closes, so it is the
    // last thing on the terminal (the chat screen has no place for it).
    if let Some(warning) = &me.warning {
        status!("{warning}");
        tracing::warn!("{warning}");
    }
    let config = TuiConfig {
        net: NodeConfig {
            hello: me.hello.clone(),
            port: global.port,
            interfaces: global.interfaces.clone(),
            mdns: !global.no_mdns,
            host: hostname_label().unwrap_or_else(|| me.hello.name.clone()),
            history: if global.no_history {
                Err("history off (--no-history)".into())
            } else {
                lantalk::store::Store::open(&me.dir).map_err(|e| e.to_string())
            },
            policy: lantalk::net::Policy::of(&me, global.require_encryption)?,
        },
        bell: bell && file.bell(),
        theme: file.theme(),
        log_path,
    };
    let result = tui::run(config).await;
    if let Some(warning) = &me.warning {
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
    let log = file.and_then(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
    });
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
