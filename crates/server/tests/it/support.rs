//! Test harness: in-process servers bound to 127.0.0.1:0.
//!
//! By default one server on the embedded back-ends (SQLite and local disk in a temp folder).
//! With `CUBBY_TEST_PG_URL` (a PostgreSQL server; each test gets its own database) and
//! optionally `CUBBY_TEST_S3_URL` (a bucket; each test gets its own prefix), two servers share
//! those back-ends and clients alternate requests between them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cubby_server::{Config, Server};
use cubby_store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The back-ends one test's servers share.
#[derive(Clone)]
struct Backends {
    metadata_url: Option<String>,
    blocks_url: Option<String>,
    /// Networks save_url may fetch from (tests allow loopback explicitly).
    fetch_allow: Vec<String>,
    limits: cubby_server::conn::Limits,
}

impl Backends {
    /// Fresh back-ends for one test, from the environment.
    async fn fresh() -> Self {
        let tag = cubby_core::hash::hex(&cubby_store::random_bytes::<6>());
        let metadata_url = match std::env::var("CUBBY_TEST_PG_URL") {
            Ok(base) if !base.is_empty() => {
                use sqlx::Executor;
                let admin = sqlx::PgPool::connect(&base)
                    .await
                    .expect("CUBBY_TEST_PG_URL connects");
                let db = format!("cubby_t_{tag}");
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                    .await
                    .expect("create test database");
                admin.close().await;
                let (head, _) = base.rsplit_once('/').expect("URL has a database");
                Some(format!("{head}/{db}"))
            }
            _ => None,
        };
        let blocks_url = match std::env::var("CUBBY_TEST_S3_URL") {
            Ok(url) if !url.is_empty() => {
                let (location, query) = url.split_once('?').unwrap_or((&url, ""));
                Some(format!(
                    "{}/t-{tag}?{query}",
                    location.trim_end_matches('/')
                ))
            }
            _ => None,
        };
        Self {
            metadata_url,
            blocks_url,
            fetch_allow: Vec::new(),
            limits: Default::default(),
        }
    }

    fn servers(&self) -> usize {
        if self.metadata_url.is_some() { 2 } else { 1 }
    }
}

struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

