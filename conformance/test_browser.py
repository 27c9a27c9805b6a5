"""End to end in a real browser: headless Chromium (Debian's, driven by Playwright) signs in,
creates an app in the app console, generates a token there, and runs the OAuth 2 code flow
through the consent page to a redirect URI served by this test.

Needs /usr/bin/chromium (scripts/test installs Debian's chromium); without it the tests
fail rather than skip. CUBBY_CHROMIUM names another Chromium binary (see conftest.py).
"""

import http.server
import json
import queue
import threading
import urllib.parse
import uuid

import pytest

# Every wait is explicit and bounded; a page of this server takes milliseconds.
TIMEOUT_MS = 15_000
PASSWORD = "browser-test-Pa55word"


@pytest.fixture(scope="module")
def browser(web_browser):
    """The session's one Chromium (conftest.py): Playwright's sync API runs one instance at a
    time per thread."""
    return web_browser


class _Callback(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a browser that goes away mid-answer is no test failure


@pytest.fixture(scope="module")
def callback():
    """A local redirect URI: records each request's query in a queue and answers 200."""
    got = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            if u.path != "/cb":  # the browser's own requests, /favicon.ico
                self.send_error(404)
                return
            got.put(urllib.parse.parse_qs(u.query, keep_blank_values=True))
            body = b"<!doctype html><link rel=icon href='data:,'><title>callback</title><p id=cb>received</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = _Callback(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.uri = "http://127.0.0.1:{}/cb".format(srv.server_address[1])
    srv.got = got
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(5)


def at(cb):
    """A URL predicate: the redirect URI with a query."""
    return lambda url: url.startswith(cb.uri + "?")


def next_callback(cb):
    try:
        query = cb.got.get(timeout=TIMEOUT_MS / 1000)
    except queue.Empty:
        pytest.fail("the redirect URI was not called within {} s".format(TIMEOUT_MS / 1000))
    assert cb.got.empty(), "the redirect URI was called more than once"
    return {k: v[0] for k, v in query.items()}


@pytest.fixture(scope="module")
def user(server):
    name = "web-" + uuid.uuid4().hex[:8]
    u = server.admin("user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert u.get("name") == name, u
    assert "password" not in u, u
    return u


@pytest.fixture(scope="module")
def context(browser, server):
    ctx = browser.new_context(ignore_https_errors=True, base_url=server.base_url)
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def page(context):
    p = context.new_page()
    yield p
    p.close()


def api(http, server, token, route, arg=None):
    r = http.post(
        server.base_url + "/2/" + route,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
        data="null" if arg is None else json.dumps(arg),
        timeout=30,
    )
    assert r.status_code == 200, (route, r.status_code, r.text)
    return r.json()


@pytest.fixture(scope="module")
def app(page, user, callback):
    """Signs in through /login, then registers an app-folder app in the console; the app's
    key, secret and name, and a token generated on the console."""
    page.goto("/login")
    page.fill("#login", user["name"])
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("#sign-in")
    page.wait_for_selector("#user")
    assert page.text_content("#user") == user["name"]

    page.goto("/apps")
    page.wait_for_selector("#create-app")
    assert page.title() == "App console · Cubby"
    name = "BrowserApp" + uuid.uuid4().hex[:6]
    page.fill("#name", name)
    page.check("input[name=access][value=app_folder]")
    page.fill("#redirect_uris", callback.uri)
    assert not page.is_checked("input[name=public]")
    with page.expect_navigation():
        page.click("#create")
    page.wait_for_selector("#created")
    key = page.text_content("#app-key").strip()
    secret = page.text_content("#app-secret").strip()
    assert key and secret and key != secret
    row = page.locator("tr.app", has=page.locator("code.app-key", has_text=key))
    assert row.count() == 1
    assert "App folder" in row.inner_text()
    assert callback.uri in row.inner_text()

    with page.expect_navigation():
        row.get_by_role("button", name="Generate access token").click()
    page.wait_for_selector("#access-token")
    token = page.text_content("#access-token").strip()
    assert token
    return {"key": key, "secret": secret, "name": name, "console_token": token}


def test_console_token_works(app, user, http, server):
    acct = api(http, server, app["console_token"], "users/get_current_account")
    assert acct["account_id"] == user["account_id"]
    assert acct["email"] == user["email"]


def authorize_url(server, app, redirect_uri, state):
    return server.base_url + "/oauth2/authorize?" + urllib.parse.urlencode(
        {
            "client_id": app["key"],
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
            "token_access_type": "offline",
        }
    )


def open_consent(page, server, app, redirect_uri, state):
    page.goto(authorize_url(server, app, redirect_uri, state))
    page.wait_for_selector("#allow")
    assert page.text_content("#app-name") == app["name"]
    return page


def test_authorize_allow_code_flow(page, app, user, callback, http, server, tmp_path):
    state = "st-" + uuid.uuid4().hex
    open_consent(page, server, app, callback.uri, state)
    scopes = page.locator("#scopes li")
    assert scopes.count() > 0
    assert "files.content.write" in page.inner_text("#scopes")
    assert "Apps/" + app["name"] in page.inner_text("main")
    shot = tmp_path / "consent.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0

    with page.expect_navigation(url=at(callback)):
        page.click("#allow")
    q = next_callback(callback)
    page.wait_for_selector("#cb")
    assert q.get("state") == state, q
    assert "error" not in q, q
    code = q.get("code")
    assert code, q

    r = http.post(
        server.base_url + "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app["key"],
            "client_secret": app["secret"],
            "redirect_uri": callback.uri,
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "bearer"
    assert tok["account_id"] == user["account_id"]
    assert tok["uid"]
    assert tok["refresh_token"]
    assert 0 < tok["expires_in"] <= 14400
    access = tok["access_token"]
    assert access != app["console_token"]

    acct = api(http, server, access, "users/get_current_account")
    assert acct["account_id"] == user["account_id"]
    # An app-folder token sees its own folder as the root: empty for a new app, and a file
    # uploaded with the console's token (same app) is listed there.
    listed = api(http, server, access, "files/list_folder", {"path": ""})
    assert listed["entries"] == []
    up = http.post(
        server.base_url + "/2/files/upload",
        headers={
            "Authorization": "Bearer " + app["console_token"],
            "Content-Type": "application/octet-stream",
            "Dropbox-API-Arg": '{"path": "/hello.txt", "mode": "add"}',
        },
        data=b"hello from the console token",
        timeout=30,
    )
    assert up.status_code == 200, up.text
    assert up.json()["path_display"] == "/hello.txt"
    listed = api(http, server, access, "files/list_folder", {"path": ""})
    assert [e["path_display"] for e in listed["entries"]] == ["/hello.txt"]

    # The code works once.
    again = http.post(
        server.base_url + "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app["key"],
            "client_secret": app["secret"],
            "redirect_uri": callback.uri,
        },
        timeout=30,
    )
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_grant"


def test_authorize_deny(page, app, callback, server):
    state = "deny-" + uuid.uuid4().hex
    open_consent(page, server, app, callback.uri, state)
    with page.expect_navigation(url=at(callback)):
        page.click("#deny")
    q = next_callback(callback)
    assert q.get("error") == "access_denied", q
    assert q.get("state") == state, q
    assert "code" not in q, q


def test_authorize_signs_in_first(browser, app, user, callback, server):
    """A fresh browser (no session) is sent through sign-in and lands on the consent page."""
    ctx = browser.new_context(ignore_https_errors=True, base_url=server.base_url)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        p = ctx.new_page()
        state = "fresh-" + uuid.uuid4().hex
        p.goto(authorize_url(server, app, callback.uri, state))
        p.wait_for_selector("#sign-in")
        p.fill("#login", user["email"])
        p.fill("#password", PASSWORD)
        with p.expect_navigation():
            p.click("#sign-in")
        p.wait_for_selector("#allow")
        assert p.text_content("#app-name") == app["name"]
        with p.expect_navigation(url=at(callback)):
            p.click("#allow")
        q = next_callback(callback)
        assert q.get("state") == state and q.get("code"), q
    finally:
        ctx.close()
