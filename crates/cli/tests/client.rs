//! The client commands, run as a person would: the real `cubby` binary against a real
//! `cubby serve`, signing in through the consent page (driven over HTTP, as a browser would)
//! with a pasted code or a loopback redirect, then every file command with its output and
//! exit codes, and a large upload killed halfway and resumed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use support::{Home, PASSWORD, Server, cookie};

mod support;

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `<input type="hidden">` of a page.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.split_once("value=\"")?.1.split_once('"')?.0;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

/// Signs in as alice and approves the authorization at `authorize`, as a browser would;
/// returns the approval's response (a code page, or a redirect).
async fn approve(url: &str, authorize: &str) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(authorize).send().await.unwrap();
    let login_cookie = cookie(&page, "cubby_login").expect("the sign-in form");
    let html = page.text().await.unwrap();
    let csrf = hidden_fields(&html)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .unwrap()
        .1;
    let resp = http
        .post(format!("{url}/login"))
        .header("cookie", format!("cubby_login={login_cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", "/"),
            ("login", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "signed in");
    let session = cookie(&resp, "cubby_session").unwrap();
    let consent = http
        .get(authorize)
        .header("cookie", format!("cubby_session={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("Cubby command line"), "{consent}");
    let mut form = hidden_fields(&consent);
    form.push(("decision".into(), "allow".into()));
    http.post(format!("{url}/oauth2/authorize"))
        .header("cookie", format!("cubby_session={session}"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Reads a child's standard error until a line holds the authorize URL.
fn authorize_url(stderr: &mut impl BufRead) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "login printed no URL"
        );
        if let Some(i) = line.find("http") {
            let url = line[i..].trim();
            if url.contains("/oauth2/authorize") {
                return url.to_owned();
            }
        }
    }
}

/// `cubby login SERVER --paste`: the code shown by the page is pasted.
async fn login_by_paste(home: &Home, server: &Server, profile: &str) -> Value {
    login_by_paste_with(home, server, profile, &[]).await
}

/// [`login_by_paste`] with more arguments.
async fn login_by_paste_with(home: &Home, server: &Server, profile: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "login",
        &server.url,
        "--paste",
        "--profile",
        profile,
        "--json",
    ];
    args.extend_from_slice(extra);
    let mut child = home.command(&args).stdin(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let authorize = authorize_url(&mut stderr);
    assert!(!authorize.contains("redirect_uri"));
    let html = approve(&server.url, &authorize).await.text().await.unwrap();
    let code = html
        .split("<code id=\"auth-code\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the page shows a code");
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(out.status.success(), "login: {rest}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Dropbox's content hash of some bytes.
fn content_hash(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut outer = Sha256::new();
    for block in data.chunks(4 << 20) {
        outer.update(Sha256::digest(block));
    }
    outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves `body` once per connection on a loopback port (a product image's origin).
fn origin(body: &'static [u8]) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: image/png\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes());
            let _ = sock.write_all(body);
        }
    });
    format!("http://{addr}/images/p1.png")
}

#[tokio::test]
async fn sign_in_with_a_pasted_code_then_every_file_command() {
    let server = Server::start();
    let home = Home::new();
    let login = login_by_paste(&home, &server, "default").await;
    assert_eq!(login["email"], "alice@localhost", "{login}");
    // The profile file is private and holds a refresh token.
    let config_path = home.path("config.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    assert!(config["profiles"]["default"]["tokens"]["refresh_token"].is_string());

    assert_eq!(
        home.ok(&["whoami", "--json"])[0]["email"],
        "alice@localhost"
    );
    assert_eq!(home.ok(&["du", "--json"])[0]["used"], 0);

    // An expired access token is refreshed by the client itself, and the new one saved.
    let mut expired = config.clone();
    expired["profiles"]["default"]["tokens"]["access_token"] = "stale-token".into();
    expired["profiles"]["default"]["tokens"]["expires_at"] = 1.into();
    std::fs::write(&config_path, serde_json::to_vec(&expired).unwrap()).unwrap();
    assert_eq!(
        home.ok(&["whoami", "--json"])[0]["email"],
        "alice@localhost"
    );
    let refreshed: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    let tokens = &refreshed["profiles"]["default"]["tokens"];
    assert_ne!(tokens["access_token"], "stale-token");
    assert!(tokens["expires_at"].as_i64().unwrap() > cubby_client::now() + 3600);
    let config = refreshed;

    // put: add, a conflict (exit 4), overwrite.
    std::fs::write(home.path("a.txt"), b"first version").unwrap();
    let put = &home.ok(&["put", "a.txt", "/", "--json"])[0];
    assert_eq!(put["path_display"], "/a.txt");
    assert_eq!(put["content_hash"], content_hash(b"first version"));
    let first_rev = put["rev"].as_str().unwrap().to_owned();
    std::fs::write(home.path("a.txt"), b"second version").unwrap();
    home.fails(&["put", "a.txt"], 4);
    home.ok(&["put", "a.txt", "/a.txt", "--overwrite"]);
    // --update against a stale rev is a conflict too (for different content: the same
    // bytes are no conflict, as Dropbox rules).
    std::fs::write(home.path("c.txt"), b"third version").unwrap();
    home.fails(&["put", "c.txt", "/a.txt", "--update", &first_rev], 4);

    // mkdir, cp, mv, get.
    home.ok(&["mkdir", "/docs"]);
    home.fails(&["mkdir", "/docs"], 4);
    home.ok(&["mkdir", "-p", "/docs"]);
    home.ok(&["cp", "/a.txt", "/docs/a.txt"]);
    let moved = &home.ok(&["mv", "/docs/a.txt", "/docs/b.txt", "--json"])[0];
    assert_eq!(moved["path_display"], "/docs/b.txt");
    home.ok(&["get", "/docs/b.txt", "fetched.txt"]);
    assert_eq!(
        std::fs::read(home.path("fetched.txt")).unwrap(),
        b"second version"
    );

    // ls: plain, long, recursive, JSON.
    let plain = home.ok(&["ls"]);
    assert_eq!(plain, [Value::from("a.txt"), Value::from("docs/")]);
    let long = home.ok(&["ls", "-l"]);
    assert!(long[0].as_str().unwrap().contains("14"), "{long:?}");
    let all = home.ok(&["ls", "-R", "--json"]);
    let paths: Vec<&str> = all
        .iter()
        .map(|m| m["path_display"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/a.txt", "/docs", "/docs/b.txt"]);

    // History: two revisions, and restore brings the first back.
    let revs = home.ok(&["revs", "/a.txt", "--json"]);
    assert_eq!(revs.len(), 2);
    home.ok(&["restore", "/a.txt", &first_rev]);
    home.ok(&["get", "/a.txt", "restored.txt"]);
    assert_eq!(
        std::fs::read(home.path("restored.txt")).unwrap(),
        b"first version"
    );

    // Copy references and shared links.
    let reference = home.ok(&["share", "/a.txt"])[0]
        .as_str()
        .unwrap()
        .to_owned();
    home.ok(&["save-ref", &reference, "/from-ref.txt"]);
    home.ok(&["get", "/from-ref.txt", "ref.txt"]);
    assert_eq!(
        std::fs::read(home.path("ref.txt")).unwrap(),
        b"first version"
    );
    let url = home.ok(&["link", "/a.txt"])[0].as_str().unwrap().to_owned();
    let again = home.ok(&["link", "/a.txt"])[0].as_str().unwrap().to_owned();
    assert_eq!(url, again, "an existing link is shown again");
    let public = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(&public[..], b"first version");

    // import-url: the server fetches the URL.
    let image = origin(b"\x89PNG product image");
    let imported = &home.ok(&["import-url", &image, "/shop/p1.png", "--json"])[0];
    assert_eq!(imported["size"], 18);

    // import-urls: several at once, what is there with the same size is skipped, a failed
    // fetch is reported (exit 1) without stopping the others.
    let base = image.rsplit_once('/').unwrap().0.to_owned();
    let lines = format!(
        "# the catalogue\n{base}/p2.png\n{base}/p3.png /shop/third.png\n{{\"url\": \"{image}\", \"path\": \"/shop/p1.png\"}}\nhttp://127.0.0.1:1/gone.png\n"
    );
    std::fs::write(home.path("urls.txt"), &lines).unwrap();
    let out = home.run(&["import-urls", "urls.txt", "--dest", "/shop", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let items: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let status = |path: &str| {
        items
            .iter()
            .find(|i| i["path"] == path)
            .map(|i| i["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        status("/shop/p2.png").as_deref(),
        Some("saved"),
        "{items:?}"
    );
    assert_eq!(status("/shop/third.png").as_deref(), Some("saved"));
    assert_eq!(status("/shop/p1.png").as_deref(), Some("exists"));
    assert_eq!(status("/shop/gone.png").as_deref(), Some("failed"));
    let good: String = lines.lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(home.path("urls.txt"), good).unwrap();
    let again = home.ok(&["import-urls", "urls.txt", "--dest", "/shop"]);
    assert!(
        again
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("0 saved, 3 already there, 0 failed"),
        "{again:?}"
    );

    // rm, then the file is gone (exit 1), and errors of every kind have their codes.
    home.ok(&["rm", "/docs"]);
    let err = home.fails(&["get", "/docs/b.txt", "x"], 1);
    assert!(err.contains("not_found"), "{err}");
    assert!(!home.path("x").exists() && !home.path(".x.cubby-partial").exists());
    home.fails(&["put"], 2);
    home.fails(&["whoami", "--profile", "nobody"], 3);

    // logout revokes the token: the old token no longer works.
    let token = config["profiles"]["default"]["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    home.ok(&["logout"]);
    home.fails(&["whoami"], 3);
    let r = reqwest::Client::new()
        .post(format!("{}/2/users/get_current_account", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn sign_in_through_a_loopback_redirect() {
    let server = Server::start();
    let home = Home::new();
    let mut child = home
        .command(&["login", &server.url, "--profile", "laptop", "--json"])
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let authorize = authorize_url(&mut stderr);
    assert!(
        authorize.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{authorize}"
    );
    let resp = approve(&server.url, &authorize).await;
    assert_eq!(resp.status(), 302);
    let callback = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    // The browser follows the redirect to the command's listener.
    let page = reqwest::get(&callback).await.unwrap();
    assert_eq!(page.status(), 200);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let login: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(login["profile"], "laptop");
    assert_eq!(
        home.ok(&["whoami", "--profile", "laptop", "--json"])[0]["email"],
        "alice@localhost"
    );
}

#[tokio::test]
async fn a_large_upload_killed_halfway_resumes_where_it_stopped() {
    let server = Server::start();
    let home = Home::new();
    login_by_paste(&home, &server, "default").await;
    // 256 MiB of varied bytes: 32 chunks of 8 MiB through a session.
    let size = 256usize << 20;
    let mut data = vec![0u8; size];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let local = home.path("big.bin");
    std::fs::write(&local, &data).unwrap();
    let state_dir = home.path("cache").join("cubby").join("uploads");

    let mut child = home
        .command(&["put", "big.bin", "/big.bin"])
        .spawn()
        .unwrap();
    // Kill it once the server has taken a few chunks, long before the end.
    let done_chunks = |dir: &Path| -> usize {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|v| v["done"].as_object().map_or(0, |m| m.len()))
            .max()
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while done_chunks(&state_dir) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the upload ended before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let taken = done_chunks(&state_dir);
    assert!(
        taken < 32,
        "killed halfway, not at the end ({taken} chunks)"
    );

    let before = server.bytes_in().await;
    let put = &home.ok(&["put", "big.bin", "/big.bin", "--json"])[0];
    let sent = server.bytes_in().await - before;
    assert_eq!(put["size"], size as u64);
    assert_eq!(put["content_hash"], content_hash(&data));
    assert!(
        sent <= (size - taken * (8 << 20)) as u64 + (1 << 20),
        "the resumed run sent {sent} bytes; {taken} of 32 chunks were already there"
    );
    assert_eq!(
        done_chunks(&state_dir),
        0,
        "the state is forgotten once finished"
    );
    // Byte for byte, through a ranged parallel download.
    home.ok(&["get", "/big.bin", "back.bin"]);
    assert!(std::fs::read(home.path("back.bin")).unwrap() == data);
}

#[tokio::test]
async fn backup_is_incremental_keeps_both_on_conflict_and_restores_a_point_in_time() {
    let server = Server::start();
    let home = Home::new();
    login_by_paste(&home, &server, "default").await;
    let src = home.path("home");
    let write = |rel: &str, data: &[u8]| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    write("a.txt", b"alpha");
    write("dir/b.txt", b"bravo, first");
    let big: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    write("dir/sub/c.bin", &big);
    write("x.tmp", b"scratch");
    write(".cubbyignore", b"*.tmp\n");
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::os::unix::fs::symlink(src.join("a.txt"), src.join("link")).unwrap();
    let log = home.path("backup.log");
    let backup = |extra: &[&str]| {
        let mut args = vec![
            "backup",
            "home",
            "/Backup",
            "--json",
            "--log",
            log.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        home.ok(&args).remove(0)
    };

    // The first run uploads everything but the excluded file and the link.
    let before = server.file_writes().await;
    let first = backup(&[]);
    assert_eq!(first["uploaded"], 4, "{first}"); // a.txt, .cubbyignore, b.txt, c.bin
    assert_eq!(first["excluded"], 1, "{first}");
    assert_eq!(first["special_skipped"], 1, "{first}");
    assert_eq!(first["errors"].as_array().unwrap().len(), 0, "{first}");
    assert_eq!(server.file_writes().await - before, 4);
    let listed = home.ok(&["ls", "-R", "/Backup"]);
    assert!(
        listed.contains(&Value::from("/Backup/empty/")),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|p| p.as_str().unwrap().contains("x.tmp")));
    let after_first = cubby_client::now();
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // A run with no change reads nothing and writes nothing.
    let before = server.file_writes().await;
    let second = backup(&[]);
    assert_eq!(
        (second["uploaded"].clone(), second["unchanged"].clone()),
        (0.into(), 4.into()),
        "{second}"
    );
    assert_eq!(server.file_writes().await, before);

    // One file changed, one only touched: one write.
    write("dir/b.txt", b"bravo, second");
    write("a.txt", b"alpha");
    let before = server.file_writes().await;
    let third = backup(&[]);
    assert_eq!(
        (third["uploaded"].clone(), third["already_there"].clone()),
        (1.into(), 1.into()),
        "{third}"
    );
    assert_eq!(server.file_writes().await - before, 1);

    // Someone changes the server's copy; our next change is kept beside it, not over it.
    std::fs::write(home.path("other.txt"), b"edited on the server").unwrap();
    home.ok(&["put", "other.txt", "/Backup/dir/b.txt", "--overwrite"]);
    write("dir/b.txt", b"bravo, third (local)");
    let fourth = backup(&[]);
    assert_eq!(
        fourth["conflicts"],
        serde_json::json!(["/Backup/dir/b (conflicted copy).txt"]),
        "{fourth}"
    );
    home.ok(&["get", "/Backup/dir/b.txt", "server-b.txt"]);
    assert_eq!(
        std::fs::read(home.path("server-b.txt")).unwrap(),
        b"edited on the server"
    );
    home.ok(&["get", "/Backup/dir/b (conflicted copy).txt", "ours-b.txt"]);
    assert_eq!(
        std::fs::read(home.path("ours-b.txt")).unwrap(),
        b"bravo, third (local)"
    );
    assert_eq!(
        backup(&[])["conflicts"],
        serde_json::json!([]),
        "no second copy of the same change"
    );

    // --verify names the file the server holds differently (exit 1).
    let out = home.run(&["backup", "home", "/Backup", "--verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let verify: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        verify["differ"],
        serde_json::json!(["dir/b.txt"]),
        "{verify}"
    );

    // --dry-run changes nothing.
    write("new.txt", b"not yet");
    let dry = backup(&["--dry-run"]);
    assert_eq!(dry["uploaded"], 1, "{dry}");
    home.fails(&["get", "/Backup/new.txt", "x"], 1);

    // The mass-deletion guard refuses (exit 4) and deletes nothing; --force goes ahead.
    std::fs::remove_dir_all(src.join("dir")).unwrap();
    std::fs::remove_file(src.join("a.txt")).unwrap();
    let refused = home.fails(&["backup", "home", "/Backup", "--mirror"], 4);
    assert!(refused.contains("refusing to delete"), "{refused}");
    home.ok(&["get", "/Backup/a.txt", "still.txt"]);
    let forced = backup(&["--mirror", "--force"]);
    assert_eq!(forced["deleted"], 2, "{forced}");
    home.fails(&["get", "/Backup/a.txt", "x"], 1);

    // The tree as it was after the first run, deleted files included.
    home.ok(&[
        "restore-backup",
        "/Backup",
        "restored",
        "--at",
        &after_first.to_string(),
    ]);
    let restored = home.path("restored");
    assert_eq!(std::fs::read(restored.join("a.txt")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read(restored.join("dir/b.txt")).unwrap(),
        b"bravo, first"
    );
    assert!(std::fs::read(restored.join("dir/sub/c.bin")).unwrap() == big);
    assert!(!restored.join("new.txt").exists());
    // And as it is now.
    home.ok(&["restore-backup", "/Backup", "now"]);
    assert!(!home.path("now/a.txt").exists());
    assert!(home.path("now/empty").is_dir());

    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("conflict dir/b.txt"), "{log}");
    assert!(log.contains("skip link"), "{log}");
}

/// `login --ca-cert FILE` keeps a copy of the certificate in the profile: a cron job keeps
/// working after the file is moved or deleted.
#[tokio::test]
async fn the_profile_keeps_a_copy_of_the_ca_certificate() {
    let server = Server::start();
    // A real CA certificate: the one a server with HTTPS makes on first start.
    let tls_data = tempfile::tempdir().unwrap();
    let mut serving = std::process::Command::new(env!("CARGO_BIN_EXE_cubby"))
        .env("CUBBY_DATA", tls_data.path())
        .env_remove("CUBBY_METADATA")
        .env_remove("CUBBY_BLOCKS")
        .args(["serve", "--http", "off", "--https", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ca_made = tls_data.path().join("tls").join("ca.pem");
    let mut lines = BufReader::new(serving.stdout.take().unwrap()).lines();
    while !ca_made.exists() {
        lines.next().expect("the server starts").unwrap();
    }
    let _ = serving.kill();
    let _ = serving.wait();
    let home = Home::new();
    let ca = home.path("moving-ca.pem");
    std::fs::copy(&ca_made, &ca).unwrap();
    login_by_paste_with(
        &home,
        &server,
        "default",
        &["--ca-cert", ca.to_str().unwrap()],
    )
    .await;
    let config = std::fs::read_to_string(home.path("config.json")).unwrap();
    assert!(config.contains("BEGIN CERTIFICATE"), "{config}");
    assert!(!config.contains("moving-ca.pem"), "{config}");
    std::fs::remove_file(&ca).unwrap();
    let who = home.ok(&["whoami", "--json"]);
    assert_eq!(who[0]["name"]["display_name"], "alice", "{who:?}");
}

/// A copy reference is base64url, so one in 64 starts with `-`: it is still a reference,
/// not an option (the server then judges it).
#[test]
fn a_copy_reference_starting_with_a_dash_is_not_an_option() {
    let server = Server::start();
    let home = Home::signed_in(&server);
    let err = home.fails(
        &[
            "save-ref",
            "-FV4S3bNQMxuAFfd08LxoGfW0c5xUDB9",
            "/from-ref.txt",
        ],
        1,
    );
    assert!(!err.contains("unexpected argument"), "{err}");
}

/// `cubby put -r`: a folder with everything in it, small files in batches and a large one in
/// its own session, empty folders created, links left out; an unchanged tree again is no
/// change, a changed file is a conflict (exit 1) unless `--autorename`.
#[test]
fn put_r_uploads_a_folder_and_everything_in_it() {
    let server = Server::start();
    let home = Home::signed_in(&server);
    let src = home.path("Shop");
    std::fs::create_dir_all(src.join("images/2014")).unwrap();
    std::fs::create_dir_all(src.join("empty/inner")).unwrap();
    for i in 0..1203 {
        std::fs::write(
            src.join(format!("images/2014/p{i:04}.jpg")),
            format!("image {i}"),
        )
        .unwrap();
    }
    let big: Vec<u8> = (0..5 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("catalogue.bin"), &big).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("passwd")).unwrap();
    // A file is not a folder, and a folder needs -r.
    let err = home.fails(&["put", src.to_str().unwrap()], 2);
    assert!(err.contains("cubby put -r"), "{err}");
    home.fails(
        &["put", "-r", home.path("nothing-here").to_str().unwrap()],
        2,
    );
    let lines = home.ok(&["put", "-r", src.to_str().unwrap(), "/Backups/", "--json"]);
    let summary = lines.last().unwrap();
    assert_eq!(summary["files"], 1204, "{summary}");
    assert_eq!(summary["skipped"], 1, "{summary}");
    assert_eq!(summary["folders_created"], 1, "{summary}");
    assert_eq!(summary["failed"].as_array().unwrap().len(), 0, "{summary}");
    let listed = home.ok(&["ls", "-R", "/Backups/Shop", "--json"]);
    let files: Vec<&str> = listed
        .iter()
        .filter(|e| e[".tag"] == "file")
        .map(|e| e["path_display"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 1204);
    assert!(files.contains(&"/Backups/Shop/images/2014/p1202.jpg"));
    assert!(!files.iter().any(|f| f.ends_with("passwd")));
    assert!(
        listed
            .iter()
            .any(|e| e["path_display"] == "/Backups/Shop/empty/inner")
    );
    let got = home.path("got.bin");
    home.ok(&["get", "/Backups/Shop/catalogue.bin", got.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got).unwrap(), big);
    home.ok(&[
        "get",
        "/Backups/Shop/images/2014/p0007.jpg",
        got.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&got).unwrap(), b"image 7");
    // The same tree again changes nothing; a changed file is not written over.
    home.ok(&["put", "-r", src.to_str().unwrap(), "/Backups/Shop"]);
    std::fs::write(src.join("images/2014/p0007.jpg"), "image 7, retouched").unwrap();
    let err = home.fails(&["put", "-r", src.to_str().unwrap(), "/Backups/Shop"], 1);
    assert!(
        err.contains("p0007.jpg: not committed: path/conflict/file"),
        "{err}"
    );
    home.ok(&[
        "get",
        "/Backups/Shop/images/2014/p0007.jpg",
        got.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&got).unwrap(), b"image 7");
    home.ok(&[
        "put",
        "-r",
        src.to_str().unwrap(),
        "/Backups/Shop",
        "--autorename",
    ]);
    home.ok(&[
        "get",
        "/Backups/Shop/images/2014/p0007 (1).jpg",
        got.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&got).unwrap(), b"image 7, retouched");
}

/// Output into a reader that stops early (`cubby ls | head`) ends quietly with the status a
/// shell expects of such a writer, not a panic.
#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let server = Server::start();
    let home = Home::signed_in(&server);
    std::fs::write(home.path("a.txt"), "a").unwrap();
    home.ok(&["put", "a.txt", "/Q/a.txt"]);
    let mut child = home.command(&["ls", "/Q"]).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn share_folder_members_and_mount_from_the_command_line() {
    let server = Server::start();
    let alice = Home::signed_in(&server);
    let out = server.admin(&["user", "add", "bob"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bob = Home::signed_in_as(&server, "bob");
    std::fs::write(alice.path("song.txt"), "la la").unwrap();
    alice.ok(&[
        "put",
        alice.path("song.txt").to_str().unwrap(),
        "/Band/song.txt",
    ]);

    let shared = alice.ok(&[
        "share-folder",
        "/Band",
        "--with",
        "bob",
        "--viewer",
        "--json",
    ]);
    let id = shared[0]["shared_folder_id"].as_str().unwrap().to_owned();
    // Bob sees it waiting, by name, and mounts it by name.
    let text = bob.run(&["mount"]);
    let listed = String::from_utf8_lossy(&text.stdout);
    assert!(
        listed.contains(&id) && listed.contains("Band") && listed.contains("shared by alice"),
        "{listed}"
    );
    let mounted = bob.ok(&["mount", "band", "--json"]);
    assert_eq!(mounted[0]["path_display"], "/Band");
    assert!(
        String::from_utf8_lossy(&bob.run(&["mount"]).stdout).contains("No folders are waiting"),
    );
    bob.ok(&[
        "get",
        "/Band/song.txt",
        bob.path("got.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(bob.path("got.txt")).unwrap(),
        "la la"
    );
    // A viewer's upload is refused, and nothing changes.
    std::fs::write(bob.path("mine.txt"), "mine").unwrap();
    let refused = bob.run(&[
        "put",
        bob.path("mine.txt").to_str().unwrap(),
        "/Band/mine.txt",
    ]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("no_write_permission"), "{why}");

    let members = alice.ok(&["members", "/Band", "--json"]);
    let who: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["access"].as_str().unwrap()))
        .collect();
    assert_eq!(who, [("alice", "owner"), ("bob", "viewer")]);
    let text = String::from_utf8_lossy(&alice.run(&["members", "/Band"]).stdout).into_owned();
    assert!(text.contains("viewer  bob"), "{text}");
    // Sharing it again only adds people; a folder not shared has no members.
    alice.ok(&["mkdir", "/Solo"]);
    let err = alice.fails(&["members", "/Solo"], 2);
    assert!(err.contains("not shared"), "{err}");
}
