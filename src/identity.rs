//! Who this installation is: a display name, and a long-term key pair with a
//! self-signed certificate kept in the data directory. The peer id is
//! derived from the certificate's fingerprint, so a peer that completes a TLS
//! handshake with it has proven its id. The data directory is private (see
//! `files.rs`): made 0700, an older wider one of ours narrowed, the key
//! file 0600, and a key file that other users can open is told about.
//! Touches the file system only; no network.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::files;
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
    /// What the user should be told about the data directory, one line
    /// each: it was made private, the key file is open to other users, the
    /// keys are only for this run (the directory cannot be written), or the
    /// directory could not be locked.
    pub warnings: Vec<String>,
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
    /// This process holds the data directory's lock: it is the one
    /// listening lantalk on that directory.
    pub fn holds_lock(&self) -> bool {
        self._lock.is_some()
    }

    /// Loads (or creates) the identity in `dir_flag` or the platform data
    /// directory, named `name_flag`, or as `/name` last chose (kept in the
    /// directory: [`save_name`]), or after the host. With `listening`, the
    /// directory is locked so no second listener can share the keys.
    ///
    /// A data directory that cannot be written (read-only, not a directory,
    /// no permission) is not fatal: the keys are then made up for this run,
    /// or the lock left out, and [`Identity::warnings`] says so. Fails only
    /// when another lantalk holds the directory, when the key file is there
    /// but cannot be read ([`UnreadableKeys`]) or is corrupt
    /// ([`InvalidKeys`]), or when there is no data directory at all.
    pub fn load(
        name_flag: Option<&str>,
        dir_flag: Option<&Path>,
        listening: bool,
    ) -> anyhow::Result<Self> {
        let dir = data_dir(dir_flag)?;
        // First: the lock file would make an empty directory non-empty.
        let mut warnings: Vec<String> = make_data_dir_private(&dir).into_iter().collect();
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
        let keys = match load_keys(&dir) {
            Ok((keys, exposed)) => {
                warnings.extend(exposed);
                warnings.extend(lock_failed.map(|e| {
                    format!(
                        "{e:#}; nothing stops a second lantalk from using this identity at the same time"
                    )
                }));
                keys
            }
            // A key that is there but cannot be used is never replaced by
            // a temporary one: that would teach people to accept new keys.
            Err(e) if e.is::<InvalidKeys>() || e.is::<UnreadableKeys>() => return Err(e),
            Err(e) => {
                warnings.push(format!(
                    "{e:#}; using a temporary identity for this run (peers will not recognise this lantalk after a restart)"
                ));
                Keys::generate()?.0
            }
        };
        let hello = Hello {
            proto: PROTO_VERSION,
            id: keys.fingerprint.peer_id(),
            name: match name_flag {
                Some(_) => display_name(name_flag),
                None => saved_name(&dir).unwrap_or_else(|| display_name(None)),
            },
            app: concat!("lantalk/", env!("CARGO_PKG_VERSION")).to_owned(),
        };
        Ok(Self {
            hello,
            keys,
            dir,
            warnings,
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

/// The key file exists but cannot be read: no permission, an I/O error,
/// a directory in its place. Fatal: starting with a temporary key instead
/// would teach people to accept new keys.
#[derive(Debug)]
pub struct UnreadableKeys {
    path: PathBuf,
    error: io::Error,
}

impl std::fmt::Display for UnreadableKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        write!(f, "cannot read the key file {path}: {}; ", self.error)?;
        if self.error.kind() == io::ErrorKind::PermissionDenied {
            write!(
                f,
                "make it readable by the user running lantalk (as its owner: chmod 600 {}), or ",
                shell_word(&self.path)
            )?;
        }
        write!(
            f,
            "move it away to make a new identity (peers that pinned the old one will warn)"
        )
    }
}

impl std::error::Error for UnreadableKeys {}

/// Name of the file, inside the data directory, that holds the certificate
/// and the private key (mode 0600).
pub const KEY_FILE: &str = "identity.pem";

/// Name of the lock file, inside the data directory, that a listening
/// lantalk holds (see [`lock_data_dir`]).
const LOCK_FILE: &str = "lock";

/// Name of the file, inside the data directory, that holds the peer id
/// derived from the certificate, for scripts and people to read. Earlier
/// versions kept a random id here.
const ID_FILE: &str = "id";

/// The file in the data directory holding the name chosen with `/name`.
pub const NAME_FILE: &str = "name";

/// Keeps `name` (chosen with `/name` in the chat screen) in `dir`: it is
/// the name of every later run on that data directory without `--name`.
pub fn save_name(dir: &Path, name: &str) -> io::Result<()> {
    crate::files::write_private_atomically(dir, NAME_FILE, format!("{name}\n").as_bytes())
}

/// The name [`save_name`] kept in `dir`, if any (and usable).
fn saved_name(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(NAME_FILE)).ok()?;
    let name = text.trim();
    (!name.is_empty() && name.len() <= crate::protocol::MAX_NAME_LEN && !name.contains('\n'))
        .then(|| name.to_owned())
}

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

