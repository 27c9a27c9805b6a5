#!/usr/bin/env python3
"""Dropbox-API helpers for scripts/bench (Python standard library only).

The bearer token comes from the environment variable CUBBY_TOKEN (never from argv).

  dbx.py seed-config URL OUTDIR EMPTY_FILE [FOLDERS] [FILES] [PER_CONFIG]
      Writes curl config files OUTDIR/seed-NN.cfg (PER_CONFIG transfers each, default 10,000) that
      upload EMPTY_FILE to /list/dNNN/fNNNN (FOLDERS=100 x FILES=1,000) through POST /2/files/upload,
      mode add, one block per file, as shared/peers/bench-small.sh does. Prints the file names.

  dbx.py list URL PATH [RUNS] [LIMIT]
      Times RUNS (3) full recursive listings of PATH: POST /2/files/list_folder
      {"path":PATH,"recursive":true,"limit":LIMIT (2000)}, then /2/files/list_folder/continue
      {"cursor":...} until has_more is false, over one keep-alive connection per run, parsing
      every page (json.loads) and counting entries. Prints "key value..." lines:
        seconds S1 S2 ...   parse_seconds P1 P2 ... (of which in json.loads)   entries N   files F   folders D   deleted X   pages P
        self 0|1 (the listed folder itself was among the entries)   duplicates K (repeated path_lower)

  dbx.py verify-small URL PREFIX COUNT
      Lists the root (non-recursive), and for every folder whose name starts with PREFIX counts its
      files recursively. Prints "dirs N files F bad B" and exits 1 if any folder holds != COUNT files.

  dbx.py check URL
      One list_folder of the root with limit 1: exits 1 (with the answer) unless HTTP 200.
"""
import http.client
import inspect
import json
import os
import sys
import time
import urllib.parse
from collections import Counter


class ApiError(Exception):
    pass


class Api:
    """One keep-alive HTTP/1.1 connection to the server's RPC routes."""

    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http":
            raise SystemExit(f"only http:// URLs are supported, not {url}")
        self.conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=300)
        self.base = u.path.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.parse_s = 0.0  # time spent in json.loads of the answers (client-side cost)

    def call(self, route, arg):
        body = json.dumps(arg).encode()
        self.conn.request("POST", f"{self.base}/2/{route}", body=body, headers=self.headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise ApiError(f"POST /2/{route} {json.dumps(arg)[:200]}: HTTP {r.status}: {data[:500]!r}")
        t0 = time.perf_counter()
        res = json.loads(data)
        self.parse_s += time.perf_counter() - t0
        return res

    def close(self):
        self.conn.close()


def token():
    t = os.environ.get("CUBBY_TOKEN", "")
    if not t:
        raise SystemExit("CUBBY_TOKEN is not set")
    return t


def walk(api, path, limit, recursive=True, max_pages=100_000):
    """Yields the entries of every page of one listing (list_folder, then continue until done)."""
    arg = {"path": path, "recursive": recursive}
    if limit:
        arg["limit"] = limit
    res = api.call("files/list_folder", arg)
    pages = 1
    while True:
        yield res["entries"]
        if not res["has_more"]:
            return
        if pages >= max_pages:
            raise ApiError(f"still has_more after {pages} pages: giving up")
        res = api.call("files/list_folder/continue", {"cursor": res["cursor"]})
        pages += 1


def cmd_seed_config(url, outdir, empty, folders="100", files="1000", per="10000"):
    folders, files, per = int(folders), int(files), int(per)
    url = url.rstrip("/")
    tok = token()
    os.makedirs(outdir, exist_ok=True)
    n, k, out, names = 0, 0, None, []
    for d in range(folders):
        for f in range(files):
            if n % per == 0:
                if out:
                    out.close()
                name = os.path.join(outdir, f"seed-{k:02d}.cfg")
                names.append(name)
                out = open(name, "w")
                k += 1
            else:
                out.write("next\n")
            arg = json.dumps({"path": f"/list/d{d:03d}/f{f:04d}", "mode": "add"})
            arg = arg.replace("\\", "\\\\").replace('"', '\\"')
            out.write(
                f'url = "{url}/2/files/upload"\n'
                f'upload-file = "{empty}"\n'
                'request = "POST"\n'
                f'header = "Authorization: Bearer {tok}"\n'
                'header = "Content-Type: application/octet-stream"\n'
                f'header = "Dropbox-API-Arg: {arg}"\n'
                'header = "Expect:"\n'
                'output = "/dev/null"\n'
                'write-out = "%{http_code}\\n"\n'
            )
            n += 1
    if out:
        out.close()
    print("\n".join(names))


def cmd_list(url, path, runs="3", limit="2000"):
    runs, limit = int(runs), int(limit)
    tok = token()
    secs, parse, last = [], [], None
    for _ in range(runs):
        api = Api(url, tok)
        tags, seen, dups, pages = Counter(), set(), 0, 0
        t0 = time.perf_counter()
        for entries in walk(api, path, limit):
            pages += 1
            for e in entries:
                tags[e[".tag"]] += 1
                p = e.get("path_lower") or e.get("path_display") or e.get("name")
                if p in seen:
                    dups += 1
                seen.add(p)
        secs.append(time.perf_counter() - t0)
        parse.append(api.parse_s)
        api.close()
        this = (sum(tags.values()), tags["file"], tags["folder"], tags["deleted"], pages, dups)
        if last is not None and this[:4] != last[:4]:
            print(f"warning: run {len(secs)} listed {this} against {last} before", file=sys.stderr)
        last = this
        self_listed = int(path.lower() in seen)
    n, files, folders, deleted, pages, dups = last
    print("seconds " + " ".join(f"{s:.4f}" for s in secs))
    print("parse_seconds " + " ".join(f"{s:.4f}" for s in parse))
    print(f"entries {n}\nfiles {files}\nfolders {folders}\ndeleted {deleted}\npages {pages}")
    print(f"self {self_listed}\nduplicates {dups}")


def cmd_verify_small(url, prefix, count):
    count = int(count)
    api = Api(url, token())
    dirs = [e["name"] for page in walk(api, "", 2000, recursive=False)
            for e in page if e[".tag"] == "folder" and e["name"].startswith(prefix)]
    total, bad = 0, []
    for d in sorted(dirs):
        n = sum(1 for page in walk(api, "/" + d, 2000) for e in page if e[".tag"] == "file")
        total += n
        if n != count:
            bad.append(f"{d}: {n}")
    print(f"dirs {len(dirs)} files {total} bad {len(bad)}")
    if bad:
        print("folders without the expected " + str(count) + " files: " + "; ".join(bad), file=sys.stderr)
        sys.exit(1)


def cmd_check(url):
    Api(url, token()).call("files/list_folder", {"path": "", "limit": 1})


def main():
    cmds = {"seed-config": cmd_seed_config, "list": cmd_list, "verify-small": cmd_verify_small,
            "check": cmd_check}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        raise SystemExit(__doc__)
    fn, args = cmds[sys.argv[1]], sys.argv[2:]
    try:
        inspect.signature(fn).bind(*args)
    except TypeError:
        raise SystemExit(__doc__)
    try:
        fn(*args)
    except ApiError as e:
        raise SystemExit(f"dbx.py {sys.argv[1]}: {e}")
    except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
        raise SystemExit(f"dbx.py {sys.argv[1]}: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
