#!/usr/bin/env python3
"""HTTP/1.1 as RFC 9110 and 9112 write it, over raw sockets, on one node.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_http_edges.py

Framing (RFC 9112 §6): Content-Length with Transfer-Encoding is refused and
the connection closed, so a request hidden behind it is never served; a body
shorter than its Content-Length (the client closed its side) or a chunked
body that breaks off is 400 and never reaches a handler; a huge
Content-Length gets exactly one answer; an invalid one is 400 BadRequest;
an unknown HTTP version is 505 HttpVersionNotSupported.

Methods (RFC 9110 §9.3): HEAD on every GET route of openapi.yaml answers
the GET's status and headers without a body (the ping included), OPTIONS on
every path answers 204 with Allow (and OPTIONS / too, as HAProxy's plain
`option httpchk` sends it), and 405 carries Allow.

Uses OCTOHA_TEST_DB when set, else SQLite.
"""

import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING, unique_name  # noqa: E402

TASKS = "/api/tasks"
KEY = harness.ADMIN_KEY
DIAG = b'{"Name":"Diagnostic"}'
METHODS = ("get", "put", "post", "delete", "patch")


class Answer:
    """One parsed response: status, headers (lower-case names) and body."""

    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:120]!r}>"


def parse_answers(data: bytes, head_first: bool = False):
    """Splits DATA into responses, framing each by Content-Length.

    A response to HEAD (the first one when head_first), a 204 or a 304 has
    no body whatever its headers say.  Returns (answers, leftover bytes).
    """
    out = []
    first = True
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head, rest = data[:end].decode("latin-1"), data[end + 4:]
        lines = head.split("\r\n")
        m = re.match(r"^HTTP/1\.[01] (\d{3}) ?(.*)$", lines[0])
        if not m:
            break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        status = int(m.group(1))
        bodyless = status in (204, 304) or (head_first and first)
        n = 0 if bodyless else int(headers.get("content-length", "0"))
        out.append(Answer(status, m.group(2), headers, rest[:n]))
        data = rest[n:]
        first = False
    return out, data


