//! Test harness: an in-process server bound to 127.0.0.1:0 over a temp data folder.

use std::path::Path;

use cubby_server::{Config, Server};
use cubby_store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub struct TestServer {
    pub url: String,
    pub store: Store,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir")).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> Self {
        let config = Config {
            data: dir.path().to_owned(),
            http: Some("127.0.0.1:0".parse().unwrap()),
            https: None,
            tls_cert: None,
            tls_key: None,
            metadata_url: None,
            blocks_url: None,
        };
        let server = Server::bind(&config).await.expect("server binds");
        let url = format!("http://{}", server.http_addr.unwrap());
        let store = server.store.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async {
                    let _ = rx.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            url,
            store,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and returns its data folder.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap().await.unwrap();
        self.dir
    }

    /// Starts the shutdown without waiting for it.
    pub fn begin_stop(&mut self) -> tokio::task::JoinHandle<()> {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap()
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
        Client {
            http: reqwest::Client::new(),
            url: self.url.clone(),
            token,
        }
    }

    pub fn block_files(&self) -> usize {
        count_files(&self.dir.path().join("blocks"))
    }
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "tmp" {
                n += count_files(&e.path());
            }
        } else {
            n += 1;
        }
    }
    n
}

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

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl Client {
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
            .post(format!("{}/2/{route}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&arg).unwrap())
            .send()
            .await
            .unwrap();
        Self::finish(resp).await
    }

    pub async fn upload_with(&self, arg: Value, data: impl Into<reqwest::Body>) -> Reply {
        let resp = self
            .http
            .post(format!("{}/2/files/upload", self.url))
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
            .post(format!("{}/2/files/download", self.url))
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
