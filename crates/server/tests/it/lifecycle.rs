//! Accounts, isolation between users, persistence across restarts and graceful shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, bytes};

#[tokio::test]
async fn account_routes() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let a = c.rpc("users/get_current_account", json!(null)).await.ok();
    assert_eq!(a["account_id"].as_str().unwrap().len(), 40);
    assert_eq!(a["email"], "alice@example.com");
    assert_eq!(a["root_info"][".tag"], "user");
    let ns = a["root_info"]["root_namespace_id"].as_str().unwrap();
    assert!(ns.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        c.rpc("users/get_space_usage", json!(null)).await.ok()["used"],
        0
    );
    c.put("/a.bin", &bytes(1000, 1)).await;
    c.put("/b.bin", &bytes(234, 2)).await;
    assert_eq!(
        c.rpc("users/get_space_usage", json!(null)).await.ok()["used"],
        1234
    );
    let long = "q".repeat(501);
    assert_eq!(
        c.rpc("check/user", json!({"query": long})).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn users_are_isolated() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let f = alice.put("/secret.txt", b"alice only").await;
    assert_eq!(bob.meta("/secret.txt").await.conflict(), "path/not_found/");
    assert_eq!(
        bob.meta(f["id"].as_str().unwrap()).await.conflict(),
        "path/not_found/"
    );
    let rev = format!("rev:{}", f["rev"].as_str().unwrap());
    assert_eq!(
        bob.download(json!({"path": rev}), None).await.conflict(),
        "path/not_found/"
    );
    let alice_ns = alice
        .rpc("users/get_current_account", json!(null))
        .await
        .ok()["root_info"]["root_namespace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        bob.meta(&format!("ns:{alice_ns}/secret.txt"))
            .await
            .conflict(),
        "path/not_found/"
    );
    // The same content uploaded by bob is his own file; nothing reveals alice has it.
    let mine = bob.put("/mine.txt", b"alice only").await;
    assert_ne!(mine["id"], f["id"]);
}

#[tokio::test]
async fn data_survives_restart() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let data = bytes(6 * 1024 * 1024, 4);
    let md = c.put("/keep/me.bin", &data).await;
    let token = c.token.clone();
    let stopped = srv.stop().await;
    let srv = TestServer::restart(stopped).await;
    let mut c = srv.client_for("alice").await;
    c.token = token;
    let r = c.download(json!({"path": "/keep/me.bin"}), None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the old token and the file survive"
    );
    assert!(r.body == data);
    assert_eq!(r.api_result()["rev"], md["rev"]);
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let mut srv = TestServer::start().await;
    let c = srv.user("alice").await;
    // A slow upload: the body arrives in pieces while the server is asked to stop.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let upload = {
        let c = c.clone();
        tokio::spawn(async move { c.upload_with(json!({"path": "/slow.bin"}), body).await })
    };
    tx.send(Ok(vec![1u8; 1000])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = srv.begin_stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.send(Ok(vec![2u8; 1000])).await.unwrap();
    drop(tx);
    let r = upload.await.unwrap();
    assert_eq!(r.ok()["size"], 2000, "the upload in flight completed");
    for s in stopping {
        s.await.unwrap();
    }
    let srv = TestServer::restart(srv.stop().await).await;
    let c = srv.client_for("alice").await;
    assert_eq!(c.meta("/slow.bin").await.ok()["size"], 2000);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn health_and_metrics() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await.on(0);
    let base = c.url();
    let http = reqwest::Client::new();
    for path in ["/health/live", "/health/ready"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    c.put("/m/one.bin", &bytes(3000, 1)).await;
    c.put("/m/two.bin", &bytes(500, 2)).await;
    assert_eq!(
        c.download(json!({"path": "/m/one.bin"}), None)
            .await
            .body
            .len(),
        3000
    );
    assert_eq!(c.meta("/m/missing").await.status, StatusCode::CONFLICT);
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("cubby_http_requests_total{route=\"files/upload\",status=\"200\"}"),
        2.0
    );
    assert_eq!(
        value("cubby_http_requests_total{route=\"files/get_metadata\",status=\"409\"}"),
        1.0
    );
    assert_eq!(
        value("cubby_http_request_duration_seconds_count{route=\"files/upload\"}"),
        2.0
    );
    assert_eq!(value("cubby_bytes_in_total"), 3500.0);
    assert_eq!(value("cubby_bytes_out_total"), 3000.0);
    assert!(value("cubby_db_pool_connections{state=\"max\"}") >= 1.0);
}
