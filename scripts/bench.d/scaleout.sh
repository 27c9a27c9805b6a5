# Stage e of scripts/bench (sourced by it, not run on its own): the same small-file and large-file
# measurements on three configurations, side by side in one run:
#   sqlite-local    SQLite + local disk, one server (the embedded default);
#   pg-s3           PostgreSQL + S3, one server;
#   pg-s3-x2-nginx  PostgreSQL + S3, two servers sharing the database and the bucket prefix, behind
#                   nginx (round robin, keep-alive upstream, no request/response buffering) on loopback.
# Each configuration gets fresh servers, a fresh data dir per server, and for PostgreSQL + S3 a fresh
# database and a fresh bucket prefix. PostgreSQL: scripts/lib/services.sh's throwaway cluster with
# fsync on. S3: s3s-fs (crate s3s-fs 0.14.1, built once into $BENCH_TOOLS by cargo install) if it
# builds and starts, else moto (services.sh's start_s3; a Python server, likely the bottleneck).
#
# Uses scripts/bench's globals and helpers: bin work out res REPO HERE PEERS RUNS failed, log note
# fact result now_ns secs_since free_port wait_tcp peak_rss_kb cpu_s.
# Env: SCALEOUT_S3 (auto | s3s-fs | moto; default auto), SCALEOUT_CONFIGS (default all three ids
#      above), BENCH_TOOLS (default $REPO/target/bench-tools), S3S_FS_BIN (an existing s3s-fs binary).
# shellcheck shell=bash disable=SC2154  # (scripts/bench's and services.sh's globals)

so_live=()              # pids this stage started and has not stopped yet (servers, nginx, s3s-fs)
so_s3_pid="" so_s3_name="" so_s3_endpoint="" so_s3_bucket="" so_pg_pid=""
S3S_FS_VERSION=0.14.1
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

so_stop() { # so_stop PID [NAME]: SIGTERM, up to 15 s, then SIGKILL; forgets the pid. Returns the
  # exit status (if it had exited already: that status, from wait)
  local pid=$1 name=${2:-pid $1} _ keep=() p
  for p in "${so_live[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  so_live=("${keep[@]}")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    note "scale-out: $name (pid $pid) still running 15 s after SIGTERM: sent SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
}

