"""The official Dropbox Python SDK's own integration suite, test/integration/test_dropbox.py
from the dropbox 12.2.4 sdist (fetched and sha256-checked by run.sh, run unmodified), against
this Cubby: a scoped app with a secret, a user's refresh token for it, and a shared link to a
JPEG, handed to the suite in the environment variables it reads. sdk_suite_plugin.py makes
it trust Cubby's CA where it trusts Dropbox's (see there)."""

import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET

import dropbox
import pytest
from dropbox import sharing

from cubby_helpers import sdk_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = "test/integration/test_dropbox.py"

# Cubby has no Dropbox Business team API (team/groups/list, team/members/list, team-linked
# tokens and Dropbox-API-Select-User), so there are no SCOPED_TEAM_* credentials to give;
# every other test of the file runs and must pass.
DESELECTED = SUITE + "::TestDropboxTeam"


@pytest.fixture(scope="module")
def sdist():
    d = os.environ.get("CUBBY_DROPBOX_SDIST")
    if not d:
        pytest.fail("CUBBY_DROPBOX_SDIST is not set: run the suite through conformance/run.sh")
    assert os.path.isfile(os.path.join(d, SUITE)), d
    return d


def test_the_sdk_integration_suite_passes(server, ca_certs, sdist, tmp_path):
    # A user, an app with a secret (all scopes), and the user's refresh token for it.
    name = "sdk-suite-" + uuid.uuid4().hex[:8]
    user = server.admin("user", "add", name)
    assert user.get("account_id"), user
    app = server.admin("app", "add", "sdk-suite-" + uuid.uuid4().hex[:8], "--access", "full")
    assert app.get("app_key") and app.get("app_secret"), app
    tok = server.admin("token", name, "--app", app["app_key"], "--offline")
    assert tok.get("refresh_token") and tok.get("access_token"), tok

    # A public shared link to a JPEG (test_multi_auth makes its thumbnail).
    jpeg = sdk_fixture("Costa Rican Frog.jpg")
    dbx = dropbox.Dropbox(tok["access_token"], ca_certs=ca_certs, max_retries_on_error=0)
    dbx.files_upload(jpeg, "/Shared/Costa Rican Frog.jpg")
    link = dbx.sharing_create_shared_link_with_settings(
        "/Shared/Costa Rican Frog.jpg",
        sharing.SharedLinkSettings(requested_visibility=sharing.RequestedVisibility.public),
    ).url

    env = dict(os.environ)
    env.update(
        {
            "SCOPED_USER_REFRESH_TOKEN": tok["refresh_token"],
            "SCOPED_USER_CLIENT_ID": app["app_key"],
            "SCOPED_USER_CLIENT_SECRET": app["app_secret"],
            "DROPBOX_SHARED_LINK": link,
            "CUBBY_CA_CERTS": ca_certs,
            "CUBBY_PINNED_CERTS": os.path.join(sdist, "test", "integration", "trusted-certs.crt"),
            "PYTHONPATH": os.pathsep.join(x for x in (HERE, env.get("PYTHONPATH")) if x),
        }
    )
    # The hosts (DROPBOX_API_HOST, ..._CONTENT_HOST, ..._NOTIFY_HOST, DROPBOX_WEB_HOST) are
    # already in the environment: conftest set them for this process.
    for var in ("DROPBOX_API_HOST", "DROPBOX_API_CONTENT_HOST", "DROPBOX_WEB_HOST"):
        assert env.get(var), var
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.pop(var, None)

    report = tmp_path / "sdk-suite.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        os.path.join(sdist, SUITE),
        "--rootdir",
        sdist,
        "-p",
        "sdk_suite_plugin",
        "-p",
        "no:cacheprovider",
        "--deselect",
        DESELECTED,
        "--junitxml",
        str(report),
        "-q",
        "-rfEs",
    ]
    # Not from the sdist's folder: its dropbox/ source tree would shadow the installed SDK.
    r = subprocess.run(
        cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out

    cases = {}
    for case in ET.parse(str(report)).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
        cases["{}::{}".format(case.get("classname"), case.get("name"))] = outcome
    assert cases and all(v == "passed" for v in cases.values()), (cases, out)
    # TestDropbox's 14 tests and test_bad_auth, each in both dbx_session parametrizations
    # (no-pinning, pinning): 30; test_default_oauth2_urls, test_bad_pins, test_bad_pins_session.
    assert len(cases) == 33, (sorted(cases), out)
    names = {k.rsplit(".", 1)[-1] for k in cases}
    for want in (
        "TestDropbox::test_multi_auth[no-pinning]",
        "TestDropbox::test_multi_auth[pinning]",
        "TestDropbox::test_app_auth[pinning]",
        "TestDropbox::test_path_root_err[no-pinning]",
        "test_dropbox::test_bad_pins",
    ):
        assert want in names, (want, sorted(names))
    assert not any("TestDropboxTeam" in k for k in cases), cases
