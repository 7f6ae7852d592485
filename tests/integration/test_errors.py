#!/usr/bin/env python3
"""The error surface: shape of every error, body checks before routing, limits.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_errors.py

No operation takes a body yet, so bodies go to DELETE /api/octopusservernodes/{id}
(and to a few other routes): the server checks size, Content-Type and JSON of
any request that carries a body before it dispatches.  Uses OCTOHA_TEST_DB
when set, else a SQLite file named by an explicit OCTOHA_DB.
"""

import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING, node_id, unique_name  # noqa: E402

MAX_BODY = 1024
UNKNOWN_ID = node_id("no-such-node")
DELETE_PATH = f"{NODES}/{UNKNOWN_ID}"


def json_body_of_size(n: int) -> bytes:
    """A valid JSON document of exactly n bytes (n >= 10)."""
    head, tail = b'{"pad":"', b'"}'
    return head + b"x" * (n - len(head) - len(tail)) + tail


class ErrorTests(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        cls.name = unique_name("errors")
        base = harness.make_tmp_dir("errors-db")
        cls.node = cls.start_class_node(
            name=cls.name,
            db=harness.default_db(base),
            env={"OCTOHA_MAX_BODY_BYTES": str(MAX_BODY)},
        )
        cls.statuses = []

    def api(self, *a, **kw):
        r = super().api(*a, **kw)
        self.statuses.append(r.status)
        return r

    def tearDown(self):
        # Whatever a test sent, the node is still up and healthy.
        self.assertIsNone(self.node.proc.poll(), f"node still running\n{self.node.log_tail()}")
        r = self.node.ping()
        self.assertEqual(r.status, 200, f"ping after the test: {r.describe()}")
        self.assertNotIn(500, self.statuses, "the server never answered 500")

    # -- routing errors

    def test_not_found_shape(self):
        for path in ("/api/nope", "/", "/apix", "/api/octopusservernodes/a/b/c", DELETE_PATH):
            with self.subTest(path=path):
                r = self.api(self.node, "GET", path, expect=404)
                self.assert_error(r, 404, "NotFound", what=f"GET {path}")
                self.assertTrue(r.json["Errors"] is not None, "Errors present")

    def test_method_not_allowed_shape(self):
        r = self.api(self.node, "POST", PING, expect=405)
        self.assert_error(r, 405, "MethodNotAllowed", what="POST ping")
        self.assertIn("GET", (r.header("Allow") or "").upper(), f"Allow header: {r.header('Allow')!r}")

    def test_validation_shape(self):
        r = self.api(self.node, "GET", NODES + "?take=0", expect=400)
        self.assert_error(r, 400, "ValidationFailed", "take", "take=0")
        self.assertTrue(r.json["Errors"], f"ValidationFailed lists at least one error: {r.json}")

    def test_conflict_shape(self):
        r = self.api(self.node, "DELETE", f"{NODES}/{node_id(self.name)}", expect=409)
        self.assert_error(r, 409, "NodeIsOnline", what="DELETE live node")

    # -- body checks

    def test_unsupported_media_type(self):
        cases = [
            ("DELETE", DELETE_PATH, b"hello", {"Content-Type": "text/plain"}),
            ("DELETE", DELETE_PATH, b'{"a":1}', {"Content-Type": "text/plain"}),
            ("DELETE", DELETE_PATH, b'{"a":1}', {"Content-Type": "application/xml"}),
            ("DELETE", DELETE_PATH, b'{"a":1}', {}),  # a body with no Content-Type
            ("GET", NODES, b"hello", {"Content-Type": "text/plain"}),
        ]
        for method, path, body, headers in cases:
            with self.subTest(method=method, path=path, headers=headers, body=body):
                r = self.api(self.node, method, path, body=body, headers=headers, expect=415, template=False)
                self.assert_error(r, 415, "UnsupportedMediaType", what=f"{method} {path} {headers}")

    def test_json_body_passes_checks(self):
        for ctype in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
            with self.subTest(content_type=ctype):
                r = self.api(self.node, "DELETE", DELETE_PATH, body=b'{"reason": "test"}',
                             headers={"Content-Type": ctype}, expect=404)
                self.assert_error(r, 404, "NotFound", what=f"DELETE unknown id with a JSON body ({ctype})")

    def test_payload_too_large(self):
        big = json_body_of_size(4 * MAX_BODY)
        self.assertEqual(len(big), 4096, "test body size")
        self.assertIsInstance(json.loads(big), dict, "the big body is valid JSON")
        for method, path in (("DELETE", DELETE_PATH), ("GET", "/api/nope"), ("POST", PING), ("GET", NODES)):
            with self.subTest(method=method, path=path):
                r = self.api(self.node, method, path, body=big, headers={"Content-Type": "application/json"},
                             expect=413, template=False)
                self.assert_error(r, 413, "PayloadTooLarge", what=f"{method} {path} with 4096 bytes")

    def test_body_size_boundary(self):
        at = json_body_of_size(MAX_BODY)
        r = self.api(self.node, "DELETE", DELETE_PATH, body=at, headers={"Content-Type": "application/json"}, expect=404)
        self.assert_error(r, 404, "NotFound", what=f"a body of exactly {MAX_BODY} bytes is accepted")
        over = json_body_of_size(MAX_BODY + 1)
        r = self.api(self.node, "DELETE", DELETE_PATH, body=over, headers={"Content-Type": "application/json"},
                     expect=413, template=False)
        self.assert_error(r, 413, "PayloadTooLarge", what=f"a body of {MAX_BODY + 1} bytes is refused")

    def test_invalid_json(self):
        bodies = [
            b'{"a":',
            b"{",
            b"nul",
            b"{'a': 1}",
            b'{"a": 1} trailing',
            b'{"a": 1,}',
        ]
        for body in bodies:
            with self.subTest(body=body):
                r = self.api(self.node, "DELETE", DELETE_PATH, body=body,
                             headers={"Content-Type": "application/json"}, expect=400)
                self.assert_error(r, 400, "InvalidJson", what=f"malformed JSON {body!r}")

    def test_invalid_utf8(self):
        bodies = [
            b'{"a":"\xff\xfe"}',  # bytes that never occur in UTF-8
            b'{"a":"\xc0\xaf"}',  # overlong encoding of '/'
            b'{"a":"\xed\xa0\x80"}',  # UTF-16 surrogate encoded as UTF-8
            b'{"a":"\xe2\x82"}',  # truncated sequence
        ]
        for body in bodies:
            with self.subTest(body=body):
                r = self.api(self.node, "DELETE", DELETE_PATH, body=body,
                             headers={"Content-Type": "application/json; charset=utf-8"}, expect=400)
                self.assert_error(r, 400, "InvalidJson", what=f"non-UTF-8 body {body!r}")

    # -- URI length

    def test_uri_too_long(self):
        for path in (
            f"{NODES}/" + "a" * 9000,
            f"{NODES}?skip=0&pad=" + "b" * 9000,
            PING + "?" + "c" * 8300,
        ):
            with self.subTest(length=len(path), path=path[:40]):
                r = self.api(self.node, "GET", path, expect=414)
                self.assert_error(r, 414, "UriTooLong", what=f"URI of {len(path)} bytes")

    def test_long_uri_under_the_limit(self):
        path = f"{NODES}/OctopusServerNodes-" + "a" * 7500
        self.assertLess(len(path), 8000, "test path stays under 8 KiB")
        r = self.api(self.node, "GET", path, expect=400)
        self.assert_error(r, 400, "ValidationFailed", "id", "a long but not too long URI reaches routing")

    # -- garbage on the wire

    def test_garbage_request_does_not_hurt(self):
        for payload in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"\x16\x03\x01\x00\xff" + b"\x00" * 64, b"\r\n" * 8):
            with self.subTest(payload=payload[:16]):
                with socket.create_connection(("127.0.0.1", self.node.port), timeout=5) as s:
                    s.sendall(payload)
                    s.shutdown(socket.SHUT_WR)
                    data = b""
                    try:
                        while len(data) < 65536:
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                    except (socket.timeout, ConnectionResetError):
                        pass
                first = data.split(b"\r\n", 1)[0]
                self.assertNotRegex(first, rb"^HTTP/1\.[01] 5\d\d", f"garbage {payload[:16]!r} answered {first!r}")
                r = self.node.ping()
                self.assertEqual(r.status, 200, f"ping after garbage {payload[:16]!r}: {r.describe()}")


if __name__ == "__main__":
    harness.main()
