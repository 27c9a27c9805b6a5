# Stage i of scripts/bench (sourced by it, not run on its own): `cubby sync` beside unison and rsync,
# the same trees in the same invocation, one tool after the other, on a server of its own (release
# build, SQLite + local disk, fresh data dir):
#   first sync    SYNC_SMALL (10,000) and SYNC_LARGE (100,000; 0 skips it) files of 4 KiB (random,
#                 fixed seed per tree, 100 folders, fixed mtimes) into an empty target:
#                   cubby   cubby sync SRC /bench-N --once               (a new server folder)
#                   unison  unison SRC DST -batch -auto -silent          (empty DST, fresh UNISON dir)
#                   rsync   rsync -a SRC/ DST/                           (empty DST)
#                 wall seconds, the client's peak RSS (GNU time %M: the largest single process) and
#                 CPU seconds (user+sys; for cubby also the server's), which a busy machine disturbs
#                 less than wall time (the load average is noted at the start and end).
#   no-change     SYNC_NOOP_RUNS (3) more runs of the same command over the largest tree, nothing
#                 changed; median.
#   change        two continuous `cubby sync` processes, A on dirA and B on dirB, on one server folder
#                 (a SYNC_PROP_FILES (1,000) tree, put in step first with one --once each): a new
#                 4 KiB file (unique content) written into dirA, timed until it is in dirB, complete
#                 and with the right content (polled every 5 ms); SYNC_CHANGES (100) changes one after
#                 the other, SYNC_CHANGE_GAP (0.25) s apart; median and p99, and each process's peak
#                 RSS (VmHWM). unison: one `-repeat watch` process if unison-fsmonitor is installed,
#                 else `-repeat 1` (a rescan every second; noted). rsync has no continuous mode: noted.
#   server        the sync server's peak RSS (VmHWM) after the first syncs and at the end.
# Scratch (SYNC_LARGE × 4 KiB four times over at most, ~1.7 GiB for 100,000) under $work/sync,
# removed at the end of the stage; every process it starts is stopped by PID, also on failure.
#
# Uses scripts/bench's globals and helpers: bin work out res HERE failed, log note fact result now_ns
# secs_since free_port wait_tcp peak_rss_kb cpu_s.
# Env: SYNC_SMALL (10000), SYNC_LARGE (100000), SYNC_CHANGES (100), SYNC_PROP_FILES (1000),
#      SYNC_NOOP_RUNS (3), SYNC_CHANGE_GAP (0.25), SYNC_CHANGE_TIMEOUT (60 s per change),
#      SYNC_PEERS ("unison rsync").
# shellcheck shell=bash disable=SC2154  # (scripts/bench's globals)

sy_live=()      # pids this stage started and has not stopped yet (server, continuous syncs)
sy_dir=""       # its scratch dir
sy_stop_rc="" sy_stop_s=""
declare -A sy_done=()   # TOOL-N: that tool's first sync of the N-file tree succeeded
SY_SEED=20261204

sy_stop() { # sy_stop PID [NAME]: SIGTERM, up to 15 s, then SIGKILL; forgets the pid. Sets
  # sy_stop_rc (exit status) and sy_stop_s (seconds from SIGTERM to exit)
  local pid=$1 name=${2:-pid $1} _ keep=() p t0
  for p in "${sy_live[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  sy_live=("${keep[@]}")
  t0=$(now_ns)
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    note "sync: $name (pid $pid) still running 15 s after SIGTERM: sent SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  sy_stop_rc=$?
  sy_stop_s=$(secs_since "$t0")
}

