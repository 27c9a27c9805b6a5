#!/usr/bin/env python3
"""Stage l of scripts/bench: the web app (/home) in a real browser, against a running Cubby.

Usage: web.py BASE_URL --user NAME --scratch DIR [--server-pid PID] [--small 1000] [--large 100000]
              [--runs 3] [--upload-mib 500] [--upload-runs 1] [--notes FILE]
              [--chromium /usr/bin/chromium]

The bearer token (seeding, checks, clean-up) comes from CUBBY_TOKEN and the user's password (the
browser signs in through /login's form) from CUBBY_PASSWORD, never from argv. Needs Playwright
(scripts/bench runs this with the conformance suite's virtualenv, .venv) and Debian's Chromium.

  - seeds /web-<small> and /web-<large> (1,000 and 100,000 files of a few bytes) through
    files/upload_session/start (close, the body) from 16 threads, then
    files/upload_session/finish_batch_v2 in batches of 1,000 (4 in flight); the time is a note;
  - signs in once through /login and keeps the session cookie; every measurement then runs in a
    new browser context holding only that cookie: an empty cache, as on a first visit;
  - time to first listing: navigation to /home/web-<n>, from navigation start (performance's
    time origin) to the first animation frame in which a file row (a role="row" in the grid's
    role="rowgroup") exists, taken by a requestAnimationFrame loop that an init script starts
    with the document; and to the frame in which the whole folder is listed: the app has marked
    itself ready (body[data-app-ready], set once the last list_folder page is in and sorted) and
    the grid's aria-rowcount is n + 1 (the header row). --runs times each, empty cache; in the
    first run, once more in the same context (the app's files cached: a later visit);
  - the bytes of the app's first load: a new context, /home; the sum of CDP Network
    loadingFinished encodedDataLength (bytes on the wire: compressed bodies and headers) of every
    request the page made, the API's (/2/…) apart and reported on their own;
  - upload: a file of --upload-mib MiB of random bytes in DIR, (1) with curl through an upload session
    as the app sends it (a concurrent session, 2 appends in flight; chunks as the app sizes them:
    8 MiB, doubled after each chunk that took under 5 s, up to 64 MiB; each chunk streamed from
    the file through `tail -c +N | head -c LEN`), and the same through a sequential session
    one append at a time (web-upload-curl-sequential), (2) through the app: the Upload button, its Files item, the file
    chooser; timed from handing the file to the chooser until files/get_metadata (polled every
    20 ms) shows the file at its full size. MB/s = 10^6 bytes/s. The first 8 bytes of every 4 MiB
    block are rewritten before each upload, so that no upload finds its blocks already stored.
    The uploaded files and the scratch file are removed afterwards. Notes, per upload: the time
    in append_v2 calls and between them, the client's CPU (curl, tail and head; the Chromium
    processes by kind) and, with --server-pid, the server's.
Prints one figure a line, `metric<TAB>unit<TAB>value [value...]`; writes notes to --notes.
Exits 1 if a step failed (the figures it got are printed all the same).
"""
import argparse
import http.client
import json
import os
import queue
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

