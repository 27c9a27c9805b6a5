//! Nextcloud's Login Flow v2: how its desktop and phone apps sign in. The app asks for a
//! sign-in (`POST /index.php/login/v2`), opens the address it gets in the browser, where the
//! person signs in to Cubby and grants access, and meanwhile polls; its first poll after the
//! grant receives the user name and a new app password named after the app, made then (no
//! password is ever kept in the clear, not even for the flow).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Form, check_csrf, error_page, esc, hidden, internal, page, require_session};
use crate::AppState;

/// `POST /index.php/login/v2`: a new sign-in for the app named by its User-Agent.
pub(crate) async fn start(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let client = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
        .map_or_else(|| "A WebDAV app".to_owned(), app_name);
    let (poll, login) = match state.store.login_flow_start(&client).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let base = crate::api::history::base_url(&headers);
    axum::Json(json!({
        "poll": {"token": poll, "endpoint": format!("{base}/index.php/login/v2/poll")},
        "login": format!("{base}/index.php/login/v2/flow/{login}"),
    }))
    .into_response()
}

/// A person's name for the app a User-Agent names: Nextcloud's desktop client sends
/// `Mozilla/5.0 (Linux) mirall/3.7.3 (Nextcloud, debian)`; others are shown as they come.
fn app_name(user_agent: &str) -> String {
    if let Some(rest) = user_agent.split("mirall/").nth(1) {
        let version = rest
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        let vendor = if user_agent.contains("Nextcloud") {
            "Nextcloud"
        } else {
            "ownCloud"
        };
        return format!("{vendor} desktop {version}").trim().to_owned();
    }
    user_agent.trim().to_owned()
}

/// `POST /index.php/login/v2/poll` with `token`: 404 until granted, then once the
/// credentials.
pub(crate) async fn poll(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match Form::from_body(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let token = form.get("token").unwrap_or("");
    let not_yet = || (StatusCode::NOT_FOUND, axum::Json(json!({}))).into_response();
    let (account, client) = match state.store.login_flow_take(token).await {
        Ok(Some(t)) => t,
        Ok(None) => return not_yet(),
        Err(e) => return internal(e),
    };
    let user = match state.store.account_by_id(account).await {
        Ok(Some(a)) if !a.disabled => a,
        Ok(_) => return not_yet(),
        Err(e) => return internal(e),
    };
    let (_, password) = match state
        .store
        .create_app_password(account, &client, "", false)
        .await
    {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    axum::Json(json!({
        "server": crate::api::history::base_url(&headers),
        "loginName": user.name,
        "appPassword": password,
    }))
    .into_response()
}

/// `GET /index.php/login/v2/flow/{token}`: after signing in, the question whether to let
/// the app in.
pub(crate) async fn consent(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/index.php/login/v2/flow/{token}");
    let s = match require_session(&state, &headers, &here).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let client = match state.store.login_flow_client(&token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "This sign-in link expired or was already used. Start the sign-in in the app again.",
            );
        }
        Err(e) => return internal(e),
    };
    page(
        StatusCode::OK,
        "Connect an app",
        &format!(
            "<p><b id=\"client\">{client}</b> asks to reach all your files as <b>{user}</b>.</p>\
<p>It gets an app password of its own, which you can revoke on your <a href=\"/account\">account page</a>.</p>\
<form method=\"post\" action=\"/index.php/login/v2/grant/{token}\">{csrf}\
<button type=\"submit\" id=\"grant\" class=\"primary\">Grant access</button></form>\
<p><a href=\"/home\">Cancel</a></p>",
            client = esc(&client),
            user = esc(&s.account.name),
            token = esc(&token),
            csrf = hidden("csrf", &s.csrf),
        ),
    )
}

/// `POST /index.php/login/v2/grant/{token}`: the person said yes.
pub(crate) async fn grant(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let here = format!("/index.php/login/v2/flow/{token}");
    let s = match require_session(&state, &headers, &here).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = match Form::from_body(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&s, &form) {
        return r;
    }
    match state.store.login_flow_grant(&token, s.account.id).await {
        Ok(true) => page(
            StatusCode::OK,
            "App connected",
            "<p id=\"granted\">Access granted. Go back to the app: it signs in by itself. You can close this page.</p>",
        ),
        Ok(false) => error_page(
            StatusCode::NOT_FOUND,
            "This sign-in link expired or was already used. Start the sign-in in the app again.",
        ),
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn desktop_clients_are_named_for_people() {
        assert_eq!(
            super::app_name("Mozilla/5.0 (Linux) mirall/3.7.3 (Nextcloud, debian)"),
            "Nextcloud desktop 3.7.3"
        );
        assert_eq!(
            super::app_name("Nextcloud desktop (test)"),
            "Nextcloud desktop (test)"
        );
    }
}
