//! The app console: a signed-in user registers apps, sees their keys, resets secrets and
//! generates an access token for their own account, as in Dropbox's App Console.
//!
//! Secrets and tokens are shown once, on the page that creates them; only digests are kept.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cubby_store::apps::ALL_SCOPES;
use cubby_store::{AccessType, App, NewApp, OpError, TokenAccess, WebSession};

use super::{Form, check_csrf, error_page, esc, hidden, internal, page, require_session};
use crate::AppState;

fn app_rows(apps: &[App], csrf: &str) -> String {
    if apps.is_empty() {
        return "<p id=\"no-apps\">You have no apps yet.</p>".into();
    }
    let rows: String = apps
        .iter()
        .map(|a| {
            let uris = if a.redirect_uris.is_empty() {
                "<i>none</i>".to_owned()
            } else {
                a.redirect_uris
                    .iter()
                    .map(|u| format!("<code>{}</code>", esc(u)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            let secret = if a.public_client {
                "<i>public client (PKCE)</i>".to_owned()
            } else {
                format!(
                    "<form method=\"post\" action=\"/apps/{k}/secret\">{csrf}<button>Reset secret</button></form>",
                    k = esc(&a.key),
                    csrf = hidden("csrf", csrf)
                )
            };
            format!(
                "<tr class=\"app\"><td><b>{name}</b><br>{access}</td><td>key <code class=\"app-key\">{key}</code><br>{uris}</td>\
<td>{secret}<form method=\"post\" action=\"/apps/{key}/token\">{csrf}<button>Generate access token</button></form></td></tr>",
                name = esc(&a.name),
                access = match a.access {
                    AccessType::AppFolder => "App folder",
                    AccessType::Full => "Full Cubby",
                },
                key = esc(&a.key),
                csrf = hidden("csrf", csrf),
            )
        })
        .collect();
    format!(
        "<table id=\"apps\"><tr><th>App</th><th>Key and redirect URIs</th><th>Actions</th></tr>{rows}</table>"
    )
}

fn console_page(apps: &[App], session: &WebSession, notice: &str, status: StatusCode) -> Response {
    let scopes: String = ALL_SCOPES
        .iter()
        .map(|s| {
            format!(
                "<label><input type=\"checkbox\" name=\"scope\" value=\"{s}\" checked> <code>{s}</code></label>"
            )
        })
        .collect();
    page(
        status,
        "App console",
        &format!(
            "{notice}<h2>Your apps</h2>{rows}\
<h2>Create an app</h2><form method=\"post\" action=\"/apps\" id=\"create-app\">{csrf}\
<label for=\"name\">Name (an app-folder app's files live in <code>Apps/&lt;name&gt;</code>)</label>\
<input type=\"text\" id=\"name\" name=\"name\" required maxlength=\"50\">\
<label>Access</label>\
<label><input type=\"radio\" name=\"access\" value=\"app_folder\" checked> App folder: only its own folder</label>\
<label><input type=\"radio\" name=\"access\" value=\"full\"> Full Cubby: every file of the user</label>\
<label for=\"redirect_uris\">Redirect URIs, one per line (https://, or http:// to localhost, 127.0.0.1 or [::1])</label>\
<textarea id=\"redirect_uris\" name=\"redirect_uris\" rows=\"3\"></textarea>\
<label><input type=\"checkbox\" name=\"public\" value=\"1\"> Public client (no secret; PKCE only)</label>\
<details><summary>Scopes</summary>{scopes}</details>\
<button type=\"submit\" class=\"primary\" id=\"create\">Create app</button></form>",
            rows = app_rows(apps, &session.csrf),
            csrf = hidden("csrf", &session.csrf),
        ),
    )
}

async fn render(
    state: &AppState,
    session: &WebSession,
    notice: &str,
    status: StatusCode,
) -> Response {
    match state.store.apps(Some(session.account.id)).await {
        Ok(apps) => console_page(&apps, session, notice, status),
        Err(e) => internal(e),
    }
}

/// `GET /apps`.
pub(crate) async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match require_session(&state, &headers, "/apps").await {
        Ok(s) => render(&state, &s, "", StatusCode::OK).await,
        Err(r) => r,
    }
}

/// Parses a console form; `Err` is a signed-out or forged request, already answered.
async fn signed_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(WebSession, Form), Response> {
    let session = require_session(state, headers, "/apps").await?;
    let form = Form::from_body(body).await?;
    check_csrf(&session, &form)?;
    Ok((session, form))
}

/// `POST /apps`: register an app.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session, form) = match signed_form(&state, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let access = match form.get("access").and_then(AccessType::parse) {
        Some(a) => a,
        None => return error_page(StatusCode::BAD_REQUEST, "Choose an access type."),
    };
    let new = NewApp {
        name: form.get("name").unwrap_or("").trim().to_owned(),
        access,
        key: None,
        secret: None,
        redirect_uris: form
            .get("redirect_uris")
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        public_client: form.get("public").is_some(),
        scopes: form.all("scope").map(str::to_owned).collect(),
        owner: Some(session.account.id),
    };
    let notice = match state.store.add_app(new).await {
        Ok((app, secret)) => format!(
            "<div id=\"created\" class=\"notice\"><p>Created <b>{}</b>.</p><p>App key: <code id=\"app-key\">{}</code></p>{}</div>",
            esc(&app.name),
            esc(&app.key),
            secret
                .map(|s| format!(
                    "<p>App secret: <code id=\"app-secret\">{}</code><br>Copy it now: it is not shown again.</p>",
                    esc(&s)
                ))
                .unwrap_or_default()
        ),
        Err(OpError::Invalid(m)) => {
            let notice = format!("<p class=\"err\" id=\"error\">{}</p>", esc(&m));
            return render(&state, &session, &notice, StatusCode::BAD_REQUEST).await;
        }
        Err(e) => return internal(e),
    };
    render(&state, &session, &notice, StatusCode::OK).await
}

