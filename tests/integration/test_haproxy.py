#!/usr/bin/env python3
"""HAProxy (docker/haproxy.cfg, unchanged) in front of three nodes on PostgreSQL.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_haproxy.py -v

A steady stream of GETs goes through HAProxy while node 2 is drained and
undrained through the API; HAProxy checks each node's ping on the node's
health listener (--health-listen).  No request may fail; once HAProxy's checks see the
418, node 2 gets no more requests, and once it is undrained and HAProxy sees it
up again, it gets requests again.  Which node served a request is told by the
X-Request-Id prefix (one per node process) and checked against each node's
request log.

Needs the haproxy binary (Debian package `haproxy`; `scripts/setup.sh test`
installs it) and PostgreSQL (or OCTOHA_TEST_DB); skips (exit 77) without them.
"""

import csv
import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING, node_id, unique_name  # noqa: E402

HAPROXY_CFG = harness.REPO_ROOT / "docker" / "haproxy.cfg"
BACKEND = "octoha_nodes"  # the backend and server names of docker/haproxy.cfg
SERVERS = ("node1", "node2", "node3")

HEARTBEAT_MS = 200
NODE_ENV = {"OCTOHA_HEARTBEAT_MS": str(HEARTBEAT_MS), "OCTOHA_OFFLINE_TIMEOUT_MS": "3000"}
CHECK_INTER_S = 1.0  # `inter` of docker/haproxy.cfg
CHECK_TIMEOUT_S = 2.0  # `timeout check` of docker/haproxy.cfg
# A drain shows in ping within a heartbeat (the spec says within a second);
# HAProxy sees it at its next check.  Allow a few check intervals on top.
DRAIN_SEEN_S = 1.0 + CHECK_INTER_S + CHECK_TIMEOUT_S + 3 * CHECK_INTER_S
# Undrain: ping 200 within a second, then `rise 2` good checks (the first at
# `downinter` 2 s at worst, the second `fastinter` = inter later).
UNDRAIN_SEEN_S = 1.0 + 2.0 + CHECK_INTER_S + CHECK_TIMEOUT_S + 3 * CHECK_INTER_S

STREAM_PATHS = ("/api/octopusservernodes/summary", "/api/tasks")
STREAM_THREADS = 6  # half on a fresh connection per request, half keep-alive
STREAM_PAUSE_S = 0.01  # between two requests of one thread
STREAM_CAP_S = 45.0  # hard bound on the stream, whatever happens
DRAINED_WINDOW_S = 3 * CHECK_INTER_S  # how long node 2 is watched while out
MIN_PER_NODE = 20  # requests a serving node must get in each phase


def haproxy_bin():
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return shutil.which("haproxy", path=path)


def setUpModule():
    if not haproxy_bin():
        raise unittest.SkipTest(
            "haproxy is not installed: apt-get install -y haproxy (scripts/setup.sh test installs it)"
        )
    harness.require_postgres()
    v = subprocess.run([haproxy_bin(), "-v"], capture_output=True, text=True, timeout=10).stdout
    sys.stderr.write(f"test_haproxy: {v.splitlines()[0] if v else 'haproxy (version unknown)'}\n")


