"""The official Dropbox JavaScript SDK (npm `dropbox`, pinned in js/package.json) against the
server: js/sdk_calls.mjs makes the calls under Node and prints a JSON line per call; these
tests run it and fail with its output if any call failed.

The client is configured as a user would: `new Dropbox({accessToken, domain: 'HOST:PORT',
domainDelimiter: ''})` (every route then goes to https://HOST:PORT/2/...), Node trusting
the server's CA through NODE_EXTRA_CA_CERTS. In scale-out mode the script's upload and
download calls go to the second server (a second client with the content host as domain).
conformance/run.sh installs js/node_modules with `npm ci` when js/package-lock.json changes.
"""

import json
import os
import shutil
import subprocess
import threading
import uuid

import pytest
import requests

from test_oauth import approve, new_browser, redirected_to

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "js")
SCRIPT = os.path.join(JS_DIR, "sdk_calls.mjs")
REDIRECT_URI = "http://localhost:8976/js/callback"  # registered; never listened on
TIMEOUT = 120


@pytest.fixture(scope="module")
def node():
    path = os.environ.get("CUBBY_NODE") or shutil.which("node")
    assert path, "node (20 or later) is needed for the JavaScript SDK tests; set CUBBY_NODE"
    assert os.path.isfile(os.path.join(JS_DIR, "node_modules", "dropbox", "package.json")), (
        "conformance/js/node_modules is missing: run the suite through conformance/run.sh "
        "(it runs `npm ci` there)"
    )
    return path


def node_env(server, **extra):
    env = dict(os.environ)
    env.update(
        NODE_EXTRA_CA_CERTS=server.ca_path,
        CUBBY_API_HOST=server.host,
        # The second server in scale-out mode (conftest), else the same host.
        CUBBY_CONTENT_HOST=os.environ.get("DROPBOX_API_CONTENT_HOST", server.host),
    )
    env.update(extra)
    return env


def report(proc_output, returncode=None):
    """The script's JSON lines, failures first, for an assertion message."""
    lines = [line for line in proc_output.splitlines() if line.strip()]
    bad = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if rec.get("ok") is False:
            bad.append(json.dumps(rec, indent=1, ensure_ascii=False))
    return "exit status {}\nFAILED CALLS:\n{}\n\nALL OUTPUT:\n{}".format(
        returncode, "\n".join(bad) or "(none)", "\n".join(lines)
    )


def summary_of(output):
    for line in reversed(output.splitlines()):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("summary"):
            return rec
    return None


def test_api_calls(node, server, alice, bob):
    r = subprocess.run(
        [node, SCRIPT, "api"],
        cwd=JS_DIR,
        env=node_env(
            server,
            CUBBY_TOKEN=alice["access_token"],
            CUBBY_ACCOUNT_ID=alice["account_id"],
            CUBBY_EMAIL=alice["email"],
            CUBBY_OTHER_TOKEN=bob["access_token"],
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    out = r.stdout + ("\nstderr:\n" + r.stderr if r.stderr.strip() else "")
    print(out)  # shown by pytest -rP
    s = summary_of(r.stdout)
    assert r.returncode == 0 and s and s["failed"] == 0, report(out, r.returncode)
    assert s["passed"] >= 45, report(out, r.returncode)
    # Scale-out: uploads and downloads went to the second server, the rest to the first.
    content_host = os.environ.get("DROPBOX_API_CONTENT_HOST", server.host)
    assert set(s["requests_by_host"]) == {server.host, content_host}, s


PASSWORD = "js-Pa55word-" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def js_user(server):
    name = "js-" + uuid.uuid4().hex[:8]
    user = server.admin("user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert user.get("account_id"), user
    return user


@pytest.fixture(scope="module")
def public_app(server):
    name = "js-sdk-" + uuid.uuid4().hex[:8]
    app = server.admin(
        "app", "add", name, "--access", "full", "--public", "--redirect-uri", REDIRECT_URI
    )
    assert app.get("app_key") and app.get("app_secret") is None, app
    return app


def test_pkce_code_flow_and_refresh(node, server, js_user, public_app, ca_certs):
    """DropboxAuth: getAuthenticationUrl (PKCE, offline) -> the consent page, answered here
    -> getAccessTokenFromCode -> calls -> refreshes (forced by an expired date, and down-scoped)
    -> auth/token/revoke. The SDK's OAuth hosts (meta-HOST, api-HOST) are mapped back to the
    server by the script's fetch wrapper, and here for the authorize URL."""
    proc = subprocess.Popen(
        [node, SCRIPT, "oauth"],
        cwd=JS_DIR,
        env=node_env(
            server,
            CUBBY_APP_KEY=public_app["app_key"],
            CUBBY_REDIRECT_URI=REDIRECT_URI,
            CUBBY_ACCOUNT_ID=js_user["account_id"],
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(TIMEOUT, proc.kill)
    watchdog.start()
    lines = []
    try:
        url = None
        for line in proc.stdout:
            lines.append(line)
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "authorize_url" in rec:
                url = rec["authorize_url"]
                break
        if url is not None:
            answer = consent(url, server, js_user, ca_certs)
            proc.stdin.write(json.dumps(answer) + "\n")
            proc.stdin.flush()
        rest, err = proc.communicate()  # closes stdin: the script stops waiting for a code
        lines.append(rest)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + ("\nstderr:\n" + err if err.strip() else "")
    print(out)  # shown by pytest -rP
    s = summary_of("".join(lines))
    assert proc.returncode == 0 and s and s["failed"] == 0, report(out, proc.returncode)
    assert url is not None, report(out, proc.returncode)


def consent(url, server, user, ca_certs):
    """Signs in and allows on the authorize page the SDK's URL names; returns {code, state}
    from the redirect, or {error} (the script reports it)."""
    sdk_host = "https://meta-{}/".format(server.host)
    if not url.startswith(sdk_host):
        return {"error": "unexpected authorize URL {}".format(url)}
    # The SDK does not encode the parameters (the scopes are joined with spaces): open the
    # URL as a browser would send it.
    url = requests.Request("GET", server.base_url + "/" + url[len(sdk_host) :]).prepare().url
    browser = new_browser(ca_certs)
    try:
        resp = approve(browser, url, user["name"], PASSWORD)
        params = redirected_to(resp, REDIRECT_URI)
        return {"code": params.get("code"), "state": params.get("state")}
    except AssertionError as e:
        return {"error": "consent failed: {}".format(e)}
    finally:
        browser.close()
