"""The torture harness's fault stage (scale-out mode): faults below the server process.

Two TCP proxies (asyncio, in a thread of the harness) stand between `cubby serve` and its
back-ends: one in front of PostgreSQL, one in front of the S3 server; the server is restarted
with CUBBY_METADATA and CUBBY_BLOCKS pointing at them. While the writers write and a few
readers download acknowledged revs, the proxies inject, one phase at a time: latency on every
chunk, stalled connections, connections cut at a random byte (RST or FIN), refused
connections (the listener closed, the open connections cut) and, for S3, an answer 500 or 503
made by the proxy in place of the store's (the proxy follows HTTP/1.1 request boundaries by
Content-Length; a request with another framing is passed through untouched). By hand
(--fault-blackhole): connections blackholed, held open with nothing delivered, for good.

Checked: every request during a phase is answered with success or a clean error (a 4xx, 429
or 5xx with a body; a client timeout or a download cut after its status line are counted),
never a 200 with wrong bytes; the server process is alive after each phase; once the faults
stop it answers again (a probe uploads, downloads and lists) and every writer gets an answer
again, without a restart, within RECOVERY_LIMIT; no panic in its log; and after the last
phase, with the faults off, the harness's ledger and change-feed checks hold.
"""

import asyncio
import os
import random
import re
import socket
import struct
import threading
import time
import traceback
from urllib.parse import urlsplit, urlunsplit

import requests

from tlib import Api, Resp, Unknown, content_and_hash, content_hash, now

KiB = 1024
RECOVERY_LIMIT = 90.0  # seconds after the faults stop: the server must answer again by then
CHUNK = 64 * KiB


# ---------------------------------------------------------------------------------------
# Where the back-ends are, and the URLs that point the server at the proxies.


def backends(env):
    """(pg (host, port), s3 (host, port)) from CUBBY_METADATA and CUBBY_BLOCKS, or a reason
    why the stage cannot run."""
    meta = env.get("CUBBY_METADATA", "")
    blocks = env.get("CUBBY_BLOCKS", "")
    if not re.match(r"^postgres(ql)?://", meta):
        return None, "CUBBY_METADATA is not a postgres:// URL"
    if not blocks.startswith("s3://"):
        return None, "CUBBY_BLOCKS is not an s3:// URL"
    u = urlsplit(meta)
    if not u.hostname or "host=" in (u.query or ""):
        return None, "CUBBY_METADATA names no TCP host"
    m = re.search(r"[?&]endpoint=http://([^/&:]+)(?::(\d+))?", blocks)
    if not m:
        return None, "CUBBY_BLOCKS has no http:// endpoint (the proxy cannot stand in front of TLS)"
    return ((u.hostname, u.port or 5432), (m.group(1), int(m.group(2) or 80))), None


def proxied_env(env, pg_port, s3_port):
    out = dict(env)
    u = urlsplit(env["CUBBY_METADATA"])
    netloc = u.netloc.rsplit("@", 1)
    hostport = "127.0.0.1:{}".format(pg_port)
    netloc = netloc[0] + "@" + hostport if len(netloc) == 2 else hostport
    out["CUBBY_METADATA"] = urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))
    out["CUBBY_BLOCKS"] = re.sub(r"([?&]endpoint=)http://[^/&]+", r"\g<1>http://127.0.0.1:{}".format(s3_port),
                                 env["CUBBY_BLOCKS"], count=1)
    return out


# ---------------------------------------------------------------------------------------
# The proxy.


class Faults(object):
    """What a proxy does to the traffic; replaced as a whole (never mutated) by the stage."""

    def __init__(self, latency=None, stall_prob=0.0, stall_secs=(1.0, 4.0), cut_prob=0.0, http_error_rate=0.0):
        self.latency = latency  # (lo, hi) seconds added to each chunk's delivery
        self.stall_prob = stall_prob  # per chunk: the connection stops delivering for stall_secs
        self.stall_secs = stall_secs
        self.cut_prob = cut_prob  # per chunk: the connection is cut at a random byte of it
        self.http_error_rate = http_error_rate  # S3: share of requests answered 500/503 by the proxy

    def describe(self):
        out = []
        if self.latency:
            out.append("latency {:.0f}-{:.0f} ms per chunk".format(self.latency[0] * 1000, self.latency[1] * 1000))
        if self.stall_prob:
            out.append("stalls ({:.1%} of chunks, {:.0f}-{:.0f} s)".format(self.stall_prob, *self.stall_secs))
        if self.cut_prob:
            out.append("cuts ({:.1%} of chunks)".format(self.cut_prob))
        if self.http_error_rate:
            out.append("{:.0%} of requests answered 500/503".format(self.http_error_rate))
        return ", ".join(out) or "none"