/// Reads the keys from `dir`, creating the directory (0700) and a new key
/// pair (0600) on first run. The derived peer id is (re)written to the `id`
/// file. Fails with [`UnreadableKeys`] or [`InvalidKeys`] when the key file
/// is there but cannot be used.
pub fn load_or_create_keys(dir: &Path) -> anyhow::Result<Keys> {
    load_keys(dir).map(|(keys, _)| keys)
}

/// [`load_or_create_keys`], and what to tell the user: the data directory
/// was made private, or the key file is open to other users.
fn load_keys(dir: &Path) -> anyhow::Result<(Keys, Vec<String>)> {
    let mut warnings: Vec<String> = make_data_dir_private(dir).into_iter().collect();
    let path = dir.join(KEY_FILE);
    let keys = match read_key_file(&path) {
        Ok((text, mode)) => {
            let keys = Keys::from_pem(&text).ok_or_else(|| InvalidKeys(path.clone()))?;
            warnings.extend(mode.map(|mode| exposed_key(&path, mode)));
            keys
        }
        // No keys yet (or no directory yet): make them.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            files::create_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let (keys, pem) = Keys::generate()?;
            files::write_private_atomically(dir, KEY_FILE, pem.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            keys
        }
        Err(error) => return Err(UnreadableKeys { path, error }.into()),
    };
    let id = keys.fingerprint.peer_id();
    let id_path = dir.join(ID_FILE);
    if fs::read_to_string(&id_path)
        .map(|t| t.trim() != id)
        .unwrap_or(true)
    {
        // Only informative: a failure to write it changes nothing.
        let _ = files::write_private_atomically(dir, ID_FILE, format!("{id}\n").as_bytes());
    }
    Ok((keys, warnings))
}

/// The key file's contents, and its mode when group or others may open it
/// (the mode of the file read, through any symbolic link).
fn read_key_file(path: &Path) -> io::Result<(Vec<u8>, Option<u32>)> {
    let mut file = fs::File::open(path)?;
    let mode = files::open_to_others(&file.metadata()?);
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    Ok((text, mode))
}

/// What to say about a key file that group or others may open (`mode`).
fn exposed_key(path: &Path, mode: u32) -> String {
    let why = if mode & 0o044 != 0 {
        "anyone who can read it can pose as this lantalk"
    } else if mode & 0o022 != 0 {
        "anyone who can write it can replace this lantalk's key"
    } else {
        "it should be private"
    };
    format!(
        "the key file {} is open to other users (mode {mode:04o}): {why}; make it private with: chmod 600 {}",
        path.display(),
        shell_word(path)
    )
}

