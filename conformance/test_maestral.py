"""Maestral (maestral==1.9.6 on dropbox==12.2.0), the open-source Dropbox sync client, syncing
a local folder with Cubby, unchanged: only the DROPBOX_*_HOST variables and Cubby's CA
(REQUESTS_CA_BUNDLE) tell it where to go.

Maestral is linked with its own app key (registered here as a public app) through `maestral
auth link` in a pseudo-terminal, the code coming from Cubby's sign-in and consent pages; its
daemon then runs for the whole module. Each test works in its own top-level folder and waits
(with a deadline) until Maestral is idle and the local folder, the server's tree (listed with
the official SDK as the same user) and the tree the test expects are all equal: names and
content hashes. The tests run in file order and build on each other (later ones list and
look back at earlier ones' folders); the last check the whole tree, `rebuild-index`, a link
with an admin-minted refresh token and `auth unlink`.

Maestral runs in its own virtualenv (.venv-maestral, see maestral_driver.py); its output and
log are attached to every failure.
"""

import os
import re
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

import dropbox
from dropbox import files
from dropbox.exceptions import ApiError, AuthError

from cubby_helpers import body_of, content_hash, list_all
from maestral_driver import LOCAL_IGNORED, MAESTRAL_APP_KEY, Maestral, ensure_venv
from test_oauth import approve, new_browser, shown_code

PASSWORD = "maestral-Pa55word-" + uuid.uuid4().hex[:6]
STEP = 60  # seconds any one sync step may take
IDLE = "Up to date"
MB = 1024 * 1024


# ---------------------------------------------------------------------------------------
# Trees


_hashes = {}


def local_tree(m, sub="", exclude=()):
    """{dropbox path: content hash or "folder"} of the local folder below `sub` (not `sub`
    itself), or None while it changes under us."""
    base = m.local_path(sub)
    tree = {}
    if not os.path.isdir(base):
        return tree
    try:
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d not in LOCAL_IGNORED]
            rel = os.path.relpath(dirpath, m.folder)
            prefix = "" if rel == "." else "/" + rel
            for d in dirnames:
                tree[prefix + "/" + d] = "folder"
            for f in filenames:
                if f in LOCAL_IGNORED:
                    continue
                p = os.path.join(dirpath, f)
                st = os.lstat(p)
                key = (p, st.st_ino, st.st_size, st.st_mtime_ns)
                h = _hashes.get(key)
                if h is None:
                    with open(p, "rb") as fh:
                        h = content_hash(fh.read())
                    _hashes[key] = h
                tree[prefix + "/" + f] = h
    except FileNotFoundError:
        return None
    return _without(tree, exclude)


def server_tree(dbx, sub="", exclude=()):
    """The same map of the server's tree below `sub`, listed with the SDK."""
    try:
        entries, _, _ = list_all(dbx, sub, recursive=True)
    except ApiError as e:
        err = e.error
        if err.is_path() and err.get_path().is_not_found():
            return {}
        raise
    tree = {}
    for e in entries:
        if isinstance(e, files.FolderMetadata):
            if e.path_lower != sub.lower():
                tree[e.path_display] = "folder"
        elif isinstance(e, files.FileMetadata):
            tree[e.path_display] = e.content_hash
    return _without(tree, exclude)


def _without(tree, exclude):
    ex = [x.lower() for x in exclude]
    return {
        k: v
        for k, v in tree.items()
        if not any(k.lower() == x or k.lower().startswith(x + "/") for x in ex)
    }


def expect(base, items):
    """The tree a test expects below `base`: items maps relative paths to bytes (a file)
    or None (a folder)."""
    return {
        base + "/" + rel: ("folder" if data is None else content_hash(data))
        for rel, data in items.items()
    }


def tree_diff(a, b, a_name, b_name):
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append("  {}: {}={} {}={}".format(k, a_name, a.get(k), b_name, b.get(k)))
    return "\n".join(lines) or "  (no difference)"


def sub_has_errors(sub, errors, text):
    """Whether `maestral status` lists a sync error below `sub`."""
    if not errors:
        return False
    if not sub:
        return True
    return sub.lower() in text.lower()


