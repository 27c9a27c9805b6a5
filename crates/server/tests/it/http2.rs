//! HTTP/2 on the plain port (prior knowledge, as `curl --http2-prior-knowledge` and gRPC-style
//! clients speak it): many requests in flight on one connection, the limits the server
//! advertises, and headers as large as HTTP/1.1 takes.

use axum::http::{Request, StatusCode};
use bytes::Bytes;
use serde_json::json;

use crate::support::TestServer;
use cubby_server::conn::{H2_MAX_CONCURRENT_STREAMS, H2_MAX_HEADER_LIST};

/// One HTTP/2 connection to the server, driven on a task of its own.
async fn connect(url: &str) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Uploads `data` to `path` on `send`'s connection; the status and the body.
async fn upload(
    send: &mut h2::client::SendRequest<Bytes>,
    authority: &str,
    token: &str,
    path: &str,
    data: &[u8],
) -> (StatusCode, Vec<u8>) {
    let arg = cubby_core::wire::header_safe_json(&json!({"path": path}));
    let req = Request::post(format!("http://{authority}/2/files/upload"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .header("dropbox-api-arg", arg)
        .header("content-length", data.len())
        .body(())
        .unwrap();
    let mut ready = send.clone().ready().await.unwrap();
    let (resp, mut body) = ready.send_request(req, false).unwrap();
    body.send_data(Bytes::copy_from_slice(data), true).unwrap();
    let resp = resp.await.unwrap();
    let status = resp.status();
    let mut stream = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = stream.data().await {
        let chunk = chunk.unwrap();
        let _ = stream.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    (status, out)
}

/// A client keeps hundreds of small uploads in flight on one connection: each is answered,
/// each file is there, and the server told the client how many streams it takes at once.
#[tokio::test]
async fn hundreds_of_uploads_in_flight_on_one_connection() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let url = c.url();
    let authority = url.trim_start_matches("http://").to_owned();
    let mut send = connect(&url).await;
    // One round trip first: a client may open streams before the server's SETTINGS arrive
    // (the protocol's initial limit is none), and the server refuses those past its limit.
    let (status, _) = upload(&mut send, &authority, &c.token, "/h2/first.txt", b"1").await;
    assert_eq!(status, StatusCode::OK);
    // The limit reached the wire: the client was told it in the server's SETTINGS.
    assert_eq!(
        send.current_max_send_streams(),
        H2_MAX_CONCURRENT_STREAMS as usize
    );
    let n = 2 * H2_MAX_CONCURRENT_STREAMS as usize;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (mut send, authority, token) = (send.clone(), authority.clone(), c.token.clone());
        tasks.spawn(async move {
            let data = format!("file {i}");
            let path = format!("/h2/f{i:04}.txt");
            upload(&mut send, &authority, &token, &path, data.as_bytes()).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    let (entries, _) = c.list_all(json!({"path": "/h2"})).await;
    assert_eq!(entries.len(), n + 1);
}

/// A request whose `Dropbox-API-Arg` is large (a deep path of long non-ASCII names, six bytes
/// a character once escaped) is served the same over HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn a_long_api_arg_is_served_over_http1_and_http2() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    // 24 folders of 200 "é": ~29 KB escaped, past HTTP/2's usual 16 KiB header list.
    let deep: String = (0..24)
        .map(|i| format!("/{i:02}{}", "é".repeat(198)))
        .collect();
    let arg = cubby_core::wire::header_safe_json(&json!({ "path": format!("{deep}/f.txt") }));
    assert!(arg.len() > 16 * 1024 && arg.len() < H2_MAX_HEADER_LIST as usize / 2);
    // HTTP/1.1, through reqwest.
    let meta = c.put(&format!("{deep}/f.txt"), b"one").await;
    assert_eq!(meta["size"], 3);
    // HTTP/2.
    let url = c.url();
    let authority = url.trim_start_matches("http://").to_owned();
    let mut send = connect(&url).await;
    let (status, body) = upload(
        &mut send,
        &authority,
        &c.token,
        &format!("{deep}/g.txt"),
        b"two!",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let meta: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(meta["size"], 4);
}

/// An HTTP/2 connection nobody uses is closed by the idle timeout like an HTTP/1.1 one (the
/// server sends no pings that would keep it alive).
#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let srv = TestServer::start_with_limits(cubby_server::conn::Limits {
        idle: std::time::Duration::from_secs(1),
        header_read: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let c = srv.user("alice").await;
    let url = c.url();
    let authority = url.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut send, conn) = h2::client::handshake(tcp).await.unwrap();
    let closed = tokio::spawn(async move {
        let _ = conn.await;
        std::time::Instant::now()
    });
    let (status, _) = upload(&mut send, &authority, &c.token, "/idle.txt", b"x").await;
    assert_eq!(status, StatusCode::OK);
    let answered = std::time::Instant::now();
    let at = tokio::time::timeout(std::time::Duration::from_secs(10), closed)
        .await
        .expect("the idle connection stayed open")
        .unwrap();
    assert!(at - answered >= std::time::Duration::from_millis(900));
}
