"""A writer thread: operations of every kind in its own subtree (/tN), a model of that
subtree, and the ledger of what the server acknowledged.

The model holds what must be true of the subtree: every path, file or folder, and for a file
its content hash and (when known) its current rev. An acknowledged operation (a 200 received)
updates it. The one operation in flight when the server dies is `pending`: after the
restart the subtree must equal the model either before it or after it (atomicity), and the
model follows what happened. Every rev ever acknowledged goes to the harness's rev ledger, to
be downloaded and checked later.
"""

import random
import threading
import traceback

from tlib import MiB, Unknown, content, content_and_hash, content_hash, now

KiB = 1024
MAX_DEPTH = 4  # path components below the writer's root
FILE_NAMES = ["f{}".format(i) for i in range(24)] + ["g{}.txt".format(i) for i in range(8)]
FOLDER_NAMES = ["d{}".format(i) for i in range(5)]


class Ent(object):
    __slots__ = ("kind", "rev", "chash", "size", "born", "created")

    def __init__(self, kind, rev=None, chash=None, size=0, born=0.0, created=0.0):
        self.kind = kind
        self.rev = rev
        self.chash = chash
        self.size = size
        self.born = born  # when it took its current state
        self.created = created  # when this incarnation of the path appeared

    def copy(self):
        return Ent(self.kind, self.rev, self.chash, self.size, self.born, self.created)

    def __repr__(self):
        if self.kind == "folder":
            return "folder"
        return "file(rev={}, hash={}..., size={})".format(self.rev, (self.chash or "")[:12], self.size)


def depth(p):
    return p.count("/") - 1


def under(p, q):
    """Whether p is q or inside it."""
    return p == q or p.startswith(q + "/")


def subtree(model, p):
    pre = p + "/"
    return [k for k in model if k == p or k.startswith(pre)]


def m_remove(model, p):
    gone = []
    for k in subtree(model, p):
        gone.append((k, model.pop(k)))
    return gone


def m_put_file(model, p, rev, chash, size, t):
    old = model.get(p)
    created = old.created if old is not None and old.kind == "file" else t
    model[p] = Ent("file", rev, chash, size, t, created)


def m_relocate(model, src, dst, t, keep_src, file_rev=None):
    items = [(k, model[k]) for k in subtree(model, src)]
    if not keep_src:
        for k, _ in items:
            del model[k]
    for k, e in items:
        ne = e.copy()
        ne.born = t
        ne.created = t
        if ne.kind == "file":
            ne.rev = file_rev if k == src else None
        model[dst + k[len(src):]] = ne


def copy_model(model):
    return {k: e.copy() for k, e in model.items()}


def model_from_listing(obs, t):
    m = {}
    for k, e in obs.items():
        if e[".tag"] == "file":
            m[k] = Ent("file", e["rev"], e["content_hash"], e["size"], t, t)
        else:
            m[k] = Ent("folder", born=t, created=t)
    return m


def diff(model, obs, known_hashes):
    """Differences between a model and a listing: (category, path, detail) with category
    lost (an acknowledged entry or write missing), corrupt (content nobody wrote) or
    resurrected (an entry that should not exist)."""
    out = []
    for k, e in model.items():
        o = obs.get(k)
        if o is None:
            out.append(("lost", k, "expected {}, missing".format(e)))
            continue
        if o[".tag"] != e.kind:
            out.append(("lost", k, "expected {}, found a {}".format(e, o[".tag"])))
            continue
        if e.kind == "file":
            if o.get("content_hash") != e.chash or o.get("size") != e.size:
                cat = "lost" if o.get("content_hash") in known_hashes else "corrupt"
                out.append(("{}".format(cat), k, "expected {}, found hash {} size {} rev {}".format(
                    e, o.get("content_hash"), o.get("size"), o.get("rev"))))
            elif e.rev is not None and o.get("rev") != e.rev:
                out.append(("lost", k, "expected rev {}, found rev {}".format(e.rev, o.get("rev"))))
    for k, o in obs.items():
        if k not in model:
            out.append(("resurrected", k, "unexpected {} (rev {})".format(o[".tag"], o.get("rev"))))
    return out


class Pending(object):
    """The operation whose answer was not received: its expected effect on the model (new
    files' revs unknown) and what follows either way."""

    def __init__(self, desc, apply, on_applied=None, on_not_applied=None):
        self.desc = desc
        self.apply = apply
        self.on_applied = on_applied
        self.on_not_applied = on_not_applied


