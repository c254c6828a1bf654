//! The interactive terminal: the only owner of the terminal and of the
//! select! loop that feeds keys, pastes, resizes and network events to
//! [`app::update`], carries out the effects, and redraws only when something
//! changed. No fixed-rate tick: with nothing happening the process sleeps
//! (the app may ask to hear once that time passed: [`App::wake_at`]). Keeps
//! what was typed and not sent for the next run (`drafts.json`, private),
//! and makes the address a phone opens when `/qr` asks (the interfaces,
//! the data directory's token: [`crate::web::url`]).

use std::io::{self, IsTerminal, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, SetTitle, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::app::{self, Action, App, Effect};
use crate::net::now_ms;
use crate::net::{NetCommand, NetEvent, NodeConfig, node};
use crate::ui;

/// How many queued network events are applied before one redraw.
const COALESCE: usize = 4096;

/// The shortest time between two redraws while things are changing.
const FRAME: Duration = Duration::from_millis(10);

/// How long quitting waits for goodbyes before leaving anyway.
const QUIT_WAIT: Duration = Duration::from_secs(3);

/// Everything the TUI needs to start.
pub struct TuiConfig {
    /// The network node's settings (our hello, port, interfaces, mDNS).
    pub net: NodeConfig,
    /// A random prefix that makes our message ids unique across runs.
    pub msg_prefix: String,
    /// Ring the bell for messages in conversations not on screen.
    pub bell: bool,
    /// The colours.
    pub theme: app::Theme,
    /// Where the log goes, to mention it if something breaks.
    pub log_path: std::path::PathBuf,
    /// The data directory, where `/name` keeps the name chosen.
    pub data_dir: std::path::PathBuf,
}

/// Runs the TUI until the user quits or a SIGTERM/SIGHUP arrives.
pub async fn run(config: TuiConfig) -> anyhow::Result<()> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        bail!(
            "the chat screen needs a terminal; for scripts use `lantalk listen`, `send` or `peers`"
        );
    }
    let mut app = App::new(
        config.net.hello.name.clone(),
        config.net.hello.id.clone(),
        config.msg_prefix.clone(),
        chrono::Local::now().offset().local_minus_utc(),
    );
    app.bell = config.bell;
    app.theme = config.theme;
    app.host = config
        .net
        .mdns
        .then(|| format!("{}.local", config.net.host));
    let interfaces = config.net.interfaces.clone();
    // The theme already leaves colour out under NO_COLOR (see
    // `Config::theme_for`); what colour it still has, the config file asked
    // for, and no-color.org lets a configuration file override NO_COLOR.
    // crossterm would drop those too on its own.
    crossterm::style::force_color_output(true);
    // Drafts are kept like history: not at all with --no-history.
    let keep_drafts = config.net.history.is_ok();
    if keep_drafts {
        app.drafts = load_drafts(&config.data_dir);
    }
    let signals = shutdown_signal().context("cannot watch for signals")?;
    let mut terminal = enter(&config.log_path).context("cannot set up the terminal")?;
    let (commands, events, node_task) = node::spawn(config.net);
    let result = event_loop(
        &mut terminal,
        &mut app,
        (&commands, &config.data_dir, &interfaces),
        events,
        signals,
    )
    .await;
    // Goodbyes happen while the screen is still up; then the terminal is restored.
    let _ = commands.send(NetCommand::Shutdown);
    let _ = tokio::time::timeout(QUIT_WAIT, node_task).await;
    leave();
    if keep_drafts {
        save_drafts(&config.data_dir, &app);
    }
    result
}

/// The file in the data directory holding what was typed and not sent,
/// by conversation: a JSON object from peer id to text.
const DRAFTS_FILE: &str = "drafts.json";

/// A drafts file larger than this is not read (it was not written by us).
const MAX_DRAFTS_BYTES: u64 = 4 << 20;