def wait_synced(m, dbx, sub, expected=None, check=None, exclude=(), timeout=STEP, what=""):
    """Polls until Maestral is idle with no sync error below `sub` and the local tree, the
    server's tree and `expected` (if given) agree below `sub`, and `check(local tree)` (if
    given) holds; twice in a row. Returns the tree; fails with both trees, Maestral's status
    and its log at the deadline."""
    deadline = time.monotonic() + timeout
    streak = 0
    local = remote = None
    status_text = ""
    while True:
        local = local_tree(m, sub, exclude)
        remote = server_tree(dbx, sub, exclude)
        ok = (
            local is not None
            and local == remote
            and (expected is None or local == expected)
            and (check is None or check(local))
        )
        if ok:
            status, errors, status_text = m.status()
            ok = status == IDLE and not sub_has_errors(sub, errors, status_text)
        streak = streak + 1 if ok else 0
        if streak >= 2:
            return local
        if time.monotonic() > deadline:
            status, errors, status_text = m.status()
            msg = [
                "{}: not in sync below {!r} within {} s".format(what or "sync", sub, timeout),
                "local vs server:\n" + tree_diff(local or {}, remote or {}, "local", "server"),
            ]
            if expected is not None:
                msg.append(
                    "local vs expected:\n" + tree_diff(local or {}, expected, "local", "expected")
                )
                msg.append(
                    "server vs expected:\n"
                    + tree_diff(remote or {}, expected, "server", "expected")
                )
            msg.append("maestral status:\n" + status_text)
            msg.append(m.logs())
            raise AssertionError("\n".join(msg))
        time.sleep(0.5)


