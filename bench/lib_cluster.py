"""Shared helpers for octoha's cluster benchmarks (bench/drain, bench/pickup,
bench/takeover).  Python standard library only.

What it gives:
  Cluster     a throwaway PostgreSQL cluster (tests/pg.sh) with one database
              and any number of real `octoha-server run` nodes on loopback,
              sharing one TaskLogs folder; everything is stopped and the
              temp directory removed on exit (KEEP_TMP=1 keeps it)
  Node        one node: start, wait until ready, SIGTERM, kill -9, restart
  Client      a keep-alive HTTP/1.1 client for one node, sending ADMIN_KEY
              (every node's bootstrap Admin key) in X-Octopus-ApiKey unless
              given key=None (the ping needs none) or another key
  stats helpers (percentile, summary rows) and output helpers

Exit codes the benchmarks share: 0 the run completed (whether the targets
were met or not: PASS/FAIL is printed); 1 something broke (PostgreSQL or a
node did not start, a node died, an unexpected answer); 2 usage error.
"""

import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PG_SH = ROOT / "tests" / "pg.sh"
PING = "/api/octopusservernodes/ping"
NODES = "/api/octopusservernodes"
NODE_ID_PREFIX = "OctopusServerNodes-"
# Seeded as the cluster's first Admin key (OCTOHA_BOOTSTRAP_ADMIN_KEY) and
# sent by Client in X-Octopus-ApiKey.
ADMIN_KEY = "API-BENCH0ADMIN0KEY00000000000000001"

_prog = "bench"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class BenchError(Exception):
    """Something broke: the benchmark cannot go on (exit 1)."""


class Stopped(Exception):
    """SIGINT or SIGTERM arrived."""

    def __init__(self, signum):
        super().__init__(f"signal {signum}")
        self.signum = signum


def set_prog(name):
    global _prog
    _prog = name


def say(msg):
    """Progress to stderr; results go to stdout."""
    print(f"{_prog}: {msg}", file=sys.stderr, flush=True)


def env_int(name, default, lo=1, hi=10**9):
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        n = int(v)
    except ValueError:
        usage_error(f"{name} must be an integer (got '{v}')")
    if not lo <= n <= hi:
        usage_error(f"{name} must be between {lo} and {hi} (got {n})")
    return n


def usage_error(msg):
    say(msg)
    sys.exit(2)


def handle_help(doc):
    if len(sys.argv) > 1:
        if sys.argv[1] in ("-h", "--help"):
            print(doc.strip())
            sys.exit(0)
        usage_error(f"no arguments expected (got {' '.join(sys.argv[1:])}); settings are environment variables, see --help")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_bin():
    b = os.environ.get("OCTOHA_SERVER_BIN") or str(ROOT / "build" / "octoha-server")
    if not os.access(b, os.X_OK):
        raise BenchError(f"no octoha-server at {b}: build first (cmake --build build) or set OCTOHA_SERVER_BIN")
    return b


def parse_time_ms(s):
    """'2026-11-28T05:30:00.123+00:00' -> milliseconds since the epoch (int)."""
    if not s:
        return None
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (dt - _EPOCH) // timedelta(milliseconds=1)


# --------------------------------------------------------------------------
# statistics


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list: the
    smallest value with at least p% of the values at or below it."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(1, math.ceil(p / 100.0 * len(v)))
    return v[min(k, len(v)) - 1]


def median(values):
    v = sorted(values)
    n = len(v)
    if n == 0:
        return float("nan")
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def summary(values):
    """dict n, min, median, p90, p99, max, mean."""
    if not values:
        return {"n": 0, "min": float("nan"), "median": float("nan"), "p90": float("nan"),
                "p99": float("nan"), "max": float("nan"), "mean": float("nan")}
    return {"n": len(values), "min": min(values), "median": median(values),
            "p90": percentile(values, 90), "p99": percentile(values, 99), "max": max(values),
            "mean": sum(values) / len(values)}


def host_line():
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "?"
    u = os.uname()
    return f"{os.cpu_count()} CPUs, {u.sysname} {u.release}, load average {load} before the run"


# --------------------------------------------------------------------------
# HTTP


class Response:
    __slots__ = ("status", "body", "headers", "t_sent", "t_recv")

    def __init__(self, status, body, headers, t_sent, t_recv):
        self.status, self.body, self.headers = status, body, headers
        self.t_sent, self.t_recv = t_sent, t_recv

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise BenchError(f"not JSON (status {self.status}): {self.body[:300]!r}") from e

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


