//! The account page (storage against quota, connected apps with disconnect, password, sign
//! out) and, for operators, the admin page (users: add, disable, quota; the store's figures).
//! Server-rendered forms like the app console: they work without script, and every form
//! carries the session's CSRF token.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cubby_core::naming::human_size;
use cubby_store::{OpError, WebSession};

use super::{Form, check_csrf, error_page, esc, hidden, internal, page, require_session};
use crate::AppState;

/// The links at the top of the account and admin pages.
fn nav(s: &WebSession) -> String {
    let admin = if s.account.operator {
        " · <a href=\"/admin\">Admin</a>"
    } else {
        ""
    };
    format!(
        "<nav class=\"crumbs\" aria-label=\"Pages\"><a href=\"/home\">Files</a> · \
<a href=\"/account\">Account</a> · <a href=\"/apps\">App console</a>{admin}</nav>"
    )
}

/// A notice above a page: `Ok` a confirmation, `Err` an error.
fn notice(n: Option<Result<String, String>>) -> String {
    match n {
        None => String::new(),
        Some(Ok(m)) => format!(
            "<p class=\"notice\" id=\"notice\" role=\"status\">{}</p>",
            esc(&m)
        ),
        Some(Err(m)) => format!(
            "<p class=\"err\" id=\"error\" role=\"alert\">{}</p>",
            esc(&m)
        ),
    }
}

/// A date for people, from Unix seconds (UTC; the page has no locale).
fn day(secs: i64) -> String {
    cubby_core::time::format(secs)
        .get(..10)
        .unwrap_or("")
        .to_owned()
}

async fn account_page(
    state: &AppState,
    s: &WebSession,
    note: Option<Result<String, String>>,
    status: StatusCode,
) -> Response {
    account_page_with(state, s, note, status, String::new()).await
}

/// The account page with `fresh` (a new app password, shown this once) above its list.
async fn account_page_with(
    state: &AppState,
    s: &WebSession,
    note: Option<Result<String, String>>,
    status: StatusCode,
    fresh: String,
) -> Response {
    let store = &state.store;
    // A mounted shared folder counts against each member's space, as the API reports it.
    let used = match crate::api::space_used_by(store, &s.account).await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let apps = match store.connected_apps(s.account.id).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let space = match s.account.quota {
        Some(q) => format!(
            "<p id=\"space\">{} of {} used</p><progress id=\"space-bar\" max=\"{q}\" value=\"{}\" \
aria-label=\"Storage used\"></progress>",
            human_size(used),
            human_size(q),
            used.min(q)
        ),
        None => format!(
            "<p id=\"space\">{} used; your account has no quota.</p>",
            human_size(used)
        ),
    };
    let csrf = hidden("csrf", &s.csrf);
    let passwords = match store.app_passwords(s.account.id).await {
        Ok(p) => app_passwords(&p, &csrf),
        Err(e) => return internal(e),
    };
    let apps = if apps.is_empty() {
        "<p id=\"no-connected-apps\">No app can reach your files.</p>".to_owned()
    } else {
        let rows: String = apps
            .iter()
            .map(|a| {
                format!(
                    "<tr class=\"connected-app\"><td><b>{name}</b></td><td>{access}</td><td>since {since}</td>\
<td><form method=\"post\" action=\"/account/apps/{key}/disconnect\">{csrf}\
<button aria-label=\"Disconnect {name}\">Disconnect</button></form></td></tr>",
                    name = esc(&a.name),
                    access = if a.app_folder {
                        "its app folder"
                    } else {
                        "all your files"
                    },
                    since = day(a.since),
                    key = esc(&a.key),
                )
            })
            .collect();
        format!(
            "<table id=\"connected-apps\"><tr><th>App</th><th>Reaches</th><th>Connected</th><th></th></tr>{rows}</table>"
        )
    };
    page(
        status,
        "Your account",
        &format!(
            "{nav}{note}<p>Signed in as <b id=\"user\">{name}</b> ({email}).</p>\
<h2>Storage</h2>{space}\
<h2>Connected apps</h2><p>Apps you allowed to use your Cubby. Disconnecting one signs it out at once.</p>{apps}\
<h2>App passwords</h2><p>For WebDAV clients: file managers, rclone, phone and desktop apps. \
Each device gets its own password, which you can revoke alone; your sign-in password never works there. \
Their address is this server's followed by <code>/dav/</code>, with your user name <b>{name}</b>.</p>\
{fresh}{passwords}\
<h2>Password</h2><form method=\"post\" action=\"/account/password\" id=\"password-form\">{csrf}\
<label for=\"current\">Current password</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\" required>\
<label for=\"new\">New password (at least 8 characters)</label><input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" minlength=\"8\" required>\
<label for=\"repeat\">New password again</label><input type=\"password\" id=\"repeat\" name=\"repeat\" autocomplete=\"new-password\" minlength=\"8\" required>\
<button type=\"submit\">Change password</button></form>\
<h2>Sign out</h2><form method=\"post\" action=\"/logout\">{csrf}<button>Sign out</button></form>",
            nav = nav(s),
            note = notice(note),
            fresh = fresh,
            passwords = passwords,
            name = esc(&s.account.name),
            email = esc(&s.account.email),
        ),
    )
}

