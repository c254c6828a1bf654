//! Known peers: every key met (its certificate's fingerprint), the name it
//! last gave (a label: several keys may go by one name), whether the people
//! checked it with the verification code, the addresses it was reached at,
//! and, once the user moved its conversation on, the key that replaced it.
//! A peer is its key: a new key is a new peer, whatever its name. Kept in
//! `known_peers.json` in the data directory.
//!
//! One thread per [`KnownPeers`] owns the file and a copy of it in memory:
//! callers (a TLS handshake on the async runtime among them) send it jobs
//! and await the answer, so no caller blocks on the disk or on another
//! process's lock. The copy is read again whenever the file changed (another
//! lantalk on the same data directory wrote it); every change is a locked
//! read-modify-write and an atomic rename, and changes that arrive together
//! are written once. Touches the file system only; no network.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

use serde::{Deserialize, Serialize};

use crate::protocol::{Fingerprint, MAX_NAME_LEN};

/// The file, inside the data directory.
pub const KNOWN_PEERS_FILE: &str = "known_peers.json";

/// At most this many keys met only because they connected to us, unasked
/// and never verified, are remembered: the oldest of them are forgotten
/// beyond (a host making a new key per connection cannot grow the file
/// without bound). Forgetting one costs nothing but a "first contact" the
/// next time; its conversation is kept by its id.
pub const MAX_INBOUND_PINS: usize = 512;

/// At most this many addresses are kept per key.
const MAX_ADDRS: usize = 8;

/// One key met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// The name it last gave (its `hello`): a label, not an identity.
    pub name: String,
    /// The key: its certificate's fingerprint.
    pub fp: Fingerprint,
    /// The people compared the verification code for this key.
    #[serde(default)]
    pub verified: bool,
    /// When it was first met, Unix milliseconds.
    #[serde(default)]
    pub since: u64,
    /// Where it was reached (`ADDRESS:PORT`), latest last: an address typed
    /// again is never taken in clear while it answered with this key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<String>,
    /// Met only because it connected to us, unasked (see [`MAX_INBOUND_PINS`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inbound: bool,
    /// The key the user moved this peer's conversation to (`trust`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<Fingerprint>,
}

impl Known {
    /// The peer id the key proves.
    pub fn id(&self) -> String {
        self.fp.peer_id()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    peers: Vec<Known>,
}

impl File {
    /// One entry per key, as older versions could pin one key under two
    /// names (`trust --also`): the latest name, verified if either was.
    fn one_per_key(&mut self) {
        let mut kept: Vec<Known> = Vec::with_capacity(self.peers.len());
        for known in self.peers.drain(..) {
            match kept.iter_mut().find(|k| k.fp == known.fp) {
                Some(first) => {
                    first.name = known.name;
                    first.verified |= known.verified;
                }
                None => kept.push(known),
            }
        }
        self.peers = kept;
    }
}

/// What a look at a presented key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// Never met: remembered now.
    First,
    /// Met before.
    Known {
        /// Checked with the verification code.
        verified: bool,
    },
}

