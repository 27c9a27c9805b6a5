#!/usr/bin/env python3
"""Benchmarks of the large-file and bulk routes, against a running Cubby.

Usage: sessions.py BASE_URL TOKEN [--gib 2] [--small 10000] [--entries 100000] [--disk DIR]
                   [--server-pid PID]

Prints, one per line as `name<TAB>value<TAB>unit`:
  - MB/s of a 2 GiB upload through one sequential session, and through one concurrent
    session fed by 4 appender processes (not threads: threads share one interpreter lock,
    which held 4 of them to what one pushes, about 850 MB/s even into a server that
    discarded the bytes);
  - files/s for 4 KiB files committed through upload_session/start + finish_batch_v2, beside
    the per-file /2/files/upload rate, both from 2 client processes of 8 threads (one process
    capped the batched path; see CLIENT_PROCS); then the same twice more, on a store that
    holds the earlier rounds' files;
  - this client's own ceiling, check/user requests per second from the same processes and
    threads (a batched upload still sends one request per file, so it cannot pass that rate);
  - with --server-pid PID: the server's CPU milliseconds per 4 KiB file on each path (first
    round);
  - the time of `restore` of a 1 GiB file's earlier revision;
  - search_v2 latency (median of 5) over a tree of 100,000 entries;
  - copy_reference/save latency (median of 5) for a 1 MiB file, a 1 GiB file and a folder
    of 1,000 files (saved by the same account: the work is the same for another one);
  - save_url MB/s of a 1 GiB file served by a local origin (the server must run with
    --fetch-allow 127.0.0.1/32), from the call to the job's completion;
  - with --disk DIR (a folder on the server's data disk): the disk's own rate for what the
    block store does, 4 MiB files each written and fsynced, one writer and 4 writers, so the
    session figures can be read against the disk's limit.
Standard library only. Every block uploaded is distinct (a counter is stamped into each 4 MiB
block), so deduplication does not flatter the figures.
"""
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse

BLOCK = 4 * 1024 * 1024
CHUNK = 64 * 1024 * 1024


class Api:
    def __init__(self, base, token):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.base, self.token = base, token
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self.local.c = c
        return c

    def call(self, route, arg, body=None, content=False):
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
                self.local.c = None
                if attempt:
                    raise
        if r.status != 200:
            raise RuntimeError("{} -> {} {}".format(route, r.status, out[:300]))
        return json.loads(out) if out else None


def stamped(buf, counter):
    """A chunk whose every 4 MiB block starts with a distinct counter."""
    for i in range(0, len(buf), BLOCK):
        buf[i:i + 8] = (counter * 1000 + i // BLOCK).to_bytes(8, "little")
    return bytes(buf)


def sequential(api, total):
    buf = bytearray(CHUNK)
    sid = api.call("files/upload_session/start", {}, b"", content=True)["session_id"]
    t = time.perf_counter()
    off = 0
    n = 0
    while off < total:
        api.call("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": off}}, stamped(buf, n), content=True)
        off += CHUNK
        n += 1
    api.call("files/upload_session/finish", {"cursor": {"session_id": sid, "offset": off}, "commit": {"path": "/bench/seq.bin", "mode": "overwrite"}}, b"", content=True)
    return total / (time.perf_counter() - t) / 1e6


def append_part(args):
    """One appender process's share of a concurrent session: every `workers`-th chunk."""
    base, token, sid, total, chunks = args
    api = Api(base, token)
    buf = bytearray(CHUNK)
    last = total // CHUNK - 1
    for i in chunks:
        api.call("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": i * CHUNK}, "close": i == last}, stamped(buf, 10_000 + i), content=True)