CLEAN = Faults()
EOF, CUT = object(), object()


class Conn(object):
    def __init__(self, cr, cw, ur, uw):
        self.cr, self.cw, self.ur, self.uw = cr, cw, ur, uw
        self.stall_until = 0.0
        self.last_at = {"c2s": 0.0, "s2c": 0.0}
        self.dead = False
        self.injected = False
        self.frozen = False  # blackholed: nothing delivered, never closed, until the stage ends
        # HTTP request framing (client to server), for the S3 proxy's error answers.
        self.h_state = "head"
        self.h_buf = b""
        self.h_left = 0
        self.h_swallow = None  # the error answer to send once the request's body is read

    def abort(self, rst=True):
        if self.dead:
            return
        self.dead = True
        for w in (self.cw, self.uw):
            try:
                if rst:
                    sock = w.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    w.transport.abort()
                else:
                    w.close()
            except Exception:
                pass


def s3_error(status, head_only):
    code, reason, msg = {500: ("InternalError", "Internal Server Error", "We encountered an internal error. Please try again."),
                         503: ("SlowDown", "Service Unavailable", "Please reduce your request rate.")}[status]
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{}</Code><Message>{}</Message>'
            '<RequestId>cubby-torture-fault</RequestId></Error>').format(code, msg).encode()
    head = ("HTTP/1.1 {} {}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n"
            "Connection: close\r\n\r\n").format(status, reason, len(body)).encode()
    return head if head_only else head + body


