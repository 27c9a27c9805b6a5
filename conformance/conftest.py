"""Black-box conformance harness: starts a real `cubby serve` and drives it
with the official Dropbox Python SDK (dropbox==12.2.4).

The SDK reads its host names from the environment when `dropbox.session` is
first imported, so the ports are chosen and the variables set at import time
of this module, before anything imports `dropbox`.
"""

import os
import struct
import sys
import zlib

from cubby_server import Server, cubby_bin, free_port


assert "dropbox" not in sys.modules, "dropbox was imported before conftest set the hosts"

HTTPS_PORT = free_port()
HTTP_PORT = free_port()
while HTTP_PORT == HTTPS_PORT:
    HTTP_PORT = free_port()

HOST = "localhost:{}".format(HTTPS_PORT)
for _var in (
    "DROPBOX_API_HOST",
    "DROPBOX_API_CONTENT_HOST",
    "DROPBOX_API_NOTIFY_HOST",
    "DROPBOX_WEB_HOST",
):
    os.environ[_var] = HOST

# Scale-out mode (CUBBY_METADATA and CUBBY_BLOCKS set, e.g. by scripts/test): a second
# server shares PostgreSQL and S3 with the first, and the SDK's content host points at it.
# Uploads and downloads then go through server B while RPCs and longpolls go through A, so
# every test crosses servers (a longpoll on A is woken by an upload through B).
SCALE_OUT = bool(os.environ.get("CUBBY_METADATA"))
CONTENT_HOST = HOST
if SCALE_OUT:
    CONTENT_HTTPS_PORT = free_port()
    CONTENT_HTTP_PORT = free_port()
    CONTENT_HOST = "localhost:{}".format(CONTENT_HTTPS_PORT)
    os.environ["DROPBOX_API_CONTENT_HOST"] = CONTENT_HOST
# Would override the SDK's ca_certs inside requests.
os.environ.pop("REQUESTS_CA_BUNDLE", None)
os.environ.pop("CURL_CA_BUNDLE", None)
# Never send loopback traffic through a proxy.
_no_proxy = "localhost,127.0.0.1"
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(x for x in (os.environ.get(_var), _no_proxy) if x)

import uuid  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

import dropbox  # noqa: E402
from dropbox import session as _dbx_session  # noqa: E402

assert _dbx_session.API_HOST == HOST, _dbx_session.API_HOST
assert _dbx_session.API_CONTENT_HOST == CONTENT_HOST
assert _dbx_session.API_NOTIFICATION_HOST == HOST


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    bin_path = cubby_bin()
    if not os.access(bin_path, os.X_OK):
        pytest.exit("cubby binary not found or not executable: {}".format(bin_path), returncode=2)
    root = tmp_path_factory.mktemp("cubby")
    data = root / "data"
    data.mkdir()
    srv = Server(bin_path, str(data), str(root / "server.log"), HTTPS_PORT, HTTP_PORT)
    srv.start()
    servers = [srv]
    if SCALE_OUT:
        # Same data folder: the second server serves the certificate of the first's CA.
        second = Server(
            bin_path, str(data), str(root / "server-b.log"), CONTENT_HTTPS_PORT, CONTENT_HTTP_PORT
        )
        second.start()
        servers.append(second)
    yield srv
    for s in servers:
        alive_before = s.proc.poll() is None
        rc = s.stop()
        assert alive_before, "server died during the run:\n" + s.log_text()
        assert rc is not None, "server did not exit within 10 s of SIGTERM:\n" + s.log_text()
        assert rc == 0, "server exited with {} after SIGTERM:\n{}".format(rc, s.log_text())


@pytest.fixture(scope="session")
def ca_certs(server):
    return server.ca_path


@pytest.fixture(scope="session")
def alice(server):
    return server.add_user("alice")


@pytest.fixture(scope="session")
def bob(server):
    return server.add_user("bob")


def make_client(token, ca_certs):
    # No 5xx retries: a 5xx is a server bug and should fail fast.
    return dropbox.Dropbox(
        token,
        ca_certs=ca_certs,
        max_retries_on_error=0,
        max_retries_on_rate_limit=1,
        timeout=60,
    )


