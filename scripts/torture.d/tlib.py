"""Shared pieces of the torture harness: the HTTP client, content, the server process,
`cubby admin`, and the result book-keeping (checks, failures, figures)."""

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time

import requests

MiB = 1 << 20
BLOCK = 4 * MiB
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# How long an upload may keep getting 429 before the harness calls it a failure.
PERSISTENT_429_SECS = 10.0
# How long the harness keeps retrying a 429 before it gives the operation up.
GIVE_UP_429_SECS = 14.0


def now():
    return time.monotonic()


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def cubby_bin():
    b = os.environ.get("CUBBY_BIN", "target/debug/cubby")
    if not os.path.isabs(b):
        b = os.path.join(REPO_ROOT, b)
    return b


def scale_out():
    return bool(os.environ.get("CUBBY_METADATA")) and bool(os.environ.get("CUBBY_BLOCKS"))


# ---------------------------------------------------------------------------------------
# Content: deterministic bytes named by (seed, size), so the ledger keeps only hashes.


def content(seed, size):
    return random.Random(seed).randbytes(size) if size else b""


def content_hash(data):
    """Dropbox's content_hash: SHA-256 of the SHA-256 digests of the 4 MiB blocks."""
    h = hashlib.sha256()
    for i in range(0, len(data), BLOCK):
        h.update(hashlib.sha256(data[i : i + BLOCK]).digest())
    return h.hexdigest()


_hash_cache = {}
_hash_lock = threading.Lock()


def content_and_hash(seed, size):
    data = content(seed, size)
    key = (seed, size)
    with _hash_lock:
        h = _hash_cache.get(key)
    if h is None:
        h = content_hash(data)
        with _hash_lock:
            if len(_hash_cache) > 200000:
                _hash_cache.clear()
            _hash_cache[key] = h
    return data, h


# ---------------------------------------------------------------------------------------
# Results.


class Results(object):
    """Counts checks and figures; keeps the failures' details. Thread-safe."""

    def __init__(self, log):
        self.lock = threading.Lock()
        self.passed = 0
        self.failed = 0
        self.failures = []  # (category, text)
        self.figures = {}
        self.log = log

    def ok(self, n=1):
        with self.lock:
            self.passed += n

    def fail(self, category, text):
        with self.lock:
            self.failed += 1
            self.failures.append((category, text))
            self.figures["fail:" + category] = self.figures.get("fail:" + category, 0) + 1
        self.log("FAIL [{}] {}".format(category, text))

    def check(self, cond, category, text):
        if cond:
            self.ok()
        else:
            self.fail(category, text)
        return cond

    def add(self, name, n=1):
        with self.lock:
            self.figures[name] = self.figures.get(name, 0) + n

    def get(self, name):
        with self.lock:
            return self.figures.get(name, 0)

    def note(self, name, value):
        with self.lock:
            self.figures[name] = value


# ---------------------------------------------------------------------------------------
# The HTTP API.


class Unknown(Exception):
    """A request whose outcome the harness cannot know (no answer, or a 5xx)."""


class Resp(object):
    __slots__ = ("status", "body", "json", "headers", "result")

    def __init__(self, r, stream_body=True):
        self.status = r.status_code
        self.headers = r.headers
        self.body = r.content if stream_body else b""
        self.json = None
        self.result = None
        ctype = r.headers.get("Content-Type", "")
        if "json" in ctype:
            try:
                self.json = json.loads(self.body.decode("utf-8"))
            except ValueError:
                pass
        res = r.headers.get("Dropbox-API-Result")
        if res:
            try:
                self.result = json.loads(res)
            except ValueError:
                pass

    def tag(self):
        """The error tag path of a 409, e.g. 'path/conflict' (`error_summary` without the dots)."""
        if isinstance(self.json, dict):
            return (self.json.get("error_summary") or "").rstrip("./").rstrip("/.")
        return ""

    def text(self, n=400):
        return self.body[:n].decode("utf-8", "replace")

    def describe(self):
        return "HTTP {} request-id {} body {}".format(
            self.status, self.headers.get("X-Dropbox-Request-Id", "-"), self.text()
        )