class Client:
    """Keep-alive HTTP/1.1 to one node.  A request that fails on a reused
    connection (the server closed it) is retried once on a new one; POSTs
    that create something carry an Idempotency-Key so the retry is safe."""

    def __init__(self, port, timeout=10.0, key=ADMIN_KEY):
        self.port = port
        self.timeout = timeout
        self.key = key
        self.conn = None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def request(self, method, path, body=None, headers=None, timeout=None):
        hdrs = {"Accept": "application/json"}
        if self.key:
            hdrs["X-Octopus-ApiKey"] = self.key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif method in ("POST", "PUT"):
            hdrs["Content-Length"] = "0"
        if headers:
            hdrs.update(headers)
        last = None
        for attempt in range(2):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=timeout or self.timeout)
            elif timeout:
                self.conn.timeout = timeout
                if self.conn.sock is not None:
                    self.conn.sock.settimeout(timeout)
            try:
                t_sent = time.monotonic()
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                payload = r.read()
                t_recv = time.monotonic()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                elif timeout and self.conn is not None and self.conn.sock is not None:
                    self.conn.sock.settimeout(self.timeout)
                return Response(r.status, payload, r.headers, t_sent, t_recv)
            except (http.client.HTTPException, OSError) as e:
                last = e
                self.close()
                if fresh:
                    break  # a new connection failed: not a stale keep-alive
        raise BenchError(f"{method} 127.0.0.1:{self.port}{path} failed: {last!r}")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)


def expect(resp, statuses, what):
    if resp.status not in statuses:
        raise BenchError(f"{what}: status {resp.status}, expected {statuses}: {resp.text[:400]}")
    return resp


# --------------------------------------------------------------------------
# processes


class Node:
    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.id = NODE_ID_PREFIX + name
        self.port = free_port()
        self.data_dir = cluster.tmp / "nodes" / name
        self.log_path = cluster.tmp / "logs" / f"{name}.stderr"
        self.proc = None
        self.starts = 0
        self.client = Client(self.port)
        self.extra_env = {}  # OCTOHA_* settings for this node alone

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCTOHA_")}
        env["OCTOHA_BOOTSTRAP_ADMIN_KEY"] = ADMIN_KEY
        env.update(self.cluster.node_env)
        env.update({
            "OCTOHA_DB": self.cluster.connstr,
            "OCTOHA_DATA_DIR": str(self.data_dir),
            "OCTOHA_LISTEN": f"127.0.0.1:{self.port}",
            "OCTOHA_NODE_NAME": self.name,
            "OCTOHA_TASK_LOGS_DIR": str(self.cluster.task_logs),
            "OCTOHA_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "OCTOHA_COMMS_ADDRESS": "127.0.0.1",
        })
        env.update(self.extra_env)
        return env

    def spawn(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.log_path, "ab")
        if self.starts > 1:
            log.write(f"--- {_prog}: start #{self.starts} ---\n".encode())
            log.flush()
        try:
            self.proc = subprocess.Popen([self.cluster.bin, "run"], env=self.env(),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=log, start_new_session=True)
        finally:
            log.close()
        self.client.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=30):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "    (no log)"
        return "\n".join("    " + line for line in lines[-n:])

    def wait_ready(self, timeout=30.0):
        """Until ping answers 200.  Returns None, or the exit code if the
        process exited first."""
        deadline = time.monotonic() + timeout
        probe = Client(self.port, timeout=2.0, key=None)  # ping needs no key
        try:
            while time.monotonic() < deadline:
                rc = self.proc.poll()
                if rc is not None:
                    return rc
                try:
                    if probe.get(PING).status == 200:
                        return None
                except BenchError:
                    pass
                time.sleep(0.05)
        finally:
            probe.close()
        raise BenchError(f"node {self.name} did not answer 200 on ping in {timeout:.0f} s; its stderr:\n{self.log_tail()}")

    def start(self, timeout=30.0, retry_in_use_s=0.0):
        """Starts the node and waits until ready.  With retry_in_use_s, a
        start refused because the name is still held by the (dead) previous
        instance (exit 3, 'in use') is retried every second for that long."""
        deadline = time.monotonic() + retry_in_use_s
        for _ in range(1000):
            self.spawn()
            rc = self.wait_ready(timeout)
            if rc is None:
                return
            tail = self.log_tail(10)
            if rc == 3 and "in use" in tail and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            raise BenchError(f"node {self.name} exited with {rc} before answering; its stderr:\n{self.log_tail()}")
        raise BenchError(f"node {self.name}: too many start attempts")

    def check_alive(self):
        if not self.alive():
            rc = self.proc.poll() if self.proc else None
            raise BenchError(f"node {self.name} died unexpectedly (exit {rc}); its stderr:\n{self.log_tail()}")

    def kill9(self):
        """kill -9; returns (time.monotonic(), time.time()) taken right
        before the signal is sent (so any delay counts against the node)."""
        self.client.close()
        t = (time.monotonic(), time.time())
        os.kill(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise BenchError(f"node {self.name} (pid {self.proc.pid}) still alive 10 s after SIGKILL")
        return t

    def stop(self, timeout=15.0):
        """SIGTERM, up to timeout s, then SIGKILL."""
        self.client.close()
        if not self.alive():
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"node {self.name} did not stop on SIGTERM in {timeout:.0f} s; killing it")
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        except ProcessLookupError:
            pass

    def log_count(self, needle):
        try:
            return sum(1 for line in self.log_path.read_text(errors="replace").splitlines() if needle in line)
        except OSError:
            return 0

    def log_lines(self, *needles, level=None):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            if level and f"level={level}" not in line:
                continue
            if all(n in line for n in needles):
                out.append(line)
        return out