/// The list of app passwords with their revoke buttons, and the form that makes one.
fn app_passwords(list: &[cubby_store::dav::AppPassword], csrf: &str) -> String {
    let table = if list.is_empty() {
        "<p id=\"no-app-passwords\">You have no app passwords.</p>".to_owned()
    } else {
        let rows: String = list
            .iter()
            .map(|p| {
                format!(
                    "<tr class=\"app-password\"><td><b>{name}</b></td><td>{reach}{mode}</td>\
<td class=\"day\">{used}</td><td><form method=\"post\" action=\"/account/app-passwords/{id}/revoke\">{csrf}\
<button aria-label=\"Revoke {name}\">Revoke</button></form></td></tr>",
                    name = esc(&p.name),
                    reach = if p.folder.is_empty() {
                        "all your files".to_owned()
                    } else {
                        esc(&p.folder)
                    },
                    mode = if p.read_only { ", read only" } else { "" },
                    used = p.last_used.map_or_else(|| "never".to_owned(), day),
                    id = p.id,
                )
            })
            .collect();
        format!(
            "<table id=\"app-passwords\"><tr><th>Device</th><th>Reaches</th>\
<th>Last used</th><th></th></tr>{rows}</table>"
        )
    };
    format!(
        "{table}<form method=\"post\" action=\"/account/app-passwords\" id=\"app-password-form\">{csrf}\
<label for=\"ap-name\">Device or program</label><input type=\"text\" id=\"ap-name\" name=\"name\" maxlength=\"100\" \
placeholder=\"Laptop file manager\" required>\
<label for=\"ap-folder\">Only this folder (optional)</label><input type=\"text\" id=\"ap-folder\" name=\"folder\" \
placeholder=\"/Photos\">\
<label class=\"check\"><input type=\"checkbox\" name=\"read_only\" value=\"1\"> Read only</label>\
<button type=\"submit\">Make app password</button></form>"
    )
}