MiB = 1024 * 1024
CHUNK_MIN, CHUNK_MAX, FAST_S = 8 * MiB, 64 * MiB, 5.0   # upload.js's session chunking
IN_FLIGHT = 2                                               # upload.js's appends at once
BLOCK = 4 * MiB
SEED_THREADS, BATCH, BATCH_INFLIGHT = 16, 1000, 4
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROWS = '[role="grid"] [role="rowgroup"] [role="row"]'
# Started with every document: stamps the first animation frame with a file row in the grid,
# and the first with the whole folder listed (the app ready, aria-rowcount = n + 1).
WATCH = """(() => {
  const want = %d;
  const w = (window.__web = { first: null, all: null, status: null });
  const tick = () => {
    const now = performance.now();
    if (w.first === null && document.querySelector('%s')) w.first = now;
    const grid = document.querySelector('[role="grid"]');
    if (w.first !== null && want >= 0 && document.body && 'appReady' in document.body.dataset &&
        grid && grid.getAttribute('aria-rowcount') === String(want + 1)) {
      w.all = now;
      const s = document.querySelector('.status');
      w.status = s ? s.textContent : null;
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""


class Failed(Exception):
    pass


def label(n):
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


def cpu_s(pid):
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def chromium_cpu_s():
    """CPU seconds of the Chromium processes below this one (Playwright's driver starts them),
    by kind: {"browser": s, "renderer": s, "network": s, "storage": s, "gpu-process": s, …}."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    me, out = os.getpid(), {}
    for pid in parent:
        p, seen = pid, 0
        while p in parent and p != me and seen < 64:
            p, seen = parent[p], seen + 1
        if p != me or pid == me:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if "chrom" not in f.read():
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        # Chromium rewrites its command line into one string: the switches are space-separated.
        line = b" ".join(args).decode(errors="replace")
        m = re.search(r"--type=(\S+)", line)
        kind = m.group(1) if m else "browser"
        if kind == "utility":
            m = re.search(r"--utility-sub-type=(\S+)", line)
            kind = (m.group(1).split(".")[-1] if m else kind).replace("Service", "").lower() or kind
        out[kind] = out.get(kind, 0.0) + cpu_s(pid)
    return out


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---- HTTP ---------------------------------------------------------------------------------------
class Api:
    """One keep-alive HTTP/1.1 connection per thread."""

    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.https else 80)
        self.token = token
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "c", None)
        if c is None:
            if self.https:
                import ssl
                c = http.client.HTTPSConnection(self.host, self.port, timeout=600,
                                                context=ssl._create_unverified_context())
            else:
                c = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self.local.c = c
        return c

    def call(self, route, arg, body=None, content=False, ok=(200,)):
        """(status, parsed JSON or None) of POST /2/ROUTE; raises Failed unless the status is
        in `ok`."""
        headers = {"Authorization": "Bearer " + self.token}
        if content:
            headers["Dropbox-API-Arg"] = json.dumps(arg)
            headers["Content-Type"] = "application/octet-stream"
            data = body or b""
        else:
            headers["Content-Type"] = "application/json"
            data = json.dumps(arg).encode()
        for attempt in range(2):
            c = self.conn()
            try:
                c.request("POST", "/2/" + route, body=data, headers=headers)
                r = c.getresponse()
                out = r.read()
                break
            except (ConnectionError, http.client.HTTPException):
                c.close()
                self.local.c = None
                if attempt:
                    raise
        if r.status not in ok:
            raise Failed(f"{route}: HTTP {r.status}: {out[:300]!r}")
        try:
            return r.status, (json.loads(out) if out else None)
        except ValueError:
            return r.status, None


