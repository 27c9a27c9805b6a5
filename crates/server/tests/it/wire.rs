//! Wire conventions: argument passing, auth errors, 400s, header escaping, path roots.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestServer;

#[tokio::test]
async fn bad_input_is_plain_text_400() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let cases = [
        // (route, body, fragment of the message)
        (
            "files/get_metadata",
            "{not json",
            "could not decode input as JSON",
        ),
        (
            "files/get_metadata",
            r#"{"path": "relative"}"#,
            "did not match pattern",
        ),
        (
            "files/get_metadata",
            r#"{"path": ""}"#,
            "did not match pattern",
        ),
        ("files/get_metadata", r#"{}"#, "missing field `path`"),
        ("files/list_folder", r#"{"path": "/"}"#, "empty string"),
        ("files/list_folder", r#"{"path": "", "limit": 0}"#, "limit"),
        (
            "files/list_folder",
            r#"{"path": "", "limit": 2001}"#,
            "limit",
        ),
        (
            "files/create_folder_v2",
            r#"{"path": "id:abc"}"#,
            "did not match pattern",
        ),
        (
            "files/delete_v2",
            r#"{"path": "/a", "parent_rev": "XYZ"}"#,
            "parent_rev",
        ),
        (
            "files/list_folder/longpoll",
            r#"{"cursor": "x", "timeout": 10}"#,
            "timeout",
        ),
        ("no/such_route", "null", "Unknown API function"),
    ];
    for (route, body, fragment) in cases {
        let r = c
            .raw(
                c.http
                    .post(format!("{}/2/{route}", c.url()))
                    .bearer_auth(&c.token)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{route} {body}: {}",
            r.text()
        );
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(r.text().contains(fragment), "{route} {body}: {}", r.text());
    }
}

#[tokio::test]
async fn auth_errors() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let url = format!("{}/2/users/get_current_account", c.url());
    // No credentials at all: bad input.
    let r = c.raw(c.http.post(&url)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("Authorization"));
    // Unknown token: 401 with an AuthError union, JSON content type exactly.
    let r = c.raw(c.http.post(&url).bearer_auth("cby1.forged")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.json()["error"], json!({".tag": "invalid_access_token"}));
    assert!(
        r.json()["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("invalid_access_token/")
    );
    // A token narrowed to one scope is refused elsewhere with missing_scope.
    let (narrow, _) = srv
        .store
        .mint_token("alice", None, &["files.metadata.read".to_owned()])
        .await
        .unwrap();
    let r = c.raw(c.http.post(&url).bearer_auth(&narrow)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json()["error"],
        json!({".tag": "missing_scope", "required_scope": "account_info.read"})
    );
    let r = c
        .raw(
            c.http
                .post(format!("{}/2/files/list_folder", c.url()))
                .bearer_auth(&narrow)
                .header("content-type", "application/json")
                .body(r#"{"path": ""}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn void_arguments_accept_null_empty_and_object() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    for body in ["", "null", "{}"] {
        let r = c
            .raw(
                c.http
                    .post(format!("{}/2/users/get_space_usage", c.url()))
                    .bearer_auth(&c.token)
                    .body(body),
            )
            .await;
        let v = r.ok();
        assert_eq!(v["allocation"][".tag"], "individual", "body {body:?}");
    }
    let v = c
        .rpc("check/user", json!({"query": "ping ✓", "unknown_field": 1}))
        .await
        .ok();
    assert_eq!(v, json!({"result": "ping ✓"}));
}

#[tokio::test]
async fn query_parameters_replace_headers() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/q/Ünïcode ✓.txt", b"via query").await;
    // GET with arg= and authorization= on a download route.
    let arg = serde_json::to_string(&json!({"path": "/q/ünïcode ✓.txt"})).unwrap();
    let auth = format!("Bearer {}", c.token);
    let r = c
        .raw(
            c.http.get(
                reqwest::Url::parse_with_params(
                    &format!("{}/2/files/download", c.url()),
                    &[("arg", arg.as_str()), ("authorization", auth.as_str())],
                )
                .unwrap(),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body, b"via query");
    // Dropbox-API-Result escapes every non-ASCII character and still decodes to the name.
    let raw = r.headers["dropbox-api-result"].to_str().unwrap().to_owned();
    assert!(raw.is_ascii() && raw.contains("\\u00dc"));
    assert_eq!(r.api_result()["name"], "Ünïcode ✓.txt");
    // The upload arg header may itself carry \u escapes.
    let r = c
        .raw(
            c.http
                .post(format!("{}/2/files/upload", c.url()))
                .bearer_auth(&c.token)
                .header("dropbox-api-arg", r#"{"path": "/q/\u00e9t\u00e9.txt"}"#)
                .header("content-type", "application/octet-stream")
                .body("summer"),
        )
        .await;
    assert_eq!(r.ok()["path_display"], "/q/été.txt");
}

#[tokio::test]
async fn path_root_header() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let ns = c.rpc("users/get_current_account", json!(null)).await.ok()["root_info"]["root_namespace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = |root: serde_json::Value| {
        c.http
            .post(format!("{}/2/files/list_folder", c.url()))
            .bearer_auth(&c.token)
            .header("content-type", "application/json")
            .header("dropbox-api-path-root", root.to_string())
            .body(r#"{"path": ""}"#)
    };
    assert_eq!(
        c.raw(send(json!({".tag": "home"}))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        c.raw(send(json!({".tag": "root", "root": ns})))
            .await
            .status,
        StatusCode::OK
    );
    let r = c.raw(send(json!({".tag": "root", "root": "999999"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"][".tag"], "invalid_root");
    assert_eq!(r.json()["error"]["invalid_root"]["root_namespace_id"], ns);
    let r = c
        .raw(send(
            json!({".tag": "namespace_id", "namespace_id": "999999"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"], json!({".tag": "no_permission"}));
}

/// An RPC refused before its argument is read (here for its token) still reads the body, so
/// the connection stays open for the next request: the body arrives after the headers (as
/// a TLS client's separate records may), and a second request follows on the same socket.
#[tokio::test]
async fn a_refused_rpc_keeps_its_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start().await;
    let addr = srv.urls[0].trim_start_matches("http://").to_owned();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = "POST /2/users/get_current_account HTTP/1.1\r\nHost: cubby\r\n\
                Authorization: Bearer nope-nope\r\nContent-Type: application/json\r\n\
                Content-Length: 4\r\n\r\n";
    sock.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sock.write_all(b"null").await.unwrap();
    sock.write_all(format!("{head}null").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let read_both = async {
        let mut buf = [0u8; 4096];
        while String::from_utf8_lossy(&got)
            .matches("HTTP/1.1 401")
            .count()
            < 2
        {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read_both)
        .await
        .expect("answers within 10 s");
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("HTTP/1.1 401").count(), 2, "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
}

/// RPC routes take JSON (or Dropbox's CORS-hack text type) and refuse other content types
/// with Dropbox's 400, changing nothing.
#[tokio::test]
async fn rpc_content_types() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let call = |ct: &'static str, path: &'static str| {
        c.raw(
            c.http
                .post(format!("{}/2/files/create_folder_v2", c.url()))
                .bearer_auth(&c.token)
                .header("content-type", ct)
                .body(format!(r#"{{"path": "{path}"}}"#)),
        )
    };
    for (ct, path) in [
        ("text/plain", "/a"),
        ("application/x-www-form-urlencoded", "/b"),
        ("application/octet-stream", "/c"),
    ] {
        let r = call(ct, path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{ct}");
        assert!(
            r.text()
                .contains(&format!("Bad HTTP \"Content-Type\" header: \"{ct}\"")),
            "{}",
            r.text()
        );
        assert_eq!(c.meta(path).await.conflict(), "path/not_found/", "{ct}");
    }
    for (ct, path) in [
        ("application/json", "/d"),
        ("application/json; charset=utf-8", "/e"),
        ("Application/JSON;charset=UTF-8", "/f"),
        ("text/plain; charset=dropbox-cors-hack", "/g"),
    ] {
        let r = call(ct, path).await;
        assert_eq!(r.status, StatusCode::OK, "{ct}: {}", r.text());
    }
}

/// Paths no route serves, and methods a path does not take, get answers that say so.
#[tokio::test]
async fn unknown_paths_and_methods_are_answered_in_words() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let r = c
        .raw(c.http.get(format!("{}/no/such/thing", c.url())))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.text().contains("the Dropbox API lives under /2/"),
        "{}",
        r.text()
    );
    let r = c.raw(c.http.delete(format!("{}/temp/x/y", c.url()))).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.text().contains("does not take DELETE"), "{}", r.text());
}
