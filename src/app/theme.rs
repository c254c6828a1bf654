//! The chat screen's colours, one per role. The defaults are the built-in
//! look; the config file's `[colours]` table replaces any of them.
//! `Color::Reset` means the terminal's own colour.

use ratatui::style::Color;

/// The colour of each role on the chat screen. Styles that are not colours
/// (bold names, dim system lines) stay as they are whatever the colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Our name on our messages.
    pub own: Color,
    /// A peer's name on its messages.
    pub peer: Color,
    /// lantalk's own lines in a conversation (dim italic).
    pub system: Color,
    /// The focused pane's border; the help overlay's border and keys.
    pub accent: Color,
    /// The `●` of a peer with an open session; "mDNS on".
    pub online: Color,
    /// The `·` and the word "offline" of a peer that left (dim).
    pub offline: Color,
    /// The `✓` after a message the peer acknowledged.
    pub delivered: Color,
    /// The `◷ why` after a message waiting for its peer.
    pub waiting: Color,
    /// Failures: `✗ why` after a message, the `✗` of a peer we cannot talk to.
    pub error: Color,
    /// Unread counts in the peers pane; the "new messages below" bar.
    pub unread: Color,
    /// The notice above the input; what limits mDNS, in the status bar.
    pub notice: Color,
    /// Background of the peer under the cursor while the peers pane is not focused.
    pub selection: Color,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            own: Color::Cyan,
            peer: Color::Green,
            system: Color::Reset,
            accent: Color::Cyan,
            online: Color::Green,
            offline: Color::Reset,
            delivered: Color::Green,
            waiting: Color::Yellow,
            error: Color::Red,
            unread: Color::Yellow,
            notice: Color::Yellow,
            selection: Color::DarkGray,
        }
    }
}

impl Theme {
    /// No colour at all, every role in the terminal's own colour: the
    /// defaults when `NO_COLOR` is set (<https://no-color.org>). Bold, dim
    /// and reversed text stay.
    #[must_use]
    pub fn monochrome() -> Self {
        Self {
            own: Color::Reset,
            peer: Color::Reset,
            system: Color::Reset,
            accent: Color::Reset,
            online: Color::Reset,
            offline: Color::Reset,
            delivered: Color::Reset,
            waiting: Color::Reset,
            error: Color::Reset,
            unread: Color::Reset,
            notice: Color::Reset,
            selection: Color::Reset,
        }
    }
}
