"""The torture harness's other stages: `cubby admin gc` killed mid-run, the `cubby backup`
and `cubby sync` clients killed mid-run, and a full disk."""

import concurrent.futures
import json
import os
import signal
import subprocess
import threading
import time

from tlib import Api, MiB, Server, Unknown, content, content_and_hash, content_hash, now

KiB = 1024


# ---------------------------------------------------------------------------------------
# `cubby admin gc` killed mid-run.


def upload_all(h, items, label):
    """Uploads (seed, size, path) items with files/upload, 4 at a time (the 429 policy of
    tlib.Api applies: a 429 lasting more than 10 s is a failure). Returns the items still
    refused."""
    local = threading.local()
    refused = []
    lock = threading.Lock()

    def one(item):
        seed, size, path = item
        api = getattr(local, "api", None)
        if api is None:
            api = local.api = Api(h.server.url, h.token, h.results, label)
        data, ch = content_and_hash(seed, size)
        try:
            r = api.upload("files/upload", {"path": path, "mode": "overwrite"}, data)
        except Unknown as e:
            h.results.fail("gc", "{}: upload {}: {}".format(label, path, e))
            return
        if r.status != 200:
            with lock:
                refused.append((item, r))
            return
        if r.json.get("content_hash") != ch:
            h.results.fail("corrupt", "{}: upload {} acknowledged {}".format(label, path, r.json))
            return
        d = api.download(path)
        h.results.check(d.status == 200 and content_hash(d.body) == ch, "corrupt",
                        "{}: {} does not read back: {}".format(label, path, d.describe()))

    with concurrent.futures.ThreadPoolExecutor(min(16, max(1, len(items)))) as ex:
        list(ex.map(one, items))
    return refused


def gc_prepare(h, rnd, earlier):
    """Content that becomes garbage: uploaded to /gcN, then permanently deleted. Includes
    some content an earlier round's collection deleted. The first round also times one
    complete collection (the kill delays are drawn from it)."""
    sizes = [4096, 4096, 4096, 300 * KiB, 300 * KiB, 300 * KiB, 5 * MiB, 5 * MiB + 1, 9 * MiB]
    contents = [("gc{}:{}".format(rnd, i), s) for i, s in enumerate(sizes)] + list(earlier[-3:])
    if not getattr(h, "gc_calibrated", False):
        h.gc_calibrated = True
        calib = [("gccal:{}".format(i), s) for i, s in enumerate(sizes)]
        make_garbage(h, "/gccal", calib)
        d, out = h.run_gc("a complete collection (timing)")
        h.gc_estimate = max(0.1, d)
        deleted = (out or {}).get("deleted", 0)
        h.results.check(deleted >= len(sizes), "gc", "the timing collection deleted {} blocks, expected at least {}: {}".format(
            deleted, len(sizes), out))
        # Content the collection just deleted is uploaded again: revived, not refused.
        still = upload_all(h, [(s, n, "/gccal-re/c{}".format(i)) for i, (s, n) in enumerate(calib)], "gc-revive")
        for item, r in still:
            h.results.fail("gc", "upload of collected content {} refused after a complete collection: {}".format(
                item[2], r.describe()))
        h.api.rpc("files/permanently_delete", {"path": "/gccal-re"})
        earlier.extend(calib[:3])
        contents += calib[3:6]
    make_garbage(h, "/gc{}".format(rnd), contents)
    return contents


def make_garbage(h, folder, contents):
    still = upload_all(h, [(s, n, "{}/c{}".format(folder, i)) for i, (s, n) in enumerate(contents)], "gc-prepare")
    for item, r in still:
        h.results.fail("gc", "preparing garbage: upload {} refused: {}".format(item[2], r.describe()))
    r = h.api.rpc("files/permanently_delete", {"path": folder})
    h.results.check(r.status == 200, "gc", "permanently_delete {}: {}".format(folder, r.describe()))


