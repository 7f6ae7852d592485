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
exec build/octoha-server run "$@"
