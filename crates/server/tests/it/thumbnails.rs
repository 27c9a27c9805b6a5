//! Thumbnails and previews: the four routes, their error unions, shared links (with a
//! password, and with the app's key and secret), the cache and its collection, and hostile
//! images (the server's memory under them is bounded in `crates/cli/tests/memory.rs`).

use std::time::{Duration, Instant};

use base64::Engine;
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, Reply, TestServer};

/// A photo-like JPEG, `w` × `h`.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut s: u32 = 3;
    let img = RgbImage::from_fn(w, h, |x, y| {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, (s >> 26) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// `jpeg` with an EXIF block saying it was taken at `date` (`YYYY:MM:DD HH:MM:SS`), turned
/// by `orientation`.
pub fn with_exif(jpeg: &[u8], date: &str, orientation: u16) -> Vec<u8> {
    let mut t = b"II*\0\x08\0\0\0".to_vec();
    let entry = |t: &mut Vec<u8>, tag: u16, typ: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&typ.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    };
    // IFD0 at 8 (two entries), the EXIF directory at 38 (one entry), the date at 56.
    t.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut t, 0x0112, 3, 1, u32::from(orientation));
    entry(&mut t, 0x8769, 4, 1, 38);
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    entry(&mut t, 0x9003, 2, date.len() as u32 + 1, 56);
    t.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(t.len(), 56);
    t.extend_from_slice(date.as_bytes());
    t.push(0);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(t);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    out.extend(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

async fn thumb_v2(c: &Client, arg: Value) -> Reply {
    c.raw(
        c.http
            .post(format!("{}/2/files/get_thumbnail_v2", c.url()))
            .bearer_auth(&c.token)
            .header("dropbox-api-arg", arg.to_string()),
    )
    .await
}

async fn download_style(c: &Client, route: &str, arg: Value) -> Reply {
    c.raw(
        c.http
            .post(format!("{}/2/{route}", c.url()))
            .bearer_auth(&c.token)
            .header("dropbox-api-arg", arg.to_string()),
    )
    .await
}

fn dims(body: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(body).expect("an image");
    (img.width(), img.height())
}

/// The sum over the servers (two in scale-out mode) of `cubby_thumbnails_total{outcome=…}`.
async fn counted(s: &TestServer, c: &Client, outcome: &str) -> u64 {
    let needle = format!("cubby_thumbnails_total{{outcome=\"{outcome}\"}} ");
    let mut total = 0;
    for url in &s.urls {
        let text = c
            .http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(&needle))
            .expect("the counter is exported")
            .parse::<u64>()
            .unwrap();
    }
    total
}

#[tokio::test]
async fn thumbnails_of_a_photo_every_format_and_the_cache() {
    let s = TestServer::start().await;
    let c = s.user("ann").await;
    c.put("/p/photo.jpg", &jpeg(1200, 900)).await;
    let c0 = c.on(0);

    let r = thumb_v2(
        &c0,
        json!({"resource": {".tag": "path", "path": "/p/photo.jpg"}, "size": "w256h256"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], "image/jpeg");
    assert_eq!(dims(&r.body), (256, 192));
    let result = r.api_result();
    let md = &result["file_metadata"];
    assert_eq!(md["path_display"], "/p/photo.jpg");
    assert_eq!(md["media_info"][".tag"], "metadata");
    assert_eq!(md["media_info"]["metadata"][".tag"], "photo");
    assert_eq!(
        md["media_info"]["metadata"]["dimensions"],
        json!({"height": 900, "width": 1200})
    );
    assert_eq!(counted(&s, &c, "made").await, 1);

    // The same thumbnail again (through either server, in scale-out mode) is not decoded
    // again: the other server finds the first one's in the shared store.
    for _ in 0..3 {
        let again = thumb_v2(
            &c,
            json!({"resource": {".tag": "path", "path": "/p/photo.jpg"}, "size": {".tag": "w256h256"}}),
        )
        .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body, r.body);
    }
    assert_eq!(counted(&s, &c, "made").await, 1);

    // Concurrent requests for one cold thumbnail (a grid and its preview) decode it once.
    let cold = json!({"resource": {".tag": "path", "path": "/p/photo.jpg"}, "size": "w640h480"});
    let same = futures_util::future::join_all((0..4).map(|_| thumb_v2(&c0, cold.clone()))).await;
    assert!(
        same.iter()
            .all(|r| r.status == StatusCode::OK && r.body == same[0].body)
    );
    assert_eq!(counted(&s, &c, "made").await, 2);

    // Other formats and modes, and the media info left out when asked.
    for (format, mime) in [("png", "image/png"), ("webp", "image/webp")] {
        let r = thumb_v2(
            &c,
            json!({"resource": {".tag": "path", "path": "/p/photo.jpg"}, "format": format,
                   "size": "w480h320", "mode": "fitone_bestfit", "exclude_media_info": true}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.headers["content-type"], mime);
        assert_eq!(dims(&r.body), (480, 360));
        assert!(r.api_result()["file_metadata"].get("media_info").is_none());
    }

    // The older route: the file's metadata as the result, by id too.
    let id = c.meta("/p/photo.jpg").await.ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = download_style(
        &c,
        "files/get_thumbnail",
        json!({"path": id, "size": "w64h64"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.api_result()["path_lower"], "/p/photo.jpg");
    assert_eq!(dims(&r.body), (64, 48));

    // get_metadata reads media info only when asked.
    let m = c.meta("/p/photo.jpg").await.ok();
    assert!(m.get("media_info").is_none());
    let m = c
        .rpc(
            "files/get_metadata",
            json!({"path": "/p/photo.jpg", "include_media_info": true}),
        )
        .await
        .ok();
    assert_eq!(
        m["media_info"]["metadata"]["dimensions"],
        json!({"height": 900, "width": 1200})
    );

    // A phone photo, held sideways: seen turned, with the time it was taken.
    c.put(
        "/p/phone.jpg",
        &with_exif(&jpeg(400, 300), "2014:07:12 18:30:05", 6),
    )
    .await;
    let m = c
        .rpc(
            "files/get_metadata",
            json!({"path": "/p/phone.jpg", "include_media_info": true}),
        )
        .await
        .ok();
    let photo = &m["media_info"]["metadata"];
    assert_eq!(photo["dimensions"], json!({"height": 400, "width": 300}));
    assert_eq!(photo["time_taken"], "2014-07-12T18:30:05Z");
    let r = thumb_v2(
        &c,
        json!({"resource": {".tag": "path", "path": "/p/phone.jpg"}, "size": "w128h128"}),
    )
    .await;
    assert_eq!(dims(&r.body), (96, 128));
}

#[tokio::test]
async fn every_error_of_the_thumbnail_routes() {
    let s = TestServer::start().await;
    let c = s.user("ben").await;
    c.put("/p/photo.jpg", &jpeg(300, 200)).await;
    c.put("/p/notes.txt", b"not a picture").await;
    c.put("/p/fake.jpg", b"hello, I am text").await;
    c.put("/p/doc.pdf", b"%PDF-1.4 a tiny pdf").await;

    let v2 = |path: &str| json!({"resource": {".tag": "path", "path": path}});
    let cases = [
        ("/p/notes.txt", "unsupported_extension/"),
        ("/p/fake.jpg", "unsupported_image/"),
        ("/p/missing.jpg", "path/not_found/"),
        ("/p", "path/not_file/"),
        ("relative.jpg", "path/malformed_path/"),
    ];
    for (path, summary) in cases {
        let r = thumb_v2(&c, v2(path)).await;
        if path == "relative.jpg" {
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
            continue;
        }
        assert_eq!(r.conflict(), summary, "{path}");
    }
    let r = thumb_v2(
        &c,
        json!({"resource": {".tag": "path", "path": "/p/photo.jpg"}, "preserve_transparency": true}),
    )
    .await;
    assert_eq!(r.conflict(), "unsupported_output_format/");
    let r = thumb_v2(
        &c,
        json!({"resource": {".tag": "path", "path": "/p/photo.jpg"}, "size": "w100h100"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("ThumbnailSize"), "{}", r.text());

    // The batch: per-entry results, then the limit on entries.
    let r = c
        .rpc(
            "files/get_thumbnail_batch",
            json!({"entries": [
                {"path": "/p/photo.jpg", "size": "w32h32", "format": "png"},
                {"path": "/p/notes.txt"},
                {"path": "/p/missing.jpg"},
                {"path": "/p/fake.jpg"},
            ]}),
        )
        .await
        .ok();
    let e = r["entries"].as_array().unwrap();
    assert_eq!(e[0][".tag"], "success");
    assert_eq!(e[0]["metadata"]["name"], "photo.jpg");
    let png = base64::engine::general_purpose::STANDARD
        .decode(e[0]["thumbnail"].as_str().unwrap())
        .unwrap();
    assert_eq!(dims(&png), (32, 21));
    assert_eq!(
        e[1],
        json!({".tag": "failure", "failure": {".tag": "unsupported_extension"}})
    );
    assert_eq!(
        e[2],
        json!({".tag": "failure", "failure": {".tag": "path", "path": {".tag": "not_found"}}})
    );
    assert_eq!(e[3]["failure"][".tag"], "unsupported_image");
    let many: Vec<Value> = (0..26).map(|_| json!({"path": "/p/photo.jpg"})).collect();
    let r = c
        .rpc("files/get_thumbnail_batch", json!({"entries": many}))
        .await;
    assert_eq!(r.conflict(), "too_many_files/");

    // Previews: images as JPEG, PDFs as they are, the rest refused.
    let r = download_style(&c, "files/get_preview", json!({"path": "/p/photo.jpg"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], "image/jpeg");
    assert_eq!(dims(&r.body), (300, 200));
    assert_eq!(r.api_result()["name"], "photo.jpg");
    let r = download_style(&c, "files/get_preview", json!({"path": "/p/doc.pdf"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/pdf");
    assert_eq!(r.body, b"%PDF-1.4 a tiny pdf");
    let r = download_style(&c, "files/get_preview", json!({"path": "/p/notes.txt"})).await;
    assert_eq!(r.conflict(), "unsupported_extension/");
    let r = download_style(&c, "files/get_preview", json!({"path": "/p/fake.jpg"})).await;
    assert_eq!(r.conflict(), "unsupported_content/");
    let r = download_style(&c, "files/get_preview", json!({"path": "/p/gone.jpg"})).await;
    assert_eq!(r.conflict(), "path/not_found/");
}

#[tokio::test]
async fn thumbnails_through_a_shared_link() {
    let s = TestServer::start().await;
    let c = s.user("cat").await;
    c.put("/album/cover.jpg", &jpeg(640, 640)).await;
    let link = c
        .rpc(
            "sharing/create_shared_link_with_settings",
            json!({"path": "/album", "settings": {"requested_visibility": "password", "link_password": "open sesame"}}),
        )
        .await
        .ok();
    let url = link["url"].as_str().unwrap().to_owned();
    let other = s.user("dan").await;
    let by_link = |password: Option<&str>| {
        let mut r = json!({".tag": "link", "url": url, "path": "/cover.jpg"});
        if let Some(p) = password {
            r["password"] = json!(p);
        }
        json!({"resource": r, "size": "w128h128"})
    };
    assert_eq!(
        thumb_v2(&other, by_link(None)).await.conflict(),
        "access_denied/"
    );
    assert_eq!(
        thumb_v2(&other, by_link(Some("wrong"))).await.conflict(),
        "access_denied/"
    );
    let r = thumb_v2(&other, by_link(Some("open sesame"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(dims(&r.body), (128, 128));
    let lm = &r.api_result()["link_metadata"];
    // Each server names itself in a link's URL (two in scale-out mode).
    let tail = |u: &str| u.split_once("/s/").unwrap().1.to_owned();
    assert_eq!(tail(lm["url"].as_str().unwrap()), tail(&url));
    assert!(lm["rev"].as_str().is_some_and(|r| r.len() >= 9));
    // Another account sees neither the owner's id nor path.
    assert!(lm.get("path").is_none() && lm.get("id").is_none(), "{lm}");

    // The app's key and secret reach a link (not a path).
    let (app, secret) = s
        .app("Gallery", cubby_store::AccessType::Full, &[], false)
        .await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        app.key,
        secret.unwrap()
    ));
    let app_call = |arg: Value| {
        other.raw(
            other
                .http
                .post(format!("{}/2/files/get_thumbnail_v2", other.url()))
                .header("authorization", format!("Basic {basic}"))
                .header("dropbox-api-arg", arg.to_string()),
        )
    };
    let r = app_call(by_link(Some("open sesame"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = app_call(json!({"resource": {".tag": "path", "path": "/album/cover.jpg"}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = other
        .raw(
            other
                .http
                .post(format!("{}/2/files/get_thumbnail_v2", other.url()))
                .header("authorization", "Basic bm9wZTpub3Bl")
                .header("dropbox-api-arg", by_link(Some("open sesame")).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A link that does not exist, and a folder link without a path.
    let unknown = {
        let (base, rest) = url.split_once("/s/").unwrap();
        let token = rest.split('/').next().unwrap();
        format!("{base}/s/{}/album", "A".repeat(token.len()))
    };
    let r = thumb_v2(
        &other,
        json!({"resource": {".tag": "link", "url": unknown}}),
    )
    .await;
    assert_eq!(r.conflict(), "not_found/");
    let r = thumb_v2(
        &other,
        json!({"resource": {".tag": "link", "url": url, "password": "open sesame"}}),
    )
    .await;
    assert_eq!(r.conflict(), "path/not_file/");
}

#[tokio::test]
async fn a_thumbnail_goes_with_its_photo() {
    use cubby_store::gc::{BLOCK_GRACE_SECS, DELETED, SMALL_GRACE_SECS};
    let s = TestServer::start().await;
    let c = s.user("eve").await;
    let photo = jpeg(800, 600);
    c.put("/photo.jpg", &photo).await;
    let r = thumb_v2(
        &c,
        json!({"resource": {".tag": "path", "path": "/photo.jpg"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let source = cubby_core::hash::block_hash(&photo);
    assert_eq!(s.store.derived_rows(&source).await.unwrap(), 2);
    // The thumbnail's reference is counted.
    assert!(s.store.fsck(false, true).await.unwrap().is_clean());
    let refs = s.store.block_refs().await.unwrap();
    assert_eq!(refs.len(), 2, "{refs:?}");

    c.rpc("files/permanently_delete", json!({"path": "/photo.jpg"}))
        .await
        .ok();
    let later = cubby_store::now() + BLOCK_GRACE_SECS + 60;
    s.store.gc(later).await.unwrap().expect("the lease");
    assert_eq!(s.store.derived_rows(&source).await.unwrap(), 0);
    assert!(s.store.fsck(false, false).await.unwrap().is_clean());
    // A collection after the small blocks' grace deletes the thumbnail too.
    s.store
        .gc(later + SMALL_GRACE_SECS + 60)
        .await
        .unwrap()
        .expect("the lease");
    let refs = s.store.block_refs().await.unwrap();
    assert!(refs.iter().all(|(_, n)| *n == DELETED), "{refs:?}");
}

/// A PNG whose header claims `w` × `h` RGBA pixels, with a few bytes of data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let real = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgba8(RgbaImage::from_pixel(1, 1, Rgba([1, 2, 3, 4])))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    // Patch IHDR's width and height (bytes 16..24) and its CRC (bytes 29..33).
    let mut b = real;
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[tokio::test]
async fn hostile_images_are_refused_quickly() {
    let s = TestServer::start().await;
    let c = s.user("mal").await;
    let good = jpeg(2000, 1500);
    let mut zip = b"PK\x03\x04\x14\0\0\0\x08\0".to_vec();
    zip.extend(std::iter::repeat_n(0u8, 64 << 10));
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        enc.encode_frames((0..10_000u32).map(|i| {
            image::Frame::new(RgbaImage::from_pixel(
                32,
                32,
                Rgba([(i % 256) as u8, 9, 9, 255]),
            ))
        }))
        .unwrap();
    }
    let files: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "/h/huge.png",
            png_claiming(100_000, 100_000),
            &["unsupported_image/"],
        ),
        (
            "/h/big.png",
            png_claiming(12_000, 12_000),
            &["unsupported_image/"],
        ),
        (
            "/h/liar.png",
            png_claiming(4_000, 4_000),
            &["conversion_error/", "unsupported_image/"],
        ),
        (
            "/h/cut.jpg",
            good[..good.len() / 3].to_vec(),
            &["", "conversion_error/"],
        ),
        (
            "/h/header.jpg",
            good[..200].to_vec(),
            &["conversion_error/"],
        ),
        ("/h/bomb.jpg", zip, &["unsupported_image/"]),
        ("/h/frames.gif", gif, &[""]),
    ];
    for (path, data, _) in &files {
        c.put(path, data).await;
    }
    for (path, _, expected) in &files {
        let t = Instant::now();
        let r = thumb_v2(
            &c,
            json!({"resource": {".tag": "path", "path": path}, "size": "w256h256"}),
        )
        .await;
        let took = t.elapsed();
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
        let got = if r.status == StatusCode::OK {
            String::new()
        } else {
            r.conflict()
        };
        assert!(expected.contains(&got.as_str()), "{path}: {got:?}");
    }
    let r = thumb_v2(
        &c,
        json!({"resource": {".tag": "path", "path": "/h/frames.gif"}}),
    )
    .await;
    assert_eq!(dims(&r.body), (32, 32));
}

#[tokio::test]
async fn link_pages_show_pictures() {
    let s = TestServer::start().await;
    let c = s.user("fay").await;
    c.put("/trip/beach.jpg", &jpeg(900, 600)).await;
    c.put("/trip/notes.txt", b"sunny").await;
    let folder = c
        .rpc(
            "sharing/create_shared_link_with_settings",
            json!({"path": "/trip"}),
        )
        .await
        .ok();
    let url = folder["url"].as_str().unwrap();
    let get = |u: String| c.raw(c.http.get(u));
    let page = get(url.to_owned()).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    // The picture has a thumbnail beside its name; the text file has none.
    let (_, after) = html
        .split_once("<img src=\"")
        .expect("a thumbnail on the page");
    let src = after.split('"').next().unwrap().replace("&amp;", "&");
    assert!(src.ends_with("?path=%2Fbeach.jpg&thumb=w128h128"), "{src}");
    assert_eq!(html.matches("<img ").count(), 1, "{html}");
    let origin = url.split("/s/").next().unwrap();
    let r = get(format!("{origin}{src}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "image/jpeg");
    assert_eq!(dims(&r.body), (128, 85));
    let r = get(format!("{url}?path=%2Fnotes.txt&thumb=w128h128")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(format!("{url}?path=%2Fbeach.jpg&thumb=huge")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A picture whose link allows no download is still shown, as a preview.
    let file = c
        .rpc(
            "sharing/create_shared_link_with_settings",
            json!({"path": "/trip/beach.jpg", "settings": {"allow_download": false}}),
        )
        .await
        .ok();
    let furl = file["url"].as_str().unwrap();
    let page = get(furl.to_owned()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.text().contains("id=\"preview\""), "{}", page.text());
    let r = get(format!("{furl}?thumb=w1024h768")).await;
    assert_eq!(dims(&r.body), (900, 600));
}
