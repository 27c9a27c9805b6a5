#!/usr/bin/env python3
"""Stage k of scripts/bench: thumbnails, against a running Cubby.

Usage: thumbs.py BASE_URL --server-pid PID --scratch DIR [--images 10] [--storm 16] [--uploads 50]
                 [--notes FILE]

The bearer token comes from CUBBY_TOKEN (never from argv). Needs Pillow (scripts/bench runs this
with a virtualenv of its own) to make the photos and to read the thumbnails' sizes.

Makes photo-like JPEGs in DIR (smooth gradients of two random colour fields, plus Gaussian noise
of sigma 8 on each channel; quality 90, 4:2:0 chroma subsampling as cameras write), every one
distinct, uploads them under /thumbs, then measures (all thumbnails w256h256 JPEG, fitone_bestfit
is not asked: the default mode, strict):
  - files/get_thumbnail_v2 of IMAGES distinct 12 MP (4000 x 3000) and IMAGES distinct 24 MP
    (6000 x 4000) photos, each cold (the first request of that thumbnail), then each warm (the
    same request again), ms per request over one keep-alive connection;
  - one files/get_thumbnail_batch of 25 other distinct 12 MP photos, cold, then the same warm, ms;
  - the latency of UPLOADS 4 KiB files/upload (distinct content) one after the other on the idle
    server, then during a storm of STORM concurrent cold get_thumbnail_v2 of distinct 24 MP photos
    (one connection each), uploads back to back from the storm's start to its end; and the
    server's peak RSS during the storm: its VmHWM is reset to its VmRSS just before
    (/proc/PID/clear_refs, 5) and read after; VmRSS is also sampled every 10 ms;
  - cubby_thumbnails_total{outcome=made|cached|refused} from /metrics before and after each
    step: made must grow by the number of cold requests, cached by the warm ones.
Prints one figure a line, `metric<TAB>unit<TAB>value [value...]` (scripts/bench's result helper
takes the median, min and max of the values); writes notes (file sizes, counters, checks) to
--notes. Exits 1 if a request failed or a counter is off (the figures are printed all the same).
Removes the images it made from DIR at the end.
"""
import argparse
import base64
import http.client
import io
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor

from PIL import Image, ImageChops

SIZE = "w256h256"
NOISE_SIGMA = 8
QUALITY = 90
BATCH = 25
TWELVE = (4000, 3000)
TWENTY_FOUR = (6000, 4000)


# ---- photos -------------------------------------------------------------------------------------
def make_photo(args):
    """Writes one photo-like JPEG: a 6 x 4 colour field blended with a 48 x 32 one, both
    enlarged bicubically (smooth gradients, some mid-scale structure), plus per-channel
    Gaussian noise. Returns (path, bytes)."""
    path, w, h, seed = args
    rng = random.Random(seed)

    def field(cw, ch):
        s = Image.new("RGB", (cw, ch))
        s.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(cw * ch)])
        return s.resize((w, h), Image.BICUBIC)

    base = ImageChops.blend(field(6, 4), field(48, 32), 0.3)
    noise = Image.merge("RGB", [Image.effect_noise((w, h), NOISE_SIGMA) for _ in range(3)])
    img = ImageChops.add(base, noise, 1.0, -128)
    img.save(path, "JPEG", quality=QUALITY, subsampling="4:2:0")
    return path, os.path.getsize(path)


# ---- HTTP ---------------------------------------------------------------------------------------
class Api:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.token = u.hostname, u.port or 80, token
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)

    def post(self, route, arg=None, body=b"", content=False, rpc=None):
        """(status, headers, body, seconds) of POST /2/ROUTE: content-style (Dropbox-API-Arg)
        when `content`, else RPC with the JSON `rpc`."""
        headers = {"Authorization": "Bearer " + self.token}
        if content:
            headers["Dropbox-API-Arg"] = json.dumps(arg)
            headers["Content-Type"] = "application/octet-stream"
            data = body
        elif rpc is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(rpc).encode()
        else:
            headers["Dropbox-API-Arg"] = json.dumps(arg)
            data = b""
        t0 = time.perf_counter()
        self.conn.request("POST", "/2/" + route, body=data, headers=headers)
        r = self.conn.getresponse()
        out = r.read()
        return r.status, r.headers, out, time.perf_counter() - t0

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        return r.status, r.read()

    def close(self):
        self.conn.close()


