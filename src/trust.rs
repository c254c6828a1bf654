//! Known peers, like SSH's known_hosts: the certificate fingerprint pinned
//! for each peer name on first contact, whether the people checked it with
//! the verification code, and a different key a peer offered since (which
//! was refused until someone accepts it). Kept in `known_peers.json` in the
//! data directory; every change is a locked read-modify-write and an atomic
//! rename, so several lantalk processes on one data directory agree.
//! Touches the file system only; no network.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::protocol::Fingerprint;

/// The file, inside the data directory.
pub const KNOWN_PEERS_FILE: &str = "known_peers.json";

/// One pinned peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// The name it presents (its `hello`).
    pub name: String,
    /// The fingerprint pinned for that name.
    pub fp: Fingerprint,
    /// The people compared the verification code for this key.
    #[serde(default)]
    pub verified: bool,
    /// When it was pinned, Unix milliseconds.
    #[serde(default)]
    pub since: u64,
    /// Another key presented under this name since, refused; what
    /// `lantalk trust NAME` accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered: Option<Fingerprint>,
}

impl Known {
    /// The peer id the pinned key proves.
    pub fn id(&self) -> String {
        self.fp.peer_id()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    peers: Vec<Known>,
}

/// What a first look at a presented key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// Never seen under this name: now pinned.
    First,
    /// The pinned key.
    Known {
        /// Checked with the verification code.
        verified: bool,
    },
    /// Another key than the pinned one: refuse, loudly.
    Changed {
        /// The key pinned for the name.
        pinned: Fingerprint,
    },
}

/// Reading or writing the known peers failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file exists but cannot be read or parsed.
    #[error("{}: {why}; fix or move it away (peers will then be pinned anew)", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The file cannot be written.
    #[error("cannot write {}: {why}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// `trust` without a key to accept.
    #[error("{0}")]
    Nothing(String),
}

/// The known peers of one data directory.
#[derive(Debug, Clone)]
pub struct KnownPeers {
    dir: PathBuf,
}

