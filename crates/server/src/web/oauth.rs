//! OAuth 2 as Dropbox does it: `/oauth2/authorize` (a consent page behind sign-in) and
//! `/oauth2/token` (the `authorization_code` and `refresh_token` grants).
//!
//! Errors about the client or its redirect URI are shown on a page and never redirected,
//! so a forged request cannot bounce a user to an attacker (RFC 6749 §4.1.2.1); every
//! other error goes back to the registered redirect URI with `error` and `state`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use cubby_store::apps::ALL_SCOPES;
use cubby_store::{AccessType, App, CodeRequest, GrantError, Issued, TokenAccess, WebSession};
use serde_json::{Value, json};

use super::{
    Form, check_csrf, client_addr, error_page, esc, hidden, internal, page, redirect,
    require_session,
};
use crate::AppState;
use crate::api::{json_response, percent_encode};

/// Longest `state` Dropbox accepts.
const MAX_STATE: usize = 500;

/// A validated authorization request.
struct AuthzRequest {
    app: App,
    response_type: ResponseType,
    redirect_uri: Option<String>,
    state: Option<String>,
    scopes: Vec<String>,
    challenge: Option<(String, String)>,
    access: TokenAccess,
    /// The query the request came with, kept to re-post from the consent form.
    fields: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ResponseType {
    Code,
    Token,
}

/// What a bad authorization request gets.
enum Refusal {
    /// Shown on a page: the client or redirect URI cannot be trusted.
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect {
        uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
        fragment: bool,
    },
}

impl Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(m) => error_page(StatusCode::BAD_REQUEST, &m),
            Refusal::Redirect {
                uri,
                error,
                description,
                state,
                fragment,
            } => {
                let mut params = vec![
                    ("error", error.to_owned()),
                    ("error_description", description),
                ];
                if let Some(s) = state {
                    params.push(("state", s));
                }
                redirect(&with_params(&uri, &params, fragment))
            }
        }
    }
}

/// Appends parameters to a URI's query (or fragment, for the token flow).
fn with_params(uri: &str, params: &[(&str, String)], fragment: bool) -> String {
    let encoded: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    let sep = if fragment {
        '#'
    } else if uri.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{uri}{sep}{}", encoded.join("&"))
}