@pytest.fixture(scope="session")
def new_client(ca_certs):
    """Factory: a fresh Dropbox client (own connection pool) for a token."""
    return lambda token: make_client(token, ca_certs)


@pytest.fixture(scope="session")
def dbx(alice, ca_certs):
    return make_client(alice["access_token"], ca_certs)


@pytest.fixture(scope="session")
def dbx_other(alice, ca_certs):
    """A second, independent client for the same user (alice)."""
    return make_client(alice["access_token"], ca_certs)


@pytest.fixture(scope="session")
def dbx2(bob, ca_certs):
    return make_client(bob["access_token"], ca_certs)


@pytest.fixture
def base():
    """A unique, not yet created folder path for one test."""
    return "/conf-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def base_url(server):
    return server.base_url


@pytest.fixture(scope="session")
def http(ca_certs):
    """A plain requests session that trusts the server's CA."""
    s = requests.Session()
    s.verify = ca_certs
    s.trust_env = False
    yield s
    s.close()


@pytest.fixture(scope="session")
def auth_headers(alice):
    return {"Authorization": "Bearer " + alice["access_token"]}


def pytest_configure(config):
    # The v1 routes (create_folder, delete) are exercised on purpose.
    config.addinivalue_line("filterwarnings", "ignore:.* is deprecated:DeprecationWarning")


# ---------------------------------------------------------------------------------------
# The web app in a real browser (test_web_*.py): Debian's Chromium through Playwright.

WEB_CHROMIUM = os.environ.get("CUBBY_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which a closed network refuses.
WEB_CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every wait is explicit and bounded.
WEB_TIMEOUT_MS = 15_000
WEB_PASSWORD = "web-app-Pa55word"


@pytest.fixture(scope="session")
def web_browser():
    if not os.access(WEB_CHROMIUM, os.X_OK):
        pytest.fail(
            "Chromium not found at {}: the web app's tests need Debian's chromium "
            "(scripts/test installs it) or CUBBY_CHROMIUM set".format(WEB_CHROMIUM),
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=WEB_CHROMIUM, headless=True, args=WEB_CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    yield b
    try:
        b.close()
    finally:
        pw.stop()


def png(w, h):
    """A small gradient PNG (for thumbnails and previews)."""
    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // w, y * 255 // h, 160)) for x in range(w)) for y in range(h)
    )

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class WebUser:
    """A fresh account with a password and a bearer token (for setting up files with the SDK)."""

    def __init__(self, server, ca_certs):
        self.name = "w" + uuid.uuid4().hex[:10]
        u = server.admin("user", "add", self.name, "--password-stdin", stdin=WEB_PASSWORD + "\n")
        self.account_id = u["account_id"]
        self.email = u["email"]
        self.password = WEB_PASSWORD
        self.token = server.admin("token", self.name)["access_token"]
        self.dbx = make_client(self.token, ca_certs)


@pytest.fixture
def web_user(server, ca_certs):
    """A new account for one test."""
    return WebUser(server, ca_certs)


def web_sign_in(browser, server, user, viewport=None, color_scheme="light"):
    """A new browser context signed in as `user` through /login; returns (context, page) with
    the page on the app at /home."""
    ctx = browser.new_context(
        ignore_https_errors=True,
        base_url=server.base_url,
        viewport=viewport or {"width": 1280, "height": 800},
        color_scheme=color_scheme,
        accept_downloads=True,
    )
    ctx.set_default_timeout(WEB_TIMEOUT_MS)
    page = ctx.new_page()
    page.goto("/login?next=/home")
    page.fill("#login", user.name)
    page.fill("#password", user.password)
    with page.expect_navigation():
        page.click("#sign-in")
    page.wait_for_selector("[data-app-ready]")
    return ctx, page


@pytest.fixture
def web_page(web_browser, server, web_user):
    """A page signed in as a new user, on the app at /home; `page.user` is the user."""
    ctx, page = web_sign_in(web_browser, server, web_user)
    page.user = web_user
    yield page
    ctx.close()