def wait_for(cond, what, m, timeout=STEP):
    """Polls cond() until it is truthy; returns its value or fails with Maestral's log."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("{} within {} s\n{}".format(what, timeout, m.logs()))
        time.sleep(0.5)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def upload(dbx, path, data):
    return dbx.files_upload(data, path, mode=files.WriteMode.overwrite)


def exists_on_server(dbx, path):
    try:
        dbx.files_get_metadata(path)
        return True
    except ApiError as e:
        assert e.error.is_path() and e.error.get_path().is_not_found(), e.error
        return False


def ls_long(m, path, *flags):
    """{name: type} from `maestral ls -l PATH` (the short form prints nothing when its output
    is not a terminal: maestral 1.9.6 iterates its listing twice)."""
    out = m.out("ls", "-l", path, *flags)
    rows = {}
    for line in out.splitlines():
        mt = re.match(r"^\s*(.+?)\s+(file|folder|deleted|symlink)\s", line)
        if mt:
            rows[mt.group(1)] = mt.group(2)
    return rows


def finished_upload_sessions(http, hosts):
    """files/upload_session/finish requests answered 200, over every server (/metrics)."""
    n = 0
    for host in hosts:
        r = http.get("https://{}/metrics".format(host))
        assert r.status_code == 200, r.text
        for line in r.text.splitlines():
            if line.startswith(
                'cubby_http_requests_total{route="files/upload_session/finish",status="200"}'
            ):
                n += int(line.rsplit(" ", 1)[1])
    return n


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def maestral_exe():
    return ensure_venv()


@pytest.fixture(scope="module")
def account(server):
    name = "maestral-" + uuid.uuid4().hex[:8]
    user = server.admin("user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")
    assert user.get("name") == name and user.get("account_id"), user
    tok = server.admin("token", name)
    assert tok.get("access_token"), tok
    user["access_token"] = tok["access_token"]
    return user


@pytest.fixture(scope="module")
def maestral_app(server):
    app = server.admin(
        "app", "add", "Maestral", "--access", "full", "--key", MAESTRAL_APP_KEY, "--public"
    )
    assert app.get("app_key") == MAESTRAL_APP_KEY, app
    assert app.get("app_secret") is None, app
    return app


@pytest.fixture(scope="module")
def dbx(account, new_client):
    """The official SDK (the conformance venv's), as the same user as Maestral."""
    return new_client(account["access_token"])


SEED = {"seed/hello.txt": b"hello from the server\n", "seed/sub/deep.bin": os.urandom(70000)}


@pytest.fixture(scope="module")
def mae(maestral_exe, maestral_app, account, dbx, server, ca_certs, tmp_path_factory):
    """Maestral, linked through the consent page and syncing; the server had SEED before."""
    for rel, data in SEED.items():
        upload(dbx, "/" + rel, data)
    m = Maestral(maestral_exe, tmp_path_factory.mktemp("maestral"), server.ca_path)
    # No keyring daemon: the plaintext keyring of keyrings.alt (a file in XDG_DATA_HOME).
    m.configure(
        **{
            "auth.keyring": "keyrings.alt.file.PlaintextKeyring",
            "sync.path": m.folder,
            "app.notification_level": 100,  # no desktop notifications
            "app.log_level": 10,
            # No CPU throttling: below 100 % Maestral measures its CPU use for 0.1 s before
            # every single item it syncs.
            "sync.max_cpu_percent": 100.0,
        }
    )
    browser = new_browser(ca_certs)

    def consent(url):
        return shown_code(approve(browser, url, account["name"], PASSWORD))

    try:
        m.link_url, m.link_transcript = m.link(consent)
    finally:
        browser.close()
    m.start()
    try:
        yield m
    finally:
        m.shutdown()


# ---------------------------------------------------------------------------------------
# Tests, in order: each in its own top-level folder


def test_link_through_consent_page(mae, account, server):
    url = urlsplit(mae.link_url)
    assert url.netloc == os.environ["DROPBOX_WEB_HOST"], mae.link_url
    q = parse_qs(url.query)
    assert q["client_id"] == [MAESTRAL_APP_KEY], q
    assert q["token_access_type"] == ["offline"], q
    assert q["code_challenge_method"] == ["S256"], q
    assert "Linked to" in mae.link_transcript, mae.link_transcript

    out = mae.out("auth", "status")
    assert account["account_id"] in out, out
    # The refresh token went to the plaintext keyring, under Maestral's name.
    with open(mae.keyring_file) as f:
        assert "[Maestral]" in f.read()
    with open(mae.config_file) as f:
        assert "keyrings.alt.file.PlaintextKeyring" in f.read()


def test_initial_download(mae, dbx):
    wait_synced(
        mae, dbx, "", expect("", {"seed": None, "seed/sub": None, **SEED}), what="first sync"
    )
    with open(mae.local_path("/seed/hello.txt"), "rb") as f:
        assert f.read() == SEED["seed/hello.txt"]
    status, errors, text = mae.status()
    assert status == IDLE and errors == 0, text
    assert "maestral-" in text  # the account's e-mail address


def test_local_changes_reach_the_server(mae, dbx):
    base = "/Local side"
    d = mae.local_path(base)
    a1, a2, b, c = b"first version\n", b"second version, longer\n", os.urandom(3000), b"c\n"
    write(os.path.join(d, "a.txt"), a1)
    write(os.path.join(d, "Sub", "b.bin"), b)
    write(os.path.join(d, "Gone", "c.txt"), c)
    os.makedirs(os.path.join(d, "Empty"))
    tree = {"a.txt": a1, "Sub": None, "Sub/b.bin": b, "Empty": None, "Gone": None, "Gone/c.txt": c}
    wait_synced(mae, dbx, base, expect(base, tree), what="local creations")

    write(os.path.join(d, "a.txt"), a2)
    tree["a.txt"] = a2
    wait_synced(mae, dbx, base, expect(base, tree), what="local edit")
    assert body_of(dbx, base + "/a.txt") == a2

    os.rename(os.path.join(d, "a.txt"), os.path.join(d, "Renamed ü.txt"))
    os.rename(os.path.join(d, "Sub"), os.path.join(d, "Folder2"))
    tree = {
        "Renamed ü.txt": a2,
        "Folder2": None,
        "Folder2/b.bin": b,
        "Empty": None,
        "Gone": None,
        "Gone/c.txt": c,
    }
    wait_synced(mae, dbx, base, expect(base, tree), what="local renames of a file and a folder")

    os.rename(os.path.join(d, "Renamed ü.txt"), os.path.join(d, "Folder2", "moved.txt"))
    os.rename(os.path.join(d, "Empty"), os.path.join(d, "Folder2", "Empty"))
    tree = {
        "Folder2": None,
        "Folder2/b.bin": b,
        "Folder2/moved.txt": a2,
        "Folder2/Empty": None,
        "Gone": None,
        "Gone/c.txt": c,
    }
    wait_synced(mae, dbx, base, expect(base, tree), what="local moves into a folder")

    os.remove(os.path.join(d, "Folder2", "b.bin"))
    shutil.rmtree(os.path.join(d, "Gone"))
    tree = {"Folder2": None, "Folder2/moved.txt": a2, "Folder2/Empty": None}
    wait_synced(mae, dbx, base, expect(base, tree), what="local deletions of a file and a folder")
    # What was there is listed as deleted now (`ls -l --include-deleted`).
    assert ls_long(mae, base, "-d") == {
        "Folder2": "folder",
        **{name: "deleted" for name in ("a.txt", "Renamed ü.txt", "Sub", "Empty", "Gone")},
    }


def test_server_changes_reach_the_folder(mae, dbx):
    base = "/Server side"
    a1, a2, b, c = b"server one\n", b"server two, edited\n", os.urandom(5000), b"c\n"
    dbx.files_create_folder_v2(base + "/Empty")
    upload(dbx, base + "/a.txt", a1)
    upload(dbx, base + "/Sub/b.bin", b)
    upload(dbx, base + "/Gone/c.txt", c)
    tree = {"a.txt": a1, "Sub": None, "Sub/b.bin": b, "Empty": None, "Gone": None, "Gone/c.txt": c}
    wait_synced(mae, dbx, base, expect(base, tree), what="server creations")

    upload(dbx, base + "/a.txt", a2)
    tree["a.txt"] = a2
    wait_synced(mae, dbx, base, expect(base, tree), what="server edit")

    dbx.files_move_v2(base + "/a.txt", base + "/Renamed.txt")
    dbx.files_move_v2(base + "/Sub", base + "/Folder2")
    tree = {
        "Renamed.txt": a2,
        "Folder2": None,
        "Folder2/b.bin": b,
        "Empty": None,
        "Gone": None,
        "Gone/c.txt": c,
    }
    wait_synced(mae, dbx, base, expect(base, tree), what="server renames of a file and a folder")

    dbx.files_move_v2(base + "/Renamed.txt", base + "/Folder2/moved.txt")
    dbx.files_move_v2(base + "/Empty", base + "/Folder2/Empty")
    tree = {
        "Folder2": None,
        "Folder2/b.bin": b,
        "Folder2/moved.txt": a2,
        "Folder2/Empty": None,
        "Gone": None,
        "Gone/c.txt": c,
    }
    wait_synced(mae, dbx, base, expect(base, tree), what="server moves into a folder")

    dbx.files_delete_v2(base + "/Folder2/b.bin")
    dbx.files_delete_v2(base + "/Gone")
    tree = {"Folder2": None, "Folder2/moved.txt": a2, "Folder2/Empty": None}
    wait_synced(mae, dbx, base, expect(base, tree), what="server deletions of a file and a folder")
    assert not os.path.exists(mae.local_path(base + "/Gone"))


def test_20mb_files_both_ways(mae, dbx, http):
    base = "/Big"
    hosts = {os.environ["DROPBOX_API_HOST"], os.environ["DROPBOX_API_CONTENT_HOST"]}
    before = finished_upload_sessions(http, hosts)
    up = os.urandom(20 * MB)
    write(mae.local_path(base + "/up.bin"), up)
    wait_synced(mae, dbx, base, expect(base, {"up.bin": up}), what="20 MB upload")
    md = dbx.files_get_metadata(base + "/up.bin")
    assert md.size == len(up) and md.content_hash == content_hash(up)
    # Over 4 MiB, Maestral uploads through an upload session.
    assert finished_upload_sessions(http, hosts) > before

    down = os.urandom(20 * MB)
    upload(dbx, base + "/down.bin", down)
    wait_synced(
        mae, dbx, base, expect(base, {"up.bin": up, "down.bin": down}), what="20 MB download"
    )
    with open(mae.local_path(base + "/down.bin"), "rb") as f:
        assert f.read() == down


def test_folder_of_500_small_files(mae, dbx, account, new_client):
    # Made on the server (Maestral would upload them at 0.2 s a file per core: it waits that
    # long to see each new file stop growing), then moved as one folder locally.
    base = "/Many"
    items = {"files": None}
    for i in range(500):
        items["files/f{:03d}.txt".format(i)] = "small file {}\n".format(i).encode() * (1 + i % 7)
    names = sorted(k for k, v in items.items() if v is not None)

    def upload_share(k):
        client = new_client(account["access_token"])
        for rel in names[k::4]:
            client.files_upload(items[rel], base + "/" + rel)

    dbx.files_create_folder_v2(base + "/files")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(upload_share, range(4)))
    wait_synced(mae, dbx, base, expect(base, items), timeout=120, what="500 server files")

    os.rename(mae.local_path(base + "/files"), mae.local_path(base + "/Moved files"))
    moved = {k.replace("files", "Moved files", 1): v for k, v in items.items()}
    wait_synced(mae, dbx, base, expect(base, moved), what="local move of the 500 files' folder")
    entries, _, _ = list_all(dbx, base + "/Moved files")
    assert len(entries) == 500
    assert not exists_on_server(dbx, base + "/files")