/// Validates the parameters of `/oauth2/authorize`, in the order that decides where an
/// error may be reported.
async fn validate(state: &AppState, form: &Form) -> Result<AuthzRequest, Refusal> {
    let Some(client_id) = form.get("client_id") else {
        return Err(Refusal::Page(
            "The request names no app (client_id is missing).".into(),
        ));
    };
    let app = match state.store.app(client_id).await {
        Ok(Some(app)) => app,
        Ok(None) => return Err(Refusal::Page(format!("No app has the key '{client_id}'."))),
        Err(e) => {
            return Err(Refusal::Page(format!(
                "The app could not be looked up: {e}"
            )));
        }
    };
    let redirect_uri = form.get("redirect_uri").map(str::to_owned);
    if let Some(uri) = &redirect_uri
        && !app
            .redirect_uris
            .iter()
            .any(|r| cubby_store::apps::redirect_uri_matches(r, uri))
    {
        return Err(Refusal::Page(format!(
            "The redirect URI '{uri}' is not registered for the app '{}'.",
            app.name
        )));
    }
    let state_param = form.get("state").map(str::to_owned);
    let response_type = match form.get("response_type") {
        Some("code") => ResponseType::Code,
        Some("token") => ResponseType::Token,
        _ => ResponseType::Code,
    };
    let fail = |error: &'static str, description: String| match &redirect_uri {
        Some(uri) => Refusal::Redirect {
            uri: uri.clone(),
            error,
            description,
            state: state_param.clone(),
            fragment: response_type == ResponseType::Token,
        },
        None => Refusal::Page(description),
    };
    match form.get("response_type") {
        Some("code") => {}
        Some("token") if redirect_uri.is_some() => {}
        Some("token") => {
            return Err(Refusal::Page(
                "response_type=token needs a registered redirect_uri.".into(),
            ));
        }
        other => {
            return Err(fail(
                "unsupported_response_type",
                format!(
                    "response_type must be 'code' or 'token', not '{}'",
                    other.unwrap_or("")
                ),
            ));
        }
    }
    if state_param.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(fail(
            "invalid_request",
            format!("state is longer than {MAX_STATE} bytes"),
        ));
    }
    let access = match form.get("token_access_type") {
        None => TokenAccess::Online,
        Some(t) => match TokenAccess::parse(t) {
            Some(a) => a,
            None => {
                return Err(fail(
                    "invalid_request",
                    format!("token_access_type must be online, offline or legacy, not '{t}'"),
                ));
            }
        },
    };
    if response_type == ResponseType::Token && access == TokenAccess::Offline {
        return Err(fail(
            "invalid_request",
            "the token flow cannot issue refresh tokens; use response_type=code".into(),
        ));
    }
    let challenge = match (
        form.get("code_challenge"),
        form.get("code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge".into(),
            ));
        }
        (Some(c), m) => {
            let method = m.unwrap_or("plain");
            let valid_len = (43..=128).contains(&c.len());
            if !matches!(method, "S256" | "plain") || !valid_len {
                return Err(fail(
                    "invalid_request",
                    "code_challenge must be 43 to 128 characters, with method S256 or plain".into(),
                ));
            }
            Some((c.to_owned(), method.to_owned()))
        }
    };
    if app.public_client && challenge.is_none() && response_type == ResponseType::Code {
        return Err(fail(
            "invalid_request",
            "this app is a public client: PKCE (code_challenge) is required".into(),
        ));
    }
    let asked: Vec<String> = form
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(s) = asked.iter().find(|s| !app.scopes.contains(s)) {
        let why = if ALL_SCOPES.contains(&s.as_str()) {
            format!("the app '{}' does not have the scope '{s}'", app.name)
        } else {
            format!("unknown scope '{s}'")
        };
        return Err(fail("invalid_scope", why));
    }
    if form.get("include_granted_scopes").is_some() && asked.is_empty() {
        return Err(fail(
            "invalid_request",
            "include_granted_scopes requires scope".into(),
        ));
    }
    let scopes = if asked.is_empty() {
        app.scopes.clone()
    } else {
        asked
    };
    let fields = form
        .0
        .iter()
        .filter(|(k, _)| k != "csrf" && k != "decision")
        .cloned()
        .collect();
    Ok(AuthzRequest {
        app,
        response_type,
        redirect_uri,
        state: state_param,
        scopes,
        challenge,
        access,
        fields,
    })
}

/// Adds the scopes the user granted this app before, for `include_granted_scopes=user`.
async fn with_granted(
    state: &AppState,
    req: &mut AuthzRequest,
    form: &Form,
    account: i64,
) -> Result<(), Response> {
    if form.get("include_granted_scopes") == Some("user") {
        let before = state
            .store
            .granted_scopes(account, req.app.id)
            .await
            .map_err(internal)?;
        for s in before {
            if !req.scopes.contains(&s) && req.app.scopes.contains(&s) {
                req.scopes.push(s);
            }
        }
    }
    Ok(())
}

fn scope_text(scope: &str) -> &'static str {
    match scope {
        "account_info.read" => "See your name, email and space usage",
        "account_info.write" => "Change your account's profile",
        "files.metadata.read" => "See the names and details of files and folders",
        "files.metadata.write" => "Change the details of files and folders",
        "files.content.read" => "Read the content of your files",
        "files.content.write" => "Create, change, move and delete files and folders",
        "files.permanent_delete" => "Permanently delete files",
        "sharing.read" => "See what you share",
        "sharing.write" => "Share files and folders",
        _ => "Other access",
    }
}