/// How a key was met, for [`KnownPeers::pin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Met {
    /// It connected to us.
    Inbound,
    /// We connected to it (at this address).
    Dialled(SocketAddr),
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

    /// Every key met, in the order they were first met.
    pub async fn list(&self) -> Result<Vec<Known>, TrustError> {
        self.call(false, None, |file| (false, Ok(file.peers.clone())))
            .await
    }

    /// The key with this fingerprint, if met.
    pub async fn by_fp(&self, fp: Fingerprint) -> Result<Option<Known>, TrustError> {
        self.call(false, None, move |file| {
            (false, Ok(file.peers.iter().find(|k| k.fp == fp).cloned()))
        })
        .await
    }

    /// The key that proves the peer id `id`, if met.
    pub async fn by_id(&self, id: &str) -> Result<Option<Known>, TrustError> {
        let id = id.to_owned();
        self.call(false, None, move |file| {
            (false, Ok(file.peers.iter().find(|k| k.id() == id).cloned()))
        })
        .await
    }

    /// Every key that goes by `name` (compared without ASCII case), oldest first.
    pub async fn named(&self, name: &str) -> Result<Vec<Known>, TrustError> {
        let name = name.to_owned();
        self.call(false, None, move |file| {
            let found = file
                .peers
                .iter()
                .filter(|k| k.name.eq_ignore_ascii_case(&name))
                .cloned()
                .collect();
            (false, Ok(found))
        })
        .await
    }

    /// The key last reached at `addr`, if any.
    pub async fn reached_at(&self, addr: SocketAddr) -> Result<Option<Known>, TrustError> {
        let addr = addr.to_string();
        self.call(false, None, move |file| {
            let found = file
                .peers
                .iter()
                .filter(|k| k.addrs.contains(&addr))
                .max_by_key(|k| k.since)
                .cloned();
            (false, Ok(found))
        })
        .await
    }

    /// Remembers a key met in a session under `name`: the first time, as a
    /// new peer; later, its latest name. Where nothing can be written (a
    /// data directory that is read-only, so that this lantalk itself runs
    /// with a temporary identity), nothing is remembered and every key is
    /// taken as met for the first time.
    pub async fn pin(&self, name: &str, fp: Fingerprint, met: Met) -> Result<Pin, TrustError> {
        let name = bounded(name);
        self.call(true, Some(Pin::First), move |file| {
            let (changed, pin) = file.pin(&name, fp, met);
            (changed, Ok(pin))
        })
        .await
    }

    /// Continues the conversation of the peer with id `from` (its key, if
    /// it had one) with the key `to`, which the user read and accepted:
    /// the old key is marked replaced, the new one remembered under the
    /// old name if it was never met. Returns the old key (if it had one)
    /// and the new one.
    pub async fn trust(
        &self,
        from: &str,
        to: Fingerprint,
    ) -> Result<(Option<Known>, Known), TrustError> {
        let from = from.to_owned();
        self.call(true, None, move |file| {
            let old = file.peers.iter_mut().find(|k| k.id() == from);
            let name = old.as_ref().map(|k| k.name.clone());
            if let Some(old) = old {
                if old.fp == to {
                    return (
                        false,
                        Err(TrustError::Nothing(
                            "that is the key it has already; nothing to do".into(),
                        )),
                    );
                }
                old.replaced_by = Some(to);
            }
            let old = file.peers.iter().find(|k| k.id() == from).cloned();
            if !file.peers.iter().any(|k| k.fp == to) {
                file.peers.push(Known {
                    name: name.unwrap_or_default(),
                    fp: to,
                    verified: false,
                    since: now_ms(),
                    addrs: Vec::new(),
                    inbound: false,
                    replaced_by: None,
                });
            }
            let new = file.peers.iter_mut().find(|k| k.fp == to);
            // Chosen by the user: no longer a stranger that came unasked.
            let new = new.map(|k| {
                k.inbound = false;
                k.replaced_by = None;
                k.clone()
            });
            match new {
                Some(new) => (true, Ok((old, new))),
                None => (false, Err(TrustError::Closed)),
            }
        })
        .await
    }

    /// Marks the key `fp` as checked with the verification code. Returns
    /// false if that key was never met.
    pub async fn set_verified(&self, fp: Fingerprint) -> Result<bool, TrustError> {
        self.call(true, None, move |file| {
            match file.peers.iter_mut().find(|k| k.fp == fp) {
                Some(known) if known.verified => (false, Ok(true)),
                Some(known) => {
                    known.verified = true;
                    known.inbound = false;
                    (true, Ok(true))
                }
                None => (false, Ok(false)),
            }
        })
        .await
    }
}

