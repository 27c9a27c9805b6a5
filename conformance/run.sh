#!/usr/bin/env bash
# Run the Dropbox-SDK conformance suite against a cubby binary.
#   CUBBY_BIN   server binary (default: target/debug/cubby, relative to the repo root)
#   extra args  passed through to pytest
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

venv="$root/.venv"
req="$here/requirements.txt"
stamp="$venv/.conformance-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
fi

# The SDK's own integration suite (test_sdk_suite.py) ships in its sdist, not in the wheel:
# fetched once into the venv, checked against the sha256 PyPI publishes for it, unpacked.
sdk_sdist_sha256=e7b849555e2865eb306f90bae8d5c09dbe0d925885232660d92d0bea269e200d
sdk_dir="$venv/dropbox-sdist"
sdk_tar="$sdk_dir/dropbox-12.2.4.tar.gz"
sdk_sha() { sha256sum "$sdk_tar" 2>/dev/null | cut -d' ' -f1; }
if [ "$(sdk_sha)" != "$sdk_sdist_sha256" ]; then
    rm -rf "$sdk_dir"
    mkdir -p "$sdk_dir"
    "$venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: -d "$sdk_dir" dropbox==12.2.4
    if [ "$(sdk_sha)" != "$sdk_sdist_sha256" ]; then
        echo "dropbox-12.2.4.tar.gz does not have the pinned sha256 $sdk_sdist_sha256" >&2
        rm -rf "$sdk_dir"
        exit 1
    fi
fi
if [ ! -f "$sdk_dir/dropbox-12.2.4/test/integration/test_dropbox.py" ]; then
    "$venv/bin/python" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
        "$sdk_tar" "$sdk_dir"
fi
export CUBBY_DROPBOX_SDIST="$sdk_dir/dropbox-12.2.4"

# The official Dropbox JavaScript SDK (test_js_sdk.py), installed from the lockfile.
js="$here/js"
js_stamp="$js/node_modules/.conformance-package-lock.sha256"
js_want="$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$js_stamp" ] || [ "$(cat "$js_stamp")" != "$js_want" ]; then
    if ! command -v npm >/dev/null; then
        echo "npm (with node 20 or later) is needed for conformance/test_js_sdk.py" >&2
        exit 1
    fi
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$js_want" > "$js_stamp"
fi

bin="${CUBBY_BIN:-target/debug/cubby}"
case "$bin" in
    /*) ;;
    *) bin="$root/$bin" ;;
esac
export CUBBY_BIN="$bin"

# These override the SDK's pinned ca_certs inside requests.
unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE

# Run the whole suite unless the caller named test files or node ids.
target=conformance
for a in "$@"; do
    case "$a" in
        -*) ;;
        *) if [ -e "${a%%::*}" ]; then target=; fi ;;
    esac
done

exec "$venv/bin/python" -m pytest $target -q "$@"