class HAProxy:
    """`haproxy -db -f docker/haproxy.cfg` as a child, configured by environment."""

    def __init__(self, node_addrs, health_ports):
        self.port = harness.free_port()
        self.dir = harness.make_tmp_dir("haproxy")
        self.sock = self.dir / "stats.sock"
        self.log_path = self.dir / "haproxy.log"
        self.env = dict(os.environ)
        for i, (addr, hp) in enumerate(zip(node_addrs, health_ports), 1):
            self.env[f"NODE{i}_ADDR"] = addr
            self.env[f"NODE{i}_HEALTH_PORT"] = str(hp)
        self.env["LB_BIND"] = f"127.0.0.1:{self.port}"
        self.env["LB_STATS_SOCKET"] = str(self.sock)
        self.proc = None

    def start(self, timeout=15.0):
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [haproxy_bin(), "-db", "-f", str(HAPROXY_CFG)],
                env=self.env,
                cwd=str(self.dir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=harness._preexec(),
            )
        with harness._lock:
            harness._live_procs.add(self.proc)  # killed at exit if left running
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited with {self.proc.returncode} at start\n{self.log_tail()}")
            if self.sock.exists() and harness.port_open(self.port):
                try:
                    self.stat()
                    return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"haproxy not listening within {timeout:.0f}s\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # -db: stops at once
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        with harness._lock:
            harness._live_procs.discard(self.proc)

    def command(self, cmd: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.sock))
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode(errors="replace")

    def stat(self) -> dict:
        """`show stat` rows of the backend's servers: {server name: {column: value}}."""
        text = self.command("show stat")
        lines = [l for l in text.splitlines() if l.strip()]
        if not lines or not lines[0].startswith("# "):
            raise OSError(f"unexpected show stat answer: {text[:200]!r}")
        rows = csv.DictReader(io.StringIO("\n".join([lines[0][2:]] + lines[1:])))
        return {r["svname"]: r for r in rows if r["pxname"] == BACKEND and r["svname"] in SERVERS}

    def state(self) -> str:
        """One line for messages: each server's status and last check."""
        try:
            st = self.stat()
        except OSError as e:
            return f"(stats socket: {e!r})"
        return ", ".join(
            f"{n}={st[n]['status']} ({st[n].get('check_status')} {st[n].get('check_code')})" for n in SERVERS if n in st
        )

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=30) -> str:
        return f"--- haproxy output ({self.log_path}) ---\n" + "\n".join(self.log.splitlines()[-lines:])


