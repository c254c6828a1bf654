//! The browsers the user let in without the token (accepted once, or by
//! `listen --web-open`): `DATA_DIR/web-browsers.json`, mode 0600, so that
//! they join at once next time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::files;

/// The file in the data directory.
pub const FILE: &str = "web-browsers.json";

/// The browser ids let in, with the name each had then. The file is read
/// at every join, so that `lantalk web --forget-browsers` (another process)
/// counts at once.
#[derive(Debug)]
pub struct Browsers {
    dir: PathBuf,
    /// Held while the file is read, changed and replaced.
    write: Mutex<()>,
}

impl Browsers {
    /// The browsers remembered in `dir`.
    pub fn load(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            write: Mutex::new(()),
        }
    }

    /// The browsers remembered (none if the file is missing or unreadable),
    /// by id, with the name each had.
    pub fn known(&self) -> BTreeMap<String, String> {
        std::fs::read(self.dir.join(FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Whether the browser `id` was let in before.
    pub fn knows(&self, id: &str) -> bool {
        self.known().contains_key(id)
    }

    /// Remembers the browser `id` (named `name`).
    pub fn remember(&self, id: &str, name: &str) {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut known = self.known();
        known.insert(id.to_owned(), name.to_owned());
        self.save(&known);
    }

    /// Forgets the browser `id`: it must bring the token or be accepted
    /// again. Whether it was remembered.
    pub fn forget(&self, id: &str) -> bool {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut known = self.known();
        let was = known.remove(id).is_some();
        if was {
            self.save(&known);
        }
        was
    }

    /// Forgets every browser; returns their names.
    pub fn forget_all(&self) -> Vec<String> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let known = self.known();
        if !known.is_empty() {
            self.save(&BTreeMap::new());
        }
        known.into_values().collect()
    }

    fn save(&self, known: &BTreeMap<String, String>) {
        let json = serde_json::to_vec_pretty(known).unwrap_or_default();
        if let Err(e) = files::write_private_atomically(&self.dir, FILE, &json) {
            tracing::warn!("cannot write {}: {e}", self.dir.join(FILE).display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_remembered_privately_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let browsers = Browsers::load(dir.path());
        assert!(!browsers.knows("ab"));
        browsers.remember("ab", "phone");
        let again = Browsers::load(dir.path());
        assert!(again.knows("ab"));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(again.forget("ab"));
        assert!(!again.forget("ab"));
        assert!(!Browsers::load(dir.path()).knows("ab"));
        browsers.remember("cd", "tablet");
        browsers.remember("ef", "phone");
        // Another process forgets them all: the running server sees it.
        let names = Browsers::load(dir.path()).forget_all();
        assert_eq!(names, ["tablet", "phone"]);
        assert!(!browsers.knows("cd") && !browsers.knows("ef"));
    }
}