pub struct TestServer {
    /// Base URLs of the running servers (two in scale-out mode).
    pub urls: Vec<String>,
    /// The first server's store, for set-up (users, tokens).
    pub store: Store,
    pub dir: tempfile::TempDir,
    backends: Backends,
    running: Vec<Running>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_allowing_fetches_from(&[]).await
    }

    /// Starts with `save_url` allowed to fetch from these networks too.
    pub async fn start_allowing_fetches_from(networks: &[&str]) -> Self {
        let mut backends = Backends::fresh().await;
        backends.fetch_allow = networks.iter().map(|n| (*n).to_owned()).collect();
        Self::start_with(tempfile::tempdir().expect("temp dir"), backends).await
    }

    /// Starts with shorter connection limits.
    pub async fn start_with_limits(limits: cubby_server::conn::Limits) -> Self {
        let mut backends = Backends::fresh().await;
        backends.limits = limits;
        Self::start_with(tempfile::tempdir().expect("temp dir"), backends).await
    }

    /// Starts servers again on the data (and back-ends) of a stopped test server.
    pub async fn restart(stopped: (tempfile::TempDir, StoppedBackends)) -> Self {
        Self::start_with(stopped.0, stopped.1.0).await
    }

    async fn start_with(dir: tempfile::TempDir, backends: Backends) -> Self {
        let mut running = Vec::new();
        let mut store = None;
        for _ in 0..backends.servers() {
            let config = Config {
                data: dir.path().to_owned(),
                http: Some("127.0.0.1:0".parse().unwrap()),
                https: None,
                tls_cert: None,
                tls_key: None,
                metadata_url: backends.metadata_url.clone(),
                blocks_url: backends.blocks_url.clone(),
                retention_days: None,
                access_log: true,
                limits: backends.limits,
                fetch_allow: backends.fetch_allow.clone(),
            };
            let server = Server::bind(&config).await.expect("server binds");
            let url = format!("http://{}", server.http_addr.unwrap());
            store.get_or_insert_with(|| server.store.clone());
            let (stop, rx) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                server
                    .serve(async {
                        let _ = rx.await;
                    })
                    .await
                    .expect("server runs");
            });
            running.push(Running { url, stop, task });
        }
        Self {
            urls: running.iter().map(|r| r.url.clone()).collect(),
            store: store.expect("at least one server"),
            dir,
            backends,
            running,
        }
    }

    /// Stops the servers gracefully; the result restarts them with [`TestServer::restart`].
    pub async fn stop(mut self) -> (tempfile::TempDir, StoppedBackends) {
        for r in self.running.drain(..) {
            r.stop.send(()).unwrap();
            r.task.await.unwrap();
        }
        (self.dir, StoppedBackends(self.backends))
    }

    /// Starts the shutdown of every server without waiting for it.
    pub fn begin_stop(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        self.running
            .drain(..)
            .map(|r| {
                r.stop.send(()).unwrap();
                r.task
            })
            .collect()
    }

    /// Creates a user and a full-access client for it.
    pub async fn user(&self, name: &str) -> Client {
        self.store
            .add_user(name, &format!("{name}@example.com"), "pw-for-tests")
            .await
            .unwrap();
        self.client_for(name).await
    }

    pub async fn client_for(&self, name: &str) -> Client {
        let (token, _) = self.store.mint_token(name, None, &[]).await.unwrap();
        self.client_with_token(&token)
    }

    /// A client that sends this bearer token.
    pub fn client_with_token(&self, token: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            urls: Arc::new(self.urls.clone()),
            next: Arc::new(AtomicUsize::new(0)),
            token: token.to_owned(),
        }
    }

    /// Registers an app and returns it with its secret (`None` for a public client).
    pub async fn app(
        &self,
        name: &str,
        access: cubby_store::AccessType,
        redirect_uris: &[&str],
        public: bool,
    ) -> (cubby_store::App, Option<String>) {
        self.store
            .add_app(cubby_store::NewApp {
                name: name.to_owned(),
                access,
                key: None,
                secret: None,
                redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
                public_client: public,
                scopes: vec![],
                owner: None,
            })
            .await
            .unwrap()
    }

    /// A client of `user` through `app` (a long-lived token with all the app's scopes).
    pub async fn app_client(&self, user: &str, app: &cubby_store::App) -> Client {
        let issued = self
            .store
            .mint(user, Some(&app.key), &[], cubby_store::TokenAccess::Legacy)
            .await
            .unwrap();
        self.client_with_token(&issued.access_token)
    }

    /// Runs one SQL statement on the metadata database behind the servers (for set-ups no
    /// route can make, such as a token whose expiry has passed).
    pub async fn sql(&self, statement: &str) {
        use sqlx::Executor;
        match &self.backends.metadata_url {
            Some(url) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                pool.execute(sqlx::AssertSqlSafe(statement.to_owned()))
                    .await
                    .unwrap();
                pool.close().await;
            }
            None => {
                let url = format!("sqlite://{}", self.dir.path().join("meta.sqlite").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                pool.execute(sqlx::AssertSqlSafe(statement.to_owned()))
                    .await
                    .unwrap();
                pool.close().await;
            }
        }
    }

    pub async fn block_files(&self) -> usize {
        self.store.blocks.count().await.unwrap()
    }
}

