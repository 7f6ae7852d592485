"""Integration-test harness for octoha-server.

Used by the test_*.py files beside it (plain unittest, standard library plus
Debian's python3-yaml and python3-jsonschema).

What it gives:
  * free_port()                      a free TCP port on 127.0.0.1
  * server_bin()                     the binary (env OCTOHA_SERVER_BIN)
  * Node                             one `octoha-server run` process
  * run_cli(), spawn_cli()           other subcommands (database --upgrade, ...)
  * database selection               OCTOHA_TEST_DB, sqlite_db(), PgCluster,
                                     shared_pg(), cluster_db()
  * the OpenAPI checker              check_response(method, template, status, json)
  * API keys                         ADMIN_KEY (every node's bootstrap Admin key,
                                     sent by every request helper unless
                                     key=None or key="API-..." is given),
                                     create_key_cli(), key_headers()
  * OctohaTestCase                   unittest base class tying it together
  * parse_logfmt(), wait_until()

Environment knobs:
  OCTOHA_SERVER_BIN           path of octoha-server (CMake passes it)
  OCTOHA_TEST_DB              ODBC connection string of an external database;
                              every DB-backed test then uses it, and tests that
                              need an empty database skip
  OCTOHA_TEST_READY_TIMEOUT   seconds to wait for a node to be ready (30)
  OCTOHA_TEST_KEEP=1          keep the temp directories (logs, data) at exit
  OCTOHA_TEST_PG_DRIVER       ODBC driver for the PostgreSQL fixture
                              ("PostgreSQL Unicode"; or "PostgreSQL ANSI")

Run a file directly (python3 tests/integration/test_x.py [Class[.test]]);
it exits 0 on success, 1 on failure, 77 when everything was skipped.
"""

import atexit
import ctypes
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path
from typing import Any, NamedTuple, Optional

import yaml

try:
    import jsonschema
except ImportError:  # pragma: no cover - reported when the checker is used
    jsonschema = None

# --------------------------------------------------------------------------
# Paths and constants

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SPEC_PATH = REPO_ROOT / "openapi.yaml"
PG_SH = REPO_ROOT / "tests" / "pg.sh"

# ODBC driver names as registered in /etc/odbcinst.ini.  Switch the PostgreSQL
# one to "PostgreSQL ANSI" here to run everything through the ANSI driver.
PG_ODBC_DRIVER = os.environ.get("OCTOHA_TEST_PG_DRIVER", "PostgreSQL Unicode")
SQLITE_ODBC_DRIVER = "SQLite3"

TEST_DB = os.environ.get("OCTOHA_TEST_DB") or None
READY_TIMEOUT = float(os.environ.get("OCTOHA_TEST_READY_TIMEOUT", "30"))
KEEP_TMP = os.environ.get("OCTOHA_TEST_KEEP") == "1"

PING = "/api/octopusservernodes/ping"
NODES = "/api/octopusservernodes"
NODE_ID_PREFIX = "OctopusServerNodes-"
STORAGE_FOLDERS = ("Artifacts", "TaskLogs", "Packages", "Imports", "EventExports")

# The bootstrap Admin key every Node gets (OCTOHA_BOOTSTRAP_ADMIN_KEY) and
# every request helper sends in X-Octopus-ApiKey unless told otherwise:
# `key=None` sends no key, `key="API-..."` another one.  "API-" and 32
# characters of A-Z0-9, as the contract fixes it.
ADMIN_KEY = "API-7QK2M9X4TZ8R1WBN5HC3JD6FV0LPYAES"
API_KEY_HEADER = "X-Octopus-ApiKey"
API_KEY_RE = re.compile(r"^API-[A-Z0-9]{32}$")


class _DefaultKey:
    """Marker for "the helper's default key" (ADMIN_KEY, or the node's api_key)."""

    def __repr__(self):
        return "DEFAULT_KEY"


DEFAULT_KEY = _DefaultKey()


def key_headers(key, headers: Optional[dict] = None) -> dict:
    """headers plus X-Octopus-ApiKey: key (no key header when key is None).

    When headers already carry X-Octopus-ApiKey or Authorization, they are
    left as they are: the caller chose what to send.
    """
    out = dict(headers or {})
    if key is None or key is DEFAULT_KEY:
        return out
    if any(k.lower() in (API_KEY_HEADER.lower(), "authorization") for k in out):
        return out
    out[API_KEY_HEADER] = key
    return out


# ISO 8601 UTC with milliseconds, as the contract fixes it.
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")


def parse_timestamp(value: str) -> float:
    """A contract timestamp ("2026-01-02T03:04:05.678+00:00") as Unix seconds."""
    return datetime.datetime.fromisoformat(value).timestamp()


def node_id(name: str) -> str:
    return NODE_ID_PREFIX + name


def unique_name(prefix: str = "it") -> str:
    """A node name that is valid per the contract and unique across runs."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------
# Process-wide cleanup

_lock = threading.RLock()
_live_nodes = set()
_live_procs = set()
_pg_clusters = []
_tmp_root: Optional[Path] = None
_cleaned = False


def tmp_root() -> Path:
    """This process's temp directory (mode 755 so `postgres` can traverse it)."""
    global _tmp_root
    with _lock:
        if _tmp_root is None:
            _tmp_root = Path(tempfile.mkdtemp(prefix="octoha-it-"))
            os.chmod(_tmp_root, 0o755)
        return _tmp_root


def make_tmp_dir(prefix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=prefix + "-", dir=tmp_root()))
    os.chmod(d, 0o755)
    return d


def _cleanup_all() -> None:
    global _cleaned
    with _lock:
        if _cleaned:
            return
        _cleaned = True
        nodes = list(_live_nodes)
        procs = list(_live_procs)
        clusters = list(_pg_clusters)
    try:
        stop_nodes(nodes, grace=5.0)
    except Exception:  # noqa: BLE001 - best effort at exit
        pass
    for p in procs:
        try:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        except Exception:  # noqa: BLE001
            pass
    for c in clusters:
        try:
            c.stop(quiet=True)
        except Exception:  # noqa: BLE001
            pass
    if _tmp_root is not None:
        if KEEP_TMP:
            sys.stderr.write(f"harness: kept temp files in {_tmp_root}\n")
        else:
            shutil.rmtree(_tmp_root, ignore_errors=True)