/// `path` as one word for a shell command people may paste.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Makes an existing data directory that group or others may enter private
/// (0700), if it is ours: it holds our key (or the id file of one), or
/// nothing yet. A directory given as `--data-dir` that holds only other
/// programs' files is left as it is (the files lantalk writes there are
/// private all the same) until it holds our key; a shared directory such
/// as `/tmp` (sticky) never is ours. Returns what to tell the user, once: a
/// directory with our files in it was made private, or could not be. (An
/// empty one, made for lantalk by someone else, is made private quietly,
/// or left quietly when it cannot be, as on a read-only file system:
/// nothing in it was open to anyone yet.)
fn make_data_dir_private(dir: &Path) -> Option<String> {
    let meta = fs::metadata(dir).ok().filter(fs::Metadata::is_dir)?;
    let mode = files::open_to_others(&meta)?;
    if mode & 0o1000 != 0 {
        return None;
    }
    let (empty, ours) = match fs::read_dir(dir) {
        Ok(mut entries) => {
            let empty = entries.next().is_none();
            let ours = [KEY_FILE, ID_FILE]
                .iter()
                .any(|name| fs::symlink_metadata(dir.join(name)).is_ok());
            (empty, empty || ours)
        }
        Err(_) => (false, false),
    };
    if !ours {
        return None;
    }
    match files::make_dir_private(dir) {
        Ok(None) => None,
        _ if empty => None,
        Ok(Some(was)) => Some(format!(
            "made the data directory {} private (mode 0700; it was {was:04o}, open to other users)",
            dir.display()
        )),
        Err(e) => Some(format!(
            "the data directory {} is open to other users (mode {mode:04o}) and cannot be made private: {e}; make it private with: chmod 700 {}",
            dir.display(),
            shell_word(dir)
        )),
    }
}