sy_cleanup() { # from scripts/bench's EXIT trap: everything this stage started, newest first
  local i
  for ((i = ${#sy_live[@]} - 1; i >= 0; i--)); do sy_stop "${sy_live[i]}"; done
  if [ -n "$sy_dir" ]; then rm -rf "$sy_dir"; sy_dir=""; fi
}

sy_gen() { # sy_gen DIR N SEED: N files of 4 KiB, random bytes from SEED, in min(100, N) folders
  python3 - "$@" <<'PY'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
FIXED_MTIME = 1_790_000_000
r = random.Random(seed)
nf = max(1, min(100, n))
for d in range(nf):
    os.makedirs(os.path.join(root, f"d{d:03d}"), exist_ok=True)
for i in range(n):
    p = os.path.join(root, f"d{i % nf:03d}", f"f{i:06d}.bin")
    with open(p, "wb") as fh:
        fh.write(r.randbytes(4096))
    os.utime(p, (FIXED_MTIME, FIXED_MTIME))
PY
}

sy_files() { find "$1" -path "$1/.cubby-cache" -prune -o -type f -print | wc -l; }

# sy_changes SRC DST N TIMEOUT GAP: one warm-up change (up to 120 s, not counted), then N new files of
# 4 KiB (unique content) written into SRC/changes/, each timed until DST holds the same bytes (polled
# every 5 ms). Prints one latency in seconds a line; exits 1 on a timeout (after those it has).
sy_changes() {
  python3 - "$@" <<'PY'
import os, sys, time
src, dst, n, timeout, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
os.makedirs(os.path.join(src, "changes"), exist_ok=True)

def change(name, limit):
    data = f"{name} {time.time_ns()}\n".encode() + os.urandom(4096 - 64)
    t0 = time.monotonic()
    with open(os.path.join(src, "changes", name), "wb") as fh:
        fh.write(data)
    target = os.path.join(dst, "changes", name)
    while True:
        try:
            with open(target, "rb") as fh:
                if fh.read() == data:
                    return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > limit:
            return None
        time.sleep(0.005)

if change("warmup.bin", 120.0) is None:
    sys.exit("the warm-up change did not reach the other side in 120 s")
for i in range(n):
    s = change(f"c{i:05d}.bin", timeout)
    if s is None:
        sys.exit(f"change {i + 1} of {n} did not reach the other side in {timeout:g} s")
    print(f"{s:.4f}", flush=True)
    time.sleep(gap)
PY
}

sy_p99() { # sy_p99 V...: nearest-rank 99th percentile
  python3 -c 'import math, sys; v = sorted(map(float, sys.argv[1:])); print(v[max(0, math.ceil(0.99 * len(v)) - 1)])' "$@"
}

sy_mib() { echo $(( $1 / 1024 )); }

# sy_timed CMD...: lib.sh's timed, plus TIMED_CPU_S (user+sys seconds of CMD and its children)
sy_timed() {
  local tf t0 rc u s
  tf=$(mktemp)
  t0=$(now_ns)
  /usr/bin/time -f '%M %U %S' -o "$tf" "$@" >>"${TIMED_LOG:-/dev/null}" 2>&1
  rc=$?
  TIMED_S=$(secs_since "$t0")
  read -r TIMED_RSS_KB u s < <(tail -n 1 "$tf")
  TIMED_CPU_S=$(python3 -c 'import sys; print(f"{float(sys.argv[1]) + float(sys.argv[2]):.2f}")' "${u:-0}" "${s:-0}")
  rm -f "$tf"
  return $rc
}

sy_load() { cut -d ' ' -f 1-3 /proc/loadavg; }

# sy_tool TOOL SRC DST N: one run of TOOL (sy_timed: TIMED_S, TIMED_RSS_KB, TIMED_CPU_S), output to $out/sync-TOOL.log
sy_tool() {
  local tool=$1 src=$2 dst=$3 n=$4
  echo "== $(date -u +%H:%M:%S) $tool $src" >>"$out/sync-$tool.log"
  case $tool in
    cubby)  TIMED_LOG=$out/sync-cubby.log sy_timed "$bin" sync "$src" "/bench-$n" --once ;;
    unison) UNISON=$sy_dir/unison-$n TIMED_LOG=$out/sync-unison.log \
              sy_timed unison "$src" "$dst" -batch -auto -silent -ignore 'Path .cubby-cache' ;;
    rsync)  TIMED_LOG=$out/sync-rsync.log sy_timed rsync -a --exclude=/.cubby-cache "$src/" "$dst/" ;;
  esac
}

