//! WebDAV at `/dav/`: app passwords, one store and one history with the API, locks held
//! across servers, and bad input refused without a change.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Client, TestServer, bytes, content_hash};

/// A WebDAV client signed in with an app password (round robin over the servers).
struct Dav {
    http: reqwest::Client,
    api: Client,
    login: String,
    password: String,
}

impl Dav {
    fn url(&self, path: &str) -> String {
        format!("{}/dav{path}", self.api.url())
    }

    fn req(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                self.url(path),
            )
            .basic_auth(&self.login, Some(&self.password))
    }

    /// The same client pinned to server `i`.
    fn on(&self, i: usize) -> Dav {
        Dav {
            http: self.http.clone(),
            api: self.api.on(i),
            login: self.login.clone(),
            password: self.password.clone(),
        }
    }
}

/// A user with an API client and a WebDAV client (an app password limited as given).
async fn user(server: &TestServer, name: &str, folder: &str, read_only: bool) -> (Client, Dav) {
    let api = server.user(name).await;
    let dav = dav_for(server, &api, name, folder, read_only).await;
    (api, dav)
}

async fn dav_for(server: &TestServer, api: &Client, name: &str, folder: &str, ro: bool) -> Dav {
    let account = server.store.user(name).await.unwrap();
    let (_, password) = server
        .store
        .create_app_password(account.id, "test device", folder, ro)
        .await
        .unwrap();
    Dav {
        http: reqwest::Client::new(),
        api: api.clone(),
        login: name.to_owned(),
        password,
    }
}

/// A `Destination` as a path (the full-URL form is litmus's: in scale-out mode the test's
/// servers have different hosts, where a balancer's would have one).
fn dest(path: &str) -> String {
    format!("/dav{path}")
}

