//! `lantalk trust PEER` and `lantalk verify PEER`: the known peers of the
//! data directory, by hand. Neither touches the network.

use anyhow::anyhow;

use super::{Exit, Failure, identity_of};
use crate::options::Options;
use crate::peer::PeerId;
use crate::protocol::{Fingerprint, verification_code};
use crate::sanitize::escape_for_terminal;
use crate::store::Store;
use crate::trust::{Known, KnownPeers, TrustError};

/// The pin PEER names: its name exactly, else its name in any case (if
/// only one matches), else its peer id. `None` when nothing matches.
async fn find(known: &KnownPeers, peer: &str) -> Result<Option<Known>, Failure> {
    let all = known.list().await.map_err(Failure::from_other)?;
    if let Some(k) = all.iter().find(|k| k.name == peer) {
        return Ok(Some(k.clone()));
    }
    let folded: Vec<&Known> = all
        .iter()
        .filter(|k| k.name.to_lowercase() == peer.to_lowercase())
        .collect();
    match folded.as_slice() {
        [one] => return Ok(Some((*one).clone())),
        [] => {}
        _ => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow!("{peer:?} matches several known peers; give the exact name or the peer id"),
            ));
        }
    }
    Ok(all.into_iter().find(|k| k.id() == peer))
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

/// Every known peer, for a "not found" message.
async fn known_names(known: &KnownPeers) -> String {
    let names: Vec<String> = known
        .list()
        .await
        .unwrap_or_default()
        .iter()
        .map(|k| format!("{:?}", shown(&k.name)))
        .collect();
    if names.is_empty() {
        "no peer is known yet".into()
    } else {
        format!("known peers: {}", names.join(", "))
    }
}

/// `lantalk trust PEER [--fingerprint FP]`
pub async fn trust(
    options: &Options,
    peer: &str,
    fp: Option<&str>,
    also: bool,
) -> Result<(), Failure> {
    let dir = options.data_dir()?;
    let known = KnownPeers::new(&dir);
    let fp = fp
        .map(|text| {
            text.parse::<Fingerprint>()
                .map_err(|e| Failure::new(Exit::Usage, anyhow!("--fingerprint {text:?}: {e}")))
        })
        .transpose()?;
    let name = find(&known, peer)
        .await?
        .map_or_else(|| peer.to_owned(), |k| k.name);
    let (old, new) = match known.trust(&name, fp, also).await {
        Ok(changed) => changed,
        Err(e @ TrustError::Nothing(_)) => {
            return Err(Failure::new(
                Exit::NotFound,
                anyhow!("{e} ({})", known_names(&known).await),
            ));
        }
        Err(e) => return Err(Failure::from_other(e)),
    };
    match old {
        Some(old) if old == new => {
            say!("{:?} already has the key {}", shown(&name), new.grouped());
        }
        Some(_) if also => say!(
            "now trusting the key {} for {:?} as well (another device with that name)",
            new.grouped(),
            shown(&name)
        ),
        Some(old) => {
            say!(
                "now trusting the key {} for {:?} (was {})",
                new.grouped(),
                shown(&name),
                old.grouped()
            );
            if options.history && Store::file_in(&dir).exists() {
                let store = Store::open_existing(&dir).map_err(Failure::from_other)?;
                store
                    .merge_peer(PeerId::new(old.peer_id()), PeerId::new(new.peer_id()))
                    .await
                    .map_err(Failure::from_other)?;
            }
        }
        None => say!(
            "now trusting the key {} for {:?}",
            new.grouped(),
            shown(&name)
        ),
    }
    say!(
        "compare the verification code with them: lantalk verify {}",
        shown(&name)
    );
    Ok(())
}

/// `lantalk verify PEER [--yes]`
pub async fn verify(options: &Options, peer: &str, yes: bool) -> Result<(), Failure> {
    let me = identity_of(options, false)?;
    let known = KnownPeers::new(&me.dir);
    let Some(theirs) = find(&known, peer).await? else {
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
            .set_verified(&theirs.name, theirs.fp)
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