atexit.register(_cleanup_all)


def _on_sigterm(signum, frame):  # pragma: no cover - only on external stop
    # unittest swallows SystemExit raised inside a test, so clean up directly.
    _cleanup_all()
    os._exit(128 + signum)


if threading.current_thread() is threading.main_thread():
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
    if signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGHUP, _on_sigterm)


def _preexec_die_with_parent():
    """Child side: get SIGKILL when the test process dies (Linux prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


def _preexec():
    # PDEATHSIG fires when the *thread* that forked exits, so use it only for
    # children started from the main thread (which lives as long as we do).
    if threading.current_thread() is threading.main_thread():
        return _preexec_die_with_parent
    return None


# --------------------------------------------------------------------------
# Ports, waiting, logfmt

_given_ports = set()


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and not handed out before.

    Ports come from 20000-32767, below Linux's ephemeral range, so outgoing
    connections of the tests themselves cannot take them meanwhile.
    """
    with _lock:
        for _ in range(500):
            p = random.randint(20000, 32767)
            if p not in _given_ports and _can_bind(p):
                _given_ports.add(p)
                return p
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                p = s.getsockname()[1]
            if p not in _given_ports:
                _given_ports.add(p)
                return p
    raise RuntimeError("no free TCP port on 127.0.0.1")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(fn, timeout: float, interval: float = 0.05, msg: str = ""):
    """Call fn() until it returns a truthy value; return it.

    Raises AssertionError (a test failure) after `timeout` seconds, with `msg`
    and the last value or exception.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: Optional[BaseException] = None
    while True:
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except (OSError, http.client.HTTPException) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last!r}"
            raise AssertionError(f"timed out after {timeout:.1f}s waiting: {msg} ({detail})")
        time.sleep(interval)


_LOGFMT_TOKEN = re.compile(r'\s*([^\s=]+)(?:=("(?:[^"\\]|\\.)*"|[^\s]*))?')


def parse_logfmt(line: str) -> dict:
    """Parse one logfmt line into a dict (values as strings, bare keys -> True)."""
    out = {}
    pos = 0
    line = line.rstrip("\n")
    while pos < len(line):
        m = _LOGFMT_TOKEN.match(line, pos)
        if not m or m.end() == pos:
            break
        key, val = m.group(1), m.group(2)
        if val is None:
            out[key] = True
        elif val.startswith('"') and len(val) >= 2:
            try:
                out[key] = json.loads(val)
            except ValueError:
                out[key] = val[1:-1]
        else:
            out[key] = val
        pos = m.end()
    return out


def log_records(text: str) -> list:
    return [parse_logfmt(l) for l in text.splitlines() if l.strip()]


# --------------------------------------------------------------------------
# The binary and its subcommands


def server_bin() -> str:
    """Path of octoha-server from OCTOHA_SERVER_BIN (else build*/ in the repo).

    Raises unittest.SkipTest when there is none at all, and an error when
    OCTOHA_SERVER_BIN names something that is not executable.
    """
    env = os.environ.get("OCTOHA_SERVER_BIN")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise RuntimeError(f"OCTOHA_SERVER_BIN={env} is not an executable file")
        return env
    cands = [REPO_ROOT / "build" / "octoha-server"] + sorted(REPO_ROOT.glob("build*/**/octoha-server"))
    for cand in cands:
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    raise unittest.SkipTest("octoha-server binary not found: set OCTOHA_SERVER_BIN to its path")


def child_env(octoha: Optional[dict] = None) -> dict:
    """The environment for a server process.

    Inherited OCTOHA_* variables are dropped so the caller's environment
    cannot leak configuration in; `octoha` adds variables (None removes one).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCTOHA_")}
    for k, v in (octoha or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run_cli(args, env: Optional[dict] = None, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """Run `octoha-server ARGS` to completion; text stdout/stderr captured."""
    if cwd is None:
        cwd = make_tmp_dir("cli")
    return subprocess.run(
        [server_bin(), *args],
        env=child_env(env),
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        preexec_fn=_preexec(),
    )


def spawn_cli(args, env: Optional[dict] = None, cwd=None) -> subprocess.Popen:
    """Start `octoha-server ARGS` without waiting (killed at exit if left)."""
    if cwd is None:
        cwd = make_tmp_dir("cli")
    p = subprocess.Popen(
        [server_bin(), *args],
        env=child_env(env),
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        preexec_fn=_preexec(),
    )
    with _lock:
        _live_procs.add(p)
    return p


_SCHEMA_VERSION_RE = re.compile(r"schema version\s*:?\s*(\d+)", re.IGNORECASE)


def parse_schema_version(text: str) -> Optional[int]:
    m = _SCHEMA_VERSION_RE.search(text or "")
    return int(m.group(1)) if m else None


def create_key_cli(name: str, role: str, env: Optional[dict] = None, args=(), timeout: float = 60):
    """`octoha-server admin --create-api-key --name NAME --role ROLE [ARGS]`.

    env: the OCTOHA_* settings naming the database (e.g. OCTOHA_DATA_DIR,
    OCTOHA_DB).  Returns (key or None, CompletedProcess): the key is the
    last line of stdout when that line is a well-formed key.
    """
    r = run_cli(["admin", "--create-api-key", "--name", name, "--role", role, *args], env, timeout=timeout)
    lines = (r.stdout or "").rstrip("\n").splitlines()
    key = lines[-1] if lines and API_KEY_RE.match(lines[-1]) else None
    return key, r


# --------------------------------------------------------------------------
# HTTP


class Response(NamedTuple):
    status: int
    headers: Any  # http.client.HTTPMessage (case-insensitive .get)
    body: bytes
    json: Any  # parsed JSON or None

    def header(self, name: str, default=None):
        return self.headers.get(name, default)

    def describe(self, limit: int = 600) -> str:
        return f"{self.status} {self.body[:limit]!r}"


def _maybe_json(body: bytes, headers) -> Any:
    if not body:
        return None
    ctype = (headers.get("Content-Type") or "").lower()
    stripped = body.lstrip()[:1]
    if "json" not in ctype and stripped not in (b"{", b"["):
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def http_request(
    scheme: str,
    port: int,
    method: str,
    path: str,
    body=None,
    headers: Optional[dict] = None,
    timeout: float = 15,
    host: str = "127.0.0.1",
    ssl_context: Optional[ssl.SSLContext] = None,
    key=DEFAULT_KEY,
) -> Response:
    """One request on a fresh connection.

    body: None (no body at all), bytes/str (sent as is), or a dict/list
    (JSON-encoded, Content-Type application/json unless given).
    key: sent as X-Octopus-ApiKey; ADMIN_KEY by default, None for no key
    (an X-Octopus-ApiKey or Authorization in headers wins).
    """
    hdrs = key_headers(ADMIN_KEY if key is DEFAULT_KEY else key, headers)
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode("utf-8")
        if not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
    elif isinstance(body, str):
        data = body.encode("utf-8")
    if scheme == "https":
        ctx = ssl_context or _unverified_ctx()
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return Response(resp.status, resp.headers, raw, _maybe_json(raw, resp.headers))
    finally:
        conn.close()


def _unverified_ctx() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --------------------------------------------------------------------------
# Node


class NodeStartError(AssertionError):
    """The node exited or did not become ready (a test failure)."""


class Node:
    """One `octoha-server run` process with its own data dir and port.

    Construct, then start(); or use OctohaTestCase.start_node().  The node's
    environment is exactly: OCTOHA_DATA_DIR, OCTOHA_LISTEN, OCTOHA_NODE_NAME,
    OCTOHA_BOOTSTRAP_ADMIN_KEY (ADMIN_KEY), OCTOHA_DB (when db is given),
    OCTOHA_LOG_LEVEL (when log_level is given), OCTOHA_TLS_CERT/KEY (when
    tls=(cert, key)), plus `env` (None removes a variable).  Inherited
    OCTOHA_* variables are not passed on.

    api_key: the key its request helpers send by default (ADMIN_KEY).
    """

    def __init__(
        self,
        name: Optional[str] = None,
        db: Optional[str] = None,
        env: Optional[dict] = None,
        args=(),
        data_dir=None,
        port: Optional[int] = None,
        tls=None,
        ca_file=None,
        log_level: Optional[str] = "debug",
        create_data_dir: bool = True,
        api_key: Optional[str] = ADMIN_KEY,
    ):
        self.api_key = api_key
        self.name = name if name is not None else unique_name("node")
        self.base = make_tmp_dir("node-" + self.name[:40])
        self.data_dir = Path(data_dir) if data_dir is not None else self.base / "data"
        if create_data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.db = db
        self.tls = tls
        self.ca_file = ca_file
        self.scheme = "https" if tls else "http"
        self.args = list(args)
        self.log_level = log_level
        self.extra_env = dict(env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.runs = 0
        self.stderr_path: Optional[Path] = None
        self.stdout_path: Optional[Path] = None
        self.returncode: Optional[int] = None

    # -- identity
    @property
    def id(self) -> str:
        return node_id(self.name)

    def url(self, path: str = "") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    @property
    def env(self) -> dict:
        e = {
            "OCTOHA_DATA_DIR": str(self.data_dir),
            "OCTOHA_LISTEN": f"127.0.0.1:{self.port}",
            "OCTOHA_NODE_NAME": self.name,
            "OCTOHA_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        }
        if self.db is not None:
            e["OCTOHA_DB"] = self.db
        if self.log_level is not None:
            e["OCTOHA_LOG_LEVEL"] = self.log_level
        if self.tls:
            e["OCTOHA_TLS_CERT"], e["OCTOHA_TLS_KEY"] = (str(x) for x in self.tls)
        e.update(self.extra_env)
        return {k: v for k, v in e.items() if v is not None}

    # -- lifecycle
    def start(self, wait: bool = True, timeout: Optional[float] = None) -> "Node":
        if self.running:
            raise RuntimeError(f"node {self.name} is already running")
        self.runs += 1
        self.stderr_path = self.base / f"stderr.{self.runs}.log"
        self.stdout_path = self.base / f"stdout.{self.runs}.log"
        self.returncode = None
        with open(self.stderr_path, "wb") as ferr, open(self.stdout_path, "wb") as fout:
            self.proc = subprocess.Popen(
                [server_bin(), "run", *self.args],
                env=child_env(self.env),
                cwd=str(self.base),
                stdin=subprocess.DEVNULL,
                stdout=fout,
                stderr=ferr,
                preexec_fn=_preexec(),
            )
        with _lock:
            _live_nodes.add(self)
        if wait:
            self.wait_ready(timeout)
        return self

    restart = start  # same name, port, data dir, db and environment

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def state(self) -> str:
        """'running', 'exited with N' or 'not started' (for messages)."""
        if self.proc is None:
            return "not started"
        rc = self.proc.poll()
        return "running" if rc is None else f"exited with {rc}"

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Wait for `msg=ready` on stderr, then for ping to answer 200 or 418."""
        timeout = READY_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while "msg=ready" not in self.log:
            rc = self.proc.poll()
            if rc is not None:
                self._reap(rc)
                raise NodeStartError(f"node {self.name} exited with {rc} before it was ready\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise NodeStartError(f"node {self.name} wrote no msg=ready within {timeout:.0f}s\n{self.log_tail()}")
            time.sleep(0.02)
        last = None
        while True:
            try:
                r = self.request("GET", PING, timeout=2, key=None)  # as a load balancer: no key
                if r.status in (200, 418):
                    return
                last = r.describe()
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            rc = self.proc.poll()
            if rc is not None:
                self._reap(rc)
                raise NodeStartError(f"node {self.name} exited with {rc} after msg=ready\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"node {self.name}: ping not 200/418 within {timeout:.0f}s (last: {last})\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _reap(self, rc: int) -> int:
        self.returncode = rc
        with _lock:
            _live_nodes.discard(self)
        return rc

    def wait_exit(self, timeout: float) -> Optional[int]:
        """Exit code once the process has exited, or None if still running."""
        if self.proc is None:
            return self.returncode
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self._reap(rc)

    def terminate(self, timeout: float = 20) -> Optional[int]:
        """SIGTERM and wait: the exit code, or None if it had to be SIGKILLed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
            return None
        return rc

    def kill(self) -> Optional[int]:
        """SIGKILL and wait; the exit code (-9 if it was running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        return self._reap(self.proc.wait(10))

    def cleanup(self, grace: float = 5.0) -> None:
        """Stop the process if it is still running: SIGTERM, then SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self._reap(self.proc.returncode)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -- output
    @property
    def log(self) -> str:
        """This run's stderr so far."""
        if self.stderr_path is None or not self.stderr_path.exists():
            return ""
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        if self.stdout_path is None or not self.stdout_path.exists():
            return ""
        return self.stdout_path.read_text(errors="replace")

    def all_output(self) -> str:
        """stdout and stderr of every run of this node so far."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.base.glob("std*.log")))

    def log_tail(self, lines: int = 40) -> str:
        tail = self.log.splitlines()[-lines:]
        return f"--- stderr of node {self.name} ({self.stderr_path}) ---\n" + "\n".join(tail)

    # -- HTTP
    def ssl_context(self) -> Optional[ssl.SSLContext]:
        if self.scheme != "https":
            return None
        if self.ca_file:
            return ssl.create_default_context(cafile=str(self.ca_file))
        return _unverified_ctx()

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 15,
                key=DEFAULT_KEY) -> Response:
        """key: X-Octopus-ApiKey to send; the node's api_key by default, None for none."""
        return http_request(
            self.scheme, self.port, method, path, body, headers, timeout, ssl_context=self.ssl_context(),
            key=self.api_key if key is DEFAULT_KEY else key,
        )

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def ping(self, timeout: float = 5, key=DEFAULT_KEY) -> Response:
        return self.request("GET", PING, timeout=timeout, key=key)

    def __repr__(self):
        return f"<Node {self.name} {self.url()} pid={self.pid}>"


def stop_nodes(nodes, grace: float = 10.0) -> None:
    """SIGTERM every running node at once, wait for all, SIGKILL stragglers."""
    running = [n for n in nodes if n.running]
    for n in running:
        try:
            n.proc.send_signal(signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    for n in running:
        if n.wait_exit(max(0.0, deadline - time.monotonic())) is None:
            n.kill()
    for n in nodes:
        n.cleanup()


# --------------------------------------------------------------------------
# Databases


def sqlite_db(tmpdir) -> str:
    """An ODBC connection string for a SQLite file in tmpdir."""
    return f"Driver={SQLITE_ODBC_DRIVER};Database={Path(tmpdir) / 'octoha.db'}"


def pg_conn_str(port: int, database: str, driver: Optional[str] = None) -> str:
    return (
        f"Driver={driver or PG_ODBC_DRIVER};Server=127.0.0.1;Port={port};"
        f"Database={database};Uid=postgres;Pwd=;"
    )


def postgres_available() -> Optional[str]:
    """None if pg.sh can run a cluster here, else the reason it cannot."""
    if not PG_SH.exists():
        return f"{PG_SH} is missing"
    bindirs = []
    if shutil.which("pg_config"):
        try:
            bindirs.append(
                subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
            )
        except (OSError, subprocess.SubprocessError):
            pass
    bindirs += sorted(str(p) for p in Path("/usr/lib/postgresql").glob("*/bin"))
    if not any(b and os.access(os.path.join(b, "initdb"), os.X_OK) for b in bindirs):
        return "PostgreSQL server binaries not installed (no initdb); install the 'postgresql' package"
    return None


def require_postgres(empty_because: Optional[str] = None) -> None:
    """For setUpModule: skips the module unless its tests have a database
    for several nodes, OCTOHA_TEST_DB or PostgreSQL clusters started here.
    With empty_because (why the tests need an empty database), OCTOHA_TEST_DB
    does not do and the module is skipped when it is set."""
    if TEST_DB:
        if empty_because:
            raise unittest.SkipTest(f"{empty_because}: needs an empty database, but OCTOHA_TEST_DB is set")
        return
    reason = postgres_available()
    if reason:
        raise unittest.SkipTest(reason)


class PgCluster:
    """A throwaway PostgreSQL cluster run through tests/pg.sh."""

    def __init__(self, port: Optional[int] = None, directory=None):
        self.port = port or free_port()
        self.dir = Path(directory) if directory else make_tmp_dir("pg") / "cluster"
        self.started = False
        self._db_seq = 0

    def _pg_sh(self, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(PG_SH), *map(str, args)], capture_output=True, text=True, timeout=timeout
        )

    def start(self) -> "PgCluster":
        r = self._pg_sh("start", self.dir, self.port)
        if r.returncode != 0:
            raise RuntimeError(f"tests/pg.sh start {self.dir} {self.port} failed ({r.returncode}):\n{r.stderr}")
        self.started = True
        with _lock:
            if self not in _pg_clusters:
                _pg_clusters.append(self)
        return self

    def stop(self, quiet: bool = False) -> None:
        if not (self.dir / "data" / "PG_VERSION").exists():
            return
        r = self._pg_sh("stop", self.dir)
        if r.returncode != 0 and not quiet:
            raise RuntimeError(f"tests/pg.sh stop {self.dir} failed ({r.returncode}):\n{r.stderr}")
        self.started = False

    def createdb(self, name: Optional[str] = None) -> str:
        if name is None:
            self._db_seq += 1
            name = f"octoha_t{os.getpid()}_{self._db_seq}_{uuid.uuid4().hex[:6]}"
        r = self._pg_sh("createdb", self.port, name)
        if r.returncode != 0:
            raise RuntimeError(f"tests/pg.sh createdb {self.port} {name} failed:\n{r.stderr}")
        return name

    def conn_str(self, database: str, driver: Optional[str] = None) -> str:
        return pg_conn_str(self.port, database, driver)

    def fresh_db(self) -> str:
        """Create a new empty database; return its ODBC connection string."""
        return self.conn_str(self.createdb())

    def psql(self, sql: str, database: str = "postgres") -> str:
        r = subprocess.run(
            ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=60,
        )
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout

    @property
    def log(self) -> str:
        p = self.dir / "postgres.log"
        try:
            return p.read_text(errors="replace")
        except OSError:
            return ""


_shared_pg: Optional[PgCluster] = None


def shared_pg() -> PgCluster:
    """The one PostgreSQL cluster of this test process (started on first use)."""
    global _shared_pg
    with _lock:
        if _shared_pg is None:
            reason = postgres_available()
            if reason:
                raise unittest.SkipTest(reason)
            _shared_pg = PgCluster().start()
        return _shared_pg


def fresh_pg_db() -> str:
    return shared_pg().fresh_db()


def cluster_db(testcase: Optional[unittest.TestCase] = None, need_empty: bool = False) -> str:
    """The database for a multi-node test.

    OCTOHA_TEST_DB when set (a test needing an empty database then skips);
    otherwise a fresh database in this process's PostgreSQL cluster.
    """
    if TEST_DB:
        if need_empty:
            msg = "needs an empty database, but OCTOHA_TEST_DB is set (shared external database)"
            if testcase is not None:
                testcase.skipTest(msg)
            raise unittest.SkipTest(msg)
        return TEST_DB
    return fresh_pg_db()


def conn_field(connstr: str, name: str) -> Optional[str]:
    """The value of field NAME (case-insensitive) in an ODBC connection string."""
    for part in connstr.split(";"):
        k, _, v = part.partition("=")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def psql_spawn(connstr: str, sql: str) -> subprocess.Popen:
    """Runs SQL (a script: it may hold locks and sleep) with psql against the
    PostgreSQL database of CONNSTR, in the background; collect it with
    communicate()."""
    p = subprocess.Popen(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-p", conn_field(connstr, "Port") or "5432", "-U", conn_field(connstr, "Uid") or "postgres",
         "-d", conn_field(connstr, "Database") or "postgres"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    p.stdin.write(sql)
    p.stdin.close()
    p.stdin = None  # communicate() must not flush a closed pipe
    return p


def psql_db(connstr: str, sql: str) -> str:
    """Runs SQL with psql against the PostgreSQL database of CONNSTR; returns its output."""
    p = psql_spawn(connstr, sql)
    out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"psql failed: {err}")
    return out


def default_db(tmpdir) -> str:
    """The database for a single-node test: OCTOHA_TEST_DB or SQLite in tmpdir."""
    return TEST_DB or sqlite_db(tmpdir)


# --------------------------------------------------------------------------
# OpenAPI: load, resolve, convert to JSON Schema, check responses


class SpecError(AssertionError):
    """A response does not match openapi.yaml (a test failure)."""


def _json_pointer(root, ref: str):
    if not ref.startswith("#"):
        raise SpecError(f"only local $refs are supported, got {ref!r}")
    node = root
    for part in ref[1:].split("/")[1:] if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise SpecError(f"unresolvable $ref {ref!r}")
    return node


def deref(obj, root):
    """Follow a chain of $refs at the top of obj only (schemas inside stay)."""
    seen = set()
    while isinstance(obj, dict) and isinstance(obj.get("$ref"), str):
        ref = obj["$ref"]
        if ref in seen:
            raise SpecError(f"$ref loop at {ref!r}")
        seen.add(ref)
        obj = _json_pointer(root, ref)
    return obj


def resolve_refs(obj, root, _stack=()):
    """Inline every local $ref (non-schema objects too); cycles become {}."""
    if isinstance(obj, dict):
        if "$ref" in obj and isinstance(obj["$ref"], str):
            ref = obj["$ref"]
            if ref in _stack:
                return {}
            return resolve_refs(_json_pointer(root, ref), root, _stack + (ref,))
        return {k: resolve_refs(v, root, _stack) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve_refs(v, root, _stack) for v in obj]
    return obj


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("additionalProperties", "not", "contains", "propertyNames", "additionalItems",
               "if", "then", "else", "unevaluatedProperties", "unevaluatedItems")
_OAS_ONLY = {"nullable", "discriminator", "xml", "externalDocs", "example", "deprecated"}


def to_json_schema(schema, root, openapi_version: str = "3.0", _stack=()):
    """Convert an OpenAPI Schema Object to JSON Schema with refs inlined.

    For OpenAPI 3.0: `nullable: true` adds "null" to the type (and None to an
    enum), boolean exclusiveMinimum/Maximum become draft-7 numbers, and
    OpenAPI-only keywords and x- extensions are dropped.
    """
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise SpecError(f"schema is not an object: {schema!r}")
    is30 = openapi_version.startswith("3.0")
    if "$ref" in schema and isinstance(schema["$ref"], str):
        ref = schema["$ref"]
        if _stack.count(ref) >= 2:
            return {}  # recursive schema: unrolled twice, accept anything below
        out = to_json_schema(_json_pointer(root, ref), root, openapi_version, _stack + (ref,))
        # OpenAPI 3.0 ignores siblings of $ref, but `nullable: true` next to a
        # $ref is a common way to write "this or null": honour it.
        if is30 and schema.get("nullable") is True:
            out = {"anyOf": [out, {"type": "null"}]}
        return out
    out = {}
    for k, v in schema.items():
        if k.startswith("x-") or (is30 and k in _OAS_ONLY):
            continue
        if k in _SCHEMA_MAPS and isinstance(v, dict):
            out[k] = {pk: to_json_schema(pv, root, openapi_version, _stack) for pk, pv in v.items()}
        elif k in _SCHEMA_LISTS and isinstance(v, list):
            out[k] = [to_json_schema(s, root, openapi_version, _stack) for s in v]
        elif k == "items":
            if isinstance(v, list):
                out[k] = [to_json_schema(s, root, openapi_version, _stack) for s in v]
            else:
                out[k] = to_json_schema(v, root, openapi_version, _stack)
        elif k in _SCHEMA_ONE and isinstance(v, (dict, bool)):
            out[k] = to_json_schema(v, root, openapi_version, _stack)
        else:
            out[k] = v
    if is30:
        for bound, excl in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if out.get(excl) is True and bound in out:
                out[excl] = out.pop(bound)
            elif out.get(excl) is False:
                del out[excl]
        if schema.get("nullable") is True:
            t = out.get("type")
            if isinstance(t, str):
                out["type"] = [t, "null"]
            elif isinstance(t, list) and "null" not in t:
                out["type"] = t + ["null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
            if t is None:
                out = {"anyOf": [out, {"type": "null"}]}
    return out


def _format_checker():
    fc = jsonschema.FormatChecker(formats=())

    @fc.checks("date-time", raises=ValueError)
    def _dt(value):
        if not isinstance(value, str):
            return True
        if not re.match(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", value):
            raise ValueError(f"not an RFC 3339 date-time: {value!r}")
        v = value.replace("z", "Z").replace("t", "T")
        if v.endswith("Z"):
            v = v[:-1] + "+00:00"
        frac = re.search(r"\.(\d+)", v)
        if frac and len(frac.group(1)) > 6:  # fromisoformat takes at most 6 digits
            v = v.replace(frac.group(0), "." + frac.group(1)[:6])
        datetime.datetime.fromisoformat(v)
        return True

    @fc.checks("int32")
    def _i32(value):
        return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31

    @fc.checks("int64")
    def _i64(value):
        return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63

    return fc


def _template_regex(template: str):
    parts = re.split(r"(\{[^}/]+\})", template)
    rx = "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts)
    return re.compile("^" + rx + "$")


class SpecChecker:
    """Checks real responses against the responses openapi.yaml declares."""

    def __init__(self, spec: dict):
        if jsonschema is None:
            raise RuntimeError("python jsonschema is missing: apt-get install python3-jsonschema")
        self.spec = spec
        self.version = str(spec.get("openapi", "3.0.0"))
        if not self.version.startswith("3."):
            raise SpecError(f"not an OpenAPI 3 document (openapi: {self.version!r})")
        self.paths = spec.get("paths") or {}
        self._validator_cls = (
            jsonschema.Draft7Validator
            if self.version.startswith("3.0")
            else getattr(jsonschema, "Draft202012Validator", jsonschema.Draft7Validator)
        )
        self._formats = _format_checker()
        # Server URL path prefix (e.g. servers: [{url: /api}]) for matching.
        self.prefixes = [""]
        for s in spec.get("servers") or []:
            url = str(s.get("url", ""))
            m = re.match(r"^(?:[a-z]+://[^/]+)?(/.*?)/?$", url)
            if m and m.group(1) not in ("", "/"):
                self.prefixes.append(m.group(1))

    # -- lookup
    def template_key(self, path_template: str) -> str:
        for pre in self.prefixes:
            if pre and not path_template.startswith(pre):
                continue
            cand = path_template[len(pre):] if pre else path_template
            if cand in self.paths:
                return cand
        raise SpecError(f"path {path_template!r} is not in openapi.yaml (paths: {sorted(self.paths)})")

    def match_template(self, path: str) -> Optional[str]:
        """The spec template a concrete path (query ignored) falls under, or None.

        Literal templates win over ones with parameters.
        """
        path = path.split("?", 1)[0]
        found = []
        for pre in self.prefixes:
            if pre and not path.startswith(pre):
                continue
            rest = path[len(pre):] if pre else path
            for t in self.paths:
                if _template_regex(t).match(rest):
                    found.append((t.count("{"), pre + t))
        return min(found)[1] if found else None

    def operation(self, method: str, path_template: str) -> dict:
        item = deref(self.paths[self.template_key(path_template)], self.spec)
        op = item.get(method.lower())
        if op is None:
            methods = [m for m in item if m in ("get", "put", "post", "delete", "patch", "head", "options", "trace")]
            raise SpecError(f"{method.upper()} {path_template} is not in openapi.yaml (declared: {methods})")
        return op

    def declared_statuses(self, method: str, path_template: str) -> list:
        return [str(k) for k in (self.operation(method, path_template).get("responses") or {})]

    def response(self, method: str, path_template: str, status: int) -> dict:
        responses = {str(k).upper(): v for k, v in (self.operation(method, path_template).get("responses") or {}).items()}
        for key in (str(status), f"{status // 100}XX"):
            if key in responses:
                return deref(responses[key], self.spec)
        raise SpecError(
            f"{method.upper()} {path_template} answered {status}, which openapi.yaml does not declare "
            f"(declared: {sorted(responses)}; a 'default' response does not count)"
        )

    def response_schema(self, method: str, path_template: str, status: int, content_type: Optional[str] = None):
        """(media type, JSON Schema) declared for that response; (None, None) if it has no content."""
        content = self.response(method, path_template, status).get("content") or {}
        if not content:
            return None, None
        media = None
        if content_type:
            ct = content_type.split(";", 1)[0].strip().lower()
            for m in content:
                if m.lower() == ct:
                    media = m
                    break
            if media is None:
                for m in content:
                    ml = m.lower()
                    if ml == "*/*" or (ml.endswith("/*") and ct.startswith(ml[:-1])):
                        media = m
                        break
            if media is None:
                raise SpecError(
                    f"{method.upper()} {path_template} {status}: Content-Type {content_type!r} not declared "
                    f"(declared: {sorted(content)})"
                )
        else:
            media = "application/json" if "application/json" in content else next(
                (m for m in content if "json" in m.lower()), next(iter(content))
            )
        schema = (deref(content[media], self.spec) or {}).get("schema")
        if schema is None:
            return media, None
        return media, to_json_schema(schema, self.spec, self.version)

    def validate(self, schema: dict, instance, what: str) -> None:
        v = self._validator_cls(schema, format_checker=self._formats)
        errors = sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            lines = []
            for e in errors[:10]:
                loc = "/".join(str(p) for p in e.absolute_path) or "(root)"
                lines.append(f"  at {loc}: {e.message}")
            more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
            raise SpecError(
                f"{what} does not match openapi.yaml:\n" + "\n".join(lines) + more
                + f"\n  body: {json.dumps(instance)[:800]}"
            )

    def check_response(self, method: str, path_template: str, status: int, body_json, content_type=None) -> None:
        what = f"{method.upper()} {path_template} {status}"
        media, schema = self.response_schema(method, path_template, status, content_type)
        if media is None:
            if body_json is not None:
                raise SpecError(f"{what}: openapi.yaml declares no body, but the response has JSON")
            return
        if body_json is None:
            if "json" in media.lower():
                raise SpecError(f"{what}: openapi.yaml declares a {media} body, but the response has no JSON")
            return
        if schema is not None:
            self.validate(schema, body_json, what)

    def error_schema(self) -> Optional[dict]:
        """JSON Schema of the component with ErrorMessage/Errors/Code, if any."""
        for name, s in ((self.spec.get("components") or {}).get("schemas") or {}).items():
            conv = to_json_schema(s, self.spec, self.version)
            props = conv.get("properties") or {}
            if {"ErrorMessage", "Errors", "Code"} <= set(props):
                return conv
        return None


_checker: Optional[SpecChecker] = None


def load_spec(path=SPEC_PATH) -> dict:
    p = Path(path)
    if not p.exists():
        raise SpecError(f"{p} does not exist: cannot check responses against the spec")
    with open(p, encoding="utf-8") as f:
        return yaml.safe_load(f)


def spec_checker() -> SpecChecker:
    global _checker
    with _lock:
        if _checker is None:
            _checker = SpecChecker(load_spec())
        return _checker


def check_response(method: str, path_template: str, status: int, json_body, content_type=None) -> None:
    """Validate a response body against openapi.yaml; SpecError (a failure) if not.

    Fails too when `status` is not declared for that operation.
    """
    spec_checker().check_response(method, path_template, status, json_body, content_type)


# --------------------------------------------------------------------------
# unittest glue

ERROR_CODES = {
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "InvalidJson": 400,
    "ValidationFailed": 400,
    "PayloadTooLarge": 413,
    "UnsupportedMediaType": 415,
    "UriTooLong": 414,
    "NodeIsOnline": 409,
    "DatabaseUnavailable": 503,
    "ShuttingDown": 503,
    "InternalError": 500,
    "ApiKeyMissing": 401,
    "ApiKeyInvalid": 401,
    "RoleNotAllowed": 403,
    "ApiKeyInQueryString": 400,
    "BadRequest": 400,
    "HttpVersionNotSupported": 505,
    "TooManyConnections": 503,
}


class OctohaTestCase(unittest.TestCase):
    """Base class: node start with cleanup, spec-checked API calls, asserts."""

    maxDiff = 4000

    # -- nodes
    def start_node(self, wait: bool = True, timeout: Optional[float] = None, **kw) -> Node:
        """Start a node that is stopped (SIGTERM, then SIGKILL) when the test ends."""
        node = Node(**kw)
        self.track(node)
        node.start(wait=wait, timeout=timeout)
        return node

    def track(self, node: Node) -> Node:
        """Stop `node` at the end of the test, together with the test's other nodes."""
        nodes = self.__dict__.setdefault("_octoha_nodes", None)
        if nodes is None:
            nodes = self._octoha_nodes = []
            self.addCleanup(stop_nodes, nodes)
        nodes.append(node)
        return node

    @classmethod
    def start_class_node(cls, wait: bool = True, **kw) -> Node:
        """Start a node shared by the class's tests, stopped after the last one."""
        node = Node(**kw)
        cls.addClassCleanup(node.cleanup)
        node.start(wait=wait)
        return node

    def expect_exit(self, node: Node, code: int, needle: Optional[str] = None, timeout: float = 30) -> None:
        """Assert that a started node exits with `code` (and says `needle` on stderr)."""
        rc = node.wait_exit(timeout)
        if rc is None:
            node.kill()
            self.fail(f"node {node.name} still running after {timeout}s; expected exit {code}\n{node.log_tail()}")
        self.assertEqual(rc, code, f"node {node.name} exit code\n{node.log_tail()}")
        if needle is not None:
            self.assertIn(needle.lower(), node.log.lower(), f"stderr of {node.name} should mention {needle!r}\n{node.log_tail()}")

    # -- HTTP
    def api(self, node: Node, method: str, path: str, expect=None, template=None,
            body=None, headers=None, timeout: float = 15, check_spec: bool = True,
            key=DEFAULT_KEY) -> Response:
        """Make a request; assert the status (int or tuple); check JSON against the spec.

        key: the X-Octopus-ApiKey sent (the node's api_key, ADMIN_KEY, by
        default; None sends none).

        The spec template is found from the path when not given; a response
        to a path the spec does not know (an unknown route) is checked against
        the spec's error schema.  Error statuses get the error-shape check.
        """
        try:
            r = node.request(method, path, body=body, headers=headers, timeout=timeout, key=key)
        except (OSError, http.client.HTTPException) as e:
            raise AssertionError(f"{method} {path} to node {node.name} ({node.state}) failed: {e!r}\n{node.log_tail()}") from e
        if expect is not None:
            allowed = expect if isinstance(expect, (tuple, list, set)) else (expect,)
            self.assertIn(r.status, allowed, f"{method} {path}: status {r.status}, expected {expect}; body {r.body[:600]!r}")
        # Ping's 418/503 (draining, database down, shutting down) carry the
        # ping body; every other 4xx/5xx carries the error body.
        ping_verdict = path.split("?", 1)[0] == PING and r.status in (418, 503)
        if r.status >= 400 and not ping_verdict:
            self.assert_error_shape(r, f"{method} {path}")
        if check_spec and r.json is not None:
            self.check_spec(method, path, r, template)
        return r

    def check_spec(self, method: str, path: str, r: Response, template=None) -> None:
        """template: a spec path, None (find it from the path) or False (check
        an error against the spec's error schema only, for errors raised
        before routing such as 413/414/415)."""
        checker = spec_checker()
        if template is False:
            template = None
        elif template is None:
            template = checker.match_template(path)
        ctype = r.header("Content-Type")
        if template is not None:
            try:
                checker.operation(method, template)
            except SpecError:
                if r.status == 405:  # the method is not in the spec: that is the point
                    template = None
                else:
                    raise
        if template is not None:
            checker.check_response(method, template, r.status, r.json, ctype)
        elif r.status >= 400:
            schema = checker.error_schema()
            self.assertIsNotNone(schema, "openapi.yaml has no error schema (ErrorMessage/Errors/Code)")
            checker.validate(schema, r.json, f"{method} {path} {r.status} (error schema)")
        else:
            self.fail(f"{method} {path} answered {r.status} but the path is not in openapi.yaml")

    def assert_error_shape(self, r: Response, what: str = "") -> None:
        self.assertTrue(
            (r.header("Content-Type") or "").lower().startswith("application/json"),
            f"{what}: error {r.status} Content-Type should be application/json, got {r.header('Content-Type')!r}",
        )
        j = r.json
        self.assertIsInstance(j, dict, f"{what}: error {r.status} body should be a JSON object: {r.body[:300]!r}")
        self.assertIsInstance(j.get("ErrorMessage"), str, f"{what}: ErrorMessage should be a string: {j}")
        self.assertTrue(j["ErrorMessage"], f"{what}: ErrorMessage should not be empty: {j}")
        self.assertIsInstance(j.get("Errors"), list, f"{what}: Errors should be a list: {j}")
        for e in j["Errors"]:
            self.assertIsInstance(e, str, f"{what}: every Errors item should be a string: {j}")
        self.assertIsInstance(j.get("Code"), str, f"{what}: Code should be a string: {j}")
        if j["Code"] in ERROR_CODES:
            self.assertEqual(ERROR_CODES[j["Code"]], r.status, f"{what}: Code {j['Code']} goes with status {ERROR_CODES[j['Code']]}: {j}")
        if "Field" in j:
            self.assertIsInstance(j["Field"], str, f"{what}: Field should be a string: {j}")

    def assert_error(self, r: Response, status: int, code: str, field: Optional[str] = None, what: str = "") -> None:
        self.assertEqual(r.status, status, f"{what}: status; body {r.body[:600]!r}")
        self.assert_error_shape(r, what)
        self.assertEqual(r.json.get("Code"), code, f"{what}: Code; body {r.json}")
        if field is not None:
            self.assertEqual(r.json.get("Field"), field, f"{what}: Field; body {r.json}")

    def assert_timestamp(self, value, what: str = "timestamp") -> None:
        self.assertIsInstance(value, str, f"{what} should be a string: {value!r}")
        self.assertRegex(value, TIMESTAMP_RE, f"{what} should be ISO 8601 UTC with milliseconds")

    def assert_node_resource(self, n: dict, what: str = "node") -> None:
        """Fields and types of a node resource (contract)."""
        types = {
            "Id": str, "Name": str, "PublicUrl": str, "CommunicationsAddress": str,
            "CommunicationsPort": int, "MaxConcurrentTasks": int, "Platform": str, "Version": str,
            "IsInMaintenanceMode": bool, "IsOffline": bool, "LastSeen": str, "StartedAt": str, "Links": dict,
        }
        self.assertIsInstance(n, dict, f"{what} should be an object")
        for k, t in types.items():
            self.assertIn(k, n, f"{what} lacks {k}: {n}")
            self.assertIsInstance(n[k], t, f"{what}.{k} should be {t.__name__}: {n[k]!r}")
            if t is int:
                self.assertNotIsInstance(n[k], bool, f"{what}.{k} should be an integer, not a boolean")
        self.assertEqual(n["Id"], node_id(n["Name"]), f"{what}: Id = {NODE_ID_PREFIX} + Name")
        self.assertIn(n["Platform"], ("linux", "windows"), f"{what}.Platform")
        self.assert_timestamp(n["LastSeen"], f"{what}.LastSeen")
        self.assert_timestamp(n["StartedAt"], f"{what}.StartedAt")
        self.assertIsInstance(n["Links"].get("Self"), str, f"{what}.Links.Self should be a string: {n['Links']}")

    def wait_until(self, fn, timeout: float, interval: float = 0.05, msg: str = "", nodes=()):
        """wait_until(); on timeout the message also tells the state and log of `nodes`."""
        try:
            return wait_until(fn, timeout, interval, msg)
        except AssertionError as e:
            if not nodes:
                raise
            info = "\n".join(
                f"node {n.name}: {n.state}\n{n.log_tail(20)}"
                for n in nodes
            )
            raise AssertionError(f"{e}\n{info}") from None


SKIP_EXIT_CODE = 77  # ctest's SKIP_RETURN_CODE for these files


def main() -> None:
    """Run the calling module's tests verbosely (skips print their reason).

    Exits 1 on any failure or error, 77 when nothing ran because everything
    was skipped (ctest then reports the file as skipped), else 0.
    """
    prog = unittest.main(verbosity=2, exit=False)
    result = prog.result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and len(result.skipped) >= result.testsRun:
        reasons = sorted({reason for _, reason in result.skipped})
        sys.stderr.write("all tests skipped: " + "; ".join(reasons) + "\n")
        sys.exit(SKIP_EXIT_CODE)
    sys.exit(0)
