#!/usr/bin/env python3
"""The ping cannot be starved: health port, header timeout, per-client cap.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_health_port.py

Before issue 10, 70 idle TCP connections delayed the ping by 29 s and ~300
made the node unreachable while they stayed open: each held one of the 64
worker threads for the 30 s request timeout, so the load balancer took a
healthy node out.  Now:

* `health-listen` is a second listener with threads of its own that serves
  only the ping and /metrics;
* `request-timeout-ms` bounds how long a request's headers may take;
* `max-connections-per-client` caps the connections one address holds on
  the API port (over the cap: 503 TooManyConnections and closed at once).

The main test holds 1,000 idle connections open on the API port and
prints what it measured: the ping on the health port (target: 200 within
100 ms), the ping on the API port from another address, and an
authenticated GET on the API port once the idle connections have timed
out (target: within 1 s).  Uses OCTOHA_TEST_DB when set, else SQLite.
"""

import errno
import json
import os
import select
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING, unique_name  # noqa: E402

IDLE = 1000
CAP = 32
REQUEST_TIMEOUT_MS = 2000
OTHER_ADDR = "127.0.0.2"  # Linux routes all of 127/8 to lo: a second client address


def timed_get(port: int, path: str, key=None, source: str = "127.0.0.1", method: str = "GET",
              timeout: float = 5.0):
    """(status, seconds, body) of one request on a fresh connection from SOURCE."""
    t0 = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if key:
            head += f"{harness.API_KEY_HEADER}: {key}\r\n"
        s.sendall((head + "\r\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    elapsed = time.monotonic() - t0
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, elapsed, data.split(b"\r\n\r\n", 1)[-1]


def open_idle(port: int, n: int, source: str = "127.0.0.1", timeout: float = 30.0):
    """N connections to PORT that never send a byte (non-blocking connects)."""
    socks, pending = [], {}
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((source, 0))
        rc = s.connect_ex(("127.0.0.1", port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            raise AssertionError(f"connect failed: {os.strerror(rc)}")
        socks.append(s)
        pending[s.fileno()] = s
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(200):
            poller.unregister(fd)
            pending.pop(fd, None)
    return socks


def closed_by_server(s) -> bool:
    """True once the server has closed S (EOF or reset); data is read away."""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, OSError):
        return True


class HealthPortTests(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        cls.health_port = harness.free_port()
        cls.node = cls.start_class_node(
            name=unique_name("health"),
            db=harness.default_db(harness.make_tmp_dir("health-db")),
            log_level="info",
            env={
                "OCTOHA_HEALTH_LISTEN": f"127.0.0.1:{cls.health_port}",
                "OCTOHA_REQUEST_TIMEOUT_MS": str(REQUEST_TIMEOUT_MS),
                "OCTOHA_MAX_CONNECTIONS_PER_CLIENT": str(CAP),
            },
        )

    def tearDown(self):
        self.assertIsNone(self.node.proc.poll(), f"the node is still running\n{self.node.log_tail()}")

    def health(self, method, path, key=None, **kw):
        return harness.http_request("http", self.health_port, method, path, key=key, **kw)

    def test_health_port_serves_ping_and_metrics_only(self):
        r = self.health("GET", PING)
        self.assertEqual(r.status, 200, r.describe())
        harness.check_response("GET", PING, 200, r.json)
        self.assertEqual(r.json["Name"], self.node.name)
        r = self.health("HEAD", PING)
        self.assertEqual((r.status, r.body), (200, b""), "HEAD on the health port")
        r = self.health("GET", "/metrics", key=harness.ADMIN_KEY)
        self.assertEqual(r.status, 200, r.describe())
        self.assertIn(b"octoha_http_requests_total", r.body)
        r = self.health("GET", "/metrics")
        self.assertEqual(r.status, 401, "/metrics needs its key on the health port too")
        for path in (NODES, "/api/openapi.yaml", "/api/tasks"):
            with self.subTest(path=path):
                r = self.health("GET", path, key=harness.ADMIN_KEY)
                self.assertEqual(r.status, 404, f"{path} is not served on the health port: {r.describe()}")
                self.assertEqual(r.json["Code"], "NotFound")
        r = self.health("OPTIONS", "/")
        self.assertEqual(r.status, 204, "OPTIONS / on the health port, for a plain httpchk")
        # The ping on the main port still works, as many balancers check it.
        self.assertEqual(self.node.ping(key=None).status, 200)

    def test_headers_must_arrive_within_the_request_timeout(self):
        """A client trickling its headers in is cut off at the request timeout."""
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=30) as s:
            t0 = time.monotonic()
            s.sendall(b"GET " + PING.encode() + b" HTTP/1.1\r\nHost: x\r\n")
            closed_at = None
            for i in range(40):  # a header byte every 0.25 s, for up to 10 s
                try:
                    s.sendall(b"X")
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic() - t0
                    break
                s.settimeout(0.25)
                try:
                    if s.recv(4096) == b"":
                        closed_at = time.monotonic() - t0
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed_at = time.monotonic() - t0
                    break
        sys.stderr.write(f"\ntest_health_port: a trickling client was cut off after {closed_at}s "
                         f"(request-timeout-ms {REQUEST_TIMEOUT_MS})\n")
        self.assertIsNotNone(closed_at, "the node cut the trickling client off")
        self.assertLess(closed_at, REQUEST_TIMEOUT_MS / 1000 + 2.0, "within the request timeout")

    def test_cap_per_client_address(self):
        socks = open_idle(self.node.port, CAP + 10)
        try:
            time.sleep(0.5)
            refused = []
            for s in socks:
                try:
                    data = s.recv(4096)
                    refused.append(data)
                except BlockingIOError:
                    pass
            self.assertEqual(len(refused), 10, f"exactly the connections over the cap of {CAP} are refused")
            head, _, body = refused[0].partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 503 "), refused[0][:200])
            self.assertIn(b"Retry-After:", head)
            err = json.loads(body)
            self.assertEqual(err["Code"], "TooManyConnections")
            harness.spec_checker().validate(harness.spec_checker().error_schema(), err, "503 TooManyConnections")
            # Another address is not affected by this one's connections.
            status, secs, _ = timed_get(self.node.port, PING, source=OTHER_ADDR)
            self.assertEqual(status, 200)
        finally:
            for s in socks:
                s.close()

    def test_thousand_idle_connections_do_not_starve_the_ping(self):
        t_open = time.monotonic()
        socks = open_idle(self.node.port, IDLE)
        opened = time.monotonic() - t_open
        try:
            # The health port answers at once.
            health = []
            for _ in range(20):
                status, secs, _ = timed_get(self.health_port, PING)
                self.assertEqual(status, 200, "ping on the health port")
                health.append(secs * 1000)
            # So does the API port, for another client address.
            api_other = []
            for _ in range(5):
                status, secs, _ = timed_get(self.node.port, PING, source=OTHER_ADDR)
                self.assertEqual(status, 200, "ping on the API port from another address")
                api_other.append(secs * 1000)
            # The ones over the cap were answered 503 and closed at once.
            open_socks = [s for s in socks if not closed_by_server(s)]
            held = len(open_socks)
            self.assertLessEqual(held, CAP, "the node holds at most the cap from one address")
            # Wait until the node has closed every idle connection: the others
            # at the request timeout.
            t_wait = time.monotonic()
            while open_socks and time.monotonic() - t_wait < REQUEST_TIMEOUT_MS / 1000 + 20:
                open_socks = [s for s in open_socks if not closed_by_server(s)]
                if open_socks:
                    time.sleep(0.05)
            timed_out_after = time.monotonic() - t_wait
            self.assertEqual(open_socks, [], f"{len(open_socks)} idle connections still open")
            # Then an authenticated GET on the API port, from the same address.
            status, secs, body = timed_get(self.node.port, NODES, key=harness.ADMIN_KEY)
            self.assertEqual(status, 200, body[:300])
            get_ms = secs * 1000
        finally:
            for s in socks:
                s.close()
        summary = (
            f"{IDLE} idle connections opened in {opened:.2f}s ({held} held by the node, "
            f"{IDLE - held} over the cap answered 503 and closed at once); "
            f"ping on the health port: median {statistics.median(health):.1f} ms, max {max(health):.1f} ms "
            f"over {len(health)} pings; ping on the API port from {OTHER_ADDR}: median "
            f"{statistics.median(api_other):.1f} ms, max {max(api_other):.1f} ms; the held ones timed out and were "
            f"closed by the node {timed_out_after:.2f}s later; then authenticated GET {NODES}: {get_ms:.1f} ms"
        )
        sys.stderr.write(f"\ntest_health_port: {summary}\n")
        self.assertLess(statistics.median(health), 100, f"ping on the health port within 100 ms: {summary}")
        self.assertLess(max(api_other), 1000, f"the API port still serves other addresses: {summary}")
        self.assertLess(get_ms, 1000, f"an authenticated GET within 1 s once the idle ones timed out: {summary}")


class HealthPortWithoutCapTests(harness.OctohaTestCase):
    def test_health_port_answers_while_every_api_thread_is_held(self):
        """Without the cap, 1,000 idle connections hold every API worker;
        the health listener's own threads still answer the ping."""
        hp = harness.free_port()
        node = self.start_node(db=harness.default_db(harness.make_tmp_dir("nocap-db")), log_level="info",
                               env={"OCTOHA_HEALTH_LISTEN": f"127.0.0.1:{hp}",
                                    "OCTOHA_REQUEST_TIMEOUT_MS": "30000",
                                    "OCTOHA_MAX_CONNECTIONS_PER_CLIENT": "0"})
        socks = open_idle(node.port, IDLE, timeout=5)
        try:
            time.sleep(0.5)
            health = []
            for _ in range(20):
                status, secs, _ = timed_get(hp, PING)
                self.assertEqual(status, 200, "ping on the health port")
                health.append(secs * 1000)
            try:
                status, secs, _ = timed_get(node.port, PING, source=OTHER_ADDR, timeout=1.0)
                api = f"answered {status} in {secs * 1000:.0f} ms"
            except OSError as e:
                api = f"no answer within 1 s ({e!r})"
        finally:
            for s in socks:
                s.close()
        summary = (f"without the cap, {IDLE} idle connections on the API port: ping on the health port median "
                   f"{statistics.median(health):.1f} ms, max {max(health):.1f} ms; the API port's ping from "
                   f"{OTHER_ADDR}: {api}")
        sys.stderr.write(f"\ntest_health_port: {summary}\n")
        self.assertLess(statistics.median(health), 100, summary)


class HealthPortTlsTests(harness.OctohaTestCase):
    def test_health_port_speaks_https_when_the_node_does(self):
        from test_https import make_cert  # noqa: PLC0415 - the same self-signed certificate helper
        cert, key = make_cert(harness.make_tmp_dir("health-tls"))
        hp = harness.free_port()
        node = self.start_node(db=harness.default_db(harness.make_tmp_dir("health-tls-db")), tls=(cert, key),
                               log_level="info", env={"OCTOHA_HEALTH_LISTEN": f"127.0.0.1:{hp}"})
        r = harness.http_request("https", hp, "GET", PING, key=None)
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.json["Name"], node.name)


class TrustedProxyTests(harness.OctohaTestCase):
    def test_trusted_proxies_are_not_capped(self):
        node = self.start_node(db=harness.default_db(harness.make_tmp_dir("proxy-db")), log_level="info",
                               env={"OCTOHA_MAX_CONNECTIONS_PER_CLIENT": "3",
                                    "OCTOHA_TRUSTED_PROXIES": OTHER_ADDR})
        proxied = open_idle(node.port, 8, source=OTHER_ADDR)
        direct = open_idle(node.port, 8)
        try:
            time.sleep(0.5)
            def refused(socks):
                n = 0
                for s in socks:
                    try:
                        if s.recv(4096).startswith(b"HTTP/1.1 503 "):
                            n += 1
                    except BlockingIOError:
                        pass
                return n
            self.assertEqual(refused(proxied), 0, "a trusted proxy's connections are not capped")
            self.assertEqual(refused(direct), 5, "another address is held to the cap of 3")
        finally:
            for s in proxied + direct:
                s.close()


if __name__ == "__main__":
    harness.main()