def test_pause_resume_and_conflicted_copy(mae, dbx):
    base = "/Conflict"
    doc = mae.local_path(base + "/doc.txt")
    write(doc, b"base version\n")
    wait_synced(mae, dbx, base, expect(base, {"doc.txt": b"base version\n"}), what="conflict base")

    out = mae.out("pause")
    assert "paused" in out.lower(), out
    wait_for(
        lambda: mae.status()[0] == "Paused", "status is not Paused after `maestral pause`", mae
    )
    # Paused, Maestral watches nothing.
    assert mae.out("filestatus", doc).strip() == "unwatched"

    local_v, server_v = b"local edit while paused\n", b"server edit while paused\n"
    write(doc, local_v)
    write(mae.local_path(base + "/only-local.txt"), b"made locally while paused\n")
    upload(dbx, base + "/doc.txt", server_v)
    upload(dbx, base + "/only-server.txt", b"made on the server while paused\n")
    assert mae.status()[0] == "Paused"

    out = mae.out("resume")
    assert "resumed" in out.lower(), out

    def both_kept(tree):
        names = {k.rsplit("/", 1)[1]: v for k, v in tree.items()}
        copies = [n for n in names if "conflicted copy" in n]
        return (
            len(names) == 4
            and len(copies) == 1
            and copies[0].startswith("doc (")
            and "doc.txt" in names
            and {names["doc.txt"], names[copies[0]]}
            == {content_hash(local_v), content_hash(server_v)}
            and names.get("only-local.txt") == content_hash(b"made locally while paused\n")
            and names.get("only-server.txt") == content_hash(b"made on the server while paused\n")
        )

    wait_synced(mae, dbx, base, check=both_kept, what="conflict after resume")
    assert mae.out("filestatus", doc).strip() == "up to date"