class Proxy(object):
    """A TCP proxy to one upstream, its faults set by `faults` (a Faults)."""

    def __init__(self, name, upstream, rng, http=False):
        self.name = name
        self.upstream = upstream
        self.rng = rng
        self.http = http
        self.faults = CLEAN
        self.blackhole = False
        self.conns = set()
        self.counts = {}
        self.port = None
        self.server = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxy-" + name, daemon=True)

    def count(self, k, n=1):
        self.counts[k] = self.counts.get(k, 0) + n

    def take_counts(self):
        c, self.counts = self.counts, {}
        return c

    def call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self):
        self.thread.start()
        self.call(self._listen())

    def stop(self):
        try:
            self.call(self._shutdown())
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()

    async def _shutdown(self):
        await self._close(abort=True)
        # Every connection is dead now: its tasks end within a poll (0.5 s).
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        if tasks:
            await asyncio.wait(tasks, timeout=3)

    def refuse(self):
        """Closes the listener (connecting is refused) and cuts every open connection."""
        self.call(self._close(abort=True))

    def accept(self):
        self.call(self._listen())

    def freeze(self, on):
        """Blackhole: every open connection, and each new one while `on`, stops delivering
        without being closed (as behind a partition); frozen ones stay so after `on` ends."""
        async def go():
            self.blackhole = on
            if on:
                for c in self.conns:
                    if not c.frozen:
                        c.frozen = True
                        self.count("connections blackholed")
        self.call(go())

    async def _listen(self):
        if self.server is None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port or 0, reuse_address=True)
            self.port = self.server.sockets[0].getsockname()[1]

    async def _close(self, abort):
        if self.server is not None:
            self.server.close()  # stops listening; no wait_closed (it waits for the connections)
            self.server = None
        if abort:
            for c in list(self.conns):
                if not c.dead:
                    self.count("connections cut (refusal)")
                c.abort(rst=True)

    async def _handle(self, cr, cw):
        self.count("connections")
        if self.blackhole:
            self.count("connections blackholed")
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 10)
        except Exception:
            self.count("upstream connect failed")
            cw.transport.abort()
            return
        c = Conn(cr, cw, ur, uw)
        c.frozen = self.blackhole
        self.conns.add(c)
        q1, q2 = asyncio.Queue(64), asyncio.Queue(64)
        try:
            await asyncio.gather(
                self._read(c, cr, q1, "c2s"), self._send(c, q1, uw),
                self._read(c, ur, q2, "s2c"), self._send(c, q2, cw),
                return_exceptions=True)
        finally:
            self.conns.discard(c)
            c.abort(rst=False)

    async def _read(self, c, reader, q, d):
        try:
            while not c.dead:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if self.http and d == "c2s":
                    data = self._http(c, data)
                    if c.injected:
                        await self._put(c, q, (0, (CUT, True)))
                        return
                f = self.faults
                if f.cut_prob and data and self.rng.random() < f.cut_prob:
                    k = self.rng.randrange(len(data))
                    rst = self.rng.random() < 0.5
                    self.count("connections cut ({})".format("RST" if rst else "FIN"))
                    await self._put(c, q, (self._at(c, d, f), data[:k]))
                    await self._put(c, q, (0, (CUT, rst)))
                    return
                if f.stall_prob and self.rng.random() < f.stall_prob:
                    self.count("stalls")
                    c.stall_until = max(c.stall_until, now() + self.rng.uniform(*f.stall_secs))
                if data:
                    await self._put(c, q, (self._at(c, d, f), data))
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            await self._put(c, q, (0, (CUT, True)))
            return
        await self._put(c, q, (0, EOF))

    async def _put(self, c, q, item):
        """Queues for the sender; gives up once the connection is dead (the sender may have
        stopped taking)."""
        while True:
            try:
                q.put_nowait(item)
                return
            except asyncio.QueueFull:
                if c.dead:
                    return
                await asyncio.sleep(0.01)

    def _at(self, c, d, f):
        if not f.latency:
            return 0
        self.count("chunks delayed")
        at = max(c.last_at[d], now() + self.rng.uniform(*f.latency))
        c.last_at[d] = at
        return at

    async def _send(self, c, q, writer):
        try:
            while True:
                at, data = await q.get()
                if data is EOF:
                    if not c.dead and writer.can_write_eof():
                        writer.write_eof()
                    return
                if isinstance(data, tuple):
                    if not c.injected:
                        c.abort(rst=data[1])
                    return
                while c.frozen and not c.dead:
                    await asyncio.sleep(0.5)
                while True:
                    t = now()
                    wait = at - t
                    if c.stall_until > t and self.faults.stall_prob:
                        wait = max(wait, c.stall_until - t)
                    if wait <= 0 or c.dead:
                        break
                    await asyncio.sleep(min(wait, 0.05))
                if c.dead:
                    return
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            c.abort(rst=True)

    def _http(self, c, data):
        """Client-to-S3 bytes: passes them on, or swallows a request and answers it with an
        error (then closes the connection). Returns the bytes to forward."""
        out = []
        while data:
            if c.h_state == "pass":
                out.append(data)
                break
            if c.h_state == "body":
                n = min(c.h_left, len(data))
                if c.h_swallow is None:
                    out.append(data[:n])
                c.h_left -= n
                data = data[n:]
                if c.h_left == 0:
                    if c.h_swallow is not None:
                        self._inject(c)
                        return b""
                    c.h_state = "head"
                continue
            c.h_buf += data
            data = b""
            i = c.h_buf.find(b"\r\n\r\n")
            if i < 0:
                if len(c.h_buf) > 65536:
                    out.append(c.h_buf)
                    c.h_buf = b""
                    c.h_state = "pass"
                break
            head, data, c.h_buf = c.h_buf[: i + 4], c.h_buf[i + 4 :], b""
            lines = head.split(b"\r\n")
            hdrs = {}
            for ln in lines[1:]:
                if b":" in ln:
                    k, v = ln.split(b":", 1)
                    hdrs[k.strip().lower()] = v.strip().lower()
            method = lines[0].split(b" ", 1)[0]
            if b"transfer-encoding" in hdrs:
                out.append(head)
                c.h_state = "pass"
                continue
            try:
                c.h_left = int(hdrs.get(b"content-length", b"0"))
            except ValueError:
                out.append(head)
                c.h_state = "pass"
                continue
            rate = self.faults.http_error_rate
            if rate and self.rng.random() < rate:
                status = self.rng.choice([500, 503])
                self.count("answered {} by the proxy".format(status))
                c.h_swallow = s3_error(status, method == b"HEAD")
                if c.h_left == 0 or b"expect" in hdrs:
                    self._inject(c)
                    return b""
                c.h_state = "body"
                continue
            out.append(head)
            c.h_state = "body" if c.h_left else "head"
        return b"".join(out)

    def _inject(self, c):
        c.injected = True
        try:
            c.uw.transport.abort()
        except Exception:
            pass
        c.cw.write(c.h_swallow)
        c.cw.close()
        c.dead = True