/// The drafts [`save_drafts`] kept; none when there is no file or it
/// cannot be read (said in the log).
fn load_drafts(dir: &std::path::Path) -> std::collections::HashMap<crate::peer::PeerId, String> {
    let path = dir.join(DRAFTS_FILE);
    let read = || -> anyhow::Result<std::collections::HashMap<String, String>> {
        let file = std::fs::File::open(&path)?;
        if file.metadata()?.len() > MAX_DRAFTS_BYTES {
            bail!("larger than {MAX_DRAFTS_BYTES} bytes");
        }
        Ok(serde_json::from_reader(io::BufReader::new(file))?)
    };
    match read() {
        Ok(drafts) => drafts
            .into_iter()
            .map(|(id, text)| (crate::peer::PeerId::new(&id), text))
            .collect(),
        Err(e) => {
            let missing = e
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::NotFound);
            if !missing {
                tracing::warn!("cannot read the drafts in {}: {e:#}", path.display());
            }
            std::collections::HashMap::new()
        }
    }
}

/// Keeps what was typed and not sent in each conversation for the next
/// run, privately (0600, replaced whole); no drafts, no file.
fn save_drafts(dir: &std::path::Path, app: &App) {
    let drafts = app.drafts_to_keep();
    let result = if drafts.is_empty() {
        match std::fs::remove_file(dir.join(DRAFTS_FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    } else {
        serde_json::to_vec(&drafts)
            .map_err(io::Error::other)
            .and_then(|json| crate::files::write_private_atomically(dir, DRAFTS_FILE, &json))
    };
    if let Err(e) = result {
        tracing::warn!("cannot keep the drafts for the next run: {e}");
    }
}

async fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    (commands, data_dir, interfaces): (
        &mpsc::UnboundedSender<NetCommand>,
        &std::path::Path,
        &[String],
    ),
    mut events: mpsc::Receiver<NetEvent>,
    signals: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut keys = read_terminal();
    let mut signals = std::pin::pin!(signals);
    let mut title = String::new();
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        // Draw when something changed, at most once per FRAME: during a burst
        // the network tasks (on this same thread) get to fill a whole batch
        // between frames. With nothing changing there is no timer at all.
        let due = last_draw.is_none_or(|t| t.elapsed() >= FRAME);
        if dirty && due {
            last_draw = Some(Instant::now());
            let mut view = app.view;
            terminal.draw(|frame| view = ui::draw(frame, app))?;
            app.set_view(view);
            let now_title = ui::title(app);
            if now_title != title {
                execute!(terminal.backend_mut(), SetTitle(&now_title))?;
                title = now_title;
            }
            dirty = false;
        }
        let mut effects = Vec::new();
        let next_frame = last_draw.map_or_else(Instant::now, |t| t + FRAME);
        // The app may want to hear that time passed (the peers list sorted
        // again once it is no longer held still).
        let wake = app.wake_at();
        let wake_at =
            Instant::now() + Duration::from_millis(wake.unwrap_or(0).saturating_sub(now_ms()));
        tokio::select! {
            () = &mut signals => return Ok(()),
            () = tokio::time::sleep_until(next_frame), if dirty => {}
            () = tokio::time::sleep_until(wake_at), if wake.is_some() => {
                effects.extend(app::update(app, Action::Tick, now_ms()));
                dirty = true;
            },
            Some(event) = keys.recv() => {
                // Keys coalesce too: typing from a script or a paste without
                // bracketed-paste markers must not cost a redraw per character.
                let mut next = Some(event);
                let mut applied = 0;
                while let Some(event) = next.take() {
                    // The terminal is gone (hang-up): leave as on a signal.
                    let Ok(event) = event else { return Ok(()) };
                    if let Some(action) = to_action(event) {
                        effects.extend(app::update(app, action, now_ms()));
                        dirty = true;
                    }
                    applied += 1;
                    if !app.quitting && applied < COALESCE {
                        next = keys.try_recv().ok();
                    }
                }
            },
            Some(event) = events.recv() => {
                effects.extend(app::update(app, Action::Net(event), now_ms()));
                // Bursts coalesce: apply what is already queued, then draw once.
                for _ in 0..COALESCE {
                    let Ok(event) = events.try_recv() else { break };
                    effects.extend(app::update(app, Action::Net(event), now_ms()));
                }
                dirty = true;
            },
        }
        // However many bells a batch asks for, the terminal hears one.
        let mut rang = false;
        let mut effects = std::collections::VecDeque::from(effects);
        while let Some(effect) = effects.pop_front() {
            match effect {
                // The UI never waits on the network: commands go on an unbounded channel.
                Effect::Net(command) => {
                    if let NetCommand::Rename(name) = &command
                        && let Err(e) = crate::identity::save_name(data_dir, name)
                    {
                        // Still the name of this run; said in the log.
                        tracing::warn!("cannot keep the name {name:?} for later runs: {e}");
                    }
                    let _ = commands.send(command);
                }
                Effect::Bell if rang => {}
                Effect::Bell => {
                    rang = true;
                    let out = terminal.backend_mut();
                    out.write_all(b"\x07")?;
                    out.flush()?;
                }
                Effect::Qr { new_token } => {
                    let shown = phone_address(app, data_dir, interfaces, new_token);
                    effects.extend(app::update(app, Action::Qr(shown), now_ms()));
                    dirty = true;
                }
                Effect::Quit => return Ok(()),
            }
        }
    }
}