/// Takes the data directory for this process: only one listening lantalk may
/// use an identity at a time, or peers would see two hosts with one id. The
/// lock lasts as long as the returned file is open. A lock file that already
/// exists in a read-only directory still works. Fails with
/// [`AlreadyRunning`] when another process holds it.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<fs::File> {
    files::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file =
        files::open_lock(&path).with_context(|| format!("cannot open {}", path.display()))?;
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
            let [warning] = &me.warnings[..] else {
                panic!("one warning: {:?}", me.warnings)
            };
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
        assert_eq!(me.warnings, Vec::<String>::new());
        let err = Identity::load(None, Some(dir.path()), true).unwrap_err();
        assert!(err.is::<AlreadyRunning>(), "{err:#}");
        fs::write(dir.path().join(KEY_FILE), "junk").unwrap();
        let err = Identity::load(None, Some(dir.path()), false).unwrap_err();
        assert!(err.is::<InvalidKeys>(), "{err:#}");
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_new_data_dir_and_its_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/lantalk");
        let me = Identity::load(None, Some(&dir), true).unwrap();
        assert_eq!(me.warnings, Vec::<String>::new());
        assert_eq!(mode(&dir), 0o700);
        for name in [KEY_FILE, ID_FILE, LOCK_FILE] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        // Nothing left over from writing.
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [ID_FILE, KEY_FILE, LOCK_FILE]);
    }

    #[test]
    fn an_open_data_dir_of_ours_is_made_private_saying_so_once() {
        let tmp = tempfile::tempdir().unwrap();
        // Empty (made for lantalk): nothing was open yet, nothing to say.
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        set_mode(&empty, 0o755);
        let me = Identity::load(None, Some(&empty), true).unwrap();
        assert_eq!(me.warnings, Vec::<String>::new());
        assert_eq!(mode(&empty), 0o700);
        // Holding our files (an older lantalk's): said once.
        let older = tmp.path().join("older");
        load_or_create_keys(&older).unwrap();
        for (dir, was) in [(&older, 0o755), (&older, 0o750)] {
            set_mode(dir, was);
            let me = Identity::load(None, Some(dir), false).unwrap();
            assert_eq!(
                me.warnings,
                [format!(
                    "made the data directory {} private (mode 0700; it was {was:04o}, open to other users)",
                    dir.display()
                )]
            );
            assert_eq!(mode(dir), 0o700);
            let again = Identity::load(None, Some(dir), false).unwrap();
            assert_eq!(again.warnings, Vec::<String>::new());
        }
    }

    #[test]
    fn a_directory_of_other_files_is_ours_only_once_it_holds_our_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shared");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("notes.txt"), "").unwrap();
        set_mode(&dir, 0o755);
        let me = Identity::load(None, Some(&dir), true).unwrap();
        assert_eq!(me.warnings, Vec::<String>::new());
        assert_eq!(mode(&dir), 0o755);
        for name in [KEY_FILE, ID_FILE, LOCK_FILE] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        drop(me);
        // Our key is there now: the directory is ours.
        let me = Identity::load(None, Some(&dir), true).unwrap();
        assert_eq!(me.warnings.len(), 1, "{:?}", me.warnings);
        assert_eq!(mode(&dir), 0o700);
        // A shared directory never is.
        let shared = tmp.path().join("sticky");
        fs::create_dir(&shared).unwrap();
        set_mode(&shared, 0o1777);
        load_or_create_keys(&shared).unwrap();
        let me = Identity::load(None, Some(&shared), true).unwrap();
        assert_eq!(me.warnings, Vec::<String>::new());
        assert_eq!(mode(&shared), 0o1777);
    }

    #[test]
    fn a_key_file_open_to_others_is_used_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("it's mine");
        let id = load_or_create_keys(&dir).unwrap().fingerprint;
        let key = dir.join(KEY_FILE);
        for (was, why) in [
            (0o644, "anyone who can read it can pose as this lantalk"),
            (
                0o620,
                "anyone who can write it can replace this lantalk's key",
            ),
        ] {
            set_mode(&key, was);
            let me = Identity::load(None, Some(&dir), false).unwrap();
            assert_eq!(me.keys.fingerprint, id);
            assert_eq!(
                me.warnings,
                [format!(
                    "the key file {} is open to other users (mode {was:04o}): {why}; make it private with: chmod 600 '{}'",
                    key.display(),
                    key.display().to_string().replace('\'', "'\\''")
                )]
            );
            // Told, not changed behind the user's back.
            assert_eq!(mode(&key), was);
        }
        assert_eq!(shell_word(Path::new("/a/b-c.pem")), "/a/b-c.pem");
        assert_eq!(shell_word(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }

    #[test]
    fn a_key_file_that_cannot_be_read_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in its place: reading it fails with EISDIR, for root too.
        let key = dir.path().join(KEY_FILE);
        fs::create_dir(&key).unwrap();
        for listening in [false, true] {
            let err = Identity::load(None, Some(dir.path()), listening).unwrap_err();
            assert!(err.is::<UnreadableKeys>(), "{err:#}");
            assert_eq!(
                format!("{err:#}"),
                format!(
                    "cannot read the key file {}: Is a directory (os error 21); move it away to make a new identity (peers that pinned the old one will warn)",
                    key.display()
                )
            );
        }
        // No permission: what to run is said too.
        let denied = UnreadableKeys {
            path: key.clone(),
            error: io::Error::from_raw_os_error(13),
        };
        assert_eq!(
            denied.to_string(),
            format!(
                "cannot read the key file {0}: Permission denied (os error 13); make it readable by the user running lantalk (as its owner: chmod 600 {0}), or move it away to make a new identity (peers that pinned the old one will warn)",
                key.display()
            )
        );
    }

    #[test]
    fn name_flag_wins_and_hostname_has_no_domain() {
        assert_eq!(display_name(Some(" phone ")), "phone");
        assert!(!display_name(None).contains('.'));
        assert!(!display_name(Some("  ")).is_empty());
    }
}