def test_ls_revs_diff_restore(mae, dbx):
    base = "/CLI"
    p = base + "/notes.txt"
    v1, v2, v3 = b"line one\n", b"line one\nline two\n", b"line one\nline two\nline three\n"
    write(mae.local_path(p), v1)
    wait_synced(mae, dbx, base, expect(base, {"notes.txt": v1}), what="notes v1")
    write(mae.local_path(p), v2)
    wait_synced(mae, dbx, base, expect(base, {"notes.txt": v2}), what="notes v2")
    upload(dbx, p, v3)
    upload(dbx, base + "/other.bin", b"\x00\x01")
    wait_synced(
        mae, dbx, base, expect(base, {"notes.txt": v3, "other.bin": b"\x00\x01"}), what="notes v3"
    )

    assert ls_long(mae, base) == {"notes.txt": "file", "other.bin": "file"}
    assert ls_long(mae, "/") == {
        name: "folder"
        for name in ("seed", "Local side", "Server side", "Big", "Many", "Conflict", "CLI")
    }

    revs = dbx.files_list_revisions(p, limit=10).entries
    assert len(revs) == 3, revs
    newest, oldest = revs[0].rev, revs[-1].rev
    out = mae.out("revs", p)
    for r in revs:
        assert r.rev in out, (r.rev, out)

    out = mae.out("diff", p, "-v", oldest, "-v", newest, "--no-pager", "--no-color")
    assert "+line two" in out and "+line three" in out, out
    assert "-line" not in out, out

    out = mae.out("restore", p, "-v", oldest)
    assert "Restored" in out, out
    assert body_of(dbx, p) == v1
    wait_synced(
        mae, dbx, base, expect(base, {"notes.txt": v1, "other.bin": b"\x00\x01"}), what="restore"
    )
    assert len(dbx.files_list_revisions(p, limit=10).entries) == 4