def concurrent(api, total, workers=4):
    import multiprocessing
    sid = api.call("files/upload_session/start", {"session_type": "concurrent"}, b"", content=True)["session_id"]
    n = total // CHUNK
    parts = [(api.base, api.token, sid, total, list(range(p, n, workers))) for p in range(workers)]
    with multiprocessing.Pool(workers) as pool:
        pool.map(len, [[0]] * workers)  # the processes are up before the clock starts
        t = time.perf_counter()
        pool.map(append_part, parts)
        api.call("files/upload_session/finish", {"cursor": {"session_id": sid, "offset": total}, "commit": {"path": "/bench/conc.bin", "mode": "overwrite"}}, b"", content=True)
        return total / (time.perf_counter() - t) / 1e6


def parallel(items, threads, fn):
    """Calls fn on every item from `threads` threads."""
    idx = list(items)
    lock = threading.Lock()
    errors = []

    def work():
        while True:
            with lock:
                if not idx:
                    return
                i = idx.pop()
            try:
                fn(i)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                return

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (0 without a pid)."""
    if not pid:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The small-file client: 2 processes of 8 threads, 16 connections in all. One process of 16
# threads topped out at about 5,050 requests/s (its interpreter lock), which capped the
# batched path below what the server takes; two processes send 10,000-15,000 check/user
# requests/s here, well above either path.
CLIENT_PROCS, CLIENT_THREADS = 2, 8


def small_data(r, i):
    return (b"%02d%06d" % (r, i)) * 512  # 4 KiB, distinct across rounds and paths


def small_part(job):
    """One client process's share of a small-file phase; returns {index: session id} for
    "start"."""
    phase, base, token, r, n, items = job
    api = Api(base, token)
    ids = {}

    def one(i):
        if phase == "upload":
            api.call("files/upload", {"path": "/bench/up%d/f%05d" % (r, i)}, small_data(r, i), content=True)
        elif phase == "start":
            ids[i] = api.call("files/upload_session/start", {"close": True}, small_data(r, n + i), content=True)["session_id"]
        else:
            api.call("check/user", {"query": "bench"})

    parallel(items, CLIENT_THREADS, one)
    return ids


def fan_out(pool, api, phase, r, n):
    """Runs a small-file phase over indices 0..n split across the client processes."""
    jobs = [(phase, api.base, api.token, r, n, range(p, n, CLIENT_PROCS)) for p in range(CLIENT_PROCS)]
    out = {}
    for ids in pool.map(small_part, jobs):
        out.update(ids)
    return out


def small_files(api, n, server_pid=None, rounds=3):
    """Files/s of the per-file and the batched path in `rounds` rounds of `n` files each, per-file
    then batched, the server's CPU ms per file of each path in round 1, and the client's own
    ceiling (check/user requests/s: a batched upload still sends one request per file, so it
    cannot pass that rate). Round 1 is the aim's set-up (a new store); each later round runs on
    a store that holds the earlier rounds' files, which shows how each path's rate follows the
    store's size."""
    import multiprocessing
    pairs, cpu_file, cpu_batch = [], 0.0, 0.0
    with multiprocessing.Pool(CLIENT_PROCS) as pool:
        pool.map(len, [[0]] * CLIENT_PROCS)  # the processes are up before the clock starts
        for r in range(rounds):
            c0, t = cpu_seconds(server_pid), time.perf_counter()
            fan_out(pool, api, "upload", r, n)
            per_file = n / (time.perf_counter() - t)
            c1 = cpu_seconds(server_pid)
            t = time.perf_counter()
            sessions = fan_out(pool, api, "start", r, n)
            for lo in range(0, n, 1000):
                entries = [{"cursor": {"session_id": sessions[i], "offset": 4096}, "commit": {"path": "/bench/batch%d/f%05d" % (r, i)}} for i in range(lo, min(n, lo + 1000))]
                res = api.call("files/upload_session/finish_batch_v2", {"entries": entries})
                bad = [e for e in res["entries"] if e[".tag"] != "success"]
                if bad:
                    raise RuntimeError("finish_batch_v2 failures: %s" % bad[:2])
            batched = n / (time.perf_counter() - t)
            c2 = cpu_seconds(server_pid)
            pairs.append((per_file, batched))
            if r == 0:
                cpu_file, cpu_batch = (c1 - c0) * 1000 / n, (c2 - c1) * 1000 / n
        t = time.perf_counter()
        fan_out(pool, api, "check", 0, n)
        floor = n / (time.perf_counter() - t)
    return pairs, cpu_file, cpu_batch, floor


