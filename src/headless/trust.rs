//! `lantalk trust PEER --fingerprint FP` and `lantalk verify PEER`: the
//! known peers of the data directory, by hand. Neither touches the network.
//!
//! A peer is its key: a new key is a new peer, even under a known name.
//! `trust` is how the user says that a new key is an old peer (reinstalled,
//! a new phone): that peer's conversation, and what waits for it, move to
//! the key given, and only to that key.

use anyhow::anyhow;

use super::{Exit, Failure, identity_of};
use crate::options::Options;
use crate::peer::{self, PeerId};
use crate::protocol::{Fingerprint, verification_code};
use crate::sanitize::escape_for_terminal;
use crate::store::Store;
use crate::trust::{Known, KnownPeers};

/// The key PEER names (see [`peer::names`]), other than `new` (the key it
/// moves to, which usually goes by the same name) and keys moved away
/// from: `None` when none does; an error when several do.
async fn find(
    known: &KnownPeers,
    peer: &str,
    new: Option<Fingerprint>,
) -> Result<Option<Known>, Failure> {
    let all = known.list().await.map_err(Failure::from_other)?;
    let found: Vec<&Known> = all
        .iter()
        .filter(|k| Some(k.fp) != new && k.replaced_by.is_none())
        .filter(|k| peer::names(peer, &k.name, &k.id()))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        several => Err(Failure::new(
            Exit::Usage,
            anyhow!(
                "{:?} names {} keys: {}; say which (NAME#START, or the peer id)",
                shown(peer),
                several.len(),
                several
                    .iter()
                    .map(|k| labelled(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Prints a line of the answer on stdout; a closed stdout (`lantalk verify
/// x | head -1`) is not a failure and never a panic, as `println!` would be.
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout(), $($arg)*);
    }};
}

fn shown(name: &str) -> String {
    escape_for_terminal(name, false).into_owned()
}

/// `name#start (key …)`, escaped.
fn labelled(k: &Known) -> String {
    format!(
        "{} (key {})",
        shown(&peer::labelled(&k.name, &PeerId::new(k.id()))),
        k.fp.grouped()
    )
}

/// Every known peer, for a "not found" message.
async fn known_names(known: &KnownPeers) -> String {
    let names: Vec<String> = known
        .list()
        .await
        .unwrap_or_default()
        .iter()
        .map(labelled)
        .collect();
    if names.is_empty() {
        "no peer is known yet".into()
    } else {
        format!("known peers: {}", names.join(", "))
    }
}

/// `lantalk trust PEER --fingerprint FP`: PEER's conversation continues
/// with the key FP.
pub async fn trust(options: &Options, peer: &str, fp: Option<&str>) -> Result<(), Failure> {
    let dir = options.data_dir()?;
    let known = KnownPeers::new(&dir);
    let Some(fp) = fp else {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!(
                "give the key to accept: lantalk trust {} --fingerprint FP (the notice in the \
                 conversation, or `lantalk peers`, shows it); a new key is never taken without it",
                shown(peer)
            ),
        ));
    };
    let fp = fp
        .parse::<Fingerprint>()
        .map_err(|e| Failure::new(Exit::Usage, anyhow!("--fingerprint {fp:?}: {e}")))?;
    // Whose conversation: a key met, or a conversation from before keys.
    let (from, name) = match find(&known, peer, Some(fp)).await? {
        Some(k) => (PeerId::new(k.id()), k.name),
        None => match conversation(options, &dir, peer, &fp.peer_id()).await? {
            Some(found) => found,
            None => {
                return Err(Failure::new(
                    Exit::NotFound,
                    anyhow!(
                        "{:?} is neither a known key nor a conversation in the history ({})",
                        shown(peer),
                        known_names(&known).await
                    ),
                ));
            }
        },
    };
    let (old, new) = match known.trust(from.as_str(), fp).await {
        Ok(changed) => changed,
        Err(e @ crate::trust::TrustError::Nothing(_)) => {
            say!("{:?}: {e}", shown(&name));
            return Ok(());
        }
        Err(e) => return Err(Failure::from_other(e)),
    };
    let into = PeerId::new(new.id());
    if options.history && Store::file_in(&dir).exists() {
        let store = Store::open_existing(&dir).map_err(Failure::from_other)?;
        store
            .merge_peer(from.clone(), into)
            .await
            .map_err(Failure::from_other)?;
    }
    match old {
        Some(old) => say!(
            "the conversation with {:?} continues with the key {} (was {})",
            shown(&name),
            new.fp.grouped(),
            old.fp.grouped()
        ),
        None => say!(
            "the conversation with {:?} continues with the key {}",
            shown(&name),
            new.fp.grouped()
        ),
    }
    say!(
        "compare the verification code with them: lantalk verify {}",
        shown(&peer::labelled(&new.name, &PeerId::new(new.id())))
    );
    Ok(())
}

/// A conversation in the history that `peer` names, with no key known for
/// it (a peer from before keys) and other than the new key's (`new`): its
/// id and name.
async fn conversation(
    options: &Options,
    dir: &std::path::Path,
    peer: &str,
    new: &str,
) -> Result<Option<(PeerId, String)>, Failure> {
    if !options.history || !Store::file_in(dir).exists() {
        return Ok(None);
    }
    let store = Store::open_existing(dir).map_err(Failure::from_other)?;
    let all = store.conversations().await.map_err(Failure::from_other)?;
    let found: Vec<_> = all
        .into_iter()
        .filter(|c| c.kind == crate::peer::PeerKind::Lantalk && c.peer.as_str() != new)
        .filter(|c| peer::names(peer, &c.name, c.peer.as_str()))
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next().map(|c| (c.peer, c.name))),
        n => Err(Failure::new(
            Exit::Usage,
            anyhow!(
                "{:?} names {n} conversations; give the peer id",
                shown(peer)
            ),
        )),
    }
}

/// `lantalk verify PEER [--yes]`
pub async fn verify(options: &Options, peer: &str, yes: bool) -> Result<(), Failure> {
    let me = identity_of(options, false)?;
    let known = KnownPeers::new(&me.dir);
    let Some(theirs) = find(&known, peer, None).await? else {
        return Err(Failure::new(
            Exit::NotFound,
            anyhow!(
                "no key is known for {:?} yet: exchange a message with it first ({})",
                shown(peer),
                known_names(&known).await
            ),
        ));
    };
    let ours = me.keys.fingerprint;
    let name = shown(&theirs.name);
    say!(
        "verification code with {name:?}: {}",
        verification_code(&ours, &theirs.fp)
    );
    say!("  your key:  {}", ours.grouped());
    say!("  their key: {}", theirs.fp.grouped());
    if yes {
        known
            .set_verified(theirs.fp)
            .await
            .map_err(Failure::from_other)?;
        say!("{name:?} is now marked verified");
    } else if theirs.verified {
        say!("{name:?} is verified");
    } else {
        say!(
            "if {name:?} shows the same code (lantalk verify {}, or /verify in the chat screen), run: lantalk verify {name} --yes",
            shown(&me.hello.name)
        );
    }
    Ok(())
}