def test_sharelink_create_list_revoke(mae, dbx, http):
    p = "/CLI/notes.txt"
    url = mae.out("sharelink", "create", p).strip()
    assert re.match(r"^https://\S+$", url), url
    listed = [l.url for l in dbx.sharing_list_shared_links(path=p, direct_only=True).links]
    assert listed == [url], listed
    r = http.get(url)
    assert r.status_code == 200 and r.content == body_of(dbx, p), r.status_code

    assert url in mae.out("sharelink", "list").split(), url
    assert url in mae.out("sharelink", "list", p).split(), url
    out = mae.out("sharelink", "list", "-l")
    assert url in out and "notes.txt" in out and "public" in out, out

    out = mae.out(
        "sharelink",
        "create",
        "/CLI/other.bin",
        "--password",
        "s3cret-Pw",
        "--expiry",
        "2099-01-01 10:00",
    )
    pw_url = out.strip()
    md = dbx.sharing_get_shared_link_metadata(pw_url)
    assert md.link_permissions.require_password is True, md.link_permissions
    assert md.expires is not None and md.expires.year == 2099, md.expires

    out = mae.out("sharelink", "revoke", url, pw_url)
    assert "Revoked" in out, out
    assert dbx.sharing_list_shared_links().links == []
    assert http.get(url).status_code == 404
    out = mae.out("sharelink", "list")
    assert url not in out and pw_url not in out, out


def test_excluded_add_list_remove(mae, dbx):
    base = "/Excl"
    keep = base + "/Kept out"
    upload(dbx, keep + "/a.txt", b"a\n")
    upload(dbx, base + "/in.txt", b"in\n")
    wait_synced(
        mae,
        dbx,
        base,
        expect(base, {"Kept out": None, "Kept out/a.txt": b"a\n", "in.txt": b"in\n"}),
        what="excluded base",
    )

    out = mae.out("excluded", "add", keep)
    assert "Excluded" in out, out
    # The folder goes from the disk, not from the server.
    wait_synced(
        mae, dbx, base, expect(base, {"in.txt": b"in\n"}), exclude=[keep], what="excluded add"
    )
    assert not os.path.exists(mae.local_path(keep))
    assert exists_on_server(dbx, keep + "/a.txt")
    assert keep.lower() in mae.out("excluded", "list").lower()

    # A change inside stays on the server; one outside, made after it, still comes down.
    upload(dbx, keep + "/b.txt", b"b\n")
    upload(dbx, base + "/later.txt", b"later\n")
    wait_synced(
        mae,
        dbx,
        base,
        expect(base, {"in.txt": b"in\n", "later.txt": b"later\n"}),
        exclude=[keep],
        what="change outside the excluded folder",
    )
    assert not os.path.exists(mae.local_path(keep))

    out = mae.out_when_idle("excluded", "remove", keep)
    assert "Included" in out, out
    wait_synced(
        mae,
        dbx,
        base,
        expect(
            base,
            {
                "in.txt": b"in\n",
                "later.txt": b"later\n",
                "Kept out": None,
                "Kept out/a.txt": b"a\n",
                "Kept out/b.txt": b"b\n",
            },
        ),
        what="excluded remove",
    )
    out = mae.out("excluded", "list")
    assert keep.lower() not in out.lower(), out


def test_history(mae):
    # The last 100 sync events: the 500 files' uploads are among them.
    out = mae.out("history")
    rows = [l.split() for l in out.splitlines() if l.strip().startswith("/")]
    assert len(rows) == 100, out
    # For one path: its uploads (local) and downloads (remote).
    out = mae.out("history", "/CLI/notes.txt")
    rows = [l.split() for l in out.splitlines() if l.strip().startswith("/")]
    # (Sorted by the change's time: a restore's is the old revision's.)
    assert sorted(r[:3] for r in rows) == [
        ["/CLI/notes.txt", "added", "local"],
        ["/CLI/notes.txt", "modified", "local"],
        ["/CLI/notes.txt", "modified", "remote"],  # v3, uploaded with the SDK
        ["/CLI/notes.txt", "modified", "remote"],  # the restore of v1
    ], out