class Failed(Exception):
    pass


def upload(api, path, data):
    st, _, out, secs = api.post("files/upload", {"path": path, "mode": "overwrite", "mute": True},
                                data, content=True)
    if st != 200:
        raise Failed(f"files/upload {path}: HTTP {st}: {out[:300]!r}")
    return secs


def thumbnail(api, path):
    """Seconds of one get_thumbnail_v2 of `path`; checks the answer is a 256-wide JPEG."""
    st, hdr, out, secs = api.post("files/get_thumbnail_v2",
                                  {"resource": {".tag": "path", "path": path}, "size": SIZE})
    if st != 200:
        raise Failed(f"get_thumbnail_v2 {path}: HTTP {st}: {out[:300]!r}")
    check_jpeg(out, f"get_thumbnail_v2 {path}", hdr.get("Content-Type"))
    return secs


def check_jpeg(data, what, ctype="image/jpeg"):
    if ctype != "image/jpeg":
        raise Failed(f"{what}: Content-Type {ctype}")
    img = Image.open(io.BytesIO(data))
    if img.format != "JPEG" or max(img.size) != 256:
        raise Failed(f"{what}: a {img.format} of {img.size}, not a JPEG 256 on its long side")


def batch(api, paths):
    st, _, out, secs = api.post("files/get_thumbnail_batch",
                                rpc={"entries": [{"path": p, "size": SIZE} for p in paths]})
    if st != 200:
        raise Failed(f"get_thumbnail_batch: HTTP {st}: {out[:300]!r}")
    entries = json.loads(out)["entries"]
    if len(entries) != len(paths):
        raise Failed(f"get_thumbnail_batch: {len(entries)} entries for {len(paths)}")
    for p, e in zip(paths, entries):
        if e.get(".tag") != "success":
            raise Failed(f"get_thumbnail_batch {p}: {json.dumps(e)[:300]}")
        check_jpeg(base64.b64decode(e["thumbnail"]), f"get_thumbnail_batch {p}")
    return secs


def counters(api):
    st, out = api.get("/metrics")
    if st != 200:
        raise Failed(f"GET /metrics: HTTP {st}")
    c = {}
    for line in out.decode().splitlines():
        if line.startswith("cubby_thumbnails_total{outcome=\""):
            k = line.split('"')[1]
            c[k] = int(float(line.rsplit(" ", 1)[1]))
    if "made" not in c:
        raise Failed("/metrics has no cubby_thumbnails_total{outcome=\"made\"}")
    return c


