#!/usr/bin/env python3
"""Stage n of scripts/bench: shared folders (Python standard library only).

  sharing.py URL OUT_TSV [FILES] [FOLDERS] [WAKES]

Two accounts, the owner's token in CUBBY_TOKEN and the member's in CUBBY_TOKEN2 (never argv):
  - seeds FOLDERS (10) folders of FILES (10,000) empty-ish files each in the owner's home, and
    one of 10 files, through closed upload_session/start + finish_batch_v2 (seeding time a note);
  - share_folder of the 10-file folder and of a FILES-file folder, ms each (the aim: the same,
    whatever the size: rows move, no byte is copied);
  - add_folder_member + mount_folder of each for the member, ms each;
  - the member's longpoll on a recursive cursor of their home, woken by the owner's 4 KiB
    upload into a shared folder: from the upload's send to the longpoll's answer, WAKES (50)
    times, median and p99 ms (aim: median < 100 ms);
  - a recursive listing of the member's home with all FOLDERS mounted (FOLDERS × FILES
    entries), limit 2000, 3 times, median s, and its entry count checked.
Rows are appended to OUT_TSV in results.tsv's format (bench, target, metric, unit, median, min,
max, n, raw).
"""
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dbx import Api, walk  # noqa: E402


def tokens():
    a, b = os.environ.get("CUBBY_TOKEN", ""), os.environ.get("CUBBY_TOKEN2", "")
    if not a or not b:
        raise SystemExit("CUBBY_TOKEN and CUBBY_TOKEN2 must be set")
    return a, b


class Content(Api):
    """The content routes: the argument in Dropbox-API-Arg, bytes in the body."""

    def upload(self, route, arg, body):
        h = dict(self.headers)
        h["Content-Type"] = "application/octet-stream"
        h["Dropbox-API-Arg"] = json.dumps(arg)
        self.conn.request("POST", f"{self.base}/2/{route}", body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"{route}: HTTP {r.status}: {data[:300]!r}")
        return json.loads(data)


def seed(api, folder, n):
    """n files of a few bytes in `folder`, 1,000 per finish_batch_v2."""
    done = 0
    while done < n:
        entries = []
        for i in range(done, min(n, done + 1000)):
            body = f"{folder} {i}".encode()
            s = api.upload("files/upload_session/start", {"close": True}, body)
            entries.append({
                "cursor": {"session_id": s["session_id"], "offset": len(body)},
                "commit": {"path": f"{folder}/f{i:05d}", "mode": "add"},
            })
        r = api.call("files/upload_session/finish_batch_v2", {"entries": entries})
        bad = [e for e in r["entries"] if e[".tag"] != "success"]
        if bad:
            raise SystemExit(f"seeding {folder}: {bad[0]}")
        done += len(entries)


def ms(t0):
    return (time.perf_counter() - t0) * 1000


def row(out, metric, unit, values, target="cubby"):
    vals = sorted(values)
    med = statistics.median(vals)
    raw = ",".join(f"{v:.2f}" for v in values)
    out.write(f"sharing\t{target}\t{metric}\t{unit}\t{med:.2f}\t{vals[0]:.2f}\t{vals[-1]:.2f}\t{len(vals)}\t{raw}\n")
    out.flush()
    print(f"{metric}: {med:.2f} {unit} (min {vals[0]:.2f}, max {vals[-1]:.2f}, n {len(vals)})")


def p99(values):
    vals = sorted(values)
    return vals[min(len(vals) - 1, int(round(0.99 * (len(vals) - 1))))]


def main():
    url, out_path = sys.argv[1], sys.argv[2]
    files = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    folders = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    wakes = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    t_owner, t_member = tokens()
    owner, member = Content(url, t_owner), Content(url, t_member)
    me = member.call("users/get_current_account", None)["account_id"]
    out = open(out_path, "a")

    t0 = time.perf_counter()
    seed(owner, "/small-shared", 10)
    for k in range(folders):
        seed(owner, f"/shared-{k:02d}", files)
    print(f"note: seeded {folders} × {files} files and 10 more in {ms(t0) / 1000:.1f} s")
    # The member's connection sat idle through the seeding: the server has closed it.
    member.close()
    member = Content(url, t_member)

    def share_and_mount(folder):
        t = time.perf_counter()
        r = owner.call("sharing/share_folder", {"path": folder})
        share = ms(t)
        fid = r["shared_folder_id"]
        t = time.perf_counter()
        owner.call("sharing/add_folder_member", {
            "shared_folder_id": fid,
            "members": [{"member": {".tag": "dropbox_id", "dropbox_id": me}, "access_level": "editor"}],
        })
        member.call("sharing/mount_folder", {"shared_folder_id": fid})
        return share, ms(t), fid

    small = share_and_mount("/small-shared")
    big = [share_and_mount(f"/shared-{k:02d}") for k in range(folders)]
    row(out, "share_folder of 10 files", "ms", [small[0]])
    row(out, f"share_folder of {files:,} files", "ms", [b[0] for b in big])
    row(out, "invite + mount of 10 files", "ms", [small[1]])
    row(out, f"invite + mount of {files:,} files", "ms", [b[1] for b in big])

    # A write by the owner wakes the member's longpoll.
    lat = []
    for i in range(wakes):
        cur = member.call("files/list_folder/get_latest_cursor", {"path": "", "recursive": True})["cursor"]
        woke = {}

        def poll():
            api = Api(url, t_member)
            api.call("files/list_folder/longpoll", {"cursor": cur, "timeout": 30})
            woke["t"] = time.perf_counter()
            api.close()

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.15)
        t = time.perf_counter()
        owner.upload("files/upload", {"path": f"/small-shared/wake-{i:03d}", "mode": "add"}, b"x" * 4096)
        th.join(35)
        if "t" not in woke:
            raise SystemExit("a longpoll was not woken within 35 s")
        lat.append((woke["t"] - t) * 1000)
    row(out, "member's longpoll woken by a write (median)", "ms", lat)
    out.write(f"sharing\tcubby\tmember's longpoll woken by a write (p99)\tms\t{p99(lat):.2f}\t{min(lat):.2f}\t{max(lat):.2f}\t{len(lat)}\t\n")
    print(f"member's longpoll woken by a write: p99 {p99(lat):.2f} ms")

    # A recursive listing of the member's home: every mount, whole.
    secs, count = [], 0
    for _ in range(3):
        api = Api(url, t_member)
        t = time.perf_counter()
        count = sum(len(page) for page in walk(api, "", 2000))
        secs.append(time.perf_counter() - t)
        api.close()
    want = folders * (files + 1) + 1 + 10 + wakes
    if count != want:
        raise SystemExit(f"the member's listing had {count} entries, not {want}")
    row(out, f"recursive listing of a home with {folders} mounts ({count:,} entries)", "s", secs)


if __name__ == "__main__":
    main()
