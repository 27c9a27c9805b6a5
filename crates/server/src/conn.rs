//! Connection limits: what keeps a client holding idle or stalled sockets from denying
//! service to everyone else.
//!
//! Every accepted TCP connection passes through [`Guarded`], which
//! - refuses it past [`Limits::max_connections`] (the plain listener answers a `503` that
//!   says why, with `Retry-After`; the TLS listener can only close it);
//! - wraps its stream in [`Watched`], which closes the connection once it has been idle for
//!   [`Limits::idle`]: no request in flight and no byte read or written. A longpoll is a
//!   request in flight, however quiet, so it is never idle;
//! - wraps its service in [`Tracked`], which counts the requests in flight and gives each
//!   request body a progress timeout ([`Limits::body_progress`]): a handler waiting that long
//!   for the next bytes of a body gets an error, and the connection closes.
//!
//! Reading the request line and headers is bounded by hyper's header-read timeout
//! ([`Limits::header_read`]); hyper starts it when a kept-alive connection begins to wait for
//! its next request, so it bounds that wait too, and [`IDLE_TIMEOUT`] is the same length.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Headers of a request arrive in well under this on any link; a client dribbling them a
/// byte at a time (slowloris) is cut off.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection with no request in flight and no byte either way for this long is closed:
/// keep-alive connections clients forgot, and connections opened and left silent. As long as
/// [`HEADER_READ_TIMEOUT`], which hyper applies to a kept-alive connection's wait for its
/// next request anyway; HTTP client pools reopen a closed idle connection transparently.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A request body that sends nothing for this long is abandoned (a stalled upload holds a
/// connection, a task and its buffers). Slow links send something every few seconds.
pub const BODY_PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once, per listener. Each holds a file descriptor and a task; past
/// this, new ones are refused at once rather than left waiting. The descriptor limit can lower
/// it (see [`fd_budget`]).
pub const MAX_CONNECTIONS: usize = 10_000;
/// HTTP/2 streams a client may have open at once on one connection: enough to keep hundreds
/// of small requests in flight on one connection (a sync's first run), few enough that one
/// connection's share of the server (a task and buffers per stream) stays bounded. A client
/// wanting more waits for a stream to end, as the protocol says; it is not refused.
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 256;
/// The largest header block of one HTTP/2 request. HTTP/2's customary 16 KiB turned away
/// requests HTTP/1.1 serves: `Dropbox-API-Arg` carries the path, and a deep path of non-ASCII
/// names is six bytes a character once escaped. hyper's HTTP/1.1 reads up to ~400 KB of
/// headers; 64 KiB keeps a connection's worst case (this times its streams) bounded.
pub const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// Flow-control window of one HTTP/2 stream: how far a request body may run ahead of the
/// handler reading it, so an upload over HTTP/2 (every browser over HTTPS) moves at most this
/// much per round trip. With hyper's 1 MiB an upload from 50 ms away went at 18 MB/s where
/// HTTP/1.1 reached 250; with 8 MiB (two blocks) it goes at 90-100.
pub const H2_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// Flow-control window of a whole HTTP/2 connection: what all of its streams' bodies may hold
/// in buffers at once, so it bounds a connection's memory however many streams it opens (the
/// kernel's own TCP buffers for an HTTP/1.1 connection grow to a few MiB as well).
pub const H2_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// Streams a client may reset before the server has even started them, at once: the
/// "rapid reset" attack (CVE-2023-44487) opens and cancels streams to make the server do
/// work the client never waits for; past this the connection is closed.
pub const H2_MAX_PENDING_RESETS: usize = 32;
/// Descriptors kept for everything but connections: the database, block files being read
/// and written, staging, logs.
const RESERVED_FDS: u64 = 512;
/// How long a refused client is asked to wait.
const REFUSED_RETRY_AFTER_SECS: u64 = 1;
/// Connections the kernel queues for `accept`: a burst of clients reconnecting at once (a
/// pool's idle connections closed together) would otherwise overflow the default of 128
/// and wait out a SYN retransmit (1 s, then 3, then 7).
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket with [`LISTEN_BACKLOG`] (the kernel caps it at `somaxconn`).
pub fn listen(addr: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// Refusals logged: at most one line a second, with the count since the last one, so a flood
/// of connections cannot flood the log.
static REFUSED: AtomicU64 = AtomicU64::new(0);
static REFUSED_LOGGED_AT: AtomicU64 = AtomicU64::new(0);

fn log_refusal() {
    REFUSED.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = REFUSED_LOGGED_AT.load(Ordering::Relaxed);
    if now > last
        && REFUSED_LOGGED_AT
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let n = REFUSED.swap(0, Ordering::Relaxed);
        tracing::warn!(refused = n, "refused connections: too many connections");
    }
}

/// The limits of one server; tests shorten them.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read: Duration,
    pub idle: Duration,
    pub body_progress: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read: HEADER_READ_TIMEOUT,
            idle: IDLE_TIMEOUT,
            body_progress: BODY_PROGRESS_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Sets a listener's protocol limits: HTTP/1.1's header-read timeout, and HTTP/2's streams,
