//! `cubby backup` at its edges: a file that changes while it is uploaded, and a source
//! folder that holds the client's own state (the Pi user backing up `/home/pi`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use support::{Home, Server};

mod support;

/// A TCP proxy in front of the server that, while `armed`, appends to `file` each time it
/// sees an upload request go by (after the client read and checked the file, before the
/// server answers): the file changes during its upload, every time.
fn changing_proxy(server_url: &str, file: PathBuf, armed: Arc<AtomicBool>) -> String {
    let upstream = server_url.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let server = TcpStream::connect(&upstream).unwrap();
            let (file, armed) = (file.clone(), armed.clone());
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let seen = String::from_utf8_lossy(&buf[..n]);
                    if armed.load(Ordering::SeqCst) && seen.contains("/2/files/upload") {
                        let mut f = std::fs::OpenOptions::new()
                            .append(true)
                            .open(&file)
                            .unwrap();
                        f.write_all(b"another log line\n").unwrap();
                    }
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    url
}

/// A home signed in as alice through `url` (the proxy).
fn signed_in_via(server: &Server, url: &str) -> Home {
    let home = Home::signed_in(server);
    let path = home.path("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["profiles"]["default"]["server"] = Value::String(url.to_owned());
    std::fs::write(&path, config.to_string()).unwrap();
    home
}

/// Server paths under `folder` (recursive), lower-cased.
fn server_paths(home: &Home, folder: &str) -> Vec<String> {
    home.ok(&["ls", "-R", folder, "--json"])
        .iter()
        .map(|m| m["path_lower"].as_str().unwrap().to_owned())
        .collect()
}

fn summary(home: &Home, args: &[&str]) -> (Option<i32>, Value) {
    let out = home.run(args);
    let lines = support::json_lines(out.stdout);
    let last = lines.last().cloned().unwrap_or(Value::Null);
    (out.status.code(), last)
}

/// A file appended to while it is uploaded: the run says so (exit 1), the version read is on
/// the server, and the next run sends the newer content as an update of that upload: no
/// conflicted copy of our own upload, and the server ends with the file as it is.
#[test]
fn a_file_that_changes_during_its_upload_goes_next_run_without_a_conflict() {
    let server = Server::start();
    let src_home = Home::new();
    let src = src_home.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let log = src.join("app.log");
    std::fs::write(&log, b"first line\n").unwrap();
    std::fs::write(src.join("steady.txt"), b"steady").unwrap();
    let armed = Arc::new(AtomicBool::new(true));
    let url = changing_proxy(&server.url, log.clone(), armed.clone());
    let home = signed_in_via(&server, &url);
    let src_arg = src.to_str().unwrap();

    let (code, first) = summary(&home, &["backup", src_arg, "/B", "--json"]);
    assert_eq!(code, Some(1), "{first}");
    let errors = first["errors"].to_string();
    assert!(errors.contains("changed while being backed up"), "{first}");

    // Nights go on: the log keeps growing between runs, not during them.
    armed.store(false, Ordering::SeqCst);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"written between runs\n").unwrap();
    drop(f);
    let (code, second) = summary(&home, &["backup", src_arg, "/B", "--json"]);
    assert_eq!(code, Some(0), "{second}");
    assert_eq!(
        second["conflicts"].as_array().map(Vec::len),
        Some(0),
        "{second}"
    );
    let paths = server_paths(&home, "/B");
    assert!(
        paths.iter().all(|p| !p.contains("conflicted copy")),
        "our own upload was taken for someone else's edit: {paths:?}"
    );
    home.ok(&["get", "/B/app.log", "fetched.log"]);
    assert_eq!(
        std::fs::read(home.path("fetched.log")).unwrap(),
        std::fs::read(&log).unwrap()
    );
    let (code, third) = summary(&home, &["backup", src_arg, "/B", "--json"]);
    assert_eq!(
        (code, third["uploaded"].as_u64()),
        (Some(0), Some(0)),
        "{third}"
    );
}

fn tree_of(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_owned());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// Backing up (and syncing) the folder that holds the client's own configuration, state and
/// caches, as the README's Pi user does with `/home/pi`: they are never sent, whatever the
/// patterns, so runs stay clean night after night.
#[test]
fn the_clients_own_files_are_never_backed_up_or_synced() {
    let server = Server::start();
    // The home folder is the source: config.json, state/ and cache/ live in it.
    let home = Home::signed_in(&server);
    std::fs::write(home.path("notes.txt"), b"notes").unwrap();
    std::fs::create_dir_all(home.path("docs")).unwrap();
    std::fs::write(home.path("docs/report.txt"), b"report").unwrap();
    // A negated pattern cannot bring them back.
    std::fs::write(home.path(".cubbyignore"), b"!state\n!config.json\n").unwrap();
    for night in 0..3 {
        let (code, s) = summary(&home, &["backup", ".", "/Pi", "--json"]);
        assert_eq!(code, Some(0), "night {night}: {s}");
        assert_eq!(s["conflicts"].as_array().map(Vec::len), Some(0), "{s}");
    }
    assert!(
        tree_of(&home.path("state"))
            .iter()
            .any(|p| p.contains("backups")),
        "the backup index lives inside the source"
    );
    let on_server = server_paths(&home, "/Pi");
    for own in ["/pi/config.json", "/pi/state/cubby", "/pi/cache/cubby"] {
        assert!(
            !on_server.iter().any(|p| p.starts_with(own)),
            "{own} was backed up: {on_server:?}"
        );
    }
    for mine in ["/pi/notes.txt", "/pi/docs/report.txt"] {
        assert!(on_server.contains(&mine.to_owned()), "{on_server:?}");
    }
    for pass in 0..2 {
        let out = home.run(&["sync", ".", "/Synced", "--once"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "sync pass {pass}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let synced = server_paths(&home, "/Synced");
    for own in ["config.json", "state/cubby", "cache/cubby"] {
        assert!(
            !synced
                .iter()
                .any(|p| p.starts_with(&format!("/synced/{own}"))),
            "{own} was synced: {synced:?}"
        );
    }
    assert!(
        synced.contains(&"/synced/docs/report.txt".to_owned()),
        "{synced:?}"
    );
}
