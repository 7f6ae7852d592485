#!/usr/bin/env python3
"""Hostile input that once reached handlers unchecked (issue 10), on one node.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_hostile_input.py

* POST /api/subscriptions with EventTypes items the spec's oneOf refuses
  ([1], [], null, {}, [true], ["NoSuchEvent"], ...) answered 201 or killed
  the node (a NULL string in the handler); each must be 400 ValidationFailed
  naming the field, with nothing stored and the node still up.
* A body with a long unknown field name made of two-byte characters: the
  error's Field was cut inside a character, the error body could not be
  built, and the node aborted.
* Query and path values that decode to invalid UTF-8 or hold a NUL skipped
  validation (states=%FF listed every task; states=Success%00Bogus was read
  as Success; a NUL in a path segment cut the path and changed the route):
  each is 400 ValidationFailed naming the parameter.

Every test ends by checking that the node is still running and answers its
ping.  Uses OCTOHA_TEST_DB when set, else SQLite.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, node_id, unique_name  # noqa: E402

SUBS = "/api/subscriptions"
TASKS = "/api/tasks"
EVENTS = "/api/events"
GOOD_SUB = {"Name": "hook", "Url": "https://example.com/hook", "Secret": "0123456789abcdef0123"}


def raw_exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Sends REQUEST as is on a fresh connection and returns all it gets back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return data


class HostileInputTests(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        cls.name = unique_name("hostile")
        cls.node = cls.start_class_node(name=cls.name, db=harness.default_db(harness.make_tmp_dir("hostile-db")),
                                        log_level="info")

    def tearDown(self):
        self.assertIsNone(self.node.proc.poll(), f"the node is still running\n{self.node.log_tail()}")
        self.assertEqual(self.node.ping().status, 200, "the node still answers its ping")

    def subscriptions(self):
        r = self.api(self.node, "GET", SUBS, expect=200)
        return sorted(s["Id"] for s in r.json["Items"])

    # -- 1. EventTypes items are checked against the spec's oneOf

    def test_event_types_of_every_wrong_shape_are_refused(self):
        before = self.subscriptions()
        cases = [
            ([1], "EventTypes[0]"),
            ([], "EventTypes"),
            (None, "EventTypes"),
            ({}, "EventTypes"),
            ([True], "EventTypes[0]"),
            ([None], "EventTypes[0]"),
            ([{}], "EventTypes[0]"),
            ([[]], "EventTypes[0]"),
            (["NoSuchEvent"], "EventTypes[0]"),
            (["TaskQueued", 2], "EventTypes[1]"),
            (["TaskQueued", ""], "EventTypes[1]"),
            ("TaskQueued", "EventTypes"),
        ]
        for types, field in cases:
            with self.subTest(EventTypes=types):
                r = self.api(self.node, "POST", SUBS, body=dict(GOOD_SUB, EventTypes=types), expect=400)
                self.assert_error(r, 400, "ValidationFailed", field, f"EventTypes={types!r}")
                self.assertIsNone(self.node.proc.poll(), f"node died on EventTypes={types!r}\n{self.node.log_tail()}")
        self.assertEqual(self.subscriptions(), before, "no subscription was stored")

    def test_event_types_the_spec_allows_are_stored(self):
        for types in (["TaskQueued", "NodeDrained"], ["*"]):
            with self.subTest(EventTypes=types):
                r = self.api(self.node, "POST", SUBS, body=dict(GOOD_SUB, EventTypes=types), expect=201)
                self.assertEqual(r.json["EventTypes"], types)
                self.api(self.node, "DELETE", f"{SUBS}/{r.json['Id']}", expect=204)

    # -- error bodies stay UTF-8 whatever the client's names

    def test_long_non_ascii_field_names_are_refused_cleanly(self):
        for n in range(60, 72):
            key = "\u00e9" * n
            with self.subTest(chars=n):
                r = self.api(self.node, "POST", f"{NODES}/{node_id(self.name)}/drain", body={key: 1}, expect=400)
                self.assert_error(r, 400, "ValidationFailed", what=f"unknown field of {n} two-byte characters")
                self.assertTrue(r.json["Field"].startswith("\u00e9"), f"Field names the field: {r.json}")

    # -- 5. query and path values: invalid UTF-8 and NUL

    def test_query_values_that_are_not_utf8_or_hold_nul(self):
        cases = [
            (f"{TASKS}?states=%FF", "states"),
            (f"{TASKS}?states=Success%00Bogus", "states"),
            (f"{TASKS}?states=%C0%AF", "states"),
            (f"{TASKS}?name=Drain%00", "name"),
            (f"{TASKS}?node=%ED%A0%80", "node"),
            (f"{EVENTS}?regarding=x%27%00anything", "regarding"),
            (f"{EVENTS}?user=%FE", "user"),
            (f"{NODES}?skip=1%00", "skip"),
            (f"{NODES}?take=%FF", "take"),
        ]
        for path, field in cases:
            with self.subTest(path=path):
                r = self.api(self.node, "GET", path, expect=400)
                self.assert_error(r, 400, "ValidationFailed", field, f"GET {path}")

    def test_path_values_that_are_not_utf8_or_hold_nul(self):
        cases = [
            f"{TASKS}/ServerTasks-1%00",
            f"{TASKS}/ServerTasks-1%00/raw",
            f"{TASKS}/%FF",
            f"{TASKS}/ServerTasks-%C3",
            f"{NODES}/OctopusServerNodes-n%00de",
            f"{SUBS}/Subscriptions-1%00/deliveries",
        ]
        for path in cases:
            with self.subTest(path=path):
                r = self.api(self.node, "GET", path, expect=400)
                self.assert_error(r, 400, "ValidationFailed", "id", f"GET {path}")

    def test_a_nul_in_a_path_does_not_change_the_route(self):
        # Cut at the NUL, this would be GET /api/tasks/ServerTasks-1 (404);
        # it is the raw log's path with a bad id.
        r = self.api(self.node, "GET", f"{TASKS}/ServerTasks-1%00x/raw", expect=400)
        self.assert_error(r, 400, "ValidationFailed", "id")
        r = self.api(self.node, "GET", f"{NODES}%00/summary", expect=404)
        self.assert_error(r, 404, "NotFound")

    def test_refused_ids_do_not_poison_the_audit_log(self):
        # A refused change is recorded with its resource id and path; bytes
        # that are not UTF-8 stored there made every later GET /api/events
        # abort the node.
        key = harness.ADMIN_KEY.encode()
        for target in (b"/api/tasks/%FF/cancel", b"/api/tasks/\xff/cancel", b"/api/tentacles/%C3%28/polls",
                       b"/api/octopusservernodes/\xc3/drain"):
            with self.subTest(target=target):
                data = raw_exchange(self.node.port, b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n"
                                    b"X-Octopus-ApiKey: " + key + b"\r\nConnection: close\r\n\r\n")
                self.assertRegex(data.split(b"\r\n", 1)[0], rb"^HTTP/1\.1 4\d\d ", f"{target!r}: {data[:200]!r}")
        r = self.api(self.node, "GET", f"{EVENTS}?take=50", expect=200)
        self.assertTrue(r.json["Items"], "the audit log lists events")

    def test_malformed_percent_escapes(self):
        for path in (f"{TASKS}/ServerTasks-%G1", f"{TASKS}/ServerTasks-%", f"{TASKS}?states=%Z"):
            with self.subTest(path=path):
                data = raw_exchange(self.node.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                    f"X-Octopus-ApiKey: {harness.ADMIN_KEY}\r\nConnection: close\r\n\r\n".encode())
                self.assertRegex(data.split(b"\r\n", 1)[0], rb"^HTTP/1\.1 400 ", f"{path}: {data[:300]!r}")


if __name__ == "__main__":
    harness.main()
