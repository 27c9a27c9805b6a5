#!/usr/bin/env python3
"""Prints scripts/bench's figure table, aims beside the figures (stage k's thumbnails and stage l's
web app among them),
from OUTDIR/results.tsv and OUTDIR/meta.tsv (key<TAB>value lines: header facts and notes), then the
scale-out table (stage e: one row per configuration), the sync table (stage i: cubby beside unison
and rsync) and the load tables (stage j: one row per kind of request, then the connections, errors
and RSS). Standard library only.

Usage: report.py OUTDIR
"""
import csv
import os
import re
import sys

AIM_SINK_RATIO = 0.70      # a: cubby / sink, upload and download
AIM_SMALL_C16_S = 10.0     # b: 10,000 files in under 10 s with 16 clients
AIM_LIST_S = 3.0           # c: recursive list_folder of 100k entries
AIM_RSS_BYTES = 200e6      # d: server peak RSS under 200 MB
AIM_SYNC_FIRST = (10000, 15.0)  # i: 10,000 files of 4 KiB synced up in < 15 s
AIM_SYNC_CHANGE_S = 1.0    # i: change propagation, median
AIM_SYNC_NOOP_S = 2.0      # i: a no-change pass (over 100,000 files)
AIM_SYNC_RSS_BYTES = 200e6  # i: client and server peak RSS
AIM_CONCURRENT_RATIO = 1.5  # f: 4 concurrent appenders / 1 sequential session (unless the disk limits)
AIM_BATCHED_RATIO = 3.0    # f: start + finish_batch_v2 / per-file upload, 4 KiB files
AIM_RESTORE_MS = 50.0      # f: restore of a 1 GiB file
AIM_LOAD_ERRORS = 0        # j: no error but 429 with Retry-After
AIM_THUMB_COLD_MS = 80.0   # k: cold w256h256 thumbnail of a 12 MP JPEG, median
AIM_THUMB_WARM_MS = 3.0    # k: the same thumbnail again (from the cache), median
AIM_THUMB_RSS_BYTES = 400e6  # k: server peak RSS during 16 concurrent cold 24 MP thumbnails
AIM_THUMB_UPLOAD_RATIO = 3.0  # k: 4 KiB upload latency during that storm ÷ on the idle server
AIM_WEB_FIRST_1K_MS = 300.0  # l: first listing of a folder of 1,000 entries, empty cache
AIM_WEB_LOAD_BYTES = 200e3   # l: the app's first load, bytes on the wire (compressed)
AIM_WEB_UPLOAD_RATIO = 0.70  # l: browser upload MB/s ÷ curl's, same server, same run
MET, MISSED = "✓ met", "✗ missed"


