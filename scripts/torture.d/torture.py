#!/usr/bin/env python3
"""Crash-consistency torture of the real `cubby serve` (entry point: scripts/torture).

Writers write through the HTTP API, each in its own subtree, keeping a ledger of what the
server acknowledged; the server is SIGKILLed at random moments and restarted on the same
data, and after every restart the ledger must hold: every acknowledged file, folder,
deletion and rev, with its content; the operation in flight at the kill either wholly
applied or not at all; saved cursors and open upload sessions still valid. `cubby admin gc`
and the `cubby backup` and `cubby sync` clients are killed mid-run too, and a full disk is
tried on a small tmpfs. In scale-out mode, proxies in front of PostgreSQL and S3 inject
latency, stalls, cut and refused connections and S3 error answers while the writers write
(faults.py). Exits non-zero on any loss, corruption or fsck problem.
"""

import argparse
import concurrent.futures
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tlib import Api, Results, Server, Unknown, content_hash, now, scale_out  # noqa: E402
from writer import Control, Writer, under  # noqa: E402
import stages  # noqa: E402
import faults  # noqa: E402

GC_AHEAD_SECS = 2 * 86400 + 600  # `gc --at`: past the day's grace of every object block
GC_LEASE_SECS = 600


class Harness(object):
    def __init__(self, args):
        self.args = args
        self.t0 = now()
        self.tmp = tempfile.mkdtemp(prefix="torture-")
        self.logf = open(os.path.join(self.tmp, "torture.log"), "a")
        self.log_lock = threading.Lock()
        self.results = Results(self.log)
        self.rng = random.Random(args.seed)
        self.ctl = Control(args.writers)
        self.revs = {}  # rev -> (chash, size, path, writer)
        self.rev_order = []
        self.verified = set()
        self.rev_lock = threading.Lock()
        self.hashes = set()
        self.notes = []  # observations for the report (the full disk's answers)
        self.writers = []
        self.kills = 0
        self.gc_runs = 0
        self.gc_base = int(time.time()) + GC_AHEAD_SECS
        self.gc_estimate = 0.5
        self.env = dict(os.environ)
        self.env.setdefault("CUBBY_LOG", "info")
        for v in ("NO_PROXY", "no_proxy"):
            self.env[v] = ",".join(x for x in (self.env.get(v), "127.0.0.1,localhost") if x)
        self.server = None
        self.api = None

    # --- book-keeping --------------------------------------------------------------------

    def log(self, msg, echo=False):
        line = "[{:7.1f}s] {}".format(now() - self.t0, msg)
        with self.log_lock:
            if echo or self.args.verbose or msg.startswith("FAIL") or msg.startswith("=="):
                print(line, flush=True)
            self.logf.write(line + "\n")
            self.logf.flush()

    def known_hash(self, h):
        self.hashes.add(h)

    def add_rev(self, rev, chash, size, path, writer):
        with self.rev_lock:
            old = self.revs.get(rev)
            if old is None:
                self.revs[rev] = (chash, size, path, writer)
                self.rev_order.append(rev)
            elif old[0] != chash:
                self.results.fail("corrupt", "rev {} acknowledged with hash {} ({}) and earlier with {} ({})".format(
                    rev, chash, path, old[0], old[2]))

    def budget_left(self):
        return self.args.max_minutes * 60 - (now() - self.t0)

    # --- the server ----------------------------------------------------------------------

    def start_server(self):
        self.server.start()

    def kill_server(self):
        self.server.kill()
        self.kills += 1

    def pause_writers(self, kill=False):
        self.ctl.pause()
        if kill:
            self.kill_server()
        if not self.ctl.wait_parked(180):
            raise RuntimeError("writers did not stop within 180 s")

    def resolve_all(self, why):
        """Every writer checks its subtree (and settles its in-flight operation)."""
        def one(w):
            for attempt in range(3):
                try:
                    w.resolve(why)
                    return
                except Unknown as e:
                    if attempt == 2:
                        self.results.fail("verify-error", "writer {}: {}".format(w.idx, e))
                    time.sleep(1)
        with concurrent.futures.ThreadPoolExecutor(len(self.writers)) as ex:
            list(ex.map(one, self.writers))

    # --- the ledger's checks -------------------------------------------------------------

    def verify_revs(self, revs, label):
        """Downloads each rev and compares its bytes and metadata with the ledger."""
        if not revs:
            return
        res = self.results
        local = threading.local()

        def one(rev):
            api = getattr(local, "api", None)
            if api is None:
                api = local.api = Api(self.server.url, self.token, res, "verify")
            chash, size, path, w = self.revs[rev]
            try:
                r = api.download("rev:" + rev)
            except Unknown as e:
                res.fail("verify-error", "download rev:{} ({}): {}".format(rev, path, e))
                return
            if r.status == 409:
                res.add("lost revs")
                res.fail("lost", "{}: rev {} of {} (writer {}) is gone: {}".format(label, rev, path, w, r.describe()))
            elif r.status != 200:
                res.fail("verify-error", "{}: download rev:{} ({}): {}".format(label, rev, path, r.describe()))
            else:
                got = content_hash(r.body)
                meta = r.result or {}
                if got != chash or len(r.body) != size:
                    res.add("corrupt revs")
                    res.fail("corrupt", "{}: rev {} of {} (writer {}): {} bytes hashing {}, expected {} bytes hashing {}".format(
                        label, rev, path, w, len(r.body), got, size, chash))
                elif meta.get("content_hash") != chash or meta.get("rev") != rev:
                    res.fail("corrupt", "{}: rev {} of {}: Dropbox-API-Result {}".format(label, rev, path, meta))
                else:
                    res.ok()
                    with self.rev_lock:
                        self.verified.add(rev)

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(one, revs))

    def round_revs(self):
        """The revs acknowledged since the last check (at most --verify-cap of them, the rest
        wait for the final check) and a sample of older ones."""
        with self.rev_lock:
            new = [r for r in self.rev_order[-20000:] if r not in self.verified]
            old = [r for r in self.rev_order if r in self.verified]
        if len(new) > self.args.verify_cap:
            new = self.rng.sample(new, self.args.verify_cap)
        sample = self.rng.sample(old, min(len(old), 30))
        return new + sample

    def combined(self):
        """All writers' models as one map: path -> (kind, rev, hash)."""
        out = {}
        for w in self.writers:
            out[w.root] = ("folder", None, None)
            for k, e in w.model.items():
                out[k] = (e.kind, e.rev, e.chash)
        return out

    def in_scope(self, pl):
        parts = pl.split("/")
        return len(parts) > 1 and parts[1] in self.roots

    def replay_check(self, cursor, snapshot, label):
        """The change feed from a cursor taken while the writers were parked, applied to the
        state at that moment, must give the state now."""
        try:
            entries, err = self.api.feed(cursor)
        except Unknown as e:
            self.results.fail("cursor", "{}: {}".format(label, e))
            return
        if err is not None:
            self.results.fail("cursor", "{}: list_folder/continue refused a saved cursor: {}".format(label, err.describe()))
            return
        state = dict(snapshot)
        for e in entries:
            pl = e["path_lower"]
            if not self.in_scope(pl):
                continue
            # Dropbox's rules for applying list_folder entries: deleted removes the path and
            # everything under it; a file replaces whatever is at its path, children
            # included; a folder replaces a file, and updates a folder (keeping its children).
            tag = e[".tag"]
            if tag in ("deleted", "file"):
                for k in [k for k in state if under(k, pl)]:
                    del state[k]
            if tag == "file":
                state[pl] = ("file", e.get("rev"), e.get("content_hash"))
            elif tag == "folder":
                state[pl] = ("folder", None, None)
        want = self.combined()
        bad = []
        for k, v in want.items():
            g = state.get(k)
            if g is None:
                bad.append("{}: {} missing from the replayed feed".format(k, v))
            elif g[0] != v[0] or (v[0] == "file" and (g[2] != v[2] or (v[1] and g[1] != v[1]))):
                bad.append("{}: feed says {}, the server has {}".format(k, g, v))
        for k, g in state.items():
            if k not in want:
                bad.append("{}: feed says {}, the server has nothing".format(k, g))
        if bad:
            self.results.fail("cursor", "{}: feed of {} entries replayed over the saved state differs in {} paths: {}".format(
                label, len(entries), len(bad), "; ".join(bad[:8])))
        else:
            self.results.ok()
        self.results.add("feed entries replayed", len(entries))

    def midway_check(self, cursor, c_sent, c_recv, label):
        """A cursor taken while the writers were writing: each change acknowledged after it,
        still standing, must be the feed's last word on its path."""
        try:
            entries, err = self.api.feed(cursor)
        except Unknown as e:
            self.results.fail("cursor", "{}: {}".format(label, e))
            return
        if err is not None:
            self.results.fail("cursor", "{}: list_folder/continue refused a saved cursor: {}".format(label, err.describe()))
            return
        last = {}
        last_del = {}
        for i, e in enumerate(entries):
            pl = e["path_lower"]
            last[pl] = (i, e)
            if e[".tag"] in ("deleted", "file"):  # both remove what was below the path
                last_del[pl] = (i, e)

        def feed_state(p):
            """The feed's last word on p: its own entry, or a later one that removed an
            ancestor (a deletion, or a file replacing the folder)."""
            best = last.get(p)
            pos = best[0] if best else -1
            state = best[1] if best else None
            parts = p.split("/")
            for j in range(2, len(parts)):
                a = "/".join(parts[:j])
                i, e = last_del.get(a, (-1, None))
                if i > pos:
                    pos, state = i, {".tag": "deleted", "path_lower": p, "by": e}
            return state

        bad = []
        checked = 0
        for w in self.writers:
            for t_sent, t_ack, changes in w.acklog:
                if t_sent <= c_recv:
                    continue
                for p, what in changes:
                    cur = w.model.get(p)
                    st = feed_state(p)
                    if what == "file" and cur is not None and cur.kind == "file":
                        checked += 1
                        if st is None or st[".tag"] != "file" or (cur.rev and st.get("rev") != cur.rev):
                            bad.append("{} is {} but the feed's last word is {}".format(p, cur, st))
                    elif what == "folder" and cur is not None and cur.kind == "folder":
                        checked += 1
                        if st is None or st[".tag"] != "folder":
                            bad.append("{} is a folder but the feed's last word is {}".format(p, st))
                    elif isinstance(what, tuple) and cur is None and what[1] < c_sent:
                        checked += 1
                        if st is None or st[".tag"] != "deleted":
                            bad.append("{} was deleted but the feed's last word is {}".format(p, st))
        if bad:
            self.results.fail("cursor", "{}: {} of {} changes made after the cursor are not in the feed: {}".format(
                label, len(bad), checked, "; ".join(bad[:8])))
        else:
            self.results.ok()
        self.results.add("changes checked against mid-window feeds", checked)

    def take_cursor(self):
        r = self.api.rpc("files/list_folder/get_latest_cursor", {"path": "", "recursive": True})
        if r.status != 200:
            raise Unknown("get_latest_cursor: " + r.describe())
        return r.json["cursor"]

    # --- admin commands ------------------------------------------------------------------

    def gc_at(self):
        """A `gc --at` time past the grace period and past the lease any earlier (killed)
        collection may still hold."""
        self.gc_runs += 1
        return self.gc_base + self.gc_runs * (GC_LEASE_SECS + 60)

    def run_gc(self, label):
        t = now()
        rc, out, text = self.server.admin("gc", "--at", str(self.gc_at()), check=False, timeout=900)
        d = now() - t
        if self.results.check(rc == 0, "gc", "{}: cubby admin gc exited {}: {}".format(label, rc, text[-2000:])):
            self.gc_estimate = max(0.1, d)  # the kill delays are drawn from the latest duration
        self.log("{}: gc in {:.2f} s: {}".format(label, d, out), echo=True)
        return d, out

    def gc_states(self, detail=False):
        """Embedded: the block rows a collection left claimed (-1) or deleted (-2), read from
        the SQLite file (read-only), for the report; None in scale-out mode."""
        if scale_out():
            return None
        import sqlite3
        path = os.path.join(self.server.data, "meta.sqlite")
        try:
            db = sqlite3.connect("file:{}?mode=ro".format(path), uri=True, timeout=30)
            try:
                rows = dict(db.execute("SELECT refs, COUNT(*) FROM blocks WHERE refs < 0 GROUP BY refs").fetchall())
                out = {"claimed": rows.get(-1, 0), "deleted": rows.get(-2, 0)}
                if detail:
                    claimed = [bytes(r[0]).hex() for r in db.execute(
                        "SELECT hash FROM blocks WHERE refs = -1 AND hash NOT IN (SELECT hash FROM small_blocks)")]
                    out["claimed_without_object"] = sum(
                        1 for h in claimed
                        if not os.path.exists(os.path.join(self.server.data, "blocks", h[:2], h)))
            finally:
                db.close()
        except sqlite3.Error as e:
            return "unreadable ({})".format(e)
        return out

    def fsck(self, label, quick=False):
        rc, out, text = self.server.admin("fsck", *(["--quick"] if quick else []), check=False, timeout=1800)
        clean = rc == 0 and isinstance(out, dict) and out.get("clean") is True
        self.results.check(clean, "fsck", "{}: cubby admin fsck exited {}: {}".format(label, rc, text[-3000:]))
        self.log("{}: fsck {}".format(label, out), echo=True)
        return clean, out

    # --- the run -------------------------------------------------------------------------

    def setup(self):
        a = self.args
        self.log("== cubby torture: {} writers, {} server kills, {} gc kills, {} client kills each for backup and sync, seed {}, {} mode, logs in {}".format(
            a.writers, a.kills, a.gc_kills, a.client_kills, a.seed,
            "scale-out (CUBBY_METADATA, CUBBY_BLOCKS)" if scale_out() else "embedded", self.tmp))
        self.server = Server(os.path.join(self.tmp, "data"), os.path.join(self.tmp, "server.log"), self.env)
        # The whole run uses one binary, even if target/ is rebuilt meanwhile.
        snap = os.path.join(self.tmp, "cubby")
        shutil.copy2(self.server.bin, snap)
        self.server.bin = snap
        self.start_server()
        self.user = "torture{}".format(random.randrange(16 ** 8))
        _, self.token = self.server.add_user(self.user)
        self.api = Api(self.server.url, self.token, self.results, "main")
        self.roots = set()
        for i in range(a.writers):
            r = self.api.rpc("files/create_folder_v2", {"path": "/t{}".format(i)})
            if r.status != 200:
                raise RuntimeError("create_folder /t{}: {}".format(i, r.describe()))
            self.roots.add("t{}".format(i))
        for i in range(a.writers):
            w = Writer(self, i, Api(self.server.url, self.token, self.results, "w{}".format(i)),
                       a.seed * 1000 + i, a.big_prob)
            self.writers.append(w)
            w.start()
        self.ctl.wait_parked(10)
        self.cursor0 = self.take_cursor()
        self.snapshot0 = self.combined()

    def plan(self, n, k):
        """k distinct rounds out of 1..n, spread out."""
        if k <= 0 or n <= 0:
            return set()
        step = n / float(k)
        return {min(n, max(1, int(step * i + step / 2) + 1)) for i in range(k)}

    def rounds(self):
        a = self.args
        gc_rounds = self.plan(a.kills, a.gc_kills)
        gc_contents = []
        for rnd in range(1, a.kills + 1):
            if self.budget_left() < a.reserve_minutes * 60:
                self.log("== time budget reached after {} kills".format(self.kills))
                self.results.add("rounds skipped for the time budget", a.kills - rnd + 1)
                break
            free = shutil.disk_usage(self.tmp).free
            if free < a.min_free_gb * (1 << 30):
                self.log("== only {:.1f} GiB free under {}: no more rounds after {} kills".format(
                    free / float(1 << 30), self.tmp, self.kills))
                self.results.add("rounds skipped for disk space", a.kills - rnd + 1)
                break
            snapshot = self.combined()
            cursor_a = self.take_cursor()
            for w in self.writers:
                w.acklog = []
            gc_pool = None
            if rnd in gc_rounds:
                gc_pool = stages.gc_prepare(self, rnd, gc_contents)
            acked_before = sum(w.acked for w in self.writers)
            self.ctl.resume()
            window = self.rng.uniform(a.min_window, a.max_window)
            t0 = now()
            cb = None
            if self.rng.random() < 0.8:
                time.sleep(self.rng.uniform(0, window * 0.7))
                c_sent = now()
                try:
                    cursor_b = self.take_cursor()
                    cb = (cursor_b, c_sent, now())
                except Unknown as e:
                    self.results.fail("cursor", "get_latest_cursor while writing: {}".format(e))
            if gc_pool is not None:
                stages.gc_kill_round(self, rnd, gc_pool)
                gc_contents.extend(gc_pool[:3])
                window = (now() - t0) + self.rng.uniform(0.2, 1.0)
            time.sleep(max(0.0, window - (now() - t0)))
            self.pause_writers(kill=True)
            acked = sum(w.acked for w in self.writers) - acked_before
            self.start_server()
            self.resolve_all("after kill {}".format(self.kills))
            self.verify_revs(self.round_revs(), "after kill {}".format(self.kills))
            self.replay_check(cursor_a, snapshot, "cursor taken before kill {} (writers parked)".format(self.kills))
            if cb is not None:
                self.midway_check(cb[0], cb[1], cb[2], "cursor taken {:.2f} s into the window of kill {}".format(cb[1] - t0, self.kills))
            self.log("kill {}/{} after {:.2f} s: {} operations acknowledged in the window, {} in all; {} passed, {} failed".format(
                self.kills, a.kills, window, acked, sum(w.acked for w in self.writers),
                self.results.passed, self.results.failed), echo=True)
            if a.stop_on_failure and self.results.failed:
                break

    def final(self):
        a = self.args
        self.log("== final checks")
        # The writers are parked and their subtrees checked; the store is at rest.
        clean1, _ = self.fsck("after the last kill")
        self.run_gc("final collection")
        states = self.gc_states(detail=True)
        if isinstance(states, dict):
            self.results.check(states["claimed"] == 0, "gc", (
                "a complete collection left {} block rows claimed (refs = -1), {} of them with no object in "
                "blocks/ (deleted by a killed collection before it marked them deleted; a collection walks "
                "the objects, so it never comes back to these rows)").format(
                    states["claimed"], states.get("claimed_without_object")))
        clean2, _ = self.fsck("after the final collection")
        self.resolve_all("final")
        with self.rev_lock:
            allrevs = list(self.rev_order)
        t = now()
        self.verify_revs(allrevs, "final check of the whole ledger")
        self.log("downloaded and checked all {} revs in {:.1f} s".format(len(allrevs), now() - t), echo=True)
        self.replay_check(self.cursor0, self.snapshot0, "the first cursor (taken before any write)")
        self.check_staging()
        return clean1 and clean2

    def check_staging(self):
        """Embedded: the killed servers' and admin commands' staging folders (blocks/tmp)
        are swept; only the running server's remains, holding no staged block."""
        tmp = os.path.join(self.server.data, "blocks", "tmp")
        if scale_out() or not os.path.isdir(tmp):
            return
        left = []
        for d in os.listdir(tmp):
            p = os.path.join(tmp, d)
            if not os.path.isdir(p):
                left.append(d)
            elif not d.startswith("{}-".format(self.server.proc.pid)):
                left.append(d + "/")
            else:
                left.extend(d + "/" + f for f in os.listdir(p) if f != "lock")
        self.results.check(not left, "staging", "blocks/tmp holds what no live process staged: {}".format(left[:10]))

    def run(self):
        a = self.args
        ok_fsck = False
        try:
            self.setup()
            self.rounds()
            if a.faults != "off" and scale_out() and self.budget_left() > 60:
                faults.stage(self)
            if a.client_kills > 0 and self.budget_left() > 60:
                self.ctl.resume()  # the writers keep the server busy meanwhile
                try:
                    stages.clients(self)
                finally:
                    self.pause_writers()
                self.resolve_all("after the client stage")
            ok_fsck = self.final()
        except Exception:
            self.results.fail("harness", traceback.format_exc())
        finally:
            self.ctl.stop()
            if self.server is not None:
                self.server.stop()
        if a.full_disk != "off" and not scale_out():
            try:
                stages.full_disk(self)
            except Exception:
                self.results.fail("harness", "full disk: " + traceback.format_exc())
        elif a.full_disk != "off":
            self.log("== full disk: skipped in scale-out mode (the blocks are not in the data folder)")
        if a.faults != "off" and not scale_out():
            self.log("== faults: skipped in embedded mode (no PostgreSQL or S3 to stand in front of)")
        return self.summary(ok_fsck)

    def summary(self, ok_fsck):
        res = self.results
        f = res.figures
        acked = sum(w.acked for w in self.writers)
        lost = f.get("fail:lost", 0) + f.get("fail:resurrected", 0)
        corrupt = f.get("fail:corrupt", 0)
        print("", flush=True)
        print("figures:", flush=True)
        for k in sorted(f):
            print("  {}: {}".format(k, f[k]))
        kinds = {}
        for w in self.writers:
            for k, n in w.kinds.items():
                kinds[k] = kinds.get(k, 0) + n
        print("  acknowledged by kind: " + ", ".join("{} {}".format(k, kinds[k]) for k in sorted(kinds)))
        print("  revs in the ledger: {}, checked by download: {}".format(len(self.revs), len(self.verified)))
        if self.notes:
            print("\nobservations:")
            for n in self.notes:
                print("  " + n)
        if res.failures:
            print("\nfailures ({}):".format(len(res.failures)))
            for cat, text in res.failures[:60]:
                print("  [{}] {}".format(cat, text[:3000]))
            if len(res.failures) > 60:
                print("  ... {} more in {}".format(len(res.failures) - 60, os.path.join(self.tmp, "torture.log")))
            if self.server is not None:
                print("\n--- tail of the server log ({}), without access lines of answers below 500 ---".format(
                    self.server.log_path))
                print(self.server.log_tail(80))
        print("\nSUMMARY: {} kills, {} gc kills, {} client kills, {} operations acknowledged, {} in flight at a kill "
              "(applied {}), {} lost, {} corrupt, fsck {}, {:.0f} s".format(
                  self.kills, f.get("gc killed mid-run", 0), f.get("client processes killed", 0), acked,
                  f.get("in flight: applied", 0) + f.get("in flight: not applied", 0), f.get("in flight: applied", 0),
                  lost, corrupt, "clean" if ok_fsck else "NOT CLEAN", now() - self.t0), flush=True)
        failed = res.failed
        if failed == 0 and not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("logs kept in {}".format(self.tmp))
        print("{} passed, {} failed".format(res.passed, failed), flush=True)
        return 0 if failed == 0 else 1