/// `GET /oauth2/authorize`: sign in if needed, then ask the user.
pub(crate) async fn authorize_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let form = Form::from_query(q.as_deref());
    let mut req = match validate(&state, &form).await {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let here = format!("/oauth2/authorize?{}", q.unwrap_or_default());
    let session = match require_session(&state, &headers, &here).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = with_granted(&state, &mut req, &form, session.account.id).await {
        return r;
    }
    consent_page(&req, &session)
}

fn consent_page(req: &AuthzRequest, session: &WebSession) -> Response {
    let reach = match req.app.access {
        AccessType::AppFolder => format!(
            "its own folder, <code>Apps/{}</code>, and nothing else",
            esc(&req.app.name)
        ),
        AccessType::Full => "<b>all</b> of your files and folders".to_owned(),
    };
    let scopes: String = req
        .scopes
        .iter()
        .map(|s| {
            format!(
                "<li>{} <small>(<code>{}</code>)</small></li>",
                esc(scope_text(s)),
                esc(s)
            )
        })
        .collect();
    let fields: String = req.fields.iter().map(|(k, v)| hidden(k, v)).collect();
    let offline = if req.access == TokenAccess::Offline {
        "<p>It will keep this access until you revoke it.</p>"
    } else {
        ""
    };
    page(
        StatusCode::OK,
        &format!("Allow {} to access your Cubby?", req.app.name),
        &format!(
            "<p>Signed in as <b>{user}</b>.</p>\
<p>The app <b id=\"app-name\">{app}</b> asks for access to {reach}. It will be able to:</p>\
<ul id=\"scopes\">{scopes}</ul>{offline}\
<form method=\"post\" action=\"/oauth2/authorize\">{fields}{csrf}\
<button type=\"submit\" class=\"primary\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Cancel</button></form>",
            user = esc(&session.account.name),
            app = esc(&req.app.name),
            csrf = hidden("csrf", &session.csrf),
        ),
    )
}