/// windows and header size (the `H2_` constants). Both protocols are served on both ports:
/// HTTP/2 by ALPN over TLS, by prior knowledge on the plain port.
pub fn configure(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: Limits,
) {
    builder.http1().header_read_timeout(limits.header_read);
    builder
        .http2()
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS);
}

/// Raises the process's descriptor limit to its hard limit (as servers and Go's runtime do),
/// and returns how many connections fit in it beside [`RESERVED_FDS`].
pub fn fd_budget() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (limit.current, limit.maximum)
        && cur < max
    {
        limit.current = Some(max);
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit.current = Some(cur);
        }
    }
    match limit.current {
        Some(n) => n.saturating_sub(RESERVED_FDS).max(16) as usize,
        None => usize::MAX,
    }
}

/// The state of one connection shared by its stream and its service.
struct ConnState {
    /// When a byte was last read or written, in ms since `epoch`.
    last_io_ms: AtomicU64,
    in_flight: AtomicUsize,
    epoch: Instant,
}

impl ConnState {
    fn touch(&self) {
        self.last_io_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// When the connection becomes idle, if nothing happens before.
    fn idle_at(&self, idle: Duration) -> Instant {
        self.epoch + Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed)) + idle
    }
}

/// The acceptor that applies [`Limits`] (see the module comment); `inner` runs after it on
/// the watched stream (TLS, for the HTTPS listener).
#[derive(Clone)]
pub struct Guarded<A> {
    inner: A,
    limits: Limits,
    permits: Arc<Semaphore>,
    /// Whether refusals can be answered in plain HTTP.
    plain: bool,
}

impl<A> Guarded<A> {
    pub fn new(inner: A, limits: Limits, plain: bool) -> Self {
        Self {
            inner,
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            plain,
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<A, S> axum_server::accept::Accept<TcpStream, S> for Guarded<A>
where
    A: axum_server::accept::Accept<Watched, Tracked<S>> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = BoxFuture<io::Result<(A::Stream, A::Service)>>;

    fn accept(&self, mut stream: TcpStream, service: S) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let plain = self.plain;
            return Box::pin(async move {
                log_refusal();
                if plain {
                    let body = "Too many connections to this server; retry in a moment.\n";
                    let answer = format!(
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
                         Retry-After: {REFUSED_RETRY_AFTER_SECS}\r\nConnection: close\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        stream.write_all(answer.as_bytes()).await?;
                        stream.shutdown().await
                    })
                    .await;
                }
                Err(io::Error::other("too many connections"))
            });
        };
        // A response's headers and body go out as separate writes: without TCP_NODELAY
        // the body would wait for the client's delayed ACK (~40 ms per small download).
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState {
            last_io_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            epoch: Instant::now(),
        });
        let limits = self.limits;
        let watched = Watched {
            inner: stream,
            state: state.clone(),
            idle: limits.idle,
            timer: Box::pin(tokio::time::sleep(limits.idle)),
            _permit: permit,
        };
        let tracked = Tracked {
            inner: service,
            state,
            body_progress: limits.body_progress,
        };
        Box::pin(self.inner.accept(watched, tracked))
    }
}

/// A connection's stream, closed once idle (see [`Limits::idle`]).
pub struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Held for as long as the connection lives.
    _permit: OwnedSemaphorePermit,
}

impl Watched {
    /// With the stream waiting: fails once the connection has been idle too long, else arms
    /// the timer to look again then.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let busy = self.state.in_flight.load(Ordering::Relaxed) > 0;
            let at = if busy {
                Instant::now() + self.idle
            } else {
                self.state.idle_at(self.idle)
            };
            if !busy && at <= Instant::now() {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle too long",
                ));
            }
            let at = tokio::time::Instant::from_std(at);
            if self.timer.deadline() != at {
                self.timer.as_mut().reset(at);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.state.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.state.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.state.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection's service: counts requests in flight and times out stalled bodies.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
    body_progress: Duration,
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl<S, B> tower_service::Service<axum::http::Request<hyper::body::Incoming>> for Tracked<S>
where
    S: tower_service::Service<axum::http::Request<Body>, Response = axum::http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<hyper::body::Incoming>) -> Self::Future {
        self.state.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(self.state.clone());
        let timeout = self.body_progress;
        let req = req.map(|inner| {
            Body::new(Progress {
                inner,
                timeout,
                timer: None,
                waiting: false,
            })
        });
        let fut = self.inner.call(req);
        Box::pin(async move {
            let _guard = guard;
            fut.await
        })
    }
}

/// A request body that fails when the client sends nothing for [`Limits::body_progress`]
/// while the handler waits for it (time the handler spends elsewhere does not count).
struct Progress {
    inner: hyper::body::Incoming,
    timeout: Duration,
    /// Made the first time the handler has to wait: most small bodies arrive with their
    /// headers, and their requests then cost no timer at all.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the timer runs: the handler is waiting for a frame.
    waiting: bool,
}

impl http_body::Body for Progress {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            self.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if !self.waiting {
            self.waiting = true;
            let at = tokio::time::Instant::now() + self.timeout;
            match self.timer.as_mut() {
                Some(timer) => timer.as_mut().reset(at),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        let timer = self.timer.as_mut().expect("armed above");
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(io::Error::new(
            io::ErrorKind::TimedOut,
            "the request body sent nothing for too long",
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
