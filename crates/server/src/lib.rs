//! Cubby's HTTP front: the Dropbox API v2 routes, longpoll and TLS.
//!
//! [`Server::bind`] opens the store and the listeners (so callers learn the real ports),
//! then [`Server::serve`] runs until the shutdown future resolves, finishing requests in
//! flight. The server knows nothing of SQL: it talks to [`cubby_store::Store`] only.

mod access;
pub mod api;
pub mod conn;
mod dav;
pub mod fetch;
pub mod limit;
pub mod metrics;
pub mod thumb;
pub mod tls;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use cubby_store::Store;
use tokio::sync::watch;

/// How long a graceful shutdown waits for requests in flight before closing connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Where to listen and where the data lives.
#[derive(Clone, Debug)]
pub struct Config {
    pub data: PathBuf,
    /// Plain HTTP listener; `None` disables it.
    pub http: Option<SocketAddr>,
    /// HTTPS listener; `None` disables it.
    pub https: Option<SocketAddr>,
    /// Operator-supplied certificate chain and key (PEM); a local CA is used otherwise.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `postgres://…` for the scale-out metadata back-end (SQLite in `data` otherwise).
    pub metadata_url: Option<String>,
    /// `s3://bucket…` for the scale-out block back-end (local disk in `data` otherwise).
    pub blocks_url: Option<String>,
    /// Days of history (old revisions, deleted files) to keep; `None` keeps everything.
    pub retention_days: Option<u32>,
    /// Networks `save_url` may fetch from besides the public internet (`10.0.0.0/8`, …).
    pub fetch_allow: Vec<String>,
    /// Log one line per request (see `access.rs`).
    pub access_log: bool,
    /// Connection timeouts and cap (see `conn.rs`).
    pub limits: conn::Limits,
}

/// Shared state of every handler.
pub struct AppState {
    pub store: Store,
    /// Flips to true when shutdown starts, so longpolls return at once.
    pub shutting_down: watch::Receiver<bool>,
    pub metrics: metrics::Metrics,
    /// The guarded HTTP client of `save_url`.
    pub fetcher: fetch::Fetcher,
    /// Failed sign-ins per login.
    pub signin_limiter: limit::Limiter,
    /// Failed sign-ins and token requests per client address.
    pub addr_limiter: limit::Limiter,
    /// Failed shared-link passwords per link (the web form and the API's `link_password`).
    pub link_limiter: limit::Limiter,
    /// Whether the access log is written.
    pub access_log: bool,
    /// Thumbnails: the cache and the decoding pool.
    pub thumbs: Arc<thumb::Thumbnailer>,
}

/// Failed sign-ins one login may make per window before it is refused.
pub const SIGNIN_FAILURES: usize = 10;
/// Failed sign-ins and token requests one client address may make per window.
pub const ADDRESS_FAILURES: usize = 100;
/// The sliding window of both limits.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A server whose listeners are bound.
pub struct Server {
    pub store: Store,
    pub http_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    /// The local CA certificate clients should trust, when the server generated its own.
    pub ca_file: Option<PathBuf>,
    retention_days: Option<u32>,
    access_log: bool,
    limits: conn::Limits,
    fetch_guard: fetch::Guard,
    http: Option<std::net::TcpListener>,
    https: Option<(std::net::TcpListener, axum_server::tls_rustls::RustlsConfig)>,
}

impl Server {
    /// Opens the store and binds the listeners.
    pub async fn bind(config: &Config) -> anyhow_like::Result<Self> {
        let store = Store::open_with(&cubby_store::StoreConfig {
            data_dir: config.data.clone(),
            metadata_url: config.metadata_url.clone(),
            blocks_url: config.blocks_url.clone(),
        })
        .await?;
        let fetch_guard = fetch::Guard::new(
            config
                .fetch_allow
                .iter()
                .map(|c| c.parse::<fetch::Cidr>())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--fetch-allow: {e}"))?,
        );
        let http = config.http.map(conn::listen).transpose()?;
        let mut ca_file = None;
        let https = match config.https {
            None => None,
            Some(addr) => {
                let (cert, key) = match (&config.tls_cert, &config.tls_key) {
                    (Some(c), Some(k)) => (c.clone(), k.clone()),
                    (None, None) => {
                        let local = tls::ensure_local_ca(&config.data.join("tls"))?;
                        ca_file = Some(local.ca_cert);
                        (local.server_cert, local.server_key)
                    }
                    _ => return Err("--tls-cert and --tls-key go together".into()),
                };
                let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                    .await
                    .map_err(|e| format!("loading {}: {e}", cert.display()))?;
                Some((conn::listen(addr)?, rustls))
            }
        };
        Ok(Self {
            http_addr: http.as_ref().map(|l| l.local_addr()).transpose()?,
            https_addr: https.as_ref().map(|(l, _)| l.local_addr()).transpose()?,
            store,
            ca_file,
            retention_days: config.retention_days,
            access_log: config.access_log,
            limits: config.limits,
            fetch_guard,
            http,
            https,
        })
    }

