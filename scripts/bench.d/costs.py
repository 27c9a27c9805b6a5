#!/usr/bin/env python3
"""Stage m of scripts/bench: what verifying every block on read costs, and what the access log costs.

Usage: costs.py CUBBY_BIN --scratch DIR [--dl-mib 1024] [--runs 2] [--streams "1 4"]
                [--small-seconds 3] [--concs "1 16"] [--rounds 2] [--perf auto|on|off] [--port-base 0]
                [--table FILE] [--notes FILE]

Starts servers of its own (release binary, fresh data dirs under DIR, plain HTTP on 127.0.0.1;
ports from --port-base up, or free ones), each with a user and a token made with `cubby admin`,
its log (stderr) to a file as under systemd's `StandardError=file:`: one for the downloads (the
default configuration, access log on), stopped and removed before two fresh ones, alike but for
`--access-log on` and `--access-log off`, are started for the small requests. Then:

  - download: one file of DL_MIB random bytes is uploaded through an upload session (64 MiB
    appends), downloaded once to warm
    the page cache (blocks are written with O_DIRECT, so they are not cached after an upload),
    then downloaded RUNS times with 1 stream and with 4 streams (each stream the whole file, all
    at once; aggregate MB/s) by curl -o /dev/null. Every block a download sends is read whole
    and its SHA-256 checked against its name first (Store::read_block), so this is the price of
    that check in situ. Per run: the server's CPU (utime + stime from /proc/PID/stat) per GB
    sent, and curl's (the client shares the 2 cores).
  - references, the same bytes, same run: SHA-256 of 4 MiB blocks on one core (hashlib, and
    `openssl speed` if installed; the faster is the reference), one `cat FILE >/dev/null` from the page cache, and the same file served over
    loopback HTTP by a tiny server that only sendfile()s it (no hashing, no copy through user
    space), fetched by the same curl with the same streams: the floor of the path without Cubby.
  - perf (auto: if `perf` is installed and may profile): `perf record -p SERVER` during one more
    1-stream download; the share of the server's samples in SHA-256 functions (sha2's, or any
    symbol naming sha256), in the kernel, and the rest; the SHA-256 share times the 1-stream CPU
    per GB is what the check costs in the server, seconds per GB.
  - access log: files/get_metadata of one file and 4 KiB files/upload (new content, new path,
    mode add each time), CONCS in flight (keep-alive connections; 16 from 2 client processes of
    8, one Python process being slower than the server), SMALL_SECONDS each, on the log-on and
    the log-off server in turn (alternating which goes first; each server warmed up by 0.5 s of
    each kind first); per run: requests/s, p50 and p99
    latency (send to last byte of the answer, client side), the server's CPU per request, errors
    (any status but 200), and the log's bytes per request; ROUNDS on/off pairs, median.

Prints `target<TAB>metric<TAB>unit<TAB>value [value...]` lines on stdout (target: cubby, or the
reference: sha256, cat, sendfile, curl; scripts/bench's result helper takes the median, min and
max); writes a table of the figures beside their references to --table (and stderr) and a few
summary lines to --notes. Exits 1 if a request failed (the figures are printed all the same),
2 if the harness broke. Removes its data dirs and files at the end. Standard library only.
"""
import argparse
import asyncio
import hashlib
import http.server
import json
import multiprocessing
import os
import re
import resource
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time

MIB = 1024 * 1024
BLOCK = 4 * MIB
CHUNK = 64 * MIB
HZ = os.sysconf("SC_CLK_TCK")
SHA_RE = re.compile(r"sha2::|sha256|sha_?ni", re.I)


