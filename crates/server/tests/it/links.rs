//! Shared links: the `sharing/*` routes, `files/list_folder` through a link, and the public
//! `/s/{token}/{name}` endpoint (bytes, ranges, folder pages, passwords, expiry), checked
//! against moves, deletions, app folders and other users.

use cubby_store::AccessType;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, Reply, TestServer};

/// Creates a link with `settings` (none when null) and returns its metadata.
async fn create(c: &Client, path: &str, settings: Value) -> Value {
    let mut arg = json!({"path": path});
    if !settings.is_null() {
        arg["settings"] = settings;
    }
    c.rpc("sharing/create_shared_link_with_settings", arg)
        .await
        .ok()
}

/// A GET of a public URL with no credentials (a cookie when given).
async fn public(c: &Client, url: &str, range: Option<&str>, cookie: Option<&str>) -> Reply {
    let mut req = c.http.get(url);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    if let Some(k) = cookie {
        req = req.header("cookie", k);
    }
    c.raw(req).await
}

/// A link URL without its scheme and host: in scale-out mode each server names itself.
fn same_link(url: &Value) -> String {
    let url = url.as_str().expect("a URL");
    url.split_once("/s/").expect("a link URL").1.to_owned()
}

/// Link metadata without its URL, for comparing answers of different servers.
fn without_url(m: &Value) -> Value {
    let mut m = m.clone();
    m.as_object_mut().unwrap().remove("url");
    m
}

/// `get_shared_link_metadata` of `url`, with a password when given.
async fn get_meta(who: &Client, url: &str, pw: Option<&str>) -> Reply {
    let mut arg = json!({"url": url});
    if let Some(p) = pw {
        arg["link_password"] = json!(p);
    }
    who.rpc("sharing/get_shared_link_metadata", arg).await
}

/// The `name=value` part of a `Set-Cookie` header, and the whole header.
fn set_cookie(r: &Reply) -> (String, String) {
    let full = r.headers["set-cookie"].to_str().unwrap().to_owned();
    (full.split(';').next().unwrap().to_owned(), full)
}