def main():
    p = argparse.ArgumentParser(prog="scripts/torture", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=200, help="server SIGKILLs (default 200)")
    p.add_argument("--writers", type=int, default=8, help="concurrent writer threads (default 8)")
    p.add_argument("--gc-kills", type=int, default=None, help="`cubby admin gc` runs killed mid-run (default kills/10, at least 1)")
    p.add_argument("--client-kills", type=int, default=None,
                   help="kills of each of `cubby backup` and `cubby sync` (default kills/25, at least 1; 0 skips the client stage)")
    p.add_argument("--full-disk", choices=["auto", "off"], default="auto",
                   help="the full-disk test on a 64 MiB tmpfs (embedded mode, needs mount)")
    p.add_argument("--faults", choices=["auto", "off"], default="auto",
                   help="the fault stage: proxies in front of PostgreSQL and S3 inject latency, stalls, cut and "
                        "refused connections and S3 500/503 answers (scale-out mode: CUBBY_METADATA postgres://, "
                        "CUBBY_BLOCKS s3:// with an http:// endpoint)")
    p.add_argument("--fault-secs", type=float, default=None,
                   help="length of each fault phase (default: the number of kills, between 5 and 30 s)")
    p.add_argument("--fault-rounds", type=int, default=None,
                   help="times the sequence of fault phases runs (default kills/100, at least 1)")
    p.add_argument("--fault-blackhole", action="store_true",
                   help="also blackhole the back-ends' connections (held open, nothing delivered, for good): "
                        "the server recovers only through its own timeouts")
    p.add_argument("--fault-phases", default=None,
                   help="only these fault phases, comma-separated (latency, stalls, cuts, postgres refused, "
                        "s3 refused, s3 errors, postgres blackhole, s3 blackhole, everything)")
    p.add_argument("--seed", type=int, default=None,
                   help="the harness's random choices (printed at the start; timing still varies)")
    p.add_argument("--min-window", type=float, default=0.2, help="shortest time writers write before a kill (s)")
    p.add_argument("--max-window", type=float, default=3.0, help="longest time writers write before a kill (s)")
    p.add_argument("--big-prob", type=float, default=0.003, help="share of uploads of 20 MiB")
    p.add_argument("--verify-cap", type=int, default=600, help="new revs downloaded per round (the rest at the end)")
    p.add_argument("--max-minutes", type=float, default=180, help="time budget; rounds stop when it runs low")
    p.add_argument("--reserve-minutes", type=float, default=None, help="time kept for the stages after the kills")
    p.add_argument("--min-free-gb", type=float, default=10, help="no more rounds once the temp folder's disk has less free (GiB)")
    p.add_argument("--stop-on-failure", action="store_true", help="no more rounds after a failed check")
    p.add_argument("--keep", action="store_true", help="keep the temp folder even on success")
    p.add_argument("-v", "--verbose", action="store_true", help="print every log line (always in torture.log)")
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    if a.gc_kills is None:
        a.gc_kills = max(1, a.kills // 10)
    if a.client_kills is None:
        a.client_kills = max(1, a.kills // 25)
    if a.fault_secs is None:
        a.fault_secs = float(min(30, max(5, a.kills)))
    if a.fault_rounds is None:
        a.fault_rounds = max(1, a.kills // 100)
    if a.reserve_minutes is None:
        a.reserve_minutes = min(a.max_minutes / 3, 3 + a.kills / 20.0)
    h = Harness(a)

    def on_signal(sig, frame):
        h.log("== interrupted")
        h.ctl.stop()
        if h.server is not None:
            h.server.kill()
        sys.exit(130)

    signal.signal(signal.SIGTERM, on_signal)
    sys.exit(h.run())


if __name__ == "__main__":
    main()
