//! `cubby sync`'s continuous mode: a pass, then wait for a reason to pass again (a local
//! change from the file watcher, a remote change from the longpoll, the periodic rescan),
//! backing off while passes fail for a transient reason, and holding a mass deletion back
//! until the user says to apply it.
//!
//! The loop runs on the engine's seams: the longpoll is [`RemoteApi::wait`], every wait is
//! [`Clock::sleep`]; what comes from outside (watcher events, the answers typed to the
//! deletion question, SIGINT and SIGTERM) comes through [`Outside`] and what is shown goes
//! to [`Show`], so a test drives the whole loop with the simulation's disk and server.

use std::future::Future;
use std::time::Duration;

use cubby_core::sync::plan::Summary;

use crate::engine::{Clock, Engine, Error, LocalFs, RemoteApi, RemoteError, Report};

/// Quiet time the watcher waits after an event before it wakes the loop: an editor saving a
/// file writes, renames and chmods in a burst, which should make one pass, not three.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// Seconds a longpoll waits for a remote change: the shortest Dropbox allows, so a pass
/// still comes every half minute when nothing else wakes the loop (the server's side of a
/// change the feed missed is seen then).
pub const LONGPOLL_TIMEOUT: u64 = 30;
/// Wait after a failed longpoll before the next one: never spin against a server that is
/// down (a pass comes anyway when the wait ends).
pub const LONGPOLL_RETRY: Duration = Duration::from_secs(5);
/// Time between passes with a working watcher: a safety net for changes no event reported
/// (network file systems, an overflowed event queue the watcher did not flag).
pub const RESCAN_WATCHED: Duration = Duration::from_secs(600);
/// Time between passes without a watcher (the kernel's watch limit is reached): the only
/// way local changes are seen, so it is short.
pub const RESCAN_UNWATCHED: Duration = Duration::from_secs(30);
/// Wait after the first failed pass; doubled after each further failure...
pub const BACKOFF_START: Duration = Duration::from_secs(2);
/// ...up to this, so a server back after a long outage is used within a minute.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What came from outside the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The watcher saw a local change (or lost events: the pass rescans anyway).
    LocalChange,
    /// The watcher reported an error; a pass follows (it rescans).
    WatcherError(String),
    /// A line typed in answer to the mass-deletion question.
    Answer(String),
    /// No more answers will come (stdin closed: a service).
    AnswersClosed,
    /// SIGINT or SIGTERM: stop.
    Stop,
}

/// The world outside the loop: the watcher, the user's answers, the stop signals.
pub trait Outside: Send {
    /// The next signal; answers only while `answers` (a question is open), the others always.
    fn next(&mut self, answers: bool) -> impl Future<Output = Signal> + Send;
    /// Resolves when the loop must stop (during a backoff nothing else is listened to).
    fn stopped(&mut self) -> impl Future<Output = ()> + Send;
}

/// Where the loop tells what happens.
pub trait Show: Send {
    /// A pass ended.
    fn passed(&mut self, report: &Report);
    /// A mass deletion was held back (said once per hold); `answers`: whether a typed answer
    /// can apply it.
    fn held(&mut self, held: &Summary, answers: bool);
    /// A pass failed for a transient reason; the next one comes after `wait`.
    fn retrying(&mut self, error: &Error, wait: Duration);
    /// The user answered the question: apply the deletions or not.
    fn answered(&mut self, apply: bool);
    /// The watcher reported an error.
    fn watcher_error(&mut self, why: &str);
}

/// How long to wait after the `failures`th failed pass in a row (1, 2, ...).
pub fn backoff(failures: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX)
}

/// Whether a failed pass is worth trying again (the network or the server); anything else
/// stops the loop.
pub fn transient(e: &Error) -> bool {
    matches!(e, Error::Remote(RemoteError::Transient(_)))
}

/// Runs passes until `outside` says stop (`Ok`), or a pass fails for a reason other than a
/// transient one (that error). `force`: apply mass deletions without asking; `watching`:
/// whether a file watcher feeds `outside` (else local changes are found by rescans).
pub async fn follow<F, R, C, O, S>(
    engine: &mut Engine<F, R, C>,
    outside: &mut O,
    show: &mut S,
    force: bool,
    watching: bool,
) -> Result<(), Error>
where
    F: LocalFs,
    R: RemoteApi,
    C: Clock,
    O: Outside,
    S: Show,
{
    let rescan = if watching {
        RESCAN_WATCHED
    } else {
        RESCAN_UNWATCHED
    };
    let mut answers_open = true;
    let mut asking = false;
    let mut force_next = false;
    let mut failures = 0u32;
    loop {
        engine.set_force(force || force_next);
        let outcome = engine.pass().await;
        engine.set_force(force);
        force_next = false;
        match outcome {
            Ok(report) => {
                let _ = engine.set_last_error(None).await;
                failures = 0;
                show.passed(&report);
                match report.held {
                    Some(h) if !asking => {
                        asking = true;
                        show.held(&h, answers_open);
                    }
                    Some(_) => {}
                    None => asking = false,
                }
            }
            Err(e) => {
                let _ = engine.set_last_error(Some(e.to_string())).await;
                if !transient(&e) {
                    return Err(e);
                }
                failures += 1;
                let wait = backoff(failures);
                show.retrying(&e, wait);
                tokio::select! {
                    biased;
                    _ = outside.stopped() => return Ok(()),
                    _ = engine.clock().sleep(wait) => continue,
                }
            }
        }
        let cursor = engine.cursor().map(str::to_owned);
        let clock = engine.clock();
        let remote = engine.remote();
        let longpoll = async {
            match &cursor {
                Some(c) => {
                    if remote.wait(c, LONGPOLL_TIMEOUT).await.is_err() {
                        clock.sleep(LONGPOLL_RETRY).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        let signal = tokio::select! {
            biased;
            signal = outside.next(asking && answers_open) => Some(signal),
            _ = longpoll => None,
            _ = clock.sleep(rescan) => None,
        };
        match signal {
            None | Some(Signal::LocalChange) => {}
            Some(Signal::WatcherError(why)) => show.watcher_error(&why),
            Some(Signal::Answer(line)) => {
                if matches!(line.trim().to_lowercase().as_str(), "y" | "yes") {
                    show.answered(true);
                    force_next = true;
                    asking = false;
                } else {
                    show.answered(false);
                }
            }
            Some(Signal::AnswersClosed) => answers_open = false,
            Some(Signal::Stop) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
