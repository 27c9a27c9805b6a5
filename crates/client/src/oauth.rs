//! OAuth 2 for a client: the authorization-code flow with PKCE (S256), and refresh.
//!
//! The flow works the same against Cubby and Dropbox: the person opens [`Pkce::authorize_url`],
//! approves, and the code comes back either to a loopback redirect or pasted by hand (no
//! `redirect_uri`: the page shows the code). [`exchange`] trades it for tokens.

use base64::Engine;
use serde::Deserialize;

use crate::{App, Error, Hosts, Result};

/// One authorization attempt: its PKCE verifier and state.
pub struct Pkce {
    pub verifier: String,
    pub state: String,
}

impl Pkce {
    pub fn new() -> Self {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Self {
            verifier: b64.encode(crate::random::<48>()),
            state: b64.encode(crate::random::<16>()),
        }
    }

    /// The page that asks the person to sign in and approve; `redirect_uri` is a loopback
    /// address, or `None` to have the code shown for pasting.
    pub fn authorize_url(
        &self,
        hosts: &Hosts,
        app_key: &str,
        redirect_uri: Option<&str>,
    ) -> String {
        let challenge = cubby_core::hash::pkce_s256(&self.verifier);
        let mut url = format!(
            "{}/oauth2/authorize?client_id={}&response_type=code&token_access_type=offline\
             &code_challenge={challenge}&code_challenge_method=S256&state={}",
            hosts.web,
            encode(app_key),
            encode(&self.state)
        );
        if let Some(r) = redirect_uri {
            url.push_str("&redirect_uri=");
            url.push_str(&encode(r));
        }
        url
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// What `/oauth2/token` answers.
#[derive(Clone, Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Trades an authorization code for tokens.
pub async fn exchange(
    http: &reqwest::Client,
    hosts: &Hosts,
    app: &App,
    code: &str,
    pkce: &Pkce,
    redirect_uri: Option<&str>,
) -> Result<TokenResponse> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.trim()),
        ("client_id", app.key.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    if let Some(r) = redirect_uri {
        form.push(("redirect_uri", r));
    }
    if let Some(s) = &app.secret {
        form.push(("client_secret", s));
    }
    token_request(http, hosts, &form).await
}

/// A new access token from a refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    hosts: &Hosts,
    app: &App,
    refresh_token: &str,
) -> Result<TokenResponse> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", app.key.as_str()),
    ];
    if let Some(s) = &app.secret {
        form.push(("client_secret", s));
    }
    token_request(http, hosts, &form).await
}

async fn token_request(
    http: &reqwest::Client,
    hosts: &Hosts,
    form: &[(&str, &str)],
) -> Result<TokenResponse> {
    let resp = http
        .post(format!("{}/oauth2/token", hosts.api))
        .form(form)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    if status != 200 {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let what = v
            .get("error_description")
            .or_else(|| v.get("error"))
            .and_then(|e| e.as_str())
            .map_or_else(
                || String::from_utf8_lossy(&body).into_owned(),
                str::to_owned,
            );
        return Err(if status == 400 || status == 401 {
            Error::Auth(what)
        } else {
            Error::Unavailable { status, body: what }
        });
    }
    serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("token answer: {e}")))
}

pub use cubby_core::wire::{percent_decode as decode, percent_encode as encode};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_carries_pkce_and_state() {
        let p = Pkce::new();
        let url = p.authorize_url(
            &Hosts::for_server("http://h:1"),
            "key",
            Some("http://127.0.0.1:9/cb"),
        );
        assert!(url.starts_with("http://h:1/oauth2/authorize?client_id=key&"));
        assert!(url.contains(&format!(
            "code_challenge={}",
            cubby_core::hash::pkce_s256(&p.verifier)
        )));
        assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb"));
        assert!(url.contains(&format!("state={}", p.state)));
    }
}
