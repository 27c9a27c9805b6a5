//! `cubby import-urls FILE|-`: the shop's importer. Each line names a URL and, optionally,
//! where to put it (`URL [PATH]`, or a JSON line `{"url": …, "path": …}`); the server fetches
//! each one (`save_url`), several at a time. A file already at its path with the size the
//! URL announces is skipped; one with another size is replaced (the old one stays in the
//! file's history). Every item gets a result line; the exit status is 1 if any failed.

use std::io::BufRead;

use anyhow::{Context, Result};
use clap::Args;
use cubby_client::types::Metadata;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::client::{Common, Session, exit, fail, remote_path};

#[derive(Args)]
pub struct ImportUrlsArgs {
    /// A file of lines `URL [PATH]` or JSON lines, or "-" for standard input.
    input: String,
    /// The folder for lines without a path (the URL's last segment names the file).
    #[arg(long, default_value = "/")]
    dest: String,
    /// Fetches in flight at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    #[command(flatten)]
    common: Common,
}

/// One line's outcome.
enum Outcome {
    Saved(u64),
    Skipped,
    Failed(String),
}

/// Parses a line into (URL, remote path); `None` for blank lines and comments.
fn parse_line(line: &str, dest: &str) -> Option<Result<(String, String), String>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (url, path) = if line.starts_with('{') {
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return Some(Err(format!("not JSON: {e}"))),
        };
        let Some(url) = v.get("url").and_then(Value::as_str) else {
            return Some(Err("no \"url\"".into()));
        };
        (
            url.to_owned(),
            v.get("path").and_then(Value::as_str).map(str::to_owned),
        )
    } else {
        let mut parts = line.splitn(2, char::is_whitespace);
        let url = parts.next().unwrap_or_default().to_owned();
        (
            url,
            parts
                .next()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty()),
        )
    };
    let path = match path {
        Some(p) => remote_path(&p),
        None => {
            let name = url
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if name.is_empty() {
                return Some(Err(format!("{url}: no file name in the URL; give a path")));
            }
            format!(
                "{}/{}",
                remote_path(dest),
                cubby_core::wire::percent_decode(name)
            )
        }
    };
    Some(Ok((url, path)))
}

pub async fn import_urls(a: ImportUrlsArgs) -> Result<()> {
    let s = Session::open(&a.common)?;
    // Lines are read on a thread and handed over a bounded channel: the file may be large.
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(256);
    let input = a.input.clone();
    let reader = std::thread::spawn(move || -> std::io::Result<()> {
        let source: Box<dyn BufRead> = if input == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            Box::new(std::io::BufReader::new(std::fs::File::open(&input)?))
        };
        for line in source.lines() {
            if tx.blocking_send(line?).is_err() {
                break;
            }
        }
        Ok(())
    });
    let probe = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let (s, probe) = (&s, &probe);
    let dest = a.dest.clone();
    let results = tokio_stream(rx)
        .filter_map(|line| {
            let parsed = parse_line(&line, &dest);
            async move { parsed.map(|p| (line, p)) }
        })
        .map(|(line, parsed)| async move {
            match parsed {
                Err(why) => (line, String::new(), Outcome::Failed(why)),
                Ok((url, path)) => {
                    let outcome = import_one(s, probe, &url, &path).await;
                    (url, path, outcome)
                }
            }
        })
        .buffer_unordered(a.parallel.max(1));
    let mut results = std::pin::pin!(results);
    let (mut saved, mut skipped, mut failed) = (0u64, 0u64, 0u64);
    while let Some((url, path, outcome)) = results.next().await {
        let (status, detail) = match &outcome {
            Outcome::Saved(n) => {
                saved += 1;
                ("saved", json!(n))
            }
            Outcome::Skipped => {
                skipped += 1;
                ("exists", Value::Null)
            }
            Outcome::Failed(why) => {
                failed += 1;
                ("failed", json!(why))
            }
        };
        s.print(
            &json!({"url": url, "path": path, "status": status, "detail": detail}),
            || match &outcome {
                Outcome::Saved(n) => format!("saved   {path} ({n} bytes) <- {url}"),
                Outcome::Skipped => format!("exists  {path}"),
                Outcome::Failed(why) => format!("FAILED  {url}: {why}"),
            },
        );
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))?
        .with_context(|| format!("reading {}", a.input))?;
    if !s.json {
        println!("{saved} saved, {skipped} already there, {failed} failed");
    }
    if failed > 0 {
        return Err(fail(
            exit::FAILURE,
            format!("{failed} URLs were not imported"),
        ));
    }
    Ok(())
}

/// Imports one URL: skipped if the path holds a file of the size the URL announces.
async fn import_one(s: &Session, probe: &reqwest::Client, url: &str, path: &str) -> Outcome {
    let existing = s.client.get_metadata(path, false).await.ok();
    if let Some(Metadata::File(f)) = &existing {
        let announced = probe
            .head(url)
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            // The header, not the body's length: a HEAD response has no body.
            .and_then(|r| {
                r.headers()
                    .get(reqwest::header::CONTENT_LENGTH)?
                    .to_str()
                    .ok()?
                    .parse::<u64>()
                    .ok()
            });
        if announced == Some(f.size) {
            return Outcome::Skipped;
        }
        // Another size: replace it (the old version stays in the file's history).
        if let Err(e) = s.client.delete(path, Some(&f.rev)).await {
            return Outcome::Failed(format!("cannot replace {path}: {e}"));
        }
    }
    let started = match s.client.save_url(url, path).await {
        Ok(st) => st,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    match s.client.save_url_wait(started).await {
        Ok(Ok(f)) => Outcome::Saved(f.size),
        Ok(Err(why)) => Outcome::Failed(format!("the server could not fetch it: {why}")),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// A receiver as a stream.
fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<String>,
) -> impl futures_util::Stream<Item = String> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_both_forms() {
        let ok = |l: &str| parse_line(l, "/shop").unwrap().unwrap();
        assert_eq!(
            ok("https://s.example/img/p%201.png"),
            (
                "https://s.example/img/p%201.png".into(),
                "/shop/p 1.png".into()
            )
        );
        assert_eq!(
            ok("https://s.example/a.jpg  products/a.jpg"),
            ("https://s.example/a.jpg".into(), "/products/a.jpg".into())
        );
        assert_eq!(
            ok(r#"{"url": "https://s.example/b?x=1", "path": "/b.png"}"#),
            ("https://s.example/b?x=1".into(), "/b.png".into())
        );
        assert!(parse_line("# comment", "/").is_none());
        assert!(parse_line("   ", "/").is_none());
        assert!(parse_line("https://s.example/", "/").unwrap().is_err());
        assert!(parse_line("{not json", "/").unwrap().is_err());
    }
}