def upload_big(api, path, total, stamp):
    buf = bytearray(CHUNK)
    sid = api.call("files/upload_session/start", {}, b"", content=True)["session_id"]
    for k in range(total // CHUNK):
        api.call("files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": k * CHUNK}}, stamped(buf, stamp + k), content=True)
    return api.call("files/upload_session/finish", {"cursor": {"session_id": sid, "offset": total}, "commit": {"path": path, "mode": "overwrite"}}, b"", content=True)


def restore_time(api):
    old = upload_big(api, "/bench/restore.bin", 1 << 30, 50_000)
    api.call("files/upload", {"path": "/bench/restore.bin", "mode": "overwrite"}, b"small now", content=True)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        md = api.call("files/restore", {"path": "/bench/restore.bin", "rev": old["rev"]})
        times.append(time.perf_counter() - t)
        assert md["size"] == 1 << 30
        api.call("files/upload", {"path": "/bench/restore.bin", "mode": "overwrite"}, b"small again %f" % t, content=True)
    return statistics.median(times) * 1000


def copyref_latency(api):
    """Median save latency (ms) of references to a 1 MiB file, a 1 GiB file, 1,000 files."""
    api.call("files/upload", {"path": "/bench/ref/1m.bin", "mode": "overwrite"}, stamped(bytearray(1 << 20), 70_000), content=True)
    upload_big(api, "/bench/ref/1g.bin", 1 << 30, 80_000)
    sessions = [api.call("files/upload_session/start", {"close": True}, b"track %04d" % i * 100, content=True)["session_id"] for i in range(1000)]
    entries = [{"cursor": {"session_id": sid, "offset": 1000}, "commit": {"path": "/bench/ref/album/t%04d.flac" % i}} for i, sid in enumerate(sessions)]
    res = api.call("files/upload_session/finish_batch_v2", {"entries": entries})
    assert all(e[".tag"] == "success" for e in res["entries"]), res["entries"][:2]
    out = []
    for label, path in (("1 MiB file", "/bench/ref/1m.bin"), ("1 GiB file", "/bench/ref/1g.bin"), ("folder of 1,000 files", "/bench/ref/album")):
        ref = api.call("files/copy_reference/get", {"path": path})["copy_reference"]
        times = []
        for k in range(5):
            t = time.perf_counter()
            api.call("files/copy_reference/save", {"copy_reference": ref, "path": "/bench/saved/%s-%d" % (path.rsplit("/", 1)[1], k)})
            times.append(time.perf_counter() - t)
        out.append(("copy_reference/save, %s (median of 5)" % label, statistics.median(times) * 1000, "ms"))
    return out


