//! Known peers, like SSH's known_hosts: the certificate fingerprint pinned
//! for each peer name on first contact, whether the people checked it with
//! the verification code, and a different key a peer offered since (which
//! was refused until someone accepts it). Kept in `known_peers.json` in the
//! data directory.
//!
//! One thread per [`KnownPeers`] owns the file and a copy of it in memory:
//! callers (a TLS handshake on the async runtime among them) send it jobs
//! and await the answer, so no caller blocks on the disk or on another
//! process's lock. The copy is read again whenever the file changed (another
//! lantalk on the same data directory wrote it); every change is a locked
//! read-modify-write and an atomic rename, and changes that arrive together
//! are written once. Touches the file system only; no network.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

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
#[derive(Debug, Clone, thiserror::Error)]
pub enum TrustError {
    /// The file exists but cannot be read or parsed: nobody's key can be
    /// checked until it is fixed or moved away.
    #[error("{} cannot be used; fix or move it away (peers will then be pinned anew)", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The file cannot be written (a read-only data directory): what was
    /// decided holds for this run only.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Arc<std::io::Error>,
    },
    /// `trust` without a key to accept.
    #[error("{0}")]
    Nothing(String),
    /// The thread owning the file is gone (the process is ending).
    #[error("the known peers are no longer available")]
    Closed,
}

/// The known peers of one data directory: a cheap handle on the thread
/// that owns `known_peers.json` there.
#[derive(Debug, Clone)]
pub struct KnownPeers {
    jobs: mpsc::Sender<Job>,
}

/// What answers a job's caller, once it is known whether its change was
/// written.
type Answer = Box<dyn FnOnce(Result<(), TrustError>) + Send>;

/// Work for the owning thread. `run` sees the peers as they are on disk and
/// makes its change (marking them dirty); the [`Answer`] it returns is
/// called once the batch it was in is written.
struct Job {
    writes: bool,
    run: Box<dyn FnOnce(&mut Cached) -> Answer + Send>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("writes", &self.writes).finish()
    }
}

/// The owning thread's copy of the file.
struct Cached {
    dir: PathBuf,
    /// The file's contents, or why it cannot be used.
    file: Result<File, TrustError>,
    /// What identified the file when it was read (`None`: no file).
    stamp: Option<Stamp>,
    /// Changed in memory since it was last written.
    dirty: bool,
}

