//! Helpers shared by the CLI's test binaries (each includes this module with `mod support;`
//! and uses what it needs).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// Runs `cubby admin ARGS` on the embedded data folder `data`, with `stdin` as its input.
pub fn admin(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cubby"))
        .env("CUBBY_DATA", data)
        .env_remove("CUBBY_METADATA")
        .env_remove("CUBBY_BLOCKS")
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A command's output lines, each parsed as JSON (a line that is not JSON as a string).
pub fn json_lines(stdout: Vec<u8>) -> Vec<Value> {
    String::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::String(l.to_owned())))
        .collect()
}

/// The sum of the samples on the server's `/metrics` whose line starts with `prefix`, read
/// over a plain blocking connection (for tests that poll without a runtime).
pub fn metric_now(url: &str, prefix: &str) -> u64 {
    use std::io::Read;
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The value of the cookie `name` a response sets.
pub fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

pub const PASSWORD: &str = "client-test-password";

/// A running `cubby serve` on an ephemeral port, stopped on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cubby"))
            .env("CUBBY_DATA", data.path())
            .env_remove("CUBBY_METADATA")
            .env_remove("CUBBY_BLOCKS")
            .env("CUBBY_LOG", "warn")
            .args(["serve", "--http", "127.0.0.1:0", "--https", "off"])
            .args(["--fetch-allow", "127.0.0.0/8"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the server prints its address")
                .unwrap();
            if let Some(a) = line.trim().strip_prefix("http:") {
                break a.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let server = Self { child, url, data };
        let out = server.admin(&["user", "add", "alice", "--password-stdin"], PASSWORD);
        assert!(out.status.success());
        server
    }

    pub fn admin(&self, args: &[&str], stdin: &str) -> Output {
        admin(self.data.path(), args, stdin)
    }

    /// The sum of the /metrics samples whose line starts with one of `prefixes`.
    pub async fn metric(&self, prefixes: &[&str]) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// File commits the server made: successful uploads and session finishes.
    pub async fn file_writes(&self) -> u64 {
        self.metric(&[
            "cubby_http_requests_total{route=\"files/upload\",status=\"200\"}",
            "cubby_http_requests_total{route=\"files/upload_session/finish\",status=\"200\"}",
        ])
        .await
    }

    /// The file bytes the server received.
    pub async fn bytes_in(&self) -> u64 {
        self.metric(&["cubby_bytes_in_total"]).await
    }
}

/// A person's machine: a config file and a cache folder of its own.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A machine signed in as alice with a token the operator issued (what `cubby login`
    /// saves, without the browser).
    pub fn signed_in(server: &Server) -> Self {
        Self::signed_in_as(server, "alice")
    }

    /// A machine signed in as `user` (an existing account).
    pub fn signed_in_as(server: &Server, user: &str) -> Self {
        let home = Self::new();
        let out = server.admin(&["token", user, "--json"], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token: Value = serde_json::from_slice(&out.stdout).unwrap();
        let config = serde_json::json!({"profiles": {"default": {
            "server": server.url,
            "app_key": "cubby",
            "tokens": {"access_token": token["access_token"]},
        }}});
        std::fs::write(home.path("config.json"), config.to_string()).unwrap();
        home
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cubby"));
        c.env("CUBBY_CONFIG", self.dir.path().join("config.json"))
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env_remove("CUBBY_PROFILE")
            .current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its JSON lines.
    pub fn ok(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(out.stdout)
    }

    /// Runs a command that must fail with `code`; returns its standard error.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        err
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
