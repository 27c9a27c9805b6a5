#!/usr/bin/env python3
"""Stage j of scripts/bench: thousands of concurrent connections and a mixed workload for minutes.

Usage: load.py URL --server-pid PID [--connections 2000] [--seconds 120] [--workers 16]
               [--log SERVER_LOG] [--rows FILE] [--json FILE]

The bearer token comes from the environment variable CUBBY_TOKEN (never from argv). Standard
library only: one asyncio event loop over raw sockets (a minimal HTTP/1.1 client), so that one
process really holds every connection open; the client raises its own RLIMIT_NOFILE to the hard
limit first.

What runs (plain HTTP on 127.0.0.1 only; every loop ends at the deadline):
  - setup: seed files under /load/seed (64 x 4 KiB, 8 x 1 MiB) and one folder per quiet longpoll;
  - WORKERS active clients, one keep-alive connection each, a weighted mix of files/upload (4 KiB,
    new content each time), files/download (length and content_hash checked against the
    Dropbox-API-Result header), get_metadata, list_folder (+ continue), upload sessions
    (start/append_v2/finish of 1 MiB in 4 parts, result's size and content_hash checked),
    copy_v2/move_v2/delete_v2;
  - 8 longpolls (files/list_folder/longpoll, timeout 30, no Authorization as Dropbox's SDKs send
    it; two connections each, one for the longpoll, one for its cursor calls): 4 on /load recursively (woken by every writer, then list_folder/continue), 4 on quiet
    folders that a writer touches every 1-3 s while one of them waits: the wake delay (from the
    start of that write to the longpoll's answer) is a figure of its own;
  - the other connections, most of them idle or slow: slow readers (a 1 MiB download read at
    32 KiB/s through a small receive buffer), slow writers (a 4 KiB upload sent at 256 B/s),
    slow headers (a request's headers sent one byte a second: the server should cut them at its
    30 s header-read limit), stalled uploads (headers and 100 of 4096 body bytes, then nothing:
    cut at the 60 s body-progress limit), silent connections (never send a byte), abandoned
    keep-alive connections (one check/user, then silent until the server closes them) and kept
    ones (a check/user every 5-20 s). A connection the server closes is counted, with how long
    it had been quiet, and opened again, so the count held stays near CONNECTIONS. Past the
    server's 10,000 connections, new ones should get a plain 503 with Retry-After: counted, and
    retried after Retry-After.
  - every second: the server's VmRSS, VmHWM, threads and open descriptors (/proc/PID), and the
    connections this client holds; every 50 ms, how late the client's event loop wakes (its own
    share of every latency); over the stage, the CPU of the server, of this client and of the
    rest of the machine (/proc/stat), and the kernel's ListenOverflows (SYNs dropped on a full
    accept queue: each costs its client a 1 s retransmit).

A request about to go out on a keep-alive connection that the server has closed meanwhile (its
EOF already received) goes out on a new connection instead, as HTTP clients' pools do; those are
counted, not errors.

Errors: any answer other than 200 (by status), a transport failure (reset, early EOF, timeout),
content that does not match its hash. A 429 is not an error when it carries Retry-After (the
request is retried after it, up to 3 times); a 429 without it is. A cap 503 is not an error when
it carries Retry-After. The deliberately broken requests (slow headers, stalled uploads) are
reported apart, with what the server answered and when.

Outputs: --rows FILE: rows in scripts/bench's results.tsv format (bench target metric unit median
min max n raw), bench names load, load-count, load-p50, load-p90, load-p99, load-max,
load-errors, load-429, load-close; stdout: notes, one a line; stderr: a readable summary; --json FILE:
everything. Exits 0 once it has measured, whatever the figures; 2 if the harness broke (no
connection, setup failed).
"""
import argparse
import asyncio
import collections
import gc
import hashlib
import json
import os
import random
import re
import resource
import socket
import sys
import time
import urllib.parse

MAX_CONNECTIONS = 10_000   # crates/server/src/conn.rs: per listener
IDLE_S, HEADER_S, BODY_S = 75, 30, 60  # conn.rs: idle, header read, body progress
LONGPOLL_TIMEOUT = 30
BLOCK = 4 * 1024 * 1024
MIB = 1024 * 1024
REQ_TIMEOUT = 60.0         # any ordinary request
GRACE_S = 15.0             # after the deadline, for the active clients' requests in flight
RAMP_MAX_S = 120.0         # opening every connection

OPS_MIX = (  # (weight, op); op names are routes or composites
    (30, "upload"), (20, "download"), (15, "get_metadata"), (10, "list_folder"),
    (5, "session"), (10, "copy_move_delete"),
)


class Transport(Exception):
    """A request that got no complete answer: reset, EOF, timeout, malformed."""


def dbx_hash(data):
    """Dropbox's content_hash: SHA-256 of the SHA-256s of each 4 MiB block."""
    return hashlib.sha256(b"".join(hashlib.sha256(data[i:i + BLOCK]).digest()
                                   for i in range(0, len(data), BLOCK))).hexdigest()


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, -(-p * len(sorted_vals) // 100) - 1))
    return sorted_vals[k]


class Run:
    """Shared state: the configuration, the clock and every figure."""

    def __init__(self, args, token):
        u = urllib.parse.urlsplit(args.url)
        if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"load.py: only http://127.0.0.1 URLs, not {args.url}")
        self.addr = ("127.0.0.1", u.port or 80)
        self.host = f"127.0.0.1:{self.addr[1]}"
        self.token = token
        self.args = args
        self.t0 = time.monotonic()
        self.deadline = None          # set when the ramp ends
        self.stopping = False
        self.lat = collections.defaultdict(list)        # op -> [ms] of 200 answers
        self.errors = collections.defaultdict(collections.Counter)  # op -> {status: n}
        self.examples = {}            # (op, status) -> first example, for the report
        self.r429 = collections.Counter()  # op -> 429 answers with Retry-After
        self.refused = collections.Counter()  # "with Retry-After"/"without" -> cap 503s
        self.closes = collections.defaultdict(list)     # kind -> [seconds quiet before close]
        self.close_answers = collections.defaultdict(collections.Counter)  # kind -> {first line: n}
        self.open_now = 0
        self.open_peak = 0
        self.opened = 0
        self.samples = []             # (t, rss_kb, hwm_kb, threads, fds, client_open)
        self.wake_ms = []
        self.longpoll_changes = collections.Counter()
        self.cut_at_end = collections.Counter()
        self.stale = collections.Counter()  # op -> idle connections found closed before a request
        self.seq = 0
        self.quiet_waiting = {}       # quiet longpoll k -> monotonic start of its wait
        self.quiet_write = {}         # k -> start of the last write into its folder
        self.seed_small, self.seed_big = [], []
        self.lag_ms = []              # the event loop's lateness, sampled every 50 ms
        self.gc_ms = []               # each cyclic garbage collection's duration

    def now(self):
        return time.monotonic()

    def running(self):
        return not self.stopping and (self.deadline is None or self.now() < self.deadline)

    def remaining(self):
        return max(0.0, (self.deadline or (self.now() + 3600)) - self.now())

    def next_id(self):
        self.seq += 1
        return self.seq

    def ok(self, op, ms):
        self.lat[op].append(ms)

    def err(self, op, status, example=""):
        self.errors[op][str(status)] += 1
        self.examples.setdefault((op, str(status)), example[:300])


