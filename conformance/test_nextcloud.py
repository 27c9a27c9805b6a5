"""Nextcloud's command-line sync client (Debian's nextcloud-desktop-cmd, `nextcloudcmd`)
syncing a folder with Cubby both ways, signed in with an app password: what the client
creates, edits, renames and deletes arrives on the server, what the API does arrives in the
folder, a file changed on both sides keeps both versions, a second run with nothing changed
transfers nothing, and a large file goes through."""

import datetime
import hashlib
import os
import shutil
import subprocess

import dropbox
import pytest

from conftest import HTTP_PORT
from test_webdav import DavUser

NEXTCLOUDCMD = shutil.which("nextcloudcmd")
SYNC_TIMEOUT = 180


@pytest.fixture
def nc(server, ca_certs, tmp_path):
    if not NEXTCLOUDCMD:
        pytest.fail("nextcloudcmd is not installed (scripts/test installs Debian's package)")
    user = DavUser(server, ca_certs)
    local = tmp_path / "local"
    local.mkdir()
    logs = []

    def sync():
        try:
            r = subprocess.run(
            [
                NEXTCLOUDCMD,
                "--non-interactive",
                "-u",
                user.name,
                "-p",
                user.password,
                str(local),
                "http://127.0.0.1:{}".format(HTTP_PORT),
            ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=SYNC_TIMEOUT,
            )
        except subprocess.TimeoutExpired as e:
            out = (e.stderr or b"").decode(errors="replace")
            pytest.fail("nextcloudcmd did not finish:\n" + out[-6000:])
        logs.append(r.stdout + r.stderr)
        # Kept beside the test's files for a look after a failure.
        (tmp_path / "sync-{}.log".format(len(logs))).write_text(logs[-1])
        assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
        return r.stdout + r.stderr

    user.local = local
    user.sync = sync
    return user


def transfers(log):
    """Files the client sent or fetched in one run."""
    return [
        l
        for l in log.splitlines()
        if "Starting CSyncEnums::CSYNC_INSTRUCTION" in l
        and ("PropagateUpload" in l or "PropagateDownload" in l)
    ]


def remote(user, path):
    return user.dbx.files_download(path)[1].content


def exists(user, path):
    try:
        user.dbx.files_get_metadata(path)
        return True
    except Exception:
        return False


def test_nextcloudcmd_syncs_both_ways_and_keeps_both_sides_of_a_conflict(nc):
    local = nc.local
    # Files no step touches: a round where every file changes makes the client stop and ask
    # (its guard against a server that lost everything), which nothing answers here.
    for name in ("keep-1.txt", "keep-2.txt", "keep-3.txt"):
        (local / name).write_bytes(name.encode())
    (local / "a.txt").write_bytes(b"alpha\n")
    (local / "sub").mkdir()
    (local / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (local / "Fotos").mkdir()
    (local / "Fotos" / "café.txt").write_bytes("crème\n".encode())
    nc.sync()
    assert remote(nc, "/a.txt") == b"alpha\n"
    assert remote(nc, "/sub/b.bin") == (local / "sub" / "b.bin").read_bytes()
    assert remote(nc, "/Fotos/café.txt") == "crème\n".encode()

    # Nothing changed: nothing moves.
    assert transfers(nc.sync()) == []

    # Changes through the API arrive in the folder.
    nc.dbx.files_upload(b"from the api\n", "/r.txt")
    nc.dbx.files_upload(b"alpha, edited remotely\n", "/a.txt", mode=dropbox.files.WriteMode.overwrite)
    nc.dbx.files_move_v2("/sub/b.bin", "/sub/c.bin")
    nc.dbx.files_delete_v2("/Fotos/café.txt")
    nc.sync()
    assert (local / "r.txt").read_bytes() == b"from the api\n"
    assert (local / "a.txt").read_bytes() == b"alpha, edited remotely\n"
    assert (local / "sub" / "c.bin").exists() and not (local / "sub" / "b.bin").exists()
    assert not (local / "Fotos" / "café.txt").exists()

    # Changes in the folder arrive on the server, as revisions.
    (local / "r.txt").write_bytes(b"edited locally\n")
    os.rename(local / "a.txt", local / "a2.txt")
    os.remove(local / "sub" / "c.bin")
    nc.sync()
    assert remote(nc, "/r.txt") == b"edited locally\n"
    assert len(nc.dbx.files_list_revisions("/r.txt").entries) == 2
    assert remote(nc, "/a2.txt") == b"alpha, edited remotely\n"
    assert not exists(nc, "/a.txt")
    assert not exists(nc, "/sub/c.bin")

    # Both sides change one file: both versions are kept.
    # (An hour apart: with equal sizes and times to the second, and no checksum from the
    # server, the client takes the two for one content; see docs/decisions.md.)
    an_hour_ago = datetime.datetime.utcnow().replace(microsecond=0) - datetime.timedelta(hours=1)
    nc.dbx.files_upload(
        b"server side\n",
        "/r.txt",
        mode=dropbox.files.WriteMode.overwrite,
        client_modified=an_hour_ago,
    )
    (local / "r.txt").write_bytes(b"client side\n")
    log = nc.sync()
    contents = {p.read_bytes() for p in local.iterdir() if p.name.startswith("r")}
    assert b"server side\n" in contents and b"client side\n" in contents, (contents, log[-8000:])
    assert remote(nc, "/r.txt") in (b"server side\n", b"client side\n")


def test_nextcloudcmd_sends_a_large_file_whole(nc):
    big = nc.local / "big.bin"
    with open(big, "wb") as f:
        for _ in range(105):
            f.write(os.urandom(1024 * 1024))
    log = nc.sync()
    # Through a chunked upload: the chunks, then the MOVE of `.file` onto the file.
    assert '"MKCOL" "http://127.0.0.1:{}/remote.php/dav/uploads/'.format(HTTP_PORT) in log
    assert "/.file\") FINISHED WITH STATUS \"OK\"" in log
    md = nc.dbx.files_get_metadata("/big.bin")
    assert md.size == 105 * 1024 * 1024
    h = hashlib.sha256()
    with open(big, "rb") as f:
        while True:
            block = f.read(4 * 1024 * 1024)
            if not block:
                break
            h.update(hashlib.sha256(block).digest())
    assert md.content_hash == h.hexdigest()
