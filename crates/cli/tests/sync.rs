//! `cubby sync` end to end: the real binary against a real `cubby serve`, two computers (two
//! homes and folders) on one account, edits on both and on the server meanwhile, processes
//! killed with SIGKILL mid-pass, the mass-deletion guard, one-way modes, exclusions, names the
//! local disk refuses, and `--status`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Home, Server};

mod support;

/// Every file under `dir` (relative path → content) and every folder (content `None`),
/// leaving out the engine's own `.cubby-cache`. What a running sync renames away between
/// listing and reading (a partial download moved into place) is left out: callers that look
/// while a sync runs poll until the tree they expect appears.
fn tree(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if gone(&e) && d != dir => continue,
            Err(e) => panic!("{}: {e}", d.display()),
        };
        for e in entries {
            let Ok(e) = e else { continue };
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(".cubby-cache") {
                continue;
            }
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                match std::fs::read(&p) {
                    Ok(data) => {
                        out.insert(rel, Some(data));
                    }
                    Err(e) if gone(&e) => {}
                    Err(e) => panic!("{}: {e}", p.display()),
                }
            }
        }
    }
    out
}

fn write(dir: &Path, rel: &str, data: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// Waits until `check` holds (up to 60 s), or fails with `what`.
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A continuous `cubby sync`, stopped with SIGTERM on drop.
struct Syncing(Child);

impl Syncing {
    fn start(home: &Home, local: &Path, remote: &str) -> Self {
        let child = home
            .command(&["sync", local.to_str().unwrap(), remote])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// SIGTERM; the process must exit cleanly (status 0) soon.
    fn stop(mut self) {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                assert!(status.success(), "cubby sync exited with {status}");
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "cubby sync did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Syncing {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cubby sync LOCAL REMOTE --once ARGS`: its exit code and output.
fn once(home: &Home, local: &Path, remote: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["sync", local.to_str().unwrap(), remote, "--once"];
    all.extend_from_slice(args);
    let out = home.run(&all);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The server's files under `remote` (relative path → content), read through the API.
fn server_tree(home: &Home, remote: &str) -> BTreeMap<String, Option<Vec<u8>>> {
    let entries = home.ok(&["ls", "-R", remote, "--json"]);
    let mut out = BTreeMap::new();
    for e in entries {
        let path = e["path_display"].as_str().unwrap().to_owned();
        let rel = path[remote.len() + 1..].to_owned();
        if e[".tag"] == "folder" {
            out.insert(rel, None);
        } else {
            let local = home.path("fetched");
            home.ok(&["get", &path, local.to_str().unwrap()]);
            out.insert(rel, Some(std::fs::read(&local).unwrap()));
            std::fs::remove_file(&local).unwrap();
        }
    }
    out
}

/// How many files the server holds under `remote` (0 while it does not exist).
fn server_files(home: &Home, remote: &str) -> usize {
    let out = home.run(&["ls", "-R", remote, "--json"]);
    if !out.status.success() {
        return 0;
    }
    support::json_lines(out.stdout)
        .iter()
        .filter(|e| e[".tag"] == "file")
        .count()
}

fn trash_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join(".cubby-cache/trash")];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn two_computers_and_the_server_converge_while_syncing() {
    let server = Server::start();
    let (home_a, home_b) = (Home::signed_in(&server), Home::signed_in(&server));
    let (a, b) = (home_a.path("A"), home_b.path("B"));
    // Both computers start with content: some of it the same, one file different.
    write(&a, "docs/report.txt", "the report");
    write(&a, "docs/notes/one.txt", "one");
    write(&a, "same.txt", "identical on both");
    write(&a, "differs.txt", "A's version");
    write(&b, "photos/cat.jpg", "meow");
    write(&b, "same.txt", "identical on both");
    write(&b, "differs.txt", "B's version");

    let sync_a = Syncing::start(&home_a, &a, "/Shared");
    let sync_b = Syncing::start(&home_b, &b, "/Shared");
    until("the first merge", || {
        let (ta, tb) = (tree(&a), tree(&b));
        ta == tb && ta.contains_key("photos/cat.jpg") && ta.contains_key("docs/notes/one.txt")
    });
    let merged = tree(&a);
    assert_eq!(
        merged["same.txt"].as_deref(),
        Some(&b"identical on both"[..])
    );
    // Same content on both sides merges into one file; different content keeps both.
    assert!(
        !merged.keys().any(|k| k.starts_with("same (")),
        "{merged:?}"
    );
    let copies: Vec<&String> = merged
        .keys()
        .filter(|k| k.contains("conflicted copy"))
        .collect();
    assert_eq!(copies.len(), 1, "{merged:?}");
    let kept: Vec<&[u8]> = [copies[0].as_str(), "differs.txt"]
        .iter()
        .map(|k| merged[*k].as_deref().unwrap())
        .collect();
    assert!(kept.contains(&&b"A's version"[..]) && kept.contains(&&b"B's version"[..]));

    // Edits everywhere while both run.
    write(&a, "docs/report.txt", "the report, edited on A");
    std::fs::rename(a.join("docs/notes"), a.join("docs/archive")).unwrap();
    std::fs::remove_file(a.join("same.txt")).unwrap();
    write(&b, "photos/dog.jpg", "woof");
    std::fs::rename(b.join("photos/cat.jpg"), b.join("photos/Cat.jpg")).unwrap();
    let upload = home_a.path("from-the-web.txt");
    std::fs::write(&upload, "put through the API").unwrap();
    home_a.ok(&["put", upload.to_str().unwrap(), "/Shared/web/page.txt"]);

    until("the edits to reach both computers", || {
        let (ta, tb) = (tree(&a), tree(&b));
        ta == tb
            && ta.contains_key("web/page.txt")
            && ta.contains_key("photos/dog.jpg")
            && ta.contains_key("photos/Cat.jpg")
            && ta.contains_key("docs/archive/one.txt")
            && !ta.contains_key("same.txt")
            && ta["docs/report.txt"].as_deref() == Some(&b"the report, edited on A"[..])
    });
    let local = tree(&a);
    assert!(!local.contains_key("photos/cat.jpg") && !local.contains_key("docs/notes"));
    assert_eq!(server_tree(&home_a, "/Shared"), local);
    // B's copy of the deleted file went to B's trash, not to nowhere.
    let trashed = trash_files(&b);
    assert!(
        trashed
            .iter()
            .any(|p| std::fs::read(p).unwrap() == b"identical on both"),
        "{trashed:?}"
    );
    sync_a.stop();
    sync_b.stop();
}

#[test]
fn a_sync_killed_mid_pass_resumes_without_loss_or_duplicates() {
    let server = Server::start();
    let (home_a, home_b) = (Home::signed_in(&server), Home::signed_in(&server));
    let (a, b) = (home_a.path("A"), home_b.path("B"));
    const FILES: usize = 1500;
    for i in 0..FILES {
        write(&a, &format!("d{}/f{i}.txt", i % 10), &format!("file {i}"));
    }
    // SIGKILL (no chance to save anything more) once `started` shows the pass is under way.
    let kill_when = |home: &Home, dir: &Path, what: &str, started: &dyn Fn() -> bool| {
        let mut child = home
            .command(&["sync", dir.to_str().unwrap(), "/K", "--once"])
            .spawn()
            .unwrap();
        loop {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the {what} pass finished before the kill: pick a larger tree"
            );
            if started() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        assert!(!child.wait().unwrap().success());
    };
    let session_starts = || {
        support::metric_now(
            &server.url,
            "cubby_http_requests_total{route=\"files/upload_session/start\",status=\"200\"}",
        )
    };
    kill_when(&home_a, &a, "upload", &|| session_starts() >= 100);
    let (code, out) = once(&home_a, &a, "/K", &[]);
    assert_eq!(code, 0, "{out}");
    let downloaded = || {
        walk_names(&b)
            .iter()
            .filter(|n| n.ends_with(".txt"))
            .count()
            >= 100
    };
    kill_when(&home_b, &b, "download", &|| b.exists() && downloaded());
    let (code, out) = once(&home_b, &b, "/K", &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(tree(&a), tree(&b));
    assert_eq!(tree(&b).values().filter(|v| v.is_some()).count(), FILES);
    // No partial downloads left behind, no conflicted copies from the restart.
    let names: Vec<String> = walk_names(&b);
    assert!(
        !names
            .iter()
            .any(|n| n.contains("cubby-partial") || n.contains("conflicted")),
        "{names:?}"
    );
    // And both agree with the server, with nothing more to do.
    let (code, out) = once(&home_a, &a, "/K", &["--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\"uploaded\":0") && out.contains("\"downloaded\":0"),
        "{out}"
    );
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.file_name().unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn a_mass_deletion_is_held_until_forced_and_goes_to_the_trash() {
    let server = Server::start();
    let (home_a, home_b) = (Home::signed_in(&server), Home::signed_in(&server));
    let (a, b) = (home_a.path("A"), home_b.path("B"));
    for i in 0..20 {
        write(&a, &format!("f{i}.txt"), &format!("file {i}"));
    }
    assert_eq!(once(&home_a, &a, "/M", &[]).0, 0);
    assert_eq!(once(&home_b, &b, "/M", &[]).0, 0);
    for i in 0..15 {
        std::fs::remove_file(a.join(format!("f{i}.txt"))).unwrap();
    }
    let (code, out) = once(&home_a, &a, "/M", &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("--force"), "{out}");
    assert_eq!(
        server_tree(&home_a, "/M").len(),
        20,
        "nothing was deleted on the server"
    );
    let (code, out) = once(&home_a, &a, "/M", &["--force"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(server_tree(&home_a, "/M").len(), 5);
    // The other computer holds the deletion back too, then moves the files to its trash.
    assert_eq!(once(&home_b, &b, "/M", &[]).0, 4);
    assert_eq!(tree(&b).len(), 20);
    assert_eq!(once(&home_b, &b, "/M", &["--force"]).0, 0);
    assert_eq!(tree(&b).len(), 5);
    assert_eq!(trash_files(&b).len(), 15);
    // The server kept every deleted file's history.
    let revs = home_a.ok(&["revs", "/M/f3.txt", "--json"]);
    assert!(!revs.is_empty());
}

/// In continuous mode a mass deletion pauses and asks; "yes" on stdin applies it.
#[test]
fn a_running_sync_asks_before_a_mass_deletion() {
    use std::io::{BufRead, Write};
    let server = Server::start();
    let home = Home::signed_in(&server);
    let a = home.path("A");
    for i in 0..20 {
        write(&a, &format!("f{i}.txt"), &format!("file {i}"));
    }
    let mut child = home
        .command(&["sync", a.to_str().unwrap(), "/Q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let running = Syncing(child);
    until("the first sync", || server_files(&home, "/Q") == 20);
    // The deletion comes in two pieces, each under the guard's floor of 10 (as a slow
    // `rm` on a busy machine delivers it): together they are a mass deletion all the same.
    for i in 0..7 {
        std::fs::remove_file(a.join(format!("f{i}.txt"))).unwrap();
    }
    until("the first piece", || server_files(&home, "/Q") == 13);
    for i in 7..15 {
        std::fs::remove_file(a.join(format!("f{i}.txt"))).unwrap();
    }
    let mut seen = Vec::new();
    let start = Instant::now();
    loop {
        match lines.recv_timeout(Duration::from_secs(1)) {
            Ok(line) if line.contains("type yes") => break,
            Ok(line) => seen.push(line),
            Err(_) => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no question asked: {seen:?}"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server_files(&home, "/Q"),
        13,
        "nothing of the second piece deleted before the answer"
    );
    writeln!(stdin, "no").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server_files(&home, "/Q"), 13, "no means no");
    writeln!(stdin, "yes").unwrap();
    until("the deletions after yes", || server_files(&home, "/Q") == 5);
    running.stop();
}

#[test]
fn pull_and_push_go_one_way_only() {
    let server = Server::start();
    let home = Home::signed_in(&server);
    let (pull, push) = (home.path("mirror"), home.path("outbox"));
    let file = home.path("upload.txt");
    std::fs::write(&file, "from the server").unwrap();
    home.ok(&["put", file.to_str().unwrap(), "/Feed/in.txt"]);
    // --pull: the server's files come down; a local file never goes up, and while it is
    // there the two sides differ: exit 1, as the README says.
    write(&pull, "local-only.txt", "stays here");
    let (code, out) = once(&home, &pull, "/Feed", &["--pull"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the two sides differ"), "{out}");
    assert_eq!(
        tree(&pull)["in.txt"].as_deref(),
        Some(&b"from the server"[..])
    );
    assert!(!server_tree(&home, "/Feed").contains_key("local-only.txt"));
    std::fs::remove_file(pull.join("local-only.txt")).unwrap();
    assert_eq!(once(&home, &pull, "/Feed", &["--pull"]).0, 0);
    // Deletions on the server are applied (to the trash).
    home.ok(&["rm", "/Feed/in.txt"]);
    assert_eq!(once(&home, &pull, "/Feed", &["--pull"]).0, 0);
    assert!(!tree(&pull).contains_key("in.txt"));
    assert_eq!(trash_files(&pull).len(), 1);
    // --push: local files go up; the server's never come down.
    write(&push, "report.csv", "a,b");
    home.ok(&["put", file.to_str().unwrap(), "/Out/server-only.txt"]);
    let (code, out) = once(&home, &push, "/Out", &["--push"]);
    assert_eq!(code, 1, "{out}");
    assert!(server_tree(&home, "/Out").contains_key("report.csv"));
    assert!(!tree(&push).contains_key("server-only.txt"));
    home.ok(&["rm", "/Out/server-only.txt"]);
    let (code, out) = once(&home, &push, "/Out", &["--push"]);
    assert_eq!(code, 0, "{out}");
}

/// A second `cubby sync` of a pair already being synced says it is busy (exit 5, as for a
/// busy server), not that its command line was wrong.
#[test]
fn a_second_sync_of_the_same_pair_is_busy() {
    let server = Server::start();
    let home = Home::signed_in(&server);
    let a = home.path("A");
    write(&a, "first.txt", "first");
    let running = Syncing::start(&home, &a, "/Busy");
    until("the running sync uploads", || {
        server_files(&home, "/Busy") == 1
    });
    let (code, out) = once(&home, &a, "/Busy", &[]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("busy"), "{out}");
    running.stop();
    assert_eq!(once(&home, &a, "/Busy", &[]).0, 0);
}

#[test]
fn exclusions_refused_names_conflicts_and_status() {
    let server = Server::start();
    let (home_a, home_b) = (Home::signed_in(&server), Home::signed_in(&server));
    let (a, b) = (home_a.path("A"), home_b.path("B"));
    write(&a, "keep.txt", "kept");
    write(&a, "scratch.tmp", "never leaves");
    write(&a, ".cubbyignore", "build/\n");
    write(&a, "build/out.o", "built here");
    assert_eq!(once(&home_a, &a, "/X", &["--exclude", "*.tmp"]).0, 0);
    let remote = server_tree(&home_a, "/X");
    assert!(remote.contains_key("keep.txt") && remote.contains_key(".cubbyignore"));
    assert!(
        !remote.contains_key("scratch.tmp") && !remote.contains_key("build"),
        "{remote:?}"
    );
    // A remote folder left out is never downloaded; a name too long for this disk (255
    // bytes on Linux, while the server counts characters) is reported and the rest syncs.
    let file = home_a.path("f.txt");
    std::fs::write(&file, "secret").unwrap();
    home_a.ok(&["put", file.to_str().unwrap(), "/X/private/secret.txt"]);
    let long = "é".repeat(200);
    home_a.ok(&["put", file.to_str().unwrap(), &format!("/X/{long}.txt")]);
    let (code, out) = once(&home_b, &b, "/X", &["--exclude", "/private"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not synced") && out.contains(&long), "{out}");
    let local = tree(&b);
    assert!(
        local.contains_key("keep.txt") && !local.contains_key("private"),
        "{local:?}"
    );
    // A file edited on both computers between passes: both versions are kept.
    write(&a, "keep.txt", "edited on A");
    write(&b, "keep.txt", "edited on B");
    let (code, out) = once(
        &home_a,
        &a,
        "/X",
        &["--exclude", "*.tmp", "--exclude", "/é*"],
    );
    assert_eq!(code, 0, "{out}");
    let (_, out) = once(&home_b, &b, "/X", &["--exclude", "/private"]);
    assert!(out.contains("conflict"), "{out}");
    let local = tree(&b);
    assert_eq!(local["keep.txt"].as_deref(), Some(&b"edited on A"[..]));
    assert!(
        local
            .values()
            .any(|v| v.as_deref() == Some(&b"edited on B"[..]))
    );
    // --status shows the conflict and the problem, and what is pending.
    let status = home_b.ok(&["sync", b.to_str().unwrap(), "/X", "--status"]);
    let text = status
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("conflict: /keep (conflicted copy).txt"),
        "{text}"
    );
    assert!(
        text.contains("not synced") && text.contains(&long),
        "{text}"
    );
    assert!(text.contains("last pass"), "{text}");
}

/// A viewer of a shared folder syncing their files: the folder comes down; their edits in it
/// are never uploaded, stay on their disk (an edited file as a new file beside the folder's,
/// which comes back), and are reported; the rest of their files sync as usual.
#[test]
fn a_viewer_syncs_a_shared_folder_without_changing_it() {
    let server = Server::start();
    let owner = Home::signed_in(&server);
    let out = server.admin(&["user", "add", "vera"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let viewer = Home::signed_in_as(&server, "vera");
    let file = owner.path("plan.txt");
    std::fs::write(&file, "the plan").unwrap();
    owner.ok(&["put", file.to_str().unwrap(), "/Club/plan.txt"]);
    owner.ok(&["share-folder", "/Club", "--with", "vera", "--viewer"]);
    viewer.ok(&["mount", "Club"]);

    let local = viewer.path("Dropbox");
    write(&local, "mine.txt", "my own");
    let (code, out) = once(&viewer, &local, "/", &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        tree(&local)["Club/plan.txt"].as_deref(),
        Some(&b"the plan"[..])
    );

    write(&local, "Club/plan.txt", "my changes");
    write(&local, "Club/idea.txt", "an idea");
    write(&local, "notes.txt", "outside the folder");
    let (code, out) = once(&viewer, &local, "/", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("read-only"), "{out}");
    // Nothing changed in the folder; the viewer's own file went up.
    let club = server_tree(&owner, "/Club");
    assert_eq!(club.len(), 1, "{club:?}");
    assert_eq!(club["plan.txt"].as_deref(), Some(&b"the plan"[..]));
    assert!(server_tree(&viewer, "").contains_key("notes.txt"));
    // The folder's version is back, the viewer's kept beside it, the new file kept.
    let here = tree(&local);
    assert_eq!(here["Club/plan.txt"].as_deref(), Some(&b"the plan"[..]));
    let kept: Vec<&Option<Vec<u8>>> = here
        .iter()
        .filter(|(p, _)| p.starts_with("Club/plan (conflicted copy"))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(kept, [&Some(b"my changes".to_vec())], "{here:?}");
    assert_eq!(here["Club/idea.txt"].as_deref(), Some(&b"an idea"[..]));
    // The owner's later changes still arrive.
    std::fs::write(&file, "the plan, v2").unwrap();
    owner.ok(&[
        "put",
        file.to_str().unwrap(),
        "/Club/plan.txt",
        "--overwrite",
    ]);
    let (code, out) = once(&viewer, &local, "/", &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        tree(&local)["Club/plan.txt"].as_deref(),
        Some(&b"the plan, v2"[..])
    );
}
