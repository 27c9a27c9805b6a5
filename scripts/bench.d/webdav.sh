#!/usr/bin/env bash
# Stage o: WebDAV at /dav/ beside its peers, in one run of the peer scripts (shared/peers):
# run-all.sh's large, small and list benchmarks for nginx (dav + dav-ext), `rclone serve webdav`
# and dufs (whichever are installed), then for a Cubby server of this stage's own, signed in with an
# app password. Cubby's listing tree (gen-tree.py's 100,100 entries) is put there through the API
# with `cubby put -r` first (the peers' is written to their disk), and listed like theirs, by
# `rclone lsf -R` through WebDAV. Cubby's peak RSS covers the whole stage.
#
# Usage: webdav.sh CUBBY_BIN PEERS_DIR OUTDIR
# Env: WEBDAV_PEERS (default "dufs rclone nginx": those not installed are skipped, saying so),
#      RUNS (passed on).
set -u -o pipefail
bin=$1 peers_dir=$2 out=$3
# shellcheck source=/dev/null
. "$peers_dir/lib.sh"
mkdir -p "$out"
work=$(mktemp -d -t cubby-webdav.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

peers=""
for p in ${WEBDAV_PEERS:-dufs rclone nginx}; do
  case $p in
    nginx) exe=nginx ;; *) exe=$p ;;
  esac
  if command -v "$exe" >/dev/null; then peers="$peers $p"; else log "webdav: $p is not installed, skipped"; fi
done

data=$work/data
port=$(free_port)
"$bin" serve --data "$data" --http "127.0.0.1:$port" --https off >"$out/cubby.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/health/live" && break
  sleep 0.1
done
"$bin" admin --data "$data" user add dav --json >/dev/null || die "webdav: user add failed"
pw=$("$bin" admin --data "$data" app-password add dav bench --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])') || die "webdav: app-password failed"
tok=$("$bin" admin --data "$data" token dav --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') || die "webdav: token failed"

log "webdav: seeding Cubby's listing tree through the API (cubby put -r)"
python3 "$peers_dir/gen-tree.py" list "$work/listtree" >/dev/null
printf '{"profiles":{"default":{"server":"http://127.0.0.1:%s","app_key":"cubby","tokens":{"access_token":"%s"}}}}' \
  "$port" "$tok" >"$work/cli.json"
t0=$(now_ns)
CUBBY_CONFIG=$work/cli.json "$bin" put -r "$work/listtree" /listtree >/dev/null 2>"$work/put.err" ||
  die "webdav: cubby put -r failed: $(tail -3 "$work/put.err")"
log "webdav: seeded in $(secs_since "$t0") s"
rm -rf "$work/listtree"

# rclone's WebDAV client (the listing benchmark) reads these; the peers ignore credentials.
RCLONE_WEBDAV_USER=dav RCLONE_WEBDAV_PASS=$(rclone obscure "$pw")
export RCLONE_WEBDAV_USER RCLONE_WEBDAV_PASS
PEERS="${peers# }" BENCHES="large small list" CUBBY_URL="http://dav:$pw@127.0.0.1:$port/dav" \
  CUBBY_PID=$pid "$peers_dir/run-all.sh" "$out" || die "webdav: run-all.sh failed"
"$peers_dir/bench-list.sh" cubby "http://127.0.0.1:$port/dav" "$out/results.tsv" listtree ||
  die "webdav: the listing of Cubby failed"
result "$out/results.tsv" server-rss-stage cubby "Cubby's peak RSS, the whole stage" MiB \
  "$(( $(peak_rss_kb "$pid") / 1024 ))"
column -t -s "$(printf '\t')" <(cut -f1-7 "$out/results.tsv")