/// A name as kept: at most [`MAX_NAME_LEN`] bytes (a `hello` is refused
/// beyond; a name from elsewhere is cut).
fn bounded(name: &str) -> String {
    if name.len() <= MAX_NAME_LEN {
        return name.to_owned();
    }
    let mut end = MAX_NAME_LEN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

impl File {
    /// [`KnownPeers::pin`] on the contents: whether they changed, and the verdict.
    fn pin(&mut self, name: &str, fp: Fingerprint, met: Met) -> (bool, Pin) {
        if let Some(known) = self.peers.iter_mut().find(|k| k.fp == fp) {
            let mut changed = false;
            if known.name != name {
                known.name = name.to_owned();
                changed = true;
            }
            if let Met::Dialled(addr) = met {
                changed |= known.inbound;
                known.inbound = false;
                changed |= note_addr(known, addr);
            }
            let verified = known.verified;
            return (changed, Pin::Known { verified });
        }
        let mut known = Known {
            name: name.to_owned(),
            fp,
            verified: false,
            since: now_ms(),
            addrs: Vec::new(),
            inbound: met == Met::Inbound,
            replaced_by: None,
        };
        if let Met::Dialled(addr) = met {
            note_addr(&mut known, addr);
        }
        self.peers.push(known);
        self.forget_strangers();
        (true, Pin::First)
    }

    /// Keeps at most [`MAX_INBOUND_PINS`] keys that only ever came unasked
    /// and were never verified, forgetting the oldest.
    fn forget_strangers(&mut self) {
        let strangers = self
            .peers
            .iter()
            .filter(|k| k.inbound && !k.verified)
            .count();
        let mut extra = strangers.saturating_sub(MAX_INBOUND_PINS);
        if extra == 0 {
            return;
        }
        // Oldest first: they are in the order met.
        self.peers.retain(|k| {
            if extra > 0 && k.inbound && !k.verified {
                extra -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// Adds `addr` to the addresses of `known` (latest last, bounded);
/// whether it was new.
fn note_addr(known: &mut Known, addr: SocketAddr) -> bool {
    let addr = addr.to_string();
    if known.addrs.last() == Some(&addr) {
        return false;
    }
    known.addrs.retain(|a| *a != addr);
    known.addrs.push(addr);
    if known.addrs.len() > MAX_ADDRS {
        known.addrs.remove(0);
    }
    true
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
        crate::files::create_private_dir(&self.dir)
            .and_then(|()| crate::files::open_lock(&self.dir.join("known_peers.lock")))
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
            Ok(bytes) => serde_json::from_slice::<File>(&bytes)
                .map(|mut file| {
                    file.one_per_key();
                    file
                })
                .map_err(|e| corrupt(Arc::new(e))),
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

    /// Writes the peers in memory: a new private file (0600, created
    /// exclusively) renamed into place.
    fn write(&mut self) -> Result<(), TrustError> {
        let Ok(file) = &self.file else { return Ok(()) };
        let path = self.path();
        let written = serde_json::to_vec_pretty(file)
            .map_err(std::io::Error::other)
            .and_then(|mut json| {
                json.push(b'\n');
                crate::files::write_private_atomically(&self.dir, KNOWN_PEERS_FILE, &json)
            });
        match written {
            Ok(()) => {
                self.dirty = false;
                self.stamp = stamp(&path);
                Ok(())
            }
            Err(e) => {
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

    fn at(port: u16) -> Met {
        Met::Dialled(SocketAddr::from(([10, 0, 0, 2], port)))
    }

    /// A peer is its key: another key under a known name is another peer,
    /// met for the first time, and both keep their names.
    #[tokio::test]
    async fn keys_are_peers_and_names_only_labels() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        assert_eq!(
            known.pin("laptop", fp(b"a"), Met::Inbound).await.unwrap(),
            Pin::First
        );
        assert_eq!(
            known.pin("laptop", fp(b"a"), Met::Inbound).await.unwrap(),
            Pin::Known { verified: false }
        );
        assert_eq!(
            known.pin("laptop", fp(b"b"), Met::Inbound).await.unwrap(),
            Pin::First
        );
        let named = known.named("LAPTOP").await.unwrap();
        assert_eq!(
            named.iter().map(|k| k.fp).collect::<Vec<_>>(),
            [fp(b"a"), fp(b"b")]
        );
        // A rename follows the key.
        known.pin("desk", fp(b"a"), Met::Inbound).await.unwrap();
        assert_eq!(known.by_fp(fp(b"a")).await.unwrap().unwrap().name, "desk");
        assert_eq!(known.named("laptop").await.unwrap().len(), 1);
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
    }

    #[tokio::test]
    async fn the_addresses_a_key_was_reached_at_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        known.pin("laptop", fp(b"a"), at(7342)).await.unwrap();
        let addr = SocketAddr::from(([10, 0, 0, 2], 7342));
        assert_eq!(known.reached_at(addr).await.unwrap().unwrap().fp, fp(b"a"));
        assert!(known.by_fp(fp(b"a")).await.unwrap().unwrap().addrs.len() == 1);
        let other = SocketAddr::from(([10, 0, 0, 3], 7342));
        assert_eq!(known.reached_at(other).await.unwrap(), None);
        // Dialled: no longer a stranger that came unasked.
        known.pin("phone", fp(b"p"), Met::Inbound).await.unwrap();
        assert!(known.by_fp(fp(b"p")).await.unwrap().unwrap().inbound);
        known.pin("phone", fp(b"p"), at(7000)).await.unwrap();
        assert!(!known.by_fp(fp(b"p")).await.unwrap().unwrap().inbound);
    }

    #[tokio::test]
    async fn trusting_a_new_key_marks_the_old_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        known.pin("phone", fp(b"old"), Met::Inbound).await.unwrap();
        let (old, new) = known
            .trust(&fp(b"old").peer_id(), fp(b"new"))
            .await
            .unwrap();
        assert_eq!(old.unwrap().fp, fp(b"old"));
        assert_eq!((new.fp, new.name.as_str()), (fp(b"new"), "phone"));
        let old = known.by_fp(fp(b"old")).await.unwrap().unwrap();
        assert_eq!(old.replaced_by, Some(fp(b"new")));
        // The same key again: nothing to do.
        assert!(matches!(
            known.trust(&fp(b"new").peer_id(), fp(b"new")).await,
            Err(TrustError::Nothing(_))
        ));
        // A conversation from before keys (an id no key proves) moves too.
        let (old, new) = known.trust(&"9".repeat(32), fp(b"n2")).await.unwrap();
        assert_eq!(old, None);
        assert_eq!(new.fp, fp(b"n2"));
    }

    #[tokio::test]
    async fn verification_is_remembered_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        known.pin("laptop", fp(b"a"), Met::Inbound).await.unwrap();
        assert!(!known.set_verified(fp(b"b")).await.unwrap());
        assert!(known.set_verified(fp(b"a")).await.unwrap());
        assert_eq!(
            known.pin("laptop", fp(b"a"), Met::Inbound).await.unwrap(),
            Pin::Known { verified: true }
        );
    }

    /// A host that makes a new key for every connection fills the file
    /// only up to the cap; keys we dialled or verified are never forgotten.
    #[tokio::test]
    async fn strangers_are_bounded_and_friends_kept() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownPeers::new(dir.path());
        known.pin("laptop", fp(b"laptop"), at(7342)).await.unwrap();
        let pins = (0..MAX_INBOUND_PINS + 40)
            .map(|i| known.pin("spam", fp(format!("k{i}").as_bytes()), Met::Inbound))
            .collect::<Vec<_>>();
        for pin in futures_util::future::join_all(pins).await {
            assert_eq!(pin.unwrap(), Pin::First);
        }
        let all = known.list().await.unwrap();
        assert_eq!(all.len(), MAX_INBOUND_PINS + 1);
        assert!(all.iter().any(|k| k.fp == fp(b"laptop")));
        assert!(!all.iter().any(|k| k.fp == fp(b"k0")), "the oldest went");
        // A name of any length is kept bounded.
        let long = "x".repeat(5000);
        known.pin(&long, fp(b"long"), at(1)).await.unwrap();
        let kept = known.by_fp(fp(b"long")).await.unwrap().unwrap();
        assert_eq!(kept.name.len(), MAX_NAME_LEN);
    }

    /// A file from before keys were peers: one key under two names is one
    /// key, and the old `offered` field is ignored.
    #[tokio::test]
    async fn an_older_file_is_read_one_entry_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = fp(b"a");
        let file = serde_json::json!({"peers": [
            {"name": "laptop", "fp": a, "verified": true, "since": 1, "offered": fp(b"z")},
            {"name": "desk", "fp": a, "verified": false, "since": 2},
        ]});
        fs::write(dir.path().join(KNOWN_PEERS_FILE), file.to_string()).unwrap();
        let known = KnownPeers::new(dir.path());
        let all = known.list().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].name.as_str(), all[0].verified), ("desk", true));
    }

    #[tokio::test]
    async fn a_change_made_by_another_process_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let running = KnownPeers::new(dir.path());
        assert_eq!(
            running.pin("laptop", fp(b"a"), Met::Inbound).await.unwrap(),
            Pin::First
        );
        let other = KnownPeers::new(dir.path());
        other.set_verified(fp(b"a")).await.unwrap();
        assert_eq!(
            running.pin("laptop", fp(b"a"), Met::Inbound).await.unwrap(),
            Pin::Known { verified: true }
        );
    }

    #[tokio::test]
    async fn a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KNOWN_PEERS_FILE), "{not json").unwrap();
        let err = KnownPeers::new(dir.path())
            .pin("x", fp(b"a"), Met::Inbound)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(KNOWN_PEERS_FILE), "{err}");
    }

    /// A data directory that cannot be written (this lantalk runs with a
    /// temporary identity): nothing is remembered.
    #[tokio::test]
    async fn an_unwritable_directory_pins_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the directory should be: nothing can be created in it.
        let blocked = dir.path().join("not-a-dir");
        fs::write(&blocked, "").unwrap();
        let known = KnownPeers::new(&blocked);
        for key in [b"a", b"a"] {
            assert_eq!(
                known.pin("laptop", fp(key), Met::Inbound).await.unwrap(),
                Pin::First
            );
        }
        assert!(known.list().await.unwrap().is_empty());
        let e = known.trust(&fp(b"a").peer_id(), fp(b"c")).await;
        assert!(matches!(e, Err(TrustError::Write { .. })), "{e:?}");
    }
}