# ---------------------------------------------------------------------------------------
# The client side: every request during the stage is classified.


class StageResults(object):
    """The harness's Results, except that a 429 lasting more than 10 s while faults are on is
    counted, not failed (the 429 is a clean answer)."""

    def __init__(self, stage):
        self.stage = stage
        self.real = stage.h.results

    def fail(self, category, text):
        if category == "persistent-429" and self.stage.faulty:
            self.stage.outcome("429 lasting > 10 s")
            return
        self.real.fail(category, text)

    def __getattr__(self, k):
        return getattr(self.real, k)


class FaultApi(Api):
    """An Api whose every request is counted by outcome for the stage's current phase; a 5xx
    is not a failure by itself (it is one without a body)."""

    def __init__(self, stage, label):
        Api.__init__(self, stage.h.server.url, stage.h.token, StageResults(stage), label, fail_on_5xx=False)
        self.stage = stage

    def _post(self, route, headers, data, timeout):
        h = {"Authorization": "Bearer " + self.token}
        h.update(headers)
        st = self.stage
        st.inflight[self.label] = (route, now())
        phase = st.phase
        try:
            try:
                r = Resp(self.session.post(self.base + route, headers=h, data=data, timeout=timeout))
            except requests.exceptions.ConnectTimeout as e:
                st.outcome("connect timeout (5 s)", route, e, phase)
                raise Unknown("{}: {}".format(route, type(e).__name__))
            except requests.exceptions.ReadTimeout as e:
                st.outcome("client timeout ({} s)".format(timeout[1]), route, e, phase)
                raise Unknown("{}: {}".format(route, type(e).__name__))
            except requests.exceptions.ChunkedEncodingError as e:
                st.outcome("body cut after the status line", route, e, phase)
                raise Unknown("{}: {}".format(route, type(e).__name__))
            except requests.RequestException as e:
                st.outcome("no answer (connection error)", route, e, phase)
                raise Unknown("{}: {}".format(route, type(e).__name__))
        finally:
            st.inflight.pop(self.label, None)
        if r.status < 300:
            st.outcome("2xx", phase=phase)
        elif r.status == 429:
            st.outcome("429" if r.body else "429 without body", route, r, phase)
        elif r.status < 500:
            st.outcome("4xx", route, r, phase)
        elif r.body:
            st.outcome("5xx with body", phase=phase)
        else:
            st.outcome("5xx without body", route, r, phase)
            st.h.results.fail("unclean-error", "{} {}: {}".format(self.label, route, r.describe()))
        return r


# ---------------------------------------------------------------------------------------
# The stage.


