//! The web app's server side: its shell and assets, and its credential on the API (the
//! sign-in cookie plus the session's CSRF token in a header).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth::{Browser, hidden_fields, with};
use crate::support::{Client, Reply, TestServer};

/// Signs `b` in as alice through the sign-in form.
async fn sign_in(b: &mut Browser) {
    let r = b.get("/login").await;
    let f = hidden_fields(&r.text());
    let r = b
        .post(
            "/login",
            &with(f, &[("login", "alice"), ("password", "pw-for-tests")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text());
}

/// The app's configuration JSON from its shell page.
fn config(shell: &str) -> Value {
    let start = shell
        .find("id=\"cubby-config\">")
        .expect("the shell carries its configuration")
        + "id=\"cubby-config\">".len();
    let end = start + shell[start..].find("</script>").unwrap();
    serde_json::from_str(&shell[start..end]).unwrap()
}

/// An API call as the web app makes it: the browser's cookies, and `csrf` if given.
async fn call(b: &Browser, route: &str, arg: Value, csrf: Option<&str>) -> Reply {
    let mut req =
        b.c.http
            .post(format!("{}/2/{route}", b.c.url()))
            .header("cookie", b.cookie_header())
            .header("content-type", "application/json")
            .body(arg.to_string());
    if let Some(t) = csrf {
        req = req.header("x-cubby-csrf", t);
    }
    b.c.raw(req).await
}

async fn upload(b: &Browser, path: &str, data: &[u8], csrf: Option<&str>) -> Reply {
    let mut req =
        b.c.http
            .post(format!("{}/2/files/upload", b.c.url()))
            .header("cookie", b.cookie_header())
            .header("content-type", "application/octet-stream")
            .header("dropbox-api-arg", json!({"path": path}).to_string())
            .body(data.to_vec());
    if let Some(t) = csrf {
        req = req.header("x-cubby-csrf", t);
    }
    b.c.raw(req).await
}

fn get_download(b: &Browser, arg: &Value) -> reqwest::RequestBuilder {
    b.c.http
        .get(format!(
            "{}/2/files/download?arg={}",
            b.c.url(),
            crate::auth::urlencode(&arg.to_string())
        ))
        .header("cookie", b.cookie_header())
}

#[tokio::test]
async fn the_session_cookie_is_an_api_credential_only_with_its_csrf_token() {
    let srv = TestServer::start().await;
    let alice: Client = srv.user("alice").await;
    let mut b = Browser::new(&alice);

    // Signed out, the app's pages send to sign-in and come back to the same folder.
    let r = b.get("/home/Photos%202024").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        "/login?next=%2Fhome%2FPhotos%25202024"
    );

    sign_in(&mut b).await;
    let r = b.get("/home/Photos%202024").await;
    assert_eq!(r.status, StatusCode::OK);
    let shell = r.text();
    let cfg = config(&shell);
    assert_eq!(cfg["account"]["name"], "alice");
    let csrf = cfg["csrf"].as_str().unwrap().to_owned();
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // No executable inline script: the import map (pinned by hash) and JSON data only.
    for tag in shell.split("<script").skip(1) {
        assert!(
            tag.starts_with(" type=\"importmap\"")
                || tag.starts_with(" type=\"application/json\"")
                || tag.starts_with(" type=\"module\" src="),
            "inline script: {tag}"
        );
    }

    // With the token, the cookie is alice.
    let r = call(&b, "users/get_current_account", Value::Null, Some(&csrf)).await;
    assert_eq!(r.ok()["name"]["display_name"], "alice");
    // Without it, or with another, nothing: a cross-site form or fetch cannot set it.
    for bad in [None, Some("forged"), Some("")] {
        let r = call(&b, "users/get_current_account", Value::Null, bad).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(r.json()["error"][".tag"], "invalid_access_token");
        let r = upload(&b, "/forged.txt", b"x", bad).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad:?}");
    }
    assert_eq!(alice.meta("/forged.txt").await.status, StatusCode::CONFLICT);

    // Writes with the token land as alice's, in the same tree the API sees.
    let r = upload(&b, "/page.html", b"<script>alert(1)</script>", Some(&csrf)).await;
    assert_eq!(r.ok()["path_display"], "/page.html");
    assert_eq!(alice.meta("/page.html").await.ok()["size"], 25);

    // A GET of a download route (a link or <img> in the app) needs only the cookie, and
    // its bytes can never act as a page of this origin.
    let r =
        b.c.raw(get_download(&b, &json!({"path": "/page.html"})))
            .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, b"<script>alert(1)</script>");
    let h = &r.headers;
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox"),
        "{h:?}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    // Not from another site, though: a link on another site's page (a top-level navigation
    // carries the cookie) does not use the session.
    for site in ["cross-site", "same-site"] {
        let req = get_download(&b, &json!({"path": "/page.html"})).header("sec-fetch-site", site);
        assert_eq!(
            b.c.raw(req).await.status,
            StatusCode::UNAUTHORIZED,
            "{site}"
        );
    }
    let req =
        get_download(&b, &json!({"path": "/page.html"})).header("sec-fetch-site", "same-origin");
    assert_eq!(b.c.raw(req).await.status, StatusCode::OK);
    // A POST of the same route is a call like any other: it needs the token.
    let req =
        b.c.http
            .post(format!("{}/2/files/download", b.c.url()))
            .header("cookie", b.cookie_header())
            .header("dropbox-api-arg", json!({"path": "/page.html"}).to_string());
    assert_eq!(b.c.raw(req).await.status, StatusCode::UNAUTHORIZED);

    // A bearer token still wins over a cookie, as for any other app.
    let req = alice
        .http
        .post(format!("{}/2/users/get_current_account", alice.url()))
        .header("cookie", b.cookie_header())
        .header("authorization", "Bearer not-a-token");
    assert_eq!(alice.raw(req).await.status, StatusCode::UNAUTHORIZED);

    // Signed out, the cookie is nothing, even with the old token.
    let r = b.post("/logout", &[("csrf".into(), csrf.clone())]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let r = call(&b, "users/get_current_account", Value::Null, Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn assets_are_served_under_content_hashed_names_with_long_lifetimes() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let mut b = Browser::new(&alice);
    sign_in(&mut b).await;
    let shell = b.get("/").await.text();
    let mut urls: Vec<&str> = ["href=\"/assets/", "src=\"/assets/", ":\"/assets/"]
        .iter()
        .flat_map(|attr| shell.split(attr).skip(1))
        .filter_map(|s| s.split_once('"').map(|(u, _)| u))
        .filter(|u| u.matches('.').count() == 2)
        .collect();
    urls.sort();
    urls.dedup();
    assert!(
        urls.iter()
            .any(|u| u.starts_with("app.") && u.ends_with(".js"))
    );
    assert!(
        urls.iter()
            .any(|u| u.starts_with("app.") && u.ends_with(".css"))
    );
    let mut total = 0;
    for u in &urls {
        // name.<12 hex digits>.ext
        let parts: Vec<&str> = u.split('.').collect();
        assert_eq!(parts.len(), 3, "{u}");
        assert_eq!(parts[1].len(), 12, "{u}");
        let req =
            b.c.http
                .get(format!("{}/assets/{u}", b.c.url()))
                .header("accept-encoding", "gzip, deflate");
        let r = b.c.raw(req).await;
        assert_eq!(r.status, StatusCode::OK, "{u}");
        assert_eq!(
            r.headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        if !u.ends_with(".svg") {
            assert_eq!(r.headers["content-encoding"], "gzip", "{u}");
        }
        total += r.body.len();
    }
    // The whole app, as a browser fetches it (gzipped), within the 200 KB budget of its
    // first load.
    assert!(total < 200 * 1000, "the app's assets weigh {total} bytes");
    assert_eq!(
        b.get("/assets/nothing.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn temporary_links_never_render_as_pages_of_this_origin() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    alice.put("/evil.html", b"<script>alert(1)</script>").await;
    alice
        .put(
            "/evil.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        )
        .await;
    for path in ["/evil.html", "/evil.svg"] {
        let link = alice
            .rpc("files/get_temporary_link", json!({ "path": path }))
            .await
            .ok()["link"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = alice.raw(alice.http.get(&link)).await;
        assert_eq!(r.status, StatusCode::OK);
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("sandbox;"), "{path}: {csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
    }
}

/// The hidden fields of the form whose `action` is `action`.
fn form_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form to {action}"));
    let end = start + html[start..].find("</form>").unwrap();
    hidden_fields(&html[start..end])
}

#[tokio::test]
async fn the_account_page_shows_storage_disconnects_apps_and_changes_the_password() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    srv.store.set_quota("alice", Some(10 << 20)).await.unwrap();
    alice.put("/a.bin", &vec![7u8; 3 << 20]).await;
    let (app, _) = srv
        .app(
            "Photo Mover",
            cubby_store::AccessType::AppFolder,
            &[],
            false,
        )
        .await;
    let mover = srv.app_client("alice", &app).await;
    assert_eq!(
        mover
            .rpc("users/get_current_account", Value::Null)
            .await
            .status,
        StatusCode::OK
    );

    let mut b = Browser::new(&alice);
    sign_in(&mut b).await;
    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("3.0 MiB of 10.0 MiB used"), "{html}");
    assert!(html.contains("<b>Photo Mover</b>"), "{html}");

    // Disconnecting the app signs it out at once.
    let action = format!("/account/apps/{}/disconnect", app.key);
    let r = b.post(&action, &form_fields(&html, &action)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(!r.text().contains("<b>Photo Mover</b>"));
    let r = mover.rpc("users/get_current_account", Value::Null).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Without the session's token, nothing is disconnected.
    let r = b.post("/account/apps/whatever/disconnect", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The password: a wrong current one or differing new ones change nothing.
    let html = b.get("/account").await.text();
    let fields = form_fields(&html, "/account/password");
    let r = b
        .post(
            "/account/password",
            &with(
                fields.clone(),
                &[
                    ("current", "wrong"),
                    ("new", "n3w-password"),
                    ("repeat", "n3w-password"),
                ],
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("current password is wrong"));
    let r = b
        .post(
            "/account/password",
            &with(
                fields.clone(),
                &[
                    ("current", "pw-for-tests"),
                    ("new", "n3w-password"),
                    ("repeat", "other-one"),
                ],
            ),
        )
        .await;
    assert!(r.text().contains("differ"));
    assert!(
        srv.store
            .check_password("alice", "pw-for-tests")
            .await
            .unwrap()
            .is_some()
    );
    let r = b
        .post(
            "/account/password",
            &with(
                fields,
                &[
                    ("current", "pw-for-tests"),
                    ("new", "n3w-password"),
                    ("repeat", "n3w-password"),
                ],
            ),
        )
        .await;
    assert!(
        r.text().contains("Your password was changed"),
        "{}",
        r.text()
    );
    assert!(
        srv.store
            .check_password("alice", "n3w-password")
            .await
            .unwrap()
            .is_some()
    );
    // Every browser is signed out, this one included.
    assert!(b.get("/account").await.text().contains("action=\"/login\""));
}

#[tokio::test]
async fn only_operators_see_the_admin_page_which_adds_disables_and_limits_users() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let mut b = Browser::new(&alice);
    sign_in(&mut b).await;
    assert_eq!(b.get("/admin").await.status, StatusCode::FORBIDDEN);
    // Not an operator: the account page does not link it, and its forms are refused.
    assert!(!b.get("/account").await.text().contains("href=\"/admin\""));
    let r = b
        .post(
            "/admin/users/bob/disabled",
            &[("disabled".into(), "1".into())],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    srv.store.set_operator("alice", true).await.unwrap();
    let mut b = Browser::new(&alice);
    sign_in(&mut b).await;
    assert!(b.get("/account").await.text().contains("href=\"/admin\""));
    let html = b.get("/admin").await.text();
    assert!(html.contains("id=\"storage\""), "{html}");
    assert!(html.contains("data-name=\"bob\""));

    // Quota: a size in words, or an error that changes nothing.
    let action = "/admin/users/bob/quota";
    let r = b
        .post(
            action,
            &with(form_fields(&html, action), &[("quota", "10X")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("the unit must be"), "{}", r.text());
    assert_eq!(srv.store.user("bob").await.unwrap().quota, None);
    let r = b
        .post(
            action,
            &with(form_fields(&html, action), &[("quota", "2G")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(srv.store.user("bob").await.unwrap().quota, Some(2 << 30));

    // Disable: bob's token stops working; alice cannot disable herself.
    let action = "/admin/users/bob/disabled";
    let r = b.post(action, &form_fields(&html, action)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(srv.store.user("bob").await.unwrap().disabled);
    let r = bob.rpc("users/get_current_account", Value::Null).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let action = "/admin/users/alice/disabled";
    let r = b.post(action, &form_fields(&html, action)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!srv.store.user("alice").await.unwrap().disabled);

    // Add a user: a generated password is shown once and signs in.
    let r = b
        .post(
            "/admin/users",
            &with(form_fields(&html, "/admin/users"), &[("name", "carol")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    let password = text
        .split("shown only now: ")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the generated password is shown");
    assert!(
        srv.store
            .check_password("carol", password)
            .await
            .unwrap()
            .is_some()
    );
    // A name taken is an error in words.
    let r = b
        .post(
            "/admin/users",
            &with(form_fields(&html, "/admin/users"), &[("name", "carol")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

/// `POST /zip`, the web app's download of a selection: the session and its CSRF token in the
/// form, items of one folder, folders whole; refusals are pages the app's hidden frame may
/// show, and nothing else of this origin can be framed.
#[tokio::test]
async fn a_selection_downloads_as_one_zip_of_its_items() {
    let srv = TestServer::start().await;
    let alice: Client = srv.user("alice").await;
    alice.put("/Trip/notes.txt", b"first notes").await;
    alice.put("/Trip/Photos/a.jpg", b"a photo").await;
    alice.put("/Trip/Photos/deep/b.jpg", b"b photo").await;
    alice.put("/Trip/left out.txt", b"not selected").await;
    alice.put("/elsewhere.txt", b"elsewhere").await;
    let mut b = Browser::new(&alice);
    let form = |csrf: &str, paths: &[&str]| {
        let mut f = vec![("csrf".to_owned(), csrf.to_owned())];
        f.extend(paths.iter().map(|p| ("path".to_owned(), (*p).to_owned())));
        f
    };

    // Signed out: refused, as a page the frame may show.
    let r = b.post("/zip", &form("x", &["/trip/notes.txt"])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("id=\"error\""), "{}", r.text());
    assert_eq!(r.headers["x-frame-options"], "SAMEORIGIN");

    sign_in(&mut b).await;
    let csrf = config(&b.get("/home").await.text())["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = b.post("/zip", &form("forged", &["/trip/notes.txt"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = b
        .post("/zip", &form(&csrf, &["/trip/notes.txt", "/TRIP/Photos"]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/zip");
    let cd = r.headers["content-disposition"].to_str().unwrap();
    assert!(cd.starts_with("attachment; filename=\"Trip.zip\""), "{cd}");
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    let zip = &r.body;
    assert!(zip.starts_with(b"PK\x03\x04"));
    let has = |needle: &[u8]| zip.windows(needle.len()).any(|w| w == needle);
    for name in ["notes.txt", "Photos/", "Photos/a.jpg", "Photos/deep/b.jpg"] {
        assert!(has(name.as_bytes()), "{name} is in the archive");
    }
    for content in [&b"first notes"[..], b"a photo", b"b photo"] {
        assert!(has(content));
    }
    assert!(!has(b"left out") && !has(b"not selected") && !has(b"elsewhere"));
    // The end of central directory record counts the entries: notes.txt, Photos/, a.jpg,
    // deep/, b.jpg.
    let eocd = zip.len() - 22;
    assert_eq!(&zip[eocd..eocd + 4], b"PK\x05\x06");
    assert_eq!(u16::from_le_bytes([zip[eocd + 10], zip[eocd + 11]]), 5);

    // At the root the archive is named after Cubby.
    let r = b
        .post("/zip", &form(&csrf, &["/elsewhere.txt", "/trip"]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let cd = r.headers["content-disposition"].to_str().unwrap();
    assert!(cd.starts_with("attachment; filename=\"Cubby.zip\""), "{cd}");

    // Refusals: items of two folders, a vanished item, nothing, the root.
    for (paths, status, says) in [
        (
            &["/elsewhere.txt", "/trip/notes.txt"][..],
            StatusCode::BAD_REQUEST,
            "in one folder",
        ),
        (
            &["/trip/gone.txt"][..],
            StatusCode::NOT_FOUND,
            "no longer there",
        ),
        (&[][..], StatusCode::BAD_REQUEST, "Nothing was selected"),
        (&[""][..], StatusCode::BAD_REQUEST, "names no item"),
    ] {
        let r = b.post("/zip", &form(&csrf, paths)).await;
        assert_eq!(r.status, status, "{paths:?}");
        assert!(r.text().contains(says), "{paths:?}: {}", r.text());
        assert!(r.text().contains("id=\"error\""));
    }

    // A selection far larger than the other forms (700 long names, about 90 KB) is read.
    let many: Vec<String> = (0..700)
        .map(|i| format!("/trip/{}-{i}.txt", "x".repeat(100)))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let r = b.post("/zip", &form(&csrf, &many)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());

    // Another site's form post never uses the session.
    let req =
        b.c.http
            .post(format!("{}/zip", b.c.url()))
            .header("cookie", b.cookie_header())
            .header("sec-fetch-site", "cross-site")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&path=%2Ftrip%2Fnotes.txt"));
    assert_eq!(b.c.raw(req).await.status, StatusCode::FORBIDDEN);
}

/// `POST /zip` of items in a shared folder (read from its namespace), and of a folder that
/// holds one (its contents come along under the mount point).
#[tokio::test]
async fn a_selection_in_or_around_a_shared_folder_downloads_whole() {
    let srv = TestServer::start().await;
    let alice: Client = srv.user("alice").await;
    alice.put("/Work/Team/plan.txt", b"the plan").await;
    alice.put("/Work/Team/sub/notes.txt", b"the notes").await;
    alice.put("/Work/mine.txt", b"mine").await;
    alice
        .rpc("sharing/share_folder", json!({"path": "/Work/Team"}))
        .await
        .ok();
    let mut b = Browser::new(&alice);
    sign_in(&mut b).await;
    let csrf = config(&b.get("/home").await.text())["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = |paths: &[&str]| {
        let mut f = vec![("csrf".to_owned(), csrf.clone())];
        f.extend(paths.iter().map(|p| ("path".to_owned(), (*p).to_owned())));
        f
    };
    let has = |zip: &[u8], needle: &[u8]| zip.windows(needle.len()).any(|w| w == needle);
    let r = b
        .post("/zip", &form(&["/work/team/plan.txt", "/Work/Team/sub"]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for needle in [
        &b"plan.txt"[..],
        b"sub/notes.txt",
        b"the plan",
        b"the notes",
    ] {
        assert!(has(&r.body, needle), "{}", String::from_utf8_lossy(needle));
    }
    let r = b.post("/zip", &form(&["/work"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for needle in [
        &b"Work/Team/plan.txt"[..],
        b"Work/Team/sub/notes.txt",
        b"Work/mine.txt",
        b"the notes",
    ] {
        assert!(has(&r.body, needle), "{}", String::from_utf8_lossy(needle));
    }
    // The API's download_zip of the mount point, likewise.
    let r = alice
        .raw(
            alice
                .http
                .post(format!("{}/2/files/download_zip", alice.url()))
                .bearer_auth(&alice.token)
                .header("dropbox-api-arg", r#"{"path": "/work/team"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(has(&r.body, b"Team/sub/notes.txt") && has(&r.body, b"the plan"));
}
