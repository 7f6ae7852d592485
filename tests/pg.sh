#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for octoha's tests.
#
#   tests/pg.sh start DIR PORT     create (if absent) and start a cluster in DIR,
#                                  listening only on 127.0.0.1:PORT, trust auth
#                                  for local TCP connections; waits until it
#                                  accepts connections
#   tests/pg.sh stop DIR           stop it (fast mode); no-op if not running
#   tests/pg.sh status DIR         exit 0 if running, 3 if not
#   tests/pg.sh createdb PORT NAME create database NAME (owner postgres)
#   tests/pg.sh dropdb PORT NAME   drop database NAME (if it exists)
#
# Layout of DIR: data/ (PGDATA), postgres.log (server log).  Unix sockets are
# disabled, so a system PostgreSQL on 5432 (or anything else) is not touched.
# initdb and pg_ctl refuse to run as root: as root they run as the `postgres`
# system user (runuser) and DIR is chown'ed to it; as any other user they run
# as that user.  Superuser in the cluster: `postgres`, no password.
set -euo pipefail

prog=$(basename "$0")
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}
note() { printf '%s: %s\n' "$prog" "$*" >&2; }

usage() {
	cat >&2 <<EOF
usage: $prog start DIR PORT
       $prog stop DIR
       $prog status DIR
       $prog createdb PORT NAME
       $prog dropdb PORT NAME
EOF
	exit 2
}

PG_USER=postgres # cluster superuser and, when we are root, the OS user

find_bindir() {
	local d cand
	if [ -n "${PG_BINDIR:-}" ]; then
		[ -x "$PG_BINDIR/initdb" ] || die "PG_BINDIR=$PG_BINDIR has no initdb"
		printf '%s\n' "$PG_BINDIR"
		return
	fi
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			printf '%s\n' "$d"
			return
		fi
	fi
	# Highest installed major version first.
	local ver
	for ver in $(for cand in /usr/lib/postgresql/*/bin; do
		[ -d "$cand" ] && basename "$(dirname "$cand")"
	done | sort -rn); do
		cand=/usr/lib/postgresql/$ver/bin
		if [ -x "$cand/initdb" ] && [ -x "$cand/pg_ctl" ]; then
			printf '%s\n' "$cand"
			return
		fi
	done
	die "no PostgreSQL server binaries found (pg_config --bindir, /usr/lib/postgresql/*/bin); install the 'postgresql' package"
}

# Run a command as the cluster's OS owner.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$PG_USER" -- "$@"
	else
		"$@"
	fi
}

check_port() {
	case $1 in
	'' | *[!0-9]*) die "PORT must be a number, got '$1'" ;;
	esac
	if [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
		die "PORT out of range: $1"
	fi
}

abs_dir() {
	mkdir -p -- "$1" || die "cannot create directory $1"
	(cd -- "$1" && pwd -P)
}