/// `POST /oauth2/authorize`: the user's decision.
pub(crate) async fn authorize_submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match Form::from_body(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut req = match validate(&state, &form).await {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let session = match require_session(&state, &headers, "/").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&session, &form) {
        return r;
    }
    if let Err(r) = with_granted(&state, &mut req, &form, session.account.id).await {
        return r;
    }
    let fragment = req.response_type == ResponseType::Token;
    if form.get("decision") != Some("allow") {
        return match &req.redirect_uri {
            Some(uri) => Refusal::Redirect {
                uri: uri.clone(),
                error: "access_denied",
                description: "The user chose not to give your app access.".into(),
                state: req.state.clone(),
                fragment,
            }
            .into_response(),
            None => page(
                StatusCode::OK,
                "Access denied",
                &format!(
                    "<p id=\"denied\">{} was not given access.</p>",
                    esc(&req.app.name)
                ),
            ),
        };
    }
    // The app folder appears on first authorization, as on Dropbox.
    if req.app.access == AccessType::AppFolder
        && let Err(e) = state
            .store
            .ensure_folder(session.account.ns, &req.app.root())
            .await
    {
        return internal(e);
    }
    match req.response_type {
        ResponseType::Code => {
            let code = match state
                .store
                .create_code(&CodeRequest {
                    app: req.app.id,
                    account: session.account.id,
                    scopes: req.scopes.clone(),
                    redirect_uri: req.redirect_uri.clone(),
                    challenge: req.challenge.clone(),
                    access: req.access,
                })
                .await
            {
                Ok(c) => c,
                Err(e) => return internal(e),
            };
            match &req.redirect_uri {
                Some(uri) => {
                    let mut params = vec![("code", code)];
                    if let Some(s) = &req.state {
                        params.push(("state", s.clone()));
                    }
                    redirect(&with_params(uri, &params, false))
                }
                None => page(
                    StatusCode::OK,
                    "Access code",
                    &format!(
                        "<p>Enter this code into {} to finish connecting it:</p>\
<p><code id=\"auth-code\">{}</code></p><p>It works once, within 10 minutes.</p>",
                        esc(&req.app.name),
                        esc(&code)
                    ),
                ),
            }
        }
        ResponseType::Token => {
            // The implicit grant: a short-lived (or, for legacy, long-lived) token in the
            // fragment; recorded as a grant like the code flow.
            if let Err(e) = state
                .store
                .record_grant(session.account.id, req.app.id, &req.scopes)
                .await
            {
                return internal(e);
            }
            let issued = match state
                .store
                .issue(
                    &session.account,
                    &req.app,
                    req.scopes.clone(),
                    req.access,
                    false,
                )
                .await
            {
                Ok(i) => i,
                Err(e) => return internal(e),
            };
            let mut params = vec![
                ("access_token", issued.access_token.clone()),
                ("token_type", "bearer".to_owned()),
                ("account_id", issued.account.account_id.clone()),
                ("uid", issued.account.id.to_string()),
                ("scope", issued.scopes.join(" ")),
            ];
            if let Some(e) = issued.expires_in {
                params.push(("expires_in", e.to_string()));
            }
            if let Some(s) = &req.state {
                params.push(("state", s.clone()));
            }
            let uri = req.redirect_uri.as_deref().expect("validated");
            redirect(&with_params(uri, &params, true))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The token endpoint.

/// An RFC 6749 error response (400 unless said otherwise).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = json_response(
        status,
        &json!({"error": error, "error_description": description}),
    );
    no_store(&mut resp);
    resp
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Client credentials from HTTP Basic or the form; `Err` for contradicting ones.
fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<(Option<String>, Option<String>), &'static str> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|s| s.split_once(':').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .ok_or("malformed HTTP Basic credentials")
        })
        .transpose()?;
    let form_id = form.get("client_id").map(str::to_owned);
    let form_secret = form.get("client_secret").map(str::to_owned);
    match basic {
        Some((k, s)) => {
            if form_id.as_ref().is_some_and(|f| *f != k) || form_secret.is_some() {
                return Err("client credentials given twice");
            }
            Ok((Some(k), Some(s)))
        }
        None => Ok((form_id, form_secret)),
    }
}

/// `POST /oauth2/token`. Parameters come in the form body, the query string (as the
/// JavaScript SDK sends them, with an empty body) or both.
pub(crate) async fn token(
    State(state): State<Arc<AppState>>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let form = match Form::from_body(body).await {
        Ok(f) => f,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "malformed form body",
            );
        }
    };
    let form = match Form::from_query(query.as_deref()).merged(form) {
        Ok(f) => f,
        Err(field) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the parameter {field} is given more than once"),
            );
        }
    };
    let addr_key = format!("addr:{}", client_addr(&ext));
    if let Err(retry) = state.addr_limiter.check(&addr_key) {
        let mut resp = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many failed token requests from this address; retry later",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry.as_secs()));
        return resp;
    }
    match exchange(&state, &headers, &form).await {
        Ok(body) => {
            let mut resp = json_response(StatusCode::OK, &body);
            no_store(&mut resp);
            resp
        }
        Err(TokenError::Request(error, description)) => {
            if error == "invalid_client" {
                state.addr_limiter.fail(&addr_key);
            }
            oauth_error(StatusCode::BAD_REQUEST, error, &description)
        }
        Err(TokenError::Grant(e)) => {
            let (error, description) = match e {
                GrantError::InvalidGrant(d) => ("invalid_grant", d.to_owned()),
                GrantError::InvalidClient(d) => ("invalid_client", d.to_owned()),
                GrantError::InvalidScope(d) => ("invalid_scope", d),
                GrantError::Store(e) => {
                    tracing::error!(cause = %e, "token endpoint failed");
                    return oauth_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "internal server error",
                    );
                }
            };
            if error != "invalid_scope" {
                state.addr_limiter.fail(&addr_key);
            }
            oauth_error(StatusCode::BAD_REQUEST, error, &description)
        }
    }
}