def saveurl_rate(api, total=1 << 30):
    """MB/s of save_url fetching `total` distinct bytes from a local origin."""
    import http.server

    base = int(time.time() * 1000) % 1_000_000 * 10_000  # new bytes every run: no dedup

    class Origin(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(total))
            self.end_headers()
            buf = bytearray(CHUNK)
            for k in range(total // CHUNK):
                self.wfile.write(stamped(buf, base + k))

        def log_message(self, *args):
            pass

    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/big.bin" % origin.server_address[1]
        t = time.perf_counter()
        job = api.call("files/save_url", {"path": "/bench/saved-url-%d.bin" % base, "url": url})["async_job_id"]
        while True:
            st = api.call("files/save_url/check_job_status", {"async_job_id": job})
            if st[".tag"] != "in_progress":
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t
        if st[".tag"] != "complete" or st["size"] != total:
            raise RuntimeError("save_url did not complete: %s" % st)
        return total / elapsed / 1e6
    finally:
        origin.shutdown()


def search_latency(api, entries):
    per_folder = 1000
    for d in range(entries // per_folder):
        paths = ["/bench/tree/d%03d/item-%05d%s" % (d, i, "-report" if i % 97 == 0 else "") for i in range(per_folder)]
        res = api.call("files/create_folder_batch", {"paths": paths})
        assert res[".tag"] == "complete", res
    times = []
    for _ in range(5):
        t = time.perf_counter()
        res = api.call("files/search_v2", {"query": "report", "options": {"max_results": 100}})
        times.append(time.perf_counter() - t)
        assert res["matches"], "search found nothing"
    return statistics.median(times) * 1000


def disk_rate(folder, total, writers):
    """MB/s of writing `total` bytes as 4 MiB files, each fsynced, with `writers` threads."""
    import tempfile
    d = tempfile.mkdtemp(dir=folder)
    n = total // BLOCK
    todo = list(range(n))
    lock = threading.Lock()

    def work():
        buf = bytearray(os.urandom(BLOCK))
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            buf[:8] = i.to_bytes(8, "little")
            path = os.path.join(d, "b%06d" % i)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, buf)
            os.fsync(fd)
            os.close(fd)

    t = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(writers)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    dfd = os.open(d, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    rate = n * BLOCK / (time.perf_counter() - t) / 1e6
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)
    return rate


def main():
    base, token = sys.argv[1], sys.argv[2]
    opts = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    gib = float(opts.get("--gib", 2))
    small = int(opts.get("--small", 10000))
    entries = int(opts.get("--entries", 100000))
    total = int(gib * (1 << 30)) // CHUNK * CHUNK
    api = Api(base, token)
    out = []
    if "--disk" in opts:
        out += [
            ("disk: 4 MiB files fsynced, 1 writer", disk_rate(opts["--disk"], min(total, 1 << 30), 1), "MB/s"),
            ("disk: 4 MiB files fsynced, 4 writers", disk_rate(opts["--disk"], min(total, 1 << 30), 4), "MB/s"),
        ]
    out += [
        ("session upload, 1 sequential", sequential(api, total), "MB/s"),
        ("session upload, 4 concurrent appender processes", concurrent(api, total), "MB/s"),
    ]
    pairs, per_file_cpu, batched_cpu, floor = small_files(api, small, int(opts.get("--server-pid", 0)))
    out += [
        ("4 KiB files, /2/files/upload, 2 x 8 threads", pairs[0][0], "files/s"),
        ("4 KiB files, start+finish_batch_v2, 2 x 8 threads", pairs[0][1], "files/s"),
    ]
    for r, (p, b) in enumerate(pairs[1:], 1):
        more = "{:,}".format(2 * small * r)
        out += [
            ("4 KiB files, /2/files/upload, store holding %s more files" % more, p, "files/s"),
            ("4 KiB files, start+finish_batch_v2, store holding %s more files" % more, b, "files/s"),
        ]
    out += [
        ("client alone: check/user requests, 2 x 8 threads", floor, "requests/s"),
        ("restore of a 1 GiB file (median of 5)", restore_time(api), "ms"),
    ]
    out += copyref_latency(api)
    out.append(("save_url of a 1 GiB file from a local origin", saveurl_rate(api), "MB/s"))
    out += [
        ("search_v2 over %d entries (median of 5)" % entries, search_latency(api, entries), "ms"),
    ]
    if "--server-pid" in opts:
        out += [
            ("server CPU per 4 KiB file, /2/files/upload", per_file_cpu, "ms"),
            ("server CPU per 4 KiB file, start+finish_batch_v2", batched_cpu, "ms"),
        ]
    for name, value, unit in out:
        print("%s\t%.3f\t%s" % (name, value, unit), flush=True)


if __name__ == "__main__":
    main()
