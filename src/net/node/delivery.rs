//! Delivery to one peer as a plain state machine: the texts it has not
//! acknowledged yet, oldest first, and when to try reaching it again. No
//! sockets, no clock of its own: the time comes in with every call, so
//! every rule here is a plain unit test.
//!
//! The rules: a text stays until the peer acknowledges it; every new
//! session gets all of them again, in order (the peer drops copies by id);
//! while the peer cannot be reached, retries come after 250 ms, then twice
//! as long each time up to 30 s, and a session that opens starts over.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::Text;

/// The first retry to reach a peer with waiting texts, after a session
/// dropped or a dial failed: short, so a cut link costs little.
pub(super) const RETRY_FIRST: Duration = Duration::from_millis(250);

/// The longest wait between retries: a peer that is away for long is
/// tried twice a minute (and at once when discovery sees it back).
pub(super) const RETRY_MAX: Duration = Duration::from_secs(30);

/// Texts to one peer that it has not acknowledged yet, and the retry timer.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    /// Each with its place in the history, if it was stored.
    texts: VecDeque<(Text, Option<i64>)>,
    /// When to dial again, while the peer is unreachable.
    retry_at: Option<Instant>,
    /// The wait before the retry after `retry_at`.
    backoff: Duration,
}

impl Outgoing {
    /// Nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The waiting texts, oldest first.
    pub(super) fn texts(&self) -> impl ExactSizeIterator<Item = &Text> {
        self.texts.iter().map(|(t, _)| t)
    }

    /// The places in the history of the waiting texts that have one.
    pub(super) fn seqs(&self) -> Vec<i64> {
        self.texts.iter().filter_map(|(_, seq)| *seq).collect()
    }

    /// The ids of the waiting texts, oldest first.
    pub(super) fn ids(&self) -> Vec<String> {
        self.texts.iter().map(|(t, _)| t.id.clone()).collect()
    }

    /// Queues new texts after those waiting, each with its place in the
    /// history (if stored).
    pub(super) fn push(&mut self, texts: impl IntoIterator<Item = (Text, Option<i64>)>) {
        self.texts.extend(texts);
    }

    /// A session opened: everything waiting goes out on it (see
    /// [`Outgoing::texts`]) and retrying stops.
    pub(super) fn opened(&mut self) {
        self.retry_at = None;
        self.backoff = Duration::ZERO;
    }

    /// The peer acknowledged `id`: it no longer waits. `None` if it was not
    /// waiting; else its place in the history, if it has one.
    pub(super) fn acked(&mut self, id: &str) -> Option<Option<i64>> {
        // Acks come in order: the oldest text is the likely one.
        let at = if self.texts.front().is_some_and(|(t, _)| t.id == id) {
            Some(0)
        } else {
            self.texts.iter().position(|(t, _)| t.id == id)
        };
        at.and_then(|at| self.texts.remove(at)).map(|(_, seq)| seq)
    }

    /// The last session closed at `now`: the first retry is due shortly.
    /// Returns the ids that now wait, if any.
    pub(super) fn closed(&mut self, now: Instant) -> Option<Vec<String>> {
        if self.texts.is_empty() {
            return None;
        }
        self.backoff = RETRY_FIRST;
        self.retry_at = Some(now + RETRY_FIRST);
        Some(self.ids())
    }

    /// Reaching the peer failed at `now`: the next retry waits twice as
    /// long as the last (from [`RETRY_FIRST`] up to [`RETRY_MAX`]).
    /// Returns the ids that wait, if any.
    pub(super) fn unreachable(&mut self, now: Instant) -> Option<Vec<String>> {
        if self.texts.is_empty() {
            return None;
        }
        self.backoff = (self.backoff * 2).clamp(RETRY_FIRST, RETRY_MAX);
        self.retry_at = Some(now + self.backoff);
        Some(self.ids())
    }