class Broken(Exception):
    """The harness, not the server, failed."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] costs: {msg}", file=sys.stderr, flush=True)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_tcp(port, proc, secs=60):
    t_end = time.time() + secs
    while time.time() < t_end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


# ---- a Cubby server of this stage's own ----------------------------------------------------------
class Server:
    def __init__(self, binary, root, name, access_log, port):
        self.binary, self.name, self.access_log = binary, name, access_log
        self.data = os.path.join(root, f"data-{name}")
        os.makedirs(self.data)
        self.log_path = os.path.join(root, f"cubby-{name}.log")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", self.data, "--http", f"127.0.0.1:{port}", "--https", "off",
             "--access-log", access_log],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        self.pid = self.proc.pid
        if not wait_tcp(port, self.proc):
            raise Broken(f"server {name} did not start on port {port}: {self.tail()}")
        self.token = self.admin_token("costs")

    def admin_token(self, user):
        for args in (["admin", "user", "add", user], ["admin", "token", user]):
            r = subprocess.run([self.binary, *args, "--data", self.data, "--json"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise Broken(f"cubby {' '.join(args)} failed: {r.stderr.strip()} {r.stdout.strip()}")
        return json.loads(r.stdout)["access_token"]

    def tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-400:].decode(errors="replace")
        except OSError:
            return ""

    def log_bytes(self):
        return os.path.getsize(self.log_path)

    def cpu(self):
        return cpu_s(self.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


# ---- a minimal blocking HTTP/1.1 client for the setup ---------------------------------------------
def call(server, route, arg, body=None, content=False, timeout=600):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    headers = {"Authorization": "Bearer " + server.token}
    if content:
        headers["Dropbox-API-Arg"] = json.dumps(arg)
        headers["Content-Type"] = "application/octet-stream"
        data = body or b""
    else:
        headers["Content-Type"] = "application/json"
        data = json.dumps(arg).encode()
    c.request("POST", "/2/" + route, body=data, headers=headers)
    r = c.getresponse()
    out = r.read()
    c.close()
    if r.status != 200:
        raise Broken(f"{route} -> {r.status} {out[:300]!r}")
    return json.loads(out) if out else None


def upload_file(server, path, dest):
    size = os.path.getsize(path)
    sid = call(server, "files/upload_session/start", {}, b"", content=True)["session_id"]
    off = 0
    with open(path, "rb") as f:
        while True:
            buf = f.read(CHUNK)
            if not buf:
                break
            call(server, "files/upload_session/append_v2", {"cursor": {"session_id": sid, "offset": off}},
                 buf, content=True)
            off += len(buf)
    meta = call(server, "files/upload_session/finish",
                {"cursor": {"session_id": sid, "offset": off}, "commit": {"path": dest, "mode": "overwrite"}},
                b"", content=True)
    if meta.get("size") != size:
        raise Broken(f"uploaded {size} bytes, the server says {meta.get('size')}")
    return meta


# ---- downloads with curl -------------------------------------------------------------------------
def curl_config(path, url, token, arg):
    """A curl config file (mode 600), so that the token never appears in argv."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(f'url = "{url}"\n')
        f.write('output = "/dev/null"\n')
        f.write('silent\nshow-error\n')
        f.write('write-out = "%{http_code} %{size_download}\\n"\n')
        if token:
            f.write('request = "POST"\n')
            f.write(f'header = "Authorization: Bearer {token}"\n')
            f.write('header = "Dropbox-API-Arg: ' + json.dumps(arg).replace('"', '\\"') + '"\n')
    return path


def curl_streams(cfg, streams, size, server_pid=None):
    """`streams` concurrent curls of the whole file: (wall s, bytes, server CPU s, curl CPU s)."""
    c0 = cpu_s(server_pid) if server_pid else 0.0
    k0 = children_cpu_s()
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-K", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(streams)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    c1 = cpu_s(server_pid) if server_pid else 0.0
    k1 = children_cpu_s()
    total = 0
    for p, (out, err) in zip(procs, outs):
        parts = out.split()
        if p.returncode != 0 or len(parts) != 2 or parts[0] != "200" or int(parts[1]) != size:
            raise Broken(f"download failed: curl exit {p.returncode}, {out.strip()!r} {err.strip()[:200]}")
        total += int(parts[1])
    return wall, total, c1 - c0, k1 - k0


class SendfileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    path_to_serve = None

    def do_GET(self):
        size = os.path.getsize(self.path_to_serve)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        with open(self.path_to_serve, "rb") as f:
            off = 0
            while off < size:
                n = os.sendfile(self.connection.fileno(), f.fileno(), off, size - off)
                if n == 0:
                    break
                off += n

    def log_message(self, *a):
        pass


class ThreadedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def sha256_mbps(seconds=1.0):
    buf = os.urandom(BLOCK)
    hashlib.sha256(buf).digest()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        hashlib.sha256(buf).digest()
        n += 1
    return n * BLOCK / (time.perf_counter() - t0) / 1e6


def openssl_mbps():
    """`openssl speed` of SHA-256 over 4 MiB buffers, one core, MB/s; None without openssl."""
    if not shutil.which("openssl"):
        return None
    r = subprocess.run(["openssl", "speed", "-seconds", "1", "-bytes", str(BLOCK), "sha256"],
                       capture_output=True, text=True)
    m = re.search(r"^sha256\s+([\d.]+)k", r.stdout, re.M)
    return float(m.group(1)) * 1000 / 1e6 if m else None


def cat_mbps(path, size):
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["cat", path], stdout=null, check=True)
    return size / (time.perf_counter() - t0) / 1e6


def perf_shares(server_pid, cfg, size, scratch):
    """Profiles the server during one 1-stream download: (sha %, kernel %, samples) or None."""
    data = os.path.join(scratch, "perf.data")
    p = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-o", data, "-p", str(server_pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    if p.poll() is not None:
        log(f"perf record did not run: {p.stderr.read().strip()[:200]}")
        return None
    try:
        curl_streams(cfg, 1, size)
    finally:
        p.send_signal(2)
        p.wait(60)
    r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "-g", "none",
                        "--stdio", "--percent-limit", "0"], capture_output=True, text=True)
    sha = kernel = total = 0.0
    samples = "?"
    for line in r.stdout.splitlines():
        m = re.match(r"#\s*Samples:\s*(\S+)", line)
        if m and samples == "?":
            samples = m.group(1)
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        total += pct
        if SHA_RE.search(sym):
            sha += pct
        elif kind == "k" or dso.startswith("[kernel"):
            kernel += pct
    os.unlink(data)
    if total == 0:
        log(f"perf report gave nothing: {r.stderr.strip()[:200]}")
        return None
    return sha, kernel, samples


# ---- small requests: an asyncio keep-alive client in 1 or more processes --------------------------
async def read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    h = head.lower()
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", h)
    if m:
        await reader.readexactly(int(m.group(1)))
    elif b"transfer-encoding: chunked" in h:
        while True:
            n = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(n + 2)
            if n == 0:
                break
    return status