def seed(api, folder, n, log):
    """n small files in `folder`: start (close) from SEED_THREADS threads, then finish_batch_v2
    in batches of BATCH. Returns the seconds it took."""
    t0 = time.perf_counter()
    ids = [None] * n
    errors = []
    todo = queue.Queue()
    for lo in range(0, n, 500):
        todo.put(range(lo, min(n, lo + 500)))

    def starter():
        try:
            while True:
                try:
                    part = todo.get_nowait()
                except queue.Empty:
                    return
                for i in part:
                    body = b"web bench %06d\n" % i
                    _, r = api.call("files/upload_session/start", {"close": True}, body, content=True)
                    ids[i] = (r["session_id"], len(body))
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(f"upload_session/start: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=starter) for _ in range(SEED_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise Failed(errors[0])
    started = time.perf_counter() - t0
    batches = queue.Queue()
    for lo in range(0, n, BATCH):
        batches.put(range(lo, min(n, lo + BATCH)))

    def finisher():
        try:
            while True:
                try:
                    part = batches.get_nowait()
                except queue.Empty:
                    return
                entries = [{"cursor": {"session_id": ids[i][0], "offset": ids[i][1]},
                            "commit": {"path": f"{folder}/file-{i:06d}.txt", "mode": "overwrite",
                                       "mute": True}} for i in part]
                _, r = api.call("files/upload_session/finish_batch_v2", {"entries": entries})
                if r.get(".tag") == "async_job_id" or "entries" not in r:
                    raise Failed(f"finish_batch_v2 answered {json.dumps(r)[:200]}")
                bad = [e for e in r["entries"] if e.get(".tag") != "success"]
                if bad:
                    raise Failed(f"finish_batch_v2: {len(bad)} failures, e.g. {json.dumps(bad[0])[:200]}")
        except Exception as e:   # noqa: BLE001
            errors.append(f"finish_batch_v2: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=finisher) for _ in range(BATCH_INFLIGHT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise Failed(errors[0])
    secs = time.perf_counter() - t0
    log(f"seeded {folder}: {n:,} files in {secs:.1f} s (starts {started:.1f} s)")
    return secs, started


def count_entries(api, folder):
    _, r = api.call("files/list_folder", {"path": folder, "limit": 2000})
    n = len(r["entries"])
    while r["has_more"]:
        _, r = api.call("files/list_folder/continue", {"cursor": r["cursor"]})
        n += len(r["entries"])
    return n


def size_of(api, path):
    st, r = api.call("files/get_metadata", {"path": path}, ok=(200, 409))
    return r.get("size") if st == 200 and r and r.get(".tag") == "file" else None


def delete(api, path):
    api.call("files/delete_v2", {"path": path}, ok=(200, 409))


# ---- the upload's file and curl -------------------------------------------------------------
def make_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            k = min(left, 16 * MiB)
            f.write(os.urandom(k))
            left -= k


def stamp(path, size, counter):
    """New content for the file: the first 8 bytes of each 4 MiB block become distinct."""
    with open(path, "r+b") as f:
        for off in range(0, size, BLOCK):
            f.seek(off)
            f.write(((counter << 32) | (off // BLOCK)).to_bytes(8, "little")[: min(8, size - off)])
    os.utime(path)


def curl_post(url, token, route, arg, path=None, offset=0, length=0):
    """One curl POST /2/ROUTE; the body is bytes [offset, offset+length) of `path`, streamed
    through `tail -c +N | head -c LEN` (with a Content-Length, not chunked), or none. The token
    goes to curl as a config file on a pipe, not in argv. Returns the parsed answer."""
    rfd, wfd = os.pipe()
    os.write(wfd, f'header = "Authorization: Bearer {token}"\n'.encode())
    os.close(wfd)
    cmd = ["curl", "-sS", "-k", "--fail-with-body", "-K", f"/dev/fd/{rfd}", "-X", "POST",
           "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
           "-H", "Dropbox-API-Arg: " + json.dumps(arg)]
    try:
        if path is None:
            p = subprocess.run(cmd + ["--data-binary", "", url + "/2/" + route],
                               stdin=subprocess.DEVNULL, capture_output=True, pass_fds=(rfd,))
        else:
            src = subprocess.Popen(["sh", "-c", f'tail -c +{offset + 1} "$1" | head -c {length}',
                                    "sh", path], stdout=subprocess.PIPE)
            p = subprocess.run(cmd + ["-H", "Transfer-Encoding:", "-H", f"Content-Length: {length}",
                                      "-T", "-", url + "/2/" + route],
                               stdin=src.stdout, capture_output=True, pass_fds=(rfd,))
            src.stdout.close()
            src.wait()
    finally:
        os.close(rfd)
    if p.returncode != 0:
        raise Failed(f"curl {route}: exit {p.returncode}: {(p.stdout + p.stderr)[:300]!r}")
    return json.loads(p.stdout) if p.stdout.strip() else None


def curl_upload(url, token, path, size, dest, inflight):
    """(seconds, chunk sizes, seconds in append_v2 calls) of an upload session with curl,
    chunked as upload.js chunks (CHUNK_MIN doubled after each chunk that took under 5 s, up to
    CHUNK_MAX). inflight 1: a sequential session, one append at a time; more: a concurrent
    session (4 MiB-aligned chunks, the last one closes it) with that many appends at once,
    as the app sends them."""
    t0 = time.perf_counter()
    concurrent = inflight > 1
    start = {"close": False}
    if concurrent:
        start["session_type"] = {".tag": "concurrent"}
    sid = curl_post(url, token, "files/upload_session/start", start)["session_id"]
    lock = threading.Lock()
    state = {"chunk": CHUNK_MIN, "off": 0, "sizes": [], "in_appends": 0.0, "error": None}

    def worker():
        while True:
            with lock:
                if state["off"] >= size or state["error"]:
                    return
                off, n = state["off"], min(state["chunk"], size - state["off"])
                state["off"] += n
            c0 = time.perf_counter()
            try:
                curl_post(url, token, "files/upload_session/append_v2",
                          {"cursor": {"session_id": sid, "offset": off},
                           "close": concurrent and off + n == size}, path, off, n)
            except Failed as e:
                with lock:
                    state["error"] = e
                return
            took = time.perf_counter() - c0
            with lock:
                state["in_appends"] += took
                state["sizes"].append(n)
                if took < FAST_S and n == state["chunk"]:
                    state["chunk"] = min(state["chunk"] * 2, CHUNK_MAX)
                elif took > 3 * FAST_S:
                    state["chunk"] = max(state["chunk"] // 2, CHUNK_MIN)

    threads = [threading.Thread(target=worker) for _ in range(inflight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["error"]:
        raise state["error"]
    curl_post(url, token, "files/upload_session/finish",
              {"cursor": {"session_id": sid, "offset": size},
               "commit": {"path": dest, "mode": "add", "autorename": False, "mute": False}})
    return time.perf_counter() - t0, state["sizes"], state["in_appends"]


# ---- the stage ----------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("url")
    ap.add_argument("--user", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--upload-mib", type=int, default=500)
    ap.add_argument("--upload-runs", type=int, default=1)
    ap.add_argument("--notes", default=os.devnull)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--server-pid", type=int, default=0)
    a = ap.parse_args()
    token = os.environ.get("CUBBY_TOKEN") or sys.exit("CUBBY_TOKEN is not set")
    password = os.environ.get("CUBBY_PASSWORD") or sys.exit("CUBBY_PASSWORD is not set")
    base = a.url.rstrip("/")
    notes = open(a.notes, "a")
    problems = []

    def row(metric, unit, values):
        print(f"{metric}\t{unit}\t{values}", flush=True)

    def note(text):
        notes.write("web: " + text + "\n")
        notes.flush()

    def log(text):
        print(f"[{time.strftime('%H:%M:%S')}] web: {text}", file=sys.stderr, flush=True)

    def step(what, fn):
        """Runs one part of the stage; a failure is a problem, and the rest goes on."""
        try:
            return fn()
        except Exception as e:   # noqa: BLE001 - Playwright's errors and ours alike
            problems.append(f"{what}: {type(e).__name__}: {' '.join(str(e).split())}"[:500])
            log(f"{what} failed: {e}")
            return None

    api = Api(base, token)
    sizes = [n for n in (a.small, a.large) if n > 0]

    # ---- seeding ----
    def seed_all():
        for n in sizes:
            folder = f"/web-{label(n)}"
            secs, started = seed(api, folder, n, log)
            listed = count_entries(api, folder)
            note(f"seeded {folder}: {n:,} files of 17 bytes in {secs:.1f} s ({n / secs:.0f} files/s; "
                 f"upload_session/start from {SEED_THREADS} threads {started:.1f} s, then "
                 f"finish_batch_v2 by {BATCH:,}, {BATCH_INFLIGHT} in flight); list_folder shows {listed:,}")
            if listed != n:
                problems.append(f"{folder}: {listed} entries listed, {n} seeded")

    step("seeding", seed_all)

    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    browser = None
    try:
        browser = pw.chromium.launch(executable_path=a.chromium, headless=True, args=ARGS)
        note(f"browser: Chromium {browser.version} (headless, {a.chromium}), viewport 1280 x 800")

        def context(want=-1):
            ctx = browser.new_context(ignore_https_errors=True, base_url=base, storage_state=state,
                                      viewport={"width": 1280, "height": 800})
            ctx.set_default_timeout(600_000)
            ctx.add_init_script(WATCH % (want, ROWS))
            return ctx

        # Sign in once, through the form; later contexts carry only the session cookie.
        ctx = browser.new_context(ignore_https_errors=True, base_url=base)
        ctx.set_default_timeout(60_000)
        page = ctx.new_page()
        page.goto("/login?next=/home")
        page.fill("#login", a.user)
        page.fill("#password", password)
        with page.expect_navigation():
            page.click("#sign-in")
        if urllib.parse.urlsplit(page.url).path == "/login":
            raise Failed(f"signing in as {a.user} through /login failed: "
                         + " ".join(page.locator("main, body").first.inner_text().split())[:200])
        page.wait_for_selector("[data-app-ready]")
        state = ctx.storage_state()
        ctx.close()
        if not any(c["name"] for c in state["cookies"]):
            raise Failed("no cookie after signing in")

        # ---- time to first listing ----
        def first_listing(n):
            folder = f"web-{label(n)}"
            cold_first, cold_all, warm_first, warm_all, detail = [], [], [], [], []
            for run in range(a.runs):
                ctx = context(n)
                page = ctx.new_page()
                for k, (first, whole) in enumerate(((cold_first, cold_all), (warm_first, warm_all))):
                    if k == 1 and run > 0:
                        break   # one later visit is enough: it does not vary much
                    page.goto("/home/" + folder, wait_until="commit")
                    t = page.wait_for_function("() => window.__web && window.__web.first", polling="raf",
                                               timeout=120_000)
                    first.append(t.json_value())
                    t = page.wait_for_function("() => window.__web && window.__web.all", polling="raf",
                                               timeout=900_000)
                    whole.append(t.json_value())
                    if k == 0:
                        detail.append(page.evaluate("""() => {
                          const r = performance.getEntriesByType('resource');
                          const nav = performance.getEntriesByType('navigation')[0];
                          const lf = r.filter((e) => e.name.endsWith('/2/files/list_folder'));
                          const lc = r.filter((e) => e.name.endsWith('/2/files/list_folder/continue'));
                          const app = r.find((e) => /\\/assets\\/app\\.[0-9a-f]+\\.js$/.test(e.name));
                          return { shell: nav ? nav.responseEnd : null,
                                   app: app ? app.responseEnd : null,
                                   lf_start: lf.length ? lf[0].startTime : null,
                                   lf_end: lf.length ? lf[0].responseEnd : null,
                                   pages: lf.length + lc.length,
                                   api_ms: [...lf, ...lc].reduce((s, e) => s + e.responseEnd - e.startTime, 0),
                                   last_end: lc.length ? lc[lc.length - 1].responseEnd : null,
                                   api_bytes: [...lf, ...lc].reduce((s, e) => s + e.transferSize, 0),
                                   status: window.__web.status };
                        }"""))
                ctx.close()
            lab = label(n)
            row(f"web-first-listing-{lab}", "ms", " ".join(f"{v:.1f}" for v in cold_first))
            row(f"web-all-loaded-{lab}", "ms", " ".join(f"{v:.1f}" for v in cold_all))
            if warm_first:
                row(f"web-first-listing-{lab}-warm", "ms", " ".join(f"{v:.1f}" for v in warm_first))
                row(f"web-all-loaded-{lab}-warm", "ms", " ".join(f"{v:.1f}" for v in warm_all))
            med = lambda k: statistics.median([d[k] for d in detail if d[k] is not None] or [0])
            note(f"/home/{folder}, empty cache, medians of {len(detail)}: shell in at {med('shell'):.0f} ms, "
                 f"app.js in at {med('app'):.0f} ms, first list_folder sent at {med('lf_start'):.0f} "
                 f"and answered at {med('lf_end'):.0f} ms, first row drawn at "
                 f"{statistics.median(cold_first):.0f} ms, all {n:,} listed at "
                 f"{statistics.median(cold_all):.0f} ms ({detail[0]['pages']} list_folder pages, "
                 f"{detail[0]['api_bytes']:,} bytes"
                 + (f", {med('api_ms'):.0f} ms waiting on them one after the other, the last answered "
                    f"at {med('last_end'):.0f} ms" if detail[0]["pages"] > 1 else "")
                 + f"; the status line then read \"{detail[0]['status']}\")")
            log(f"first listing of {n:,}: first row {statistics.median(cold_first):.0f} ms, all "
                f"{statistics.median(cold_all):.0f} ms (median of {len(cold_first)})")

        for n in sizes:
            step(f"first listing of {n:,}", lambda: first_listing(n))
        note("first listing: from navigation start (performance.timeOrigin) to the first animation "
             "frame with a file row (role=\"row\" in the grid's rowgroup); \"all loaded\": the first "
             "frame with body[data-app-ready] (the app sets it once the last list_folder page is in "
             "and sorted) and the grid's aria-rowcount = entries + 1; empty cache (a new context with "
             "only the session cookie); \"-warm\": the same page navigated there again")

        # ---- bytes of the first load ----
        def first_load():
            ctx = context()
            page = ctx.new_page()
            cdp = ctx.new_cdp_session(page)
            cdp.send("Network.enable")
            urls, done, statuses = {}, {}, {}
            cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
            cdp.on("Network.responseReceived", lambda e: statuses.__setitem__(e["requestId"], e["response"]["status"]))
            cdp.on("Network.loadingFinished", lambda e: done.__setitem__(e["requestId"], e["encodedDataLength"]))
            page.goto("/home", wait_until="load")
            page.wait_for_selector("[data-app-ready]")
            page.wait_for_timeout(1000)
            perf = page.evaluate("""() => [...performance.getEntriesByType('navigation'),
                                           ...performance.getEntriesByType('resource')]
                                  .map((e) => [e.name, e.transferSize, e.decodedBodySize])""")
            ctx.close()
            app_b = api_b = n_app = n_api = 0
            items = []
            for rid, b in done.items():
                path = urllib.parse.urlsplit(urls.get(rid, "")).path
                if path.startswith("/2/"):
                    api_b += b
                    n_api += 1
                else:
                    app_b += b
                    n_app += 1
                    items.append(f"{path.rsplit('/', 1)[-1] or path} {b:,}")
                if statuses.get(rid, 200) >= 400:
                    problems.append(f"first load: {path} answered HTTP {statuses[rid]}")
            pending = [urllib.parse.urlsplit(u).path for r, u in urls.items() if r not in done]
            row("web-first-load-bytes", "bytes", str(app_b))
            row("web-first-load-api-bytes", "bytes", str(api_b))
            p_app = sum(t for u, t, _ in perf if not urllib.parse.urlsplit(u).path.startswith("/2/"))
            p_dec = sum(d for u, _, d in perf if not urllib.parse.urlsplit(u).path.startswith("/2/"))
            note(f"first load of /home, empty cache: {n_app} requests for the app, {app_b:,} bytes on "
                 f"the wire (CDP encodedDataLength: bodies as sent, gzip where the server compresses, "
                 f"plus headers; Resource Timing's transferSize sum: {p_app:,}; {p_dec:,} bytes "
                 f"decoded); API: {n_api} requests finished, {api_b:,} bytes"
                 + (f"; still open: {', '.join(pending)}" if pending else ""))
            note("first load, per request: " + ", ".join(items))

        step("first load", first_load)

        # ---- upload: curl, then the browser, on the same file ----
        def uploads():
            size = a.upload_mib * MiB
            fpath = os.path.join(a.scratch, "web-upload.bin")
            folder = "/web-upload"
            t0 = time.perf_counter()
            make_file(fpath, size)
            log(f"made {fpath} ({a.upload_mib} MiB) in {time.perf_counter() - t0:.1f} s")
            api.call("files/create_folder_v2", {"path": folder}, ok=(200, 409))
            curl_r, curl1_r, browser_r, stamp_n = [], [], [], 0
            try:
                for run in range(a.upload_runs):
                    for inflight, into in ((IN_FLIGHT, curl_r), (1, curl1_r)):
                        stamp_n += 1
                        stamp(fpath, size, stamp_n)
                        dest = f"{folder}/curl-{run}-{inflight}.bin"
                        c0, s0 = children_cpu_s(), cpu_s(a.server_pid)
                        secs, chunks, in_appends = curl_upload(base, token, fpath, size, dest, inflight)
                        c1, s1 = children_cpu_s(), cpu_s(a.server_pid)
                        got = size_of(api, dest)
                        if got != size:
                            raise Failed(f"curl's upload: {dest} has size {got}, not {size}")
                        into.append(size / 1e6 / secs)
                        log(f"curl ({inflight} in flight): {size / 1e6 / secs:.1f} MB/s ({secs:.2f} s)")
                        note(f"upload {run + 1}, curl with {inflight} append(s) in flight: {secs:.2f} s, "
                             f"{in_appends:.2f} s in {len(chunks)} append_v2 of "
                             f"{', '.join(f'{c / MiB:g}' for c in chunks)} MiB "
                             f"(upload.js's rule; a curl process each); CPU: curl, tail and head "
                             f"{c1 - c0:.1f} s" + (f", server {s1 - s0:.1f} s" if a.server_pid else ""))
                        delete(api, dest)

                    stamp_n += 1
                    stamp(fpath, size, stamp_n)
                    dest = f"{folder}/{os.path.basename(fpath)}"
                    secs, offsets, tl, cpu = browser_upload(fpath, size, dest)
                    browser_r.append(size / 1e6 / secs)
                    log(f"browser: {size / 1e6 / secs:.1f} MB/s ({secs:.2f} s)")
                    cs = [b - o for o, b in zip(offsets, offsets[1:] + [size])]
                    note(f"upload {run + 1}, browser: {secs:.2f} s from handing the file to the chooser "
                         f"to get_metadata showing it; in the page, {tl['span'] / 1000:.2f} s from "
                         f"upload_session/start sent to finish answered, of which "
                         f"{tl['appends'] / 1000:.2f} s in {len(offsets)} append_v2 of "
                         f"{', '.join(f'{c / MiB:g}' for c in cs)} MiB and {tl['gaps'] / 1000:.2f} s "
                         f"between requests; CPU: Chromium {sum(cpu[0].values()):.1f} s ("
                         + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu[0].items(), key=lambda x: -x[1])
                                     if v >= 0.05)
                         + ")"
                         + (f", server {cpu[1]:.1f} s" if a.server_pid else ""))
                    delete(api, dest)
            finally:
                if os.path.exists(fpath):
                    os.remove(fpath)
                step("delete /web-upload", lambda: delete(api, folder))
                if curl_r:
                    row("web-upload-curl", "MB/s", " ".join(f"{v:.1f}" for v in curl_r))
                if curl1_r:
                    row("web-upload-curl-sequential", "MB/s", " ".join(f"{v:.1f}" for v in curl1_r))
                if browser_r:
                    row("web-upload-browser", "MB/s", " ".join(f"{v:.1f}" for v in browser_r))
                row("web-upload-file", "MiB", str(a.upload_mib))

        def browser_upload(fpath, size, dest):
            ctx = context()
            page = ctx.new_page()
            offsets = []

            def on_request(req):
                if req.url.endswith("/2/files/upload_session/append_v2"):
                    offsets.append(json.loads(req.headers["dropbox-api-arg"])["cursor"]["offset"])

            page.on("request", on_request)
            page.goto("/home/web-upload")
            page.wait_for_selector("[data-app-ready]")
            with page.expect_file_chooser() as fc:
                for attempt in range(3):
                    page.get_by_role("button", name="Upload", exact=True).click()
                    try:
                        page.get_by_role("menuitem", name="Files").click(timeout=3000)
                        break
                    except Exception:   # noqa: BLE001 - the menu closed under us: again
                        if attempt == 2:
                            raise
            poll = Api(base, token)
            c0, s0 = chromium_cpu_s(), cpu_s(a.server_pid)
            t0 = time.perf_counter()
            fc.value.set_files(fpath)
            deadline = t0 + max(600, size / 1e6)   # at least 1 MB/s
            while size_of(poll, dest) != size:
                if time.perf_counter() > deadline:
                    panel = page.locator(".up-panel").all_inner_texts()
                    raise Failed(f"the browser's upload of {dest} did not complete: {panel}")
                time.sleep(0.02)
            secs = time.perf_counter() - t0
            c1 = chromium_cpu_s()
            cpu = ({k: v - c0.get(k, 0.0) for k, v in c1.items()}, cpu_s(a.server_pid) - s0)
            # The session's requests as the page timed them (Resource Timing of the XHRs).
            tl = page.evaluate("""() => {
              const r = performance.getEntriesByType('resource')
                .filter((e) => e.name.includes('/2/files/upload_session/'))
                .sort((x, y) => x.startTime - y.startTime);
              let gaps = 0, appends = 0;
              r.forEach((e, i) => {
                if (e.name.endsWith('/append_v2')) appends += e.responseEnd - e.startTime;
                if (i) gaps += Math.max(0, e.startTime - r[i - 1].responseEnd);
              });
              return { span: r.length ? r[r.length - 1].responseEnd - r[0].startTime : 0, appends, gaps };
            }""")
            try:   # the panel says so too (not timed)
                page.wait_for_selector('.up-panel .up-item[data-state="done"]', timeout=10_000)
            except Exception:   # noqa: BLE001
                note("upload, browser: the file is there but the panel did not show it done within 10 s")
            ctx.close()
            return secs, sorted(offsets), tl, cpu

        if a.upload_mib > 0:
            step("upload", uploads)
    except Exception as e:   # noqa: BLE001
        problems.append(f"{type(e).__name__}: {' '.join(str(e).split())[:500]}")
    finally:
        if browser is not None:
            browser.close()
        pw.stop()
    for p in problems:
        note(f"problem: {p}")
        print(f"web.py: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    if not shutil.which("curl"):
        sys.exit("web.py: no curl")
    main()