/// Back-ends of a stopped test server, kept to restart on them.
pub struct StoppedBackends(Backends);

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a 200 and returns the JSON body.
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text());
        assert_eq!(self.headers["content-type"], "application/json");
        self.json()
    }

    /// Asserts a 409 and returns the error summary (without the random trailing dots).
    pub fn conflict(&self) -> String {
        assert_eq!(self.status, StatusCode::CONFLICT, "body: {}", self.text());
        let v = self.json();
        let summary = v["error_summary"]
            .as_str()
            .unwrap()
            .trim_end_matches('.')
            .to_owned();
        assert_eq!(summary, cubby_core::wire::error_summary(&v["error"]));
        summary
    }

    /// The Dropbox-API-Result header, decoded.
    pub fn api_result(&self) -> Value {
        let raw = self.headers["dropbox-api-result"]
            .to_str()
            .expect("header is ASCII");
        serde_json::from_str(raw).unwrap()
    }
}

/// A client of one user. In scale-out mode its requests alternate between the servers.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub urls: Arc<Vec<String>>,
    pub next: Arc<AtomicUsize>,
    pub token: String,
}

impl Client {
    /// The base URL for the next request (round robin over the servers).
    pub fn url(&self) -> String {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.urls[i % self.urls.len()].clone()
    }

    /// A client pinned to server `i` (modulo the number of servers).
    pub fn on(&self, i: usize) -> Client {
        Client {
            urls: Arc::new(vec![self.urls[i % self.urls.len()].clone()]),
            next: Arc::new(AtomicUsize::new(0)),
            ..self.clone()
        }
    }

    async fn finish(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn rpc(&self, route: &str, arg: Value) -> Reply {
        let resp = self
            .http
            .post(format!("{}/2/{route}", self.url()))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&arg).unwrap())
            .send()
            .await
            .unwrap();
        Self::finish(resp).await
    }

    pub async fn upload_with(&self, arg: Value, data: impl Into<reqwest::Body>) -> Reply {
        self.content("files/upload", arg, data).await
    }

    /// Calls an upload-style route.
    pub async fn content(&self, route: &str, arg: Value, data: impl Into<reqwest::Body>) -> Reply {
        let resp = self
            .http
            .post(format!("{}/2/{route}", self.url()))
            .bearer_auth(&self.token)
            .header("content-type", "application/octet-stream")
            .header("dropbox-api-arg", cubby_core::wire::header_safe_json(&arg))
            .body(data)
            .send()
            .await
            .unwrap();
        Self::finish(resp).await
    }

    /// Uploads in add mode and asserts success.
    pub async fn put(&self, path: &str, data: &[u8]) -> Value {
        self.upload_with(json!({"path": path}), data.to_vec())
            .await
            .ok()
    }

    pub async fn download(&self, arg: Value, range: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(format!("{}/2/files/download", self.url()))
            .bearer_auth(&self.token)
            .header("dropbox-api-arg", cubby_core::wire::header_safe_json(&arg));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        Self::finish(req.send().await.unwrap()).await
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Reply {
        Self::finish(req.send().await.unwrap()).await
    }

    pub async fn meta(&self, path: &str) -> Reply {
        self.rpc("files/get_metadata", json!({"path": path})).await
    }

    /// Lists a folder to the end (following has_more), returning entries and the final cursor.
    pub async fn list_all(&self, arg: Value) -> (Vec<Value>, String) {
        let mut v = self.rpc("files/list_folder", arg).await.ok();
        let mut entries: Vec<Value> = v["entries"].as_array().unwrap().clone();
        while v["has_more"].as_bool().unwrap() {
            v = self
                .rpc("files/list_folder/continue", json!({"cursor": v["cursor"]}))
                .await
                .ok();
            entries.extend(v["entries"].as_array().unwrap().iter().cloned());
        }
        (entries, v["cursor"].as_str().unwrap().to_owned())
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ seed as u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// The Dropbox content hash of bytes, computed independently of the server.
pub fn content_hash(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut outer = Sha256::new();
    for block in data.chunks(4 * 1024 * 1024) {
        outer.update(Sha256::digest(block));
    }
    outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