enum TokenError {
    /// A malformed request: (RFC 6749 error code, description).
    Request(&'static str, String),
    Grant(GrantError),
}

impl From<GrantError> for TokenError {
    fn from(e: GrantError) -> Self {
        TokenError::Grant(e)
    }
}

impl From<cubby_store::StoreError> for TokenError {
    fn from(e: cubby_store::StoreError) -> Self {
        TokenError::Grant(GrantError::Store(e))
    }
}

/// Authenticates the client and runs the grant.
async fn exchange(state: &AppState, headers: &HeaderMap, form: &Form) -> Result<Value, TokenError> {
    let (client_id, secret) = client_credentials(headers, form)
        .map_err(|m| TokenError::Request("invalid_request", m.into()))?;
    let Some(client_id) = client_id else {
        return Err(TokenError::Request(
            "invalid_request",
            "No auth function available for given request".into(),
        ));
    };
    // A secret, when given, must be right; without one, the grant must prove itself (PKCE).
    let (app, authenticated) = match &secret {
        Some(secret) => match state.store.authenticate_app(&client_id, secret).await? {
            Some(app) => (app, true),
            None => {
                return Err(TokenError::Request(
                    "invalid_client",
                    "Invalid client_id or client_secret".into(),
                ));
            }
        },
        None => match state.store.app(&client_id).await? {
            Some(app) => (app, false),
            None => {
                return Err(TokenError::Request(
                    "invalid_client",
                    "Invalid client_id or client_secret".into(),
                ));
            }
        },
    };
    match form.get("grant_type") {
        Some("authorization_code") => {
            let code = form
                .get("code")
                .ok_or_else(|| TokenError::Request("invalid_request", "No code given".into()))?;
            let issued = state
                .store
                .redeem_code(
                    code,
                    &app,
                    authenticated,
                    form.get("redirect_uri"),
                    form.get("code_verifier"),
                )
                .await?;
            Ok(token_body(&issued, true))
        }
        Some("refresh_token") => {
            let refresh = form.get("refresh_token").ok_or_else(|| {
                TokenError::Request("invalid_request", "No refresh_token given".into())
            })?;
            let scopes = form
                .get("scope")
                .map(|s| s.split_whitespace().map(str::to_owned).collect());
            let issued = state
                .store
                .refresh(refresh, &app, authenticated, scopes)
                .await?;
            Ok(token_body(&issued, false))
        }
        other => Err(TokenError::Request(
            "unsupported_grant_type",
            format!("grant_type '{}' is not supported", other.unwrap_or("")),
        )),
    }
}

/// The token response: what the SDKs read, as Dropbox sends it.
fn token_body(issued: &Issued, full: bool) -> Value {
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "bearer",
    });
    let o = body.as_object_mut().expect("object");
    if let Some(e) = issued.expires_in {
        o.insert("expires_in".into(), json!(e));
    }
    if full {
        if let Some(r) = &issued.refresh_token {
            o.insert("refresh_token".into(), json!(r));
        }
        o.insert("scope".into(), json!(issued.scopes.join(" ")));
        o.insert("account_id".into(), json!(issued.account.account_id));
        o.insert("uid".into(), json!(issued.account.id.to_string()));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_appended_encoded() {
        let p = [("code", "a b&c".to_owned()), ("state", "x|y".to_owned())];
        assert_eq!(
            with_params("https://e.com/cb", &p, false),
            "https://e.com/cb?code=a%20b%26c&state=x%7Cy"
        );
        assert_eq!(
            with_params("https://e.com/cb?k=1", &p[..1], false),
            "https://e.com/cb?k=1&code=a%20b%26c"
        );
        assert_eq!(
            with_params("https://e.com/cb", &p[..1], true),
            "https://e.com/cb#code=a%20b%26c"
        );
    }

    #[test]
    fn access_token_lifetime_is_dropboxs() {
        assert_eq!(cubby_store::tokens::ACCESS_TOKEN_SECS, 14_400);
    }
}