# sy_first N: generate the tree, then each tool's first sync of it. Returns 1 if cubby's failed.
sy_first() {
  local n=$1 src=$sy_dir/src-$1 tool dst got cpu0 rc=0
  log "sync: generating $n files of 4 KiB in $src"
  sy_gen "$src" "$n" $((SY_SEED + n)) || { note "sync: generating the $n-file tree failed"; return 1; }
  command sync
  for tool in cubby $sy_peers; do
    dst=$sy_dir/$tool-dst-$n
    mkdir -p "$dst" "$sy_dir/unison-$n"
    log "sync: first sync of $n files, $tool"
    cpu0=$(cpu_s "$sy_pid")
    if ! sy_tool "$tool" "$src" "$dst" "$n"; then
      note "sync: $tool's first sync of $n files failed: $(tail -n 3 "$out/sync-$tool.log" | tr '\n' ' ')"
      [ "$tool" = cubby ] && rc=1
      continue
    fi
    sy_done[$tool-$n]=1
    result "$res" sync-first "$tool" "first sync, $n files of 4 KiB" s "$TIMED_S"
    result "$res" sync-first-rss "$tool" "first sync of $n files, peak RSS" MiB "$(sy_mib "$TIMED_RSS_KB")"
    result "$res" sync-first-cpu "$tool" "first sync of $n files, client CPU (user+sys)" s "$TIMED_CPU_S"
    [ "$tool" = cubby ] && result "$res" sync-first-cpu cubby-server "first sync of $n files, server CPU (user+sys)" s \
      "$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.2f}")' "$cpu0" "$(cpu_s "$sy_pid")")"
    if [ "$tool" = cubby ]; then
      # exit 0 is not enough: the server must list every file
      got=$(CUBBY_TOKEN=$sy_token python3 "$HERE/dbx.py" list "$sy_url" "/bench-$n" 1 2000 2>"$sy_dir/list.err" |
        awk '$1 == "files" {print $2}')
      if [ -n "$got" ]; then
        result "$res" sync-listed cubby "files on the server after the first sync of $n" files "$got"
      fi
      if [ "$got" != "$n" ]; then
        note "sync: after cubby's first sync of $n files the server lists ${got:-no} files in /bench-$n $(head -c 300 "$sy_dir/list.err")"
        rc=1
      fi
      [ -d "$src/.cubby-cache" ] && note "sync: cubby sync made $src/.cubby-cache (left out of unison's and rsync's runs)"
    else
      got=$(sy_files "$dst")
      [ "$got" = "$n" ] || note "sync: after $tool's first sync of $n files its target holds $got files"
    fi
  done
  return $rc
}

# sy_noop N: SYNC_NOOP_RUNS no-change runs of each tool over the synced N-file tree
sy_noop() {
  local n=$1 src=$sy_dir/src-$1 tool dst run secs rss cpu line
  for tool in cubby $sy_peers; do
    [ -n "${sy_done[$tool-$n]:-}" ] || continue   # its first sync failed
    dst=$sy_dir/$tool-dst-$n
    log "sync: $sy_noop_runs no-change runs over $n files, $tool"
    secs=() rss=() cpu=()
    for run in $(seq 1 "$sy_noop_runs"); do
      if ! sy_tool "$tool" "$src" "$dst" "$n"; then
        note "sync: $tool's no-change run $run over $n files failed: $(tail -n 3 "$out/sync-$tool.log" | tr '\n' ' ')"
        secs=(); break
      fi
      secs+=("$TIMED_S") rss+=("$(sy_mib "$TIMED_RSS_KB")") cpu+=("$TIMED_CPU_S")
      if [ "$tool" = cubby ]; then
        line=$(tail -n 1 "$out/sync-cubby.log")
        case $line in "0 uploaded, 0 downloaded, 0 moved, 0 folders created, 0 deleted"*) ;;
          *) note "sync: cubby's no-change run $run over $n files did something: $line" ;; esac
      fi
    done
    [ "${#secs[@]}" -gt 0 ] || continue
    result "$res" sync-noop "$tool" "no-change pass, $n files" s "${secs[@]}"
    result "$res" sync-noop-rss "$tool" "no-change pass over $n files, peak RSS" MiB "${rss[@]}"
    result "$res" sync-noop-cpu "$tool" "no-change pass over $n files, client CPU (user+sys)" s "${cpu[@]}"
  done
}