/// `POST /account/app-passwords`: makes one and shows it this once.
pub(crate) async fn create_app_password(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, form) = match signed_form(&state, &headers, body, "/account").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let name = form.get("name").unwrap_or("").trim().to_owned();
    if name.is_empty() {
        let n = Some(Err("Name the device or program the password is for.".into()));
        return account_page(&state, &s, n, StatusCode::BAD_REQUEST).await;
    }
    let folder = match form.get("folder").map(str::trim).filter(|f| !f.is_empty()) {
        None => String::new(),
        Some(f) => match state.store.folder_for_app_password(&s.account, f).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                let n = Some(Err(format!(
                    "{f} is not one of your folders; nothing was made."
                )));
                return account_page(&state, &s, n, StatusCode::BAD_REQUEST).await;
            }
            Err(e) => return internal(e),
        },
    };
    let read_only = form.get("read_only").is_some();
    let (pw, secret) = match state
        .store
        .create_app_password(s.account.id, &name, &folder, read_only)
        .await
    {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    let base = crate::api::history::base_url(&headers);
    let fresh = format!(
        "<div class=\"notice\" id=\"new-app-password\" role=\"status\"><p>The password for <b>{name}</b> \
is shown only now: enter it in the app, then leave this page.</p><dl>\
<dt>Server</dt><dd><code id=\"dav-address\">{base}/dav/</code></dd><dt>User name</dt><dd><code>{user}</code></dd>\
<dt>Password</dt><dd><code id=\"app-password\">{secret}</code></dd></dl></div>",
        name = esc(&pw.name),
        base = esc(&base),
        user = esc(&s.account.name),
        secret = esc(&secret),
    );
    account_page_with(&state, &s, None, StatusCode::OK, fresh).await
}

/// `POST /account/app-passwords/{id}/revoke`: clients using it are refused at once.
pub(crate) async fn revoke_app_password(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, _) = match signed_form(&state, &headers, body, "/account").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match state.store.revoke_app_password(s.account.id, id).await {
        Ok(true) => {
            let n = Some(Ok("Revoked: that password no longer signs in.".into()));
            account_page(&state, &s, n, StatusCode::OK).await
        }
        Ok(false) => {
            let n = Some(Err("You have no such app password.".into()));
            account_page(&state, &s, n, StatusCode::NOT_FOUND).await
        }
        Err(e) => internal(e),
    }
}

/// `GET /account`.
pub(crate) async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match require_session(&state, &headers, "/account").await {
        Ok(s) => account_page(&state, &s, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// A signed, CSRF-checked form; `Err` is a signed-out or forged request, already answered.
async fn signed_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    here: &str,
) -> Result<(WebSession, Form), Response> {
    let session = require_session(state, headers, here).await?;
    let form = Form::from_body(body).await?;
    check_csrf(&session, &form)?;
    Ok((session, form))
}

/// `POST /account/password`: the current password, then the new one twice. Changing it
/// signs out every browser, this one included, so the page then asks to sign in.
pub(crate) async fn change_password(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, form) = match signed_form(&state, &headers, body, "/account").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (current, new, repeat) = (
        form.get("current").unwrap_or(""),
        form.get("new").unwrap_or(""),
        form.get("repeat").unwrap_or(""),
    );
    let refuse = |m: &str| Some(Err(m.to_owned()));
    if new != repeat {
        let n = refuse("The new passwords differ; nothing was changed.");
        return account_page(&state, &s, n, StatusCode::BAD_REQUEST).await;
    }
    // Wrong current passwords count against the sign-in limits, as sign-ins do.
    let key = format!("login:{}", s.account.name.to_lowercase());
    if let Err(retry) = state.signin_limiter.check(&key) {
        return super::too_many(retry);
    }
    match state.store.check_password(&s.account.name, current).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            state.signin_limiter.fail(&key);
            let n = refuse("The current password is wrong; nothing was changed.");
            return account_page(&state, &s, n, StatusCode::BAD_REQUEST).await;
        }
        Err(e) => return internal(e),
    }
    match state.store.set_password(&s.account.name, new).await {
        Ok(()) => super::login_form(
            &headers,
            "/account",
            Some(
                "Your password was changed and every browser signed out. Sign in with the new one.",
            ),
        ),
        Err(OpError::Invalid(m)) => {
            account_page(&state, &s, Some(Err(m)), StatusCode::BAD_REQUEST).await
        }
        Err(e) => internal(e),
    }
}