    /// Serves until `shutdown` resolves, then drains requests in flight and closes the store.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow_like::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = Arc::new(AppState {
            store: self.store.clone(),
            shutting_down: stop_rx,
            metrics: metrics::Metrics::default(),
            fetcher: fetch::Fetcher::new(self.fetch_guard.clone()),
            signin_limiter: limit::Limiter::new(SIGNIN_FAILURES, FAILURE_WINDOW),
            addr_limiter: limit::Limiter::new(ADDRESS_FAILURES, FAILURE_WINDOW),
            link_limiter: limit::Limiter::new(SIGNIN_FAILURES, FAILURE_WINDOW),
            access_log: self.access_log,
            thumbs: thumb::Thumbnailer::start(None),
        });
        self.store.spawn_pruner(self.retention_days);
        self.store.spawn_gc();
        let app = api::router(state).layer(axum::middleware::map_request(host_from_authority));
        let handle: Handle<SocketAddr> = Handle::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut limits = self.limits;
        let budget = conn::fd_budget();
        if budget < limits.max_connections {
            tracing::warn!(
                connections = budget,
                "the file-descriptor limit caps connections below the default; raise LimitNOFILE"
            );
            limits.max_connections = budget;
        }
        if let Some(l) = self.http {
            let mut server = axum_server::from_tcp(l)?
                .acceptor(conn::Guarded::new(
                    axum_server::accept::DefaultAcceptor::new(),
                    limits,
                    true,
                ))
                .handle(handle.clone());
            conn::configure(server.http_builder(), limits);
            let app = app.clone();
            tasks.spawn(async move {
                server
                    .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                    .await
            });
        }
        if let Some((l, cfg)) = self.https {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(cfg).acceptor(
                conn::Guarded::new(axum_server::accept::DefaultAcceptor::new(), limits, false),
            );
            let mut server = axum_server::from_tcp(l)?
                .acceptor(acceptor)
                .handle(handle.clone());
            conn::configure(server.http_builder(), limits);
            let app = app.clone().layer(axum::middleware::map_request(mark_https));
            tasks.spawn(async move {
                server
                    .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                    .await
            });
        }
        tokio::select! {
            _ = shutdown => {}
            Some(res) = tasks.join_next() => {
                res.map_err(|e| e.to_string())??;
            }
        }
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
        handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        while let Some(res) = tasks.join_next().await {
            res.map_err(|e| e.to_string())??;
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Tells handlers a request came over TLS, unless a balancer already said how it came.
async fn mark_https(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.headers().contains_key("x-forwarded-proto") {
        req.headers_mut().insert(
            "x-forwarded-proto",
            axum::http::HeaderValue::from_static("https"),
        );
    }
    req
}

/// Gives an HTTP/2 request (whose authority is in its URI, `:authority`, not in a `Host`
/// header) the `Host` header an HTTP/1.1 request carries, so everything that builds a URL
/// for the client (links, temporary links, redirects) sees the host and port it used.
async fn host_from_authority(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.headers().contains_key(axum::http::header::HOST)
        && let Some(value) = req
            .uri()
            .authority()
            .and_then(|a| a.as_str().rsplit('@').next())
            .and_then(|host| axum::http::HeaderValue::from_str(host).ok())
    {
        req.headers_mut().insert(axum::http::header::HOST, value);
    }
    req
}

/// A boxed error for the few fallible set-up paths; the binary wraps it in anyhow.
pub mod anyhow_like {
    pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;
    pub type Result<T> = std::result::Result<T, Error>;
}
