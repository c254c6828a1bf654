//! Who this installation is: a display name, and a long-term key pair with a
//! self-signed certificate kept in the data directory. The peer id is
//! derived from the certificate's fingerprint, so a peer that completes a TLS
//! handshake with it has proven its id. Touches the file system only; no
//! network.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::protocol::{Fingerprint, Hello, PROTO_VERSION};

/// This installation as one process presents it: its hello, its keys and
/// its data directory.
#[derive(Debug)]
pub struct Identity {
    /// The hello we send: display name, peer id, software version.
    pub hello: Hello,
    /// The certificate and key sessions are encrypted with.
    pub keys: Keys,
    /// The data directory (keys, id, lock, history, known peers).
    pub dir: PathBuf,
    /// What the user should be told about the data directory, if anything:
    /// the keys are only for this run (the directory cannot be written), or
    /// the directory could not be locked.
    pub warning: Option<String>,
    /// Held while this process listens under the identity.
    _lock: Option<fs::File>,
}

/// A long-term key pair and its self-signed certificate.
pub struct Keys {
    /// The certificate, DER.
    pub cert: CertificateDer<'static>,
    /// Its private key, PKCS#8 DER.
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of `cert`.
    pub fingerprint: Fingerprint,
}

impl Clone for Keys {
    fn clone(&self) -> Self {
        Self {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint,
        }
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// A new P-256 key pair with a self-signed certificate for `lantalk`,
    /// and the contents of a key file holding them (certificate then key, PEM).
    pub fn generate() -> anyhow::Result<(Self, String)> {
        let made = rcgen::generate_simple_self_signed(vec!["lantalk".to_owned()])
            .context("cannot create a key pair")?;
        let pem = format!("{}{}", made.cert.pem(), made.signing_key.serialize_pem());
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
            .map_err(|e| anyhow::anyhow!("cannot encode the new key: {e}"))?;
        Ok((Self::from_parts(cert, key), pem))
    }

    fn from_parts(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> Self {
        let fingerprint = Fingerprint::of_cert(&cert);
        Self {
            cert,
            key,
            fingerprint,
        }
    }

    /// Parses a key file: the first certificate and the first private key.
    fn from_pem(text: &[u8]) -> Option<Self> {
        let cert = CertificateDer::pem_slice_iter(text).next()?.ok()?;
        let key = PrivateKeyDer::from_pem_slice(text).ok()?;
        Some(Self::from_parts(cert, key))
    }
}

impl Identity {
    /// Loads (or creates) the identity in `dir_flag` or the platform data
    /// directory, named `name_flag` or after the host. With `listening`, the
    /// directory is locked so no second listener can share the keys.
    ///
    /// A data directory that cannot be written (read-only, not a directory,
    /// no permission) is not fatal: the keys are then made up for this run,
    /// or the lock left out, and [`Identity::warning`] says so. Fails only
    /// when another lantalk holds the directory, when the key file is
    /// corrupt, or when there is no data directory at all.
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
        let (keys, warning) = match load_or_create_keys(&dir) {
            Ok(keys) => {
                let warning = lock_failed.map(|e| {
                    format!(
                        "{e:#}; nothing stops a second lantalk from using this identity at the same time"
                    )
                });
                (keys, warning)
            }
            Err(e) if e.is::<InvalidKeys>() => return Err(e),
            Err(e) => (
                Keys::generate()?.0,
                Some(format!(
                    "{e:#}; using a temporary identity for this run (peers will not recognise this lantalk after a restart)"
                )),
            ),
        };
        let hello = Hello {
            proto: PROTO_VERSION,
            id: keys.fingerprint.peer_id(),
            name: display_name(name_flag),
            app: concat!("lantalk/", env!("CARGO_PKG_VERSION")).to_owned(),
        };
        Ok(Self {
            hello,
            keys,
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

/// The key file exists but does not hold a certificate and a key.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} does not hold a certificate and a private key (PEM); move it away to make a new identity (peers that pinned the old one will warn)",
    .0.display()
)]
pub struct InvalidKeys(PathBuf);

/// Name of the file, inside the data directory, that holds the certificate
/// and the private key (mode 0600).
pub const KEY_FILE: &str = "identity.pem";

/// Name of the file, inside the data directory, that holds the peer id
/// derived from the certificate, for scripts and people to read. Earlier
/// versions kept a random id here.
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

/// Reads the keys from `dir`, creating the directory and a new key pair on
/// first run. The derived peer id is (re)written to the `id` file.
pub fn load_or_create_keys(dir: &Path) -> anyhow::Result<Keys> {
    let path = dir.join(KEY_FILE);
    let keys = match fs::read(&path) {
        Ok(text) => Keys::from_pem(&text).ok_or_else(|| InvalidKeys(path.clone()))?,
        // No keys yet (or no directory yet): make them.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let (keys, pem) = Keys::generate()?;
            write_private(dir, KEY_FILE, pem.as_bytes())?;
            keys
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let id = keys.fingerprint.peer_id();
    let id_path = dir.join(ID_FILE);
    if fs::read_to_string(&id_path)
        .map(|t| t.trim() != id)
        .unwrap_or(true)
    {
        // Only informative: a failure to write it changes nothing.
        let _ = write_private(dir, ID_FILE, format!("{id}\n").as_bytes());
    }
    Ok(keys)
}

/// Writes `name` in `dir` with mode 0600, through a temporary file and a
/// rename, so a crash never leaves it half-written.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = dir.join(format!("{name}.tmp{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
    }
    let path = dir.join(name);
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
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
    use crate::protocol::is_valid_peer_id;

    #[test]
    fn keys_are_created_once_private_and_then_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_keys(dir.path()).unwrap();
        let id = first.fingerprint.peer_id();
        assert!(is_valid_peer_id(&id), "{id}");
        let again = load_or_create_keys(dir.path()).unwrap();
        assert_eq!(again.fingerprint, first.fingerprint);
        assert_eq!(again.cert, first.cert);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        // The id file says which id the key proves, for people and scripts.
        let written = fs::read_to_string(dir.path().join(ID_FILE)).unwrap();
        assert_eq!(written.trim(), id);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            load_or_create_keys(other.path()).unwrap().fingerprint,
            first.fingerprint
        );
    }

    #[test]
    fn an_old_random_id_gives_way_to_the_one_the_key_proves() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(ID_FILE),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        let me = Identity::load(None, Some(dir.path()), false).unwrap();
        assert_eq!(me.hello.id, me.keys.fingerprint.peer_id());
        let written = fs::read_to_string(dir.path().join(ID_FILE)).unwrap();
        assert_eq!(written.trim(), me.hello.id);
    }

    #[test]
    fn a_corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let err = load_or_create_keys(dir.path()).unwrap_err().to_string();
        assert!(err.contains("certificate and a private key"), "{err}");
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
                    && warning.contains("using a temporary identity"),
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
        fs::write(dir.path().join(KEY_FILE), "junk").unwrap();
        let err = Identity::load(None, Some(dir.path()), false).unwrap_err();
        assert!(err.is::<InvalidKeys>(), "{err:#}");
    }

    #[test]
    fn name_flag_wins_and_hostname_has_no_domain() {
        assert_eq!(display_name(Some(" phone ")), "phone");
        assert!(!display_name(None).contains('.'));
        assert!(!display_name(Some("  ")).is_empty());
    }
}
