#!/usr/bin/env python3
"""Prints scripts/bench's figure table, aims beside the figures, from OUTDIR/results.tsv and
OUTDIR/meta.tsv (key<TAB>value lines: header facts and notes), then the scale-out table (stage e:
one row per configuration). Standard library only.

Usage: report.py OUTDIR
"""
import csv
import os
import sys

AIM_SINK_RATIO = 0.70      # a: cubby / sink, upload and download
AIM_SMALL_C16_S = 10.0     # b: 10,000 files in under 10 s with 16 clients
AIM_LIST_S = 3.0           # c: recursive list_folder of 100k entries
AIM_RSS_BYTES = 200e6      # d: server peak RSS under 200 MB
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

    scale = scaleout_table(rows, meta)
    print("Cubby benchmark: " + ", ".join(f"{k} {meta[k]}" for k in
                                           ("date", "version", "commit", "runs") if k in meta))
    if "machine" in meta:
        print("machine: " + meta["machine"])
    print("MB/s = 10^6 bytes/s over loopback HTTP/1.1, client and server on the same cores; "
          "RSS = server VmHWM.")
    print("sink = shared/peers/sink.py: Python, reads each body and discards it (no hashing, no disk).")
    if table or not scale:
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
    if notes:
        print()
        for n in notes:
            print("note: " + n)
    print()
    print(f"results: {os.path.join(outdir, 'results.tsv')}")


if __name__ == "__main__":
    main()