/// `POST /account/apps/{key}/disconnect`: revoke every token of that app for this account.
pub(crate) async fn disconnect(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, _) = match signed_form(&state, &headers, body, "/account").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match state.store.disconnect_app(s.account.id, &key).await {
        Ok(true) => {
            let n = Some(Ok(
                "Disconnected: the app can no longer reach your files.".into()
            ));
            account_page(&state, &s, n, StatusCode::OK).await
        }
        Ok(false) => {
            let n = Some(Err("That app was not connected.".into()));
            account_page(&state, &s, n, StatusCode::NOT_FOUND).await
        }
        Err(e) => internal(e),
    }
}

// ---------------------------------------------------------------------------------------
// The admin page.

/// An operator's session; anyone else is told there is no such page.
async fn operator(state: &AppState, headers: &HeaderMap) -> Result<WebSession, Response> {
    let s = require_session(state, headers, "/admin").await?;
    if s.account.operator {
        Ok(s)
    } else {
        Err(error_page(
            StatusCode::FORBIDDEN,
            "Only operators see the admin page. An operator makes an account one with `cubby admin user operator NAME`.",
        ))
    }
}

async fn admin_page(
    state: &AppState,
    s: &WebSession,
    note: Option<Result<String, String>>,
    status: StatusCode,
) -> Response {
    let stats = match state.store.stats().await {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    let users = match state.store.users().await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let csrf = hidden("csrf", &s.csrf);
    let used: std::collections::HashMap<&str, u64> = stats
        .accounts
        .iter()
        .map(|(n, u, _)| (n.as_str(), *u))
        .collect();
    let rows: String = users
        .iter()
        .map(|a| {
            let name = esc(&a.name);
            let quota = a.quota.map_or("none".to_owned(), human_size);
            let (toggle, label) = if a.disabled {
                ("0", "Enable")
            } else {
                ("1", "Disable")
            };
            format!(
                "<tr class=\"user\" data-name=\"{name}\"><td><b>{name}</b>{role}<br>{email}<br>{state}</td>\
<td>{used}{of}</td><td>\
<form method=\"post\" action=\"/admin/users/{url}/disabled\">{csrf}{value}\
<button aria-label=\"{label} {name}\">{label}</button></form>\
<form method=\"post\" action=\"/admin/users/{url}/quota\" class=\"inline\">{csrf}\
<label for=\"quota-{name}\" class=\"sr-only\">Quota of {name}</label>\
<input type=\"text\" id=\"quota-{name}\" name=\"quota\" value=\"{quota}\" size=\"8\">\
<button aria-label=\"Set quota of {name}\">Set quota</button></form></td></tr>",
                url = esc(&crate::api::percent_encode(&a.name)),
                role = if a.operator { " (operator)" } else { "" },
                email = esc(&a.email),
                used = human_size(used.get(a.name.as_str()).copied().unwrap_or(0)),
                of = a.quota.map_or_else(
                    || "; no quota".to_owned(),
                    |q| format!(" of {}", human_size(q))
                ),
                state = if a.disabled { "<b class=\"err\">disabled</b>" } else { "active" },
                value = hidden("disabled", toggle),
            )
        })
        .collect();
    let free = state
        .store
        .free_space()
        .map_or("unknown".to_owned(), human_size);
    page(
        status,
        "Admin",
        &format!(
            "{nav}{note}<h2>Storage</h2><table id=\"storage\">\
<tr><th>Live files</th><td>{live}</td></tr>\
<tr><th>Every version kept</th><td>{versions}</td></tr>\
<tr><th>Stored blocks</th><td>{blocks} blocks, {physical}</td></tr>\
<tr><th>Free on the block store's disk</th><td>{free}</td></tr></table>\
<h2>Users</h2><table id=\"users\"><tr><th>User</th><th>Storage</th><th>Actions</th></tr>{rows}</table>\
<p>Quotas take sizes like 10G, 500M or none.</p>\
<h2>Add a user</h2><form method=\"post\" action=\"/admin/users\" id=\"add-user\">{csrf}\
<label for=\"name\">User name</label><input type=\"text\" id=\"name\" name=\"name\" required>\
<label for=\"email\">Email (optional)</label><input type=\"text\" id=\"email\" name=\"email\">\
<label for=\"password\">Password (at least 8 characters; leave empty to generate one)</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\">\
<label><input type=\"checkbox\" name=\"operator\" value=\"1\"> Operator (sees this page)</label>\
<button type=\"submit\" class=\"primary\">Add user</button></form>",
            nav = nav(s),
            note = notice(note),
            live = human_size(stats.live_bytes),
            versions = human_size(stats.version_bytes),
            blocks = stats.blocks,
            physical = human_size(stats.physical_bytes),
        ),
    )
}

/// `GET /admin`.
pub(crate) async fn admin(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match operator(&state, &headers).await {
        Ok(s) => admin_page(&state, &s, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// An operator's CSRF-checked form.
async fn operator_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(WebSession, Form), Response> {
    let s = operator(state, headers).await?;
    let form = Form::from_body(body).await?;
    check_csrf(&s, &form)?;
    Ok((s, form))
}

/// The page again after an operator's change: its outcome on top.
async fn after(state: &AppState, s: &WebSession, outcome: Result<String, OpError>) -> Response {
    match outcome {
        Ok(m) => admin_page(state, s, Some(Ok(m)), StatusCode::OK).await,
        Err(OpError::Invalid(m)) => {
            admin_page(state, s, Some(Err(m)), StatusCode::BAD_REQUEST).await
        }
        Err(OpError::NoSuchUser) => {
            let n = Some(Err("There is no such user.".into()));
            admin_page(state, s, n, StatusCode::NOT_FOUND).await
        }
        Err(e) => internal(e),
    }
}

/// `POST /admin/users`: add a user.
pub(crate) async fn add_user(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, form) = match operator_form(&state, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let name = form.get("name").unwrap_or("").trim().to_owned();
    let email = form
        .get("email")
        .map_or_else(|| format!("{name}@localhost"), |e| e.trim().to_owned());
    let (password, generated) = match form.get("password") {
        Some(p) => (p.to_owned(), false),
        None => (cubby_core::ids::password(cubby_store::random_bytes()), true),
    };
    let outcome = async {
        state.store.add_user(&name, &email, &password).await?;
        if form.get("operator").is_some() {
            state.store.set_operator(&name, true).await?;
        }
        Ok(if generated {
            format!("Added {name}. Their password, shown only now: {password}")
        } else {
            format!("Added {name}.")
        })
    }
    .await;
    after(&state, &s, outcome).await
}

/// `POST /admin/users/{name}/disabled`: `disabled=1` disables, `0` enables.
pub(crate) async fn set_disabled(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, form) = match operator_form(&state, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let disable = form.get("disabled") == Some("1");
    if disable && name.eq_ignore_ascii_case(&s.account.name) {
        let n = Some(Err("You cannot disable your own account here.".into()));
        return admin_page(&state, &s, n, StatusCode::BAD_REQUEST).await;
    }
    let outcome = state.store.set_disabled(&name, disable).await.map(|()| {
        format!(
            "{name} is {}.",
            if disable { "disabled" } else { "enabled" }
        )
    });
    after(&state, &s, outcome).await
}

/// `POST /admin/users/{name}/quota`: a size like `10G`, or `none`.
pub(crate) async fn set_quota(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (s, form) = match operator_form(&state, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let quota = match cubby_core::naming::parse_size(form.get("quota").unwrap_or("none")) {
        Ok(q) => q,
        Err(m) => return after(&state, &s, Err(OpError::Invalid(m))).await,
    };
    let outcome = state
        .store
        .set_quota(&name, quota)
        .await
        .map(|()| match quota {
            Some(q) => format!("The quota of {name} is {}.", human_size(q)),
            None => format!("{name} has no quota."),
        });
    after(&state, &s, outcome).await
}