/// Enough of a file's metadata to notice that someone replaced it (every
/// writer renames a new file into place, so the inode changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = fs::metadata(path).ok()?;
    Some(Stamp {
        ino: meta.ino(),
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

impl KnownPeers {
    /// The known peers kept in `dir`, owned by a thread of their own (which
    /// ends when the last handle is dropped). Nothing is read yet.
    pub fn new(dir: &Path) -> Self {
        let (jobs, queue) = mpsc::channel();
        let cached = Cached {
            dir: dir.to_owned(),
            file: Ok(File::default()),
            // Matches no file: the first job reads it.
            stamp: Some(Stamp {
                ino: u64::MAX,
                len: u64::MAX,
                modified: None,
            }),
            dirty: false,
        };
        let spawned = std::thread::Builder::new()
            .name("known-peers".into())
            .spawn(move || cached.serve(&queue));
        if let Err(e) = spawned {
            // Every call then answers Closed.
            tracing::error!("cannot start the known peers' thread: {e}");
        }
        Self { jobs }
    }

    /// Runs `f` on the owning thread against the current peers; `f` returns
    /// whether it changed them, and the answer. A change is written before
    /// the answer comes back.
    /// `unwritten` is the answer when a change cannot be written (`None`:
    /// the error).
    async fn call<T: Send + 'static>(
        &self,
        writes: bool,
        unwritten: Option<T>,
        f: impl FnOnce(&mut File) -> (bool, Result<T, TrustError>) + Send + 'static,
    ) -> Result<T, TrustError> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            writes,
            run: Box::new(move |cached: &mut Cached| {
                let (changed, out) = match &mut cached.file {
                    Ok(file) => f(file),
                    Err(e) => (false, Err(e.clone())),
                };
                cached.dirty |= changed;
                Box::new(move |written: Result<(), TrustError>| {
                    let out = match (out, written, unwritten) {
                        (Ok(_), Err(e), Some(instead)) if changed => {
                            tracing::info!("{}", crate::error_chain(&e));
                            Ok(instead)
                        }
                        (Ok(_), Err(e), None) if changed => Err(e),
                        (out, _, _) => out,
                    };
                    let _ = tx.send(out);
                })
            }),
        };
        self.jobs.send(job).map_err(|_| TrustError::Closed)?;
        rx.await.unwrap_or(Err(TrustError::Closed))
    }

    /// Every pinned peer, in the order they were first met.
    pub async fn list(&self) -> Result<Vec<Known>, TrustError> {
        self.call(false, None, |file| (false, Ok(file.peers.clone())))
            .await
    }

    /// The latest pin for `name`, if any (a name can have several keys
    /// when devices share it and the user trusted each).
    pub async fn by_name(&self, name: &str) -> Result<Option<Known>, TrustError> {
        let name = name.to_owned();
        self.call(false, None, move |file| {
            (
                false,
                Ok(file.peers.iter().rfind(|k| k.name == name).cloned()),
            )
        })
        .await
    }

    /// A pin whose key proves the peer id `id`, if any.
    pub async fn by_id(&self, id: &str) -> Result<Option<Known>, TrustError> {
        let id = id.to_owned();
        self.call(false, None, move |file| {
            (false, Ok(file.peers.iter().find(|k| k.id() == id).cloned()))
        })
        .await
    }

    /// The pin a peer without its key would be claiming: the latest for
    /// `name`, else one whose key proves `id`.
    pub async fn claimed(&self, name: &str, id: &str) -> Result<Option<Known>, TrustError> {
        let (name, id) = (name.to_owned(), id.to_owned());
        self.call(false, None, move |file| {
            let peers = &file.peers;
            let by_name = peers.iter().rposition(|k| k.name == name);
            let at = by_name.or_else(|| peers.iter().position(|k| k.id() == id));
            (false, Ok(at.map(|i| peers[i].clone())))
        })
        .await
    }

    /// Trust on first use: pins `fp` for `name` if the name is new; a key
    /// that is not one of those trusted for the name is noted as offered
    /// (for [`KnownPeers::trust`]) and reported with the latest pinned one.
    /// Where nothing can be written (a data directory that is read-only, so
    /// that this lantalk itself runs with a temporary identity), nothing is
    /// pinned and every key is taken as met for the first time.
    pub async fn pin(&self, name: &str, fp: Fingerprint) -> Result<Pin, TrustError> {
        let name = name.to_owned();
        self.call(true, Some(Pin::First), move |file| {
            let (changed, pin) = file.pin(&name, fp);
            (changed, Ok(pin))
        })
        .await
    }

    /// Accepts a new key for `name`: `fp` if given, else the key it last
    /// offered. It replaces the keys trusted for the name (the peer was
    /// reinstalled), or with `keep_old` joins them (another device uses the
    /// same name). Returns the latest previous key (if any) and the new
    /// one. The new key is not verified yet.
    pub async fn trust(
        &self,
        name: &str,
        fp: Option<Fingerprint>,
        keep_old: bool,
    ) -> Result<(Option<Fingerprint>, Fingerprint), TrustError> {
        let name = name.to_owned();
        self.call(true, None, move |file| {
            match file.trust(&name, fp, keep_old) {
                Ok(changed) => (true, Ok(changed)),
                Err(e) => (false, Err(e)),
            }
        })
        .await
    }

    /// Marks the key `fp` of `name` as checked with the verification code.
    /// Returns false if that is not the pinned key of `name`.
    pub async fn set_verified(&self, name: &str, fp: Fingerprint) -> Result<bool, TrustError> {
        let name = name.to_owned();
        self.call(true, None, move |file| {
            match file.peers.iter_mut().find(|k| k.name == name && k.fp == fp) {
                Some(known) if known.verified => (false, Ok(true)),
                Some(known) => {
                    known.verified = true;
                    (true, Ok(true))
                }
                None => (false, Ok(false)),
            }
        })
        .await
    }
}

impl File {
    /// [`KnownPeers::pin`] on the contents: whether they changed, and the verdict.
    fn pin(&mut self, name: &str, fp: Fingerprint) -> (bool, Pin) {
        if let Some(known) = self.peers.iter().find(|k| k.name == name && k.fp == fp) {
            let verified = known.verified;
            return (false, Pin::Known { verified });
        }
        if let Some(known) = self.peers.iter_mut().rfind(|k| k.name == name) {
            let pinned = known.fp;
            // A host offering a new key on every connection costs one
            // write per new key, never one per connection with the same key.
            let changed = known.offered != Some(fp);
            known.offered = Some(fp);
            return (changed, Pin::Changed { pinned });
        }
        self.peers.push(Known {
            name: name.to_owned(),
            fp,
            verified: false,
            since: now_ms(),
            offered: None,
        });
        (true, Pin::First)
    }

