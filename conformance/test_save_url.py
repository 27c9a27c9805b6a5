"""files/save_url and files/save_url/check_job_status: a shop backs up its product images.

A shop has authorized a backup app (app folder); the app asks the server to fetch the
shop's product image URLs into the app folder, and polls the jobs until they are done.
The origin is a local http.server on 127.0.0.1 (the conformance servers run with
`--fetch-allow 127.0.0.1/32`, see cubby_server.py); it counts the requests it gets, so
the tests can tell a refused fetch from one that was tried and failed. Everything else
in private space stays refused: ::1, the rest of 127.0.0.0/8, 10/8, 169.254/16.
"""

import json
import socket
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from dropbox import async_, files

from cubby_helpers import (
    REV_RE,
    api_error,
    body_of,
    content_hash,
    download_bytes,
    list_all,
    lookup_error,
    rand,
)

BLOCK = 4 * 1024 * 1024
# Dropbox: "at most 5 redirects".
MAX_REDIRECTS = 5
# Each redirect of a chain uses the next of these codes.
REDIRECT_CODES = (301, 302, 303, 307, 308)


def uid():
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------------------------
# The origin


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: every response ends the connection, so a body without Content-Length
    # (/stream/...) is delimited by the close.
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        origin = self.server.origin
        path = unquote(self.path)
        origin.hit(path)
        parts = path.lstrip("/").split("/", 2)
        try:
            if parts[0] == "img" and path[len("/img/"):] in origin.files:
                self._body(origin.files[path[len("/img/"):]], length=True)
            elif parts[0] == "stream" and path[len("/stream/"):] in origin.files:
                self._body(origin.files[path[len("/stream/"):]], length=False)
            elif parts[0] == "hop" and len(parts) == 3 and parts[1].isdigit():
                # /hop/N/NAME redirects N times, then serves NAME; absolute and relative
                # Locations alternate.
                n, name = int(parts[1]), parts[2]
                if n == 0:
                    if name not in origin.files:
                        return self._status(404)
                    return self._body(origin.files[name], length=True)
                nxt = "/hop/{}/{}".format(n - 1, name)
                loc = origin.url(nxt) if n % 2 else nxt
                self._redirect(REDIRECT_CODES[n % len(REDIRECT_CODES)], loc)
            elif path in origin.redirects:
                self._redirect(302, origin.redirects[path])
            else:
                self._status(404)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _body(self, data, length):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        if length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, code, location):
        self.send_response(code)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _status(self, code):
        body = b"not here\n"
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class Origin(object):
    """An http.server in a thread: files under /img/NAME (and /stream/NAME without a
    Content-Length), redirect chains under /hop/N/NAME, fixed redirects, and 404 for
    anything else. Counts every request by its path."""

    def __init__(self, host, v6=False):
        self.files = {}
        self.redirects = {}
        self._counts = Counter()
        self._lock = threading.Lock()
        cls = _V6Server if v6 else ThreadingHTTPServer
        self.httpd = cls((host, 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.origin = self
        self.port = self.httpd.server_address[1]
        self.base = "http://{}:{}".format("[{}]".format(host) if v6 else host, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return self.base + path

    def hit(self, path):
        with self._lock:
            self._counts[path] += 1

    def count(self, path):
        with self._lock:
            return self._counts[path]

    def total(self):
        with self._lock:
            return sum(self._counts.values())

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _try_origin(host, v6=False):
    try:
        return Origin(host, v6=v6)
    except OSError:
        return None


@pytest.fixture(scope="module")
def origin():
    o = Origin("127.0.0.1")
    yield o
    o.close()


@pytest.fixture(scope="module")
def forbidden_origins():
    """Origins on loopback addresses outside the allowed 127.0.0.1/32 (::1, 127.0.0.2),
    where the server must never connect; None where the address cannot be bound here."""
    v6 = _try_origin("::1", v6=True)
    other = _try_origin("127.0.0.2")
    yield SimpleNamespace(v6=v6, other=other)
    for o in (v6, other):
        if o is not None:
            o.close()


# ---------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def shop(server, new_client):
    """A shop owner who authorized an app-folder backup app."""
    tag = uid()
    owner = server.add_user("shop-" + tag)
    app = server.admin("app", "add", "Shop Backup " + tag, "--access", "app_folder")
    assert app.get("app_key"), app
    tok = server.admin("token", owner["name"], "--app", app["app_key"])
    assert tok.get("access_token"), tok
    return SimpleNamespace(
        backup=new_client(tok["access_token"]),  # app folder
        full=new_client(owner["access_token"]),
        token=tok["access_token"],
        app_root="/Apps/" + app["name"],
    )


def start_job(client, path, url):
    r = client.files_save_url(path, url)
    assert isinstance(r, files.SaveUrlResult), r
    assert r.is_async_job_id(), r
    job = r.get_async_job_id()
    assert isinstance(job, str) and job, job
    return job


def wait_job(client, job, timeout=60):
    """Polls check_job_status until the job is no longer in progress."""
    deadline = time.monotonic() + timeout
    while True:
        st = client.files_save_url_check_job_status(job)
        assert isinstance(st, files.SaveUrlJobStatus), st
        if not st.is_in_progress():
            assert st.is_complete() or st.is_failed(), st
            return st
        assert time.monotonic() < deadline, "save_url job {} still in progress".format(job)
        time.sleep(0.05)


def completed(client, job):
    st = wait_job(client, job)
    assert st.is_complete(), st
    md = st.get_complete()
    assert isinstance(md, files.FileMetadata), md
    return md


def failed(client, job):
    st = wait_job(client, job)
    assert st.is_failed(), st
    err = st.get_failed()
    assert isinstance(err, files.SaveUrlError), err
    return err


def assert_download_failed(client, path, url):
    err = failed(client, start_job(client, path, url))
    assert err.is_download_failed(), (url, err)
    assert_absent(client, path)


def assert_absent(client, path):
    err = api_error(client.files_get_metadata, path)
    assert lookup_error(err).is_not_found(), (path, err)


def invalid_url(client, path, url):
    err = api_error(client.files_save_url, path, url)
    assert isinstance(err, files.SaveUrlError), err
    assert err.is_invalid_url(), (url, err)


# ---------------------------------------------------------------------------------------
# The shop backup


def test_shop_backs_up_product_images_into_the_app_folder(shop, origin):
    tag = uid()
    images = {
        "sku-1001-front.jpg": rand(3 * 1024),
        "sku-1001-back.jpg": rand(17 * 1024 + 5),
        "sku-2002.png": rand(64 * 1024 + 1),
        "hero-{}.jpg".format(tag): rand(2 * BLOCK + BLOCK // 4),  # 3 blocks
        "sku-3003-stream.jpg": rand(300 * 1024 + 7),  # served without Content-Length
    }
    for name, data in images.items():
        origin.files[name + tag] = data
    dest_names = {
        "sku-1001-front.jpg": "SKU 1001 front.jpg",
        "sku-1001-back.jpg": "SKU 1001 back.jpg",
        "sku-2002.png": "Crème brûlée mug (sku 2002).png",
        "hero-{}.jpg".format(tag): "Catalog hero.jpg",
        "sku-3003-stream.jpg": "SKU 3003.jpg",
    }
    top = "/Backups {}/Products".format(tag)

    def url_path(name):
        kind = "stream" if "stream" in name else "img"
        return "/{}/{}".format(kind, name + tag)

    # All jobs at once, then poll them.
    jobs = {}
    for name in images:
        dest = top + "/" + dest_names[name]
        jobs[name] = start_job(shop.backup, dest, origin.url(url_path(name)))
    assert len(set(jobs.values())) == len(jobs), jobs
    saved = {name: completed(shop.backup, job) for name, job in jobs.items()}

    for name, data in images.items():
        md = saved[name]
        dest = top + "/" + dest_names[name]
        # Relative to the app folder.
        assert md.path_display == dest, (md.path_display, dest)
        assert md.path_lower == dest.lower(), md.path_lower
        assert md.name == dest_names[name], md.name
        assert md.size == len(data), (name, md.size, len(data))
        assert md.content_hash == content_hash(data), name
        assert md.id.startswith("id:"), md.id
        assert REV_RE.match(md.rev), md.rev
        assert origin.count(url_path(name)) == 1, name

        # The finished job keeps answering the same.
        again = shop.backup.files_save_url_check_job_status(jobs[name])
        assert again.is_complete(), again
        a = again.get_complete()
        assert (a.id, a.rev, a.path_display, a.content_hash) == (
            md.id,
            md.rev,
            md.path_display,
            md.content_hash,
        )

        got = shop.backup.files_get_metadata(dest)
        assert (got.id, got.rev, got.size, got.content_hash) == (
            md.id,
            md.rev,
            md.size,
            md.content_hash,
        )
        dmd, body = download_bytes(shop.backup, dest)
        assert body == data, name
        assert dmd.content_hash == content_hash(data)

        # The owner's full-access client sees it inside /Apps/<app name>.
        full = shop.full.files_get_metadata(shop.app_root + dest)
        assert isinstance(full, files.FileMetadata), full
        assert full.path_display == shop.app_root + dest, full.path_display
        assert (full.id, full.rev, full.content_hash) == (md.id, md.rev, md.content_hash)
    hero = "hero-{}.jpg".format(tag)
    full_md, full_body = download_bytes(shop.full, shop.app_root + top + "/" + dest_names[hero])
    assert full_body == images[hero]
    assert full_md.content_hash == content_hash(images[hero])

    entries, _, _ = list_all(shop.backup, top)
    assert sorted(e.name for e in entries) == sorted(dest_names.values())


def test_localhost_resolves_to_the_allowed_address(shop, origin):
    # localhost is 127.0.0.1 (allowed) and perhaps also ::1 (refused, filtered out).
    tag = uid()
    data = rand(9 * 1024 + 3)
    origin.files["local" + tag] = data
    url = "http://localhost:{}/img/local{}".format(origin.port, tag)
    dest = "/Backups {}/local.jpg".format(tag)
    md = completed(shop.backup, start_job(shop.backup, dest, url))
    assert md.path_display == dest, md.path_display
    assert (md.size, md.content_hash) == (len(data), content_hash(data))
    assert download_bytes(shop.backup, dest)[1] == data
    assert origin.count("/img/local" + tag) == 1


# ---------------------------------------------------------------------------------------
# Redirects


def test_five_redirects_are_followed(shop, origin):
    tag = uid()
    data = rand(5000)
    name = "chain" + tag
    origin.files[name] = data
    dest = "/Backups {}/chain.jpg".format(tag)
    md = completed(shop.backup, start_job(shop.backup, dest, origin.url("/hop/5/" + name)))
    assert md.path_display == dest
    assert (md.size, md.content_hash) == (len(data), content_hash(data))
    assert download_bytes(shop.backup, dest)[1] == data
    for n in range(6):
        assert origin.count("/hop/{}/{}".format(n, name)) == 1, n


def test_six_redirects_are_refused(shop, origin):
    tag = uid()
    name = "chain" + tag
    origin.files[name] = rand(5000)
    dest = "/Backups {}/chain.jpg".format(tag)
    assert_download_failed(shop.backup, dest, origin.url("/hop/6/" + name))
    for n in range(1, 7):
        assert origin.count("/hop/{}/{}".format(n, name)) == 1, n
    # The sixth redirect is not followed.
    assert origin.count("/hop/0/" + name) == 0


def test_redirect_into_private_space_is_refused(shop, origin, forbidden_origins):
    tag = uid()
    name = "secret" + tag
    origin.files[name] = rand(1000)
    v6 = forbidden_origins.v6
    v6_port = v6.port if v6 is not None else origin.port
    other = forbidden_origins.other
    other_port = other.port if other is not None else origin.port
    targets = {
        "/to-10-" + tag: "http://10.255.255.1/",
        "/to-metadata-" + tag: "http://169.254.169.254/latest/meta-data",
        "/to-v6-" + tag: "http://[::1]:{}/img/{}".format(v6_port, name),
        "/to-127-0-0-2-" + tag: "http://127.0.0.2:{}/img/{}".format(other_port, name),
    }
    origin.redirects.update(targets)
    before = [o.total() for o in (v6, other) if o is not None]
    for i, path in enumerate(targets):
        dest = "/Backups {}/refused-{}.jpg".format(tag, i)
        assert_download_failed(shop.backup, dest, origin.url(path))
        assert origin.count(path) == 1, path
    # The forbidden origins were never reached.
    assert [o.total() for o in (v6, other) if o is not None] == before
    assert origin.count("/img/" + name) == 0
    assert_absent(shop.backup, "/Backups " + tag)


# ---------------------------------------------------------------------------------------
# Errors


def test_literal_private_address_is_invalid_url(shop, origin, forbidden_origins):
    v6 = forbidden_origins.v6
    v6_port = v6.port if v6 is not None else origin.port
    other = forbidden_origins.other
    other_port = other.port if other is not None else origin.port
    tag = uid()
    name = "x" + tag
    origin.files[name] = rand(100)
    before = [o.total() for o in (v6, other) if o is not None]
    urls = [
        "http://10.0.0.1/x",
        "https://192.168.1.1/router.jpg",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:{}/img/{}".format(v6_port, name),
        "http://127.0.0.2:{}/img/{}".format(other_port, name),
        "http://0x0a000001/x",  # 10.0.0.1
        "http://[::ffff:10.0.0.1]/x",
        "http://[fd00::1]/x",
        "ftp://127.0.0.1:{}/img/{}".format(origin.port, name),
        "ftp://example.com/x.jpg",
    ]
    for i, url in enumerate(urls):
        invalid_url(shop.backup, "/Backups {}/{}.jpg".format(tag, i), url)
    assert [o.total() for o in (v6, other) if o is not None] == before
    assert origin.count("/img/" + name) == 0
    assert_absent(shop.backup, "/Backups " + tag)


def test_literal_private_address_raw_409(http, base_url, shop):
    r = http.post(
        base_url + "/2/files/save_url",
        headers={"Authorization": "Bearer " + shop.token, "Content-Type": "application/json"},
        data=json.dumps({"path": "/Backups {}/x.jpg".format(uid()), "url": "http://10.0.0.1/x"}),
    )
    assert r.status_code == 409, (r.status_code, r.text)
    body = r.json()
    assert body["error"] == {".tag": "invalid_url"}, body
    assert body["error_summary"].startswith("invalid_url/"), body


def test_origin_404_is_download_failed(shop, origin):
    tag = uid()
    path = "/img/missing-" + tag
    assert_download_failed(shop.backup, "/Backups {}/missing.jpg".format(tag), origin.url(path))
    assert origin.count(path) == 1


def test_save_onto_taken_paths_renames_as_dropbox_documents(shop, origin):
    # Dropbox: "If the given path already exists, the file will be renamed to avoid the
    # conflict (e.g. myfile (1).txt)."
    tag = uid()
    name = "onto-taken" + tag
    data = rand(2000)
    origin.files[name] = data
    base = "/Backups {}".format(tag)
    folder = base + "/Products"
    shop.backup.files_create_folder_v2(folder)
    shop.backup.files_upload(b"the old file", base + "/a.jpg")
    md = completed(shop.backup, start_job(shop.backup, folder, origin.url("/img/" + name)))
    assert md.path_display == base + "/Products (1)", md
    md = completed(shop.backup, start_job(shop.backup, base + "/a.jpg", origin.url("/img/" + name)))
    assert md.path_display == base + "/a (1).jpg", md
    assert md.content_hash == content_hash(data)
    # What was there is untouched.
    assert isinstance(shop.backup.files_get_metadata(folder), files.FolderMetadata)
    assert list_all(shop.backup, folder)[0] == []
    assert body_of(shop.backup, base + "/a.jpg") == b"the old file"


def test_forged_job_id_is_invalid(shop, origin, dbx):
    for job in ("x", uuid.uuid4().hex, "dbjid:" + "A" * 40, "1"):
        err = api_error(shop.backup.files_save_url_check_job_status, job)
        assert isinstance(err, async_.PollError), err
        assert err.is_invalid_async_job_id(), (job, err)
    # A real job id of another account is not found either.
    tag = uid()
    origin.files["mine" + tag] = rand(100)
    job = start_job(shop.backup, "/Backups {}/mine.jpg".format(tag), origin.url("/img/mine" + tag))
    err = api_error(dbx.files_save_url_check_job_status, job)
    assert isinstance(err, async_.PollError), err
    assert err.is_invalid_async_job_id(), err
    completed(shop.backup, job)
