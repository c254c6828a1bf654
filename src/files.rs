//! Private files in the data directory. The directory holds the private
//! key, the conversations and the pinned keys of peers, so nobody but its
//! owner may read it: the directory is made mode 0700 and every file in it
//! 0600, whatever the umask. Files are created with `O_NOFOLLOW` (and, for
//! new and temporary files, `O_EXCL`), so a symbolic link planted where a
//! file is about to be written cannot send the write elsewhere; a file that
//! is replaced is written whole to a new temporary file, synced and renamed
//! into place ([`write_private_atomically`]), so a crash never leaves it
//! half-written. Mode bits only (no ACLs); std only, no other module of the
//! crate; Unix only, like the crate.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// The mode of the data directory (and of directories it is made in).
pub const DIR_MODE: u32 = 0o700;

/// The mode of every file in the data directory.
pub const FILE_MODE: u32 = 0o600;

/// `O_NOFOLLOW`, which std does not name: its value depends on the target.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "m68k"
    )
))]
const O_NOFOLLOW: i32 = 0o100000;
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(any(
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "m68k"
    ))
))]
const O_NOFOLLOW: i32 = 0o400000;
#[cfg(any(target_os = "solaris", target_os = "illumos"))]
const O_NOFOLLOW: i32 = 0x20000;
#[cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
const O_NOFOLLOW: i32 = 0x100;

/// The permission bits of `meta` (`0o644`, …), when group or others have
/// any access; `None` when it is private to its owner.
pub fn open_to_others(meta: &fs::Metadata) -> Option<u32> {
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Creates `dir`, and the directories it is in that are missing, mode
/// 0700. An existing directory is left as it is (see [`make_dir_private`]).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Takes group's and others' access away from the existing directory
/// `dir` (a symbolic link to a directory is followed). Returns the mode it
/// had when it changed, `None` when it was private already.
pub fn make_dir_private(dir: &Path) -> io::Result<Option<u32>> {
    let handle = File::open(dir)?;
    let meta = handle.metadata()?;
    if !meta.is_dir() {
        return Err(io::Error::from(io::ErrorKind::NotADirectory));
    }
    tighten(&handle, &meta)
}

/// Takes group's and others' access away from the existing file `path`
/// (never through a symbolic link: that is an error). Returns the mode it
/// had when it changed, `None` when it was private already.
pub fn make_private(path: &Path) -> io::Result<Option<u32>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    tighten(&file, &meta)
}

/// Clears the group and other bits of the open file or directory `handle`.
fn tighten(handle: &File, meta: &fs::Metadata) -> io::Result<Option<u32>> {
    let Some(mode) = open_to_others(meta) else {
        return Ok(None);
    };
    handle.set_permissions(fs::Permissions::from_mode(mode & !0o077))?;
    Ok(Some(mode))
}

/// Creates the new file `path`, mode 0600, open for writing. Fails when
/// anything is already there (`AlreadyExists`), a symbolic link included,
/// dangling or not: nothing is written through it.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(O_NOFOLLOW)
        .open(path)
}

/// Opens the file `path` to append to it (a log), creating it mode 0600;
/// an existing file loses group's and others' access. Never through a
/// symbolic link.
pub fn append_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .custom_flags(O_NOFOLLOW)
        .open(path)?;
    // An older file may be wider; failing to narrow it changes nothing else.
    let _ = file.metadata().and_then(|meta| tighten(&file, &meta));
    Ok(file)
}

/// Opens the lock file `path` (for [`File::lock`]), creating it mode 0600
/// and never truncating it; an existing file loses group's and others'
/// access where it can. A lock needs no write access: an existing file
/// that can only be read (a read-only directory) is opened to read. Never
/// through a symbolic link.
pub fn open_lock(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .custom_flags(O_NOFOLLOW)
        .open(path)
        .or_else(|e| {
            OpenOptions::new()
                .read(true)
                .custom_flags(O_NOFOLLOW)
                .open(path)
                .map_err(|_| e)
        })?;
    let _ = file.metadata().and_then(|meta| tighten(&file, &meta));
    Ok(file)
}

/// Makes temporary names unique within this process.
static TEMPORARY: AtomicU32 = AtomicU32::new(0);

