//! save_url: the server fetches a URL into a file, as a job, behind the SSRF guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Path;
use axum::http::{StatusCode as Status, header};
use axum::response::IntoResponse;
use cubby_store::AccessType;
use serde_json::{Value, json};

use crate::support::{Client, TestServer, bytes};

const SIZE: usize = 9 * 1024 * 1024 + 5;

/// An origin server on 127.0.0.1 that counts the requests it gets.
struct Origin {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Origin {
    async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let redirect = |to: String| (Status::FOUND, [(header::LOCATION, to)]).into_response();
        let counted = hits.clone();
        let app = axum::Router::new()
            .route("/file", axum::routing::get(|| async { bytes(SIZE, 9) }))
            .route(
                "/r/{n}",
                axum::routing::get(move |Path(n): Path<u32>| async move {
                    redirect(if n == 0 {
                        "/file".into()
                    } else {
                        format!("/r/{}", n - 1)
                    })
                }),
            )
            .route(
                "/to-private",
                axum::routing::get(move || async move { redirect("http://10.255.255.1/x".into()) }),
            )
            .route(
                "/to-v6-loopback",
                axum::routing::get(
                    move || async move { redirect(format!("http://[::1]:{port}/file")) },
                ),
            )
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "late"
                }),
            )
            .layer(axum::middleware::map_request(
                move |req: axum::extract::Request| {
                    let counted = counted.clone();
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                        req
                    }
                },
            ));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Origin { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Starts a save_url and polls it to its end; returns the final status.
async fn save(c: &Client, path: &str, url: &str) -> Value {
    let v = c
        .rpc("files/save_url", json!({"path": path, "url": url}))
        .await
        .ok();
    assert_eq!(v[".tag"], "async_job_id", "{v}");
    let id = v["async_job_id"].clone();
    for _ in 0..600 {
        let s = c
            .rpc(
                "files/save_url/check_job_status",
                json!({"async_job_id": id}),
            )
            .await
            .ok();
        if s[".tag"] != "in_progress" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("save_url of {url} did not finish");
}

#[tokio::test]
async fn save_url_fetches_into_a_file_when_the_network_is_allowed() {
    let origin = Origin::start().await;
    let srv = TestServer::start_allowing_fetches_from(&["127.0.0.1/32"]).await;
    let c = srv.user("shop").await;
    let s = save(&c, "/Products/1.jpg", &origin.url("/file")).await;
    assert_eq!(s[".tag"], "complete", "{s}");
    assert_eq!(s["path_display"], "/Products/1.jpg");
    assert_eq!(s["size"], SIZE);
    let r = c.download(json!({"path": "/Products/1.jpg"}), None).await;
    assert_eq!(r.body, bytes(SIZE, 9));

    // Five redirects are followed; a sixth is refused.
    assert_eq!(
        save(&c, "/Products/2.jpg", &origin.url("/r/4")).await[".tag"],
        "complete"
    );
    let s = save(&c, "/Products/3.jpg", &origin.url("/r/5")).await;
    assert_eq!(
        s,
        json!({".tag": "failed", "failed": {".tag": "download_failed"}})
    );
    // A redirect into private space, or to a loopback address that is not allowed, is refused.
    for hop in ["/to-private", "/to-v6-loopback"] {
        let s = save(&c, "/Products/4.jpg", &origin.url(hop)).await;
        assert_eq!(s["failed"][".tag"], "download_failed", "{hop}");
    }
    assert_eq!(
        c.meta("/Products/4.jpg").await.conflict(),
        "path/not_found/"
    );
    // A missing page fails; a path already taken is renamed, as Dropbox documents.
    let s = save(&c, "/Products/5.jpg", &origin.url("/nope")).await;
    assert_eq!(s["failed"][".tag"], "download_failed");
    let s = save(&c, "/Products", &origin.url("/file")).await;
    assert_eq!(s["path_display"], "/Products (1)");
    assert_eq!(c.meta("/Products").await.ok()[".tag"], "folder");
    // An app folder's save lands in the app folder.
    let (app, _) = srv.app("Shop", AccessType::AppFolder, &[], false).await;
    let shop = srv.app_client("shop", &app).await;
    let s = save(&shop, "/img.jpg", &origin.url("/file")).await;
    assert_eq!(s["path_display"], "/img.jpg");
    assert_eq!(c.meta("/Apps/Shop/img.jpg").await.ok()["size"], SIZE);
}

#[tokio::test]
async fn save_url_refuses_private_addresses_unless_allowed() {
    let origin = Origin::start().await;
    let srv = TestServer::start().await;
    let c = srv.user("shop").await;
    for url in [
        origin.url("/file"),
        format!("http://[::1]:{}/file", origin.port),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "ftp://example.com/a".to_owned(),
        "not a url".to_owned(),
    ] {
        let r = c
            .rpc("files/save_url", json!({"path": "/x.bin", "url": url}))
            .await;
        assert_eq!(r.conflict(), "invalid_url/", "{url}");
    }
    // A name that resolves into loopback is refused at connection time.
    let s = save(
        &c,
        "/y.bin",
        &format!("http://localhost:{}/file", origin.port),
    )
    .await;
    assert_eq!(s["failed"][".tag"], "download_failed");
    assert_eq!(
        origin.hits.load(Ordering::SeqCst),
        0,
        "the origin was never contacted"
    );
    let r = c
        .rpc(
            "files/save_url/check_job_status",
            json!({"async_job_id": "dbjid:forged"}),
        )
        .await;
    assert_eq!(r.conflict(), "invalid_async_job_id/");
}

#[tokio::test]
async fn a_job_whose_server_stopped_is_reported_failed() {
    let origin = Origin::start().await;
    let srv = TestServer::start_allowing_fetches_from(&["127.0.0.0/8"]).await;
    let c = srv.user("shop").await;
    let v = c
        .rpc(
            "files/save_url",
            json!({"path": "/slow.bin", "url": origin.url("/slow")}),
        )
        .await
        .ok();
    let id = v["async_job_id"].clone();
    let status = c
        .rpc(
            "files/save_url/check_job_status",
            json!({"async_job_id": id}),
        )
        .await
        .ok();
    assert_eq!(status[".tag"], "in_progress");
    // As if its server had died ten minutes ago: no heartbeat since.
    srv.sql(&format!(
        "UPDATE jobs SET updated = updated - {} WHERE id = '{}'",
        cubby_store::jobs::JOB_STALE_SECS + 1,
        id.as_str().unwrap()
    ))
    .await;
    let status = c
        .rpc(
            "files/save_url/check_job_status",
            json!({"async_job_id": id}),
        )
        .await
        .ok();
    assert_eq!(
        status,
        json!({".tag": "failed", "failed": {".tag": "download_failed"}})
    );
}
