#!/usr/bin/env bash
# Installs what octoha needs on Debian 12 and builds civetweb from Debian's own
# source package with OpenSSL 3 linked in (Debian's binary libcivetweb 1.15
# dlopens OpenSSL through its 1.1 API table and crashes on the first TLS
# handshake).  Idempotent: it installs only what is missing and rebuilds
# civetweb only when its prefix is absent.
#
#   scripts/setup.sh build   compiler, libraries, ODBC drivers, civetweb
#   scripts/setup.sh test    the above plus PostgreSQL, HAProxy, wrk, curl,
#                            Node.js, the OpenAPI linter, Octopus's client,
#                            chromium and puppeteer-core for the browser tests
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-build}
deps=${OCTOHA_DEPS_DIR:-$here/.deps}
civetweb_prefix=$deps/civetweb

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

build_pkgs=(build-essential cmake pkg-config dpkg-dev ca-certificates
	libjansson-dev libcurl4-openssl-dev libssl-dev unixodbc-dev unixodbc
	libsqliteodbc odbc-postgresql tdsodbc libcmocka-dev python3 python3-yaml
	curl libzip-dev libexpat1-dev libcjose-dev)
# libclang-rt-14-dev holds libFuzzer and clang's sanitizer runtimes; clang only
# recommends it, and recommends are not installed here.
# chromium runs the status page's browser tests; python3-cryptography makes
# the keys of the tests' local OIDC issuer.
test_pkgs=(postgresql haproxy wrk nodejs npm clang libclang-rt-14-dev clang-format cppcheck
	python3-jsonschema openssl iproute2 procps sqlfluff chromium python3-cryptography sqlite3)

missing_pkgs() {
	local p
	for p in "$@"; do
		# A package counts as present when dpkg says it is installed, or,
		# for nodejs/npm, when the command is already on PATH (images ship
		# newer Node.js builds under other package names).
		case $p in
		nodejs) command -v node >/dev/null 2>&1 && continue ;;
		npm) command -v npm >/dev/null 2>&1 && continue ;;
		esac
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
	done
}

apt_updated=0
apt_install() {
	local want
	want=$(missing_pkgs "$@")
	[ -z "$want" ] && return 0
	if [ $apt_updated -eq 0 ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	log "installing: $(echo $want)"
	# shellcheck disable=SC2086
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $want >/dev/null
}

ensure_deb_src() {
	if apt-cache showsrc civetweb 2>/dev/null | grep -q '^Package: civetweb'; then
		return 0
	fi
	log "adding a deb-src entry for Debian 12 to fetch civetweb's source"
	as_root tee /etc/apt/sources.list.d/octoha-deb-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	as_root apt-get update -qq
	apt_updated=1
}

build_civetweb() {
	if [ -f "$civetweb_prefix/lib/libcivetweb.a" ] && [ -f "$civetweb_prefix/include/civetweb.h" ]; then
		return 0
	fi
	ensure_deb_src
	local work
	work=$(mktemp -d)
	log "fetching civetweb's Debian source package"
	(cd "$work" && apt-get source -qq civetweb >/dev/null 2>&1) || {
		log "apt-get source civetweb failed"
		exit 1
	}
	local src
	src=$(find "$work" -maxdepth 1 -type d -name 'civetweb-*' | head -n1)
	[ -n "$src" ] || {
		log "civetweb source not unpacked"
		exit 1
	}
	log "building civetweb (OpenSSL 3 API, linked) into $civetweb_prefix"
	# Debian's source drops upstream's Makefile and its CMake knows no 3.0
	# API switch, so the single translation unit is compiled directly.
	# NO_SSL_DL links OpenSSL instead of dlopening it; OPENSSL_API_3_0 selects
	# the 3.x API.  A static, position-independent library: the server and the
	# benchmark baseline use the very same civetweb.
	cc -c -O2 -g -fPIC -pthread -DOPENSSL_API_3_0 -DNO_SSL_DL -DUSE_IPV6 -DNO_CGI \
		-DLINUX -D_GNU_SOURCE -I"$src/include" -o "$work/civetweb.o" "$src/src/civetweb.c" \
		>"$work/build.log" 2>&1 || {
		tail -n 30 "$work/build.log" >&2
		exit 1
	}
	ar rcs "$work/libcivetweb.a" "$work/civetweb.o"
	mkdir -p "$civetweb_prefix/lib" "$civetweb_prefix/include"
	cp "$work/libcivetweb.a" "$civetweb_prefix/lib/"
	cp "$src/include/civetweb.h" "$civetweb_prefix/include/"
	(cd "$src" && dpkg-parsechangelog -S Version) >"$civetweb_prefix/VERSION" 2>/dev/null || true
	rm -rf "$work"
}

# Debian's odbcinst.ini turns on psqlODBC's CommLog, which writes every
# connection's traffic to /tmp/psqlodbc_*.log: noise at best, and a place
# secrets could leak to.  Turn it off.
quiet_psqlodbc() {
	if grep -q '^CommLog=1' /etc/odbcinst.ini 2>/dev/null; then
		as_root sed -i 's/^CommLog=1/CommLog=0/' /etc/odbcinst.ini
	fi
}

# npm_ci DIR WHAT: installs DIR's pinned packages (its package-lock.json).
npm_ci() {
	local dir=$1 what=$2
	log "installing $what (npm ci in ${dir#"$here"/})"
	# The registry is across the network: a failed attempt is retried, and
	# the last one's output is shown.
	local out attempt
	out=$(mktemp)
	for attempt in 1 2 3; do
		if (cd "$dir" && npm ci --no-audit --no-fund >"$out" 2>&1); then
			rm -f "$out"
			return 0
		fi
		log "npm ci failed (attempt $attempt of 3)"
		if [ "$attempt" -lt 3 ]; then
			sleep $((attempt * 5))
		fi
	done
	cat "$out" >&2
	rm -f "$out"
	return 1
}

# Octopus's official client, pinned in tests/client/package-lock.json, for
# tests/integration/test_octopus_client.py.
install_client_tests() {
	if [ -f "$here/tests/client/node_modules/@octopusdeploy/api-client/package.json" ]; then
		return 0
	fi
	npm_ci "$here/tests/client" "Octopus's client for the tests"
}

install_linter() {
	if [ -x "$here/tools/lint/node_modules/.bin/redocly" ]; then
		return 0
	fi
	npm_ci "$here/tools/lint" "the OpenAPI linter"
}

# puppeteer-core drives Debian's chromium; it downloads no browser.
install_browser_driver() {
	if [ -f "$here/tests/browser/node_modules/puppeteer-core/package.json" ]; then
		return 0
	fi
	npm_ci "$here/tests/browser" "the browser test driver"
}

case $mode in
build)
	apt_install "${build_pkgs[@]}"
	quiet_psqlodbc
	build_civetweb
	;;
test)
	apt_install "${build_pkgs[@]}" "${test_pkgs[@]}"
	quiet_psqlodbc
	build_civetweb
	install_linter
	install_client_tests
	install_browser_driver
	;;
*)
	echo "usage: $0 build|test" >&2
	exit 2
	;;
esac