class LongSession(object):
    """A sequential upload session kept open across kills."""

    def __init__(self, sid, chunks, target):
        self.sid = sid
        self.chunks = chunks  # [(seed, size)] acknowledged
        self.offset = sum(s for _, s in chunks)
        self.target = target
        self.pending_chunk = None  # (seed, size) of an append whose answer was lost

    def data(self):
        return b"".join(content(s, n) for s, n in self.chunks)


class Control(object):
    """Run/pause/quit for the writers; `parked` counts writers waiting between operations."""

    def __init__(self, n):
        self.cond = threading.Condition()
        self.running = False
        self.quit = False
        self.n = n
        self.parked = set()

    def resume(self):
        with self.cond:
            self.running = True
            self.cond.notify_all()

    def pause(self):
        with self.cond:
            self.running = False

    def is_running(self):
        return self.running

    def wait_parked(self, timeout):
        deadline = now() + timeout
        with self.cond:
            while len(self.parked) < self.n:
                left = deadline - now()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def stop(self):
        with self.cond:
            self.quit = True
            self.running = False
            self.cond.notify_all()


class Writer(threading.Thread):
    def __init__(self, h, idx, api, seed, big_prob):
        threading.Thread.__init__(self, name="writer-{}".format(idx), daemon=True)
        self.h = h  # the harness: results, rev ledger, control
        self.idx = idx
        self.root = "/t{}".format(idx)
        self.api = api
        self.rng = random.Random(seed)
        self.big_prob = big_prob
        self.model = {}
        self.pending = None
        self.lsess = None
        self.counter = 0
        self.acklog = []  # (t_sent, t_ack, [(path, what)]) for the mid-window cursor check
        self.acked = 0
        self.unknown = 0
        self.applied_unknown = 0
        self.kinds = {}
        self.needs_check = False

    # --- helpers -------------------------------------------------------------------------

    def log(self, msg):
        self.h.log("[w{}] {}".format(self.idx, msg))

    def seed(self, tag):
        self.counter += 1
        return "w{}:{}:{}".format(self.idx, tag, self.counter)

    def pick_size(self, small_only=False):
        r = self.rng.random()
        if small_only:
            return self.rng.choice([0, self.rng.randint(1, 100), 4096, 100 * KiB, 256 * KiB,
                                    256 * KiB + 1, self.rng.randint(1, 256 * KiB)])
        if r < self.big_prob:
            return 20 * MiB
        r = self.rng.random()
        if r < 0.06:
            return 0
        if r < 0.26:
            return self.rng.randint(1, 100)
        if r < 0.50:
            return 4096
        if r < 0.72:
            return 300 * KiB
        if r < 0.80:
            return self.rng.randint(1, 2 * MiB)
        if r < 0.86:
            return 5 * MiB
        return self.rng.choice([4096, 300 * KiB, self.rng.randint(1, 64 * KiB)])

    def pick_content(self, small_only=False):
        size = self.pick_size(small_only)
        # Shared seeds make the same bytes land in many files (deduplication); most large
        # contents come from small pools so the store's size stays bounded.
        pool_p = {20 * MiB: 0.9, 5 * MiB: 0.92, 300 * KiB: 0.5}.get(size, 0.35)
        if self.rng.random() < pool_p:
            seed = "pool:{}:{}".format(size, self.rng.randint(0, 3 if size == 20 * MiB else 15))
        else:
            seed = self.seed("c")
        data, h = content_and_hash(seed, size)
        self.h.known_hash(h)
        return data, h, size

    def var(self, p):
        """The path as sent: sometimes with a component in upper case (paths are
        case-insensitive)."""
        if self.rng.random() < 0.25:
            parts = p.split("/")
            i = self.rng.randrange(1, len(parts))
            parts[i] = parts[i].upper()
            return "/".join(parts)
        return p

    def folders(self, max_depth=MAX_DEPTH - 1):
        fs = [self.root] + [k for k, e in self.model.items() if e.kind == "folder"]
        return [f for f in fs if depth(f) <= max_depth]

    def files(self):
        return [k for k, e in self.model.items() if e.kind == "file"]

    def fresh(self, parent, names):
        names = list(names)
        self.rng.shuffle(names)
        for n in names:
            p = parent + "/" + n.lower()
            if p not in self.model:
                return p
        return None

    def fresh_file_path(self):
        for _ in range(8):
            p = self.fresh(self.rng.choice(self.folders()), FILE_NAMES)
            if p:
                return p
        return None

    def ack(self, kind, t_sent, changes):
        self.acked += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.acklog.append((t_sent, now(), changes))
        self.h.results.add("acked " + kind)

    def add_rev(self, rev, chash, size, path):
        if rev:
            self.h.add_rev(rev, chash, size, path, self.idx)

    def file_result(self, md, p, chash, size, what):
        """Checks an acknowledged file's metadata; returns its rev."""
        ok = isinstance(md, dict) and md.get("content_hash") == chash and md.get("size") == size
        self.h.results.check(
            ok, "corrupt", "{}: the server acknowledged {} with metadata {}, expected hash {} size {}".format(
                what, p, md, chash, size))
        if isinstance(md, dict) and md.get("path_lower") != p:
            self.h.results.fail("wrong-path", "{}: acknowledged at {}, expected {}".format(
                what, md.get("path_lower"), p))
        return md.get("rev") if isinstance(md, dict) else None

    def refused(self, what, r):
        """A refusal the model did not expect: recorded, then the subtree is checked."""
        if r.status == 429:
            self.h.results.add("ops given up after 429")
            self.log("{} given up after 429s: {}".format(what, r.describe()))
        else:
            self.h.results.fail("unexpected-refusal", "{}: {}".format(what, r.describe()))
        self.needs_check = True

    def commit(self, desc, apply, send, **kw):
        """Sends the request that changes the namespace, with `apply` as its pending effect."""
        self.pending = Pending(desc, apply, **kw)
        t = now()
        r = send()  # Unknown propagates: the operation stays pending
        if r.status != 200:
            p = self.pending
            self.pending = None
            if p.on_not_applied:
                p.on_not_applied()
        else:
            self.pending = None
        return r, t

    # --- the thread ----------------------------------------------------------------------

    def run(self):
        try:
            self.loop()
        except BaseException:  # noqa: B036 - the thread must not die silently
            if not self.h.ctl.quit:
                self.h.results.fail("harness", "writer {} stopped: {}".format(self.idx, traceback.format_exc()))
            with self.h.ctl.cond:
                self.h.ctl.parked.add(self.idx)
                self.h.ctl.cond.notify_all()

    def loop(self):
        ctl = self.h.ctl
        while True:
            with ctl.cond:
                ctl.parked.add(self.idx)
                ctl.cond.notify_all()
                while not ctl.running and not ctl.quit:
                    ctl.cond.wait()
                if ctl.quit:
                    return
                ctl.parked.discard(self.idx)
            try:
                if self.needs_check or self.pending is not None:
                    self.resolve("after an unexpected answer")
                else:
                    self.one_op()
            except Unknown as e:
                # The server died under the request (or answered 5xx); the model is settled
                # after the restart, or now if the server is still meant to be up.
                self.needs_check = True
                if self.pending is not None:
                    self.unknown += 1
                if ctl.is_running():
                    self.log("no answer while the server should be up: {}".format(e))
            except Exception:
                self.h.results.fail("harness", "writer {}: {}".format(self.idx, traceback.format_exc()))
                self.needs_check = True

    def one_op(self):
        nfiles = len(self.files())
        weights = [
            ("upload_add", 14), ("upload_overwrite", 7), ("upload_update", 7),
            ("session_small", 8), ("session_multi", 4), ("session_concurrent", 2),
            ("batch", 5), ("long_session", 5), ("copy", 6), ("move", 6),
            ("delete", 30 if nfiles > 70 or len(self.model) > 110 else 5), ("mkdir", 5), ("copyref", 4),
        ]
        if nfiles > 100:
            weights = [(k, w) for k, w in weights if k not in ("upload_add", "copy", "batch", "copyref")]
        total = sum(w for _, w in weights)
        x = self.rng.uniform(0, total)
        for kind, w in weights:
            x -= w
            if x <= 0:
                break
        getattr(self, "op_" + kind)()

    # --- operations ----------------------------------------------------------------------

    def settle_rev(self, p):
        """Learns the rev of the model's file at p when an operation in flight at a kill left
        it unknown, so an overwrite with the same content (which the server answers with the
        old rev, changing nothing, as Dropbox does) is not taken for a change. False when the
        lookup was refused (and reported)."""
        old = self.model.get(p)
        if old is None or old.kind != "file" or old.rev is not None:
            return True
        r = self.api.rpc("files/get_metadata", {"path": p})
        if r.status != 200:
            self.refused("get_metadata " + p, r)
            return False
        if r.json.get("content_hash") != old.chash:
            self.h.results.fail("corrupt", "get_metadata {}: {} but the model says {}".format(p, r.json, old))
            self.needs_check = True
            return False
        old.rev = r.json["rev"]
        self.add_rev(old.rev, old.chash, old.size, p)
        return True

    def op_upload_add(self, p=None):
        p = p or self.fresh_file_path()
        if p is None:
            return self.op_delete()
        data, h, size = self.pick_content()
        arg = {"path": self.var(p), "mode": "add", "autorename": False, "mute": True}
        if self.rng.random() < 0.3:
            arg["content_hash"] = h
        t = now()
        r, t = self.commit(
            "upload add " + p,
            lambda m: m_put_file(m, p, None, h, size, t),
            lambda: self.api.upload("files/upload", arg, data, stop=lambda: not self.h.ctl.running),
        )
        if r.status != 200:
            return self.refused("upload add " + p, r)
        rev = self.file_result(r.json, p, h, size, "upload add")
        m_put_file(self.model, p, rev, h, size, now())
        self.add_rev(rev, h, size, p)
        self.ack("upload", t, [(p, "file")])

    def op_upload_overwrite(self, update=False):
        files = self.files()
        if not files:
            return self.op_upload_add()
        p = self.rng.choice(files)
        old = self.model[p]
        if not self.settle_rev(p):
            return
        data, h, size = self.pick_content()
        mode = {".tag": "update", "update": old.rev} if update else "overwrite"
        arg = {"path": self.var(p), "mode": mode, "autorename": False, "mute": True}
        if self.rng.random() < 0.3:
            arg["content_hash"] = h
        t = now()
        r, t = self.commit(
            "upload {} {}".format("update" if update else "overwrite", p),
            lambda m: m_put_file(m, p, None, h, size, t),
            lambda: self.api.upload("files/upload", arg, data, stop=lambda: not self.h.ctl.running),
        )
        if r.status != 200:
            return self.refused("upload {} {} (rev {})".format("update" if update else "overwrite", p, old.rev), r)
        rev = self.file_result(r.json, p, h, size, "upload " + ("update" if update else "overwrite"))
        m_put_file(self.model, p, rev, h, size, now())
        self.add_rev(rev, h, size, p)
        self.ack("upload", t, [(p, "file")] if rev != old.rev else [])

    def op_upload_update(self):
        return self.op_upload_overwrite(update=True)

    def target_for_session(self):
        """A fresh path (mode add) or, sometimes, an existing file (mode overwrite)."""
        files = self.files()
        if files and self.rng.random() < 0.3:
            return self.rng.choice(files), "overwrite"
        return self.fresh_file_path(), "add"

    def finish_session(self, what, sid, offset, data, h, size, body=b""):
        p, mode = self.target_for_session()
        if p is None or not self.settle_rev(p):
            return
        old = self.model.get(p)
        arg = {"cursor": {"session_id": sid, "offset": offset},
               "commit": {"path": self.var(p), "mode": mode, "autorename": False, "mute": True}}
        t = now()
        r, t = self.commit(
            "{} finish {}".format(what, p),
            lambda m: m_put_file(m, p, None, h, size, t),
            lambda: self.api.upload("files/upload_session/finish", arg, body,
                                    stop=lambda: not self.h.ctl.running),
        )
        if r.status != 200:
            return self.refused("{} finish {}".format(what, p), r)
        rev = self.file_result(r.json, p, h, size, what)
        m_put_file(self.model, p, rev, h, size, now())
        self.add_rev(rev, h, size, p)
        self.ack(what, t, [(p, "file")] if old is None or rev != old.rev else [])

    def op_session_small(self):
        data, h, size = self.pick_content(small_only=True)
        r = self.api.upload("files/upload_session/start", {"close": True}, data)
        if r.status != 200:
            return self.refused("upload_session/start (closed)", r)
        sid = r.json["session_id"]
        self.finish_session("session_small", sid, size, data, h, size)

    def split(self, size, k):
        cuts = sorted(self.rng.randint(0, size) for _ in range(k - 1))
        bounds = [0] + cuts + [size]
        return [(bounds[i], bounds[i + 1]) for i in range(k)]

    def op_session_multi(self):
        size = self.rng.choice([300 * KiB, MiB + 7, 5 * MiB, 9 * MiB + 3, self.rng.randint(1, 6 * MiB)])
        seed = self.seed("m") if self.rng.random() < 0.3 else "pool:m:{}:{}".format(size, self.rng.randint(0, 5))
        data, h = content_and_hash(seed, size)
        self.h.known_hash(h)
        parts = self.split(size, self.rng.randint(2, 4))
        last_in_finish = self.rng.random() < 0.5
        r = self.api.upload("files/upload_session/start", {"close": False}, data[parts[0][0]:parts[0][1]])
        if r.status != 200:
            return self.refused("upload_session/start", r)
        sid = r.json["session_id"]
        middle = parts[1:-1] if last_in_finish else parts[1:]
        for i, (a, b) in enumerate(middle):
            close = (not last_in_finish) and i == len(middle) - 1
            r = self.api.upload("files/upload_session/append_v2",
                                {"cursor": {"session_id": sid, "offset": a}, "close": close}, data[a:b])
            if r.status != 200:
                return self.refused("upload_session/append_v2 at {}".format(a), r)
        body = data[parts[-1][0]:] if last_in_finish else b""
        offset = parts[-1][0] if last_in_finish else size
        self.finish_session("session_multi", sid, offset, data, h, size, body)

    def op_session_concurrent(self):
        size = self.rng.choice([4 * MiB, 4 * MiB + self.rng.randint(1, 4 * MiB), 8 * MiB + self.rng.randint(1, 64 * KiB)])
        seed = self.seed("cc") if self.rng.random() < 0.2 else "pool:cc:{}:{}".format(size, self.rng.randint(0, 3))
        data, h = content_and_hash(seed, size)
        self.h.known_hash(h)
        r = self.api.rpc("files/upload_session/start_batch", {"num_sessions": 1, "session_type": "concurrent"})
        if r.status != 200:
            return self.refused("start_batch (concurrent)", r)
        sid = r.json["session_ids"][0]
        chunks = [(a, min(a + 4 * MiB, size)) for a in range(0, size, 4 * MiB)]
        order = list(range(len(chunks)))
        self.rng.shuffle(order)
        for i in order:
            a, b = chunks[i]
            r = self.api.upload("files/upload_session/append_v2",
                                {"cursor": {"session_id": sid, "offset": a}, "close": i == len(chunks) - 1},
                                data[a:b])
            if r.status != 200:
                return self.refused("append_v2 (concurrent) at {}".format(a), r)
        p, mode = self.target_for_session()
        if p is None or not self.settle_rev(p):
            return
        old = self.model.get(p)
        entry = {"cursor": {"session_id": sid, "offset": size},
                 "commit": {"path": self.var(p), "mode": mode, "autorename": False}}
        t = now()
        r, t = self.commit(
            "concurrent session finish_batch_v2 " + p,
            lambda m: m_put_file(m, p, None, h, size, t),
            lambda: self.api.rpc("files/upload_session/finish_batch_v2", {"entries": [entry]}),
        )
        if r.status != 200:
            return self.refused("finish_batch_v2 (concurrent) " + p, r)
        e = r.json["entries"][0]
        if e.get(".tag") != "success":
            self.h.results.fail("unexpected-refusal", "finish_batch_v2 (concurrent) {}: {}".format(p, e))
            self.needs_check = True
            return
        rev = self.file_result(e, p, h, size, "concurrent session")
        m_put_file(self.model, p, rev, h, size, now())
        self.add_rev(rev, h, size, p)
        self.ack("session_concurrent", t, [(p, "file")] if old is None or rev != old.rev else [])

    def op_batch(self):
        n = self.rng.randint(2, 6)
        items = []
        taken = set()
        for _ in range(n):
            p = self.fresh_file_path()
            if p is None or p in taken:
                continue
            taken.add(p)
            data, h, size = self.pick_content(small_only=self.rng.random() < 0.8)
            items.append((p, data, h, size))
        if not items:
            return self.op_delete()
        sids = []
        if self.rng.random() < 0.5:
            r = self.api.rpc("files/upload_session/start_batch", {"num_sessions": len(items)})
            if r.status != 200:
                return self.refused("start_batch", r)
            sids = r.json["session_ids"]
            for sid, (p, data, h, size) in zip(sids, items):
                r = self.api.upload("files/upload_session/append_v2",
                                    {"cursor": {"session_id": sid, "offset": 0}, "close": True}, data)
                if r.status != 200:
                    return self.refused("append_v2 (batch)", r)
        else:
            for p, data, h, size in items:
                r = self.api.upload("files/upload_session/start", {"close": True}, data)
                if r.status != 200:
                    return self.refused("upload_session/start (batch)", r)
                sids.append(r.json["session_id"])
        entries = [{"cursor": {"session_id": sid, "offset": size},
                    "commit": {"path": self.var(p), "mode": "add", "autorename": False}}
                   for sid, (p, data, h, size) in zip(sids, items)]
        v1 = self.rng.random() < 0.3
        route = "files/upload_session/finish_batch" if v1 else "files/upload_session/finish_batch_v2"
        t = now()

        def apply(m):
            for p, data, h, size in items:
                m_put_file(m, p, None, h, size, t)

        r, t = self.commit("{} of {} files".format(route, len(items)), apply,
                           lambda: self.api.rpc(route, {"entries": entries}))
        if r.status != 200:
            return self.refused(route, r)
        res = r.json
        if v1 and res.get(".tag") == "async_job_id":
            job = res["async_job_id"]
            for _ in range(200):
                c = self.api.rpc("files/upload_session/finish_batch/check", {"async_job_id": job})
                if c.status != 200:
                    return self.refused("finish_batch/check", c)
                if c.json.get(".tag") == "complete":
                    res = c.json
                    break
            else:
                self.h.results.fail("unexpected-refusal", "finish_batch/check: never complete")
                self.needs_check = True
                return
        elif v1 and res.get(".tag") != "complete":
            self.h.results.fail("unexpected-refusal", "finish_batch: {}".format(res))
            self.needs_check = True
            return
        changes = []
        for e, (p, data, h, size) in zip(res.get("entries", []), items):
            if e.get(".tag") != "success":
                self.h.results.fail("unexpected-refusal", "{} entry {}: {}".format(route, p, e))
                self.needs_check = True
                continue
            rev = self.file_result(e, p, h, size, "batch")
            m_put_file(self.model, p, rev, h, size, now())
            self.add_rev(rev, h, size, p)
            changes.append((p, "file"))
        if len(res.get("entries", [])) != len(items):
            self.h.results.fail("unexpected-refusal", "{}: {} entries answered for {}".format(
                route, len(res.get("entries", [])), len(items)))
            self.needs_check = True
        self.ack("batch", t, changes)

    def op_long_session(self):
        ls = self.lsess
        if ls is None:
            size = self.rng.randint(1, 3 * MiB // 2)
            seed = self.seed("ls")
            r = self.api.upload("files/upload_session/start", {"close": False}, content(seed, size))
            if r.status != 200:
                return self.refused("long session start", r)
            self.lsess = LongSession(r.json["session_id"], [(seed, size)], self.rng.randint(MiB, 6 * MiB))
            self.ack("long_session_start", now(), [])
            return
        if ls.offset >= ls.target:
            data = ls.data()
            h = content_hash(data)
            self.h.known_hash(h)
            p, mode = self.target_for_session()
            if p is None or not self.settle_rev(p):
                return
            old = self.model.get(p)
            arg = {"cursor": {"session_id": ls.sid, "offset": ls.offset},
                   "commit": {"path": self.var(p), "mode": mode, "autorename": False}}
            t = now()
            size = len(data)

            def applied():
                self.lsess = None

            r, t = self.commit(
                "long session finish " + p,
                lambda m: m_put_file(m, p, None, h, size, t),
                lambda: self.api.upload("files/upload_session/finish", arg, b""),
                on_applied=applied,
            )
            if r.status != 200:
                self.lsess = None
                return self.refused("long session finish " + p, r)
            rev = self.file_result(r.json, p, h, size, "long session")
            m_put_file(self.model, p, rev, h, size, now())
            self.add_rev(rev, h, size, p)
            self.lsess = None
            self.ack("long_session_finish", t, [(p, "file")] if old is None or rev != old.rev else [])
            return
        self.append_long(ls)

    def append_long(self, ls):
        # Each unaligned append rewrites the session's partial last block (the old one is
        # garbage for a day): chunks of up to 2 MiB keep that, and the store, bounded.
        size = self.rng.randint(1, 2 * MiB)
        seed = self.seed("ls")
        ls.pending_chunk = (seed, size)
        r = self.api.upload("files/upload_session/append_v2",
                            {"cursor": {"session_id": ls.sid, "offset": ls.offset}}, content(seed, size))
        ls.pending_chunk = None
        if r.status == 429:
            self.h.results.add("ops given up after 429")
            return False
        if r.status != 200:
            self.h.results.fail("session", "long session append at {}: {}".format(ls.offset, r.describe()))
            self.lsess = None
            return False
        ls.chunks.append((seed, size))
        ls.offset += size
        self.ack("long_session_append", now(), [])
        return True

    def pick_entry(self, max_subtree=60, files_only=False):
        cands = [k for k, e in self.model.items() if not files_only or e.kind == "file"]
        self.rng.shuffle(cands)
        for k in cands[:10]:
            if self.model[k].kind == "file" or len(subtree(self.model, k)) <= max_subtree:
                return k
        return None

    def relocation_target(self, src):
        e = self.model[src]
        height = max(depth(k) for k in subtree(self.model, src)) - depth(src)
        for _ in range(8):
            parent = self.rng.choice(self.folders())
            if under(parent, src) or depth(parent) + 1 + height > MAX_DEPTH:
                continue
            dst = self.fresh(parent, FILE_NAMES if e.kind == "file" else FOLDER_NAMES)
            if dst:
                return dst
        return None

    def op_copy(self, move=False):
        src = self.pick_entry(files_only=self.rng.random() < 0.7)
        if src is None:
            return self.op_upload_add()
        dst = self.relocation_target(src)
        if dst is None:
            return self.op_mkdir()
        e = self.model[src]
        born = {k: self.model[k].created for k in subtree(self.model, src)}
        route = "files/move_v2" if move else "files/copy_v2"
        t = now()
        r, t = self.commit(
            "{} {} -> {}".format(route, src, dst),
            lambda m: m_relocate(m, src, dst, t, keep_src=not move),
            lambda: self.api.rpc(route, {"from_path": self.var(src), "to_path": self.var(dst), "autorename": False}),
        )
        if r.status != 200:
            return self.refused("{} {} -> {}".format(route, src, dst), r)
        md = r.json.get("metadata", {})
        rev = None
        if e.kind == "file":
            rev = self.file_result(md, dst, e.chash, e.size, route)
            self.add_rev(rev, e.chash, e.size, dst)
        elif md.get(".tag") != "folder" or md.get("path_lower") != dst:
            self.h.results.fail("wrong-path", "{} {} -> {}: {}".format(route, src, dst, md))
        m_relocate(self.model, src, dst, now(), keep_src=not move, file_rev=rev)
        changes = [(k, self.model[k].kind) for k in subtree(self.model, dst)]
        if move:
            changes += [(k, ("gone", born[k])) for k in born]
        self.ack("move" if move else "copy", t, changes)

    def op_move(self):
        return self.op_copy(move=True)

    def op_delete(self):
        p = self.pick_entry(max_subtree=200)
        if p is None:
            return self.op_mkdir()
        born = {k: self.model[k].created for k in subtree(self.model, p)}
        t = now()
        r, t = self.commit("delete " + p, lambda m: m_remove(m, p),
                           lambda: self.api.rpc("files/delete_v2", {"path": self.var(p)}))
        if r.status != 200:
            return self.refused("delete " + p, r)
        md = r.json.get("metadata", {})
        if md.get("path_lower") != p:
            self.h.results.fail("wrong-path", "delete {}: {}".format(p, md))
        m_remove(self.model, p)
        self.ack("delete", t, [(k, ("gone", born[k])) for k in born])

    def op_mkdir(self):
        parent = self.rng.choice(self.folders(MAX_DEPTH - 1))
        p = self.fresh(parent, FOLDER_NAMES)
        if p is None:
            return self.op_upload_add()
        t = now()
        r, t = self.commit("create_folder " + p,
                           lambda m: m.__setitem__(p, Ent("folder", born=t, created=t)),
                           lambda: self.api.rpc("files/create_folder_v2", {"path": self.var(p), "autorename": False}))
        if r.status != 200:
            return self.refused("create_folder " + p, r)
        md = r.json.get("metadata", {})
        if md.get("path_lower") != p:
            self.h.results.fail("wrong-path", "create_folder {}: {}".format(p, md))
        tt = now()
        self.model[p] = Ent("folder", born=tt, created=tt)
        self.ack("mkdir", t, [(p, "folder")])

    def op_copyref(self):
        src = self.pick_entry(max_subtree=30, files_only=self.rng.random() < 0.85)
        if src is None:
            return self.op_upload_add()
        e = self.model[src]
        r = self.api.rpc("files/copy_reference/get", {"path": self.var(src)})
        if r.status != 200:
            return self.refused("copy_reference/get " + src, r)
        ref = r.json["copy_reference"]
        md = r.json.get("metadata", {})
        if e.kind == "file" and md.get("content_hash") != e.chash:
            self.h.results.fail("corrupt", "copy_reference/get {}: {} but the model says {}".format(src, md, e))
            self.needs_check = True
            return
        dst = self.relocation_target(src)
        if dst is None:
            return
        t = now()
        r, t = self.commit("copy_reference/save {} -> {}".format(src, dst),
                           lambda m: m_relocate(m, src, dst, t, keep_src=True),
                           lambda: self.api.rpc("files/copy_reference/save", {"copy_reference": ref, "path": self.var(dst)}))
        if r.status != 200:
            return self.refused("copy_reference/save {} -> {}".format(src, dst), r)
        md = r.json.get("metadata", {})
        rev = None
        if e.kind == "file":
            rev = self.file_result(md, dst, e.chash, e.size, "copy_reference/save")
            self.add_rev(rev, e.chash, e.size, dst)
        m_relocate(self.model, src, dst, now(), keep_src=True, file_rev=rev)
        self.ack("copyref", t, [(k, self.model[k].kind) for k in subtree(self.model, dst)])

    # --- after a restart (or an unexpected answer) ---------------------------------------

    def resolve(self, why):
        """Checks the subtree against the model (either side of the pending operation), then
        the open long session. Raises Unknown if the server does not answer."""
        self.api.reset()
        obs = self.api.list_tree(self.root)
        obs.pop(self.root, None)  # a recursive listing may name the folder itself
        res = self.h.results
        pend = self.pending
        t = now()
        if pend is not None:
            after = copy_model(self.model)
            pend.apply(after)
            d0 = diff(self.model, obs, self.h.hashes)
            d1 = diff(after, obs, self.h.hashes)
            if not d0:
                res.ok()
                res.add("in flight: not applied")
                if pend.on_not_applied:
                    pend.on_not_applied()
            elif not d1:
                res.ok()
                res.add("in flight: applied")
                self.applied_unknown += 1
                self.model = after
                if pend.on_applied:
                    pend.on_applied()
            else:
                d = d0 if len(d0) <= len(d1) else d1
                self.report(d, "after '{}' was in flight ({}); differences from the {} state".format(
                    pend.desc, why, "earlier" if d is d0 else "later"))
                self.model = model_from_listing(obs, t)
                if pend.on_applied and not any(k not in obs for k in after):
                    pend.on_applied()
            self.pending = None
        else:
            d = diff(self.model, obs, self.h.hashes)
            if d:
                self.report(d, why)
                self.model = model_from_listing(obs, t)
            else:
                res.ok()
        # Files whose rev the harness had not seen (moved or copied with a folder, or
        # written by an operation whose answer was lost): the ledger checks them too.
        for k, e in self.model.items():
            if e.kind == "file" and e.rev is None:
                e.rev = obs[k]["rev"]
                self.add_rev(e.rev, e.chash, e.size, k)
        self.needs_check = False
        self.probe_session()

    def report(self, d, why):
        res = self.h.results
        for cat, k, detail in d[:12]:
            res.fail(cat, "{}: {} {}".format(why, k, detail))
        for cat, _, _ in d[12:]:
            res.fail(cat, "(more of the same)")
        for cat, _, _ in d:
            res.add(cat + " entries")

    def probe_session(self):
        """An open session must resume where its last acknowledged append left it: an append
        at a wrong offset gets incorrect_offset with that offset, an append there works."""
        ls = self.lsess
        if ls is None:
            return
        res = self.h.results
        cands = {ls.offset}
        if ls.pending_chunk is not None:
            cands.add(ls.offset + ls.pending_chunk[1])
        probe = max(cands) + 1
        r = self.api.raw_upload("files/upload_session/append_v2",
                                {"cursor": {"session_id": ls.sid, "offset": probe}}, b"")
        if r.status == 409 and isinstance(r.json, dict) and r.json.get("error", {}).get(".tag") == "incorrect_offset":
            co = r.json["error"].get("correct_offset")
            if co == ls.offset:
                res.ok()
            elif ls.pending_chunk is not None and co == ls.offset + ls.pending_chunk[1]:
                res.ok()
                res.add("in flight append: applied")
                ls.chunks.append(ls.pending_chunk)
                ls.offset = co
            else:
                res.fail("session", "session {} acknowledged to offset {} (an append of {} in flight: {}) "
                         "reports correct_offset {}".format(ls.sid, ls.offset, ls.pending_chunk, ls.pending_chunk is not None, co))
                self.lsess = None
                return
            ls.pending_chunk = None
        elif r.status >= 500 or r.status == 429:
            raise Unknown("session probe: " + r.describe())
        else:
            res.fail("session", "session {} at offset {}: an append at the wrong offset {} got {}".format(
                ls.sid, ls.offset, probe, r.describe()))
            self.lsess = None
            return
        # And an append at the right offset goes through.
        if self.append_long(ls):
            res.ok()
            res.add("sessions resumed after restart")
