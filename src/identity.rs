//! Who this installation is: a display name and a stable 128-bit peer id kept
//! in the data directory. Touches the file system only; no network.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::protocol::{Hello, PROTO_VERSION, is_valid_peer_id};

/// This installation as one process presents it: its hello and data directory.
#[derive(Debug)]
pub struct Identity {
    /// The hello we send: display name, peer id, software version.
    pub hello: Hello,
    /// The data directory (id, lock, log).
    pub dir: PathBuf,
    /// What the user should be told about the data directory, if anything:
    /// the peer id is only for this run (the directory cannot be written), or
    /// the directory could not be locked.
    pub warning: Option<String>,
    /// Held while this process listens under the identity.
    _lock: Option<fs::File>,
}

impl Identity {
    /// Loads (or creates) the identity in `dir_flag` or the platform data
    /// directory, named `name_flag` or after the host. With `listening`, the
    /// directory is locked so no second listener can share the id.
    ///
    /// A data directory that cannot be written (read-only, not a directory,
    /// no permission) is not fatal: the id is then made up for this run, or
    /// the lock left out, and [`Identity::warning`] says so. Fails only when
    /// another lantalk holds the directory, when the id file is corrupt, or
    /// when there is no data directory at all.
    pub fn load(
        name_flag: Option<&str>,
        dir_flag: Option<&Path>,
        listening: bool,
    ) -> anyhow::Result<Self> {
        let dir = data_dir(dir_flag)?;
        let mut lock_failed = None;
        let lock = if listening {
            match lock_data_dir(&dir) {
                Ok(file) => Some(file),
                Err(e) if e.is::<AlreadyRunning>() => return Err(e),
                Err(e) => {
                    lock_failed = Some(e);
                    None
                }
            }
        } else {
            None
        };
        let (id, warning) = match load_or_create_id(&dir) {
            Ok(id) => {
                let warning = lock_failed.map(|e| {
                    format!(
                        "{e:#}; nothing stops a second lantalk from using this peer id at the same time"
                    )
                });
                (id, warning)
            }
            Err(e) if e.is::<InvalidId>() => return Err(e),
            Err(e) => (
                random_hex::<16>()?,
                Some(format!(
                    "{e:#}; using a temporary peer id for this run (peers will not recognise this lantalk after a restart)"
                )),
            ),
        };
        let hello = Hello {
            proto: PROTO_VERSION,
            id,
            name: display_name(name_flag),
            app: concat!("lantalk/", env!("CARGO_PKG_VERSION")).to_owned(),
        };
        Ok(Self {
            hello,
            dir,
            warning,
            _lock: lock,
        })
    }
}

/// Another process holds the data directory's lock.
#[derive(Debug, thiserror::Error)]
#[error(
    "another lantalk is already running with the data directory {} (stop it, or give this one its own --data-dir)",
    .0.display()
)]
pub struct AlreadyRunning(PathBuf);

/// The id file exists but does not hold a peer id.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} does not hold a valid peer id (32 lowercase hex characters); delete it to make a new one",
    .0.display()
)]
pub struct InvalidId(PathBuf);

/// Name of the file, inside the data directory, that holds the peer id.
const ID_FILE: &str = "id";

/// The display name to use: `--name` if given, else the machine's hostname
/// without any domain part, else `lantalk`.
pub fn display_name(flag: Option<&str>) -> String {
    if let Some(name) = flag.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    hostname_label().unwrap_or_else(|| "lantalk".to_owned())
}

/// The machine's hostname, first label only (`laptop.example.org` → `laptop`).
pub fn hostname_label() -> Option<String> {
    let raw = hostname::get().ok()?.to_string_lossy().into_owned();
    let label = raw.split('.').next().unwrap_or_default().trim();
    (!label.is_empty()).then(|| label.to_owned())
}

/// The data directory: `--data-dir` if given, else the platform's
/// (`~/.local/share/lantalk` on Linux).
pub fn data_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    match directories::ProjectDirs::from("", "", "lantalk") {
        Some(dirs) => Ok(dirs.data_dir().to_owned()),
        None => bail!("cannot determine a data directory (no home directory?); pass --data-dir"),
    }
}

/// Reads the peer id from `dir`, creating the directory and a new random id on first run.
pub fn load_or_create_id(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(ID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if is_valid_peer_id(id) {
                return Ok(id.to_owned());
            }
            return Err(InvalidId(path).into());
        }
        // No id yet (or no directory yet): make one below.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let id = random_hex::<16>()?;
    // Write to a temporary file and rename, so a crash never leaves a half-written id.
    let tmp = dir.join(format!("{ID_FILE}.tmp{}", std::process::id()));
    fs::write(&tmp, format!("{id}\n"))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

/// Takes the data directory for this process: only one listening lantalk may
/// use an identity at a time, or peers would see two hosts with one id. The
/// lock lasts as long as the returned file is open. A lock file that already
/// exists in a read-only directory still works. Fails with
/// [`AlreadyRunning`] when another process holds it.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<fs::File> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        // A lock needs no write access: an existing file read-only will do.
        .or_else(|e| fs::File::open(&path).map_err(|_| e))
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(AlreadyRunning(dir.to_owned()).into()),
        Err(fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// `N` random bytes from the operating system, as 2·N lowercase hex characters.
pub fn random_hex<const N: usize>() -> anyhow::Result<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_created_once_and_then_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_id(dir.path()).unwrap();
        assert!(is_valid_peer_id(&first), "{first}");
        assert_eq!(load_or_create_id(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create_id(other.path()).unwrap(), first);
    }

    #[test]
    fn corrupt_id_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(ID_FILE), "not an id").unwrap();
        let err = load_or_create_id(dir.path()).unwrap_err().to_string();
        assert!(err.contains("valid peer id"), "{err}");
    }

    #[test]
    fn data_dir_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("already running"), "{err}");
        drop(held);
        lock_data_dir(dir.path()).unwrap();
    }

    #[test]
    fn an_unwritable_data_dir_gives_a_temporary_id_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        // Not a directory: fails for root too.
        let dir = file.join("lantalk");
        for listening in [false, true] {
            let me = Identity::load(Some("phone"), Some(&dir), listening).unwrap();
            assert!(is_valid_peer_id(&me.hello.id));
            let warning = me.warning.unwrap();
            assert!(
                warning.contains(&dir.display().to_string())
                    && warning.contains("using a temporary peer id"),
                "{warning}"
            );
        }
        let a = Identity::load(None, Some(&dir), false).unwrap().hello.id;
        let b = Identity::load(None, Some(&dir), false).unwrap().hello.id;
        assert_ne!(a, b, "a temporary id is new each run");
    }

    #[test]
    fn a_writable_data_dir_gives_no_warning_and_a_second_listener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::load(None, Some(dir.path()), true).unwrap();
        assert_eq!(me.warning, None);
        let err = Identity::load(None, Some(dir.path()), true).unwrap_err();
        assert!(err.is::<AlreadyRunning>(), "{err:#}");
        fs::write(dir.path().join(ID_FILE), "junk").unwrap();
        let err = Identity::load(None, Some(dir.path()), false).unwrap_err();
        assert!(err.is::<InvalidId>(), "{err:#}");
    }

    #[test]
    fn name_flag_wins_and_hostname_has_no_domain() {
        assert_eq!(display_name(Some(" phone ")), "phone");
        assert!(!display_name(None).contains('.'));
        assert!(!display_name(Some("  ")).is_empty());
    }
}