port_busy() {
	# true if something accepts TCP connections on 127.0.0.1:$1
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

is_running() { # DIR(abs) -> 0 running
	[ -f "$1/data/postmaster.pid" ] || return 1
	as_owner "$BINDIR/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

cmd_start() {
	[ $# -eq 2 ] || usage
	local dir port data log
	port=$2
	check_port "$port"
	dir=$(abs_dir "$1")
	data=$dir/data
	log=$dir/postgres.log

	if [ "$(id -u)" -eq 0 ]; then
		id "$PG_USER" >/dev/null 2>&1 || die "running as root but there is no '$PG_USER' system user to own the cluster"
		chown "$PG_USER:" "$dir" || die "cannot chown $dir to $PG_USER"
		if [ -d "$data" ]; then chown -R "$PG_USER:" "$data"; fi
		if [ -e "$log" ]; then chown "$PG_USER:" "$log"; fi
		runuser -u "$PG_USER" -- test -w "$dir" -a -x "$dir" ||
			die "user $PG_USER cannot write to $dir (a parent directory is not searchable by it?); use a directory such as /tmp/xyz with mode 755 parents"
	fi

	if is_running "$dir"; then
		# Already up (e.g. a second start): just make sure it is ready.
		local running_port
		running_port=$(sed -n 4p "$data/postmaster.pid" 2>/dev/null || true)
		if [ -n "$running_port" ] && [ "$running_port" != "$port" ]; then
			die "cluster in $dir is already running on port $running_port, not $port; stop it first"
		fi
		note "cluster in $dir is already running"
	else
		if [ ! -f "$data/PG_VERSION" ]; then
			if [ -e "$data" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
				die "$data exists, is not empty and is not a PostgreSQL cluster"
			fi
			note "initdb $data"
			as_owner "$BINDIR/initdb" -D "$data" -U "$PG_USER" --auth=trust \
				--encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
				tail -n 20 "$dir/initdb.log" >&2
				die "initdb failed (full log: $dir/initdb.log)"
			}
			# Throwaway settings: only TCP on loopback, no durability.
			cat >>"$data/postgresql.conf" <<'CONF'

# --- tests/pg.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
log_min_messages = warning
log_line_prefix = '%m [%p] '
CONF
			# Trust only loopback TCP (initdb's --auth=trust also adds ::1 and
			# local socket lines; sockets are off and we listen on 127.0.0.1).
			cat >"$data/pg_hba.conf" <<'HBA'
# tests/pg.sh: trust for local TCP connections only
host    all             all             127.0.0.1/32            trust
host    replication     all             127.0.0.1/32            trust
HBA
		fi
		if port_busy "$port"; then
			die "127.0.0.1:$port is already in use by another process; pick another port"
		fi
		# The port is passed at each start so a cluster can be restarted elsewhere.
		if ! as_owner "$BINDIR/pg_ctl" -D "$data" -l "$log" -w -t 60 \
			-o "-p $port -c listen_addresses=127.0.0.1" start >"$dir/pg_ctl.log" 2>&1; then
			cat "$dir/pg_ctl.log" >&2 || true
			tail -n 20 "$log" >&2 2>/dev/null || true
			die "PostgreSQL failed to start in $dir on 127.0.0.1:$port (server log: $log)"
		fi
	fi

	# Wait until it accepts connections on the TCP port (pg_ctl -w already did,
	# but with sockets off be explicit and check the port we were asked for).
	for _ in $(seq 1 300); do
		if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres; then
			note "PostgreSQL ready on 127.0.0.1:$port (dir $dir)"
			return 0
		fi
		if ! is_running "$dir"; then
			tail -n 20 "$log" >&2 2>/dev/null || true
			die "PostgreSQL in $dir exited while starting (server log: $log)"
		fi
		sleep 0.1
	done
	tail -n 20 "$log" >&2 2>/dev/null || true
	die "PostgreSQL in $dir does not accept connections on 127.0.0.1:$port after 30 s (is it running on another port?)"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir
	[ -d "$1" ] || die "no such directory: $1"
	dir=$(cd -- "$1" && pwd -P)
	[ -f "$dir/data/PG_VERSION" ] || die "$dir holds no cluster made by $prog (no data/PG_VERSION)"
	if ! is_running "$dir"; then
		note "cluster in $dir is not running"
		return 0
	fi
	as_owner "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >"$dir/pg_ctl.log" 2>&1 || {
		cat "$dir/pg_ctl.log" >&2 || true
		die "pg_ctl stop failed for $dir"
	}
	note "stopped cluster in $dir"
}

cmd_status() {
	[ $# -eq 1 ] || usage
	local dir
	[ -d "$1" ] || die "no such directory: $1"
	dir=$(cd -- "$1" && pwd -P)
	if is_running "$dir"; then
		echo "running"
		return 0
	fi
	echo "stopped"
	exit 3
}

valid_dbname() {
	case $1 in
	'' | *[!A-Za-z0-9_]*) die "database name must match [A-Za-z0-9_]+, got '$1'" ;;
	esac
	[ ${#1} -le 63 ] || die "database name longer than 63 characters: $1"
}

cmd_createdb() {
	[ $# -eq 2 ] || usage
	check_port "$1"
	valid_dbname "$2"
	"$BINDIR/createdb" -h 127.0.0.1 -p "$1" -U "$PG_USER" -E UTF8 -T template0 "$2" ||
		die "createdb $2 on 127.0.0.1:$1 failed"
}

cmd_dropdb() {
	[ $# -eq 2 ] || usage
	check_port "$1"
	valid_dbname "$2"
	"$BINDIR/dropdb" -h 127.0.0.1 -p "$1" -U "$PG_USER" --if-exists --force "$2" ||
		die "dropdb $2 on 127.0.0.1:$1 failed"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
start | stop | status | createdb | dropdb) ;;
-h | --help | help) usage ;;
*)
	printf '%s: unknown command: %s\n' "$prog" "$cmd" >&2
	usage
	;;
esac
BINDIR=$(find_bindir)
"cmd_$cmd" "$@"