    /// [`KnownPeers::trust`] on the contents.
    fn trust(
        &mut self,
        name: &str,
        fp: Option<Fingerprint>,
        keep_old: bool,
    ) -> Result<(Option<Fingerprint>, Fingerprint), TrustError> {
        let at = self.peers.iter().rposition(|k| k.name == name);
        let offered = at.and_then(|i| self.peers[i].offered);
        let Some(new) = fp.or(offered) else {
            return Err(TrustError::Nothing(match at {
                Some(_) => format!("{name:?} has not offered another key; nothing to trust"),
                None => format!("{name:?} is not a known peer and offered no key"),
            }));
        };
        let old = at.map(|i| self.peers[i].fp);
        if keep_old {
            for known in self.peers.iter_mut().filter(|k| k.name == name) {
                known.offered = None;
            }
            self.peers.retain(|k| !(k.name == name && k.fp == new));
        } else {
            self.peers.retain(|k| k.name != name);
        }
        self.peers.push(Known {
            name: name.to_owned(),
            fp: new,
            verified: false,
            since: now_ms(),
            offered: None,
        });
        Ok((old, new))
    }
}

impl Cached {
    fn path(&self) -> PathBuf {
        self.dir.join(KNOWN_PEERS_FILE)
    }

    /// Answers jobs until every handle is gone; jobs queued together share
    /// one look at the file and one write.
    fn serve(mut self, queue: &mpsc::Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            batch.extend(queue.try_iter());
            let writes = batch.iter().any(|j| j.writes);
            // Changes are made under the lock, to the file as it is now:
            // another process may have changed it since we last looked.
            let lock = writes.then(|| self.lock());
            self.refresh();
            let answers: Vec<_> = batch.into_iter().map(|job| (job.run)(&mut self)).collect();
            let written = if self.dirty { self.write() } else { Ok(()) };
            drop(lock);
            for answer in answers {
                answer(written.clone());
            }
        }
    }

    /// The lock other lantalk processes on this directory take to change the
    /// file (`None` when it cannot be had: a read-only directory, where a
    /// change then fails to write and says so).
    fn lock(&self) -> Option<fs::File> {
        fs::create_dir_all(&self.dir)
            .and_then(|()| {
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(self.dir.join("known_peers.lock"))
            })
            .and_then(|file| file.lock().map(|()| file))
            .ok()
    }

    /// Reads the file again if it is not the one read last.
    fn refresh(&mut self) {
        let path = self.path();
        let now = stamp(&path);
        if now == self.stamp {
            // Ours as last read or written (with any change this run could
            // not write still in memory).
            return;
        }
        self.stamp = now;
        self.dirty = false;
        let corrupt = |source: Arc<dyn std::error::Error + Send + Sync>| TrustError::Corrupt {
            path: path.clone(),
            source,
        };
        self.file = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt(Arc::new(e))),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(File::default())
            }
            Err(e) => Err(corrupt(Arc::new(e))),
        };
    }

    /// Writes the peers in memory: a new file renamed into place.
    fn write(&mut self) -> Result<(), TrustError> {
        let Ok(file) = &self.file else { return Ok(()) };
        let path = self.path();
        let tmp = self
            .dir
            .join(format!("{KNOWN_PEERS_FILE}.tmp{}", std::process::id()));
        let written = serde_json::to_vec_pretty(file)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                let mut out = fs::File::create(&tmp)?;
                out.write_all(&json)?;
                out.write_all(b"\n")?;
                out.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, &path));
        match written {
            Ok(()) => {
                self.dirty = false;
                self.stamp = stamp(&path);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                // What could not be written is forgotten: read again next time.
                self.dirty = false;
                self.stamp = Some(Stamp {
                    ino: u64::MAX,
                    len: u64::MAX,
                    modified: None,
                });
                Err(TrustError::Write {
                    path,
                    source: Arc::new(e),
                })
            }
        }
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

    #[tokio::test]
    async fn first_use_pins_and_a_changed_key_is_refused_until_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        assert_eq!(known.pin("laptop", fp(b"a")).await.unwrap(), Pin::First);
        assert_eq!(
            known.pin("laptop", fp(b"a")).await.unwrap(),
            Pin::Known { verified: false }
        );
        assert_eq!(
            known.pin("laptop", fp(b"b")).await.unwrap(),
            Pin::Changed { pinned: fp(b"a") }
        );
        // Still refused: nothing changes until someone trusts it.
        assert_eq!(
            known.pin("laptop", fp(b"b")).await.unwrap(),
            Pin::Changed { pinned: fp(b"a") }
        );
        assert_eq!(
            known.by_name("laptop").await.unwrap().unwrap().offered,
            Some(fp(b"b"))
        );
        assert_eq!(
            known.trust("laptop", None, false).await.unwrap(),
            (Some(fp(b"a")), fp(b"b"))
        );
        assert_eq!(
            known.pin("laptop", fp(b"b")).await.unwrap(),
            Pin::Known { verified: false }
        );
        assert!(matches!(
            known.trust("laptop", None, false).await,
            Err(TrustError::Nothing(_))
        ));
        assert!(matches!(
            known.trust("phone", None, false).await,
            Err(TrustError::Nothing(_))
        ));
        // Another process reading the same directory sees the same.
        let again = KnownPeers::new(dir.path());
        assert_eq!(
            again
                .by_id(&fp(b"b").peer_id())
                .await
                .unwrap()
                .unwrap()
                .name,
            "laptop"
        );
        assert_eq!(again.by_id(&fp(b"a").peer_id()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn two_devices_can_share_a_name_once_the_second_is_trusted_as_well() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        known.pin("laptop", fp(b"a")).await.unwrap();
        assert!(matches!(
            known.pin("laptop", fp(b"b")).await.unwrap(),
            Pin::Changed { .. }
        ));
        assert_eq!(
            known.trust("laptop", None, true).await.unwrap(),
            (Some(fp(b"a")), fp(b"b"))
        );
        for key in [b"a", b"b"] {
            assert!(matches!(
                known.pin("laptop", fp(key)).await.unwrap(),
                Pin::Known { .. }
            ));
        }
        assert_eq!(
            known.pin("laptop", fp(b"c")).await.unwrap(),
            Pin::Changed { pinned: fp(b"b") },
            "a third key is still refused"
        );
        // Replacing drops every key the name had.
        known.trust("laptop", None, false).await.unwrap();
        assert!(matches!(
            known.pin("laptop", fp(b"a")).await.unwrap(),
            Pin::Changed { .. }
        ));
        assert_eq!(known.list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn verification_is_remembered_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        known.pin("laptop", fp(b"a")).await.unwrap();
        assert!(!known.set_verified("laptop", fp(b"b")).await.unwrap());
        assert!(known.set_verified("laptop", fp(b"a")).await.unwrap());
        assert_eq!(
            known.pin("laptop", fp(b"a")).await.unwrap(),
            Pin::Known { verified: true }
        );
        known.trust("laptop", Some(fp(b"c")), false).await.unwrap();
        assert_eq!(
            known.pin("laptop", fp(b"c")).await.unwrap(),
            Pin::Known { verified: false },
            "a new key starts unverified"
        );
    }

    #[tokio::test]
    async fn a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KNOWN_PEERS_FILE), "{not json").unwrap();
        let err = KnownPeers::new(dir.path())
            .pin("x", fp(b"a"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(KNOWN_PEERS_FILE), "{err}");
    }
    /// Another process (`lantalk trust` next to a running chat screen)
    /// changes the file: the next question sees the change.
    #[tokio::test]
    async fn a_change_made_by_another_process_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let running = KnownPeers::new(dir.path());
        assert_eq!(running.pin("laptop", fp(b"a")).await.unwrap(), Pin::First);
        assert!(matches!(
            running.pin("laptop", fp(b"b")).await.unwrap(),
            Pin::Changed { .. }
        ));
        let other = KnownPeers::new(dir.path());
        other.trust("laptop", None, false).await.unwrap();
        assert_eq!(
            running.pin("laptop", fp(b"b")).await.unwrap(),
            Pin::Known { verified: false }
        );
    }

    /// Many changes at once (a handshake per connection of a flood) are
    /// answered together; every answer is right and the file holds them all.
    #[tokio::test]
    async fn changes_arriving_together_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        let names: Vec<String> = (0..200).map(|i| format!("peer{i}")).collect();
        let pins = names
            .iter()
            .map(|n| known.pin(n, fp(n.as_bytes())))
            .collect::<Vec<_>>();
        for pin in futures_util::future::join_all(pins).await {
            assert_eq!(pin.unwrap(), Pin::First);
        }
        let again = KnownPeers::new(dir.path());
        assert_eq!(again.list().await.unwrap().len(), 200);
    }

    /// A data directory that cannot be written (this lantalk runs with a
    /// temporary identity): nothing is pinned, and `trust` says why.
    #[tokio::test]
    async fn an_unwritable_directory_pins_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the directory should be: nothing can be created in it.
        let blocked = dir.path().join("not-a-dir");
        fs::write(&blocked, "").unwrap();
        let known = KnownPeers::new(&blocked);
        for key in [b"a", b"a", b"b"] {
            assert_eq!(known.pin("laptop", fp(key)).await.unwrap(), Pin::First);
        }
        assert!(known.list().await.unwrap().is_empty());
        let e = known.trust("laptop", Some(fp(b"c")), false).await;
        assert!(matches!(e, Err(TrustError::Write { .. })), "{e:?}");
    }
}