so_cleanup() { # from scripts/bench's EXIT trap: everything this stage started, newest first
  local i
  for ((i = ${#so_live[@]} - 1; i >= 0; i--)); do so_stop "${so_live[i]}"; done
  if declare -F stop_services >/dev/null; then stop_services; fi
}

cpu_tree_s() { # cpu_tree_s PID: CPU seconds of PID (with its reaped children) and its live children
  local p list
  list=$(pgrep -P "$1" 2>/dev/null | tr '\n' ' ')
  # shellcheck disable=SC2086,SC2016
  for p in "$1" $list; do [ -r "/proc/$p/stat" ] && echo "/proc/$p/stat"; done |
    xargs -r awk -v hz="$(getconf CLK_TCK)" -v top="/proc/$1/stat" '
      { sub(/^.*\) /, ""); t += $12 + $13; if (FILENAME == top) t += $14 + $15 }
      END { printf "%.2f", t / hz }' 2>/dev/null
}

so_sigv4() { # so_sigv4 CURL-ARGS...: one request signed with the AWS_* credentials (curl --aws-sigv4)
  curl -sS -H "x-amz-content-sha256: $EMPTY_SHA256" --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"
}

so_start_s3s_fs() { # builds s3s-fs if needed, starts it on a temp dir, creates the bucket
  local tools=${BENCH_TOOLS:-$REPO/target/bench-tools} s3bin port code
  s3bin=${S3S_FS_BIN:-$tools/bin/s3s-fs}
  if ! { [ -x "$s3bin" ] && "$s3bin" --version 2>/dev/null | grep -q " $S3S_FS_VERSION\$"; }; then
    [ -z "${S3S_FS_BIN:-}" ] || { note "scale-out: S3S_FS_BIN=$S3S_FS_BIN is not s3s-fs $S3S_FS_VERSION"; return 1; }
    command -v cargo >/dev/null || { note "scale-out: no cargo to build s3s-fs"; return 1; }
    log "cargo install s3s-fs $S3S_FS_VERSION into $tools (once; a few minutes; log: $out/s3s-fs-install.log)"
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --root "$tools" \
      >"$out/s3s-fs-install.log" 2>&1 ||
      { note "scale-out: cargo install s3s-fs failed: $(tail -n 3 "$out/s3s-fs-install.log" | tr '\n' ' ')"; return 1; }
  fi
  export AWS_ACCESS_KEY_ID=cubby-bench AWS_SECRET_ACCESS_KEY=cubby-bench-secret
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  mkdir -p "$work/s3"
  port=$(free_port)
  RUST_LOG=warn "$s3bin" --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
    --secret-key "$AWS_SECRET_ACCESS_KEY" "$work/s3" >"$out/s3s-fs.log" 2>&1 &
  so_s3_pid=$!
  so_live+=("$so_s3_pid")
  wait_tcp "$port" "$so_s3_pid" || { note "scale-out: s3s-fs did not start: $(tail -n 3 "$out/s3s-fs.log" | tr '\n' ' ')"; return 1; }
  so_s3_endpoint=http://127.0.0.1:$port so_s3_bucket=cubby-bench
  # s3s-fs wants every request signed (an unsigned PUT gets 403), payload hash header included
  code=$(so_sigv4 -o "$work/s3-mb.out" -w '%{http_code}' -X PUT "$so_s3_endpoint/$so_s3_bucket")
  [ "$code" = 200 ] || { note "scale-out: s3s-fs: creating the bucket got HTTP $code: $(head -c 300 "$work/s3-mb.out")"; return 1; }
  so_s3_name="s3s-fs $S3S_FS_VERSION"
}

so_start_moto() { # services.sh's moto (bucket cubby-test), for the fallback
  start_s3 || { note "scale-out: moto did not start"; return 1; }
  so_s3_pid=$(cat "$services_tmp/moto.pid")
  so_s3_endpoint=${CUBBY_TEST_S3_URL#*endpoint=}
  so_s3_endpoint=${so_s3_endpoint%%&*}
  so_s3_bucket=cubby-test
  so_s3_name="moto $("$services_root/.venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)"
}

so_wait_ready() { # so_wait_ready PORT PID: /health/ready answers 200 (60 s)
  local _
  wait_tcp "$1" "$2" || return 1
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/health/ready")" = 200 ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

so_nginx() { # so_nginx DIR PORT UPSTREAM-PORT...: starts nginx, sets so_nginx_pid
  local dir=$1 port=$2 p user_line="" servers=""
  shift 2
  for p in "$@"; do servers+="    server 127.0.0.1:$p;"$'\n'; done
  [ "$(id -u)" = 0 ] && user_line="user root;"   # workers can reach the temp dir
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  upstream cubby {
$servers    keepalive 64;
  }
  server {
    listen 127.0.0.1:$port;
    client_max_body_size 200m;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_read_timeout 600s;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;
    location / { proxy_pass http://cubby; }
  }
}
EOF
  nginx -e "$dir/error.log" -p "$dir/" -c "$dir/nginx.conf" >"$dir/nginx.out" 2>&1 &
  so_nginx_pid=$!
  so_live+=("$so_nginx_pid")
  wait_tcp "$port" "$so_nginx_pid" ||
    { note "scale-out: nginx did not start: $(cat "$dir/nginx.out" "$dir/error.log" 2>/dev/null | tail -n 3 | tr '\n' ' ')"; return 1; }
}

so_requests() { # so_requests PORT: API requests the server has answered (sum of its /metrics counter)
  curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" |
    awk '/^cubby_http_requests_total[{ ]/ { n += $NF; seen = 1 } END { if (seen) printf "%d", n; else printf "?" }'
}

so_pg_counts() { # so_pg_counts DB: "commits rollbacks inserted updated deleted" of DB so far
  "$pg_bin/psql" "$CUBBY_TEST_PG_URL" -XAtq -F ' ' -c "SELECT pg_stat_clear_snapshot(); SELECT xact_commit,
    xact_rollback, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = '$1'" 2>/dev/null |
    tail -n 1
}

# so_config ID SERVERS METADATA BLOCKS: one configuration, start to stop. Returns 1 on failure
# (noted); always stops what it started.
so_config() {
  local id=$1 nserv=$2 metadata=$3 blocks=$4 i port pid url d run rc=0
  local -a pids=() ports=() args=() ups=() downs=()
  so_nginx_pid=""
  [ -n "$metadata" ] && args+=(--metadata "$metadata")
  [ -n "$blocks" ] && args+=(--blocks "$blocks")
  log "scale-out $id"
  for ((i = 1; i <= nserv; i++)); do
    d=$work/so-$id-$i
    mkdir -p "$d"
    port=$(free_port)
    "$bin" serve --data "$d" "${args[@]}" --http "127.0.0.1:$port" --https off >"$out/scaleout-$id-$i.log" 2>&1 &
    pid=$!
    so_live+=("$pid") pids+=("$pid") ports+=("$port")
  done
  for ((i = 0; i < nserv; i++)); do
    so_wait_ready "${ports[i]}" "${pids[i]}" || {
      note "scale-out $id: server $((i + 1)) not ready on port ${ports[i]}: $(tail -n 3 "$out/scaleout-$id-$((i + 1)).log" | tr '\n' ' ')"
      rc=1
    }
  done
  if [ "$rc" = 0 ]; then
    if ! "$bin" admin user add bench --data "$work/so-$id-1" "${args[@]}" --json >"$work/so-user.json" 2>"$work/so-admin.err"; then
      note "scale-out $id: cubby admin user add failed: $(cat "$work/so-admin.err" "$work/so-user.json" | head -c 300)"; rc=1
    elif ! "$bin" admin token bench --data "$work/so-$id-1" "${args[@]}" --json >"$work/so-token.json" 2>"$work/so-admin.err"; then
      note "scale-out $id: cubby admin token failed: $(cat "$work/so-admin.err" "$work/so-token.json" | head -c 300)"; rc=1
    fi
  fi
  local token=""
  if [ "$rc" = 0 ]; then
    token=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["access_token"])' "$work/so-token.json") ||
      { note "scale-out $id: no access_token in $(head -c 300 "$work/so-token.json")"; rc=1; }
  fi
  if [ "$rc" = 0 ] && [ "$nserv" -gt 1 ]; then
    port=$(free_port)
    so_nginx "$work/so-$id-nginx" "$port" "${ports[@]}" || rc=1
    url=http://127.0.0.1:$port
  else
    url=http://127.0.0.1:${ports[0]}
  fi
  if [ "$rc" = 0 ]; then
    CUBBY_TOKEN=$token python3 "$HERE/dbx.py" check "$url" || { note "scale-out $id: the token does not work at $url"; rc=1; }
  fi

  local -A cpu0=()
  # shellcheck disable=SC2034  # (snap is written through the reference)
  so_cpu_snapshot() { # fills the named assoc array with CPU seconds per process of this config
    local -n snap=$1
    local i
    for ((i = 0; i < nserv; i++)); do snap["cubby$((i + 1))"]=$(cpu_s "${pids[i]}"); done
    if [ -n "$so_s3_pid" ]; then snap["s3"]=$(cpu_s "$so_s3_pid"); fi
    if [ -n "$so_pg_pid" ]; then snap["pg"]=$(cpu_tree_s "$so_pg_pid"); fi
    if [ -n "$so_nginx_pid" ]; then snap["nginx"]=$(cpu_tree_s "$so_nginx_pid"); fi
  }
  local t0
  local pgdb=${metadata##*/} pg0=""
  if [ "$rc" = 0 ]; then
    so_cpu_snapshot cpu0
    [ -n "$metadata" ] && pg0=$(so_pg_counts "$pgdb")
    t0=$(now_ns)
    # a. 100 MiB up and down, RUNS times, each run new random content (local blocks skip a block
    #    they already hold, S3 blocks are always PUT: the same file each run would favour local disk)
    for run in $(seq 1 "$RUNS"); do
      head -c "$(( ${SIZE_MIB:-100} * 1048576 ))" /dev/urandom >"$work/so-large.bin"
      : >"$work/so-large.tsv"
      if ! RUNS=1 LARGE_FILE=$work/so-large.bin API=dropbox TOKEN=$token \
        "$PEERS/bench-large.sh" "$id" "$url" "$work/so-large.tsv"; then
        note "scale-out $id: bench-large.sh run $run failed (see its error above)"; rc=1; break
      fi
      ups+=("$(awk -F'\t' '$1 == "large-upload" { print $9 }' "$work/so-large.tsv")")
      downs+=("$(awk -F'\t' '$1 == "large-download" { print $9 }' "$work/so-large.tsv")")
    done
    rm -f "$work/so-large.bin"
    if [ "${#ups[@]}" -gt 0 ]; then
      result "$res" scaleout-large-upload "$id" "${SIZE_MIB:-100}MiB /2/files/upload, new content each run" MB/s "${ups[@]}"
      result "$res" scaleout-large-download "$id" "${SIZE_MIB:-100}MiB /2/files/download" MB/s "${downs[@]}"
    fi
    # b. small files, 16 clients; rows renamed scaleout-small-upload
    : >"$work/so-small.tsv"
    if CONCS=16 KEEP_FILES=1 API=dropbox TOKEN=$token "$PEERS/bench-small.sh" "$id" "$url" "$work/so-small.tsv"; then
      awk -F'\t' -v OFS='\t' '{ $1 = "scaleout-" $1; print }' "$work/so-small.tsv" >>"$res"
      local v nfiles
      if v=$(CUBBY_TOKEN=$token python3 "$HERE/dbx.py" verify-small "$url" cubby-bench-small- "${COUNT:-10000}"); then
        fact "scaleout_verify_$id" ok
      else
        fact "scaleout_verify_$id" bad
        note "scale-out $id: list_folder does not show every uploaded small file ($v)"
      fi
      read -r _ _ _ nfiles _ <<<"$v"
      [ -n "${nfiles:-}" ] && result "$res" scaleout-small-verify "$id" "files listed after the small uploads" files "$nfiles"
    else
      note "scale-out $id: bench-small.sh failed (see its error above)"; rc=1
    fi

    local -A cpu1=()
    so_cpu_snapshot cpu1
    local wall cpus="" k
    wall=$(secs_since "$t0")
    for k in cubby1:"server 1" cubby2:"server 2" nginx:nginx s3:"S3 server" pg:PostgreSQL; do
      if [ -z "${cpu0[${k%%:*}]:-}" ] || [ -z "${cpu1[${k%%:*}]:-}" ]; then continue; fi
      cpus+="${cpus:+, }${k#*:} $(awk -v a="${cpu0[${k%%:*}]}" -v b="${cpu1[${k%%:*}]}" 'BEGIN { printf "%.1f", b - a }') s"
    done
    note "scale-out $id: CPU (user+sys) over ${wall%.*} s of measurements: $cpus"
    if [ -n "$pg0" ]; then   # statistics reach pg_stat_database within ~1 s: let them settle
      sleep 2
      local -a a b
      read -r -a a <<<"$pg0"
      read -r -a b <<<"$(so_pg_counts "$pgdb")"
      if [ "${#a[@]}" = 5 ] && [ "${#b[@]}" = 5 ]; then
        local ups_n=$(( RUNS * ${COUNT:-10000} + RUNS ))
        note "scale-out $id: PostgreSQL during the measurements: $((b[0] - a[0])) commits (~$(awk -v n=$((b[0] - a[0])) -v u="$ups_n" 'BEGIN { printf "%.1f", n / u }') per upload; $ups_n uploads, $RUNS downloads, 1 listing), $((b[1] - a[1])) rollbacks, rows inserted $((b[2] - a[2])), updated $((b[3] - a[3])), deleted $((b[4] - a[4]))"
      fi
    fi
    if [ "$nserv" -gt 1 ]; then
      local split=""
      for ((i = 0; i < nserv; i++)); do split+="${split:+, }server $((i + 1)) $(so_requests "${ports[i]}")"; done
      note "scale-out $id: API requests answered: $split"
    fi
  fi

  # peak RSS of each server (and of nginx), then stop everything of this configuration
  for ((i = 0; i < nserv; i++)); do
    if kill -0 "${pids[i]}" 2>/dev/null; then
      result "$res" scaleout-rss "$id" "server $((i + 1)) peak RSS" MiB "$(( $(peak_rss_kb "${pids[i]}") / 1024 ))"
    else
      note "scale-out $id: server $((i + 1)) exited early: $(tail -n 3 "$out/scaleout-$id-$((i + 1)).log" | tr '\n' ' ')"; rc=1
    fi
  done
  if [ -n "$so_nginx_pid" ] && kill -0 "$so_nginx_pid" 2>/dev/null; then
    result "$res" scaleout-rss "$id" "nginx peak RSS (master + workers)" MiB "$(( $(peak_rss_kb "$so_nginx_pid") / 1024 ))"
  fi
  [ -n "$so_nginx_pid" ] && so_stop "$so_nginx_pid" nginx
  local st
  for ((i = 0; i < nserv; i++)); do
    so_stop "${pids[i]}" "$id server $((i + 1))"; st=$?
    [ "$st" = 0 ] || note "scale-out $id: server $((i + 1)) exit status $st after SIGTERM"
  done
  return "$rc"
}

scaleout_stage() {
  local want=${SCALEOUT_S3:-auto} id base pgdb backends=ok
  local configs=${SCALEOUT_CONFIGS:-sqlite-local pg-s3 pg-s3-x2-nginx}
  # shellcheck source=scripts/lib/services.sh
  . "$REPO/scripts/lib/services.sh"
  case " $configs " in
    *" pg-s3-x2-nginx "*)
      if ! command -v nginx >/dev/null; then
        log "installing nginx-light (Debian package) for the load balancer"
        { apt-get install -y -qq nginx-light || { apt-get update -qq && apt-get install -y -qq nginx-light; }; } \
          >"$out/nginx-install.log" 2>&1 </dev/null
        command -v nginx >/dev/null || note "scale-out: no nginx (apt-get install nginx-light failed)"
      fi ;;
  esac

  case " $configs " in
    *" pg-s3"*)
      log "starting PostgreSQL (fsync on)"
      if start_postgres on >"$work/pg-start.out" 2>&1; then
        so_pg_pid=$(head -n 1 "$services_tmp/pg/data/postmaster.pid" 2>/dev/null)
        fact scaleout_pg "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'), fsync on"
      else
        note "scale-out: PostgreSQL did not start: $(tail -n 3 "$work/pg-start.out" | tr '\n' ' ')"; backends=""
      fi
      if [ -n "$backends" ]; then
        case $want in
          s3s-fs) so_start_s3s_fs || backends="" ;;
          moto) so_start_moto || backends="" ;;
          *)
            if ! so_start_s3s_fs; then
              [ -n "$so_s3_pid" ] && so_stop "$so_s3_pid" s3s-fs
              so_s3_pid=""
              note "scale-out: s3s-fs unusable, falling back to moto"
              so_start_moto || backends=""
            fi ;;
        esac
      fi
      if [ -n "$backends" ]; then
        fact scaleout_s3 "$so_s3_name at $so_s3_endpoint, bucket $so_s3_bucket"
        log "S3 server: $so_s3_name at $so_s3_endpoint"
      fi ;;
  esac

  fact scaleout_configs "$configs"
  for id in $configs; do
    case $id in   # the table's label and block store of each row, even if it fails
      sqlite-local) fact "scaleout_label_$id" "SQLite + local disk, 1 server" ;;
      pg-s3) fact "scaleout_label_$id" "PostgreSQL + S3, 1 server" ;;
      pg-s3-x2-nginx) fact "scaleout_label_$id" "PostgreSQL + S3, 2 servers behind nginx" ;;
    esac
    case $id in
      sqlite-local) fact "scaleout_blocks_$id" "local disk" ;;
      pg-s3*) fact "scaleout_blocks_$id" "${so_s3_name:-none}" ;;
    esac
    case $id in
      sqlite-local)
        so_config "$id" 1 "" "" || failed+=("e:$id") ;;
      pg-s3 | pg-s3-x2-nginx)
        [ -n "$backends" ] || { failed+=("e:$id"); continue; }
        pgdb=cubby_bench_${id//-/_}
        if ! "$pg_bin/psql" "$CUBBY_TEST_PG_URL" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $pgdb" >"$work/psql.out" 2>&1; then
          note "scale-out $id: CREATE DATABASE failed: $(head -c 300 "$work/psql.out")"; failed+=("e:$id"); continue
        fi
        base="${CUBBY_TEST_PG_URL%/*}/$pgdb"
        if [ "$id" = pg-s3 ]; then
          so_config "$id" 1 "$base" \
            "s3://$so_s3_bucket/$id?endpoint=$so_s3_endpoint&region=us-east-1" || failed+=("e:$id")
        elif command -v nginx >/dev/null; then
          so_config "$id" 2 "$base" \
            "s3://$so_s3_bucket/$id?endpoint=$so_s3_endpoint&region=us-east-1" || failed+=("e:$id")
        else
          failed+=("e:$id")
        fi ;;
      *) note "scale-out: unknown configuration '$id' (SCALEOUT_CONFIGS)"; failed+=("e:$id") ;;
    esac
  done
}