class Api(object):
    """Raw requests against /2/ of one server, with the 429 policy."""

    def __init__(self, base, token, results, label="api", fail_on_5xx=True):
        self.base = base.rstrip("/") + "/2/"
        self.token = token
        self.results = results
        self.label = label
        self.fail_on_5xx = fail_on_5xx
        self.session = None
        self.reset()

    def reset(self):
        if self.session is not None:
            self.session.close()
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies: loopback only

    def _post(self, route, headers, data, timeout):
        h = {"Authorization": "Bearer " + self.token}
        h.update(headers)
        try:
            r = self.session.post(self.base + route, headers=h, data=data, timeout=timeout)
            return Resp(r)
        except requests.RequestException as e:
            raise Unknown("{}: {}".format(route, type(e).__name__))

    def raw_rpc(self, route, arg, timeout=(5, 120)):
        return self._post(
            route, {"Content-Type": "application/json"}, json.dumps(arg).encode(), timeout
        )

    def raw_upload(self, route, arg, body, timeout=(5, 300)):
        return self._post(
            route,
            {"Content-Type": "application/octet-stream", "Dropbox-API-Arg": json.dumps(arg)},
            body,
            timeout,
        )

    def _with_429(self, send, route, is_upload, stop=None):
        """Sends; retries 429 (honouring Retry-After) for at most GIVE_UP_429_SECS. A 5xx or
        no answer raises Unknown. Returns the last answer (possibly still a 429)."""
        first_429 = None
        while True:
            r = send()
            if r.status >= 500:
                if self.fail_on_5xx:
                    self.results.fail(
                        "server-error", "{} {}: {}".format(self.label, route, r.describe())
                    )
                raise Unknown("{}: {}".format(route, r.describe()))
            if r.status != 429:
                if first_429 is not None:
                    waited = now() - first_429
                    self.results.add("429 retried")
                    if is_upload and waited > PERSISTENT_429_SECS:
                        self.results.fail(
                            "persistent-429",
                            "{} {}: 429 for {:.1f} s before it went through".format(
                                self.label, route, waited
                            ),
                        )
                return r
            t = now()
            if first_429 is None:
                first_429 = t
            if t - first_429 > GIVE_UP_429_SECS or (stop is not None and stop()):
                if is_upload and t - first_429 > PERSISTENT_429_SECS:
                    self.results.fail(
                        "persistent-429",
                        "{} {}: 429 for {:.1f} s, still refused: {}".format(
                            self.label, route, t - first_429, r.describe()
                        ),
                    )
                return r
            try:
                wait = float(r.headers.get("Retry-After", "1"))
            except ValueError:
                wait = 1.0
            time.sleep(min(max(wait, 0.1), 2.0) * (0.5 + random.random() / 2))

    def rpc(self, route, arg, timeout=(5, 120), stop=None):
        return self._with_429(lambda: self.raw_rpc(route, arg, timeout), route, False, stop)

    def upload(self, route, arg, body, timeout=(5, 300), stop=None):
        return self._with_429(
            lambda: self.raw_upload(route, arg, body, timeout), route, True, stop
        )

    def download(self, path, timeout=(5, 300)):
        """files/download; returns Resp (body = the bytes, result = the metadata)."""
        r = self._post(
            "files/download", {"Dropbox-API-Arg": json.dumps({"path": path})}, b"", timeout
        )
        return r

    def list_tree(self, path, recursive=True):
        """Every entry under `path` (lower path -> metadata), by list_folder pages."""
        r = self.rpc("files/list_folder", {"path": path, "recursive": recursive, "limit": 2000})
        if r.status != 200:
            raise Unknown("list_folder {}: {}".format(path, r.describe()))
        out = {}
        pages = 0
        while True:
            for e in r.json["entries"]:
                out[e["path_lower"]] = e
            if not r.json.get("has_more"):
                return out
            pages += 1
            if pages > 10000:
                raise Unknown("list_folder {}: more than 10000 pages".format(path))
            r = self.rpc("files/list_folder/continue", {"cursor": r.json["cursor"]})
            if r.status != 200:
                raise Unknown("list_folder/continue {}: {}".format(path, r.describe()))

    def feed(self, cursor, max_pages=10000):
        """Every entry of list_folder/continue from `cursor`, in order; returns (entries,
        error Resp or None)."""
        entries = []
        for _ in range(max_pages):
            r = self.rpc("files/list_folder/continue", {"cursor": cursor})
            if r.status != 200:
                return entries, r
            entries.extend(r.json["entries"])
            cursor = r.json["cursor"]
            if not r.json.get("has_more"):
                return entries, None
        raise Unknown("list_folder/continue: more than {} pages".format(max_pages))