fn etag(r: &reqwest::Response) -> String {
    r.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

#[tokio::test]
async fn a_put_is_a_revision_the_api_sees_and_no_client_overwrites_blindly() {
    let server = TestServer::start().await;
    let (api, dav) = user(&server, "ann", "", false).await;
    let (_, cursor) = api.list_all(json!({"path": "", "recursive": true})).await;

    let r = dav
        .req("PUT", "/notes.txt")
        .body("one")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = etag(&r);
    let md = api.meta("/notes.txt").await.ok();
    assert_eq!(md["rev"], first, "the ETag is the API's rev");

    // The change feed reports it, as any other write.
    let feed = api
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await
        .ok();
    assert_eq!(feed["entries"][0]["path_display"], "/notes.txt", "{feed}");

    // An overwrite naming the current version succeeds and keeps the old one.
    let r = dav
        .req("PUT", "/notes.txt")
        .header("if-match", format!("\"{first}\""))
        .body("two")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let second = etag(&r);
    assert_ne!(second, first);
    // One naming a version that is no longer current is refused and changes nothing.
    let r = dav
        .req("PUT", "/notes.txt")
        .header("if-match", format!("\"{first}\""))
        .body("stale")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = dav
        .req("PUT", "/notes.txt")
        .header("if-none-match", "*")
        .body("new only")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let got = dav.req("GET", "/notes.txt").send().await.unwrap();
    assert_eq!(etag(&got), second);
    assert_eq!(got.text().await.unwrap(), "two");
    let revs = api
        .rpc("files/list_revisions", json!({"path": "/notes.txt"}))
        .await
        .ok();
    assert_eq!(revs["entries"].as_array().unwrap().len(), 2, "{revs}");

    // A write through the API is visible over WebDAV at once, ranges included.
    api.put("/api.bin", &bytes(10_000, 1)).await;
    let r = dav
        .req("GET", "/api.bin")
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), bytes(10_000, 1)[100..200]);
    let r = dav
        .req("GET", "/api.bin")
        .header(
            "if-none-match",
            format!(
                "\"{}\"",
                api.meta("/api.bin").await.ok()["rev"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_body_sent_in_chunks_is_streamed_and_one_cut_short_commits_nothing() {
    let server = TestServer::start().await;
    let (api, dav) = user(&server, "ann", "", false).await;
    let data = bytes(9 * 1024 * 1024 + 77, 3);
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(300_000).map(|c| Ok(c.to_vec())).collect();
    let r = dav
        .req("PUT", "/big.bin")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let md = api.meta("/big.bin").await.ok();
    assert_eq!(md["size"], data.len());
    assert_eq!(md["content_hash"], content_hash(&data));

    // The client fails half-way: the connection ends without the body's end.
    let mut pieces: Vec<Result<Vec<u8>, std::io::Error>> = data
        .chunks(300_000)
        .take(10)
        .map(|c| Ok(c.to_vec()))
        .collect();
    pieces.push(Err(std::io::Error::other("the client gave up")));
    let cut = dav
        .req("PUT", "/big.bin")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await;
    assert!(cut.is_err() || !cut.unwrap().status().is_success());
    // The server's receiver would commit after the client saw the error: give it time.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let after = api.meta("/big.bin").await.ok();
    assert_eq!(after["rev"], md["rev"], "a cut body changed the file");
    let revs = api
        .rpc("files/list_revisions", json!({"path": "/big.bin"}))
        .await
        .ok();
    assert_eq!(revs["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn folders_copies_and_moves_go_through_the_store_and_copies_share_blocks() {
    let server = TestServer::start().await;
    let (api, dav) = user(&server, "ann", "", false).await;
    assert_eq!(
        dav.req("MKCOL", "/docs").send().await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        dav.req("MKCOL", "/docs").send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        dav.req("MKCOL", "/none/x").send().await.unwrap().status(),
        StatusCode::CONFLICT
    );
    let data = bytes(5 * 1024 * 1024, 9);
    let r = dav
        .req("PUT", "/docs/a.bin")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let blocks = server.block_files().await;
    let r = dav
        .req("COPY", "/docs/a.bin")
        .header("destination", dest("/docs/b.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(server.block_files().await, blocks, "a copy wrote blocks");
    let r = dav
        .req("MOVE", "/docs")
        .header("destination", dest("/papers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let md = api.meta("/papers/b.bin").await.ok();
    assert_eq!(md["content_hash"], content_hash(&data));
    // A rename in case only keeps the file (the library alone would delete the target,
    // which is the source).
    let r = dav
        .req("MOVE", "/papers/b.bin")
        .header("destination", dest("/papers/B.bin"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(api.meta("/papers/b.bin").await.ok()["name"], "B.bin");
    // A move onto an existing item without Overwrite is refused.
    let r = dav
        .req("MOVE", "/papers/a.bin")
        .header("destination", dest("/papers/B.bin"))
        .header("overwrite", "F")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = dav.req("DELETE", "/papers").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.meta("/papers").await.status.as_u16(), 409);
    // Deleted over WebDAV, restorable through the API.
    let revs = api
        .rpc("files/list_revisions", json!({"path": "/papers/a.bin"}))
        .await
        .ok();
    let rev = revs["entries"][0]["rev"].as_str().unwrap();
    api.rpc(
        "files/restore",
        json!({"path": "/papers/a.bin", "rev": rev}),
    )
    .await
    .ok();
    let r = dav.req("GET", "/papers/a.bin").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn only_an_app_password_signs_in_and_its_limits_hold() {
    let server = TestServer::start().await;
    let (api, dav) = user(&server, "ann", "", false).await;
    let (_, bob) = user(&server, "bob", "", false).await;
    api.put("/Photos/cat.jpg", b"cat").await;
    api.put("/secret.txt", b"secret").await;

    let status = |r: reqwest::Response| r.status();
    // No credential, a wrong one, the sign-in password, another user's password.
    let r = dav
        .http
        .request(Method::GET, dav.url("/secret.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    for (login, pw) in [
        ("ann", "wrong-password"),
        ("ann", "pw-for-tests"),
        ("ann", bob.password.as_str()),
        ("bob", dav.password.as_str()),
    ] {
        let r = dav
            .http
            .get(dav.url("/secret.txt"))
            .basic_auth(login, Some(pw))
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), StatusCode::UNAUTHORIZED, "{login}");
    }
    // The e-mail address is a login too.
    let r = dav
        .http
        .get(dav.url("/secret.txt"))
        .basic_auth("ann@example.com", Some(&dav.password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A read-only password reads and changes nothing.
    let ro = dav_for(&server, &api, "ann", "", true).await;
    assert_eq!(
        status(ro.req("GET", "/secret.txt").send().await.unwrap()),
        StatusCode::OK
    );
    for (m, p) in [
        ("PUT", "/new.txt"),
        ("DELETE", "/secret.txt"),
        ("MKCOL", "/d"),
    ] {
        let r = ro.req(m, p).body("x").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{m}");
    }
    let r = ro
        .req("MOVE", "/secret.txt")
        .header("destination", dest("/moved.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(api.meta("/secret.txt").await.status.as_u16(), 200);

    // A password limited to a folder sees that folder as its root, and nothing beside it.
    let photos = dav_for(&server, &api, "ann", "/Photos", false).await;
    let r = photos.req("GET", "/cat.jpg").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "cat");
    for escape in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"] {
        let r = photos.req("GET", escape).send().await.unwrap();
        assert_ne!(r.status(), StatusCode::OK, "{escape}");
    }
    let r = photos
        .req("PUT", "/dog.jpg")
        .body("dog")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(api.meta("/Photos/dog.jpg").await.status.as_u16(), 200);
    let r = photos
        .req("COPY", "/dog.jpg")
        .header(
            "destination",
            format!("{}/dav/../secret.txt", photos.api.url()),
        )
        .send()
        .await
        .unwrap();
    assert!(!r.status().is_success());
    assert_eq!(
        api.download(json!({"path": "/secret.txt"}), None)
            .await
            .body,
        b"secret"
    );

    // Revoked: refused at once.
    let account = server.store.user("ann").await.unwrap();
    for p in server.store.app_passwords(account.id).await.unwrap() {
        server
            .store
            .revoke_app_password(account.id, p.id)
            .await
            .unwrap();
    }
    let r = dav.req("GET", "/secret.txt").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_passwords_count_against_the_sign_in_limit() {
    let server = TestServer::start().await;
    let (_, dav) = user(&server, "ann", "", false).await;
    // Limits live in each server's memory: guess through one.
    let dav = dav.on(0);
    let mut limited = false;
    for _ in 0..(cubby_server::SIGNIN_FAILURES + 1) {
        let r = dav
            .http
            .get(dav.url("/"))
            .basic_auth("ann", Some("guess"))
            .send()
            .await
            .unwrap();
        limited |= r.status() == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "guessing was never limited");
    // The right password is refused too while the limit holds (guessing stays hopeless).
    let r = dav.on(0).req("GET", "/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_lock_taken_through_one_server_holds_on_the_other() {
    let server = TestServer::start().await;
    let (api, dav) = user(&server, "ann", "", false).await;
    api.put("/report.txt", b"v1").await;
    let body = r#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>
<D:locktype><D:write/></D:locktype><D:owner>ann's laptop</D:owner></D:lockinfo>"#;
    let r = dav
        .on(0)
        .req("LOCK", "/report.txt")
        .header("timeout", "Second-600")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.headers()["lock-token"].to_str().unwrap().to_owned();
    let other = dav.on(1);
    let r = other
        .req("PUT", "/report.txt")
        .body("v2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::LOCKED, "the lock was not seen");
    let r = other.req("DELETE", "/report.txt").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::LOCKED);
    // A second exclusive lock is refused.
    let r = other
        .req("LOCK", "/report.txt")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::LOCKED);
    let r = other
        .req("PUT", "/report.txt")
        .header("if", format!("({token})"))
        .body("v2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = other
        .req("UNLOCK", "/report.txt")
        .header("lock-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = dav
        .on(0)
        .req("PUT", "/report.txt")
        .body("v3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        api.download(json!({"path": "/report.txt"}), None)
            .await
            .body,
        b"v3"
    );
}

#[tokio::test]
async fn bad_input_gets_the_rfc_status_and_changes_nothing() {
    let server = TestServer::start().await;
    let (api, dav) = user(&server, "ann", "", false).await;
    api.put("/a.txt", b"a").await;
    let (_, cursor) = api.list_all(json!({"path": "", "recursive": true})).await;

    let propfind = |body: &'static str| {
        dav.req("PROPFIND", "/a.txt")
            .header("depth", "0")
            .header("content-type", "application/xml")
            .body(body)
    };
    let r = propfind("<D:propfind xmlns:D=\"DAV:\"><D:prop>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Entity expansion: refused, not expanded.
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:x">&lol9;</x></D:prop></D:set></D:propertyupdate>"#;
    let r = dav
        .req("PROPPATCH", "/a.txt")
        .header("content-type", "application/xml")
        .body(laughs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A property value past the request limit.
    let huge = format!(
        "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><x xmlns=\"urn:x\">{}</x>\
         </D:prop></D:set></D:propertyupdate>",
        "v".repeat(200_000)
    );
    let r = dav
        .req("PROPPATCH", "/a.txt")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Depth out of range, and a whole tree in one answer.
    let r = dav
        .req("PROPFIND", "/")
        .header("depth", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = dav
        .req("PROPFIND", "/")
        .header("depth", "infinity")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("propfind-finite-depth"));
    // A destination on another server, or outside the tree.
    let r = dav
        .req("COPY", "/a.txt")
        .header("destination", "http://elsewhere.example/dav/b.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let r = dav
        .req("MOVE", "/a.txt")
        .header("destination", format!("{}/2/files/b.txt", dav.api.url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error() || r.status() == StatusCode::BAD_GATEWAY);
    // A path that is not UTF-8.
    let r = dav.req("PUT", "/%FF.txt").body("x").send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // UNLOCK with a token that does not exist.
    let r = dav
        .req("UNLOCK", "/a.txt")
        .header("lock-token", "<opaquelocktoken:nope>")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    let feed = api
        .rpc("files/list_folder/continue", json!({"cursor": cursor}))
        .await
        .ok();
    assert_eq!(feed["entries"], json!([]), "bad input changed something");
    assert_eq!(
        api.download(json!({"path": "/a.txt"}), None).await.body,
        b"a"
    );
}

#[tokio::test]
async fn dead_properties_follow_a_move_and_are_copied() {
    let server = TestServer::start().await;
    let (_, dav) = user(&server, "ann", "", false).await;
    dav.req("PUT", "/p.txt").body("p").send().await.unwrap();
    let set = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">
<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"#;
    let r = dav
        .req("PROPPATCH", "/p.txt")
        .body(set)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    let get = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z">
<D:prop><Z:colour/></D:prop></D:propfind>"#;
    let colour = |path: &'static str| {
        let req = dav.req("PROPFIND", path).header("depth", "0").body(get);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    assert!(colour("/p.txt").await.contains(">blue<"));
    dav.req("MOVE", "/p.txt")
        .header("destination", dest("/q.txt"))
        .send()
        .await
        .unwrap();
    assert!(colour("/q.txt").await.contains(">blue<"));
    dav.req("COPY", "/q.txt")
        .header("destination", dest("/r.txt"))
        .send()
        .await
        .unwrap();
    assert!(colour("/r.txt").await.contains(">blue<"));
}

#[tokio::test]
async fn a_viewer_of_a_shared_folder_cannot_write_through_webdav() {
    let server = TestServer::start().await;
    let (owner, _) = user(&server, "ann", "", false).await;
    let (viewer, dav) = user(&server, "bob", "", false).await;
    owner.put("/Team/plan.txt", b"plan").await;
    let id = owner
        .rpc("sharing/share_folder", json!({"path": "/Team"}))
        .await
        .ok()["shared_folder_id"]
        .as_str()
        .unwrap()
        .to_owned();
    owner
        .rpc(
            "sharing/add_folder_member",
            json!({"shared_folder_id": id, "members": [
                {"member": {".tag": "email", "email": "bob@example.com"}, "access_level": "viewer"}
            ]}),
        )
        .await
        .ok();
    viewer
        .rpc("sharing/mount_folder", json!({"shared_folder_id": id}))
        .await
        .ok();
    let r = dav.req("GET", "/Team/plan.txt").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "plan");
    let r = dav
        .req("PUT", "/Team/plan.txt")
        .body("mine")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = dav.req("DELETE", "/Team/plan.txt").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        owner
            .download(json!({"path": "/Team/plan.txt"}), None)
            .await
            .body,
        b"plan"
    );
}

#[tokio::test]
async fn nextcloud_clients_find_the_server_the_user_and_their_properties() {
    let server = TestServer::start().await;
    let (api, dav) = user(&server, "ann", "", false).await;
    let (_, bob) = user(&server, "bob", "", false).await;
    let base = dav.api.url();
    let status: serde_json::Value = dav
        .http
        .get(format!("{base}/status.php"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["installed"], true);
    let caps = dav
        .http
        .get(format!("{base}/ocs/v1.php/cloud/capabilities?format=json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The desktop client reads the status code with a regular expression: compact JSON.
    assert!(caps.contains("\"statuscode\":100"), "{caps}");
    assert!(caps.contains("\"chunking\":\"1.0\""), "{caps}");
    let me: serde_json::Value = dav
        .http
        .get(format!("{base}/ocs/v2.php/cloud/user?format=json"))
        .basic_auth(&dav.login, Some(&dav.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["ocs"]["meta"]["statuscode"], 200);
    assert_eq!(me["ocs"]["data"]["id"], "ann");

    // The tree under the user's name; another user's name is refused.
    api.put("/docs/a.txt", b"a").await;
    let propfind = |url: String, depth: &'static str| {
        dav.http
            .request(Method::from_bytes(b"PROPFIND").unwrap(), url)
            .basic_auth(&dav.login, Some(&dav.password))
            .header("depth", depth)
            .body(
                r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
<d:prop><d:getetag/><oc:id/><oc:fileid/><oc:permissions/><oc:size/><oc:checksums/></d:prop></d:propfind>"#,
            )
    };
    let r = propfind(format!("{base}/remote.php/dav/files/ann/docs/"), "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("application/xml; charset=utf-8")
    );
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<oc:permissions>RGDNVW</oc:permissions>"),
        "{xml}"
    );
    assert!(
        xml.contains("<oc:permissions>RGDNVCK</oc:permissions>"),
        "{xml}"
    );
    assert!(xml.contains("<oc:size>1</oc:size>"), "{xml}");
    assert!(xml.contains("cubby</oc:id>"), "{xml}");
    let r = propfind(format!("{base}/remote.php/dav/files/bob/"), "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let _ = bob;

    // A change deep down changes the ETag of every folder above it.
    let root_tag = |x: String| {
        let start = x.find("<D:getetag>").unwrap() + 11;
        x[start..start + x[start..].find('<').unwrap()].to_owned()
    };
    let before = root_tag(
        propfind(format!("{base}/remote.php/webdav/"), "0")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    api.put("/docs/deep/er/b.txt", b"b").await;
    let after = root_tag(
        propfind(format!("{base}/remote.php/webdav/"), "0")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_ne!(before, after, "the root's ETag did not change");
}

#[tokio::test]
async fn a_chunked_upload_is_one_revision_and_refuses_what_does_not_continue_it() {
    let server = TestServer::start().await;
    let (api, dav) = user(&server, "ann", "", false).await;
    let base = dav.api.on(0).url();
    let req = |m: &str, path: &str| {
        dav.http
            .request(
                Method::from_bytes(m.as_bytes()).unwrap(),
                format!("{base}{path}"),
            )
            .basic_auth(&dav.login, Some(&dav.password))
    };
    let up = "/remote.php/dav/uploads/ann/4711";
    assert_eq!(
        req("MKCOL", up).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        req("MKCOL", up).send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    let data = bytes(10_000_000 + 5_000_000 + 123, 4);
    let (a, rest) = data.split_at(10_000_000);
    let (b, c) = rest.split_at(5_000_000);
    let put = |name: &str, body: &[u8]| req("PUT", &format!("{up}/{name}")).body(body.to_vec());
    assert_eq!(
        put("00001", a).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        put("00002", b).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    // Out of order, or not where the upload stands: refused, and the upload unchanged.
    assert_eq!(
        put("00001", c).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let r = put("00003", c)
        .header("oc-chunk-offset", "7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A client resuming lists what arrived.
    let listing = req("PROPFIND", up)
        .header("depth", "1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listing.contains("00002</d:href>"), "{listing}");
    assert!(listing.contains("<d:getcontentlength>5000000</d:getcontentlength>"));
    assert_eq!(
        put("00003", c).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let dest = "/remote.php/dav/files/ann/video.mp4";
    let r = req("MOVE", &format!("{up}/.file"))
        .header("destination", dest)
        .header("oc-total-length", "99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = req("MOVE", &format!("{up}/.file"))
        .header("destination", dest)
        .header("oc-total-length", data.len().to_string())
        .header("x-oc-mtime", "1700000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["x-oc-mtime"], "accepted");
    assert!(r.headers().contains_key("oc-fileid"));
    let md = api.meta("/video.mp4").await.ok();
    assert_eq!(md["content_hash"], content_hash(&data));
    assert_eq!(md["client_modified"], "2023-11-14T22:13:20Z");
    assert_eq!(
        r.headers()["etag"].to_str().unwrap().trim_matches('"'),
        md["rev"]
    );
    // The upload is gone once used.
    assert_eq!(
        req("PROPFIND", up).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // An overwrite naming a version that is no longer current is refused.
    let up2 = "/remote.php/dav/uploads/ann/4712";
    req("MKCOL", up2).send().await.unwrap();
    req("PUT", &format!("{up2}/1"))
        .body("new")
        .send()
        .await
        .unwrap();
    api.upload_with(
        json!({"path": "/video.mp4", "mode": "overwrite"}),
        b"changed".to_vec(),
    )
    .await
    .ok();
    let r = req("MOVE", &format!("{up2}/.file"))
        .header("destination", dest)
        .header(
            "if",
            format!("<{dest}> ([\"{}\"])", md["rev"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        api.download(json!({"path": "/video.mp4"}), None).await.body,
        b"changed"
    );
    // Another user's uploads are out of reach.
    let (_, bob) = user(&server, "bob", "", false).await;
    let r = dav
        .http
        .request(
            Method::from_bytes(b"MKCOL").unwrap(),
            format!("{base}/remote.php/dav/uploads/ann/1"),
        )
        .basic_auth(&bob.login, Some(&bob.password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn login_flow_v2_hands_the_app_a_new_app_password_once_the_person_grants_it() {
    use crate::auth::{Browser, hidden_fields, with};
    let server = TestServer::start().await;
    let api = server.user("ann").await;
    let app = reqwest::Client::new();
    let base = api.on(0).url();
    let start: serde_json::Value = app
        .post(format!("{base}/index.php/login/v2"))
        .header("user-agent", "Nextcloud desktop (test)")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll_token = start["poll"]["token"].as_str().unwrap().to_owned();
    let endpoint = start["poll"]["endpoint"].as_str().unwrap().to_owned();
    let login = start["login"].as_str().unwrap().to_owned();
    assert!(
        endpoint.starts_with(&base) && login.starts_with(&base),
        "{start}"
    );
    let poll = || {
        app.post(&endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={poll_token}"))
            .send()
    };
    assert_eq!(poll().await.unwrap().status(), StatusCode::NOT_FOUND);

    // The person signs in through the page the app opened, then grants.
    let flow_path = login.strip_prefix(&base).unwrap().to_owned();
    let mut b = Browser::new(&api.on(0));
    let r = b.get(&flow_path).await;
    let f = hidden_fields(&r.text());
    let r = b
        .post(
            "/login",
            &with(f, &[("login", "ann"), ("password", "pw-for-tests")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let page = b.get(&flow_path).await;
    assert!(
        page.text().contains("Nextcloud desktop (test)"),
        "{}",
        page.text()
    );
    let grant = flow_path.replace("/flow/", "/grant/");
    let r = b.post(&grant, &hidden_fields(&page.text())).await;
    assert!(r.text().contains("Access granted"), "{}", r.text());
    // A grant without the form's token is refused (another site cannot grant).
    let r = b.post(&grant, &[]).await;
    assert_ne!(r.status, StatusCode::OK);

    let creds: serde_json::Value = poll().await.unwrap().json().await.unwrap();
    assert_eq!(creds["loginName"], "ann");
    assert_eq!(creds["server"], base);
    let password = creds["appPassword"].as_str().unwrap();
    let r = app
        .request(
            Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{base}/remote.php/dav/files/ann/"),
        )
        .basic_auth("ann", Some(password))
        .header("depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    // Collected once; the link is spent.
    assert_eq!(poll().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(b.get(&flow_path).await.status, StatusCode::NOT_FOUND);
    let account = server.store.user("ann").await.unwrap();
    let names: Vec<String> = server
        .store
        .app_passwords(account.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["Nextcloud desktop (test)"]);
    // The app signing out revokes its password.
    let r = app
        .delete(format!("{base}/ocs/v2.php/core/apppassword"))
        .basic_auth("ann", Some(password))
        .header("ocs-apirequest", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        server
            .store
            .app_passwords(account.id)
            .await
            .unwrap()
            .is_empty()
    );
}