def proc_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pct(values, p):
    """The p-th percentile (nearest rank)."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))]


def ms(values):
    return " ".join(f"{s * 1000:.2f}" for s in values)


# ---- the stage ----------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("url")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--storm", type=int, default=16)
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--notes", default=os.devnull)
    a = ap.parse_args()
    token = os.environ.get("CUBBY_TOKEN") or sys.exit("CUBBY_TOKEN is not set")
    pid, n = a.server_pid, a.images
    notes = open(a.notes, "a")
    rows = []   # (metric, unit, values)
    problems = []

    def row(metric, unit, values):
        rows.append((metric, unit, values))
        print(f"{metric}\t{unit}\t{values}", flush=True)

    def note(text):
        notes.write(text + "\n")
        notes.flush()

    def log(text):
        print(f"[{time.strftime('%H:%M:%S')}] thumbs: {text}", file=sys.stderr, flush=True)

    scratch = os.path.join(a.scratch, "thumbs")
    os.makedirs(scratch, exist_ok=True)
    tag = f"{os.getpid()}-{int(time.time())}"
    sets = {"c12": (TWELVE, n), "c24": (TWENTY_FOUR, n), "b12": (TWELVE, BATCH),
            "s24": (TWENTY_FOUR, a.storm)}
    jobs, seed = [], random.Random(tag).randrange(1 << 30)
    for name, ((w, h), k) in sets.items():
        for i in range(k):
            seed += 1
            jobs.append((os.path.join(scratch, f"{name}-{i:03d}.jpg"), w, h, seed))
    made = {}
    try:
        t0 = time.perf_counter()
        log(f"making {len(jobs)} photo-like JPEGs in {scratch} ({os.cpu_count()} processes)")
        with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
            for path, size in pool.map(make_photo, jobs):
                made[path] = size
        log(f"made in {time.perf_counter() - t0:.0f} s")
        sizes = {name: [made[j[0]] for j in jobs if os.path.basename(j[0]).startswith(name + "-")]
                 for name in sets}
        for name, ((w, h), k) in sets.items():
            mb = [s / 1e6 for s in sizes[name]]
            note(f"thumbs: {name}: {k} JPEGs of {w} x {h} ({w * h / 1e6:.0f} MP, quality {QUALITY}, "
                 f"4:2:0, noise sigma {NOISE_SIGMA}), {statistics.median(mb):.2f} MB median "
                 f"({min(mb):.2f}-{max(mb):.2f})")
        row("file size, 12 MP JPEG (4000 x 3000, q90, 4:2:0)", "MB",
            " ".join(f"{s / 1e6:.3f}" for s in sizes["c12"] + sizes["b12"]))
        row("file size, 24 MP JPEG (6000 x 4000, q90, 4:2:0)", "MB",
            " ".join(f"{s / 1e6:.3f}" for s in sizes["c24"] + sizes["s24"]))

        api = Api(a.url, token)
        t0 = time.perf_counter()
        remote = {}
        for path, _, _, _ in jobs:
            name = "/thumbs/" + os.path.basename(path)
            with open(path, "rb") as f:
                upload(api, name, f.read())
            remote[path] = name
        log(f"uploaded {len(jobs)} photos ({sum(made.values()) / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s")
        paths = {name: [remote[j[0]] for j in jobs if os.path.basename(j[0]).startswith(name + "-")]
                 for name in sets}
        c0 = counters(api)

        # Single thumbnails, cold then warm.
        for name, label in (("c12", "12 MP"), ("c24", "24 MP")):
            before = counters(api)
            cold = [thumbnail(api, p) for p in paths[name]]
            mid = counters(api)
            warm = [thumbnail(api, p) for p in paths[name]]
            after = counters(api)
            row(f"get_thumbnail_v2 {SIZE} jpeg of a {label} JPEG, cold", "ms", ms(cold))
            row(f"get_thumbnail_v2 {SIZE} jpeg of a {label} JPEG, warm", "ms", ms(warm))
            check(problems, note, f"{label} cold", before, mid, made=len(cold), cached=0)
            check(problems, note, f"{label} warm", mid, after, made=0, cached=len(warm))

        # One batch of 25, cold then warm.
        before = counters(api)
        cold = batch(api, paths["b12"])
        mid = counters(api)
        warm = batch(api, paths["b12"])
        after = counters(api)
        row(f"get_thumbnail_batch of {BATCH} distinct 12 MP JPEGs, cold, whole call", "ms", ms([cold]))
        row(f"get_thumbnail_batch of {BATCH} distinct 12 MP JPEGs, warm, whole call", "ms", ms([warm]))
        check(problems, note, "batch cold", before, mid, made=BATCH, cached=0)
        check(problems, note, "batch warm", mid, after, made=0, cached=BATCH)

        # 4 KiB uploads on the idle server.
        blob = lambda: os.urandom(4096)
        idle = [upload(api, f"/thumbs/up/idle-{i:03d}.bin", blob()) for i in range(a.uploads)]
        row(f"4 KiB files/upload on the idle server, median of {len(idle)}", "ms", ms(idle))
        row(f"4 KiB files/upload on the idle server, p90 of {len(idle)}", "ms", ms([pct(idle, 90)]))

        # The storm: STORM concurrent cold 24 MP thumbnails, uploads beside them, RSS watched.
        hwm_before = proc_kib(pid, "VmHWM")
        rss_before = proc_kib(pid, "VmRSS")
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            reset = True
        except OSError as e:
            reset = False
            note(f"thumbs: could not reset the server's VmHWM ({e}): the storm's peak is the "
                 "sampled VmRSS only")
        note(f"thumbs: server before the storm: VmHWM since start {hwm_before // 1024} MiB, "
             f"VmRSS {rss_before // 1024} MiB")
        storm_apis = [Api(a.url, token) for _ in range(a.storm)]
        for s in storm_apis:   # connect now, so the storm's requests start together
            s.conn.connect()
        before = counters(api)
        go, done = threading.Barrier(a.storm + 2), threading.Event()
        storm_secs, storm_errors, during, sampled = [None] * a.storm, [], [], [rss_before]

        def storm_one(i):
            go.wait()
            try:
                storm_secs[i] = thumbnail(storm_apis[i], paths["s24"][i])
            except Exception as e:   # noqa: BLE001 - reported below
                storm_errors.append(f"{type(e).__name__}: {e}")

        def uploader():
            up = Api(a.url, token)
            up.conn.connect()
            go.wait()
            i = 0
            try:
                while not done.is_set():
                    secs = upload(up, f"/thumbs/up/storm-{i:04d}.bin", blob())
                    if not done.is_set():   # only uploads that finished within the storm
                        during.append(secs)
                    i += 1
            except Exception as e:   # noqa: BLE001
                storm_errors.append(f"upload: {type(e).__name__}: {e}")
            up.close()

        def sampler():
            while not done.is_set():
                try:
                    sampled.append(proc_kib(pid, "VmRSS"))
                except OSError:
                    return
                time.sleep(0.01)

        threads = [threading.Thread(target=storm_one, args=(i,)) for i in range(a.storm)]
        threads.append(threading.Thread(target=uploader))
        watch = threading.Thread(target=sampler)
        watch.start()
        for t in threads:
            t.start()
        go.wait()
        t0 = time.perf_counter()
        for t in threads[:-1]:
            t.join()
        storm_wall = time.perf_counter() - t0
        done.set()
        threads[-1].join()
        watch.join()
        hwm = proc_kib(pid, "VmHWM")
        after = counters(api)
        for s in storm_apis:
            s.close()
        for e in storm_errors:
            problems.append(f"storm: {e}")
        ok = [s for s in storm_secs if s is not None]
        row(f"storm: {a.storm} concurrent cold get_thumbnail_v2 of distinct 24 MP JPEGs, wall", "ms",
            ms([storm_wall]))
        if ok:
            row(f"storm: one cold 24 MP thumbnail among {a.storm} concurrent", "ms", ms(ok))
        if reset:
            row(f"server peak RSS during the storm (VmHWM, reset before; {rss_before // 1024} MiB before)",
                "MiB", f"{hwm / 1024:.0f}")
        row("server VmRSS during the storm, peak of 10 ms samples", "MiB", f"{max(sampled) / 1024:.0f}")
        if during:
            row(f"4 KiB files/upload during the storm, median of {len(during)}", "ms", ms(during))
            row(f"4 KiB files/upload during the storm, p90 of {len(during)}", "ms", ms([pct(during, 90)]))
        else:
            problems.append("storm: no upload finished during the storm")
        if len(during) < a.uploads:
            note(f"thumbs: only {len(during)} uploads finished within the storm's {storm_wall:.2f} s "
                 f"(back to back; {a.uploads} wanted)")
        check(problems, note, "storm", before, after, made=a.storm, cached=0)
        cn = counters(api)
        note("thumbs: cubby_thumbnails_total over the stage: " + ", ".join(
            f"{k} {cn.get(k, 0) - c0.get(k, 0)}" for k in ("made", "cached", "refused"))
            + f" (cold requests {2 * n + BATCH + a.storm}, warm {2 * n + BATCH})")
        row(f"thumbnails made (decoded) in the stage, /metrics; cold requests {2 * n + BATCH + a.storm}",
            "thumbnails", str(cn["made"] - c0["made"]))
        row(f"thumbnails served from the cache in the stage, /metrics; warm requests {2 * n + BATCH}",
            "thumbnails", str(cn.get("cached", 0) - c0.get("cached", 0)))
        api.close()
    except (Failed, OSError, http.client.HTTPException, ValueError, KeyError) as e:
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        for path in made:
            try:
                os.remove(path)
            except OSError:
                pass
        try:
            os.rmdir(scratch)
        except OSError:
            pass
    for p in problems:
        note(f"thumbs: problem: {p}")
        print(f"thumbs.py: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


def check(problems, note, what, before, after, made, cached):
    """The counters moved as they should have between `before` and `after`."""
    dm = after["made"] - before["made"]
    dc = after.get("cached", 0) - before.get("cached", 0)
    dr = after.get("refused", 0) - before.get("refused", 0)
    if (dm, dc, dr) != (made, cached, 0):
        problems.append(f"{what}: /metrics counted made {dm}, cached {dc}, refused {dr}; "
                        f"expected made {made}, cached {cached}, refused 0")


if __name__ == "__main__":
    main()
