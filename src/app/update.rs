//! [`update`]: the App's state machine.

use super::{Action, App, Effect};

/// Applies `action` at time `now_ms` (Unix ms) and returns what to do outside.
pub fn update(app: &mut App, action: Action, now_ms: u64) -> Vec<Effect> {
    let _ = (app, action, now_ms);
    Vec::new()
}