# sy_prop_cubby: change propagation between two continuous `cubby sync` processes
sy_prop_cubby() {
  local a=$sy_dir/prop-a b=$sy_dir/prop-b apid bpid lat=() v rc=0
  sy_gen "$a" "$sy_prop_files" $((SY_SEED + 1)) || { note "sync: generating the change tree failed"; return 1; }
  mkdir -p "$b"
  log "sync: cubby: $sy_prop_files files into /prop from A, then B's first sync (both --once)"
  TIMED_LOG=$out/sync-cubby.log sy_timed "$bin" sync "$a" /prop --once ||
    { note "sync: cubby sync A /prop --once failed: $(tail -n 3 "$out/sync-cubby.log" | tr '\n' ' ')"; return 1; }
  TIMED_LOG=$out/sync-cubby.log sy_timed "$bin" sync "$b" /prop --once ||
    { note "sync: cubby sync B /prop --once (the first pull) failed: $(tail -n 3 "$out/sync-cubby.log" | tr '\n' ' ')"; return 1; }
  result "$res" sync-first-down cubby "first sync down of $sy_prop_files files of 4 KiB (B)" s "$TIMED_S"
  v=$(sy_files "$b")
  [ "$v" = "$sy_prop_files" ] || note "sync: after B's first sync, B holds $v files, not $sy_prop_files"
  "$bin" sync "$a" /prop >"$out/sync-cubby-a.log" 2>&1 &
  apid=$!; sy_live+=("$apid")
  "$bin" sync "$b" /prop >"$out/sync-cubby-b.log" 2>&1 &
  bpid=$!; sy_live+=("$bpid")
  log "sync: cubby: continuous A (pid $apid) and B (pid $bpid); $sy_changes changes A -> B"
  sy_changes "$a" "$b" "$sy_changes" "$sy_change_timeout" "$sy_change_gap" >"$sy_dir/cubby-lat" 2>"$sy_dir/cubby-lat.err" ||
    { note "sync: cubby change propagation: $(cat "$sy_dir/cubby-lat.err") (after $(wc -l <"$sy_dir/cubby-lat") changes)"; rc=1; }
  mapfile -t lat <"$sy_dir/cubby-lat"
  if [ "$rc" = 0 ]; then
    result "$res" sync-change cubby "change propagation A -> B, $sy_changes new 4 KiB files" s "${lat[@]}"
    result "$res" sync-change-p99 cubby "change propagation p99, $sy_changes changes" s "$(sy_p99 "${lat[@]}")"
  fi
  for v in a b; do
    local pid=$apid; [ "$v" = b ] && pid=$bpid
    if kill -0 "$pid" 2>/dev/null; then
      result "$res" sync-change-rss cubby "continuous sync ${v^^} peak RSS" MiB "$(sy_mib "$(peak_rss_kb "$pid")")"
    else
      note "sync: continuous cubby sync ${v^^} exited during the changes: $(tail -n 3 "$out/sync-cubby-$v.log" | tr '\n' ' ')"; rc=1
    fi
    sy_stop "$pid" "continuous cubby sync ${v^^}"
    note "sync: continuous cubby sync ${v^^} stopped by SIGTERM: exit status $sy_stop_rc, ${sy_stop_s} s"
  done
  "$bin" sync "$b" /prop --status >"$out/sync-cubby-status.txt" 2>&1 ||
    note "sync: cubby sync B /prop --status failed: $(tail -n 3 "$out/sync-cubby-status.txt" | tr '\n' ' ')"
  v=$(diff -rq -x .cubby-cache "$a" "$b" 2>&1 | head -n 3 | tr '\n' ' ')
  [ -z "$v" ] || { note "sync: after the changes, A and B differ: $v"; rc=1; }
  return $rc
}

