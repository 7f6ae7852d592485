#!/usr/bin/env bash
# Fails when a C file differs from what clang-format (with .clang-format)
# makes of it.  `tools/check-format.sh --fix` rewrites them in place.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || true)
[ -n "$files" ] || files=$(find lib api service tests bench -name '*.[ch]')
if [ "${1:-}" = "--fix" ]; then
	# shellcheck disable=SC2086
	clang-format -i $files
	exit 0
fi
bad=0
for f in $files; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (run tools/check-format.sh --fix)"
		bad=1
	fi
done
[ $bad -eq 0 ] && echo "format: all C files formatted"
exit $bad
