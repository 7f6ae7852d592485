#!/usr/bin/env bash
# Installs what is missing, builds octoha-server and runs one node on the
# embedded default: SQLite and storage folders under ./octoha-data, HTTP on
# 127.0.0.1:8080 (override with the OCTOHA_* variables, see
# `build/octoha-server run --help`).  Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
py=()
[ -x /usr/bin/python3 ] && py=(-DPython3_EXECUTABLE=/usr/bin/python3)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${py[@]}" >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
# Every call but the ping needs an API key.  On the first start of the
# embedded database, seed an Admin key and leave it (mode 0600) where the
# operator finds it; later starts ignore the bootstrap key (once per cluster).
data="${OCTOHA_DATA_DIR:-./octoha-data}"
keyfile="$data/first-admin-key"
if [ -z "${OCTOHA_DB:-}" ] && [ ! -e "$data/octoha.db" ] && [ -z "${OCTOHA_BOOTSTRAP_ADMIN_KEY:-}" ]; then
  mkdir -p "$data"
  (umask 077; printf 'API-%s\n' "$(LC_ALL=C tr -dc 'A-Z0-9' </dev/urandom | head -c 32)" >"$keyfile")
  export OCTOHA_BOOTSTRAP_ADMIN_KEY="$(cat "$keyfile")"
  echo "octoha: the first Admin API key is in $keyfile (send it as X-Octopus-ApiKey)" >&2
fi
exec build/octoha-server run "$@"
