"""WebDAV at /dav/, judged by clients we did not write: litmus (Debian's WebDAV test suite)
and rclone's WebDAV backend. Both sign in with an app password, as a person's devices do."""

import os
import random
import shutil
import subprocess
import sys
import uuid

import pytest

from conftest import HTTP_PORT, make_client

VENV_BIN = os.path.dirname(sys.executable)
LITMUS_SUITES = ["basic", "copymove", "props", "locks", "http"]


class DavUser:
    def __init__(self, server, ca_certs):
        self.name = "d" + uuid.uuid4().hex[:10]
        server.admin("user", "add", self.name)
        self.password = server.admin("app-password", "add", self.name, "test device")["password"]
        self.dbx = make_client(server.admin("token", self.name)["access_token"], ca_certs)
        self.url = "http://127.0.0.1:{}/dav/".format(HTTP_PORT)


@pytest.fixture
def dav_user(server, ca_certs):
    return DavUser(server, ca_certs)


def test_litmus_passes_every_test_of_its_five_suites(dav_user, tmp_path):
    litmus = shutil.which("litmus")
    assert litmus, "litmus is not installed (scripts/test installs Debian's package)"
    r = subprocess.run(
        [litmus, dav_user.url, dav_user.name, dav_user.password],
        cwd=tmp_path,
        env=dict(os.environ, TESTS=" ".join(LITMUS_SUITES)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    summaries = [l for l in r.stdout.splitlines() if "summary for" in l]
    assert len(summaries) == len(LITMUS_SUITES), r.stdout[-3000:]
    for line in summaries:
        assert " 0 failed" in line, r.stdout[-6000:]
    assert r.returncode == 0, r.stdout[-3000:]


def write_tree(root):
    """A tree of mixed files: empty, small, a few MiB, odd names, nested folders."""
    rng = random.Random(7)
    files = {
        "empty.txt": b"",
        "hello.txt": b"hello, world\n",
        "Fotos/Urlaub 2026/strand.jpg": bytes(rng.getrandbits(8) for _ in range(300_000)),
        "Fotos/Urlaub 2026/café & crème.txt": "äöü ß 東京\n".encode(),
        "code/src/main.rs": b"fn main() {}\n" * 200,
        "big/archive.bin": os.urandom(9 * 1024 * 1024 + 123),
    }
    for i in range(40):
        files["many/file-{:02}.dat".format(i)] = os.urandom(rng.randrange(1, 20_000))
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def rclone(dav_user, *args):
    exe = os.path.join(VENV_BIN, "rclone")
    obscured = subprocess.run(
        [exe, "obscure", dav_user.password], capture_output=True, text=True, check=True
    ).stdout.strip()
    cmd = [
        exe,
        *args,
        "--webdav-url",
        dav_user.url,
        "--webdav-user",
        dav_user.name,
        "--webdav-pass",
        obscured,
        "--config",
        os.devnull,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "{}\n{}\n{}".format(" ".join(args), r.stdout, r.stderr[-4000:])
    return r


def test_rclone_copies_a_tree_up_and_down_and_finds_no_difference(dav_user, tmp_path):
    up = tmp_path / "up"
    files = write_tree(up)
    rclone(dav_user, "copy", str(up), ":webdav:backup")
    rclone(dav_user, "check", str(up), ":webdav:backup", "--download")
    # One store: the API sees what WebDAV wrote, byte for byte.
    md, resp = dav_user.dbx.files_download("/backup/Fotos/Urlaub 2026/café & crème.txt")
    assert resp.content == files["Fotos/Urlaub 2026/café & crème.txt"]
    assert md.size == len(files["Fotos/Urlaub 2026/café & crème.txt"])
    # And down again.
    down = tmp_path / "down"
    rclone(dav_user, "copy", ":webdav:backup", str(down))
    for rel, data in files.items():
        assert (down / rel).read_bytes() == data, rel
    rclone(dav_user, "check", str(down), ":webdav:backup", "--download")
    # A change on one side is a difference the other side's check finds.
    (up / "hello.txt").write_bytes(b"changed\n")
    rclone(dav_user, "sync", str(up), ":webdav:backup")
    md, resp = dav_user.dbx.files_download("/backup/hello.txt")
    assert resp.content == b"changed\n"
    revs = dav_user.dbx.files_list_revisions("/backup/hello.txt").entries
    assert len(revs) == 2, "the old version is kept, as for any other write"


def test_a_person_makes_an_app_password_on_the_account_page_uses_it_and_revokes_it(
    web_page, server
):
    """In Chromium: the account page makes a read-only password limited to a folder, shows
    it once with the address to use, and revokes it; a WebDAV client is let in and refused
    accordingly."""
    import requests

    page, user = web_page, web_page.user
    user.dbx.files_upload(b"soup", "/Recipes/soup.txt")
    user.dbx.files_upload(b"private", "/diary.txt")
    page.goto("/account")
    page.fill("#ap-name", "Kitchen tablet")
    page.fill("#ap-folder", "/recipes")
    page.check("input[name=read_only]")
    with page.expect_navigation():
        page.click("text=Make app password")
    password = page.inner_text("#app-password").strip()
    address = page.inner_text("#dav-address").strip()
    assert address.endswith("/dav/"), address
    row = page.locator("tr.app-password", has_text="Kitchen tablet")
    assert "/Recipes" in row.inner_text() and "read only" in row.inner_text()

    url = "http://127.0.0.1:{}/dav".format(HTTP_PORT)
    auth = (user.name, password)
    r = requests.get(url + "/soup.txt", auth=auth, timeout=30)
    assert r.status_code == 200 and r.content == b"soup"
    # Limited to /Recipes: the diary beside it is out of reach, and nothing can change.
    assert requests.get(url + "/diary.txt", auth=auth, timeout=30).status_code == 404
    assert requests.put(url + "/new.txt", data=b"x", auth=auth, timeout=30).status_code == 403
    # Never shown again: a reload lists it without the password.
    page.goto("/account")
    assert password not in page.content()

    with page.expect_navigation():
        page.locator("tr.app-password", has_text="Kitchen tablet").locator("button").click()
    assert "Revoked" in page.inner_text("#notice")
    assert requests.get(url + "/soup.txt", auth=auth, timeout=30).status_code == 401