def exchange(port: int, payload: bytes, half_close: bool = True, timeout: float = 10.0) -> bytes:
    """Sends PAYLOAD on a fresh connection, then reads until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        data = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return data


def request(method: str, target: str, headers=(), body: bytes = b"", version: str = "HTTP/1.1",
            key: bool = True) -> bytes:
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"]
    if key:
        lines.append(f"X-Octopus-ApiKey: {KEY}")
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def spec_paths():
    spec = harness.load_spec()
    return spec["paths"]


def example_target(template: str) -> str:
    """TEMPLATE with {spaceId} the default space and each {id} (and a
    managed cluster's {node} and {tentacleId}) replaced by a well-formed Id
    nobody has."""
    ids = {
        "/api/octopusservernodes/": "OctopusServerNodes-nobody",
        "/api/tasks/": "ServerTasks-0",
        "/api/apikeys/": "ApiKeys-0",
        "/api/subscriptions/": "Subscriptions-0",
        "/api/tentacles/": "Tentacles-0",
        "/api/spaces/": "Spaces-1",
        "/api/{spaceId}/tasks/": "ServerTasks-0",
        "/api/{spaceId}/machines/": "Tentacles-0",
        "/api/{spaceId}/packages/": "packages-nobody.1.0.0",
        "/api/managedclusters/": "ManagedClusters-0",
        "/api/maintenance-runs/": "MaintenanceRuns-0",
    }
    if "{id}" in template:
        prefix = template.split("{id}")[0]
        template = template.replace("{id}", ids[prefix])
    template = template.replace("{node}", "node1").replace("{tentacleId}", "ManagedTentacles-0")
    return template.replace("{spaceId}", "Spaces-1")


class HttpEdgeTests(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        cls.name = unique_name("edges")
        cls.node = cls.start_class_node(name=cls.name, db=harness.default_db(harness.make_tmp_dir("edges-db")),
                                        log_level="info", env={"OCTOHA_MAX_BODY_BYTES": "65536"})

    def tearDown(self):
        self.assertIsNone(self.node.proc.poll(), f"the node is still running\n{self.node.log_tail()}")
        self.assertEqual(self.node.ping().status, 200, "the node still answers its ping")

    def send(self, payload: bytes, **kw):
        return parse_answers(exchange(self.node.port, payload, **kw))[0]

    def task_count(self) -> int:
        return self.api(self.node, "GET", TASKS + "?take=1", expect=200).json["TotalResults"]

    def assert_error_answer(self, a: Answer, status: int, code: str, what: str):
        self.assertEqual(a.status, status, f"{what}: {a!r}")
        self.assertTrue(a.headers.get("content-type", "").startswith("application/json"), f"{what}: {a!r}")
        j = a.json
        self.assertEqual(j.get("Code"), code, f"{what}: {j}")
        self.assertIsInstance(j.get("ErrorMessage"), str, what)
        self.assertIsInstance(j.get("Errors"), list, what)

    # -- 3. framing

    def test_content_length_with_transfer_encoding_is_refused_and_closed(self):
        before = self.task_count()
        smuggled = request("GET", PING, key=False)
        for te in ("chunked", "Chunked", "identity"):
            with self.subTest(te=te):
                body = b"15\r\n" + DIAG + b"\r\n0\r\n\r\n"
                payload = request("POST", TASKS, [f"Content-Type: application/json",
                                                  f"Content-Length: {len(body)}", f"Transfer-Encoding: {te}"],
                                  body) + smuggled
                answers = self.send(payload)
                self.assertEqual(len(answers), 1, f"one answer, the hidden request not served: {answers!r}")
                self.assert_error_answer(answers[0], 400, "BadRequest", f"Content-Length + Transfer-Encoding: {te}")
                self.assertEqual(answers[0].headers.get("connection"), "close", f"{answers[0]!r}")
        # The same with Transfer-Encoding first.
        payload = request("POST", TASKS, ["Transfer-Encoding: chunked", "Content-Type: application/json",
                                          "Content-Length: 5"], b"0\r\n\r\n") + smuggled
        answers = self.send(payload)
        self.assertEqual(len(answers), 1, f"{answers!r}")
        self.assert_error_answer(answers[0], 400, "BadRequest", "Transfer-Encoding + Content-Length")
        self.assertEqual(self.task_count(), before, "no task was created")

    def test_other_transfer_encodings_and_versions(self):
        cases = [
            (request("POST", TASKS, ["Transfer-Encoding: gzip", "Content-Type: application/json"]), "gzip"),
            (request("POST", TASKS, ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
                                     "Content-Type: application/json"], b"0\r\n\r\n"), "twice"),
            (request("POST", TASKS, ["Transfer-Encoding: chunked", "Content-Type: application/json"],
                     b"0\r\n\r\n", version="HTTP/1.0"), "chunked in HTTP/1.0"),
        ]
        for payload, what in cases:
            with self.subTest(what=what):
                answers = self.send(payload)
                self.assertEqual(len(answers), 1, f"{what}: {answers!r}")
                self.assert_error_answer(answers[0], 400, "BadRequest", what)

    def test_body_shorter_than_content_length_is_refused(self):
        before = self.task_count()
        for declared in (len(DIAG) + 1, len(DIAG) + 100, 60000):
            with self.subTest(content_length=declared):
                payload = request("POST", TASKS, ["Content-Type: application/json",
                                                  f"Content-Length: {declared}"], DIAG)
                answers = self.send(payload)  # then the client closes its side
                self.assertEqual(len(answers), 1, f"{answers!r}")
                self.assert_error_answer(answers[0], 400, "BadRequest", f"{len(DIAG)} of {declared} bytes")
        self.assertEqual(self.task_count(), before, "no task was created from a cut body")

    def test_chunked_body_that_breaks_off_is_refused(self):
        before = self.task_count()
        for body in (b"15\r\n" + DIAG,                     # no end chunk
                     b"15\r\n" + DIAG[:10],                # cut inside the chunk
                     b"15\r\n" + DIAG + b"\r\nZZ\r\n"):    # a malformed chunk size
            with self.subTest(body=body):
                payload = request("POST", TASKS, ["Content-Type: application/json",
                                                  "Transfer-Encoding: chunked"], body)
                answers = self.send(payload)
                self.assertEqual(len(answers), 1, f"{answers!r}")
                self.assert_error_answer(answers[0], 400, "BadRequest", f"chunked {body!r}")
        # A whole chunked body is fine.
        payload = request("POST", TASKS, ["Content-Type: application/json", "Transfer-Encoding: chunked",
                                          "Connection: close"], b"15\r\n" + DIAG + b"\r\n0\r\n\r\n")
        answers = self.send(payload)
        self.assertEqual([a.status for a in answers], [202], f"{answers!r}")
        self.assertEqual(self.task_count(), before + 1, "only the whole body made a task")

    def test_huge_content_length_gets_one_answer(self):
        for value in ("99999999999999999999", "18446744073709551616", "9223372036854775807", "65537"):
            with self.subTest(content_length=value):
                payload = request("POST", TASKS, ["Content-Type: application/json", f"Content-Length: {value}"],
                                  DIAG) + request("GET", PING, key=False)
                answers = self.send(payload)
                self.assertEqual(len(answers), 1, f"exactly one answer: {answers!r}")
                self.assert_error_answer(answers[0], 413, "PayloadTooLarge", f"Content-Length {value}")
                self.assertEqual(answers[0].headers.get("connection"), "close", f"{answers[0]!r}")

    def test_invalid_content_length_is_400_bad_request(self):
        before = self.task_count()
        for value in ("-5", "abc", "12abc", "+21", "0x15", "21, 21", "1e3", ""):
            with self.subTest(content_length=value):
                payload = request("POST", TASKS, ["Content-Type: application/json", f"Content-Length: {value}"],
                                  DIAG)
                answers = self.send(payload)
                self.assertEqual(len(answers), 1, f"{answers!r}")
                self.assert_error_answer(answers[0], 400, "BadRequest", f"Content-Length: {value!r}")
        payload = request("POST", TASKS, ["Content-Type: application/json", "Content-Length: 21",
                                          "Content-Length: 21"], DIAG)
        answers = self.send(payload)
        self.assert_error_answer(answers[0], 400, "BadRequest", "two Content-Length headers")
        self.assertEqual(self.task_count(), before, "no task was created")

    def test_unknown_http_versions_are_505(self):
        for version in ("HTTP/1.2", "HTTP/2.0", "HTTP/3", "HTTP/0.9", "HTTP/1.10"):
            with self.subTest(version=version):
                answers = self.send(request("GET", PING, version=version, key=False))
                self.assertEqual(len(answers), 1, f"{version!r}: {answers!r}")
                self.assert_error_answer(answers[0], 505, "HttpVersionNotSupported", f"version {version!r}")
        # A NUL in the request line makes it malformed rather than a version.
        for version in ("HTTP/1.1\x00", "HTTP/1.2\x00"):
            with self.subTest(version=version):
                answers = self.send(request("GET", PING, version=version, key=False))
                self.assertEqual(len(answers), 1, f"{version!r}: {answers!r}")
                self.assert_error_answer(answers[0], 400, "BadRequest", f"version {version!r}")

    def test_host_header_rules(self):
        no_host = b"GET " + NODES.encode() + b" HTTP/1.1\r\nX-Octopus-ApiKey: " + KEY.encode() + b"\r\n\r\n"
        self.assert_error_answer(self.send(no_host)[0], 400, "BadRequest", "HTTP/1.1 without Host")
        two = request("GET", NODES, ["Host: other"])
        self.assert_error_answer(self.send(two)[0], 400, "BadRequest", "two Host headers")
        old = b"GET " + PING.encode() + b" HTTP/1.0\r\n\r\n"
        self.assertEqual([a.status for a in self.send(old)], [200], "HTTP/1.0 needs no Host")

    def test_keep_alive_still_serves_one_answer_per_request(self):
        payload = request("GET", PING, key=False) + request("GET", NODES) + request(
            "GET", PING, ["Connection: close"], key=False)
        answers = self.send(payload, half_close=False)
        self.assertEqual([a.status for a in answers], [200, 200, 200], f"{answers!r}")

    # -- 4. HEAD and OPTIONS

    def test_head_on_every_get_route(self):
        for template, item in spec_paths().items():
            if "get" not in item:
                continue
            target = example_target(template)
            with self.subTest(path=target):
                key = item["get"].get("security") != []
                if template == "/api/events/stream":
                    # Its GET never ends: HEAD alone, the stream's headers
                    # and nothing after them.
                    data = exchange(self.node.port, request("HEAD", target, ["Connection: close"], key=key))
                    answers, left = parse_answers(data, head_first=True)
                    self.assertEqual([a.status for a in answers], [200], f"HEAD {target}: {data[:400]!r}")
                    self.assertTrue(answers[0].headers.get("content-type", "").startswith("text/event-stream"),
                                    f"HEAD {target}: the stream's Content-Type: {answers[0].headers}")
                    self.assertEqual((answers[0].body, left), (b"", b""), f"HEAD {target}: no frame")
                    continue
                # HEAD then GET on one connection: if HEAD sent a body, the
                # GET's answer would not start where HEAD's headers end.
                payload = request("HEAD", target, key=key) + request("GET", target, ["Connection: close"], key=key)
                data = exchange(self.node.port, payload, half_close=False)
                answers, left = parse_answers(data, head_first=True)
                self.assertEqual(len(answers), 2, f"HEAD {target}: two answers, HEAD's without a body: {data[:400]!r}")
                self.assertEqual(left, b"", f"HEAD {target}: nothing after the GET's answer")
                head, get = answers
                self.assertEqual(head.status, get.status, f"HEAD {target}: the GET's status")
                self.assertEqual(head.headers.get("content-type"), get.headers.get("content-type"),
                                 f"HEAD {target}: Content-Type")
                self.assertIn("content-length", head.headers, f"HEAD {target}: Content-Length")
                if template not in ("/metrics", "/api/events"):
                    self.assertEqual(head.headers["content-length"], get.headers.get("content-length"),
                                     f"HEAD {target}: the GET's Content-Length")

    def test_head_on_the_ping_without_a_key(self):
        data = exchange(self.node.port, request("HEAD", PING, ["Connection: close"], key=False))
        answers, left = parse_answers(data, head_first=True)
        self.assertEqual([a.status for a in answers], [200], f"{data!r}")
        self.assertEqual(answers[0].body, b"")
        self.assertEqual(left, b"", "no body after the headers")
        self.assertGreater(int(answers[0].headers["content-length"]), 0, "the GET's length")

    def test_options_on_every_path(self):
        for template, item in spec_paths().items():
            target = example_target(template)
            want = {m.upper() for m in item if m in METHODS}
            if "GET" in want:
                want.add("HEAD")
            want.add("OPTIONS")
            with self.subTest(path=target):
                answers = self.send(request("OPTIONS", target, key=False))
                self.assertEqual(len(answers), 1, f"OPTIONS {target}: {answers!r}")
                a = answers[0]
                self.assertEqual(a.status, 204, f"OPTIONS {target}: {a!r}")
                self.assertEqual(a.body, b"")
                self.assertNotIn("content-length", a.headers, "a 204 carries no Content-Length")
                allow = {m.strip() for m in a.headers.get("allow", "").split(",") if m.strip()}
                self.assertEqual(allow, want, f"OPTIONS {target}: Allow {a.headers.get('allow')!r}")

    def test_options_on_the_root_for_plain_httpchk(self):
        for version in ("HTTP/1.0", "HTTP/1.1"):
            with self.subTest(version=version):
                answers = self.send(request("OPTIONS", "/", version=version, key=False))
                self.assertEqual([a.status for a in answers], [204], f"{answers!r}")
                self.assertIn("OPTIONS", answers[0].headers.get("allow", ""))
        self.assertEqual(self.send(request("OPTIONS", "/api/nosuch/at/all", key=False))[0].status, 404)
        self.assertEqual(self.send(request("GET", "/", key=False))[0].status, 404, "GET / is still 404")

    def test_405_keeps_allow_and_head_405_has_no_body(self):
        answers = self.send(request("POST", PING, ["Content-Length: 0"], key=False))
        self.assert_error_answer(answers[0], 405, "MethodNotAllowed", "POST ping")
        self.assertEqual({m.strip() for m in answers[0].headers["allow"].split(",")}, {"GET", "HEAD", "OPTIONS"})
        data = exchange(self.node.port, request("HEAD", "/api/cluster/probe", ["Connection: close"]))
        answers, left = parse_answers(data, head_first=True)
        self.assertEqual([a.status for a in answers], [405], f"{data!r}")
        self.assertEqual(left, b"", "HEAD's 405 has no body")
        self.assertEqual({m.strip() for m in answers[0].headers["allow"].split(",")}, {"POST", "OPTIONS"})


if __name__ == "__main__":
    harness.main()