# ---------------------------------------------------------------------------------------
# The server process and the admin commands.


class Server(object):
    def __init__(self, data, log_path, env, port=None, extra_args=()):
        self.bin = cubby_bin()
        self.data = data
        self.log_path = log_path
        self.env = env
        self.port = port or free_port()
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.proc = None
        self.starts = 0
        self.extra_args = list(extra_args)

    def log_tail(self, n=60, quiet_access=True):
        """The log's last lines; without the access lines of successful requests."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 4000000))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        if quiet_access:
            lines = [l for l in lines if "cubby::access" not in l or " status=5" in l]
        return "\n".join(lines[-n:])

    def start(self, timeout=90):
        for _ in range(120):  # the lead may be rebuilding the binary
            if os.path.exists(self.bin):
                break
            time.sleep(1)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(
                "\n==== torture: start #{} at {} ====\n".format(
                    self.starts, time.strftime("%H:%M:%S")
                ).encode()
            )
            log.flush()
            self.proc = subprocess.Popen(
                [self.bin, "serve", "--data", self.data, "--http", "127.0.0.1:{}".format(self.port),
                 "--https", "off"] + self.extra_args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        deadline = now() + timeout
        s = requests.Session()
        s.trust_env = False
        try:
            while True:
                rc = self.proc.poll()
                if rc is not None:
                    raise RuntimeError(
                        "cubby serve exited with {} before it was ready:\n{}".format(
                            rc, self.log_tail()
                        )
                    )
                try:
                    r = s.get(self.url + "/health/ready", timeout=2)
                    if r.status_code == 200:
                        return
                except requests.RequestException:
                    pass
                if now() > deadline:
                    self.kill()
                    raise RuntimeError(
                        "cubby serve was not ready within {} s:\n{}".format(
                            timeout, self.log_tail()
                        )
                    )
                time.sleep(0.05)
        finally:
            s.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def admin_cmd(self, *args):
        return [self.bin, "admin"] + list(args) + ["--data", self.data]

    def admin(self, *args, timeout=600, check=True):
        """Runs `cubby admin ARGS --json`; returns (returncode, parsed JSON or None, output)."""
        cmd = self.admin_cmd(*args) + ["--json"]
        r = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=self.env,
            stdin=subprocess.DEVNULL,
        )
        parsed = None
        for line in r.stdout.splitlines()[::-1]:
            try:
                parsed = json.loads(line)
                break
            except ValueError:
                continue
        if check and r.returncode != 0:
            raise RuntimeError(
                "{} failed ({}):\n{}\n{}".format(" ".join(cmd), r.returncode, r.stdout, r.stderr)
            )
        return r.returncode, parsed, (r.stdout + r.stderr)

    def add_user(self, name):
        _, user, _ = self.admin("user", "add", name)
        _, tok, _ = self.admin("token", name)
        return user, tok["access_token"]