# sy_prop_unison: the same between two dirs and one continuous unison
sy_prop_unison() {
  local a=$sy_dir/uprop-a b=$sy_dir/uprop-b upid lat=() mode rc=0
  local home=$sy_dir/unison-prop
  mkdir -p "$home" "$b"
  sy_gen "$a" "$sy_prop_files" $((SY_SEED + 1)) || return 1
  UNISON=$home unison "$a" "$b" -batch -auto -silent >>"$out/sync-unison.log" 2>&1 ||
    { note "sync: unison's first sync of the change tree failed: $(tail -n 3 "$out/sync-unison.log" | tr '\n' ' ')"; return 1; }
  if command -v unison-fsmonitor >/dev/null; then mode=watch; else mode=1; fi
  fact sync_unison_repeat "$mode"
  UNISON=$home unison "$a" "$b" -batch -auto -silent -repeat "$mode" >"$out/sync-unison-repeat.log" 2>&1 &
  upid=$!; sy_live+=("$upid")
  log "sync: unison -repeat $mode (pid $upid); $sy_changes changes A -> B"
  sy_changes "$a" "$b" "$sy_changes" "$sy_change_timeout" "$sy_change_gap" >"$sy_dir/unison-lat" 2>"$sy_dir/unison-lat.err" ||
    { note "sync: unison change propagation: $(cat "$sy_dir/unison-lat.err") (after $(wc -l <"$sy_dir/unison-lat") changes)"; rc=1; }
  mapfile -t lat <"$sy_dir/unison-lat"
  if [ "$rc" = 0 ]; then
    result "$res" sync-change unison "change propagation A -> B, $sy_changes new 4 KiB files (-repeat $mode)" s "${lat[@]}"
    result "$res" sync-change-p99 unison "change propagation p99, $sy_changes changes" s "$(sy_p99 "${lat[@]}")"
  fi
  if kill -0 "$upid" 2>/dev/null; then
    result "$res" sync-change-rss unison "continuous unison -repeat $mode peak RSS" MiB "$(sy_mib "$(peak_rss_kb "$upid")")"
  else
    note "sync: unison -repeat $mode exited during the changes: $(tail -n 3 "$out/sync-unison-repeat.log" | tr '\n' ' ')"
  fi
  sy_stop "$upid" "unison -repeat $mode"
  if [ "$mode" = 1 ]; then
    note "sync: Debian's unison ($(unison -version 2>/dev/null | head -n 1)) ships no unison-fsmonitor, so no -repeat watch: unison ran with -repeat 1 (a full rescan of both sides every second)"
  fi
  return $rc
}