    /// When the next retry is due, if one is scheduled.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Whether a retry is due at `now`; if so, it is taken (the next one
    /// is scheduled by [`Outgoing::unreachable`] if this one fails).
    pub(super) fn take_due(&mut self, now: Instant) -> bool {
        let due = self.retry_at.is_some_and(|at| at <= now);
        if due {
            self.retry_at = None;
        }
        due
    }

    /// Gives up on everything waiting; returns it.
    pub(super) fn give_up(&mut self) -> Vec<(Text, Option<i64>)> {
        self.retry_at = None;
        self.backoff = Duration::ZERO;
        self.texts.drain(..).collect()
    }

    /// Takes in `other`'s texts after ours (the same peer under another id).
    pub(super) fn absorb(&mut self, mut other: Outgoing) {
        self.texts.extend(other.texts.drain(..));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: &str) -> (Text, Option<i64>) {
        let text = Text {
            id: id.into(),
            ts: 0,
            body: format!("body of {id}"),
        };
        (text, Some(id.len() as i64))
    }

    fn ids(out: &Outgoing) -> Vec<String> {
        out.ids()
    }

    #[test]
    fn texts_wait_until_acknowledged_in_any_order() {
        let mut out = Outgoing::default();
        out.push([text("a"), text("bb"), text("ccc")]);
        assert_eq!(out.seqs(), [1, 2, 3]);
        assert_eq!(out.acked("a"), Some(Some(1)));
        assert_eq!(out.acked("a"), None, "an ack counts once");
        assert_eq!(out.acked("ccc"), Some(Some(3)));
        assert_eq!(out.acked("zzz"), None);
        assert_eq!(ids(&out), ["bb"]);
        assert_eq!(out.acked("bb"), Some(Some(2)));
        assert!(out.is_empty());
    }

    #[test]
    fn retries_start_short_double_and_stop_at_thirty_seconds() {
        let t0 = Instant::now();
        let mut out = Outgoing::default();
        assert_eq!(out.closed(t0), None, "nothing waits: no retry");
        assert_eq!(out.retry_at(), None);
        out.push([text("a")]);
        assert_eq!(out.closed(t0), Some(vec!["a".to_owned()]));
        assert_eq!(out.retry_at(), Some(t0 + RETRY_FIRST));
        assert!(!out.take_due(t0), "not yet");
        assert!(out.take_due(t0 + RETRY_FIRST));
        assert!(!out.take_due(t0 + RETRY_FIRST), "taken once");
        let mut waits = Vec::new();
        let mut now = t0;
        for _ in 0..10 {
            out.unreachable(now);
            let at = out.retry_at().unwrap();
            waits.push(at - now);
            now = at;
            assert!(out.take_due(now));
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            [
                500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000
            ]
        );
    }

    #[test]
    fn a_session_that_opens_gets_everything_and_starts_the_backoff_over() {
        let t0 = Instant::now();
        let mut out = Outgoing::default();
        out.push([text("a"), text("b")]);
        out.unreachable(t0);
        out.unreachable(t0);
        out.opened();
        assert_eq!(out.retry_at(), None);
        let resent: Vec<&str> = out.texts().map(|t| t.id.as_str()).collect();
        assert_eq!(resent, ["a", "b"], "all of them, oldest first");
        out.unreachable(t0);
        assert_eq!(
            out.retry_at(),
            Some(t0 + RETRY_FIRST),
            "from the start again"
        );
    }

    #[test]
    fn giving_up_empties_the_queue_and_stops_the_timer() {
        let t0 = Instant::now();
        let mut out = Outgoing::default();
        out.push([text("a"), text("b")]);
        out.closed(t0);
        let given: Vec<String> = out.give_up().into_iter().map(|(t, _)| t.id).collect();
        assert_eq!(given, ["a", "b"]);
        assert!(out.is_empty() && out.retry_at().is_none());
        let mut other = Outgoing::default();
        other.push([text("x")]);
        out.push([text("c")]);
        out.absorb(other);
        assert_eq!(ids(&out), ["c", "x"]);
    }
}