class Conn:
    """One HTTP/1.1 connection over an asyncio stream."""

    def __init__(self, run, rcvbuf=None, limit=64 * 1024):
        self.run, self.rcvbuf, self.limit = run, rcvbuf, limit
        self.r = self.w = None
        self.sent_at = self.last_io = 0.0

    @property
    def closed(self):
        return self.w is None

    async def connect(self, timeout=10.0):
        loop = asyncio.get_running_loop()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setblocking(False)
            if self.rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = time.perf_counter()
            await asyncio.wait_for(loop.sock_connect(s, self.run.addr), timeout)
            self.r, self.w = await asyncio.open_connection(sock=s, limit=self.limit)
        except BaseException:
            s.close()
            raise
        self.run.ok("connect (TCP)", (time.perf_counter() - t) * 1000)
        self.run.open_now += 1
        self.run.opened += 1
        self.run.open_peak = max(self.run.open_peak, self.run.open_now)
        self.last_io = self.run.now()

    def close(self):
        if self.w is not None:
            self.run.open_now -= 1
            try:
                self.w.transport.abort()
            except Exception:
                pass
            self.r = self.w = None

    def head(self, route, headers, length):
        lines = [f"POST /2/{route} HTTP/1.1", f"Host: {self.run.host}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def send(self, head, body, slow=None):
        """slow: (bytes per piece, pause s) for the body; the head goes at once."""
        if not slow:
            self.w.write(head + body)
            await self.w.drain()
        else:
            self.w.write(head)
            await self.w.drain()
            for i in range(0, len(body), slow[0]):
                await asyncio.sleep(slow[1])
                self.w.write(body[i:i + slow[0]])
                await self.w.drain()
        self.last_io = self.run.now()

    async def response(self, slow=None):
        """(status, headers, body); slow: (bytes per read, pause s) for the body."""
        raw = await self.r.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise Transport(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        hdrs = {}
        for ln in lines[1:]:
            k, sep, v = ln.partition(":")
            if sep:
                hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            if slow:
                chunks, got = [], 0
                while got < n:
                    await asyncio.sleep(slow[1])
                    c = await self.r.readexactly(min(slow[0], n - got))
                    chunks.append(c)
                    got += len(c)
                body = b"".join(chunks)
            else:
                body = await self.r.readexactly(n)
        elif "chunked" in hdrs.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int((await self.r.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await self.r.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                chunks.append(await self.r.readexactly(size))
                await self.r.readexactly(2)
                if slow:
                    await asyncio.sleep(slow[1])
            body = b"".join(chunks)
        else:
            body = await self.r.read()   # until EOF (bounded by the caller's timeout)
            hdrs["connection"] = "close"
        self.last_io = self.run.now()
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, body


async def call(run, conn, op, route, arg=None, body=b"", style="rpc", auth=True,
               timeout=REQ_TIMEOUT, slow_read=None, slow_write=None, record=True):
    """One API call on conn (reopened if closed), retried after a 429's Retry-After (3 times at
    most). Returns (status, headers, parsed result or body) for a 200, else None (counted)."""
    for attempt in range(4):
        if not conn.closed and (conn.r.at_eof() or conn.r.exception() is not None):
            # the server closed it while it sat idle: reopen, as HTTP clients' pools do
            run.stale[op] += 1
            conn.close()
        if conn.closed:
            try:
                await conn.connect()
            except (OSError, asyncio.TimeoutError) as e:
                run.err(op, f"connect: {type(e).__name__}", str(e))
                return None
        headers = {}
        if auth:
            headers["Authorization"] = f"Bearer {run.token}"
        if style == "rpc":
            headers["Content-Type"] = "application/json"
            data = json.dumps(arg).encode()
        else:
            headers["Dropbox-API-Arg"] = json.dumps(arg)
            if style == "upload":
                headers["Content-Type"] = "application/octet-stream"
            data = body
        head = conn.head(route, headers, len(data))
        quiet_before = run.now() - conn.last_io
        t = time.perf_counter()
        try:
            async def exchange():
                await conn.send(head, data, slow_write)
                return await conn.response(slow_read)
            status, hdrs, out = await asyncio.wait_for(exchange(), timeout)
        except asyncio.CancelledError:
            conn.close()
            raise
        except asyncio.TimeoutError:
            conn.close()
            run.err(op, "timeout", f"no complete answer to {route} in {timeout:g} s")
            return None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                Transport) as e:
            got = bytes(getattr(conn.r, "_buffer", b"")) if conn.r is not None else b""
            conn.close()
            if got.startswith(b"HTTP/1.1 503") and b"Too many connections" in got:
                # refused past the cap while the request was still going out
                ra = re.search(rb"(?i)\r\nretry-after:\s*(\d+)", got)
                run.refused["with Retry-After" if ra else "without Retry-After"] += 1
                if not ra:
                    run.err(op, "503 (cap) without Retry-After", got[:200].decode("latin-1"))
                    return None
                if attempt == 3 or not run.running():
                    return None
                await asyncio.sleep(min(float(ra.group(1)), 5.0) + random.random())
                continue
            kind = {ConnectionResetError: "reset", BrokenPipeError: "broken pipe",
                    asyncio.IncompleteReadError: "early EOF"}.get(type(e), type(e).__name__)
            run.err(op, kind, f"{route}: {e} (the connection had been quiet {quiet_before:.1f} s)")
            return None
        ms = (time.perf_counter() - t) * 1000
        if status == 429:
            ra = hdrs.get("retry-after")
            if ra is None or not ra.strip().isdigit():
                run.err(op, "429 without Retry-After", f"{route}: {out[:200]!r}")
                return None
            run.r429[op] += 1
            wait = min(float(ra), 5.0)
            if attempt == 3 or not run.running() or run.remaining() < wait:
                return None
            await asyncio.sleep(wait)
            continue
        if status == 503 and b"Too many connections" in out:
            run.refused["with Retry-After" if "retry-after" in hdrs else "without Retry-After"] += 1
            if "retry-after" not in hdrs:
                run.err(op, "503 (cap) without Retry-After", out[:200].decode("latin-1"))
                return None
            conn.close()
            if attempt == 3 or not run.running():
                return None
            await asyncio.sleep(min(float(hdrs["retry-after"] or 1), 5.0) + random.random())
            continue
        if status != 200:
            run.err(op, status, f"{route} {json.dumps(arg)[:150]}: {out[:300]!r}")
            return None
        if style == "download":
            try:
                res = json.loads(hdrs.get("dropbox-api-result", ""))
            except ValueError:
                run.err(op, "no Dropbox-API-Result", route)
                return None
            if res.get("size") != len(out) or res.get("content_hash") != dbx_hash(out):
                run.err(op, "bad content", f"{route} {arg}: {len(out)} bytes against {res.get('size')}")
                return None
            result = (res, out)
        else:
            try:
                result = json.loads(out) if out else None
            except ValueError:
                run.err(op, "bad JSON", f"{route}: {out[:200]!r}")
                return None
        if record:
            run.ok(op, ms)
        return status, hdrs, result
    return None


def payload(n):
    return os.urandom(n)


# ---- the active clients --------------------------------------------------------------------------

async def op_upload(run, conn, me, mine):
    n = run.next_id()
    path = f"/load/w{me}/f{n}.bin"
    data = payload(4096)
    r = await call(run, conn, "files/upload", "files/upload",
                   {"path": path, "mode": "add", "autorename": False, "mute": True}, data, "upload")
    if r:
        md = r[2]
        if md.get("size") != len(data) or md.get("content_hash") != dbx_hash(data):
            run.err("files/upload", "bad result", json.dumps(md)[:200])
        else:
            mine.append(path)


async def op_download(run, conn, me, mine):
    pool = list(mine)[-50:] + run.seed_small
    await call(run, conn, "files/download", "files/download", {"path": random.choice(pool)},
               style="download")


async def op_metadata(run, conn, me, mine):
    pool = list(mine)[-50:] + run.seed_small
    await call(run, conn, "files/get_metadata", "files/get_metadata", {"path": random.choice(pool)})


async def op_list(run, conn, me, mine):
    if random.random() < 0.5:
        arg = {"path": "/load/seed"}
    else:
        arg = {"path": f"/load/w{me}", "limit": 200} if mine else {"path": "/load/seed"}
    r = await call(run, conn, "files/list_folder", "files/list_folder", arg)
    pages = 0
    while r and r[2].get("has_more") and pages < 3 and run.running():
        r = await call(run, conn, "files/list_folder/continue", "files/list_folder/continue",
                       {"cursor": r[2]["cursor"]})
        pages += 1


async def op_session(run, conn, me, mine):
    n = run.next_id()
    path = f"/load/w{me}/s{n}.bin"
    part = 256 * 1024
    data = payload(MIB)
    t = time.perf_counter()
    r = await call(run, conn, "upload_session/start", "files/upload_session/start",
                   {"close": False}, data[:part], "upload")
    if not r:
        return
    sid = r[2]["session_id"]
    for off in (part, 2 * part):
        r = await call(run, conn, "upload_session/append_v2", "files/upload_session/append_v2",
                       {"cursor": {"session_id": sid, "offset": off}, "close": False},
                       data[off:off + part], "upload")
        if not r:
            return
    r = await call(run, conn, "upload_session/finish", "files/upload_session/finish",
                   {"cursor": {"session_id": sid, "offset": 3 * part},
                    "commit": {"path": path, "mode": "add", "mute": True}}, data[3 * part:], "upload")
    if not r:
        return
    md = r[2]
    if md.get("size") != len(data) or md.get("content_hash") != dbx_hash(data):
        run.err("upload_session/finish", "bad result", json.dumps(md)[:200])
        return
    run.ok("upload session 1 MiB, 4 calls", (time.perf_counter() - t) * 1000)


async def op_copy_move_delete(run, conn, me, mine):
    if not mine:
        return await op_upload(run, conn, me, mine)
    src = random.choice(list(mine)[-50:])
    n = run.next_id()
    a, b = f"/load/w{me}/c{n}.bin", f"/load/w{me}/m{n}.bin"
    if not await call(run, conn, "files/copy_v2", "files/copy_v2", {"from_path": src, "to_path": a}):
        return
    if not await call(run, conn, "files/move_v2", "files/move_v2", {"from_path": a, "to_path": b}):
        return
    await call(run, conn, "files/delete_v2", "files/delete_v2", {"path": b})


OP_FUNCS = {"upload": op_upload, "download": op_download, "get_metadata": op_metadata,
            "list_folder": op_list, "session": op_session, "copy_move_delete": op_copy_move_delete}


async def worker(run, me):
    conn = Conn(run)
    mine = collections.deque(maxlen=200)
    names = [op for _, op in OPS_MIX]
    weights = [w for w, _ in OPS_MIX]
    try:
        while run.running():
            op = random.choices(names, weights)[0]
            await OP_FUNCS[op](run, conn, me, mine)
            if conn.closed:     # a failure closed it: do not spin against a server that is down
                await asyncio.sleep(min(0.1, run.remaining()))
    finally:
        conn.close()


# ---- longpolls -----------------------------------------------------------------------------------

async def longpoller(run, k, path, quiet):
    conn = Conn(run)      # authenticated calls
    lp = Conn(run)        # the longpoll itself
    op = "longpoll (quiet folder)" if quiet else "longpoll (/load, busy)"
    try:
        cursor = None
        while run.running():
            if cursor is None:
                r = await call(run, conn, "list_folder/get_latest_cursor",
                               "files/list_folder/get_latest_cursor",
                               {"path": path, "recursive": True})
                if not r:
                    await asyncio.sleep(1)
                    continue
                cursor = r[2]["cursor"]
            started = run.now()
            if quiet:
                run.quiet_waiting[k] = started
            r = await call(run, lp, op, "files/list_folder/longpoll",
                           {"cursor": cursor, "timeout": LONGPOLL_TIMEOUT}, auth=False,
                           timeout=LONGPOLL_TIMEOUT + 30)
            back = run.now()
            run.quiet_waiting.pop(k, None)
            if not r:
                await asyncio.sleep(1)
                continue
            res = r[2]
            run.longpoll_changes[(op, bool(res.get("changes")))] += 1
            if res.get("changes"):
                w = run.quiet_write.get(k)
                if quiet and w is not None and w >= started:
                    run.wake_ms.append((back - w) * 1000)
                pages = 0
                while run.running():
                    c = await call(run, conn, "list_folder/continue (after longpoll)",
                                   "files/list_folder/continue", {"cursor": cursor})
                    if not c:
                        cursor = None
                        break
                    cursor = c[2]["cursor"]
                    pages += 1
                    if not c[2].get("has_more"):
                        break
                    if pages >= 20:
                        cursor = None   # too far behind: start again from now
                        break
            if res.get("backoff"):
                await asyncio.sleep(min(float(res["backoff"]), run.remaining(), 10))
    finally:
        conn.close()
        lp.close()


async def quiet_writer(run):
    """Wakes the quiet longpolls: every 1-3 s, a 4 KiB upload into the folder of one that has
    been waiting for a second or more."""
    conn = Conn(run)
    try:
        while run.running():
            await asyncio.sleep(random.uniform(1, 3))
            now = run.now()
            ready = [k for k, s in run.quiet_waiting.items() if now - s >= 1]
            if not ready or not run.running():
                continue
            k = random.choice(ready)
            run.quiet_write[k] = run.now()
            await call(run, conn, "files/upload", "files/upload",
                       {"path": f"/load/quiet/q{k}/x{run.next_id()}.bin", "mode": "add", "mute": True},
                       payload(4096), "upload")
    finally:
        conn.close()


# ---- idle and slow connections -------------------------------------------------------------------

async def idle_conn(run, kind):
    """kind: silent (never sends), abandoned (one check/user, then silent), kept (check/user
    every 5-20 s). Waits for the server to close it; counts; opens another."""
    op = "check/user (first on a new idle connection)"
    ping = "check/user (kept connection, every 5-20 s)"
    while run.running():
        conn = Conn(run)
        try:
            await conn.connect()
        except (OSError, asyncio.TimeoutError) as e:
            run.err("connect (TCP)", f"{kind} / {type(e).__name__}", str(e))
            await asyncio.sleep(min(1.0, run.remaining()))
            continue
        try:
            # past the cap the server answers a 503 at once, unasked: look for it before writing
            first = True
            if kind != "silent":
                try:
                    early = await asyncio.wait_for(conn.r.read(4096), 0.2)
                except asyncio.TimeoutError:
                    early = None
                except OSError:
                    early = b""
                if early is None:
                    first = False
                    r = await call(run, conn, op, "check/user", {"query": "x"})
                    if not r:
                        conn.close()
                        await asyncio.sleep(min(random.uniform(0.5, 1.5), run.remaining()))
                        continue
            while run.running() and not conn.closed:
                hold = random.uniform(5, 20) if kind == "kept" else run.remaining()
                if first and kind != "silent":
                    data = early
                    first = False
                else:
                    data = None
                try:
                    if data is None:
                        data = await asyncio.wait_for(conn.r.read(4096), min(hold, run.remaining()))
                except asyncio.TimeoutError:
                    if kind == "kept" and run.running():
                        await call(run, conn, ping, "check/user", {"query": "x"})
                    continue
                except OSError:
                    data = b""
                quiet = run.now() - conn.last_io
                if not data:
                    run.closes[kind].append(quiet)
                    run.close_answers[kind]["(closed, nothing sent)"] += 1
                else:
                    line = data.split(b"\r\n", 1)[0].decode("latin-1")[:80]
                    if line.startswith("HTTP/1.1 503") and b"Too many connections" in data:
                        ra = re.search(rb"(?i)\r\nretry-after:\s*(\d+)", data)
                        run.refused["with Retry-After" if ra else "without Retry-After"] += 1
                        conn.close()
                        await asyncio.sleep(min(float(ra.group(1)) if ra else 1.0, 5.0) + random.random())
                        break
                    run.closes[kind].append(quiet)
                    run.close_answers[kind][line] += 1
                conn.close()
        finally:
            conn.close()
        await asyncio.sleep(min(random.uniform(0, 1), run.remaining()))


async def slow_reader(run):
    """A 1 MiB download read 32 KiB a second through an 8 KiB receive buffer."""
    while run.running():
        conn = Conn(run, rcvbuf=8192, limit=16 * 1024)
        try:
            await call(run, conn, "files/download (slow reader, 32 KiB/s)", "files/download",
                       {"path": random.choice(run.seed_big)}, style="download",
                       timeout=120, slow_read=(32 * 1024, 1.0))
        except asyncio.CancelledError:
            run.cut_at_end["slow reader"] += 1
            raise
        finally:
            conn.close()


async def slow_writer(run):
    """A 4 KiB upload whose body goes at 256 bytes a second (headers at once)."""
    conn = Conn(run)
    try:
        while run.running():
            data = payload(4096)
            arg = {"path": f"/load/slow/u{run.next_id()}.bin", "mode": "add", "mute": True}
            try:
                await call(run, conn, "files/upload (slow body, 256 B/s)", "files/upload", arg, data,
                           "upload", timeout=120, slow_write=(256, 1.0))
            except asyncio.CancelledError:
                run.cut_at_end["slow writer"] += 1
                raise
    finally:
        conn.close()


async def broken_request(run, kind):
    """slow-headers: a check/user whose request head goes one byte a second; stalled-upload:
    headers and 100 of 4096 body bytes of a files/upload, then nothing. Records what the server
    answered (first line) and after how long; opens another."""
    while run.running():
        conn = Conn(run)
        try:
            await conn.connect()
        except (OSError, asyncio.TimeoutError) as e:
            run.err("connect (TCP)", f"{kind} / {type(e).__name__}", str(e))
            await asyncio.sleep(min(1.0, run.remaining()))
            continue
        t0 = run.now()
        try:
            if kind == "slow headers":
                body = b'{"query": "x"}'
                req = conn.head("check/user", {"Authorization": "Bearer " + run.token,
                                               "Content-Type": "application/json"}, len(body)) + body
                got = None
                for i in range(len(req)):
                    if not run.running():
                        break
                    try:
                        conn.w.write(req[i:i + 1])
                        await conn.w.drain()
                        got = await asyncio.wait_for(conn.r.read(4096), min(1.0, run.remaining()))
                        break   # an answer, or EOF
                    except asyncio.TimeoutError:
                        continue
                    except OSError:
                        got = b""
                        break
                else:   # every byte went (the server did not cut it): its answer
                    try:
                        got = await asyncio.wait_for(conn.r.read(4096), min(10.0, run.remaining()))
                    except (asyncio.TimeoutError, OSError):
                        got = b""
            else:
                arg = json.dumps({"path": f"/load/stalled/s{run.next_id()}.bin", "mode": "add"})
                conn.w.write(conn.head("files/upload", {"Authorization": "Bearer " + run.token,
                                                        "Dropbox-API-Arg": arg,
                                                        "Content-Type": "application/octet-stream"},
                                       4096) + b"\0" * 100)
                await conn.w.drain()
                try:
                    got = await asyncio.wait_for(conn.r.read(4096), run.remaining())
                except asyncio.TimeoutError:
                    got = None
                except OSError:
                    got = b""
            if got and got.startswith(b"HTTP/1.1 503") and b"Too many connections" in got:
                ra = re.search(rb"(?i)\r\nretry-after:\s*(\d+)", got)
                run.refused["with Retry-After" if ra else "without Retry-After"] += 1
                conn.close()
                await asyncio.sleep(min(float(ra.group(1)) if ra else 1.0, 5.0) + random.random())
                continue
            if got is not None and run.running():
                line = got.split(b"\r\n", 1)[0].decode("latin-1")[:80] if got else "(closed, nothing sent)"
                run.closes[kind].append(run.now() - t0)
                run.close_answers[kind][line] += 1
            elif got is not None:
                pass    # the run ended first
        except OSError:
            pass
        finally:
            conn.close()
        await asyncio.sleep(min(random.uniform(0, 1), run.remaining()))


# ---- the server's process ------------------------------------------------------------------------

def proc_sample(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None
    return out


async def lag_monitor(run, stop):
    """How late the event loop wakes a 50 ms sleep: the client's own share of every latency."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.05)
        run.lag_ms.append(max(0.0, (time.perf_counter() - t - 0.05) * 1000))


def gc_timer(run):
    t0 = [0.0]

    def cb(phase, info):
        if phase == "start":
            t0[0] = time.perf_counter()
        else:
            run.gc_ms.append((time.perf_counter() - t0[0]) * 1000)
    gc.callbacks.append(cb)


async def sampler(run, pid, stop):
    while not stop.is_set():
        s = proc_sample(pid)
        if s:
            run.samples.append((run.now() - run.t0, s.get("VmRSS", 0), s.get("VmHWM", 0),
                                s.get("Threads", 0), s.get("fds", 0), run.open_now))
        else:
            run.samples.append((run.now() - run.t0, None, None, None, None, run.open_now))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


# ---- setup, the run, the report ------------------------------------------------------------------

async def setup(run, quiet_n):
    """Seed files and the quiet folders, 8 at a time. False if the server refused any."""
    jobs = [(f"/load/seed/s{i:02d}.bin", 4096) for i in range(64)]
    jobs += [(f"/load/seed/big{i}.bin", MIB) for i in range(8)]
    jobs += [(f"/load/quiet/q{k}/init.bin", 16) for k in range(quiet_n)]
    q = collections.deque(jobs)
    bad = []

    async def one():
        conn = Conn(run)
        try:
            while q:
                path, size = q.popleft()
                r = await call(run, conn, "setup", "files/upload",
                               {"path": path, "mode": "overwrite", "mute": True}, payload(size),
                               "upload", record=False)
                if not r:
                    bad.append(path)
        finally:
            conn.close()
    await asyncio.gather(*(one() for _ in range(8)))
    run.seed_small = [p for p, s in jobs if s == 4096]
    run.seed_big = [p for p, s in jobs if s == MIB]
    return not bad


def plan(c, workers):
    """How the connections are split (see the module comment)."""
    p = {"active": workers, "longpoll": 8 * 2, "writer (wakes the longpolls)": 1}
    p["slow reader"] = max(1, c // 40)
    p["slow writer"] = max(1, c // 100)
    p["slow headers"] = max(1, c // 200)
    p["stalled upload"] = max(1, min(5, c // 400))
    rest = max(0, c - sum(p.values()))
    p["silent"] = rest // 10
    p["abandoned"] = rest * 3 // 10
    p["kept"] = rest - p["silent"] - p["abandoned"]
    return p


def cpu_ticks(pid):
    """(whole machine busy, whole machine total, the server's user+system), in clock ticks."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        return sum(v) - v[3] - v[4], sum(v), int(st[11]) + int(st[12])
    except (OSError, ValueError, IndexError):
        return None


def listen_counters():
    """The kernel's TcpExt ListenOverflows and ListenDrops (this network namespace, every
    socket): a SYN dropped because an accept queue was full costs the client a 1 s retransmit."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, vals in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            d = dict(zip(names.split()[1:], (int(v) for v in vals.split()[1:])))
            return {k: d.get(k, 0) for k in ("ListenOverflows", "ListenDrops")}
    return None


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def main_async(args, token):
    run = Run(args, token)
    loop = asyncio.get_running_loop()
    p = plan(args.connections, args.workers)
    log = lambda m: print(f"[load {run.now() - run.t0:6.1f}s] {m}", file=sys.stderr, flush=True)
    # the harness works at all?
    probe = Conn(run)
    try:
        await probe.connect()
    except (OSError, asyncio.TimeoutError) as e:
        raise SystemExit(f"load.py: cannot connect to {run.host}: {e}")
    r = await call(run, probe, "setup", "check/user", {"query": "x"}, record=False)
    probe.close()
    if not r:
        raise SystemExit(f"load.py: check/user failed: {dict(run.errors)} {run.examples}")
    log(f"plan: {json.dumps(p)}")
    if not await setup(run, 4):
        raise SystemExit(f"load.py: seeding failed: {dict(run.errors)} {list(run.examples.values())[:3]}")
    run.errors.clear()
    run.examples.clear()
    rss0 = proc_sample(args.server_pid)
    # Thousands of connections are millions of objects: a full collection of them stalled the
    # event loop for seconds (measured: 2.5 s at 10,000 connections). What exists by the end of
    # the ramp lives to the end: frozen, the collector no longer walks it.
    gc.collect()
    gc.freeze()
    log_off = os.path.getsize(args.log) if args.log and os.path.exists(args.log) else None

    listen0 = listen_counters()
    ticks0 = cpu_ticks(args.server_pid)
    stop_sampling = asyncio.Event()
    samp = asyncio.create_task(sampler(run, args.server_pid, stop_sampling))
    lagt = asyncio.create_task(lag_monitor(run, stop_sampling))
    gc_timer(run)
    cpu0, wall0 = time.process_time(), time.monotonic()

    active = [asyncio.create_task(worker(run, i)) for i in range(p["active"])]
    others = [asyncio.create_task(longpoller(run, k, f"/load/quiet/q{k}", True)) for k in range(4)]
    others += [asyncio.create_task(longpoller(run, 4 + k, "/load", False)) for k in range(4)]
    others.append(asyncio.create_task(quiet_writer(run)))
    # the rest, opened at most 100 at a time
    kinds = []
    for kind in ("slow reader", "slow writer", "slow headers", "stalled upload", "silent",
                 "abandoned", "kept"):
        kinds += [kind] * p[kind]
    random.shuffle(kinds)
    ramp_t0 = run.now()

    def spawn(kind):
        f = {"slow reader": slow_reader, "slow writer": slow_writer}.get(kind)
        if f:
            return f(run)
        if kind in ("slow headers", "stalled upload"):
            return broken_request(run, kind)
        return idle_conn(run, kind)

    for i, kind in enumerate(kinds):     # 100 at a time
        others.append(asyncio.create_task(spawn(kind)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
            if i % 1000 == 999:
                gc.freeze()
            # wait while connections are still being opened, bounded
            t = run.now()
            while (run.open_now < min(i, MAX_CONNECTIONS) * 0.9 and run.now() - t < 5
                   and run.now() - ramp_t0 < RAMP_MAX_S):
                await asyncio.sleep(0.05)
    t = run.now()
    target = min(sum(p.values()) - 1, MAX_CONNECTIONS)   # the writer opens its own on its first write
    while run.open_now < target * 0.98 and run.now() - ramp_t0 < RAMP_MAX_S:
        await asyncio.sleep(0.1)
    ramp_s = run.now() - ramp_t0
    gc.freeze()
    log(f"ramp: {run.open_now} connections open after {ramp_s:.1f} s; running {args.seconds} s")
    run.deadline = run.now() + args.seconds
    measure_t0 = run.now()
    info_from = measure_t0 - run.t0
    while run.now() < run.deadline:
        await asyncio.sleep(min(10.0, run.remaining()))
        if run.remaining() > 0.5:
            nreq = sum(len(v) for v in run.lat.values())
            last = run.samples[-1] if run.samples else None
            lg = sorted(run.lag_ms[-200:])
            log(f"{run.open_now} open, {nreq} answers, loop lag p99 {pct(lg, 99) or 0:.0f} ms max "
                f"{lg[-1] if lg else 0:.0f} ms, gc max {max(run.gc_ms[-500:] or [0]):.0f} ms, "
                f"{sum(sum(c.values()) for c in run.errors.values())} errors, "
                f"server RSS {last[1] // 1024 if last and last[1] else '?'} MiB, "
                f"fds {last[4] if last else '?'}")
    # the end: active clients get GRACE_S to finish their requests, the rest is cancelled
    run.stopping = True
    measured_s = run.now() - measure_t0
    _, pending = await asyncio.wait(active, timeout=GRACE_S)
    for t in pending:
        t.cancel()
    run.cut_at_end["active clients still in a request"] += len(pending)
    for t in others:
        t.cancel()
    await asyncio.gather(*active, *others, return_exceptions=True)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    stop_sampling.set()
    await samp
    await lagt
    rss1 = proc_sample(args.server_pid)
    listen1 = listen_counters()
    ticks1 = cpu_ticks(args.server_pid)
    machine = None
    if ticks0 and ticks1:
        hz = os.sysconf("SC_CLK_TCK")
        total = (ticks1[1] - ticks0[1]) or 1
        ncpu = os.cpu_count() or 1
        machine = {"cpus": ncpu, "busy": 100 * ncpu * (ticks1[0] - ticks0[0]) / total,
                   "server": 100 * (ticks1[2] - ticks0[2]) / hz / wall,
                   "client": 100 * cpu / wall}
        machine["others"] = max(0.0, machine["busy"] - machine["server"] - machine["client"])
    listen = {k: listen1[k] - listen0[k] for k in listen0} if listen0 and listen1 else None
    log_lines = []
    if log_off is not None:
        with open(args.log, "rb") as f:
            f.seek(log_off)
            log_lines = f.read().decode("utf-8", "replace").splitlines()
    return run, dict(plan=p, ramp_s=ramp_s, measured_s=measured_s, cpu=cpu, wall=wall,
                     rss0=rss0, rss1=rss1, log_lines=log_lines,
                     measure_from=info_from, listen=listen, machine=machine)


def server_log_summary(lines):
    """Counts the server log's lines by level, the access log's by status, and the distinct
    warning/error messages (request ids and numbers blanked)."""
    levels, statuses, msgs = collections.Counter(), collections.Counter(), collections.Counter()
    examples = {}
    for ln in lines:
        m = re.search(r"\b(TRACE|DEBUG|INFO|WARN|ERROR)\b", ln)
        lvl = m.group(1) if m else "?"
        levels[lvl] += 1
        s = re.search(r"\bstatus=(\d{3})\b", ln)
        if s:
            statuses[s.group(1)] += 1
        if lvl in ("WARN", "ERROR") or (s and s.group(1).startswith("5")):
            key = re.sub(r"\x1b\[[0-9;]*m", "", ln)
            key = re.sub(r"^\S+\s+", "", key)  # the timestamp
            key = re.sub(r"[0-9a-f]{8,}|\d+(\.\d+)?", "#", key)[:160]
            msgs[key] += 1
            examples.setdefault(key, ln[:400])
    return levels, statuses, msgs, examples


def report(run, info, args):
    rows, notes = [], []

    def row(bench, metric, unit, vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return
        f = lambda x: f"{x:.0f}" if abs(x) >= 1000 else f"{x:.4g}"
        sv = sorted(vals)
        med = sv[len(sv) // 2] if len(sv) % 2 else (sv[len(sv) // 2 - 1] + sv[len(sv) // 2]) / 2
        raw = " ".join(f(v) for v in vals) if len(vals) <= 20 else f"{len(vals)} values"
        rows.append(f"{bench}\tcubby\t{metric}\t{unit}\t{f(med)}\t{f(sv[0])}\t{f(sv[-1])}\t{len(sv)}\t{raw}")

    p = info["plan"]
    secs = info["measured_s"]
    ops = sorted(set(run.lat) | set(run.errors))
    table = []
    for op in ops:
        v = sorted(run.lat.get(op, []))
        errs = run.errors.get(op, collections.Counter())
        row("load-count", op, "answers", [len(v)])
        if v:
            for q in (50, 90, 99):
                row(f"load-p{q}", op, "ms", [pct(v, q)])
            row("load-max", op, "ms", [v[-1]])
        for st, n in sorted(errs.items()):
            row("load-errors", f"{op}: {st}", "requests", [n])
        if run.r429.get(op):
            row("load-429", op, "requests", [run.r429[op]])
        table.append((op, len(v), *(f"{pct(v, q):.1f}" if v else "-" for q in (50, 90, 99)),
                      f"{v[-1]:.1f}" if v else "-",
                      ", ".join(f"{st}: {n}" for st, n in sorted(errs.items())) or "0",
                      run.r429.get(op, 0)))
    if run.wake_ms:
        w = sorted(run.wake_ms)
        row("load-count", "longpoll wake delay (from the write's start)", "answers", [len(w)])
        for q in (50, 90, 99):
            row(f"load-p{q}", "longpoll wake delay (from the write's start)", "ms", [pct(w, q)])
        row("load-max", "longpoll wake delay (from the write's start)", "ms", [w[-1]])
        table.append(("longpoll wake delay (from the write's start)", len(w),
                      *(f"{pct(w, q):.1f}" for q in (50, 90, 99)), f"{w[-1]:.1f}", "", ""))
    total_err = sum(sum(c.values()) for c in run.errors.values())
    total_429 = sum(run.r429.values())
    answers = sum(len(v) for k, v in run.lat.items() if k != "connect (TCP)")
    row("load", "connections asked", "connections", [args.connections])
    row("load", "active clients", "clients", [p["active"]])
    row("load", "seconds of mixed workload", "s", [secs])
    row("load", "ramp: seconds to open the connections", "s", [info["ramp_s"]])
    held = [s[5] for s in run.samples if info["measure_from"] <= s[0] <= info["measure_from"] + secs]
    row("load", "connections held by the client, peak", "connections", [run.open_peak])
    if held:
        row("load", "connections held by the client, sampled each second", "connections",
            held)
    row("load", "connections opened in all", "connections", [run.opened])
    row("load", "answers (200) of all kinds, connects excluded", "answers", [answers])
    row("load", "answers per second", "answers/s", [answers / secs if secs else 0])
    row("load", "errors other than 429 with Retry-After", "requests", [total_err])
    row("load", "429 with Retry-After", "requests", [total_429])
    row("load", "cap 503 with Retry-After", "connections", [run.refused.get("with Retry-After", 0)])
    row("load", "cap 503 without Retry-After", "connections", [run.refused.get("without Retry-After", 0)])
    for kind, v in sorted(run.closes.items()):
        row("load-close", kind, "s", v)
    rss = [s[1] for s in run.samples if s[1]]
    fds = [s[4] for s in run.samples if s[4]]
    thr = [s[3] for s in run.samples if s[3]]
    if info["rss0"]:
        row("load", "server VmRSS before the stage", "MiB", [info["rss0"]["VmRSS"] / 1024])
    if rss:
        row("load", "server VmRSS, peak of 1 s samples", "MiB", [max(rss) / 1024])
    if info["rss1"]:
        row("load", "server VmRSS after the stage", "MiB", [info["rss1"]["VmRSS"] / 1024])
        row("load", "server VmHWM after the stage (since the server started)", "MiB",
            [info["rss1"]["VmHWM"] / 1024])
    if fds:
        row("load", "server open descriptors, peak", "fds", [max(fds)])
    if thr:
        row("load", "server threads, peak", "threads", [max(thr)])
    conn_ms = run.lat.get("connect (TCP)", [])
    row("load", "connects that took 1 s or more (a SYN retransmitted)", "connects",
        [sum(1 for v in conn_ms if v >= 1000)])
    if info["listen"]:
        for k, v in info["listen"].items():
            row("load", f"kernel TcpExt {k} during the stage", "count", [v])
    row("load", "client CPU, share of one core", "%", [100 * info["cpu"] / info["wall"]])
    m = info["machine"]
    if m:
        row("load", "server CPU, share of one core", "%", [m["server"]])
        row("load", f"machine CPU busy, % of one core ({m['cpus']} cores)", "%", [m["busy"]])
        row("load", "machine CPU used by other processes, % of one core", "%", [m["others"]])
    lag = sorted(run.lag_ms)
    if lag:
        row("load", "client event loop lag, p99", "ms", [pct(lag, 99)])
        row("load", "client event loop lag, max", "ms", [lag[-1]])
    if run.gc_ms:
        row("load", "client garbage collections, longest", "ms", [max(run.gc_ms)])
    row("load", "client peak RSS", "MiB", [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024])

    # notes
    notes.append(f"{args.connections} connections asked ({', '.join(f'{k} {v}' for k, v in p.items())}); "
                 f"{run.open_peak} held at the peak; mixed workload for {secs:.0f} s after a ramp of "
                 f"{info['ramp_s']:.1f} s; client CPU {100 * info['cpu'] / info['wall']:.0f}% of one core")
    if total_err:
        worst = sorted(((n, op, st) for op, c in run.errors.items() for st, n in c.items()), reverse=True)[:6]
        notes.append("errors: " + "; ".join(
            f"{op} {st} x{n} (e.g. {run.examples.get((op, st), '')[:160]})" for n, op, st in worst))
    else:
        notes.append(f"no error other than 429 with Retry-After ({total_429} of those)")
    expect = {"silent": f"conn.rs: header read {HEADER_S} s / idle {IDLE_S} s",
              "abandoned": f"conn.rs: idle {IDLE_S} s (header read {HEADER_S} s)",
              "kept": "pinged every 5-20 s: should stay open",
              "slow headers": f"conn.rs: header read {HEADER_S} s",
              "stalled upload": f"conn.rs: body progress {BODY_S} s"}
    for kind in ("silent", "abandoned", "kept", "slow headers", "stalled upload"):
        v = sorted(run.closes.get(kind, []))
        if v:
            answers_ = ", ".join(f"{a!r} x{n}" for a, n in run.close_answers[kind].most_common(3))
            notes.append(f"{kind} connections ({p.get(kind, 0)} at a time): {len(v)} closed by the server "
                         f"after {pct(v, 50):.1f} s quiet (min {v[0]:.1f}, max {v[-1]:.1f}); answers: "
                         f"{answers_} [{expect[kind]}]")
        elif p.get(kind):
            notes.append(f"{kind} connections ({p[kind]} at a time): none closed by the server within the "
                         f"run [{expect[kind]}]")
    if run.refused:
        notes.append("past the connection cap: " + ", ".join(f"{n} refusals {k}" for k, n in run.refused.items()))
    elif args.connections <= MAX_CONNECTIONS:
        notes.append(f"the {MAX_CONNECTIONS:,}-connection cap was not reached (LOAD_CONNECTIONS > "
                     f"{MAX_CONNECTIONS:,} tries it)")
    if run.cut_at_end:
        notes.append("cut at the end of the run (not errors): " +
                     ", ".join(f"{k} {n}" for k, n in run.cut_at_end.items()))
    if m:
        notes.append(f"CPU during the stage, in % of one core ({m['cpus']} cores): machine busy {m['busy']:.0f}%, "
                     f"server {m['server']:.0f}%, this client {m['client']:.0f}%, other processes "
                     f"{m['others']:.0f}%" + (" (the machine was shared: latencies include waiting for a core)"
                                              if m["others"] > 20 else ""))
    if lag:
        notes.append(f"client event loop lag: p99 {pct(lag, 99):.0f} ms, max {lag[-1]:.0f} ms "
                     "(a share of every latency above comes from the client itself)")
    if run.stale:
        notes.append("keep-alive connections found closed by the server before a request (reopened, "
                      "not errors): " + ", ".join(f"{op} {n}" for op, n in run.stale.most_common()))
    slow_connects = sum(1 for v in conn_ms if v >= 1000)
    if slow_connects or (info["listen"] and any(info["listen"].values())):
        notes.append(f"{slow_connects} of {len(conn_ms)} connects took 1 s or more; the kernel counted "
                     + (", ".join(f"{k} {v}" for k, v in info["listen"].items()) if info["listen"] else "?")
                     + " during the stage (accept queue full: the SYN is dropped and resent after 1 s)")
    lpc = ", ".join(f"{op} changes={c}: {n}" for (op, c), n in sorted(run.longpoll_changes.items()))
    if lpc:
        notes.append("longpoll answers: " + lpc)
    if rss:
        notes.append(f"server VmRSS: {info['rss0']['VmRSS'] // 1024 if info['rss0'] else '?'} MiB before, "
                     f"peak {max(rss) // 1024} MiB, {info['rss1']['VmRSS'] // 1024 if info['rss1'] else '?'} "
                     f"MiB after; peak descriptors {max(fds) if fds else '?'}")
    levels, statuses, msgs, examples = server_log_summary(info["log_lines"])
    if info["log_lines"]:
        notes.append("server log during the stage: " + ", ".join(f"{k} {n}" for k, n in levels.most_common()) +
                     "; access log statuses: " + ", ".join(f"{k} {n}" for k, n in sorted(statuses.items())))
        for key, n in msgs.most_common(5):
            notes.append(f"server log x{n}: {examples[key]}")
    return rows, notes, table, dict(levels=levels, statuses=statuses,
                                    messages={examples[k]: n for k, n in msgs.most_common(20)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--log")
    ap.add_argument("--rows")
    ap.add_argument("--json")
    args = ap.parse_args()
    token = os.environ.get("CUBBY_TOKEN", "")
    if not token:
        raise SystemExit("load.py: CUBBY_TOKEN is not set")
    if args.workers < 1 or args.connections < args.workers + 40 or args.seconds <= 0:
        raise SystemExit("load.py: need --workers >= 1, --connections >= workers + 40, --seconds > 0")
    need = args.connections + 64
    got = raise_nofile(need)
    if got < need:
        print(f"load.py: RLIMIT_NOFILE is {got}: {args.connections} connections capped to {got - 64}",
              file=sys.stderr)
        args.connections = got - 64
    if not os.path.exists(f"/proc/{args.server_pid}/status"):
        raise SystemExit(f"load.py: no process {args.server_pid}")
    try:
        run, info = asyncio.run(main_async(args, token))
    except SystemExit as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    rows, notes, table, logsum = report(run, info, args)
    head = ("op", "count", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "429+RA")
    widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
    for r in [head] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip(), file=sys.stderr)
    for n in notes:
        print(re.sub(r"[\t\r\n]+", " ", n))
    if args.rows:
        with open(args.rows, "w") as f:
            f.write("".join(r + "\n" for r in rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"plan": info["plan"], "connections": args.connections, "seconds": info["measured_s"],
                       "ramp_s": info["ramp_s"], "workers": args.workers,
                       "ops": {op: {"count": len(v), **{f"p{q}": pct(sorted(v), q) for q in (50, 90, 99)},
                                    "max": max(v) if v else None} for op, v in run.lat.items()},
                       "errors": {op: dict(c) for op, c in run.errors.items()},
                       "error_examples": {f"{op} {st}": ex for (op, st), ex in run.examples.items()},
                       "r429": dict(run.r429), "refused": dict(run.refused),
                       "closes": {k: sorted(v) for k, v in run.closes.items()},
                       "close_answers": {k: dict(c) for k, c in run.close_answers.items()},
                       "longpoll_wake_ms": sorted(run.wake_ms),
                       "cut_at_end": dict(run.cut_at_end),
                       "samples": run.samples, "server_log": {k: dict(v) if hasattr(v, "items") else v
                                                               for k, v in logsum.items()},
                       "notes": notes}, f, indent=1)


if __name__ == "__main__":
    main()
