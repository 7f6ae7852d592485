#!/usr/bin/env bash
# Installs what is missing, builds octoha three times (normal, Release, and
# with AddressSanitizer + UndefinedBehaviorSanitizer) and runs every test in
# the normal and sanitizer builds:
# unit tests, database tests on SQLite and on a PostgreSQL server this script
# starts, black-box tests of the real server binary, the OpenAPI lint and the
# format check.  Exits non-zero when anything fails.
#
# OCTOHA_TEST_DB=<ODBC connection string> additionally runs the database and
# integration suites against that database (e.g. a SQL Server elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh test

jobs=$(nproc 2>/dev/null || echo 2)
# Debian's python3 has the packages setup.sh installs (PyYAML, jsonschema);
# a python3 earlier on PATH (pyenv, venv) may not.
py=()
[ -x /usr/bin/python3 ] && py=(-DPython3_EXECUTABLE=/usr/bin/python3)
echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${py[@]}" >/dev/null
cmake --build build -j"$jobs"
echo "== build (Release, with the tests: -O2 brings warnings of its own)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release "${py[@]}" >/dev/null
cmake --build build-release -j"$jobs"
echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DOCTOHA_SANITIZE=ON "${py[@]}" >/dev/null
cmake --build build-asan -j"$jobs"
echo "== build (libFuzzer targets, clang)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DOCTOHA_FUZZ=ON -DBUILD_TESTING=OFF \
	"${py[@]}" >/dev/null
fuzzers=(fuzz_storage_paths fuzz_request_body fuzz_multipart fuzz_http_request)
cmake --build build-fuzz -j"$jobs" --target "${fuzzers[@]}"

# One PostgreSQL server for the C database tests; the integration tests
# start their own clusters.
pgdir=$(mktemp -d /tmp/octoha-pg.XXXXXX)
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { bash "$root/tests/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
trap cleanup EXIT
bash tests/pg.sh start "$pgdir" "$pgport"
bash tests/pg.sh createdb "$pgport" octoha_unit
bash tests/pg.sh createdb "$pgport" octoha_unit_asan
pg_cs() { echo "Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=$pgport;Database=$1;Uid=postgres;Pwd=;"; }

status=0
echo "== tests (RelWithDebInfo)"
OCTOHA_TEST_PG=$(pg_cs octoha_unit) ctest --test-dir build --output-on-failure || status=1

echo "== tests (ASan + UBSan)"
# Leaks inside the ODBC drivers and the driver manager are theirs, not ours.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
OCTOHA_TEST_PG=$(pg_cs octoha_unit_asan) ctest --test-dir build-asan --output-on-failure -E '^lint\.' || status=1

echo "== fuzz (libFuzzer, ${OCTOHA_FUZZ_SECONDS:=20} s per target, from tests/fuzz/corpus)"
for t in "${fuzzers[@]}"; do
	corpus=$(mktemp -d /tmp/octoha-fuzz.XXXXXX)
	cp tests/fuzz/corpus/"$t"/* "$corpus"/
	if build-fuzz/"$t" -max_total_time="$OCTOHA_FUZZ_SECONDS" -seed=1 -print_final_stats=1 \
		"$corpus" >"$corpus.log" 2>&1; then
		echo "$t: $(grep -m1 -o 'Done [0-9]* runs in [0-9]* second(s)' "$corpus.log")"
	else
		echo "$t FAILED:"
		tail -40 "$corpus.log"
		status=1
	fi
	rm -rf "$corpus" "$corpus.log"
done

exit $status
