//! The store's thread and its SQLite connection. (Placeholder: every job
//! fails until the database is implemented.)

use std::path::{Path, PathBuf};

use super::{Conversation, PeerRef, Record, State, StoreError};
use crate::protocol::Text;

#[derive(Clone)]
pub(super) struct Handle {
    path: PathBuf,
}

impl Handle {
    pub(super) fn open(dir: &Path) -> Result<Handle, StoreError> {
        Ok(Handle {
            path: dir.join("history.sqlite3"),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) async fn received(&self, _: Vec<(PeerRef, Text)>) -> Result<Vec<bool>, StoreError> {
        Err(StoreError::Closed)
    }

    pub(super) async fn sent(&self, _: PeerRef, _: Text, _: State) -> Result<i64, StoreError> {
        Err(StoreError::Closed)
    }

    pub(super) async fn set_state(
        &self,
        _: String,
        _: Vec<String>,
        _: State,
    ) -> Result<(), StoreError> {
        Err(StoreError::Closed)
    }

    pub(super) async fn outbox(&self) -> Result<Vec<(String, Text)>, StoreError> {
        Err(StoreError::Closed)
    }

    pub(super) async fn page(
        &self,
        _: String,
        _: Option<i64>,
        _: usize,
    ) -> Result<(Vec<Record>, bool), StoreError> {
        Err(StoreError::Closed)
    }

    pub(super) async fn search(
        &self,
        _: Option<String>,
        _: String,
        _: usize,
    ) -> Result<Vec<Record>, StoreError> {
        Err(StoreError::Closed)
    }

    pub(super) async fn conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        Err(StoreError::Closed)
    }
}
