//! The follow loop driven over the simulation's disk and server, with a clock whose sleeps
//! end at once (and are recorded) and a scripted outside world.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cubby_core::sync::plan::Summary;

use super::*;
use crate::engine::remote::Mode;
use crate::engine::sim::{FakeFs, FakeRemote, FakeServer, Ledger, Rng, SharedLedger};
use crate::engine::{Engine, Options};

/// A clock whose sleeps end at once; each one that ends is recorded.
#[derive(Clone, Default)]
struct TestClock {
    now: Arc<AtomicI64>,
    slept: Arc<Mutex<Vec<Duration>>>,
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.now.fetch_add(1, Ordering::Relaxed) + 1_000_000
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        let (now, slept) = (self.now.clone(), self.slept.clone());
        async move {
            now.fetch_add(d.as_secs() as i64, Ordering::Relaxed);
            slept.lock().unwrap().push(d);
        }
    }
}

/// One step of the outside world's script.
enum Step {
    /// This signal comes now.
    Signal(Signal),
    /// Nothing comes: a timer or the longpoll wakes the loop.
    Quiet,
    /// Something happens (an edit, a check), then the script goes on.
    Do(Box<dyn FnOnce() + Send>),
}

struct Script(VecDeque<Step>);

impl Outside for Script {
    async fn next(&mut self, _answers: bool) -> Signal {
        loop {
            match self.0.pop_front() {
                Some(Step::Signal(s)) => return s,
                Some(Step::Quiet) => return std::future::pending().await,
                Some(Step::Do(f)) => f(),
                None => return Signal::Stop,
            }
        }
    }

    async fn stopped(&mut self) {
        std::future::pending().await
    }
}

/// What the loop showed, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shown {
    Passed {
        uploaded: u64,
        downloaded: u64,
        deleted_remote: u64,
        held: bool,
    },
    Held,
    Retrying(Duration),
    Answered(bool),
    WatcherError(String),
}

#[derive(Clone, Default)]
struct Record {
    shown: Arc<Mutex<Vec<Shown>>>,
    /// Called on each retry with how many came so far.
    on_retry: Option<Arc<dyn Fn(usize) + Send + Sync>>,
}

impl Show for Record {
    fn passed(&mut self, r: &Report) {
        self.shown.lock().unwrap().push(Shown::Passed {
            uploaded: r.uploaded,
            downloaded: r.downloaded,
            deleted_remote: r.deleted_remote,
            held: r.held.is_some(),
        });
    }
    fn held(&mut self, _: &Summary, _: bool) {
        self.shown.lock().unwrap().push(Shown::Held);
    }
    fn retrying(&mut self, _: &Error, wait: Duration) {
        let n = {
            let mut shown = self.shown.lock().unwrap();
            shown.push(Shown::Retrying(wait));
            shown
                .iter()
                .filter(|s| matches!(s, Shown::Retrying(_)))
                .count()
        };
        if let Some(f) = &self.on_retry {
            f(n);
        }
    }
    fn answered(&mut self, apply: bool) {
        self.shown.lock().unwrap().push(Shown::Answered(apply));
    }
    fn watcher_error(&mut self, why: &str) {
        self.shown
            .lock()
            .unwrap()
            .push(Shown::WatcherError(why.to_owned()));
    }
}

type TestEngine = Engine<FakeFs, FakeRemote, TestClock>;

struct World {
    _dir: tempfile::TempDir,
    server: FakeServer,
    fs: FakeFs,
    clock: TestClock,
    engine: TestEngine,
}

async fn world(opts: Options) -> World {
    let dir = tempfile::tempdir().unwrap();
    let ledger: SharedLedger = Arc::new(Mutex::new(Ledger::default()));
    let server = FakeServer::new(ledger.clone(), 0);
    let fs = FakeFs::new(ledger, 0);
    let clock = TestClock::default();
    let remote = FakeRemote {
        server: server.clone(),
        fs: fs.clone(),
        root: String::new(),
        read_only: None,
        refused_moves: Default::default(),
    };
    let engine = Engine::open(
        fs.clone(),
        remote,
        clock.clone(),
        &dir.path().join("state.sqlite"),
        Options {
            hash_threads: 1,
            durable_state: false,
            ..opts
        },
    )
    .await
    .unwrap();
    World {
        _dir: dir,
        server,
        fs,
        clock,
        engine,
    }
}