#[tokio::test]
async fn file_link_create_list_get_download_revoke() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    let data = crate::support::bytes(10_000, 3);
    let file = c.put("/Docs/Report.txt", &data).await;

    let m = create(&c, "/docs/report.txt", Value::Null).await;
    assert_eq!(m[".tag"], "file");
    assert_eq!(m["name"], "Report.txt");
    assert_eq!(m["path_lower"], "/docs/report.txt");
    assert_eq!(m["id"], file["id"]);
    assert_eq!(m["rev"], file["rev"]);
    assert_eq!(m["size"], 10_000);
    assert_eq!(m["client_modified"], file["client_modified"]);
    assert!(m.get("expires").is_none());
    let p = &m["link_permissions"];
    assert_eq!(p["resolved_visibility"][".tag"], "public");
    assert_eq!(p["effective_audience"][".tag"], "public");
    assert_eq!(p["link_access_level"][".tag"], "viewer");
    assert_eq!(p["can_revoke"], true);
    assert_eq!(p["allow_download"], true);
    assert_eq!(p["require_password"], false);
    let url = m["url"].as_str().unwrap().to_owned();
    let (prefix, name) = url.rsplit_once('/').unwrap();
    assert_eq!(name, "Report.txt");
    let token = prefix.rsplit_once("/s/").unwrap().1;
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert!(url.starts_with("http://127.0.0.1:"));

    // The public URL serves the bytes without auth, with ranges, ETag and dispositions.
    let r = public(&c, &url, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, data);
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    assert!(
        r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let r = public(&c, &url, Some("bytes=100-199"), None).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body, &data[100..200]);
    assert_eq!(r.headers["content-range"], "bytes 100-199/10000");
    let r = c.raw(c.http.get(&url).header("if-none-match", &etag)).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = public(&c, &format!("{url}?dl=1"), None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"Report.txt\"; filename*=UTF-8''Report.txt"
    );
    // A token that is not one, or one that was never issued, is a 404.
    let fake = format!("{}/s/{}/Report.txt", c.url(), "A".repeat(43));
    assert_eq!(
        public(&c, &fake, None, None).await.status,
        StatusCode::NOT_FOUND
    );
    let short = format!("{}/s/abc/Report.txt", c.url());
    assert_eq!(
        public(&c, &short, None, None).await.status,
        StatusCode::NOT_FOUND
    );

    // A second create returns the existing link in the error, as Dropbox does.
    let r = c
        .rpc(
            "sharing/create_shared_link_with_settings",
            json!({"path": "/docs/report.txt"}),
        )
        .await;
    assert_eq!(r.conflict(), "shared_link_already_exists/metadata/file/");
    let e = &r.json()["error"]["shared_link_already_exists"];
    assert_eq!(e[".tag"], "metadata");
    assert_eq!(same_link(&e["metadata"]["url"]), same_link(&json!(url)));
    // With settings the existing link does not have, no metadata comes back.
    let r = c
        .rpc(
            "sharing/create_shared_link_with_settings",
            json!({"path": "/docs/report.txt", "settings": {"allow_download": false}}),
        )
        .await;
    assert_eq!(r.conflict(), "shared_link_already_exists/");

    // Listing: all links (with a cursor), and by path.
    let l = c.rpc("sharing/list_shared_links", json!({})).await.ok();
    assert_eq!(l["links"].as_array().unwrap().len(), 1);
    assert_eq!(same_link(&l["links"][0]["url"]), same_link(&json!(url)));
    assert_eq!(l["has_more"], false);
    let cursor = l["cursor"].as_str().unwrap().to_owned();
    let l = c
        .rpc("sharing/list_shared_links", json!({"cursor": cursor}))
        .await
        .ok();
    assert_eq!(l["links"], json!([]));
    let l = c
        .rpc(
            "sharing/list_shared_links",
            json!({"path": "/Docs/report.TXT"}),
        )
        .await
        .ok();
    assert_eq!(same_link(&l["links"][0]["url"]), same_link(&json!(url)));
    assert!(l.get("cursor").is_none());

    // Metadata and the file through the API.
    let g = c
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await
        .ok();
    assert_eq!(without_url(&g), without_url(&m));
    let arg = cubby_core::wire::header_safe_json(&json!({"url": url}));
    let r = c
        .raw(
            c.http
                .post(format!("{}/2/sharing/get_shared_link_file", c.url()))
                .bearer_auth(&c.token)
                .header("dropbox-api-arg", &arg)
                .header("range", "bytes=0-9"),
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body, &data[..10]);
    assert_eq!(same_link(&r.api_result()["url"]), same_link(&json!(url)));
    assert_eq!(r.api_result()[".tag"], "file");

    // Revoking ends the link everywhere.
    let r = c
        .rpc("sharing/revoke_shared_link", json!({"url": url}))
        .await
        .ok();
    assert_eq!(r, Value::Null);
    assert_eq!(
        public(&c, &url, None, None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = c
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await;
    assert_eq!(r.conflict(), "shared_link_not_found/");
    let r = c
        .rpc("sharing/revoke_shared_link", json!({"url": url}))
        .await;
    assert_eq!(r.conflict(), "shared_link_not_found/");
    let l = c.rpc("sharing/list_shared_links", json!({})).await.ok();
    assert_eq!(l["links"], json!([]));
    // A new link to the same file is a new URL.
    let again = create(&c, "/docs/report.txt", Value::Null).await;
    assert_ne!(same_link(&again["url"]), same_link(&json!(url)));
}

#[tokio::test]
async fn folder_link_metadata_listing_and_page() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/Shared/a.txt", b"alpha").await;
    c.put("/Shared/Sub/b <x>.txt", b"beta").await;
    c.put("/Shared/c.txt", b"gamma").await;
    c.put("/private.txt", b"no").await;
    let m = create(&c, "/shared", Value::Null).await;
    assert_eq!(m[".tag"], "folder");
    assert_eq!(m["name"], "Shared");
    assert!(m.get("size").is_none());
    let url = m["url"].as_str().unwrap().to_owned();

    // A relative path selects an item inside the folder.
    let g = c
        .rpc(
            "sharing/get_shared_link_metadata",
            json!({"url": url, "path": "/sub/B <x>.txt"}),
        )
        .await
        .ok();
    assert_eq!(g[".tag"], "file");
    assert_eq!(g["name"], "b <x>.txt");
    assert_eq!(g["size"], 4);
    assert_eq!(same_link(&g["url"]), same_link(&json!(url)));
    for bad in ["/nope", "/../private.txt", "/a.txt/x"] {
        let r = c
            .rpc(
                "sharing/get_shared_link_metadata",
                json!({"url": url, "path": bad}),
            )
            .await;
        assert_eq!(r.conflict(), "shared_link_not_found/", "{bad}");
    }
    let r = c
        .rpc(
            "sharing/get_shared_link_metadata",
            json!({"url": url, "path": "sub"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // get_shared_link_file: a folder is refused, a file inside it is served.
    let file = |path: Option<&str>| {
        let mut arg = json!({"url": url});
        if let Some(p) = path {
            arg["path"] = json!(p);
        }
        c.content("sharing/get_shared_link_file", arg, Vec::new())
    };
    assert_eq!(file(None).await.conflict(), "shared_link_is_directory/");
    let r = file(Some("/a.txt")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, b"alpha");
    assert_eq!(r.api_result()["name"], "a.txt");

    // files/list_folder through the link: relative paths, no owner paths, paging.
    let list = |path: &str, extra: Value| {
        let mut arg = json!({"path": path, "shared_link": {"url": url}});
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                arg[k] = v.clone();
            }
        }
        c.rpc("files/list_folder", arg)
    };
    let l = list("", Value::Null).await.ok();
    let names: Vec<&str> = l["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "c.txt", "Sub"]);
    assert!(l["entries"][0].get("path_lower").is_none());
    assert_eq!(l["entries"][0][".tag"], "file");
    assert_eq!(l["has_more"], false);
    let l = list("/sub", Value::Null).await.ok();
    assert_eq!(l["entries"][0]["name"], "b <x>.txt");
    let l = list("", json!({"limit": 2})).await.ok();
    assert_eq!(l["entries"].as_array().unwrap().len(), 2);
    assert_eq!(l["has_more"], true);
    let l2 = c
        .rpc("files/list_folder/continue", json!({"cursor": l["cursor"]}))
        .await
        .ok();
    assert_eq!(l2["entries"][0]["name"], "Sub");
    assert_eq!(l2["has_more"], false);
    assert_eq!(
        list("/a.txt", Value::Null).await.conflict(),
        "path/not_folder/"
    );
    assert_eq!(
        list("/none", Value::Null).await.conflict(),
        "path/not_found/"
    );
    assert_eq!(
        list("", json!({"recursive": true})).await.status,
        StatusCode::BAD_REQUEST
    );
    let r = c
        .rpc(
            "files/list_folder",
            json!({"path": "", "shared_link": {"url": format!("{}/s/{}/x", c.url(), "B".repeat(43))}}),
        )
        .await;
    assert_eq!(r.conflict(), "path/not_found/");

    // The public page lists the folder with escaped names and links inside the link.
    let r = public(&c, &url, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains(">a.txt</a>"), "{html}");
    assert!(html.contains("?path=%2FSub"), "{html}");
    assert!(!html.contains("private.txt"));
    let r = public(&c, &format!("{url}?path=%2FSub"), None, None).await;
    let html = r.text();
    assert!(html.contains("b &lt;x&gt;.txt"), "{html}");
    assert!(!html.contains("b <x>.txt"), "names are escaped");
    let r = public(
        &c,
        &format!("{url}?path=%2FSub%2Fb%20%3Cx%3E.txt"),
        None,
        None,
    )
    .await;
    assert_eq!(r.body, b"beta");
    let r = public(&c, &format!("{url}?path=%2F..%2Fprivate.txt"), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // list_shared_links by path finds links to the item and to folders above it.
    let l = c
        .rpc("sharing/list_shared_links", json!({"path": "/shared/sub"}))
        .await
        .ok();
    assert_eq!(same_link(&l["links"][0]["url"]), same_link(&json!(url)));
    let l = c
        .rpc(
            "sharing/list_shared_links",
            json!({"path": "/shared/sub", "direct_only": true}),
        )
        .await
        .ok();
    assert_eq!(l["links"], json!([]));
}

#[tokio::test]
async fn error_unions_and_bad_input() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/a.txt", b"a").await;
    let call = |route: &'static str, arg: Value| c.rpc(route, arg);
    let create_err = |path: &str, settings: Value| {
        call(
            "sharing/create_shared_link_with_settings",
            json!({"path": path, "settings": settings}),
        )
    };
    assert_eq!(
        create_err("/none.txt", json!({})).await.conflict(),
        "path/not_found/"
    );
    assert_eq!(
        create_err("/a.txt/..", json!({})).await.conflict(),
        "path/malformed_path/"
    );
    assert_eq!(
        create_err("a.txt", json!({})).await.status,
        StatusCode::BAD_REQUEST
    );
    for (settings, summary) in [
        (
            json!({"require_password": true}),
            "settings_error/invalid_settings/",
        ),
        (
            json!({"requested_visibility": "password"}),
            "settings_error/invalid_settings/",
        ),
        (
            json!({"link_password": ""}),
            "settings_error/invalid_settings/",
        ),
        (
            json!({"require_password": false, "link_password": "x"}),
            "settings_error/invalid_settings/",
        ),
        (
            json!({"expires": "2001-01-01T00:00:00Z"}),
            "settings_error/invalid_settings/",
        ),
        (
            json!({"audience": "team"}),
            "settings_error/not_authorized/",
        ),
        (
            json!({"requested_visibility": {".tag": "team_only"}}),
            "settings_error/not_authorized/",
        ),
        (
            json!({"access": "editor"}),
            "settings_error/not_authorized/",
        ),
    ] {
        assert_eq!(
            create_err("/a.txt", settings.clone()).await.conflict(),
            summary,
            "{settings}"
        );
    }
    assert_eq!(
        create_err("/a.txt", json!({"expires": "tomorrow"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        create_err("/a.txt", json!({"colour": "red"})).await.status,
        StatusCode::BAD_REQUEST
    );
    // Nothing was created by the refused calls.
    let l = call("sharing/list_shared_links", json!({})).await.ok();
    assert_eq!(l["links"], json!([]));

    let m = create(&c, "/a.txt", Value::Null).await;
    let url = m["url"].as_str().unwrap();
    // URLs are parsed strictly.
    for bad in [
        "not a url",
        "ftp://h/s/x/y",
        "https://www.dropbox.com/s/2sn712vy1ovegw8/Prime_Numbers.txt?dl=0",
        &format!("{url}/extra"),
        &url.replace("/s/", "/x/"),
    ] {
        let r = call("sharing/revoke_shared_link", json!({"url": bad})).await;
        assert_eq!(r.conflict(), "shared_link_malformed/", "{bad}");
        let r = call("sharing/get_shared_link_metadata", json!({"url": bad})).await;
        assert_eq!(r.conflict(), "shared_link_not_found/", "{bad}");
        let r = call(
            "sharing/modify_shared_link_settings",
            json!({"url": bad, "settings": {"allow_download": true}}),
        )
        .await;
        assert_eq!(r.conflict(), "shared_link_not_found/", "{bad}");
    }
    // A query string and another host name still name the link.
    let other_host = format!(
        "https://files.example/s/{}?dl=0",
        url.split("/s/").nth(1).unwrap()
    );
    call(
        "sharing/get_shared_link_metadata",
        json!({"url": other_host}),
    )
    .await
    .ok();
    // A temporary link is another type of link.
    let t = call("files/get_temporary_link", json!({"path": "/a.txt"}))
        .await
        .ok();
    let r = call(
        "sharing/get_shared_link_metadata",
        json!({"url": t["link"]}),
    )
    .await;
    assert_eq!(r.conflict(), "unsupported_link_type/");
    // Modify with nothing to change, or contradicting itself.
    let r = call(
        "sharing/modify_shared_link_settings",
        json!({"url": url, "settings": {}}),
    )
    .await;
    assert_eq!(r.conflict(), "settings_error/invalid_settings/");
    let r = call(
        "sharing/modify_shared_link_settings",
        json!({"url": url, "settings": {"require_password": true}}),
    )
    .await;
    assert_eq!(r.conflict(), "settings_error/invalid_settings/");
    // list_shared_links: a forged cursor, a missing path.
    let r = call("sharing/list_shared_links", json!({"cursor": "k0.abc.def"})).await;
    assert_eq!(r.conflict(), "reset/");
    let r = call("sharing/list_shared_links", json!({"path": "/none"})).await;
    assert_eq!(r.conflict(), "path/not_found/");
    // The link is unchanged by all of that.
    let g = call("sharing/get_shared_link_metadata", json!({"url": url}))
        .await
        .ok();
    assert_eq!(without_url(&g), without_url(&m));

    // Scopes: sharing.write to create, sharing.read to read.
    let (read_only, _) = srv
        .store
        .mint_token("alice", None, &["sharing.read".to_owned()])
        .await
        .unwrap();
    let r = srv.client_with_token(&read_only);
    let e = r
        .rpc(
            "sharing/create_shared_link_with_settings",
            json!({"path": "/a.txt"}),
        )
        .await;
    assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        e.json()["error"],
        json!({".tag": "missing_scope", "required_scope": "sharing.write"})
    );
    r.rpc("sharing/list_shared_links", json!({})).await.ok();
    let (no_sharing, _) = srv
        .store
        .mint_token("alice", None, &["files.metadata.read".to_owned()])
        .await
        .unwrap();
    let e = srv
        .client_with_token(&no_sharing)
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await;
    assert_eq!(
        e.json()["error"],
        json!({".tag": "missing_scope", "required_scope": "sharing.read"})
    );
}

#[tokio::test]
async fn password_links_need_the_password_on_the_page_and_in_the_api() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    alice.put("/secret/plan.txt", b"the plan").await;
    let m = create(
        &alice,
        "/secret/plan.txt",
        json!({"requested_visibility": "password", "link_password": "open sesame"}),
    )
    .await;
    assert_eq!(
        m["link_permissions"]["resolved_visibility"][".tag"],
        "password"
    );
    assert_eq!(m["link_permissions"]["require_password"], true);
    let url = m["url"].as_str().unwrap().to_owned();

    // The API: another user needs link_password; the owner does not.
    assert_eq!(
        get_meta(&bob, &url, None).await.conflict(),
        "shared_link_access_denied/"
    );
    assert_eq!(
        get_meta(&bob, &url, Some("sesame")).await.conflict(),
        "shared_link_access_denied/"
    );
    let g = get_meta(&bob, &url, Some("open sesame")).await.ok();
    assert_eq!(g["name"], "plan.txt");
    assert!(g.get("path_lower").is_none(), "no owner paths for others");
    assert!(g.get("id").is_none());
    assert_eq!(g["link_permissions"]["can_revoke"], false);
    get_meta(&alice, &url, None).await.ok();
    let r = bob
        .content(
            "sharing/get_shared_link_file",
            json!({"url": url, "link_password": "open sesame"}),
            Vec::new(),
        )
        .await;
    assert_eq!(r.body, b"the plan");
    let r = bob
        .content(
            "sharing/get_shared_link_file",
            json!({"url": url}),
            Vec::new(),
        )
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");

    // The page: a form, a refused wrong password, a cookie for the right one.
    let r = public(&bob, &url, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("name=\"password\""));
    assert!(!r.text().contains("the plan"));
    let post = |pw: &str| bob.raw(bob.http.post(&url).form(&[("password", pw)]));
    let r = post("wrong").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("id=\"error\""));
    assert!(r.headers.get("set-cookie").is_none());
    let r = post("open sesame").await;
    assert_eq!(r.status, StatusCode::FOUND);
    let (cookie, full) = set_cookie(&r);
    let token = url.split("/s/").nth(1).unwrap().split('/').next().unwrap();
    assert!(full.contains(&format!("Path=/s/{token}")), "{full}");
    assert!(full.contains("HttpOnly"));
    assert!(!full.contains("Secure"), "plain HTTP");
    assert!(!cookie.contains("sesame"));
    let r = public(&bob, &url, None, Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, b"the plan");
    let r = public(&bob, &url, Some("bytes=4-"), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body, b"plan");
    // A made-up cookie does not unlock it.
    let r = public(&bob, &url, None, Some("cubby_link=u1.e30.AAAA")).await;
    assert!(r.text().contains("name=\"password\""));

    // A new password locks the link again, cookie included.
    alice
        .rpc(
            "sharing/modify_shared_link_settings",
            json!({"url": url, "settings": {"link_password": "new one"}}),
        )
        .await
        .ok();
    let r = public(&bob, &url, None, Some(&cookie)).await;
    assert!(r.text().contains("name=\"password\""));
    assert_eq!(
        get_meta(&bob, &url, Some("open sesame")).await.conflict(),
        "shared_link_access_denied/"
    );
    get_meta(&bob, &url, Some("new one")).await.ok();
    // Removing the password opens it.
    let m = alice
        .rpc(
            "sharing/modify_shared_link_settings",
            json!({"url": url, "settings": {"require_password": false}}),
        )
        .await
        .ok();
    assert_eq!(m["link_permissions"]["require_password"], false);
    assert_eq!(public(&bob, &url, None, None).await.body, b"the plan");
    // The deprecated visibility scale: password, then public (which drops the password).
    for (visibility, password, resolved) in [
        (json!("password"), Some("third one"), "password"),
        (json!({".tag": "public"}), None, "public"),
    ] {
        let mut settings = json!({"requested_visibility": visibility});
        if let Some(p) = password {
            settings["link_password"] = json!(p);
        }
        let m = alice
            .rpc(
                "sharing/modify_shared_link_settings",
                json!({"url": url, "settings": settings}),
            )
            .await
            .ok();
        assert_eq!(
            m["link_permissions"]["resolved_visibility"][".tag"],
            resolved
        );
    }
    assert_eq!(public(&bob, &url, None, None).await.body, b"the plan");
}

#[tokio::test]
async fn password_guessing_is_limited() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    alice.put("/p.txt", b"p").await;
    let m = create(&alice, "/p.txt", json!({"link_password": "right password"})).await;
    let url = m["url"].as_str().unwrap().to_owned();
    for _ in 0..cubby_server::SIGNIN_FAILURES {
        let r = bob
            .rpc(
                "sharing/get_shared_link_metadata",
                json!({"url": url, "link_password": "guess"}),
            )
            .await;
        assert_eq!(r.conflict(), "shared_link_access_denied/");
    }
    // Past the budget even the right password is refused for a while.
    if srv.urls.len() == 1 {
        let r = bob
            .rpc(
                "sharing/get_shared_link_metadata",
                json!({"url": url, "link_password": "right password"}),
            )
            .await;
        assert_eq!(r.conflict(), "shared_link_access_denied/");
    }
    // The owner is not locked out.
    alice
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await
        .ok();
}

#[tokio::test]
async fn expired_links_stop_serving() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    alice.put("/e.txt", b"soon gone").await;
    let expires = cubby_core::time::format(cubby_store::now() + 3600);
    let m = create(&alice, "/e.txt", json!({"expires": expires})).await;
    assert_eq!(m["expires"], expires);
    let url = m["url"].as_str().unwrap().to_owned();
    assert_eq!(public(&bob, &url, None, None).await.body, b"soon gone");
    // An expiry in the past is refused.
    let r = alice
        .rpc(
            "sharing/modify_shared_link_settings",
            json!({"url": url, "settings": {"expires": "2020-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(r.conflict(), "settings_error/invalid_settings/");
    // Time passes (set in the database).
    srv.sql("UPDATE shared_links SET expires = 1000").await;
    let r = public(&bob, &url, None, None).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(!r.text().contains("soon gone"));
    let r = public(&bob, &url, Some("bytes=0-3"), None).await;
    assert_eq!(r.status, StatusCode::GONE);
    let r = bob
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");
    let r = bob
        .content(
            "sharing/get_shared_link_file",
            json!({"url": url}),
            Vec::new(),
        )
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");
    // The owner can still see it, and remove the expiry.
    let l = alice.rpc("sharing/list_shared_links", json!({})).await.ok();
    assert_eq!(l["links"][0]["expires"], "1970-01-01T00:16:40Z");
    let m = alice
        .rpc(
            "sharing/modify_shared_link_settings",
            json!({"url": url, "settings": {}, "remove_expiration": true}),
        )
        .await
        .ok();
    assert!(m.get("expires").is_none());
    assert_eq!(public(&bob, &url, None, None).await.body, b"soon gone");
}

#[tokio::test]
async fn links_follow_moves_and_end_with_deletion() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await;
    c.put("/a.txt", b"moving").await;
    let m = create(&c, "/a.txt", Value::Null).await;
    let url = m["url"].as_str().unwrap().to_owned();
    c.rpc(
        "files/move_v2",
        json!({"from_path": "/a.txt", "to_path": "/Moved/B.txt"}),
    )
    .await
    .ok();
    assert_eq!(public(&c, &url, None, None).await.body, b"moving");
    let g = c
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await
        .ok();
    assert_eq!(g["name"], "B.txt");
    assert_eq!(g["path_lower"], "/moved/b.txt");
    assert!(g["url"].as_str().unwrap().ends_with("/B.txt"));
    // An overwrite keeps the file (and the link), with the new content.
    c.upload_with(
        json!({"path": "/moved/b.txt", "mode": "overwrite"}),
        b"changed".to_vec(),
    )
    .await
    .ok();
    assert_eq!(public(&c, &url, None, None).await.body, b"changed");
    // A folder link follows its folder too.
    let f = create(&c, "/moved", Value::Null).await;
    let furl = f["url"].as_str().unwrap().to_owned();
    c.rpc(
        "files/move_v2",
        json!({"from_path": "/moved", "to_path": "/Renamed"}),
    )
    .await
    .ok();
    assert!(public(&c, &furl, None, None).await.text().contains("B.txt"));

    c.rpc("files/delete_v2", json!({"path": "/renamed/b.txt"}))
        .await
        .ok();
    assert_eq!(
        public(&c, &url, None, None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = c
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await;
    assert_eq!(r.conflict(), "shared_link_not_found/");
    // A new file at the same path is another file: the link stays dead.
    c.put("/renamed/b.txt", b"new file").await;
    assert_eq!(
        public(&c, &url, None, None).await.status,
        StatusCode::NOT_FOUND
    );
    let l = c.rpc("sharing/list_shared_links", json!({})).await.ok();
    assert_eq!(
        l["links"].as_array().unwrap().len(),
        1,
        "only the folder link"
    );
}

#[tokio::test]
async fn app_folders_and_other_users_are_kept_apart() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let outside = alice.put("/outside.txt", b"outside").await;
    let (app, _) = srv.app("Backup", AccessType::AppFolder, &[], false).await;
    let app_c = srv.app_client("alice", &app).await;
    app_c.put("/inside.txt", b"inside").await;

    // The app links what is in its folder, with paths relative to it.
    let m = create(&app_c, "/inside.txt", Value::Null).await;
    assert_eq!(m["path_lower"], "/inside.txt");
    let inside_url = m["url"].as_str().unwrap().to_owned();
    // It cannot reach outside by any path form.
    let id = outside["id"].as_str().unwrap();
    for path in ["/../outside.txt", id, "/outside.txt"] {
        let r = app_c
            .rpc(
                "sharing/create_shared_link_with_settings",
                json!({"path": path}),
            )
            .await;
        assert!(r.conflict().starts_with("path/"), "{path}");
    }
    // Alice's full-access link outside the app folder is not the app's to manage or list.
    let o = create(&alice, "/outside.txt", Value::Null).await;
    let outside_url = o["url"].as_str().unwrap().to_owned();
    let r = app_c
        .rpc("sharing/revoke_shared_link", json!({"url": outside_url}))
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");
    let r = app_c
        .rpc(
            "sharing/modify_shared_link_settings",
            json!({"url": outside_url, "settings": {"allow_download": false}}),
        )
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");
    let l = app_c.rpc("sharing/list_shared_links", json!({})).await.ok();
    let urls: Vec<String> = l["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| same_link(&l["url"]))
        .collect();
    assert_eq!(urls, [same_link(&json!(inside_url))]);
    // Reading through the link is fine for the app (anyone may), without Alice's paths.
    let g = app_c
        .rpc(
            "sharing/get_shared_link_metadata",
            json!({"url": outside_url}),
        )
        .await
        .ok();
    assert!(g.get("path_lower").is_none());
    // Alice's full token sees both links, the app's with its full path.
    let l = alice.rpc("sharing/list_shared_links", json!({})).await.ok();
    let paths: Vec<&str> = l["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path_lower"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/apps/backup/inside.txt", "/outside.txt"]);

    // Bob can read through the link but not revoke, modify or list it.
    let r = bob
        .rpc("sharing/revoke_shared_link", json!({"url": outside_url}))
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");
    let r = bob
        .rpc(
            "sharing/modify_shared_link_settings",
            json!({"url": outside_url, "settings": {"expires": "2099-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");
    let l = bob.rpc("sharing/list_shared_links", json!({})).await.ok();
    assert_eq!(l["links"], json!([]));
    let r = bob
        .rpc("sharing/list_shared_links", json!({"path": "/outside.txt"}))
        .await;
    assert_eq!(r.conflict(), "path/not_found/");
    // Bob's list_shared_links cursor is no good to Alice.
    let bc = l["cursor"].as_str().unwrap();
    let r = alice
        .rpc("sharing/list_shared_links", json!({"cursor": bc}))
        .await;
    assert_eq!(r.conflict(), "reset/");
    assert_eq!(
        public(&bob, &outside_url, None, None).await.body,
        b"outside"
    );
    let g = alice
        .rpc(
            "sharing/get_shared_link_metadata",
            json!({"url": outside_url}),
        )
        .await
        .ok();
    assert!(g.get("expires").is_none(), "unchanged");
}

#[tokio::test]
async fn download_off_and_no_one_audience() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    alice.put("/d.txt", b"d").await;
    let m = create(&alice, "/d.txt", json!({"allow_download": false})).await;
    assert_eq!(m["link_permissions"]["allow_download"], false);
    let url = m["url"].as_str().unwrap().to_owned();
    assert_eq!(
        public(&bob, &url, None, None).await.status,
        StatusCode::FORBIDDEN
    );
    let r = bob
        .content(
            "sharing/get_shared_link_file",
            json!({"url": url}),
            Vec::new(),
        )
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");
    bob.rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await
        .ok();

    let m = alice
        .rpc(
            "sharing/modify_shared_link_settings",
            json!({"url": url, "settings": {"audience": "no_one", "allow_download": true}}),
        )
        .await
        .ok();
    assert_eq!(
        m["link_permissions"]["resolved_visibility"][".tag"],
        "no_one"
    );
    assert_eq!(
        public(&bob, &url, None, None).await.status,
        StatusCode::FORBIDDEN
    );
    let r = bob
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await;
    assert_eq!(r.conflict(), "shared_link_access_denied/");
    alice
        .rpc("sharing/get_shared_link_metadata", json!({"url": url}))
        .await
        .ok();
}

/// Links name the host and port the client used, whether it spoke HTTP/1.1 (a `Host`
/// header) or HTTP/2 (the authority in the request line, as browsers and curl send it).
#[tokio::test]
async fn links_name_the_host_and_port_over_http1_and_http2() {
    let srv = TestServer::start().await;
    let c = srv.user("alice").await.on(0);
    c.put("/l/doc.txt", b"hello").await;
    let base = c.url();
    let h2 = Client {
        http: reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap(),
        ..c.clone()
    };
    for (client, proto) in [(&c, "HTTP/1.1"), (&h2, "HTTP/2")] {
        let probe = client
            .raw(client.http.get(format!("{base}/health/live")))
            .await;
        assert_eq!(probe.status, StatusCode::OK);
        let temp = client
            .rpc("files/get_temporary_link", json!({"path": "/l/doc.txt"}))
            .await
            .ok();
        let link = temp["link"].as_str().unwrap();
        assert!(
            link.starts_with(&format!("{base}/temp/")),
            "{proto}: {link}"
        );
        let path = format!("/l/{}.txt", proto.replace('/', "-"));
        client.put(&path, b"shared").await;
        let shared = client
            .rpc(
                "sharing/create_shared_link_with_settings",
                json!({"path": path}),
            )
            .await
            .ok();
        let url = shared["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&format!("{base}/s/")), "{proto}: {url}");
        let got = client.raw(client.http.get(link)).await;
        assert_eq!(got.body, b"hello", "{proto}");
    }
    // The HTTP/2 client really spoke HTTP/2.
    let resp = h2
        .http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
}
