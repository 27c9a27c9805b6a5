"""OAuth 2 (docs sections 5.8, 5.9, 6): the sign-in and consent pages of /oauth2/authorize,
driven as a browser would with requests; /oauth2/token through the SDK's flows and raw;
auth/token/revoke; check/app; scopes and app folders.

The pages are parsed by their documented shapes: a sign-in form posting to /login (hidden
`csrf` and `next`, text inputs `login` and `password`) and a consent form posting to
/oauth2/authorize (every authorize parameter plus `csrf` as hidden inputs, and submit buttons
`decision=allow|deny`).
"""

import html
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
import requests

import dropbox
from dropbox.exceptions import ApiError, AuthError, BadInputError
from dropbox.oauth import DropboxOAuth2Flow, DropboxOAuth2FlowNoRedirect, NotApprovedException

from cubby_helpers import body_of

PASSWORD = "oauth-Pa55word-" + uuid.uuid4().hex[:6]
REDIRECT_URI = "http://localhost:8976/oauth/callback"  # registered; never listened on
OTHER_REDIRECT_URI = "http://127.0.0.1:8976/other"  # also registered
ACCESS_TOKEN_LIFETIME = 14400  # Dropbox's short-lived tokens: four hours


# ---------------------------------------------------------------------------------------
# Driving the pages


_HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


def _form_fields(page, action):
    """The hidden inputs of the <form method="post" action=ACTION> on an HTML page."""
    m = re.search(
        r'<form method="post" action="{}">(.*?)</form>'.format(re.escape(action)), page, re.S
    )
    assert m, "no form posting to {} on the page:\n{}".format(action, page)
    return {html.unescape(k): html.unescape(v) for k, v in _HIDDEN_RE.findall(m.group(1))}


def open_consent(session, authorize_url, user, password):
    """Opens authorize_url in `session` (a requests.Session standing in for a browser),
    signing in first if the server asks. Returns (response, fields of the consent form), or
    (response, None) for a page without a consent form (an error page)."""
    r = session.get(authorize_url, allow_redirects=False)
    if 'action="/login"' in r.text:
        assert r.status_code == 200, (r.status_code, r.text)
        assert session.cookies.get("cubby_login"), r.headers
        fields = _form_fields(r.text, "/login")
        assert set(fields) == {"csrf", "next"}, fields
        fields.update(login=user, password=password)
        r = session.post(urljoin(authorize_url, "/login"), data=fields, allow_redirects=False)
        assert r.status_code == 302, (r.status_code, r.text)
        # Back to the very same authorize URL.
        assert urljoin(authorize_url, r.headers["Location"]) == authorize_url, r.headers
        r = session.get(authorize_url, allow_redirects=False)
    if 'action="/oauth2/authorize"' not in r.text:
        return r, None
    assert r.status_code == 200, (r.status_code, r.text)
    fields = _form_fields(r.text, "/oauth2/authorize")
    # The consent form carries every authorize parameter through, plus its own csrf.
    csrf = fields.pop("csrf", None)
    assert csrf, r.text
    query = dict(parse_qsl(urlsplit(authorize_url).query, keep_blank_values=True))
    assert fields == query, (fields, query)
    fields["csrf"] = csrf
    return r, fields


def approve(session, authorize_url, user, password, decision="allow"):
    """open_consent(), then answers the consent page with `decision`. Returns the final
    response (redirects not followed), or the page itself if it has no consent form."""
    r, fields = open_consent(session, authorize_url, user, password)
    if fields is None:
        return r
    return session.post(
        urljoin(authorize_url, "/oauth2/authorize"),
        data=dict(fields, decision=decision),
        allow_redirects=False,
    )


def shown_code(resp):
    """The authorization code on the page shown when there is no redirect_uri."""
    assert resp.status_code == 200, (resp.status_code, resp.text)
    m = re.search(r'<code id="auth-code">([^<]+)</code>', resp.text)
    assert m, resp.text
    return html.unescape(m.group(1))


def redirected_to(resp, redirect_uri, part="query"):
    """The parameters of a 302 to redirect_uri, from its query (or fragment), as a dict."""
    assert resp.status_code == 302, (resp.status_code, resp.text)
    loc = resp.headers["Location"]
    sep = "?" if part == "query" else "#"
    assert loc.startswith(redirect_uri + sep), (loc, redirect_uri)
    pairs = parse_qsl(getattr(urlsplit(loc), part), keep_blank_values=True)
    params = dict(pairs)
    assert len(params) == len(pairs), "repeated parameters: {}".format(loc)
    return params