class Cluster:
    """with Cluster('drain') as c: c.start_pg(); n1 = c.add_node('node1') ...

    node_env: extra OCTOHA_* settings for every node (the benchmarks pass
    none: defaults).  Cleans up on exit, also after SIGINT/SIGTERM."""

    def __init__(self, tag, node_env=None):
        self.tag = tag
        self.bin = server_bin()
        self.node_env = dict(node_env or {})
        self.tmp = Path(tempfile.mkdtemp(prefix=f"octoha-bench-{tag}."))
        os.chmod(self.tmp, 0o755)  # the postgres user must reach the cluster dir
        self.pg_dir = self.tmp / "pg"
        self.pg_port = None
        self.pg_started = False
        self.task_logs = self.tmp / "TaskLogs"
        self.task_logs.mkdir()
        (self.tmp / "logs").mkdir()
        self.nodes = []
        self.connstr = None
        self._old_handlers = {}

    # signals become exceptions so that __exit__ cleans up
    def _on_signal(self, signum, frame):
        raise Stopped(signum)

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[s] = signal.signal(s, self._on_signal)
        return self

    def __exit__(self, et, ev, tb):
        # No second signal may interrupt the cleanup.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        try:
            self.cleanup()
        finally:
            for s, h in self._old_handlers.items():
                signal.signal(s, h)
        return False

    def _pg_sh(self, *args, timeout=120):
        try:
            return subprocess.run(["bash", str(PG_SH), *map(str, args)], capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"tests/pg.sh {' '.join(map(str, args))} timed out after {timeout} s") from e

    def start_pg(self, dbname="octoha_bench"):
        for attempt in range(3):
            self.pg_port = free_port()
            r = self._pg_sh("start", self.pg_dir, self.pg_port)
            if r.returncode == 0:
                break
            if "already in use" not in r.stderr or attempt == 2:
                raise BenchError(f"tests/pg.sh start failed ({r.returncode}):\n{r.stderr}")
        self.pg_started = True
        r = self._pg_sh("createdb", self.pg_port, dbname)
        if r.returncode != 0:
            raise BenchError(f"tests/pg.sh createdb failed ({r.returncode}):\n{r.stderr}")
        self.connstr = (f"Driver=PostgreSQL Unicode;Server=127.0.0.1;Port={self.pg_port};"
                        f"Database={dbname};Uid=postgres;Pwd=;")

    def add_node(self, name):
        n = Node(self, name)
        self.nodes.append(n)
        return n

    def start_nodes(self, names):
        """The first node alone (it migrates the schema), the rest together."""
        nodes = [self.add_node(nm) for nm in names]
        nodes[0].start()
        for n in nodes[1:]:
            n.spawn()
        for n in nodes[1:]:
            rc = n.wait_ready()
            if rc is not None:
                raise BenchError(f"node {n.name} exited with {rc} before answering; its stderr:\n{n.log_tail()}")
        return nodes

    def check_alive(self, nodes=None):
        for n in nodes or self.nodes:
            n.check_alive()

    def cleanup(self):
        for n in self.nodes:
            try:
                n.stop()
            except Exception as e:  # keep cleaning
                say(f"stopping {n.name}: {e!r}")
        if self.pg_started:
            r = self._pg_sh("stop", self.pg_dir)
            if r.returncode != 0:
                say(f"tests/pg.sh stop failed:\n{r.stderr}")
        if os.environ.get("KEEP_TMP") == "1":
            say(f"kept {self.tmp} (node logs in {self.tmp / 'logs'})")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def new_key():
    return uuid.uuid4().hex


def run_main(prog, body):
    """Runs body() and maps its failures to exit codes."""
    set_prog(prog)
    try:
        body()
    except Stopped as e:
        say(f"stopped by signal {e.signum}")
        sys.exit(128 + e.signum)
    except BenchError as e:
        say(f"error: {e}")
        sys.exit(1)
    sys.exit(0)


def verdict_line(checks):
    """checks: list of (ok, text).  Returns 'PASS: a; b' or 'FAIL: ...'."""
    ok = all(c[0] for c in checks)
    return ("PASS" if ok else "FAIL") + ": " + "; ".join(t for _, t in checks)