sync_stage() {
  local missing=() t sy_port sy_pid v nlarge
  sy_small=${SYNC_SMALL:-10000} sy_large=${SYNC_LARGE:-100000} sy_changes=${SYNC_CHANGES:-100}
  sy_prop_files=${SYNC_PROP_FILES:-1000} sy_noop_runs=${SYNC_NOOP_RUNS:-3}
  sy_change_gap=${SYNC_CHANGE_GAP:-0.25} sy_change_timeout=${SYNC_CHANGE_TIMEOUT:-60}
  sy_peers=${SYNC_PEERS:-unison rsync}
  for t in $sy_peers; do command -v "$t" >/dev/null || missing+=("$t"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} from Debian's packages"
    { apt-get install -y -q --no-install-recommends "${missing[@]}" || { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; }; } >"$work/apt-sync.log" 2>&1 ||
      log "apt-get failed: $(tail -n 3 "$work/apt-sync.log")"
    local have=()
    for t in $sy_peers; do
      if command -v "$t" >/dev/null; then have+=("$t"); else note "sync: $t is not installed: left out"; fi
    done
    sy_peers=${have[*]:-}
  fi
  for t in $sy_peers; do
    case $t in
      unison) fact sync_unison "$(unison -version 2>/dev/null | head -n 1)" ;;
      rsync) fact sync_rsync "$(rsync --version 2>/dev/null | head -n 1 | sed 's/  */ /g')" ;;
    esac
  done
  fact sync_peers "$sy_peers"

  sy_dir=$work/sync
  mkdir -p "$sy_dir/data" "$sy_dir/home"
  sy_port=$(free_port)
  sy_url=http://127.0.0.1:$sy_port
  "$bin" serve --data "$sy_dir/data" --http "127.0.0.1:$sy_port" --https off >"$out/cubby-sync.log" 2>&1 &
  sy_pid=$!; sy_live+=("$sy_pid")
  if ! wait_tcp "$sy_port" "$sy_pid" ||
    ! "$bin" admin user add sync --data "$sy_dir/data" --json >/dev/null 2>"$sy_dir/admin.err" ||
    ! "$bin" admin token sync --data "$sy_dir/data" --json >"$sy_dir/token.json" 2>>"$sy_dir/admin.err"; then
    failed+=(i)
    note "sync: the server did not start: $(tail -n 3 "$out/cubby-sync.log" | tr '\n' ' ') $(cat "$sy_dir/admin.err")"
    sy_cleanup
    return
  fi
  sy_token=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["access_token"])' "$sy_dir/token.json")
  # A profile made from an operator token: the same as `cubby login` would save.
  python3 - "$sy_dir/home/config.json" "$sy_url" "$sy_token" <<'PY'
import json, sys
json.dump({"profiles": {"default": {"server": sys.argv[2], "app_key": "cubby",
           "tokens": {"access_token": sys.argv[3]}}}}, open(sys.argv[1], "w"))
PY
  export CUBBY_CONFIG=$sy_dir/home/config.json XDG_STATE_HOME=$sy_dir/home/state XDG_CACHE_HOME=$sy_dir/home/cache
  log "sync: server pid $sy_pid at $sy_url; cubby sync beside: ${sy_peers:-nothing}"

  local ok=1
  note "sync: load average at the start of the stage: $(sy_load) ($(nproc) cores)"
  # 1. first syncs, 10,000 and 100,000 files
  sy_first "$sy_small" || ok=0
  nlarge=$sy_small
  if [ "$sy_large" -gt 0 ] 2>/dev/null; then
    sy_first "$sy_large" || ok=0
    nlarge=$sy_large
  fi
  result "$res" sync-server-rss cubby "server peak RSS after the first syncs" MiB "$(sy_mib "$(peak_rss_kb "$sy_pid")")"
  # 3. no-change passes over the largest tree; then its copies go (disk space)
  sy_noop "$nlarge"
  rm -rf "$sy_dir"/*-dst-* "$sy_dir"/src-* "$sy_dir"/unison-[0-9]*
  # 2. change propagation
  sy_prop_cubby || ok=0
  case " $sy_peers " in *" unison "*) sy_prop_unison ;; esac
  case " $sy_peers " in *" rsync "*)
    if command -v lsyncd >/dev/null; then
      note "sync: rsync has no continuous mode; lsyncd is installed but this stage does not drive it: no change-propagation figure for rsync"
    else
      note "sync: rsync has no continuous mode (lsyncd not installed): no change-propagation figure for rsync"
    fi ;;
  esac

  if kill -0 "$sy_pid" 2>/dev/null; then
    result "$res" sync-server-rss cubby "server peak RSS at the end of the stage" MiB "$(sy_mib "$(peak_rss_kb "$sy_pid")")"
  else
    note "sync: the server had exited before the end: $(tail -n 3 "$out/cubby-sync.log" | tr '\n' ' ')"; ok=0
  fi
  note "sync: load average at the end of the stage: $(sy_load)"
  note "sync: the cubby figures include its server (release, SQLite, fsynced blocks) on the same $(nproc) cores; unison and rsync copy between local dirs"
  unset CUBBY_CONFIG XDG_STATE_HOME XDG_CACHE_HOME
  [ "$ok" = 1 ] || { failed+=(i); log "stage i failed (see the notes)"; }
  sy_cleanup
}