def gc_kill_once(h, rnd, attempt):
    """One `cubby admin gc --at` SIGKILLed after a random delay; returns (killed, the number
    of block rows it left claimed or None if unknown)."""
    at = h.gc_at()
    before = h.gc_states()
    log_path = os.path.join(h.tmp, "gc-{}-{}.log".format(rnd, attempt))
    delay = h.rng.uniform(0.0, h.gc_estimate * 1.2)
    t = now()
    with open(log_path, "wb") as log:
        p = subprocess.Popen(h.server.admin_cmd("gc", "--at", str(at), "--json"), stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=h.env)
        while now() - t < delay and p.poll() is None:
            time.sleep(0.002)
        killed = p.poll() is None
        if killed:
            p.send_signal(signal.SIGKILL)
        rc = p.wait()
    with open(log_path, "rb") as f:
        out = f.read().decode("utf-8", "replace").strip()
    if not killed:
        took = now() - t
        h.gc_estimate = max(0.1, took)
        h.results.add("gc finished before its kill")
        h.log("gc {} (try {}) finished within {:.3f} s (exit {}): {}".format(rnd, attempt + 1, took, rc, out[-300:]), echo=True)
        h.results.check(rc == 0, "gc", "cubby admin gc exited {}: {}".format(rc, out[-2000:]))
        return False, None
    h.results.add("gc killed mid-run")
    states = h.gc_states()
    claimed = None
    if isinstance(states, dict) and isinstance(before, dict):
        claimed = states["claimed"] - before["claimed"]
    if claimed is not None and claimed > 0:
        h.results.add("gc kills that left blocks claimed")
    h.log("gc {} (try {}) killed after {:.3f} s; it left {} more block rows claimed; rows now claimed (-1) and deleted (-2): {}".format(
        rnd, attempt + 1, delay, claimed, states), echo=True)
    return True, claimed


def gc_kill_round(h, rnd, contents):
    """Runs `cubby admin gc --at` (past the grace period) while the writers write, SIGKILLs
    it after a random delay, then uploads the collected content again: no 429 may last more
    than 10 s, and fsck must be clean."""
    # Embedded, the harness can see whether a kill left blocks claimed (the interesting
    # case); a kill that came too early to claim anything is tried again, later.
    for attempt in range(4):
        killed, claimed = gc_kill_once(h, rnd, attempt)
        if not killed or claimed != 0:
            break
        h.gc_estimate *= 1.5
    t = now()
    items = [(s, n, "/gc{}-re/c{}".format(rnd, i)) for i, (s, n) in enumerate(contents)]
    still = upload_all(h, items, "gc-reupload")
    if still:
        for item, r in still:
            h.results.fail("persistent-429" if r.status == 429 else "gc",
                           "after gc {} was {}: upload of collected content {} ({} bytes) still refused after {:.0f} s: {}".format(
                               rnd, "killed mid-run" if killed else "run", item[2], item[1], now() - t, r.describe()))
        # Another complete collection must clear what the killed one left.
        h.run_gc("collection after the refusals")
        again = upload_all(h, [i for i, _ in still], "gc-reupload-after-gc")
        for item, r in again:
            h.results.fail("gc", "upload of {} still refused after a complete collection: {}".format(item[2], r.describe()))
    h.api.rpc("files/permanently_delete", {"path": "/gc{}-re".format(rnd)})
    h.fsck("after gc {} was {}".format(rnd, "killed" if killed else "run"), quick=True)


# ---------------------------------------------------------------------------------------
# The clients, killed mid-run.


def write_tree(root, rng, spec, tag, big=False):
    """Creates files under root; returns {relative path: (hash, size)}."""
    out = {}
    dirs = ["", "a", "a/b", "c", "c/d/e"]
    for i in range(spec):
        d = rng.choice(dirs)
        r = rng.random()
        if r < 0.04:
            size = 5 * MiB
        elif r < 0.2:
            size = 300 * KiB
        else:
            size = rng.randint(0, 64 * KiB)
        rel = os.path.join(d, "{}{}.bin".format(tag, i)) if d else "{}{}.bin".format(tag, i)
        out[rel] = write_file(root, rel, "{}:{}".format(tag, i), size)
    if big:
        out["big-{}.bin".format(tag)] = write_file(root, "big-{}.bin".format(tag), "big:" + tag, 20 * MiB)
    return out


def write_file(root, rel, seed, size):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data, ch = content_and_hash(seed, size)
    with open(path, "wb") as f:
        f.write(data)
    return ch, size


def local_tree(root):
    out = {}
    for dp, dns, fns in os.walk(root):
        dns[:] = [d for d in dns if not d.startswith(".cubby")]
        for fn in fns:
            if fn.startswith(".cubby"):
                continue
            p = os.path.join(dp, fn)
            with open(p, "rb") as f:
                data = f.read()
            out[os.path.relpath(p, root).lower()] = (content_hash(data), len(data))
    return out