class Stream:
    """Worker threads sending GETs through HAProxy until stopped (or the cap).

    Every request becomes one record: (sent, done, thread, path, status, rid,
    error), `sent` and `done` on time.monotonic().
    """

    def __init__(self, port):
        self.port = port
        self.records = []
        self._stop = threading.Event()
        self._threads = []
        self._t0 = None

    def start(self):
        self._t0 = time.monotonic()
        for i in range(STREAM_THREADS):
            t = threading.Thread(target=self._run, args=(i, i % 2 == 1), name=f"stream-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(self, idx, keep_alive):
        conn = None
        n = 0
        while not self._stop.is_set() and time.monotonic() - self._t0 < STREAM_CAP_S:
            path = STREAM_PATHS[(idx + n) % len(STREAM_PATHS)]
            n += 1
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            sent = time.monotonic()
            status = rid = err = None
            try:
                conn.request("GET", path, headers={"Accept": "application/json",
                                                   harness.API_KEY_HEADER: harness.ADMIN_KEY})
                resp = conn.getresponse()
                resp.read()
                status, rid = resp.status, resp.getheader("X-Request-Id")
                if not keep_alive or resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                err = repr(e)
                conn.close()
                conn = None
            self.records.append((sent, time.monotonic(), idx, path, status, rid, err))
            self._stop.wait(STREAM_PAUSE_S)
        if conn is not None:
            conn.close()


class HAProxyDrainTest(harness.OctohaTestCase):
    def setUp(self):
        self.db = harness.cluster_db(self)

    def start_cluster(self):
        names = [unique_name(f"ha{i}") for i in (1, 2, 3)]
        # Each node has a health listener, where HAProxy's checks go.
        self.health_ports = [harness.free_port() for _ in names]
        envs = [dict(NODE_ENV, OCTOHA_HEALTH_LISTEN=f"127.0.0.1:{hp}") for hp in self.health_ports]
        # The first node applies the migrations; the other two then start together.
        first = self.start_node(name=names[0], db=self.db, env=envs[0])
        rest = [self.start_node(name=n, db=self.db, env=e, wait=False) for n, e in zip(names[1:], envs[1:])]
        for n in rest:
            n.wait_ready()
        return [first] + rest

    def instance_tag(self, node) -> str:
        rid = self.api(node, "GET", PING, expect=200).header("X-Request-Id")
        self.assertTrue(rid and "-" in rid, f"{node.name}: ping has an X-Request-Id <instance>-<seq>: {rid!r}")
        return rid.rsplit("-", 1)[0]

    def lb(self, method, path, body=None, expect=None, timeout=15):
        r = harness.http_request("http", self.proxy.port, method, path, body=body, timeout=timeout)
        if expect is not None:
            allowed = expect if isinstance(expect, tuple) else (expect,)
            self.assertIn(r.status, allowed, f"{method} {path} through HAProxy: {r.describe()}\n{self.proxy.log_tail()}")
        return r

    def wait_servers(self, want: dict, timeout: float, msg: str) -> dict:
        """Poll the stats socket until every server in `want` has that status."""

        def ok():
            st = self.proxy.stat()
            return st if all(st.get(s, {}).get("status") == v for s, v in want.items()) else None

        try:
            return harness.wait_until(ok, timeout, interval=0.02, msg=msg)
        except AssertionError as e:
            raise AssertionError(f"{e}\nhaproxy: {self.proxy.state()}\n{self.proxy.log_tail()}") from None

    def test_drain_under_load(self):
        nodes = self.start_cluster()
        tag_node = {}
        for n in nodes:
            tag = self.instance_tag(n)
            self.assertNotIn(tag, tag_node, f"X-Request-Id prefix {tag!r} is not unique per node")
            tag_node[tag] = n.name
        server_of = {n.name: s for n, s in zip(nodes, SERVERS)}
        node2 = nodes[1]

        self.proxy = HAProxy([f"127.0.0.1:{n.port}" for n in nodes], self.health_ports)
        self.addCleanup(self.proxy.stop)
        self.proxy.start()
        # All three in rotation, each having passed a real check.
        st = self.wait_servers({s: "UP" for s in SERVERS}, 10, "HAProxy to see all three nodes UP")
        self.wait_until(
            lambda: all(r.get("check_status") == "L7OK" for r in self.proxy.stat().values()),
            10, msg=f"a passed check (L7OK) on every server: {self.proxy.state()}",
        )
        r = self.lb("GET", "/haproxy-health", expect=200)
        self.assertIsNone(r.header("X-Request-Id"), "/haproxy-health is answered by HAProxy itself")

        stream = Stream(self.proxy.port).start()
        stopped = False

        def stop_stream():
            nonlocal stopped
            if not stopped:
                stopped = True
                stream.stop()

        self.addCleanup(stop_stream)

        def served_by(rec):
            rid = rec[5]
            return tag_node.get(rid.rsplit("-", 1)[0]) if rid and "-" in rid else None

        def count_since(t, name):
            return sum(1 for rec in list(stream.records) if rec[0] >= t and served_by(rec) == name)

        def failures():
            return [rec for rec in list(stream.records) if rec[6] is not None or rec[4] != 200]

        def no_failure():
            fails = failures()
            if fails:
                raise AssertionError(
                    f"a request through HAProxy failed (of {len(stream.records)} so far); "
                    "(sent, done, thread, path, status, rid, error):\n"
                    + "\n".join(repr(f) for f in fails[:10]) + f"\nhaproxy: {self.proxy.state()}\n{self.proxy.log_tail()}"
                )
            return True

        def wait_stream(fn, timeout, what):
            """Wait for fn() while the stream runs; fail at once on a failed request."""
            try:
                return harness.wait_until(lambda: no_failure() and fn(), timeout, interval=0.05, msg=what)
            except AssertionError as e:
                counts = {server_of[n.name]: count_since(0, n.name) for n in nodes}
                tails = "\n".join(n.log_tail(10) for n in nodes)
                raise AssertionError(
                    f"{e}\n{len(stream.records)} requests so far, per node {counts}; haproxy: {self.proxy.state()}\n"
                    f"{tails}\n{self.proxy.log_tail(15)}"
                ) from None

        # 1. Warm-up: every node serves its share.
        t_start = time.monotonic()
        wait_stream(lambda: all(count_since(t_start, n.name) >= MIN_PER_NODE for n in nodes),
                    15, f"every node to serve {MIN_PER_NODE} requests through HAProxy")

        # 2. Drain node 2 through the load balancer (whichever node gets it).
        t_drain = time.monotonic()
        r = self.lb("POST", f"{NODES}/{node_id(node2.name)}/drain", body={"Reason": "test_haproxy"}, expect=202)
        harness.check_response("POST", NODES + "/{id}/drain", 202, r.json, r.header("Content-Type"))
        t_drained = time.monotonic()
        st = self.wait_servers({"node2": "DOWN", "node1": "UP", "node3": "UP"}, DRAIN_SEEN_S,
                               f"HAProxy to take node2 ({node2.name}) out after the drain")
        t_down = time.monotonic()
        self.assertEqual(st["node2"]["check_code"], "418",
                         f"node2 went out on its ping's 418: {self.proxy.state()}\n{self.proxy.log_tail()}")
        self.assertEqual(node2.ping().status, 418, "node2's own ping says draining")

        # 3. Drained: node 2 gets nothing new, nodes 1 and 3 carry the load.
        wait_stream(lambda: time.monotonic() - t_down >= DRAINED_WINDOW_S
                    and all(count_since(t_down, n.name) >= MIN_PER_NODE for n in (nodes[0], nodes[2])),
                    DRAINED_WINDOW_S + 15, "nodes 1 and 3 to serve while node2 is drained")
        self.assertEqual(self.proxy.stat()["node2"]["status"], "DOWN", f"node2 stays out while drained: {self.proxy.state()}")

        # 4. Undrain, again through the load balancer.
        t_undrain = time.monotonic()
        self.lb("POST", f"{NODES}/{node_id(node2.name)}/undrain", expect=(200, 202))
        self.wait_servers({s: "UP" for s in SERVERS}, UNDRAIN_SEEN_S,
                          f"HAProxy to put node2 ({node2.name}) back after the undrain")
        t_up = time.monotonic()
        wait_stream(lambda: all(count_since(t_up, n.name) >= MIN_PER_NODE for n in nodes),
                    15, "every node, node2 included, to serve again after the undrain")
        stop_stream()
        t_end = time.monotonic()

        # -- verdicts
        recs = list(stream.records)
        fails = failures()
        summary = (
            f"{len(recs)} requests in {t_end - t_start:.1f}s; drain answered after {t_drained - t_drain:.2f}s, "
            f"node2 DOWN in HAProxy {t_down - t_drained:.2f}s after that; undrain -> UP in {t_up - t_undrain:.2f}s"
        )
        sys.stderr.write(f"\ntest_haproxy: {summary}\n")
        self.assertEqual(
            fails, [],
            f"every request through HAProxy answers 200 ({summary}); failures (sent, done, thread, path, status, rid, error):\n"
            + "\n".join(repr(f) for f in fails[:20]) + f"\n{self.proxy.log_tail()}",
        )
        unknown = [rec for rec in recs if served_by(rec) is None]
        self.assertEqual(unknown, [], "every response carries a known node's X-Request-Id")

        def per_node(t0, t1):
            out = {n.name: 0 for n in nodes}
            for rec in recs:
                if t0 <= rec[0] < t1:
                    out[served_by(rec)] += 1
            return out

        before = per_node(t_start, t_drain)
        drained = per_node(t_down, t_undrain)
        after = per_node(t_up, t_end)
        for n in nodes:
            self.assertGreaterEqual(before[n.name], MIN_PER_NODE, f"{server_of[n.name]} served before the drain: {before}")
        self.assertEqual(drained[node2.name], 0,
                         f"node2 gets no request sent after HAProxy marked it DOWN (until the undrain): {drained}; {summary}")
        for n in (nodes[0], nodes[2]):
            self.assertGreaterEqual(drained[n.name], MIN_PER_NODE, f"{server_of[n.name]} keeps serving: {drained}")
        self.assertGreaterEqual(after[node2.name], MIN_PER_NODE, f"node2 gets traffic again after the undrain: {after}")
        stragglers = per_node(t_drained, t_down)[node2.name]
        sys.stderr.write(
            f"test_haproxy: before drain {before}; drain..DOWN: {stragglers} to node2; "
            f"drained {drained}; after undrain {after}\n"
        )

        # The nodes' own request logs agree, request for request: each node
        # logged exactly the stream requests whose X-Request-Id it issued.
        want = {n.name: {rec[5] for rec in recs if served_by(rec) == n.name} for n in nodes}

        def logged(n):
            return {
                r.get("rid") for r in harness.log_records(n.log)
                if r.get("msg") == "request" and r.get("path") in STREAM_PATHS
            }

        for n in nodes:
            self.wait_until(lambda: logged(n) >= want[n.name], 5,
                            msg=f"{server_of[n.name]}'s request log to list every request it served", nodes=[n])
            self.assertEqual(logged(n), want[n.name],
                             f"{server_of[n.name]} ({n.name}) logged exactly the stream requests it answered")
            pings = [r for r in harness.log_records(n.log) if r.get("msg") == "request" and r.get("path") == PING
                     and r.get("listener") == "health"]
            self.assertTrue(pings, f"{server_of[n.name]} was health-checked at {PING} on its health listener "
                                   "(debug request log)")
        self.assertTrue(all(n.running for n in nodes), "all nodes still running")


class HAProxyUploadTest(HAProxyDrainTest):
    """A large package upload through docker/haproxy.cfg (issue 11): the body
    streams through to a node, and any node serves the download."""

    SIZE = 256 * 1024 * 1024

    def test_drain_under_load(self):  # the parent's test runs once, there
        self.skipTest("runs in HAProxyDrainTest")

    def test_large_upload_through_the_load_balancer(self):
        import hashlib
        from test_octopus_client import share_folders
        nodes = self.start_cluster()
        share_folders(self, nodes[0], nodes, harness.make_tmp_dir("lb-shared"))
        self.proxy = HAProxy([f"127.0.0.1:{n.port}" for n in nodes], self.health_ports)
        self.addCleanup(self.proxy.stop)
        self.proxy.start()
        self.wait_servers({s: "UP" for s in SERVERS}, 10, "HAProxy to see all three nodes UP")
        boundary = "lbBoundary42"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"fileToUpload\"; "
                f"filename=\"Through.Lb.1.0.0.zip\"\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        block = os.urandom(1 << 20)
        sha1 = hashlib.sha1()
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=120)
        conn.putrequest("POST", "/api/Spaces-1/packages/raw")
        conn.putheader(harness.API_KEY_HEADER, harness.ADMIN_KEY)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + self.SIZE + len(tail)))
        conn.endheaders()
        conn.send(head)
        for _ in range(self.SIZE // len(block)):
            conn.send(block)
            sha1.update(block)
        conn.send(tail)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        self.assertEqual(resp.status, 201, f"{body[:300]!r}\n{self.proxy.log_tail()}")
        # Round-robin: three downloads reach three nodes, each serves it.
        for _ in range(3):
            r = self.lb("GET", "/api/Spaces-1/packages/packages-Through.Lb.1.0.0/raw", expect=200, timeout=60)
            self.assertEqual((len(r.body), hashlib.sha1(r.body).hexdigest()), (self.SIZE, sha1.hexdigest()))


if __name__ == "__main__":
    harness.main()