/// A signed, CSRF-checked form about one of the signed-in user's apps; other users' apps do
/// not exist for them.
async fn own_app(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    key: &str,
) -> Result<(WebSession, App), Response> {
    let (session, _) = signed_form(state, headers, body).await?;
    match state.store.app(key).await {
        Ok(Some(app)) if app.owner == Some(session.account.id) => Ok((session, app)),
        Ok(_) => Err(error_page(
            StatusCode::NOT_FOUND,
            "You have no app with that key.",
        )),
        Err(e) => Err(internal(e)),
    }
}

/// `POST /apps/{key}/token`: a short-lived token for the signed-in user, as the console's
/// "Generate access token" gives.
pub(crate) async fn generate_token(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session, app) = match own_app(&state, &headers, body, &key).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let issued = match state
        .store
        .issue(
            &session.account,
            &app,
            app.scopes.clone(),
            TokenAccess::Online,
            false,
        )
        .await
    {
        Ok(i) => i,
        Err(e) => return internal(e),
    };
    let notice = format!(
        "<div id=\"generated\" class=\"notice\"><p>Access token for <b>{}</b> (valid 4 hours):</p><p><code id=\"access-token\">{}</code></p></div>",
        esc(&app.name),
        esc(&issued.access_token)
    );
    render(&state, &session, &notice, StatusCode::OK).await
}

/// `POST /apps/{key}/secret`: replace the app's secret.
pub(crate) async fn reset_secret(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let session = match own_app(&state, &headers, body, &key).await {
        Ok((session, _)) => session,
        Err(r) => return r,
    };
    match state.store.reset_app_secret(&key, session.account.id).await {
        Ok(secret) => {
            let notice = format!(
                "<div id=\"reset\" class=\"notice\"><p>New secret for <code>{}</code>: <code id=\"app-secret\">{}</code></p></div>",
                esc(&key),
                esc(&secret)
            );
            render(&state, &session, &notice, StatusCode::OK).await
        }
        Err(e) => internal(e),
    }
}