def remote_tree(h, folder):
    obs = h.api.list_tree(folder)
    pre = folder.lower() + "/"
    return {k[len(pre):]: (e["content_hash"], e["size"]) for k, e in obs.items()
            if e[".tag"] == "file" and k.startswith(pre)}


def compare(h, what, want, got):
    """want and got: {relative lower path: (hash, size)}."""
    missing = sorted(k for k in want if k not in got)
    differ = sorted(k for k in want if k in got and got[k] != want[k])
    extra = sorted(k for k in got if k not in want)
    for k in missing[:10]:
        h.results.fail("client-lost", "{}: {} missing".format(what, k))
    for k in differ[:10]:
        h.results.fail("client-lost", "{}: {} is {} but should be {}".format(what, k, got[k], want[k]))
    if extra:
        h.results.fail("client", "{}: {} unexpected files: {}".format(what, len(extra), extra[:10]))
    if not (missing or differ or extra):
        h.results.ok()
        return True
    return False


class ClientHome(object):
    def __init__(self, h):
        self.h = h
        self.dir = os.path.join(h.tmp, "client")
        os.makedirs(self.dir, exist_ok=True)
        _, tok, _ = h.server.admin("token", h.user)
        cfg = {"profiles": {"default": {"server": h.server.url, "app_key": "cubby",
                                        "tokens": {"access_token": tok["access_token"]}}}}
        path = os.path.join(self.dir, "config.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        self.env = dict(h.env)
        self.env.update({"CUBBY_CONFIG": path, "XDG_CACHE_HOME": os.path.join(self.dir, "cache"),
                         "XDG_STATE_HOME": os.path.join(self.dir, "state"), "HOME": self.dir})
        for v in ("CUBBY_PROFILE", "CUBBY_METADATA", "CUBBY_BLOCKS", "CUBBY_DATA"):
            self.env.pop(v, None)
        self.n = 0
        self.max_delay = {}  # per command: the kill delays shrink when runs end before them

    def popen(self, args):
        self.n += 1
        log = open(os.path.join(self.h.tmp, "client-{}-{}.log".format(self.n, args[0])), "wb")
        p = subprocess.Popen([self.h.server.bin] + args, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=self.env, cwd=self.dir)
        p.log_path = log.name
        log.close()
        return p

    def run(self, args, timeout=900):
        p = self.popen(args)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
            self.h.results.fail("client", "{} did not finish within {} s".format(" ".join(args), timeout))
        with open(p.log_path, "rb") as f:
            return rc, f.read().decode("utf-8", "replace")

    def run_killed(self, args, more_work):
        """Starts a client command and SIGKILLs it after a random delay; a run that ended
        before its kill is tried again (at most 4 times) with a shorter delay, after
        `more_work()` gave it something to do. Returns whether a kill landed."""
        for _ in range(4):
            if self.run_killed_once(args):
                return True
            more_work()
        return False

    def run_killed_once(self, args):
        delay = self.h.rng.uniform(0.05, self.max_delay.get(args[0], 2.5))
        t = now()
        p = self.popen(args)
        deadline = now() + delay
        while now() < deadline and p.poll() is None:
            time.sleep(0.01)
        killed = p.poll() is None
        if killed:
            p.send_signal(signal.SIGKILL)
        rc = p.wait()
        if killed:
            self.h.results.add("client processes killed")
            self.h.log("{} killed after {:.2f} s".format(args[0], delay), echo=True)
        else:
            self.h.results.add("client runs finished before their kill")
            self.h.log("{} finished within {:.2f} s (exit {})".format(args[0], delay, rc), echo=True)
            self.max_delay[args[0]] = max(0.2, (now() - t) * 0.8)
        return killed


def server_kill_during(h, home, args):
    """Starts a client command, SIGKILLs the server under it after a random delay, restarts
    the server (the writers' ledgers are checked as after any kill), and lets the client
    finish or fail; returns its exit code."""
    delay = h.rng.uniform(0.05, home.max_delay.get(args[0], 2.5))
    p = home.popen(args)
    time.sleep(delay)
    running = p.poll() is None
    h.pause_writers(kill=True)
    time.sleep(h.rng.uniform(0, 1.0))
    h.start_server()
    h.resolve_all("after kill {} (during {})".format(h.kills, args[0]))
    h.ctl.resume()
    try:
        rc = p.wait(timeout=900)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        h.results.fail("client", "{} did not end within 900 s after the server restarted".format(" ".join(args)))
    with open(p.log_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    h.log("server killed {:.2f} s into {} ({}); it exited {}: {}".format(
        delay, args[0], "still running" if running else "it had finished", rc, out.strip()[-300:]), echo=True)
    h.results.add("server kills during a client run")
    return rc


def clients(h):
    h.log("== clients: cubby backup and cubby sync killed mid-run")
    home = ClientHome(h)
    backup_scenario(h, home)
    sync_scenario(h, home)


def backup_scenario(h, home):
    rng = h.rng
    src = os.path.join(h.tmp, "backup-src")
    dest = "/backup"
    want = write_tree(src, rng, 160, "b", big=h.args.kills >= 50)
    n = [0]

    def edit():
        # The person edits files between the runs: new ones, changed ones, a large one.
        n[0] += 1
        k = n[0]
        for i in range(12):
            rel = "new{}/f{}.bin".format(k, i)
            want[rel] = write_file(src, rel, "bnew:{}:{}".format(k, i), rng.randint(0, 400 * KiB))
        for rel in rng.sample(sorted(want), 3):
            want[rel] = write_file(src, rel, "bmod:{}:{}".format(k, rel), rng.randint(0, 400 * KiB))
        want["new{}/large.bin".format(k)] = write_file(src, "new{}/large.bin".format(k), "blarge:{}".format(k), 5 * MiB + k)

    for k in range(h.args.client_kills):
        home.run_killed(["backup", src, dest], edit)
        edit()
    server_kill_during(h, home, ["backup", src, dest])
    rel = "after-server-kill.bin"
    want[rel] = write_file(src, rel, "bnew:server-kill", 123456)
    rc, out = home.run(["backup", src, dest])
    h.results.check(rc == 0, "client", "cubby backup after {} kills exited {}: {}".format(h.args.client_kills, rc, out[-3000:]))
    want = {k.lower(): v for k, v in want.items()}
    h.results.check(local_tree(src) == want, "harness", "backup source changed unexpectedly")
    compare(h, "backup: the server's {} against the source".format(dest), want, remote_tree(h, dest))
    rc, out = home.run(["backup", src, dest, "--verify"])
    h.results.check(rc == 0, "client", "cubby backup --verify exited {}: {}".format(rc, out[-3000:]))


def sync_scenario(h, home):
    rng = h.rng
    local = os.path.join(h.tmp, "sync-local")
    remote = "/sync"
    want = write_tree(local, rng, 60, "l")
    want.update(remote_tree_upload(h, remote, rng, 60, "r"))
    n = [0]

    def add_both():
        # New files on both sides meanwhile.
        n[0] += 1
        k = n[0]
        for i in range(8):
            rel = "c/newl{}-{}.bin".format(k, i)
            want[rel] = write_file(local, rel, "slnew:{}:{}".format(k, i), rng.randint(0, 300 * KiB))
        want["newl{}-large.bin".format(k)] = write_file(local, "newl{}-large.bin".format(k), "sllarge:{}".format(k), 5 * MiB + k)
        want.update(remote_tree_upload(h, remote, rng, 8, "newr{}-".format(k)))

    for k in range(h.args.client_kills):
        home.run_killed(["sync", local, remote, "--once"], add_both)
        add_both()
    server_kill_during(h, home, ["sync", local, remote, "--once"])
    rel = "after-server-kill.bin"
    want[rel] = write_file(local, rel, "slnew:server-kill", 54321)
    for attempt in range(4):
        rc, out = home.run(["sync", local, remote, "--once"])
        if rc == 0:
            break
        h.log("sync --once exited {} (attempt {}): {}".format(rc, attempt + 1, out[-500:]), echo=True)
    h.results.check(rc == 0, "client", "cubby sync --once after {} kills exited {}: {}".format(h.args.client_kills, rc, out[-3000:]))
    want = {k.lower(): v for k, v in want.items()}
    compare(h, "sync: the local folder", want, local_tree(local))
    compare(h, "sync: the server's {}".format(remote), want, remote_tree(h, remote))


def remote_tree_upload(h, folder, rng, n, tag):
    out = {}
    dirs = ["", "a", "x/y", "c"]
    for i in range(n):
        d = rng.choice(dirs)
        rel = "{}/{}{}.bin".format(d, tag, i) if d else "{}{}.bin".format(tag, i)
        size = rng.choice([0, rng.randint(1, 64 * KiB), 300 * KiB]) if rng.random() > 0.05 else 5 * MiB
        data, ch = content_and_hash("rt:{}:{}".format(tag, i), size)
        r = h.api.upload("files/upload", {"path": "{}/{}".format(folder, rel), "mode": "overwrite"}, data)
        if r.status != 200:
            h.results.fail("client", "uploading {}/{} for the sync test: {}".format(folder, rel, r.describe()))
            continue
        out[rel] = (ch, size)
    return out


# ---------------------------------------------------------------------------------------
# A full disk.


def full_disk(h):
    h.log("== full disk: a 64 MiB tmpfs as the data folder")
    if os.geteuid() != 0:
        h.log("== full disk: skipped (mounting a tmpfs needs root)")
        h.results.add("full disk skipped")
        return
    mnt = os.path.join(h.tmp, "fulldisk")
    os.makedirs(mnt, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        h.log("== full disk: skipped (mount -t tmpfs failed: {})".format((r.stderr or r.stdout).strip()))
        h.results.add("full disk skipped")
        return
    env = dict(h.env)
    env.pop("CUBBY_METADATA", None)
    env.pop("CUBBY_BLOCKS", None)
    server = Server(os.path.join(mnt, "data"), os.path.join(h.tmp, "fulldisk-server.log"), env)
    if h.server is not None:
        server.bin = h.server.bin
    try:
        full_disk_run(h, server, mnt)
    finally:
        server.kill()
        for attempt in range(10):
            r = subprocess.run(["umount", mnt], capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", mnt])


def full_disk_run(h, server, mnt):
    res = h.results
    notes = h.notes
    # Ballast: what an operator deletes to make room when the disk is full.
    ballast = os.path.join(mnt, "ballast")
    with open(ballast, "wb") as f:
        f.write(b"\0" * (6 * MiB))
    server.start()
    _, token = server.add_user("disk")
    api = Api(server.url, token, res, "fulldisk", fail_on_5xx=False)
    acked = {}

    def df():
        st = os.statvfs(mnt)
        return st.f_bavail * st.f_frsize

    def observe(what, fn):
        try:
            r = fn()
        except Unknown as e:
            notes.append("full disk: {}: no answer ({}); server alive: {}".format(what, e, server.alive()))
            return None
        notes.append("full disk: {} ({} bytes free): HTTP {} {}".format(what, df(), r.status, r.text(240).replace("\n", " ")))
        return r

    # Fill the disk: files of 5 MiB, then smaller and smaller, each size until it is
    # refused three times; the first refusal of each size is reported.
    n = 0
    for size in (5 * MiB, 256 * KiB, 16 * KiB, 1024):
        refusals = 0
        for _ in range(400):
            n += 1
            path = "/full/f{}-{}".format(size, n)
            data, ch = content_and_hash("fd:{}".format(n), size)
            free = df()
            try:
                r = api.raw_upload("files/upload", {"path": path}, data)
            except Unknown as e:
                notes.append("full disk: upload of {} bytes: no answer ({}); server alive: {}".format(size, e, server.alive()))
                if not server.alive():
                    break
                refusals += 1
                continue
            if r.status == 200:
                acked[path] = (ch, size)
                if r.json.get("content_hash") != ch:
                    res.fail("corrupt", "full disk: {} acknowledged with {}".format(path, r.json))
                continue
            if refusals == 0:
                notes.append("full disk: upload of {} bytes ({} bytes free): HTTP {} {}".format(
                    size, free, r.status, r.text(240)))
            # A full disk is said in words (507), not as an internal error.
            res.check(r.status == 507 and "disk is full" in r.text(240), "full-disk",
                      "full disk: an upload of {} bytes was refused with HTTP {} {}, not 507".format(
                          size, r.status, r.text(240)))
            refusals += 1
            if refusals >= 3:
                break
        if not server.alive():
            break
    notes.append("full disk: {} uploads acknowledged, {} bytes left".format(len(acked), df()))
    # Writes that need only the metadata database, and other routes, on the full disk.
    r = observe("upload_session/start (closed, 1000 bytes)", lambda: api.raw_upload(
        "files/upload_session/start", {"close": True}, content("fd:inline", 1000)))
    if r is not None and r.status == 200:
        sid = r.json["session_id"]
        r = observe("upload_session/finish", lambda: api.raw_upload(
            "files/upload_session/finish", {"cursor": {"session_id": sid, "offset": 1000},
                                            "commit": {"path": "/full/inline"}}, b""))
        if r is not None and r.status == 200:
            acked["/full/inline"] = (content_hash(content("fd:inline", 1000)), 1000)
    observe("create_folder_v2", lambda: api.raw_rpc("files/create_folder_v2", {"path": "/full/folder"}))
    some = sorted(acked)[0] if acked else "/full/none"
    r = observe("copy_v2 of a stored file", lambda: api.raw_rpc("files/copy_v2", {"from_path": some, "to_path": "/full/copy"}))
    if r is not None and r.status == 200 and some in acked:
        acked["/full/copy"] = acked[some]
    observe("upload of 20 MiB", lambda: api.raw_upload("files/upload", {"path": "/full/big"}, content("fd:big", 20 * MiB)))
    observe("upload_session/start (open, 5 MiB)", lambda: api.raw_upload(
        "files/upload_session/start", {"close": False}, content("fd:sess", 5 * MiB)))
    observe("list_folder", lambda: api.raw_rpc("files/list_folder", {"path": "/full"}))
    res.check(server.alive(), "full-disk", "the server died on the full disk:\n" + server.log_tail(40))
    try:
        ready = api.session.get(server.url + "/health/ready", timeout=5).status_code
    except Exception as e:  # noqa: BLE001
        ready = repr(e)
    notes.append("full disk: /health/ready answers {}".format(ready))

    def verify(label):
        for path, (ch, size) in sorted(acked.items()):
            try:
                d = api.download(path)
            except Unknown as e:
                res.fail("full-disk", "{}: download {}: {}".format(label, path, e))
                continue
            ok = d.status == 200 and len(d.body) == size and content_hash(d.body) == ch
            res.check(ok, "lost" if d.status == 409 else "corrupt",
                      "full disk, {}: acknowledged {} does not read back: {}".format(label, path, d.describe()))

    verify("on the full disk")
    # Killed and restarted with the disk still full.
    server.kill()
    try:
        server.start()
        notes.append("full disk: restarted after SIGKILL with the disk full ({} bytes free)".format(df()))
    except RuntimeError as e:
        res.fail("full-disk", "the server does not start again on the full disk: {}".format(str(e)[-2000:]))
        os.remove(ballast)
        server.start()
    api.reset()
    verify("after a kill and restart on the full disk")
    # Making room: permanently delete the files (a metadata write), and if the full disk
    # refuses that, first free the ballast as an operator would.
    r = observe("permanently_delete /full on the full disk", lambda: api.raw_rpc("files/permanently_delete", {"path": "/full"}))
    if r is None or r.status != 200:
        os.remove(ballast)
        notes.append("full disk: removed the 6 MiB ballast file")
        r = observe("permanently_delete /full after removing the ballast",
                    lambda: api.raw_rpc("files/permanently_delete", {"path": "/full"}))
    if res.check(r is not None and r.status == 200, "full-disk", "permanently_delete does not work even with room"):
        acked = {k: v for k, v in acked.items() if not k.startswith("/full/")}
    rc, out, text = server.admin("gc", "--at", str(h.gc_at()), check=False)
    notes.append("full disk: cubby admin gc --at (past the grace period): exit {} {}; {} bytes free after".format(
        rc, out if out else text[-300:], df()))
    res.check(rc == 0, "full-disk", "cubby admin gc on the full disk exited {}: {}".format(rc, text[-2000:]))
    data, ch = content_and_hash("fd:after", 5 * MiB)
    r = observe("upload of 5 MiB after freeing space", lambda: api.raw_upload("files/upload", {"path": "/after/f"}, data))
    if res.check(r is not None and r.status == 200, "full-disk", "the server does not take uploads again after space was freed"):
        acked["/after/f"] = (ch, 5 * MiB)
    verify("after freeing space")
    rc, out, text = server.admin("fsck", check=False)
    notes.append("full disk: fsck {}".format(out))
    res.check(rc == 0 and isinstance(out, dict) and out.get("clean"), "fsck",
              "full disk: fsck exited {}: {}".format(rc, text[-2000:]))
    errors = [l for l in open(server.log_path, errors="replace") if " ERROR " in l or " WARN " in l]
    notes.append("full disk: {} ERROR/WARN lines in the server log; the first: {}".format(
        len(errors), " | ".join(l.strip()[:300] for l in errors[:3])))
    server.stop()