def test_server_renames_survive_rebuild_index(mae, dbx):
    base = "/Renames"
    f, g = b"renamed on the server\n", os.urandom(2000)
    upload(dbx, base + "/old name.txt", f)
    upload(dbx, base + "/Old dir/inner.bin", g)
    wait_synced(
        mae,
        dbx,
        base,
        expect(base, {"old name.txt": f, "Old dir": None, "Old dir/inner.bin": g}),
        what="rename base",
    )

    dbx.files_move_v2(base + "/old name.txt", base + "/new name.txt")
    dbx.files_move_v2(base + "/Old dir", base + "/New dir")
    want = expect(base, {"new name.txt": f, "New dir": None, "New dir/inner.bin": g})
    wait_synced(mae, dbx, base, want, what="server renames")

    before = float(mae.state("sync", "last_reindex") or 0)
    out = mae.out("rebuild-index", "--yes")
    assert "Rebuilding now" in out, out

    def reindexed():
        last = float(mae.state("sync", "last_reindex") or 0)
        return last > before and mae.state("sync", "did_finish_indexing") == "True"

    wait_for(reindexed, "the index was not rebuilt", mae)
    wait_synced(mae, dbx, base, want, what="after rebuild-index")
    # Nothing renamed away came back, on either side.
    assert not exists_on_server(dbx, base + "/old name.txt")
    assert not exists_on_server(dbx, base + "/Old dir")
    assert not os.path.exists(mae.local_path(base + "/old name.txt"))


def test_whole_tree_equal(mae, dbx):
    local = wait_synced(mae, dbx, "", what="whole tree")
    assert "/Many/Moved files/f499.txt" in local and "/Big/up.bin" in local


def test_headless_link_with_admin_minted_refresh_token(
    maestral_exe, maestral_app, account, server, dbx, ca_certs, tmp_path_factory
):
    """Without a browser: `cubby admin token NAME --app KEY --offline` mints a refresh token of
    Maestral's (public) app, and `maestral auth link --refresh-token` takes it."""
    tok = server.admin("token", account["name"], "--app", MAESTRAL_APP_KEY, "--offline")
    assert tok.get("refresh_token"), tok
    m = Maestral(maestral_exe, tmp_path_factory.mktemp("maestral-headless"), server.ca_path)
    m.configure(**{"auth.keyring": "keyrings.alt.file.PlaintextKeyring", "sync.path": m.folder})
    m.run("auth", "link", "--refresh-token", tok["refresh_token"])
    assert account["account_id"] in m.out("auth", "status")
    assert m.keyring_token(account["account_id"]) == tok["refresh_token"]
    assert ls_long(m, "/").get("CLI") == "folder"

    out = m.out("auth", "unlink", "--yes")
    assert "Unlinked" in out, out
    client = dropbox.Dropbox(
        oauth2_refresh_token=tok["refresh_token"],
        app_key=MAESTRAL_APP_KEY,
        ca_certs=ca_certs,
        max_retries_on_error=0,
    )
    with pytest.raises(AuthError):
        client.users_get_current_account()


def test_auth_unlink(mae, dbx, account, ca_certs):
    # The refresh token Maestral keeps works for its app key (a public app: no secret) ...
    token = mae.keyring_token(account["account_id"])
    assert token
    client = dropbox.Dropbox(
        oauth2_refresh_token=token,
        app_key=MAESTRAL_APP_KEY,
        ca_certs=ca_certs,
        max_retries_on_error=0,
    )
    assert (
        client.users_get_current_account().account_id == dbx.users_get_current_account().account_id
    )

    out = mae.out("auth", "unlink", "--yes", timeout=90)
    assert "Unlinked" in out, out
    assert mae.wait_exit(30) is not None, "the daemon still runs after `auth unlink`\n" + mae.logs()
    assert mae.keyring_token(account["account_id"]) is None

    # ... and no longer after unlinking (auth/token/revoke ends the refresh token too).
    client = dropbox.Dropbox(
        oauth2_refresh_token=token,
        app_key=MAESTRAL_APP_KEY,
        ca_certs=ca_certs,
        max_retries_on_error=0,
    )
    with pytest.raises(AuthError):
        client.users_get_current_account()
