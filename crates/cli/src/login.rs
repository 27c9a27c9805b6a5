//! `cubby login`: OAuth 2 with PKCE, through a loopback redirect or a pasted code.
//!
//! Loopback (the default where a browser can reach this machine): a one-shot listener on
//! 127.0.0.1 receives `/callback?code=…&state=…`. Pasted (`--paste`, for a Pi over SSH): the
//! authorize page shows the code and the person pastes it here. Either way the code is
//! exchanged with the PKCE verifier, so no secret is needed for a public app.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use cubby_client::oauth::{self, Pkce};
use cubby_client::{App, Hosts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the loopback listener waits for the browser.
const LOOPBACK_WAIT: Duration = Duration::from_secs(300);

/// The loopback redirect path registered for the built-in command-line app.
const CALLBACK: &str = "/callback";

/// Runs the flow; returns the token answer and the redirect URI used.
pub async fn authorize(
    http: &reqwest::Client,
    hosts: &Hosts,
    app: &App,
    paste: bool,
    port: u16,
) -> Result<oauth::TokenResponse> {
    let pkce = Pkce::new();
    let (code, redirect) = if paste {
        let url = pkce.authorize_url(hosts, &app.key, None);
        eprintln!("Open this page, sign in and allow access:\n\n    {url}\n");
        eprint!("Then paste the code shown here: ");
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await?
        .context("reading the code")?;
        let code = line.trim().to_owned();
        if code.is_empty() {
            bail!("no code was pasted");
        }
        (code, None)
    } else {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .context("listening on 127.0.0.1 for the sign-in redirect")?;
        let redirect = format!(
            "http://127.0.0.1:{}{CALLBACK}",
            listener.local_addr()?.port()
        );
        let url = pkce.authorize_url(hosts, &app.key, Some(&redirect));
        eprintln!(
            "Open this page in a browser on this machine, sign in and allow access:\n\n    {url}\n\n\
             (No browser here? Run `cubby login --paste`.)"
        );
        let code = tokio::time::timeout(LOOPBACK_WAIT, receive_code(&listener, &pkce.state))
            .await
            .map_err(|_| anyhow!("no answer from the browser within 5 minutes"))??;
        (code, Some(redirect))
    };
    Ok(oauth::exchange(http, hosts, app, &code, &pkce, redirect.as_deref()).await?)
}

/// Serves the loopback redirect until it brings a code (or an error) with our state.
async fn receive_code(listener: &tokio::net::TcpListener, state: &str) -> Result<String> {
    loop {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let n = sock.read(&mut buf).await?;
        let request = String::from_utf8_lossy(&buf[..n]);
        let target = request
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let param = |k: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(key, _)| *key == k)
                .map(|(_, v)| oauth::decode(v))
        };
        if path != CALLBACK || param("state").as_deref() != Some(state) {
            respond(
                &mut sock,
                404,
                "Not the sign-in answer this command waits for.",
            )
            .await;
            continue;
        }
        if let Some(err) = param("error") {
            respond(
                &mut sock,
                200,
                "Access was not granted. You can close this page.",
            )
            .await;
            let why = param("error_description").unwrap_or(err);
            bail!("sign-in refused: {why}");
        }
        let Some(code) = param("code") else {
            respond(&mut sock, 400, "The answer carried no code.").await;
            continue;
        };
        respond(
            &mut sock,
            200,
            "Signed in. You can close this page and return to the terminal.",
        )
        .await;
        return Ok(code);
    }
}

async fn respond(sock: &mut tokio::net::TcpStream, status: u16, text: &str) {
    let body = format!("<!doctype html><meta charset=utf-8><title>Cubby</title><p>{text}</p>");
    let reason = if status == 200 { "OK" } else { "Error" };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}