def load(outdir):
    rows = {}
    with open(os.path.join(outdir, "results.tsv")) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows[(r["bench"], r["target"], r["metric"])] = r
    meta, notes = {}, []
    path = os.path.join(outdir, "meta.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("\t")
                if k == "note":
                    notes.append(v)
                else:
                    meta[k] = v
    return rows, meta, notes


def num(x):
    return float(x)


def fmt(r, unit=None):
    """'612 MB/s (590–640, n=3)'"""
    unit = r["unit"] if unit is None else unit
    if r["n"] == "1":
        return f"{r['median']} {unit}"
    return f"{r['median']} {unit} ({r['min']}–{r['max']}, n={r['n']})"


def find(rows, bench, target, metric_end=""):
    for (b, t, m), r in rows.items():
        if b == bench and t == target and m.endswith(metric_end):
            return r
    return None


def print_table(head, table):
    widths = [max(len(str(row[i])) for row in table + [head]) for i in range(len(head))]
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
    print(line(head))
    print(line(tuple("-" * w for w in widths)))
    for row in table:
        print(line(row))


SCALE_HEAD = ("configuration", "small files/s, c16", "large upload", "large download",
              "peak RSS per server", "blocks in", "files listed")


def scale_sizes(rows):
    """('10,000 × 4 KiB', '100 MiB') from the metrics of stage e's rows (or the defaults)."""
    small, size = "10,000 × 4 KiB", "100 MiB"
    for (b, t, m), r in rows.items():
        if b == "scaleout-small-upload":     # "10000 x 4KiB curl c16"
            n, _, kib = m.split()[:3]
            small = f"{int(n):,} × {kib.replace('KiB', ' KiB')}"
        elif b == "scaleout-large-upload":   # "100MiB /2/files/upload, ..."
            size = m.split()[0].replace("MiB", " MiB")
    return small, size


def scaleout_table(rows, meta):
    """Stage e: one row per configuration, in the order they ran."""
    ids = meta.get("scaleout_configs", "").split() or sorted(
        {t for (b, t, m) in rows if b.startswith("scaleout-")})
    table = []
    for cid in ids:
        if f"scaleout_label_{cid}" not in meta and not any(t == cid for (_, t, _) in rows):
            continue
        small = find(rows, "scaleout-small-upload", cid, "c16")
        up = find(rows, "scaleout-large-upload", cid, "")
        down = find(rows, "scaleout-large-download", cid, "")
        rss = sorted(((m, r) for (b, t, m), r in rows.items() if b == "scaleout-rss" and t == cid),
                     key=lambda x: (x[0].startswith("nginx"), x[0]))
        servers = [f"{num(r['median']):.0f}" for m, r in rss if m.startswith("server")]
        rss_txt = (" + ".join(servers) + " MiB") if servers else "—"
        rss_txt += "".join(f"; nginx {num(r['median']):.0f} MiB" for m, r in rss if m.startswith("nginx"))
        listed = find(rows, "scaleout-small-verify", cid, "")
        verdict = {"ok": "✓ all", "bad": "✗ missing"}.get(meta.get(f"scaleout_verify_{cid}"), "—")
        if listed:
            verdict += f" ({int(num(listed['median'])):,})"
        table.append((f"{cid}: {meta.get(f'scaleout_label_{cid}', '')}".rstrip(": "),
                      fmt(small) if small else "failed", fmt(up) if up else "failed",
                      fmt(down) if down else "failed", rss_txt,
                      meta.get(f"scaleout_blocks_{cid}", "?"), verdict))
    return table


SYNC_TOOLS = ("cubby", "unison", "rsync")


def sync_table(rows, meta):
    """Stage i: one row per figure, a column per tool."""
    def rows_of(bench):
        return {(t, m): r for (b, t, m), r in rows.items() if b == bench}

    def count(metric):
        m = re.search(r"(\d+) (?:files|changes)", metric)
        return int(m.group(1)) if m else 0

    def rss(r):
        return f"{num(r['median']):.0f} MiB" if r else ""

    def rss_verdict(r):
        return (MET if num(r["median"]) * 1048576 < AIM_SYNC_RSS_BYTES else MISSED) if r else "—"

    rss_aim = f"< {AIM_SYNC_RSS_BYTES / 1e6:.0f} MB"
    table = []  # (figure, cubby, unison, rsync, aim, result)
    first, first_rss = rows_of("sync-first"), rows_of("sync-first-rss")
    for n in sorted({count(m) for (_, m) in first}):
        cells, rcells = [], []
        for tool in SYNC_TOOLS:
            r = next((r for (t, m), r in first.items() if t == tool and count(m) == n), None)
            cells.append(f"{fmt(r)} = {n / num(r['median']):.0f} files/s" if r and num(r["median"]) > 0 else "")
            rcells.append(rss(next((r for (t, m), r in first_rss.items() if t == tool and count(m) == n), None)))
        c = next((r for (t, m), r in first.items() if t == "cubby" and count(m) == n), None)
        an, asec = AIM_SYNC_FIRST
        verdict = (MET if n / num(c["median"]) >= an / asec else MISSED) if c else "✗ failed"
        aim = f"{an:,} in < {asec:g} s" + ("" if n == an else f" (≥ {an / asec:.0f} files/s)")
        table.append((f"first sync, {n:,} × 4 KiB", *cells, aim, verdict))
        cr = next((r for (t, m), r in first_rss.items() if t == "cubby" and count(m) == n), None)
        table.append(("  client peak RSS", *rcells, rss_aim, rss_verdict(cr)))
        cpu = {t: r for (b, t, m), r in rows.items() if b == "sync-first-cpu" and count(m) == n}
        if cpu:
            cells = [f"{num(cpu[t]['median']):.3g} s" if t in cpu else "" for t in SYNC_TOOLS]
            if cells[0] and "cubby-server" in cpu:
                cells[0] += f" + server {num(cpu['cubby-server']['median']):.3g} s"
            table.append(("  CPU, user+sys", *cells, "", ""))
        listed = find(rows, "sync-listed", "cubby", f"first sync of {n}")
        if listed:
            k = int(num(listed["median"]))
            table.append(("  files on the server afterwards", f"{k:,}", "", "", f"all {n:,}",
                          MET if k == n else MISSED))
    down = find(rows, "sync-first-down", "cubby", "")
    if down:
        n = count(down["metric"])
        table.append((f"first sync down (B), {n:,} × 4 KiB",
                      f"{fmt(down)} = {n / num(down['median']):.0f} files/s", "", "", "", ""))
    change, p99, crss = rows_of("sync-change"), rows_of("sync-change-p99"), rows_of("sync-change-rss")
    if change or p99 or crss:
        n = max([int(r["n"]) for r in change.values()] or [0])
        p50c, p99c, rssc = [], [], []
        for tool in SYNC_TOOLS:
            r = next((r for (t, m), r in change.items() if t == tool), None)
            p50c.append(f"{num(r['median']):.3g} s ({r['min']}–{r['max']})" if r else "")
            r = next((r for (t, m), r in p99.items() if t == tool), None)
            p99c.append(f"{num(r['median']):.3g} s" if r else "")
            rs = sorted((m, r) for (t, m), r in crss.items() if t == tool)
            rssc.append(" / ".join(f"{num(r['median']):.0f}" for _, r in rs) + " MiB" if rs else "")
        rep = meta.get("sync_unison_repeat")
        if rep and p50c[1]:
            p50c[1] += f", -repeat {rep}"
        if not p50c[2]:
            p50c[2] = "— (no continuous mode)"
        c = next((r for (t, m), r in change.items() if t == "cubby"), None)
        table.append((f"change A → B, median of {n}", *p50c, f"< {AIM_SYNC_CHANGE_S:g} s",
                      (MET if num(c["median"]) < AIM_SYNC_CHANGE_S else MISSED) if c else "✗ failed"))
        table.append((f"  p99 of {n}", *p99c, "", ""))
        cr = [r for (t, m), r in crss.items() if t == "cubby"]
        worst = max(cr, key=lambda r: num(r["median"])) if cr else None
        table.append(("  peak RSS (cubby: A / B)", *rssc, rss_aim, rss_verdict(worst)))
    noop, noop_rss = rows_of("sync-noop"), rows_of("sync-noop-rss")
    for n in sorted({count(m) for (_, m) in noop}):
        cells, rcells = [], []
        for tool in SYNC_TOOLS:
            cells.append(next((fmt(r) for (t, m), r in noop.items() if t == tool and count(m) == n), ""))
            rcells.append(next((f"{num(r['max']):.0f} MiB (max)" for (t, m), r in noop_rss.items()
                                if t == tool and count(m) == n), ""))
        c = next((r for (t, m), r in noop.items() if t == "cubby" and count(m) == n), None)
        table.append((f"no-change pass, {n:,} files", *cells, f"< {AIM_SYNC_NOOP_S:g} s",
                      (MET if num(c["median"]) < AIM_SYNC_NOOP_S else MISSED) if c else "✗ failed"))
        cr = next((r for (t, m), r in noop_rss.items() if t == "cubby" and count(m) == n), None)
        table.append(("  client peak RSS", *rcells, rss_aim,
                      (MET if num(cr["max"]) * 1048576 < AIM_SYNC_RSS_BYTES else MISSED) if cr else "—"))
        cpu = {t: r for (b, t, m), r in rows.items() if b == "sync-noop-cpu" and count(m) == n}
        if cpu:
            table.append(("  client CPU, user+sys", *(f"{num(cpu[t]['median']):.3g} s" if t in cpu else ""
                                                      for t in SYNC_TOOLS), "", ""))
    for (b, t, m), r in rows.items():
        if b == "sync-server-rss":
            table.append((f"cubby server: {m}", rss(r), "", "", rss_aim, rss_verdict(r)))
    return table


def load_tables(rows):
    """Stage j: (per-kind rows, summary rows), or None if it did not run."""
    by = {}
    for (b, t, m), r in rows.items():
        if b == "load" or b.startswith("load-"):
            by.setdefault(b, {})[m] = r
    if "load" not in by:
        return None
    val = lambda b, m: num(by[b][m]["median"]) if m in by.get(b, {}) else None
    errs = {}
    for m, r in by.get("load-errors", {}).items():
        op, _, st = m.rpartition(": ")
        errs.setdefault(op, []).append(f"{st}: {int(num(r['median']))}")
    ops = sorted(set(by.get("load-count", {})) | set(errs))
    ms = lambda b, op: f"{val(b, op):.1f}" if val(b, op) is not None else "-"
    per_op = []
    for op in ops:
        n = val("load-count", op)
        per_op.append((op, f"{int(n):,}" if n is not None else "0", ms("load-p50", op), ms("load-p90", op),
                       ms("load-p99", op), ms("load-max", op), ", ".join(errs.get(op, [])) or "0",
                       int(val("load-429", op) or 0)))
    summary = []

    def add(label, b, m, unit="", aim="", verdict=""):
        r = by.get(b, {}).get(m)
        if r:
            v = r["median"] if r["n"] == "1" else f"{r['median']} ({r['min']}–{r['max']}, n={r['n']})"
            summary.append((label, f"{v} {unit}".strip(), aim, verdict))

    e = val("load", "errors other than 429 with Retry-After")
    add("errors other than 429 with Retry-After", "load", "errors other than 429 with Retry-After",
        "", str(AIM_LOAD_ERRORS), (MET if e is not None and e <= AIM_LOAD_ERRORS else MISSED))
    add("429 with Retry-After (retried)", "load", "429 with Retry-After")
    add("answers of all kinds (connects excluded)", "load", "answers (200) of all kinds, connects excluded")
    add("  per second", "load", "answers per second", "/s")
    add("connections held by the client, peak", "load", "connections held by the client, peak")
    add("  sampled each second during the workload", "load",
        "connections held by the client, sampled each second")
    add("  opened in all (closed ones are reopened)", "load", "connections opened in all")
    add("  ramp: seconds to open them", "load", "ramp: seconds to open the connections", "s")
    for kind, what in (("silent", "silent (no byte sent)"), ("abandoned", "keep-alive, idle after one answer"),
                       ("kept", "keep-alive, pinged every 5-20 s"), ("slow headers", "slow headers, 1 byte/s"),
                       ("stalled upload", "stalled upload body")):
        add(f"closed by the server: {what}, s quiet", "load-close", kind, "s")
    r503 = val("load", "cap 503 with Retry-After")
    bad503 = val("load", "cap 503 without Retry-After")
    if (r503 or 0) + (bad503 or 0) > 0:
        add("past 10,000: refused with 503 + Retry-After", "load", "cap 503 with Retry-After")
        add("  refused with 503, no Retry-After", "load", "cap 503 without Retry-After", "", "0",
            MET if not bad503 else MISSED)
    add("  connects that took 1 s or more", "load", "connects that took 1 s or more (a SYN retransmitted)")
    add("  kernel ListenOverflows during the stage", "load", "kernel TcpExt ListenOverflows during the stage")
    add("server VmRSS before the stage", "load", "server VmRSS before the stage", "MiB")
    add("server VmRSS, peak of 1 s samples", "load", "server VmRSS, peak of 1 s samples", "MiB")
    add("server VmRSS after the stage", "load", "server VmRSS after the stage", "MiB")
    add("server VmHWM (since it started)", "load",
        "server VmHWM after the stage (since the server started)", "MiB")
    add("server open descriptors, peak", "load", "server open descriptors, peak")
    add("server threads, peak", "load", "server threads, peak")
    add("server CPU, share of one core", "load", "server CPU, share of one core", "%")
    add("client CPU, share of one core", "load", "client CPU, share of one core", "%")
    for (b, t, m), r in rows.items():
        if b == "load" and m.startswith("machine CPU busy"):
            add(m, "load", m, "%")
    add("  of which other processes", "load", "machine CPU used by other processes, % of one core", "%")
    add("client event loop lag, p99", "load", "client event loop lag, p99", "ms")
    add("client event loop lag, max", "load", "client event loop lag, max", "ms")
    add("client peak RSS", "load", "client peak RSS", "MiB")
    head = {k: val("load", k) for k in ("connections asked", "active clients", "seconds of mixed workload")}
    return head, per_op, summary


def main():
    outdir = sys.argv[1]
    rows, meta, notes = load(outdir)
    table = []  # (id, figure, cubby, reference, aim, verdict)

    # a. large file up and down, beside the sink
    for bench, what in (("large-upload", "upload"), ("large-download", "download")):
        c, s = find(rows, bench, "cubby", ""), find(rows, bench, "sink", "")
        if not c and not s:
            continue
        size = (c or s)["metric"].split()[0]
        route = "/2/files/upload" if what == "upload" else "/2/files/download"
        ratio, verdict = "", "—"
        if c and s:
            q = num(c["median"]) / num(s["median"])
            ratio = f"cubby/sink = {q:.0%}"
            verdict = MET if q >= AIM_SINK_RATIO else MISSED
        table.append(("a", f"{size} file {what}, {route}",
                      fmt(c) if c else "failed", (fmt(s) + "; " + ratio) if s else "failed",
                      f"≥ {AIM_SINK_RATIO:.0%} of sink", verdict))

    # b. small files
    for conc in ("c16", "c1"):
        r = find(rows, "small-upload", "cubby", f"curl {conc}")
        if not r:
            continue
        count = int(r["metric"].split()[0])
        secs = count / num(r["median"])
        label = f"{count:,} × {r['metric'].split()[2]} uploads, {conc[1:]} client{'s' if conc != 'c1' else ''}"
        fig = f"{fmt(r)} = {secs:.2f} s for {count:,}"
        if conc == "c16":
            table.append(("b", label, fig, "", f"{count:,} in < {AIM_SMALL_C16_S:g} s",
                          MET if secs < AIM_SMALL_C16_S else MISSED))
        else:
            table.append(("b", label, fig, "", "(none given)", "—"))
    r = find(rows, "small-verify", "cubby", "")
    if r:
        table.append(("b", "  files listed afterwards", f"{int(num(r['median'])):,} files", "",
                      "all uploaded", MET if meta.get("small_verify") == "ok" else MISSED))

    # c. listing
    seed = find(rows, "list-seed", "cubby", "")
    if seed:
        n = int(seed["metric"].split()[1])
        table.append(("c", f"  seeding {n:,} empty files, 16 clients",
                      f"{fmt(seed)} = {n / num(seed['median']):.0f} files/s", "", "", ""))
    r = find(rows, "list-recursive", "cubby", "")
    if r:
        e = find(rows, "list-entries", "cubby", "")
        table.append(("c", "recursive list_folder, limit 2000", fmt(r), "",
                      f"< {AIM_LIST_S:g} s", MET if num(r["median"]) < AIM_LIST_S else MISSED))
        p = find(rows, "list-client-parse", "cubby", "")
        if p:
            table.append(("c", "  of which json.loads in the client", fmt(p), "", "", ""))
        if e:
            ok = meta.get("list_count") == "ok"
            expect = " or ".join(f"{int(x):,}" for x in meta.get("list_expect", "").split()) or "?"
            table.append(("c", "  entries listed", f"{int(num(e['median'])):,}", "",
                          expect, MET if ok else MISSED))
            if "list_detail" in meta:
                notes.insert(0, "listing: " + meta["list_detail"])

    # d. peak RSS
    sink_rss = find(rows, "large-rss", "sink", "")
    for stage in ("a", "b", "c"):
        r = find(rows, "server-rss", "cubby", f"after {stage}")
        if not r:
            continue
        mib = num(r["median"])
        ref = f"sink after a: {sink_rss['median']} MiB" if (stage == "a" and sink_rss) else ""
        table.append(("d", f"server peak RSS after {stage}",
                      f"{mib:.0f} MiB = {mib * 1048576 / 1e6:.0f} MB", ref,
                      f"< {AIM_RSS_BYTES / 1e6:.0f} MB", MET if mib * 1048576 < AIM_RSS_BYTES else MISSED))

    # f. upload sessions, batches, restore, search (every figure stays in the notes too)
    def ratio_row(label, top, bottom, reference="", aim=None):
        q = num(top["median"]) / num(bottom["median"])
        verdict = ("", "") if aim is None else (f"≥ {aim:g}×", MET if q >= aim else MISSED)
        return ("f", label, f"{fmt(top)} ÷ {fmt(bottom)} = {q:.2f}×", reference) + verdict

    seq = find(rows, "sessions", "cubby", "1 sequential")
    conc = find(rows, "sessions", "cubby", "appender processes")
    if seq and conc:
        disk = find(rows, "sessions", "cubby", "4 writers")
        table.append(ratio_row("2 GiB, 4 concurrent appenders ÷ 1 sequential session", conc, seq,
                               f"disk, 4 writers: {fmt(disk)}" if disk else "", AIM_CONCURRENT_RATIO))
    per_file = find(rows, "sessions", "cubby", "/2/files/upload, 2 x 8 threads")
    batched = find(rows, "sessions", "cubby", "finish_batch_v2, 2 x 8 threads")
    if per_file and batched:
        floor = find(rows, "sessions", "cubby", "check/user requests, 2 x 8 threads")
        table.append(ratio_row("10,000 × 4 KiB, start + finish_batch_v2 ÷ per-file upload",
                               batched, per_file, f"client alone: {fmt(floor)}" if floor else "",
                               AIM_BATCHED_RATIO))
    for (b, t, m), r in rows.items():
        if b == "sessions" and t == "cubby" and m.startswith("4 KiB files, start+finish_batch_v2, store holding "):
            more = m.split("store holding ")[1]
            other = find(rows, "sessions", "cubby", "/2/files/upload, store holding " + more)
            if other:
                table.append(ratio_row(f"  the same, on a store holding {more}", r, other))
    cpu_file = find(rows, "sessions", "cubby", "server CPU per 4 KiB file, /2/files/upload")
    cpu_batch = find(rows, "sessions", "cubby", "server CPU per 4 KiB file, start+finish_batch_v2")
    if cpu_file and cpu_batch and num(cpu_batch["median"]) > 0:
        table.append(ratio_row("  server CPU per file: per-file ÷ batched", cpu_file, cpu_batch))
    restore = find(rows, "sessions", "cubby", "restore of a 1 GiB file (median of 5)")
    if restore:
        table.append(("f", "restore of a 1 GiB file, median of 5", fmt(restore), "",
                      f"< {AIM_RESTORE_MS:g} ms", MET if num(restore["median"]) < AIM_RESTORE_MS else MISSED))

    # k. thumbnails
    def th(metric_start):
        return next((r for (b, t, m), r in rows.items() if b == "thumbs" and m.startswith(metric_start)), None)

    def ms_aim(r, aim):
        return (f"< {aim:g} ms", MET if num(r["median"]) < aim else MISSED)

    for label, key in (("12 MP", "12 MP JPEG (4000"), ("24 MP", "24 MP JPEG (6000")):
        r = th("file size, " + key)
        if r:
            table.append(("k", f"  {label} photo files (q90, 4:2:0)", fmt(r), "", "", ""))
        for state in ("cold", "warm"):
            r = th(f"get_thumbnail_v2 w256h256 jpeg of a {label} JPEG, {state}")
            if not r:
                continue
            aim = AIM_THUMB_WARM_MS if state == "warm" else (AIM_THUMB_COLD_MS if label == "12 MP" else None)
            verdict = ms_aim(r, aim) if aim else ("(none given)", "—")
            table.append(("k", f"get_thumbnail_v2 w256h256 of a {label} JPEG, {state}", fmt(r), "", *verdict))
    for state in ("cold", "warm"):
        r = th(f"get_thumbnail_batch of 25 distinct 12 MP JPEGs, {state}")
        if r:
            table.append(("k", f"get_thumbnail_batch of 25 × 12 MP, {state}, whole call",
                          f"{fmt(r)} = {num(r['median']) / 25:.1f} ms per thumbnail", "", "", ""))
    r = th("storm: ")
    one = th("storm: one cold 24 MP")
    if r:
        table.append(("k", r["metric"].split(", wall")[0], f"{fmt(r)} wall",
                      f"one: {fmt(one)}" if one else "", "", ""))
    r = th("server peak RSS during the storm") or th("server VmRSS during the storm")
    if r:
        mib = num(r["median"])
        sampled = th("server VmRSS during the storm")
        table.append(("k", "  server peak RSS during the storm (VmHWM)" if "VmHWM" in r["metric"]
                      else "  server peak VmRSS during the storm (sampled)",
                      f"{mib:.0f} MiB = {mib * 1048576 / 1e6:.0f} MB",
                      f"VmRSS sampled: {sampled['median']} MiB" if sampled and sampled is not r else "",
                      f"< {AIM_THUMB_RSS_BYTES / 1e6:.0f} MB",
                      MET if mib * 1048576 < AIM_THUMB_RSS_BYTES else MISSED))
    for q in ("median", "p90"):
        idle, storm = th(f"4 KiB files/upload on the idle server, {q}"), th(f"4 KiB files/upload during the storm, {q}")
        if storm and idle:
            ratio = num(storm["median"]) / num(idle["median"])
            table.append(("k", f"  4 KiB upload during the storm, {q} of {storm['metric'].split(' of ')[-1]}",
                          f"{storm['median']} ms = {ratio:.1f}× idle",
                          f"idle, {q} of {idle['metric'].split(' of ')[-1]}: {idle['median']} ms",
                          f"≤ {AIM_THUMB_UPLOAD_RATIO:g}× idle", MET if ratio <= AIM_THUMB_UPLOAD_RATIO else MISSED))
        elif idle:
            table.append(("k", f"  4 KiB upload on the idle server, {q}", f"{idle['median']} ms", "",
                          "", "✗ no storm figure"))
    for what in ("made (decoded)", "served from the cache"):
        r = th(f"thumbnails {what}")
        if r:
            want = int(r["metric"].rsplit(" ", 1)[1])
            table.append(("k", f"  thumbnails {what}, /metrics", f"{int(num(r['median']))}", "",
                          f"{want} ({'cold' if 'made' in what else 'warm'} requests)",
                          MET if int(num(r["median"])) == want else MISSED))

    # l. the web app
    def web(name):
        return rows.get(("web", "cubby", name))

    count = lambda k: int(k[:-1]) * 1000 if k.endswith("k") else int(k)   # "1k" -> 1000
    sizes = sorted({m[len("web-first-listing-"):] for (b, t, m) in rows if b == "web"
                    and m.startswith("web-first-listing-") and not m.endswith("-warm")}, key=count)
    for k in sizes:
        n = count(k)
        first, warm, whole = web(f"web-first-listing-{k}"), web(f"web-first-listing-{k}-warm"), web(f"web-all-loaded-{k}")
        aim = (f"< {AIM_WEB_FIRST_1K_MS:g} ms", MET if num(first["median"]) < AIM_WEB_FIRST_1K_MS else MISSED) \
            if n == 1000 else ("(none given)", "—")
        table.append(("l", f"web: first listing of {n:,} entries, empty cache", fmt(first),
                      f"later visit: {fmt(warm)}" if warm else "", *aim))
        if whole and n > 2000:
            table.append(("l", f"  all {n:,} listed", fmt(whole), "", "", ""))
    r = web("web-first-load-bytes")
    if r:
        api_b = web("web-first-load-api-bytes")
        table.append(("l", "web: the app's first load (/home, empty cache), bytes on the wire",
                      f"{num(r['median']):,.0f} bytes", f"API apart: {num(api_b['median']):,.0f} bytes" if api_b else "",
                      f"< {AIM_WEB_LOAD_BYTES / 1e3:.0f} KB", MET if num(r["median"]) < AIM_WEB_LOAD_BYTES else MISSED))
    b, c, f = web("web-upload-browser"), web("web-upload-curl"), web("web-upload-file")
    if b or c:
        size = f"{f['median']} MiB" if f else "large"
        q = num(b["median"]) / num(c["median"]) if b and c else None
        table.append(("l", f"web: {size} upload from the browser (upload sessions)",
                      fmt(b) if b else "failed",
                      (f"curl: {fmt(c)}" + (f"; browser/curl = {q:.0%}" if q is not None else "")) if c else "curl failed",
                      f"≥ {AIM_WEB_UPLOAD_RATIO:.0%} of curl",
                      (MET if q >= AIM_WEB_UPLOAD_RATIO else MISSED) if q is not None else "✗ failed"))

    # n. shared folders
    def sh(start):
        return next((r for (b, t, m), r in rows.items() if b == "sharing" and m.startswith(start)), None)

    small, large = sh("share_folder of 10 files"), next(
        (r for (b, t, m), r in rows.items() if b == "sharing" and m.startswith("share_folder of ")
         and not m.endswith(" 10 files")), None)
    if small and large:
        q = num(large["median"]) / max(num(small["median"]), 0.01)
        table.append(("n", large["metric"], fmt(large, "ms"), f"10 files: {fmt(small, 'ms')}",
                      "≤ 3× the small one", MET if q <= 3 else MISSED))
    ms_small, ms_large = sh("invite + mount of 10 files"), next(
        (r for (b, t, m), r in rows.items() if b == "sharing" and m.startswith("invite + mount of ")
         and not m.endswith(" 10 files")), None)
    if ms_small and ms_large:
        q = num(ms_large["median"]) / max(num(ms_small["median"]), 0.01)
        table.append(("n", ms_large["metric"], fmt(ms_large, "ms"), f"10 files: {fmt(ms_small, 'ms')}",
                      "≤ 3× the small one", MET if q <= 3 else MISSED))
    wake, wake99 = sh("member's longpoll woken by a write (median)"), sh("member's longpoll woken by a write (p99)")
    if wake:
        table.append(("n", "member's longpoll woken by the owner's write", fmt(wake, "ms"),
                      f"p99 {num(wake99['median']):.1f} ms" if wake99 else "", "median < 100 ms",
                      MET if num(wake["median"]) < 100 else MISSED))
    lst = sh("recursive listing of a home with")
    if lst:
        table.append(("n", lst["metric"], fmt(lst, "s"), "", "(none given)", "—"))

    scale = scaleout_table(rows, meta)
    synct = sync_table(rows, meta)
    loadt = load_tables(rows)
    print("Cubby benchmark: " + ", ".join(f"{k} {meta[k]}" for k in
                                           ("date", "version", "commit", "runs") if k in meta))
    if "machine" in meta:
        print("machine: " + meta["machine"])
    print("MB/s = 10^6 bytes/s over loopback HTTP/1.1, client and server on the same cores; "
          "RSS = server VmHWM.")
    print("sink = shared/peers/sink.py: Python, reads each body and discards it (no hashing, no disk).")
    if table or not (scale or synct or loadt):
        print()
        print_table(("", "figure", "cubby: median (min–max, n)", "reference", "aim", "result"), table)
        if not table:
            print("(no figures: every stage failed)")
    if scale:
        print()
        small, size = scale_sizes(rows)
        print(f"e. scale-out, same client and machine, one after the other: {small} uploads with 16 "
              f"clients (bench-small.sh) and a {size} file up and down (bench-large.sh, new content "
              "each run); each configuration on fresh servers, database and bucket prefix; "
              "median (min–max, n).")
        for k, what in (("scaleout_pg", "PostgreSQL"), ("scaleout_s3", "S3 server")):
            print(f"{what}: {meta.get(k, 'none (see the notes)')}")
        head = list(SCALE_HEAD)
        head[1:4] = [f"{small.split(' uploads')[0].split('× ')[-1]} files/s, c16",
                     f"{size} upload", f"{size} download"]
        print_table(tuple(head), scale)
        print("The local block store skips a block it already holds, and bench-small.sh uploads the "
              "same content every run: sqlite-local's runs after the first write no new blocks, "
              "while S3 blocks are PUT every time.")
        s3 = meta.get("scaleout_s3", "")
        if s3.startswith("s3s-fs"):
            print("s3s-fs writes each object to a file and renames it, without fsync; local disk "
                  "fsyncs each block and its directory.")
        elif s3.startswith("moto"):
            print("moto keeps objects in memory (no disk); local disk fsyncs each block and its "
                  "directory.")
    if synct:
        print()
        peers = " and ".join(filter(None, (meta.get("sync_unison"), meta.get("sync_rsync"))))
        print("i. sync: `cubby sync` (client and its own server, same cores) beside "
              f"{peers or 'no peer'}, the same trees one tool after the other; "
              "median (min–max, n); RSS = GNU time's %M for one-shot runs, VmHWM for the "
              "continuous processes and the server.")
        print_table(("figure", "cubby", "unison", "rsync", "aim", "result (cubby)"), synct)
    if loadt:
        head, per_op, summary = loadt
        print()
        fmt_n = lambda x: f"{x:,.0f}" if x is not None else "?"
        print(f"j. load: {fmt_n(head['connections asked'])} connections asked from one asyncio client, "
              f"{fmt_n(head['active clients'])} active clients and 8 longpolls running a mixed workload for "
              f"{fmt_n(head['seconds of mixed workload'])} s, the rest idle or slow (see the notes); "
              "latency of answers with status 200 only, errors by status.")
        if "load_config" in meta:
            print(f"config: {meta['load_config']}")
        print_table(("request", "count", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors",
                     "429 + Retry-After"), per_op)
        print()
        print_table(("figure", "value", "aim", "result"), summary)
    if notes:
        print()
        for n in notes:
            print("note: " + n)
    print()
    print(f"results: {os.path.join(outdir, 'results.tsv')}")


if __name__ == "__main__":
    main()
