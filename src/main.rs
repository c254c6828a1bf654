//! The `lantalk` binary: parse arguments, set up logging, run, map the outcome
//! to an exit code (see `lantalk --help`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lantalk::cli::Cli;
use lantalk::headless::{self, Exit};
use lantalk::status;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            status!("cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Other as u8);
        }
    };
    let result = runtime.block_on(headless::run(cli));
    // A blocked read of stdin must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            status!("{failure}");
            ExitCode::from(failure.exit as u8)
        }
    }
}

fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => "warn,mdns_sd=error",
        1 => "info,mdns_sd=warn",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LANTALK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .init();
}