impl KnownPeers {
    /// The known peers kept in `dir` (nothing is read yet).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(KNOWN_PEERS_FILE)
    }

    /// Every pinned peer, in the order they were first met.
    pub fn list(&self) -> Result<Vec<Known>, TrustError> {
        Ok(self.read()?.peers)
    }

    /// The latest pin for `name`, if any (a name can have several keys
    /// when devices share it and the user trusted each).
    pub fn by_name(&self, name: &str) -> Result<Option<Known>, TrustError> {
        Ok(self.read()?.peers.into_iter().rfind(|k| k.name == name))
    }

    /// A pin whose key proves the peer id `id`, if any.
    pub fn by_id(&self, id: &str) -> Result<Option<Known>, TrustError> {
        Ok(self.read()?.peers.into_iter().find(|k| k.id() == id))
    }

    /// The pin a peer without its key would be claiming: the latest for
    /// `name`, else one whose key proves `id`. One read for both.
    pub fn claimed(&self, name: &str, id: &str) -> Result<Option<Known>, TrustError> {
        let peers = self.read()?.peers;
        let by_name = peers.iter().rposition(|k| k.name == name);
        let at = by_name.or_else(|| peers.iter().position(|k| k.id() == id));
        Ok(at.map(|i| peers[i].clone()))
    }

    /// Trust on first use: pins `fp` for `name` if the name is new; a key
    /// that is not one of those trusted for the name is noted as offered
    /// (for [`KnownPeers::trust`]) and reported with the latest pinned one.
    /// A pin that cannot be written still lets the session go ahead (the
    /// data directory is read-only): it is then only for this run.
    pub fn pin(&self, name: &str, fp: Fingerprint) -> Result<Pin, TrustError> {
        self.change(|file| {
            if let Some(known) = file.peers.iter().find(|k| k.name == name && k.fp == fp) {
                return (
                    false,
                    Pin::Known {
                        verified: known.verified,
                    },
                );
            }
            if let Some(known) = file.peers.iter_mut().rfind(|k| k.name == name) {
                let pinned = known.fp;
                let changed = known.offered != Some(fp);
                known.offered = Some(fp);
                return (changed, Pin::Changed { pinned });
            }
            file.peers.push(Known {
                name: name.to_owned(),
                fp,
                verified: false,
                since: now_ms(),
                offered: None,
            });
            (true, Pin::First)
        })
        .or_else(|e| match e {
            TrustError::Write { .. } => {
                // Told with -v only: a read-only data directory is already
                // reported where it matters (a temporary identity, history).
                tracing::info!("the key of {name:?} is not remembered: {e}");
                Ok(Pin::First)
            }
            other => Err(other),
        })
    }

    /// Accepts a new key for `name`: `fp` if given, else the key it last
    /// offered. It replaces the keys trusted for the name (the peer was
    /// reinstalled), or with `keep_old` joins them (another device uses the
    /// same name). Returns the latest previous key (if any) and the new
    /// one. The new key is not verified yet.
    pub fn trust(
        &self,
        name: &str,
        fp: Option<Fingerprint>,
        keep_old: bool,
    ) -> Result<(Option<Fingerprint>, Fingerprint), TrustError> {
        let mut outcome = Err(TrustError::Nothing(String::new()));
        self.change(|file| {
            let at = file.peers.iter().rposition(|k| k.name == name);
            let offered = at.and_then(|i| file.peers[i].offered);
            let Some(new) = fp.or(offered) else {
                outcome = Err(TrustError::Nothing(match at {
                    Some(_) => format!("{name:?} has not offered another key; nothing to trust"),
                    None => format!("{name:?} is not a known peer and offered no key"),
                }));
                return (false, ());
            };
            let old = at.map(|i| file.peers[i].fp);
            if keep_old {
                for known in file.peers.iter_mut().filter(|k| k.name == name) {
                    known.offered = None;
                }
                file.peers.retain(|k| !(k.name == name && k.fp == new));
            } else {
                file.peers.retain(|k| k.name != name);
            }
            file.peers.push(Known {
                name: name.to_owned(),
                fp: new,
                verified: false,
                since: now_ms(),
                offered: None,
            });
            outcome = Ok((old, new));
            (true, ())
        })?;
        outcome
    }

    /// Marks the key `fp` of `name` as checked with the verification code.
    /// Returns false if that is not the pinned key of `name`.
    pub fn set_verified(&self, name: &str, fp: Fingerprint) -> Result<bool, TrustError> {
        self.change(
            |file| match file.peers.iter_mut().find(|k| k.name == name && k.fp == fp) {
                Some(known) if known.verified => (false, true),
                Some(known) => {
                    known.verified = true;
                    (true, true)
                }
                None => (false, false),
            },
        )
    }

    fn read(&self) -> Result<File, TrustError> {
        let path = self.path();
        let corrupt = |why: String| TrustError::Corrupt {
            path: path.clone(),
            why,
        };
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string())),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(File::default())
            }
            Err(e) => Err(corrupt(e.to_string())),
        }
    }

    /// Runs `f` on the file under the lock; writes it back if `f` says it changed.
    fn change<T>(&self, f: impl FnOnce(&mut File) -> (bool, T)) -> Result<T, TrustError> {
        let path = self.path();
        let write_err = |e: std::io::Error| TrustError::Write {
            path: path.clone(),
            why: e.to_string(),
        };
        // Without a lock (read-only directory) reading still works; a
        // change then fails to write below and says so.
        let _lock = fs::create_dir_all(&self.dir)
            .and_then(|()| {
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(self.dir.join("known_peers.lock"))
            })
            .and_then(|file| file.lock().map(|()| file));
        let mut file = self.read()?;
        let (changed, out) = f(&mut file);
        if changed {
            let json = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other);
            let tmp = self
                .dir
                .join(format!("{KNOWN_PEERS_FILE}.tmp{}", std::process::id()));
            json.and_then(|json| {
                let mut out = fs::File::create(&tmp)?;
                out.write_all(&json)?;
                out.write_all(b"\n")?;
                out.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                write_err(e)
            })?;
        }
        Ok(out)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(seed: &[u8]) -> Fingerprint {
        Fingerprint::of_cert(seed)
    }

    #[test]
    fn first_use_pins_and_a_changed_key_is_refused_until_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        assert_eq!(known.pin("laptop", fp(b"a")).unwrap(), Pin::First);
        assert_eq!(
            known.pin("laptop", fp(b"a")).unwrap(),
            Pin::Known { verified: false }
        );
        assert_eq!(
            known.pin("laptop", fp(b"b")).unwrap(),
            Pin::Changed { pinned: fp(b"a") }
        );
        // Still refused: nothing changes until someone trusts it.
        assert_eq!(
            known.pin("laptop", fp(b"b")).unwrap(),
            Pin::Changed { pinned: fp(b"a") }
        );
        assert_eq!(
            known.by_name("laptop").unwrap().unwrap().offered,
            Some(fp(b"b"))
        );
        assert_eq!(
            known.trust("laptop", None, false).unwrap(),
            (Some(fp(b"a")), fp(b"b"))
        );
        assert_eq!(
            known.pin("laptop", fp(b"b")).unwrap(),
            Pin::Known { verified: false }
        );
        assert!(matches!(
            known.trust("laptop", None, false),
            Err(TrustError::Nothing(_))
        ));
        assert!(matches!(
            known.trust("phone", None, false),
            Err(TrustError::Nothing(_))
        ));
        // Another process reading the same directory sees the same.
        let again = KnownPeers::new(dir.path());
        assert_eq!(
            again.by_id(&fp(b"b").peer_id()).unwrap().unwrap().name,
            "laptop"
        );
        assert_eq!(again.by_id(&fp(b"a").peer_id()).unwrap(), None);
    }

    #[test]
    fn two_devices_can_share_a_name_once_the_second_is_trusted_as_well() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        known.pin("laptop", fp(b"a")).unwrap();
        assert!(matches!(
            known.pin("laptop", fp(b"b")).unwrap(),
            Pin::Changed { .. }
        ));
        assert_eq!(
            known.trust("laptop", None, true).unwrap(),
            (Some(fp(b"a")), fp(b"b"))
        );
        for key in [b"a", b"b"] {
            assert!(matches!(
                known.pin("laptop", fp(key)).unwrap(),
                Pin::Known { .. }
            ));
        }
        assert_eq!(
            known.pin("laptop", fp(b"c")).unwrap(),
            Pin::Changed { pinned: fp(b"b") },
            "a third key is still refused"
        );
        // Replacing drops every key the name had.
        known.trust("laptop", None, false).unwrap();
        assert!(matches!(
            known.pin("laptop", fp(b"a")).unwrap(),
            Pin::Changed { .. }
        ));
        assert_eq!(known.list().unwrap().len(), 1);
    }

    #[test]
    fn verification_is_remembered_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        known.pin("laptop", fp(b"a")).unwrap();
        assert!(!known.set_verified("laptop", fp(b"b")).unwrap());
        assert!(known.set_verified("laptop", fp(b"a")).unwrap());
        assert_eq!(
            known.pin("laptop", fp(b"a")).unwrap(),
            Pin::Known { verified: true }
        );
        known.trust("laptop", Some(fp(b"c")), false).unwrap();
        assert_eq!(
            known.pin("laptop", fp(b"c")).unwrap(),
            Pin::Known { verified: false },
            "a new key starts unverified"
        );
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KNOWN_PEERS_FILE), "{not json").unwrap();
        let err = KnownPeers::new(dir.path()).pin("x", fp(b"a")).unwrap_err();
        assert!(err.to_string().contains(KNOWN_PEERS_FILE), "{err}");
    }
}