/// Writes `bytes` as the file `name` in `dir`, mode 0600, replacing what
/// was there (a symbolic link named `name` is replaced, not followed):
/// through a new temporary file in `dir` (created exclusively, mode 0600,
/// under a name no other writer uses), synced, then renamed into place. A
/// crash leaves the old file or the new one, never a mix; an error leaves
/// the old one and no temporary file.
pub fn write_private_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let (tmp, mut file) = create_temporary(dir, name)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, dir.join(name))
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself on disk; some file systems cannot sync a
    // directory, which loses nothing the rename did not already risk.
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// A new file `NAME.PID-N.tmp` in `dir`, created exclusively: one left by
/// a crashed process with the same pid is stepped over, not reused.
fn create_temporary(dir: &Path, name: &str) -> io::Result<(std::path::PathBuf, File)> {
    let pid = std::process::id();
    let mut tries = 0;
    loop {
        let n = TEMPORARY.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{name}.{pid}-{n}.tmp"));
        match create_private(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn directories_are_made_0700_and_an_existing_one_is_narrowed_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        // Already there: fine, and left as it is.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o755);
        assert_eq!(make_dir_private(&dir).unwrap(), Some(0o755));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(make_dir_private(&dir).unwrap(), None);
        // Through a symbolic link to it.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        let link = tmp.path().join("link");
        symlink(&dir, &link).unwrap();
        assert_eq!(make_dir_private(&link).unwrap(), Some(0o750));
        assert_eq!(mode(&dir), 0o700);
        // A file is not a directory.
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        let err = make_dir_private(&file).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
    }

    #[test]
    fn a_new_file_is_0600_and_created_only_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("new");
        create_private(&path).unwrap().write_all(b"first").unwrap();
        assert_eq!(mode(&path), 0o600);
        let err = create_private(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
    }

    #[test]
    fn nothing_is_written_through_a_symbolic_link() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::write(&target, "theirs").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        let link = tmp.path().join("link");
        symlink(&target, &link).unwrap();
        let dangling = tmp.path().join("dangling");
        let nowhere = tmp.path().join("nowhere");
        symlink(&nowhere, &dangling).unwrap();

        for path in [&link, &dangling] {
            let err = create_private(path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
            // ELOOP: refused, not followed.
            for err in [
                append_private(path).unwrap_err(),
                open_lock(path).unwrap_err(),
                make_private(path).unwrap_err(),
            ] {
                assert!(err.to_string().contains("symbolic links"), "{err}");
            }
        }
        assert!(!nowhere.exists());
        assert_eq!(fs::read(&target).unwrap(), b"theirs");
        assert_eq!(mode(&target), 0o644);

        // Replacing a link named like the file replaces the link.
        write_private_atomically(tmp.path(), "link", b"ours").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(fs::read(&link).unwrap(), b"ours");
        assert_eq!(mode(&link), 0o600);
        assert_eq!(fs::read(&target).unwrap(), b"theirs");
    }

    #[test]
    fn an_atomic_write_is_0600_replaces_the_file_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("known.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let before = fs::metadata(&path).unwrap();
        write_private_atomically(tmp.path(), "known.json", b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        use std::os::unix::fs::MetadataExt as _;
        assert_ne!(fs::metadata(&path).unwrap().ino(), before.ino(), "renamed");
        assert_eq!(names(tmp.path()), ["known.json"]);

        // A temporary name left over by a crashed run is stepped over.
        let n = TEMPORARY.load(Ordering::Relaxed);
        let stale = format!("known.json.{}-{n}.tmp", std::process::id());
        fs::write(tmp.path().join(&stale), "stale").unwrap();
        write_private_atomically(tmp.path(), "known.json", b"newer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"newer");
        assert_eq!(fs::read(tmp.path().join(&stale)).unwrap(), b"stale");
    }

    #[test]
    fn a_failed_atomic_write_leaves_the_old_file_and_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        // The name is a non-empty directory: the rename fails.
        let taken = tmp.path().join("taken");
        fs::create_dir(&taken).unwrap();
        fs::write(taken.join("inside"), "").unwrap();
        write_private_atomically(tmp.path(), "taken", b"x").unwrap_err();
        assert_eq!(names(tmp.path()), ["taken"]);
        // No directory at all.
        let missing = tmp.path().join("missing");
        let err = write_private_atomically(&missing, "f", b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn logs_and_locks_are_0600_and_older_wider_ones_are_narrowed() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        append_private(&log).unwrap().write_all(b"one\n").unwrap();
        assert_eq!(mode(&log), 0o600);
        fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
        append_private(&log).unwrap().write_all(b"two\n").unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        assert_eq!(mode(&log), 0o600);

        let lock = tmp.path().join("lock");
        let held = open_lock(&lock).unwrap();
        held.try_lock().unwrap();
        assert_eq!(mode(&lock), 0o600);
        fs::set_permissions(&lock, fs::Permissions::from_mode(0o664)).unwrap();
        let again = open_lock(&lock).unwrap();
        assert!(again.try_lock().is_err(), "still one lock");
        assert_eq!(mode(&lock), 0o600);

        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(make_private(&file).unwrap(), Some(0o640));
        assert_eq!(make_private(&file).unwrap(), None);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(open_to_others(&fs::metadata(&file).unwrap()), None);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o604)).unwrap();
        assert_eq!(open_to_others(&fs::metadata(&file).unwrap()), Some(0o604));
    }
}
