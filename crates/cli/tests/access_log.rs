//! The access log: a real `cubby serve` writes one line per request, naming the request id
//! its answer carried, the route, the status, the bytes sent and the account, and never the
//! token, the file's path or a shared link's token; `--access-log off` writes none.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

mod support;

/// `cubby serve` logging to `log`; returns the process and its URL.
fn serve(data: &Path, log: &Path, access_log: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cubby"))
        .env("CUBBY_DATA", data)
        .env_remove("CUBBY_METADATA")
        .env_remove("CUBBY_BLOCKS")
        .env("CUBBY_LOG", "info")
        .args(["serve", "--http", "127.0.0.1:0", "--https", "off"])
        .args(["--access-log", access_log])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(a) = line.trim().strip_prefix("http:") {
            break a.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// The access-log lines of a log file.
fn access_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("cubby::access"))
        .map(str::to_owned)
        .collect()
}

/// Waits (a body is logged once sent) for the access line of `request_id`.
async fn line_of(log: &Path, request_id: &str) -> String {
    for _ in 0..100 {
        if let Some(l) = access_lines(log)
            .into_iter()
            .find(|l| l.contains(&format!("request_id={request_id}")))
        {
            return l;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "no access line for {request_id}:\n{}",
        std::fs::read_to_string(log).unwrap()
    );
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-dropbox-request-id")
        .expect("every answer names its request id")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_line_per_request_with_route_status_bytes_and_account_but_no_secret() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("server.log");
    let user = support::admin(data.path(), &["user", "add", "alice", "--json"], "");
    assert!(user.status.success());
    let account: serde_json::Value = serde_json::from_slice(&user.stdout).unwrap();
    let account_id = account["account_id"].as_str().unwrap().to_owned();
    let tok = support::admin(data.path(), &["token", "alice", "--json"], "");
    let token = serde_json::from_slice::<serde_json::Value>(&tok.stdout).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut child, url) = serve(data.path(), &log, "on");
    let http = reqwest::Client::new();
    let secret_path = "/Secret-Folder-Name/report-7731.txt";

    // An upload: route, status 200, the bytes of its JSON answer, the caller's account.
    let resp = http
        .post(format!("{url}/2/files/upload"))
        .bearer_auth(&token)
        .header(
            "Dropbox-API-Arg",
            format!("{{\"path\": \"{secret_path}\"}}"),
        )
        .header("Content-Type", "application/octet-stream")
        .body(vec![7u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = request_id(&resp);
    let body = resp.bytes().await.unwrap();
    let line = line_of(&log, &id).await;
    for want in [
        "method=POST".to_owned(),
        "route=files/upload".to_owned(),
        "status=200".to_owned(),
        format!("bytes={}", body.len()),
        format!("account={account_id}"),
        "complete=true".to_owned(),
    ] {
        assert!(line.contains(&want), "{want} missing from {line}");
    }

    // A download counts the bytes of the file it streamed.
    let resp = http
        .post(format!("{url}/2/files/download"))
        .bearer_auth(&token)
        .header(
            "Dropbox-API-Arg",
            format!("{{\"path\": \"{secret_path}\"}}"),
        )
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    assert_eq!(resp.bytes().await.unwrap().len(), 5000);
    let line = line_of(&log, &id).await;
    assert!(
        line.contains("route=files/download") && line.contains("bytes=5000"),
        "{line}"
    );

    // A refused token: 401, no account, and the id is in the answer the user sees.
    let resp = http
        .post(format!("{url}/2/users/get_current_account"))
        .bearer_auth("not-a-token-5521")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let line = line_of(&log, &request_id(&resp)).await;
    assert!(
        line.contains("status=401") && line.contains("account=-"),
        "{line}"
    );

    // Routes outside the API are named by their pattern, never by their tokens.
    let resp = http
        .get(format!("{url}/s/secret-link-token-9931/x.txt"))
        .send()
        .await
        .unwrap();
    let line = line_of(&log, &request_id(&resp)).await;
    assert!(line.contains("route=/s/{token}/{name}"), "{line}");

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [
        token.as_str(),
        "Secret-Folder-Name",
        "report-7731",
        "not-a-token-5521",
        "secret-link-token-9931",
    ] {
        assert!(!text.contains(secret), "the log names {secret}:\n{text}");
    }
    let _ = child.kill();
    let _ = child.wait();

    // Off: answers still carry their id; no access line is written.
    let quiet = data.path().join("quiet.log");
    let (mut child, url) = serve(data.path(), &quiet, "off");
    let resp = http
        .post(format!("{url}/2/users/get_current_account"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    request_id(&resp);
    resp.bytes().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        access_lines(&quiet).is_empty(),
        "{:?}",
        access_lines(&quiet)
    );
    let _ = child.kill();
    let _ = child.wait();
}
