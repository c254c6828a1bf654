//! Commands typed in the input: `/connect HOST[:PORT]`, `/name NEW`,
//! `/search WORDS`, `/verify [yes]`, `/trust KEY`, `/qr [new]`, `/forget`,
//! `/quit`, `/help`.
//! Unknown commands get a hint and are never sent as messages.

use super::{App, Effect};
use crate::net::{NetCommand, Target};
use crate::peer::PeerKind;

/// Runs `line` (which starts with `/`).
pub(super) fn run(app: &mut App, line: &str, fx: &mut Vec<Effect>) {
    let line = line.trim();
    let (cmd, arg) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(c, a)| (c, a.trim()));
    match cmd {
        "/connect" | "/c" => {
            if arg.is_empty() || arg.contains(char::is_whitespace) {
                return refuse(
                    app,
                    line,
                    "usage: /connect HOST[:PORT] (for example /connect 192.168.1.20; the port is 7342 unless given)",
                );
            }
            let arg = crate::peer::with_default_port(arg);
            let arg = arg.as_str();
            app.notice = Some(format!("connecting to {arg}…"));
            app.connecting = Some(arg.to_owned());
            fx.push(Effect::Net(NetCommand::Connect(Target::Address(
                arg.to_owned(),
            ))));
        }
        "/name" | "/nick" => {
            if arg.is_empty() {
                return refuse(app, line, "usage: /name NEW");
            }
            if arg.chars().any(char::is_control) || arg.len() > 63 {
                return refuse(
                    app,
                    line,
                    "a name is at most 63 bytes, without control characters",
                );
            }
            app.me.name = arg.to_owned();
            app.notice = Some(format!("you are now {arg:?}"));
            fx.push(Effect::Net(NetCommand::Rename(arg.to_owned())));
        }
        "/quit" | "/q" | "/exit" => {
            app.quitting = true;
            fx.push(Effect::Quit);
        }
        "/search" | "/find" => {
            if let Err(why) = super::history::search(app, arg, fx) {
                refuse(app, line, &why);
            }
        }
        "/verify" => {
            if let Err(why) = super::trust::verify_command(app, arg, fx) {
                refuse(app, line, &why);
            }
        }
        "/trust" => {
            if let Err(why) = super::trust::trust_command(app, arg, fx) {
                refuse(app, line, &why);
            }
        }
        "/qr" => {
            let new_token = match arg {
                "" => false,
                "new" => true,
                _ => return refuse(app, line, "usage: /qr, or /qr new for a new join token"),
            };
            if let Some(why) = &app.me.not_listening {
                let why = format!("a phone cannot reach this lantalk: {why}");
                return refuse(app, line, &why);
            }
            if app.me.port == 0 {
                return refuse(app, line, "not listening yet: try again in a moment");
            }
            fx.push(Effect::Qr { new_token });
        }
        "/forget" => {
            let peer = match app.open_peer() {
                _ if !arg.is_empty() => {
                    return refuse(app, line, "usage: /forget, in a browser's conversation");
                }
                Some(p) if p.kind == PeerKind::Web => p.id.clone(),
                Some(_) => {
                    let why = "/forget is for a browser's conversation \
                               (a browser let in without the token is remembered)";
                    return refuse(app, line, why);
                }
                None => {
                    let why = "no conversation open: /forget in a browser's conversation";
                    return refuse(app, line, why);
                }
            };
            fx.push(Effect::Net(NetCommand::Forget(peer)));
        }
        "/help" | "/?" => {
            app.help = true;
            app.help_scroll = 0;
        }
        _ => {
            let hint = format!(
                "unknown command {cmd} (try /connect, /name, /search, /verify, /trust, /qr, /forget, /quit, or ?)"
            );
            refuse(app, line, &hint);
        }
    }
}

/// Shows `why` and gives the line back to edit: nothing typed is lost.
fn refuse(app: &mut App, line: &str, why: &str) {
    app.notice = Some(why.to_owned());
    app.input.set(line.to_owned());
}