/// The address a phone opens for the port we listen on, and its QR code,
/// for the `/qr` overlay: one read of the interface list and of the token
/// file (a new token first when `new_token`), quick enough for the loop.
fn phone_address(
    app: &App,
    data_dir: &std::path::Path,
    interfaces: &[String],
    new_token: bool,
) -> Result<app::QrView, String> {
    use crate::web::{qr, url};
    let address = url::current(
        data_dir,
        new_token,
        app.me.port,
        interfaces,
        app.local_name(),
    )
    .map_err(|e| format!("{e:#}"))?;
    let code = qr::half_blocks(&address.url, qr::QUIET_ZONE_SCREEN).map_err(|e| e.to_string())?;
    Ok(app::QrView {
        url: address.url,
        local: address.local,
        others: address.others,
        warning: address.warning,
        code,
        new_token,
    })
}

/// Reads terminal events on a thread of its own (crossterm's reads block) and
/// queues them, so the loop can take a whole burst at once.
fn read_terminal() -> mpsc::Receiver<io::Result<Event>> {
    let (tx, rx) = mpsc::channel(COALESCE);
    std::thread::spawn(move || {
        loop {
            let event = crossterm::event::read();
            let failed = event.is_err();
            if tx.blocking_send(event).is_err() || failed {
                return;
            }
        }
    });
    rx
}

fn to_action(event: Event) -> Option<Action> {
    match event {
        Event::Key(key) => Some(Action::Key(key)),
        Event::Paste(text) => Some(Action::Paste(text)),
        Event::Resize(w, h) => Some(Action::Resize(w, h)),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => Some(Action::Scroll(1)),
            MouseEventKind::ScrollDown => Some(Action::Scroll(-1)),
            _ => None,
        },
        _ => None,
    }
}

/// Raw mode, alternate screen, bracketed paste, mouse wheel; and a panic hook
/// that puts the terminal back before the panic message is printed.
fn enter(log_path: &std::path::Path) -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
    let log = log_path.display().to_string();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        previous(info);
        let _ = writeln!(io::stderr(), "lantalk: crashed; the log is in {log}");
    }));
    enable_raw_mode()?;
    ENTERED.store(true, Ordering::SeqCst);
    let mut stdout = io::stdout();
    // Save the terminal's title (xterm's title stack) to put it back on exit.
    let _ = stdout.write_all(b"\x1b[22;0t");
    if let Err(e) = execute!(
        stdout,
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture
    ) {
        leave();
        return Err(e);
    }
    Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| leave())
}

/// Whether the terminal is in our mode, so [`leave`] undoes it exactly once.
static ENTERED: AtomicBool = AtomicBool::new(false);

/// Restores the terminal; safe to call more than once (only the first call acts).
fn leave() {
    if !ENTERED.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut stdout = io::stdout();
    let _ = execute!(
        stdout,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show,
    );
    // Back to the title saved on entry (terminals without a title stack ignore this).
    let _ = stdout.write_all(b"\x1b[23;0t");
    let _ = stdout.flush();
    let _ = disable_raw_mode();
}

/// SIGTERM and SIGHUP end the TUI cleanly (Ctrl+C is a key in raw mode).
/// Registered before the screen is set up, so none is missed.
fn shutdown_signal() -> io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
            _ = int.recv() => {}
        }
    })
}