fn passed(uploaded: u64, downloaded: u64) -> Shown {
    Shown::Passed {
        uploaded,
        downloaded,
        deleted_remote: 0,
        held: false,
    }
}

fn server_has(server: &FakeServer, p: &str) -> bool {
    server.snapshot().contains_key(p)
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_change_on_either_side_makes_a_pass() {
    block_on(async {
        let mut w = world(Options::default()).await;
        let (fs, server) = (w.fs.clone(), w.server.clone());
        let mut script = Script(VecDeque::from([
            Step::Do(Box::new(move || fs.put("/here.txt", Some(b"written here")))),
            Step::Signal(Signal::LocalChange),
            Step::Do(Box::new(move || {
                server
                    .inner
                    .lock()
                    .unwrap()
                    .write(
                        "/there.txt",
                        &Mode::Add,
                        Arc::new(b"written there".to_vec()),
                    )
                    .unwrap();
            })),
            // No local event: the longpoll reports the server's change.
            Step::Quiet,
            Step::Signal(Signal::WatcherError("queue overflow".into())),
        ]));
        let mut record = Record::default();
        follow(&mut w.engine, &mut script, &mut record, false, true)
            .await
            .unwrap();
        assert_eq!(
            *record.shown.lock().unwrap(),
            vec![
                passed(0, 0),
                passed(1, 0),
                passed(0, 1),
                Shown::WatcherError("queue overflow".into()),
                passed(0, 0),
            ]
        );
        assert!(server_has(&w.server, "/here.txt"));
        assert!(w.fs.snapshot().contains_key("/there.txt"));
        // No backoff, no timer ran out: every pass had a reason.
        assert!(w.clock.slept.lock().unwrap().is_empty());
    });
}

#[test]
fn without_events_the_rescan_timer_makes_a_pass() {
    block_on(async {
        let mut w = world(Options::default()).await;
        w.server.inner.lock().unwrap().quiet_longpoll = true;
        let fs = w.fs.clone();
        let mut script = Script(VecDeque::from([
            Step::Do(Box::new(move || {
                fs.put("/late.txt", Some(b"no event for this"))
            })),
            // No event, no remote change: only the rescan timer ends the wait.
            Step::Quiet,
        ]));
        let mut record = Record::default();
        follow(&mut w.engine, &mut script, &mut record, false, false)
            .await
            .unwrap();
        assert!(server_has(&w.server, "/late.txt"));
        assert_eq!(
            *record.shown.lock().unwrap(),
            vec![passed(0, 0), passed(1, 0)]
        );
        assert_eq!(*w.clock.slept.lock().unwrap(), vec![RESCAN_UNWATCHED]);
    });
}

#[test]
fn failing_passes_back_off_and_recover() {
    block_on(async {
        let mut w = world(Options::default()).await;
        w.fs.put("/a.txt", Some(b"a"));
        // Every request fails (the server is down) until the third retry...
        w.server.set_faults(Some((Rng(5), 1.0)), None);
        let server = w.server.clone();
        let mut record = Record {
            on_retry: Some(Arc::new(move |n| {
                if n >= 3 {
                    server.set_faults(None, None);
                }
            })),
            ..Record::default()
        };
        // ...and once more after a good pass: the backoff starts over.
        let (server, fs) = (w.server.clone(), w.fs.clone());
        let mut script = Script(VecDeque::from([
            Step::Do(Box::new(move || {
                fs.put("/b.txt", Some(b"b"));
                server.set_faults(Some((Rng(6), 1.0)), None);
            })),
            Step::Signal(Signal::LocalChange),
        ]));
        follow(&mut w.engine, &mut script, &mut record, false, true)
            .await
            .unwrap();
        let shown = record.shown.lock().unwrap().clone();
        let s = Duration::from_secs;
        assert_eq!(
            shown,
            vec![
                Shown::Retrying(s(2)),
                Shown::Retrying(s(4)),
                Shown::Retrying(s(8)),
                passed(1, 0),
                Shown::Retrying(s(2)),
                passed(1, 0),
            ]
        );
        assert_eq!(*w.clock.slept.lock().unwrap(), vec![s(2), s(4), s(8), s(2)]);
        assert!(server_has(&w.server, "/a.txt") && server_has(&w.server, "/b.txt"));
        assert_eq!(backoff(5), s(32));
        assert_eq!(backoff(6), BACKOFF_MAX);
        assert_eq!(backoff(60), BACKOFF_MAX);
    });
}

#[test]
fn only_transient_failures_are_retried() {
    assert!(transient(&Error::Remote(RemoteError::Transient(
        "HTTP 503".into()
    ))));
    assert!(!transient(&Error::Remote(RemoteError::Fatal(
        "expired_access_token/".into()
    ))));
    assert!(!transient(&Error::Local(std::io::Error::other("gone"))));
}

#[test]
fn a_mass_deletion_is_held_until_the_user_says_yes() {
    block_on(async {
        let mut w = world(Options {
            min_delete_guard: 1,
            ..Options::default()
        })
        .await;
        for i in 0..8 {
            w.fs.put(&format!("/f{i}"), Some(format!("file {i}").as_bytes()));
        }
        let (fs, server, server2) = (w.fs.clone(), w.server.clone(), w.server.clone());
        let mut script = Script(VecDeque::from([
            Step::Do(Box::new(move || {
                for i in 0..6 {
                    fs.remove(&format!("/f{i}"));
                }
            })),
            Step::Signal(Signal::LocalChange),
            // Another pass: still held, not asked again.
            Step::Signal(Signal::LocalChange),
            Step::Signal(Signal::Answer("no".into())),
            Step::Do(Box::new(move || {
                assert_eq!(server.snapshot().len(), 8, "deleted without a yes");
            })),
            Step::Signal(Signal::Answer("yes".into())),
            Step::Do(Box::new(move || {
                assert_eq!(server2.snapshot().len(), 2, "the yes was not applied");
            })),
            Step::Signal(Signal::LocalChange),
        ]));
        let mut record = Record::default();
        follow(&mut w.engine, &mut script, &mut record, false, true)
            .await
            .unwrap();
        let held = Shown::Passed {
            uploaded: 0,
            downloaded: 0,
            deleted_remote: 0,
            held: true,
        };
        assert_eq!(
            *record.shown.lock().unwrap(),
            vec![
                passed(8, 0),
                held.clone(),
                Shown::Held,
                held.clone(),
                Shown::Answered(false),
                held,
                Shown::Answered(true),
                Shown::Passed {
                    uploaded: 0,
                    downloaded: 0,
                    deleted_remote: 6,
                    held: false,
                },
                passed(0, 0),
            ]
        );
    });
}

/// A deletion that reaches the loop in pieces, each below the guard, is still one mass
/// deletion: what recent passes deleted counts with what a pass would delete.
#[test]
fn a_mass_deletion_in_pieces_is_held_too() {
    block_on(async {
        let mut w = world(Options::default()).await;
        for i in 0..20 {
            w.fs.put(&format!("/f{i}"), Some(format!("file {i}").as_bytes()));
        }
        let (fs, fs2, server) = (w.fs.clone(), w.fs.clone(), w.server.clone());
        let mut script = Script(VecDeque::from([
            // 7 of 20: under the guard's floor of 10, applied.
            Step::Do(Box::new(move || {
                for i in 0..7 {
                    fs.remove(&format!("/f{i}"));
                }
            })),
            Step::Signal(Signal::LocalChange),
            // 8 more a moment later: 15 of 20 within the window, held.
            Step::Do(Box::new(move || {
                for i in 7..15 {
                    fs2.remove(&format!("/f{i}"));
                }
            })),
            Step::Signal(Signal::LocalChange),
            Step::Do(Box::new(move || {
                assert_eq!(server.snapshot().len(), 13, "the second piece was applied");
            })),
        ]));
        let mut record = Record::default();
        follow(&mut w.engine, &mut script, &mut record, false, true)
            .await
            .unwrap();
        assert_eq!(
            *record.shown.lock().unwrap(),
            vec![
                passed(20, 0),
                Shown::Passed {
                    uploaded: 0,
                    downloaded: 0,
                    deleted_remote: 7,
                    held: false,
                },
                Shown::Passed {
                    uploaded: 0,
                    downloaded: 0,
                    deleted_remote: 0,
                    held: true,
                },
                Shown::Held,
            ]
        );
    });
}
