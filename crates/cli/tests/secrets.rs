//! No secret reaches a log: a real `cubby serve` at the most verbose log level goes through
//! a sign-in, a consent, a code exchange, a refresh and API calls (with the token in the
//! header and in the URL) and a password-protected shared link, then its whole log is
//! searched for every secret it saw.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;

fn field<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("field present") + marker.len();
    &html[start..start + html[start..].find('"').unwrap()]
}

fn cookie(resp: &reqwest::Response, name: &str) -> String {
    support::cookie(resp, name).expect("cookie set")
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cubby = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cubby"))
            .env("CUBBY_DATA", dir.path())
            .env_remove("CUBBY_METADATA")
            .env_remove("CUBBY_BLOCKS")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let password = "Pass-Word-4-Logs-7731";
    cubby(
        &[
            "admin",
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--json",
        ],
        Some(password),
    );
    let cb = "http://localhost:1/cb";
    let app = cubby(
        &[
            "admin",
            "app",
            "add",
            "Logs",
            "--access",
            "full",
            "--redirect-uri",
            cb,
            "--json",
        ],
        None,
    );
    let (key, secret) = (
        app["app_key"].as_str().unwrap().to_owned(),
        app["app_secret"].as_str().unwrap().to_owned(),
    );

    let log_path = dir.path().join("server.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_cubby"))
        .env("CUBBY_DATA", dir.path())
        .env_remove("CUBBY_METADATA")
        .env_remove("CUBBY_BLOCKS")
        .env("CUBBY_LOG", "trace")
        .args(["serve", "--http", "127.0.0.1:0", "--https", "off"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(a) = line.trim().strip_prefix("http:") {
            break a.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Sign in (once wrong, once right), approve, exchange, refresh, call.
    let authorize = format!(
        "{url}/oauth2/authorize?client_id={key}&response_type=code&token_access_type=offline&redirect_uri=http%3A%2F%2Flocalhost%3A1%2Fcb"
    );
    let mut session = String::new();
    for pw in ["wrong-password-123", password] {
        let page = http.get(&authorize).send().await.unwrap();
        let login_cookie = cookie(&page, "cubby_login");
        let html = page.text().await.unwrap();
        let resp = http
            .post(format!("{url}/login"))
            .header("cookie", format!("cubby_login={login_cookie}"))
            .form(&[
                ("csrf", field(&html, "csrf")),
                ("next", "/"),
                ("login", "alice"),
                ("password", pw),
            ])
            .send()
            .await
            .unwrap();
        if pw == password {
            assert_eq!(resp.status(), 302);
            session = cookie(&resp, "cubby_session");
        }
    }
    let html = http
        .get(&authorize)
        .header("cookie", format!("cubby_session={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = field(&html, "csrf").to_owned();
    let resp = http
        .post(format!("{url}/oauth2/authorize"))
        .header("cookie", format!("cubby_session={session}"))
        .form(&[
            ("client_id", key.as_str()),
            ("response_type", "code"),
            ("token_access_type", "offline"),
            ("redirect_uri", cb),
            ("csrf", &csrf),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let code = location.split("code=").nth(1).unwrap().to_owned();
    let tokens: Value = http
        .post(format!("{url}/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", cb),
            ("client_id", &key),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = http
        .post(format!("{url}/oauth2/token"))
        .basic_auth(&key, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access2 = refreshed["access_token"].as_str().unwrap().to_owned();
    let r = http
        .post(format!("{url}/2/users/get_current_account"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!(
            "{url}/2/files/download?authorization=Bearer%20{access2}&arg=%7B%22path%22%3A%22%2Fnone%22%7D"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = http
        .post(format!("{url}/2/check/app"))
        .basic_auth(&key, Some("wrong-secret-xyz"))
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A password-protected shared link: created, opened with a wrong and a right password
    // on its page (the cookie then unlocks it) and through the API.
    let link_password = "Link-Pass-9921";
    let r = http
        .post(format!("{url}/2/files/upload"))
        .bearer_auth(&access)
        .header("content-type", "application/octet-stream")
        .header("dropbox-api-arg", r#"{"path": "/shared.txt"}"#)
        .body("shared bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let link: Value = http
        .post(format!("{url}/2/sharing/create_shared_link_with_settings"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"path": "/shared.txt", "settings": {"link_password": link_password}})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link_url = link["url"].as_str().unwrap().to_owned();
    let link_token = link_url
        .split("/s/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(http.get(&link_url).send().await.unwrap().status(), 200);
    let r = http
        .post(&link_url)
        .form(&[("password", "wrong-link-pass-55")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&link_url)
        .form(&[("password", link_password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let unlock = cookie(&r, "cubby_link");
    let r = http
        .get(&link_url)
        .header("cookie", format!("cubby_link={unlock}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"shared bytes");
    let r = http
        .post(format!("{url}/2/sharing/get_shared_link_metadata"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(serde_json::json!({"url": link_url, "link_password": link_password}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    Command::new("kill")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    server.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.lines().count() > 20, "the trace log is written: {log}");
    for (what, s) in [
        ("password", password),
        ("wrong password", "wrong-password-123"),
        ("app secret", secret.as_str()),
        ("wrong app secret", "wrong-secret-xyz"),
        ("session cookie", session.as_str()),
        ("csrf token", csrf.as_str()),
        ("code", code.as_str()),
        ("access token", access.as_str()),
        ("refreshed access token", access2.as_str()),
        ("refresh token", refresh.as_str()),
        ("shared-link token", link_token.as_str()),
        ("shared-link password", link_password),
        ("wrong shared-link password", "wrong-link-pass-55"),
        ("shared-link unlock cookie", unlock.as_str()),
    ] {
        assert!(!log.contains(s), "the {what} is in the log");
    }
}