def request_bytes(op, token, tag, i):
    if op == "get_metadata":
        body = b'{"path":"/costs/meta.txt"}'
        head = ("POST /2/files/get_metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
    else:
        body = (f"{tag}-{i:09d}-".encode() * 200)[:4096]
        arg = json.dumps({"path": f"/costs/up/{tag}-{i}", "mode": "add"})
        head = ("POST /2/files/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
                f"Dropbox-API-Arg: {arg}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def client_loop(port, token, op, conns, deadline, tag):
    lat, errors = [], {}

    async def one(k):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        while time.perf_counter() < deadline:
            req = request_bytes(op, token, f"{tag}-{k}", i)
            i += 1
            t0 = time.perf_counter()
            writer.write(req)
            try:
                status = await read_answer(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if status == 200:
                lat.append(time.perf_counter() - t0)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
        writer.close()

    await asyncio.gather(*(one(k) for k in range(conns)))
    return lat, errors


def client_proc(args):
    port, token, op, conns, start_at, seconds, tag = args
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.perf_counter() + seconds
    return asyncio.run(client_loop(port, token, op, conns, deadline, tag))


def small_run(pool, server, op, conc, seconds, procs, tag):
    per = [conc // procs + (1 if k < conc % procs else 0) for k in range(procs)]
    per = [n for n in per if n > 0]
    start_at = time.time() + 0.2
    c0, b0 = server.cpu(), server.log_bytes()
    t0 = time.perf_counter()
    results = pool.map(client_proc, [(server.port, server.token, op, n, start_at, seconds, f"{tag}p{k}")
                                     for k, n in enumerate(per)])
    wall = time.perf_counter() - t0 - 0.2
    time.sleep(0.1)  # the last access-log lines are written after the answers
    c1, b1 = server.cpu(), server.log_bytes()
    lat = sorted(x for r in results for x in r[0])
    errors = {}
    for _, e in results:
        for k, v in e.items():
            errors[k] = errors.get(k, 0) + v
    n = len(lat)
    if n == 0:
        raise Broken(f"{op} c{conc} on {server.name}: no answer with status 200 ({errors}): {server.tail()}")
    pct = lambda q: lat[min(n - 1, int(q * n))] * 1000
    return {"rps": n / wall, "p50": pct(0.50), "p99": pct(0.99), "cpu_us": (c1 - c0) / n * 1e6,
            "log_b": (b1 - b0) / n, "n": n, "errors": errors}


# ---- formatting ------------------------------------------------------------------------------------
def g(x):
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def span(vals, unit=""):
    v = sorted(vals)
    s = f"{g(statistics.median(v))}{unit}"
    if len(v) > 1:
        s += f" ({g(v[0])}–{g(v[-1])})"
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--dl-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--streams", default="1 4")
    ap.add_argument("--small-seconds", type=float, default=3.0)
    ap.add_argument("--concs", default="1 16")
    ap.add_argument("--rounds", type=int, default=2, help="on/off pairs per operation and concurrency")
    ap.add_argument("--client-procs", type=int, default=2, help="client processes for 8 or more in flight")
    ap.add_argument("--perf", default="auto", choices=("auto", "on", "off"))
    ap.add_argument("--port-base", type=int, default=0)
    ap.add_argument("--table")
    ap.add_argument("--notes")
    a = ap.parse_args()

    root = os.path.join(a.scratch, "costs")
    os.makedirs(root)
    ports = iter(range(a.port_base, a.port_base + 100)) if a.port_base else None
    port = lambda: next(ports) if ports else free_port()
    streams = [int(s) for s in a.streams.split()]
    concs = [int(c) for c in a.concs.split()]
    out = []     # (metric, unit, values)
    table = []   # (figure, cubby, reference)
    notes = []
    failed = False
    servers = []

    def emit(metric, unit, values, target="cubby"):
        out.append((target, metric, unit, values))
        print(f"{target}\t{metric}\t{unit}\t{' '.join(f'{v:.4g}' for v in values)}", flush=True)

    try:
        srv = Server(a.binary, root, "download", "on", port())
        servers.append(srv)
        log(f"download server (access log on, the default): pid {srv.pid} at {srv.url}")

        # -- references that need no server
        sha_py = sha256_mbps()
        emit("SHA-256 of 4 MiB blocks, one core (hashlib)", "MB/s", [sha_py], "sha256")
        sha_ossl = openssl_mbps()
        if sha_ossl:
            emit("SHA-256 of 4 MiB blocks, one core (openssl speed)", "MB/s", [sha_ossl], "sha256")
        sha = max(sha_py, sha_ossl or 0)
        sha_txt = f"SHA-256 one core {g(sha)} MB/s ({'openssl' if sha_ossl and sha_ossl > sha_py else 'hashlib'})"
        size = a.dl_mib * MIB
        big = os.path.join(root, "download.bin")
        with open(big, "wb") as f:
            for _ in range(0, size, CHUNK):
                f.write(os.urandom(min(CHUNK, size - f.tell())))
        cat = cat_mbps(big, size)
        emit(f"cat of the {a.dl_mib} MiB file from the page cache", "MB/s", [cat], "cat")

        # -- the download through Cubby
        log(f"uploading {a.dl_mib} MiB (upload session, 64 MiB appends)")
        upload_file(srv, big, "/costs/download.bin")
        cfg = curl_config(os.path.join(root, "download.curl"), srv.url + "/2/files/download", srv.token,
                          {"path": "/costs/download.bin"})
        curl_streams(cfg, 1, size)  # warms the page cache with the blocks
        # -- the sendfile reference
        SendfileHandler.path_to_serve = big
        httpd = ThreadedServer(("127.0.0.1", port()), SendfileHandler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        ref_cfg = curl_config(os.path.join(root, "sendfile.curl"),
                              f"http://127.0.0.1:{httpd.server_address[1]}/download.bin", None, None)
        curl_streams(ref_cfg, 1, size)
        dl = {}
        for s in streams:
            mbps, scpu, ccpu, ref = [], [], [], []
            for _ in range(a.runs):
                wall, total, sc, cc = curl_streams(cfg, s, size, srv.pid)
                mbps.append(total / wall / 1e6)
                scpu.append(sc / (total / 1e9))
                ccpu.append(cc / (total / 1e9))
                wall, total, _, _ = curl_streams(ref_cfg, s, size)
                ref.append(total / wall / 1e6)
            dl[s] = (mbps, scpu, ccpu, ref)
            emit(f"download {a.dl_mib} MiB, {s} stream(s), warm page cache", "MB/s", mbps)
            emit(f"server CPU per GB downloaded, {s} stream(s)", "s/GB", scpu)
            emit(f"curl CPU per GB downloaded, {s} stream(s)", "s/GB", ccpu, "curl")
            emit(f"download {a.dl_mib} MiB, {s} stream(s), same file and curl", "MB/s", ref, "sendfile")
        httpd.shutdown()
        httpd.server_close()
        sha_s_gb = 1e3 / sha
        prof = None
        if a.perf != "off" and shutil.which("perf"):
            log("perf record of the server during one more 1-stream download")
            prof = perf_shares(srv.pid, cfg, size, root)
            if prof:
                emit("perf: server samples in SHA-256 during a download", "%", [prof[0]])
                emit("perf: server samples in the kernel during a download", "%", [prof[1]])
        elif a.perf == "on":
            raise Broken("--perf on, but no perf")

        table.append(("", "figure", "cubby", "reference"))
        for s in streams:
            mbps, scpu, ccpu, ref = dl[s]
            table.append(("m", f"download {a.dl_mib} MiB, {s} stream{'s' if s > 1 else ''}, warm cache",
                          span(mbps, " MB/s"),
                          f"sendfile server {span(ref, ' MB/s')}; cat {g(cat)} MB/s; {sha_txt}"))
            share = sha_s_gb / statistics.median(scpu)
            table.append(("m", "  server CPU per GB sent", span(scpu, " s"),
                          f"SHA-256 of 1 GB: {sha_s_gb:.2f} s = {share:.0%} of it; curl {span(ccpu, ' s')}"))
        if prof:
            in_situ = prof[0] / 100 * statistics.median(dl[streams[0]][1])
            emit("SHA-256 in the server during a download (perf share x CPU per GB)", "s/GB", [in_situ])
            table.append(("m", f"  perf, {streams[0]} stream: server samples in SHA-256", f"{prof[0]:.1f}%",
                          f"= {in_situ:.2f} s/GB ({1000 / in_situ:,.0f} MB/s); kernel {prof[1]:.1f}%, "
                          f"the rest {100 - prof[0] - prof[1]:.1f}% ({prof[2]} samples)"))
        notes.append(f"costs: download {a.dl_mib} MiB (warm cache): "
                     + "; ".join(f"{s} stream{'s' if s > 1 else ''} {g(statistics.median(dl[s][0]))} MB/s, "
                                 f"server {statistics.median(dl[s][1]):.2f} s CPU/GB" for s in streams)
                     + f"; beside SHA-256 on one core {g(sha)} MB/s ({sha_s_gb:.2f} s/GB), cat {g(cat)} MB/s, "
                     + "sendfile server " + ", ".join(g(statistics.median(dl[s][3])) for s in streams) + " MB/s"
                     + (f"; perf: {prof[0]:.1f}% of the server's samples in SHA-256 "
                        f"({prof[0] / 100 * statistics.median(dl[streams[0]][1]):.2f} s/GB)" if prof else ""))
        os.unlink(big)
        srv.stop()
        shutil.rmtree(srv.data, ignore_errors=True)

        # -- the access log: two fresh servers alike but for it, each warmed up first
        on = Server(a.binary, root, "log-on", "on", port())
        servers.append(on)
        off = Server(a.binary, root, "log-off", "off", port())
        servers.append(off)
        log(f"access log on: pid {on.pid} at {on.url}; off: pid {off.pid} at {off.url}")
        procs_for = lambda c: max(1, min(a.client_procs, c // 8)) if c >= 8 else 1
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(max(procs_for(c) for c in concs)) as pool:
            for srv in (on, off):
                call(srv, "files/upload", {"path": "/costs/meta.txt", "mode": "overwrite"}, b"metadata", content=True)
                for op in ("get_metadata", "upload"):
                    small_run(pool, srv, op, 1, 0.5, 1, f"warm-{srv.access_log}")
            for op in ("get_metadata", "upload"):
                for ci, c in enumerate(concs):
                    runs = {"on": [], "off": []}
                    for rd in range(a.rounds):
                        order = (on, off) if (ci + rd) % 2 == 0 else (off, on)
                        for srv in order:
                            log(f"{op}, {c} in flight, access log {srv.access_log}, {a.small_seconds:g} s")
                            runs[srv.access_log].append(small_run(pool, srv, op, c, a.small_seconds,
                                                                  procs_for(c), f"{srv.access_log}{c}r{rd}"))
                    res = {}
                    for k in ("on", "off"):
                        rs = runs[k]
                        what = f"{op}, {c} in flight, access log {k}"
                        emit(f"{what}: requests/s", "req/s", [r["rps"] for r in rs])
                        emit(f"{what}: p50", "ms", [r["p50"] for r in rs])
                        emit(f"{what}: p99", "ms", [r["p99"] for r in rs])
                        emit(f"{what}: server CPU per request", "us", [r["cpu_us"] for r in rs])
                        errors = {}
                        for r in rs:
                            for e, v in r["errors"].items():
                                errors[e] = errors.get(e, 0) + v
                        if errors:
                            failed = True
                            notes.append(f"costs: {what}: errors {errors}")
                        res[k] = {f: statistics.median(r[f] for r in rs) for f in ("rps", "p50", "p99", "cpu_us", "log_b")}
                    ron, roff = res["on"], res["off"]
                    label = "4 KiB files/upload" if op == "upload" else "files/get_metadata"
                    cell = lambda r: f"{g(r['rps'])}/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, {g(r['cpu_us'])} µs CPU"
                    table.append(("m", f"{label}, {c} in flight, log on / off", cell(ron),
                                  f"off: {cell(roff)}; on/off: {ron['rps'] / roff['rps']:.0%} of the rate, "
                                  f"{ron['cpu_us'] / roff['cpu_us'] - 1:+.0%} CPU, {ron['log_b']:.0f} log bytes/request"))
                    notes.append(f"costs: {label}, {c} in flight: access log on {g(ron['rps'])}/s "
                                 f"p50 {ron['p50']:.2f} p99 {ron['p99']:.2f} ms {g(ron['cpu_us'])} µs CPU; "
                                 f"off {g(roff['rps'])}/s p50 {roff['p50']:.2f} p99 {roff['p99']:.2f} ms "
                                 f"{g(roff['cpu_us'])} µs CPU ({ron['cpu_us'] / roff['cpu_us'] - 1:+.0%} CPU with it on)")
    except Exception as e:  # the harness or a server broke: report it, clean up, exit 2
        e = e if isinstance(e, Broken) else f"{type(e).__name__}: {e}"
        log(f"broken: {e}")
        notes.append(f"costs: the stage broke: {e}")
        failed = None
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)

    if table:
        head, rows = table[0][1:], [r[1:] for r in table[1:]]
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        lines = [f"m. costs: verifying every block on read (downloads of one {a.dl_mib} MiB file, "
                 f"median (min–max) of {a.runs}), and the access log ({a.small_seconds:g} s per run, "
                 f"median of {a.rounds})"]
        for r in [head, tuple("-" * w for w in widths)] + rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        text = "\n".join(lines) + "\n"
        print(text, file=sys.stderr, end="")
        if a.table:
            with open(a.table, "w") as f:
                f.write(text)
    if a.notes:
        with open(a.notes, "w") as f:
            f.write("".join(n + "\n" for n in notes))
    sys.exit(2 if failed is None else 1 if failed else 0)


if __name__ == "__main__":
    main()