class Stage(object):
    def __init__(self, h, pg, s3):
        self.h = h
        self.rng = random.Random(h.rng.random())
        self.pg = Proxy("postgres", pg, random.Random(self.rng.random()))
        self.s3 = Proxy("s3", s3, random.Random(self.rng.random()), http=True)
        self.lock = threading.Lock()
        self.phase = "setup"
        self.faulty = False
        self.table = []  # (phase, outcomes during, outcomes after, proxy counts, recovery s, writers s, acked)
        self.counts = {}
        self.examples = {}
        self.inflight = {}
        self.stop_readers = threading.Event()

    def outcome(self, what, route=None, detail=None, phase=None):
        """Counts a request's outcome under the phase it was sent in."""
        with self.lock:
            c = self.counts.setdefault(phase or self.phase, {})
            c[what] = c.get(what, 0) + 1
            if route is not None and what != "429" and what not in self.examples:
                d = detail.describe() if isinstance(detail, Resp) else "{}: {}".format(type(detail).__name__, detail)
                self.examples[what] = "{} ({}): {}".format(route, self.phase, d[:300])

    # --- readers: acknowledged revs downloaded during the faults -------------------------

    def reader(self, i):
        api = FaultApi(self, "r{}".format(i))
        rng = random.Random(self.rng.random())
        h = self.h
        while not self.stop_readers.is_set():
            with h.rev_lock:
                revs = list(h.verified) if h.verified else []
            if not revs:
                time.sleep(0.2)
                continue
            rev = rng.choice(revs)
            chash, size, path, _ = h.revs[rev]
            try:
                r = api.download("rev:" + rev, timeout=(5, 120))
            except Unknown:
                time.sleep(0.05)
                continue
            if r.status == 200:
                if content_hash(r.body) != chash or len(r.body) != size:
                    h.results.fail("corrupt", "during faults ({}): download of rev {} ({}) answered 200 with {} bytes "
                                   "hashing {}, expected {} bytes hashing {}".format(
                                       self.phase, rev, path, len(r.body), content_hash(r.body), size, chash))
                else:
                    self.outcome("downloads checked")
            elif r.status == 409:
                h.results.fail("lost", "during faults ({}): rev {} of {} answered {}".format(self.phase, rev, path, r.describe()))

    # --- the probe that measures recovery ------------------------------------------------

    def probe(self, api, n):
        data, ch = content_and_hash("faults-probe:{}".format(n), 300 * KiB + n)
        try:
            r = api.upload("files/upload", {"path": "/faults/probe", "mode": "overwrite", "mute": True}, data,
                           timeout=(5, 30))
            if r.status != 200:
                return "upload: HTTP {}".format(r.status)
            self.h.known_hash(ch)
            d = api.download("/faults/probe", timeout=(5, 30))
            if d.status != 200:
                return "download: HTTP {}".format(d.status)
            if content_hash(d.body) != ch:
                self.h.results.fail("corrupt", "probe: /faults/probe reads back {} bytes, not what was just written".format(
                    len(d.body)))
                return "download: wrong bytes"
            r = api.rpc("files/list_folder", {"path": "/faults"}, timeout=(5, 30))
            if r.status != 200:
                return "list_folder: HTTP {}".format(r.status)
        except Unknown as e:
            return str(e)
        return None

    def recover(self, name):
        """Faults off: the time until a probe succeeds and every writer has had an answer."""
        t0 = now()
        api = FaultApi(self, "probe")
        n = 0
        probe_t = writers_t = None
        last = None
        while now() - t0 < RECOVERY_LIMIT:
            if probe_t is None:
                n += 1
                last = self.probe(api, n)
                if last is None:
                    probe_t = now() - t0
            if writers_t is None:
                stuck = [k for k, (route, ts) in list(self.inflight.items()) if k.startswith("w") and ts < t0]
                if not stuck:
                    writers_t = now() - t0
            if probe_t is not None and writers_t is not None:
                break
            time.sleep(0.2)
        alive = self.h.server.alive()
        self.h.results.check(alive, "server-crash", "{}: cubby serve exited ({}) during the phase:\n{}".format(
            name, self.h.server.proc.returncode, self.h.server.log_tail(40)))
        if alive:
            self.h.results.check(probe_t is not None, "no-recovery", (
                "{}: {:.0f} s after the faults stopped the server still fails a probe (upload, download, "
                "list_folder): {}").format(name, RECOVERY_LIMIT, last))
            stuck = {k: (route, round(now() - ts, 1)) for k, (route, ts) in list(self.inflight.items())
                     if k.startswith("w") and ts < t0}
            self.h.results.check(writers_t is not None, "hang", (
                "{}: {:.0f} s after the faults stopped these writers still wait for an answer to a request "
                "sent during the faults (route, seconds waiting): {}").format(name, RECOVERY_LIMIT, stuck))
        return alive, probe_t, writers_t

    # --- phases --------------------------------------------------------------------------

    def phases(self, secs, long_form):
        lat = (0.05, 0.3)
        stall = (2.0, 10.0) if long_form else (1.0, 4.0)
        out = [
            ("latency", dict(pg=Faults(latency=lat), s3=Faults(latency=lat))),
            ("stalls", dict(pg=Faults(stall_prob=0.01, stall_secs=stall), s3=Faults(stall_prob=0.02, stall_secs=stall))),
            ("cuts", dict(pg=Faults(cut_prob=0.01), s3=Faults(cut_prob=0.02))),
            ("postgres refused", dict(refuse="pg")),
            ("s3 refused", dict(refuse="s3")),
            ("s3 errors", dict(s3=Faults(http_error_rate=0.3))),
        ]
        only = self.h.args.fault_phases
        if self.h.args.fault_blackhole or (only and "blackhole" in only):
            out.append(("postgres blackhole", dict(blackhole="pg")))
            out.append(("s3 blackhole", dict(blackhole="s3")))
        if long_form or (only and "everything" in only):
            out.append(("everything", dict(
                pg=Faults(latency=(0.01, 0.1), stall_prob=0.003, stall_secs=stall, cut_prob=0.003),
                s3=Faults(latency=(0.01, 0.1), stall_prob=0.005, stall_secs=stall, cut_prob=0.005, http_error_rate=0.1))))
        if only:
            names = [x.strip() for x in only.split(",")]
            out = [(n, spec) for n, spec in out if n in names]
        return [(n, spec, secs) for n, spec in out]

    def run_phase(self, name, spec, secs):
        self.phase = name
        self.pg.take_counts()
        self.s3.take_counts()
        acked0 = sum(w.acked for w in self.h.writers)
        self.faulty = True
        t0 = now()
        if "blackhole" in spec:
            px = self.pg if spec["blackhole"] == "pg" else self.s3
            desc = "{}: open and new connections blackholed (held open, nothing delivered, kept so afterwards)".format(px.name)
            px.freeze(True)
            time.sleep(secs)
            px.freeze(False)
        elif "refuse" in spec:
            px = self.pg if spec["refuse"] == "pg" else self.s3
            desc = "{}: listener closed for 2-5 s at a time, open connections cut".format(px.name)
            while now() - t0 < secs:
                px.refuse()
                px.count("refusal windows")
                time.sleep(min(self.rng.uniform(2.0, 5.0), max(0.5, secs - (now() - t0))))
                px.accept()
                if now() - t0 < secs:
                    time.sleep(self.rng.uniform(0.5, 1.5))
        else:
            self.pg.faults = spec.get("pg", CLEAN)
            self.s3.faults = spec.get("s3", CLEAN)
            desc = "postgres: {}; s3: {}".format(self.pg.faults.describe(), self.s3.faults.describe())
            time.sleep(secs)
        self.pg.faults = CLEAN
        self.s3.faults = CLEAN
        self.faulty = False
        took = now() - t0
        self.pg.accept()
        self.s3.accept()
        acked = sum(w.acked for w in self.h.writers) - acked0
        self.phase = name + ", after"
        alive, probe_t, writers_t = self.recover(name)
        proxy = {"postgres": self.pg.take_counts(), "s3": self.s3.take_counts()}
        with self.lock:
            counts = dict(self.counts.get(name, {}))
            after = dict(self.counts.get(name + ", after", {}))
        self.table.append((name, counts, after, proxy, probe_t, writers_t, acked))
        rec = ("answers again after {:.1f} s, every writer answered after {}".format(
            probe_t, "{:.1f} s".format(writers_t) if writers_t is not None else "NEVER")
               if probe_t is not None else "NOT RECOVERED")
        self.h.log("faults: {} for {:.0f} s ({}): {} acknowledged; requests sent during it: {}; sent after it "
                   "until recovered: {}; proxies: {}; {}{}".format(
            name, took, desc, acked, fmt(counts), fmt(after), fmt_proxy(proxy), rec,
            "" if alive else "; SERVER DIED"), echo=True)
        if not alive:
            return "died"
        return "ok" if probe_t is not None and writers_t is not None else "stuck"

    def setup_server(self, env):
        h = self.h
        h.server.stop()
        h.server.env = env
        h.start_server()

    def run(self):
        h = self.h
        a = h.args
        secs = a.fault_secs
        long_form = a.kills >= 50
        self.pg.start()
        self.s3.start()
        direct = h.server.env
        log_at = os.path.getsize(h.server.log_path) if os.path.exists(h.server.log_path) else 0
        h.log("== faults: proxies for postgres {}:{} on :{}, for s3 {}:{} on :{}; {} round(s) of {:.0f} s phases".format(
            self.pg.upstream[0], self.pg.upstream[1], self.pg.port, self.s3.upstream[0], self.s3.upstream[1],
            self.s3.port, a.fault_rounds, secs))
        self.setup_server(proxied_env(direct, self.pg.port, self.s3.port))
        apis = [w.api for w in h.writers]
        readers = []
        state = "ok"
        try:
            for w in h.writers:
                w.api = FaultApi(self, "w{}".format(w.idx))
            snapshot = h.combined()
            cursor = h.take_cursor()
            h.ctl.resume()
            for i in range(3):
                t = threading.Thread(target=self.reader, args=(i,), name="fault-reader-{}".format(i), daemon=True)
                t.start()
                readers.append(t)
            for rnd in range(a.fault_rounds):
                for name, spec, s in self.phases(secs, long_form):
                    if h.budget_left() < a.reserve_minutes * 60 * 0.5:
                        h.log("== faults: time budget reached")
                        break
                    label = name if a.fault_rounds == 1 else "{} (round {})".format(name, rnd + 1)
                    state = self.run_phase(label, spec, s)
                    if state != "ok":
                        break
                if state != "ok":
                    break
        finally:
            self.faulty = False
            self.pg.faults = self.s3.faults = CLEAN
            self.stop_readers.set()
            for t in readers:
                t.join(150)
            # A server that did not recover is SIGKILLed (its writers' requests end with it).
            h.pause_writers(kill=state == "stuck")
            for w, api in zip(h.writers, apis):
                w.api = api
        if state != "ok":
            h.log("== faults: the server {}; no more phases; restarted to check the ledger".format(
                "died" if state == "died" else "did not recover (SIGKILLed)"), echo=True)
            h.start_server()
        # Faults off: the ledger and the change feed since the stage began.
        h.resolve_all("after the fault stage")
        h.verify_revs(h.round_revs(), "after the fault stage")
        h.replay_check(cursor, snapshot, "cursor taken before the fault stage (writers parked)")
        self.check_log(log_at)
        self.setup_server(direct)
        self.pg.stop()
        self.s3.stop()
        self.report()

    def check_log(self, offset):
        try:
            with open(self.h.server.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return
        panics = [ln for ln in text.splitlines() if "panicked" in ln]
        self.h.results.check(not panics, "server-panic", "the server's log has {} panics during the fault stage: {}".format(
            len(panics), "; ".join(panics[:5])))
        self.h.results.add("fault stage: server log lines at WARN or ERROR",
                           sum(1 for ln in text.splitlines() if " WARN " in ln or " ERROR " in ln))

    def report(self):
        h = self.h
        for name, counts, after, proxy, probe_t, writers_t, acked in self.table:
            h.notes.append("faults, {}: {} acknowledged; requests: {}; after: {}; recovery {}".format(
                name, acked, fmt(counts), fmt(after),
                "{:.1f} s (writers {})".format(probe_t, "{:.1f} s".format(writers_t) if writers_t is not None else "never")
                if probe_t is not None else "none"))
        for k, v in sorted(self.examples.items()):
            h.notes.append("faults, first '{}': {}".format(k, v))
        rec = [p for _, _, _, _, p, _, _ in self.table if p is not None]
        h.results.add("fault phases", len(self.table))
        if rec:
            h.results.note("fault recovery, slowest (s)", round(max(rec), 1))


def fmt(counts):
    return ", ".join("{} {}".format(k, counts[k]) for k in sorted(counts)) or "none"


def fmt_proxy(proxy):
    parts = []
    for name in ("postgres", "s3"):
        c = proxy[name]
        parts.append("{} [{}]".format(name, ", ".join("{} {}".format(k, c[k]) for k in sorted(c)) or "-"))
    return " ".join(parts)


def stage(h):
    """Runs the fault stage if the back-ends can be proxied; the writers must be parked."""
    pair, why = backends(h.env)
    if pair is None:
        h.log("== faults: skipped ({})".format(why), echo=True)
        return
    st = Stage(h, pair[0], pair[1])
    try:
        st.run()
    except Exception:
        h.results.fail("harness", "faults: " + traceback.format_exc())
        st.faulty = False
        try:
            st.pg.faults = st.s3.faults = CLEAN
            h.ctl.pause()
            h.ctl.wait_parked(180)
            for w in h.writers:
                if isinstance(w.api, FaultApi):
                    w.api = Api(h.server.url, h.token, h.results, "w{}".format(w.idx))
            if h.server.env is not h.env:
                st.setup_server(h.env)
            st.pg.stop()
            st.s3.stop()
        except Exception:
            h.results.fail("harness", "faults, cleaning up: " + traceback.format_exc())