def authorize_url(base_url, app, **params):
    """A hand-built /oauth2/authorize URL (response_type=code unless given)."""
    params = dict({"response_type": "code", "client_id": app["app_key"]}, **params)
    return base_url + "/oauth2/authorize?" + urlencode(params)


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def owner(server):
    """A user with a known password and a full-access token of the built-in app."""
    name = "oauth-" + uuid.uuid4().hex[:8]
    user = server.admin("user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert user.get("name") == name and user.get("account_id"), user
    tok = server.admin("token", name)
    assert tok.get("access_token"), tok
    user["access_token"] = tok["access_token"]
    return user


@pytest.fixture
def make_app(server):
    """Factory: registers an app with a unique name; returns the admin's JSON
    (app_key, app_secret, name, ...)."""

    def make(access="full", public=False, redirect_uris=(), scopes=()):
        name = "oauth-app-" + uuid.uuid4().hex[:10]
        args = ["app", "add", name, "--access", access]
        for u in redirect_uris:
            args += ["--redirect-uri", u]
        for s in scopes:
            args += ["--scope", s]
        if public:
            args.append("--public")
        app = server.admin(*args)
        assert app.get("name") == name, app
        assert app.get("app_key"), app
        if public:
            assert app.get("app_secret") is None, app
        else:
            assert app.get("app_secret"), app
        return app

    return make


def new_browser(ca_certs):
    """A requests.Session standing in for a browser: its own cookie jar, trusting the CA."""
    s = requests.Session()
    s.verify = ca_certs
    s.trust_env = False
    return s


@pytest.fixture
def browser(ca_certs):
    """A fresh cookie jar per test: the first authorization of a test signs in."""
    s = new_browser(ca_certs)
    yield s
    s.close()


@pytest.fixture
def consent(browser, owner):
    """approve() as the owner, in this test's browser."""
    return lambda url, decision="allow": approve(
        browser, url, owner["name"], PASSWORD, decision
    )


@pytest.fixture
def sdk(ca_certs):
    """Factory: a Dropbox client trusting the server's CA, e.g. sdk(oauth2_refresh_token=...,
    app_key=...); a bare string is an access token."""

    def make(token=None, **kwargs):
        return dropbox.Dropbox(
            token, ca_certs=ca_certs, max_retries_on_error=0, timeout=60, **kwargs
        )

    return make


@pytest.fixture
def link(consent, ca_certs):
    """Factory: the whole no-redirect code flow (PKCE for public apps) for an app; returns
    the SDK's OAuth2FlowNoRedirectResult."""

    def run(app, **kwargs):
        kwargs.setdefault("token_access_type", "offline")
        if app["app_secret"] is None:
            kwargs["use_pkce"] = True
        flow = DropboxOAuth2FlowNoRedirect(
            app["app_key"], app["app_secret"], ca_certs=ca_certs, **kwargs
        )
        return flow.finish(shown_code(consent(flow.start())))

    return run


@pytest.fixture
def token_endpoint(http, base_url):
    """POST form fields to /oauth2/token; returns the raw response."""
    return lambda data, auth=None: http.post(base_url + "/oauth2/token", data=data, auth=auth)


def assert_expires_in_4h(expires_at):
    left = (expires_at - datetime.utcnow()).total_seconds()
    assert ACCESS_TOKEN_LIFETIME - 120 < left <= ACCESS_TOKEN_LIFETIME, left


def assert_oauth_error(resp, error):
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("error") == error, body
    assert isinstance(body.get("error_description", ""), str), body


def account_of(client):
    return client.users_get_current_account().account_id


def assert_invalid_token(client):
    with pytest.raises(AuthError) as ei:
        client.users_get_current_account()
    assert ei.value.error.is_invalid_access_token(), ei.value.error


def assert_missing_scope(call, scope):
    with pytest.raises(AuthError) as ei:
        call()
    err = ei.value.error
    assert err.is_missing_scope(), err
    assert err.get_missing_scope().required_scope == scope, err


# ---------------------------------------------------------------------------------------
# Code flows through the SDK


def test_no_redirect_flow_offline(make_app, consent, owner, sdk, ca_certs, base_url):
    app = make_app()
    flow = DropboxOAuth2FlowNoRedirect(
        app["app_key"], app["app_secret"], token_access_type="offline", ca_certs=ca_certs
    )
    url = flow.start()
    assert url.startswith(base_url + "/oauth2/authorize?"), url
    result = flow.finish(shown_code(consent(url)))

    assert result.access_token and result.refresh_token, result
    assert result.access_token != result.refresh_token
    assert result.account_id == owner["account_id"]
    assert result.user_id  # `uid`, which the SDK requires
    assert_expires_in_4h(result.expires_at)
    acct = sdk(result.access_token).users_get_current_account()
    assert acct.account_id == owner["account_id"]
    assert acct.email == owner["email"]


def test_pkce_public_client_refreshes_by_itself(make_app, consent, owner, sdk, ca_certs):
    app = make_app(public=True)
    flow = DropboxOAuth2FlowNoRedirect(
        app["app_key"], use_pkce=True, token_access_type="offline", ca_certs=ca_certs
    )
    url = flow.start()
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["code_challenge_method"] == "S256" and query["code_challenge"], query
    result = flow.finish(shown_code(consent(url)))
    assert result.refresh_token and result.account_id == owner["account_id"], result
    assert_expires_in_4h(result.expires_at)

    # Refresh token and app key only: no access token yet, the first call gets one.
    dbx = sdk(oauth2_refresh_token=result.refresh_token, app_key=app["app_key"])
    assert account_of(dbx) == owner["account_id"]
    first = dbx._oauth2_access_token
    assert first and first != result.access_token
    assert_expires_in_4h(dbx._oauth2_access_token_expiration)

    # An expired access token is replaced before the call.
    dbx = sdk(
        result.access_token,
        oauth2_refresh_token=result.refresh_token,
        oauth2_access_token_expiration=datetime.utcnow() - timedelta(minutes=1),
        app_key=app["app_key"],
    )
    assert dbx.files_list_folder("").entries is not None
    assert dbx._oauth2_access_token not in (result.access_token, first)

    dbx.refresh_access_token()
    assert account_of(dbx) == owner["account_id"]


def test_redirect_flow_round_trips_state(make_app, consent, owner, sdk, ca_certs):
    app = make_app(redirect_uris=[REDIRECT_URI])
    session = {}
    flow = DropboxOAuth2Flow(
        app["app_key"],
        REDIRECT_URI,
        session,
        "dropbox-auth-csrf-token",
        consumer_secret=app["app_secret"],
        token_access_type="offline",
        ca_certs=ca_certs,
    )
    url_state = "next=/päge?a=1&b=2|more"
    url = flow.start(url_state=url_state)
    sent_state = dict(parse_qsl(urlsplit(url).query))["state"]
    assert sent_state == session["dropbox-auth-csrf-token"] + "|" + url_state

    params = redirected_to(consent(url), REDIRECT_URI)
    assert set(params) == {"code", "state"}, params
    assert params["state"] == sent_state
    result = flow.finish(params)  # checks the CSRF half of state
    assert result.url_state == url_state
    assert "dropbox-auth-csrf-token" not in session
    assert result.account_id == owner["account_id"] and result.refresh_token, result
    assert account_of(sdk(result.access_token)) == owner["account_id"]


def test_refresh_token_and_secret_client_refreshes_on_first_call(make_app, link, owner, sdk):
    app = make_app()
    result = link(app)
    dbx = sdk(
        oauth2_refresh_token=result.refresh_token,
        app_key=app["app_key"],
        app_secret=app["app_secret"],
    )
    assert dbx._oauth2_access_token is None
    assert account_of(dbx) == owner["account_id"]
    assert dbx._oauth2_access_token and dbx._oauth2_access_token != result.access_token
    assert_expires_in_4h(dbx._oauth2_access_token_expiration)


@pytest.mark.parametrize("access_type", ["online", "legacy"])
def test_token_access_types_without_refresh_token(
    make_app, consent, owner, sdk, token_endpoint, base_url, access_type
):
    app = make_app()
    url = authorize_url(base_url, app, token_access_type=access_type)
    r = token_endpoint(
        {"grant_type": "authorization_code", "code": shown_code(consent(url))},
        auth=(app["app_key"], app["app_secret"]),
    )
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"].lower() == "bearer", tok
    assert tok["account_id"] == owner["account_id"] and tok["uid"], tok
    assert "refresh_token" not in tok, tok
    if access_type == "online":
        assert tok["expires_in"] == ACCESS_TOKEN_LIFETIME, tok
    else:
        assert "expires_in" not in tok, tok
    assert account_of(sdk(tok["access_token"])) == owner["account_id"]


def test_implicit_grant_returns_token_in_fragment(make_app, consent, owner, sdk, base_url):
    app = make_app(redirect_uris=[REDIRECT_URI])
    state = "implicit-" + uuid.uuid4().hex
    url = authorize_url(
        base_url, app, response_type="token", redirect_uri=REDIRECT_URI, state=state
    )
    frag = redirected_to(consent(url), REDIRECT_URI, part="fragment")
    assert frag["token_type"].lower() == "bearer", frag
    assert frag["account_id"] == owner["account_id"] and frag["uid"], frag
    assert frag["state"] == state, frag
    assert "code" not in frag and "refresh_token" not in frag, frag
    assert account_of(sdk(frag["access_token"])) == owner["account_id"]


# ---------------------------------------------------------------------------------------
# Scopes


def test_refresh_down_scopes(make_app, link, sdk, owner):
    app = make_app()
    result = link(app)
    dbx = sdk(
        oauth2_refresh_token=result.refresh_token,
        app_key=app["app_key"],
        app_secret=app["app_secret"],
    )
    dbx.refresh_access_token(scope=["files.metadata.read"])
    assert dbx.files_list_folder("").entries is not None
    assert_missing_scope(dbx.users_get_current_account, "account_info.read")
    assert_missing_scope(lambda: dbx.files_upload(b"x", "/down.txt"), "files.content.write")

    # The refresh token keeps the whole grant.
    dbx.refresh_access_token()
    assert account_of(dbx) == owner["account_id"]


def test_authorize_scope_and_include_granted_scopes(make_app, link, sdk, owner):
    app = make_app()
    full = sdk(owner["access_token"])
    path = "/oauth-scoped-{}.txt".format(uuid.uuid4().hex[:8])
    full.files_upload(b"scoped content", path)

    narrow = link(app, scope=["files.metadata.read"])
    assert narrow.scope == "files.metadata.read", narrow.scope
    dbx = sdk(narrow.access_token)
    assert dbx.files_get_metadata(path).path_display == path
    assert_missing_scope(lambda: dbx.files_download(path), "files.content.read")
    assert_missing_scope(dbx.users_get_current_account, "account_info.read")
    # A refresh may not widen the grant: RFC 6749 invalid_scope, a BadInputError in the SDK.
    widen = sdk(
        oauth2_refresh_token=narrow.refresh_token,
        app_key=app["app_key"],
        app_secret=app["app_secret"],
    )
    with pytest.raises(BadInputError) as ei:
        widen.refresh_access_token(scope=["files.content.read"])
    assert "invalid_scope" in ei.value.message, ei.value.message

    # Same browser, already signed in: the union with the earlier grant.
    union = link(app, scope=["files.content.read"], include_granted_scopes="user")
    assert sorted(union.scope.split()) == ["files.content.read", "files.metadata.read"]
    dbx = sdk(union.access_token)
    assert body_of(dbx, path) == b"scoped content"
    assert_missing_scope(dbx.users_get_current_account, "account_info.read")


# ---------------------------------------------------------------------------------------
# Revocation and token-endpoint errors


def test_revoke_kills_the_token_family(make_app, link, sdk, owner, token_endpoint):
    app = make_app()
    result = link(app)
    other_grant = link(app)
    creds = {"app_key": app["app_key"], "app_secret": app["app_secret"]}
    minted = sdk(oauth2_refresh_token=result.refresh_token, **creds)
    minted.refresh_access_token()
    minted_token = minted._oauth2_access_token
    assert minted_token and minted_token != result.access_token

    dbx = sdk(result.access_token)
    assert account_of(dbx) == owner["account_id"]
    assert dbx.auth_token_revoke() is None
    assert_invalid_token(dbx)
    assert_invalid_token(sdk(minted_token))  # minted from the same refresh token
    with pytest.raises(AuthError) as ei:  # 400 invalid_grant, mapped by the SDK
        sdk(oauth2_refresh_token=result.refresh_token, **creds).refresh_access_token()
    assert ei.value.error.is_invalid_access_token(), ei.value.error
    r = token_endpoint(
        {"grant_type": "refresh_token", "refresh_token": result.refresh_token},
        auth=(app["app_key"], app["app_secret"]),
    )
    assert_oauth_error(r, "invalid_grant")

    # Nothing else is touched: another grant of the same app, the user's own token.
    assert account_of(sdk(other_grant.access_token)) == owner["account_id"]
    assert account_of(sdk(owner["access_token"])) == owner["account_id"]


def test_wrong_secret_is_invalid_client(make_app, consent, link, sdk, ca_certs, token_endpoint):
    app = make_app()
    flow = DropboxOAuth2FlowNoRedirect(app["app_key"], "wrong-secret", ca_certs=ca_certs)
    code = shown_code(consent(flow.start()))
    with pytest.raises(requests.HTTPError) as ei:
        flow.finish(code)
    assert_oauth_error(ei.value.response, "invalid_client")

    result = link(app)
    with pytest.raises(BadInputError) as ei:
        sdk(
            oauth2_refresh_token=result.refresh_token,
            app_key=app["app_key"],
            app_secret="wrong",
        ).users_get_current_account()
    assert "invalid_client" in ei.value.message, ei.value.message
    # The same through HTTP Basic, and with an unknown key.
    for auth in [(app["app_key"], "wrong"), ("no-such-app-key", app["app_secret"])]:
        r = token_endpoint(
            {"grant_type": "refresh_token", "refresh_token": result.refresh_token}, auth=auth
        )
        assert_oauth_error(r, "invalid_client")


def test_code_replay_revokes_first_exchange(
    make_app, consent, sdk, owner, token_endpoint, base_url
):
    app = make_app()
    url = authorize_url(base_url, app, token_access_type="offline")
    exchange = {"grant_type": "authorization_code", "code": shown_code(consent(url))}
    basic = (app["app_key"], app["app_secret"])

    first = token_endpoint(exchange, auth=basic)  # HTTP Basic client credentials
    assert first.status_code == 200, first.text
    tok = first.json()
    assert tok["token_type"].lower() == "bearer" and tok["expires_in"] == ACCESS_TOKEN_LIFETIME
    assert tok["account_id"] == owner["account_id"] and tok["uid"] and tok["refresh_token"], tok
    assert account_of(sdk(tok["access_token"])) == owner["account_id"]

    again = dict(exchange, client_id=app["app_key"], client_secret=app["app_secret"])
    assert_oauth_error(token_endpoint(again), "invalid_grant")  # form credentials
    assert_invalid_token(sdk(tok["access_token"]))
    refresh = {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
    r = token_endpoint(refresh, auth=basic)
    assert_oauth_error(r, "invalid_grant")


def test_pkce_wrong_verifier_is_invalid_grant(make_app, consent, ca_certs):
    app = make_app(public=True)
    flow = DropboxOAuth2FlowNoRedirect(app["app_key"], use_pkce=True, ca_certs=ca_certs)
    code = shown_code(consent(flow.start()))
    flow.code_verifier = "A" * 64  # well-formed, but not the one behind the challenge
    with pytest.raises(requests.HTTPError) as ei:
        flow.finish(code)
    assert_oauth_error(ei.value.response, "invalid_grant")


@pytest.mark.parametrize("at_exchange", [OTHER_REDIRECT_URI, None], ids=["other", "missing"])
def test_redirect_uri_mismatch_is_invalid_grant(
    make_app, consent, token_endpoint, base_url, at_exchange
):
    app = make_app(redirect_uris=[REDIRECT_URI, OTHER_REDIRECT_URI])
    url = authorize_url(base_url, app, redirect_uri=REDIRECT_URI)
    code = redirected_to(consent(url), REDIRECT_URI)["code"]
    data = {"grant_type": "authorization_code", "code": code}
    if at_exchange is not None:
        data["redirect_uri"] = at_exchange
    r = token_endpoint(data, auth=(app["app_key"], app["app_secret"]))
    assert_oauth_error(r, "invalid_grant")


def test_unregistered_redirect_uri_is_never_redirected_to(make_app, consent, base_url):
    app = make_app(redirect_uris=[REDIRECT_URI])
    evil = "http://localhost:8976/evil"
    url = authorize_url(base_url, app, redirect_uri=evil, state="s")
    r = consent(url)
    assert r.status_code == 400, (r.status_code, r.headers, r.text)
    assert "Location" not in r.headers, r.headers
    assert 'action="/oauth2/authorize"' not in r.text


# ---------------------------------------------------------------------------------------
# App folders, check/app, denial


def test_app_folder_app_sees_its_folder_as_root(make_app, link, sdk, owner):
    app = make_app(access="app_folder")
    dbx = sdk(link(app).access_token)
    full = sdk(owner["access_token"])

    md = dbx.files_upload(b"app data", "/x.txt")
    assert md.path_display == "/x.txt" and md.path_lower == "/x.txt", md
    entries = dbx.files_list_folder("").entries
    assert [(e.name, e.path_display) for e in entries] == [("x.txt", "/x.txt")]

    seen = full.files_get_metadata("/Apps/{}/x.txt".format(app["name"]))
    assert seen.path_display == "/Apps/{}/x.txt".format(app["name"]), seen
    assert seen.id == md.id
    assert body_of(full, seen.path_display) == b"app data"

    # Nothing outside the folder is reachable, by path or by id.
    outside = full.files_upload(b"private", "/outside-{}.txt".format(uuid.uuid4().hex[:8]))
    for ref in (outside.path_display, outside.id):
        with pytest.raises(ApiError) as ei:
            dbx.files_get_metadata(ref)
        err = ei.value.error
        assert err.is_path() and err.get_path().is_not_found(), (ref, err)


def test_check_app(make_app, sdk):
    app = make_app()
    good = sdk(app_key=app["app_key"], app_secret=app["app_secret"])
    assert good.check_app("hello ✓").result == "hello ✓"
    assert good.check_app("").result == ""
    for key, secret in [(app["app_key"], "wrong"), ("no-such-app-key", app["app_secret"])]:
        with pytest.raises(AuthError):
            sdk(app_key=key, app_secret=secret).check_app("hello")


def test_denied_consent_redirects_access_denied(make_app, consent, ca_certs):
    app = make_app(redirect_uris=[REDIRECT_URI])
    session = {}
    flow = DropboxOAuth2Flow(
        app["app_key"],
        REDIRECT_URI,
        session,
        "csrf",
        consumer_secret=app["app_secret"],
        ca_certs=ca_certs,
    )
    url = flow.start(url_state="denied")
    state = dict(parse_qsl(urlsplit(url).query))["state"]
    params = redirected_to(consent(url, decision="deny"), REDIRECT_URI)
    assert params["error"] == "access_denied", params
    assert params["state"] == state, params
    assert "code" not in params, params
    with pytest.raises(NotApprovedException):
        flow.finish(params)


def test_consent_needs_the_form_csrf_and_session(make_app, browser, ca_certs, owner, base_url):
    app = make_app(redirect_uris=[REDIRECT_URI])
    url = authorize_url(base_url, app, redirect_uri=REDIRECT_URI)
    _, fields = open_consent(browser, url, owner["name"], PASSWORD)
    assert fields is not None
    target = base_url + "/oauth2/authorize"
    allow = dict(fields, decision="allow")

    forged = dict(allow, csrf="x" * len(fields["csrf"]))
    forged = browser.post(target, data=forged, allow_redirects=False)
    assert forged.status_code == 403, (forged.status_code, forged.text)
    assert "Location" not in forged.headers, forged.headers
    with new_browser(ca_certs) as stranger:  # the right form, but not the signed-in browser
        r = stranger.post(target, data=allow, allow_redirects=False)
    assert not r.headers.get("Location", "").startswith(REDIRECT_URI), r.headers
    assert 'action="/login"' in r.text, (r.status_code, r.text)

    r = browser.post(target, data=allow, allow_redirects=False)
    assert redirected_to(r, REDIRECT_URI)["code"]


def test_wrong_password_does_not_sign_in(make_app, browser, owner, base_url):
    app = make_app()
    url = authorize_url(base_url, app)
    fields = _form_fields(browser.get(url).text, "/login")
    fields.update(login=owner["name"], password="not-" + PASSWORD)
    r = browser.post(base_url + "/login", data=fields, allow_redirects=False)
    assert r.status_code == 401, (r.status_code, r.text)
    assert 'action="/login"' in r.text
    r = browser.get(url)
    assert 'action="/login"' in r.text and 'action="/oauth2/authorize"' not in r.text, r.text
