#!/usr/bin/env python3
"""GET /api/events/stream: audit events and task changes as Server-Sent Events.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_stream.py [Class[.test]]

One node on its embedded SQLite database for the format, filters, resume,
heartbeat, the cap and shutdown; two nodes on one PostgreSQL database for a
change made through node B reaching a client of node A (the latency is
printed: a drain through B seen on A's stream).
"""

import http.client
import json
import os
import queue
import re
import signal
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_KEY, OctohaTestCase, unique_name  # noqa: E402

STREAM = "/api/events/stream"
FAST = {"OCTOHA_HEARTBEAT_MS": "200", "OCTOHA_OFFLINE_TIMEOUT_MS": "2000", "OCTOHA_POLL_MS": "50",
        "OCTOHA_LEASE_MS": "2000", "OCTOHA_HOUSEKEEPING_MS": "250"}


class Frame:
    def __init__(self, event, id_, data, at):
        self.event, self.id, self.at = event, id_, at
        self.raw = data
        self.data = json.loads(data) if data else None

    def __repr__(self):
        d = self.data or {}
        return f"<{self.event} id={self.id} {d.get('Category') or d.get('State')} {d.get('ResourceId') or d.get('Id')}>"


class SseClient:
    """Reads a stream on a thread of its own; frames (and comments) go to a
    queue with the monotonic time they arrived."""

    def __init__(self, node, path=STREAM, key=ADMIN_KEY, headers=None, timeout=30):
        self.conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=timeout)
        h = {"Accept": "text/event-stream"}
        if key:
            h["X-Octopus-ApiKey"] = key
        h.update(headers or {})
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers
        self.frames = queue.Queue()
        self.comments = queue.Queue()
        self.retry = None
        self.ended = threading.Event()
        self.raw = b""
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.body = self.resp.read()
            self.conn.close()

    def _read(self):
        buf = b""
        try:
            while True:
                chunk = self.resp.read1(65536)
                if not chunk:
                    break
                now = time.monotonic()
                self.raw += chunk
                buf += chunk
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    self._block(block.decode("utf-8"), now)
        except Exception:  # noqa: BLE001 - the test closed it, or the node went
            pass
        finally:
            self.ended.set()

    def _block(self, block, now):
        ev, id_, data = "message", None, []
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments.put((line[1:].strip(), now))
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                ev = value
            elif field == "id":
                id_ = value
            elif field == "data":
                data.append(value)
            elif field == "retry":
                self.retry = int(value)
        if data or ev != "message":
            self.frames.put(Frame(ev, id_, "\n".join(data), now))

    def next(self, pred, timeout, what=""):
        """The first frame matching pred within timeout (frames before it are dropped)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no frame {what} within {timeout}s; saw {seen[-20:]}")
            try:
                f = self.frames.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(f)
            if pred(f):
                return f

    def drain(self, wait=0.0):
        """Every frame received so far (after waiting WAIT seconds)."""
        time.sleep(wait)
        out = []
        while True:
            try:
                out.append(self.frames.get_nowait())
            except queue.Empty:
                return out

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()


def is_audit(category=None, resource=None):
    def pred(f):
        return f.event == "audit" and (category is None or f.data["Category"] == category) and (
            resource is None or f.data["ResourceId"] == resource)
    return pred


def is_task(tid, state=None):
    def pred(f):
        return f.event == "task" and f.data["Id"] == tid and (state is None or f.data["State"] == state)
    return pred


class StreamCase(OctohaTestCase):
    def streams(self, *clients):
        for c in clients:
            self.addCleanup(c.close)
        return clients[0] if len(clients) == 1 else clients

    def open(self, node, path=STREAM, **kw):
        """A stream that answered 200.  A slot a closed stream held comes
        free at its next heartbeat write (a client that left is seen only
        when a write fails), so a 503 TooManyStreams is retried a while."""
        deadline = time.monotonic() + 5
        while True:
            c = SseClient(node, path, **kw)
            if c.status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.addCleanup(c.close)
        return c

    def queue_task(self, node, wait_ms=0, lines=1, key=ADMIN_KEY):
        r = self.api(node, "POST", "/api/tasks", expect=202, key=key,
                     body={"Name": "Diagnostic", "Arguments": {"WaitMs": wait_ms, "LogLines": lines}})
        return r.json["Id"]

    def check_frame(self, f):
        """The frame's data is the spec's Event or Task, and its id a time."""
        self.assertRegex(f.id or "", r"^[0-9]{13}$", f"id is the change's epoch ms: {f}")
        schema = {"audit": "Event", "task": "Task"}[f.event]
        checker = harness.spec_checker()
        conv = harness.to_json_schema(checker.spec["components"]["schemas"][schema], checker.spec, checker.version)
        checker.validate(conv, f.data, f"stream {f.event} frame")


class StreamOneNode(StreamCase):
    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(env=dict(FAST, OCTOHA_STREAM_HEARTBEAT_MS="500",
                                                 OCTOHA_STREAM_MAX="3", OCTOHA_HTTP_THREADS="8"))

    def test_task_and_its_events_arrive_in_order(self):
        s = self.open(self.node)
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers["Content-Type"], "text/event-stream; charset=utf-8")
        self.assertEqual(s.headers["Cache-Control"], "no-store")
        self.assertEqual(s.headers["Transfer-Encoding"], "chunked")
        s.comments.get(timeout=5)  # the opening comment: the stream is up
        self.assertEqual(s.retry, 3000)
        tid = self.queue_task(self.node, wait_ms=300, lines=2)
        q = s.next(is_audit("TaskQueued", tid), 5, "TaskQueued")
        self.check_frame(q)
        self.assertEqual(q.data["Username"], "bootstrap")
        done = s.next(is_task(tid, "Success"), 10, "task Success")
        self.check_frame(done)
        self.assertEqual(done.data["Name"], "Diagnostic")
        self.assertGreaterEqual(int(done.id), int(q.id), "ids follow the changes' times")
        self.assertTrue(done.data["IsCompleted"])

    def test_changes_made_before_the_stream_opened_are_not_sent(self):
        before = self.queue_task(self.node)
        self.api(self.node, "GET", f"/api/tasks/{before}?waitSeconds=10", expect=200)
        s = self.open(self.node)
        after = self.queue_task(self.node)
        s.next(is_task(after, "Success"), 10, "the new task")
        stale = [f for f in s.drain(0.5) if (f.data or {}).get("Id") == before or
                 (f.data or {}).get("ResourceId") == before]
        self.assertEqual(stale, [], "a change from before the stream opened")

    def test_filters(self):
        by_cat = self.open(self.node, STREAM + "?category=TaskQueued")
        by_task = self.open(self.node, STREAM + "?category=TaskStateChanged")
        by_cat.comments.get(timeout=5)
        by_task.comments.get(timeout=5)
        t1 = self.queue_task(self.node)
        t2 = self.queue_task(self.node)
        by_cat.next(is_audit("TaskQueued", t2), 5, "TaskQueued of t2")
        by_task.next(is_task(t2, "Success"), 10, "t2 Success")
        got = by_cat.drain(0.6)
        self.assertTrue(all(f.event == "audit" and f.data["Category"] == "TaskQueued" for f in got), got)
        got = by_task.drain(0.2)
        self.assertTrue(all(f.event == "task" for f in got), got)
        # regarding: one task's events and its own changes, nothing of another.
        reg = self.open(self.node, STREAM + "?regarding=" + t1)
        reg.comments.get(timeout=5)
        self.api(self.node, "POST", f"/api/tasks/{t1}/cancel", expect=409)  # ended: RequestFailed about t1
        self.queue_task(self.node)
        f = reg.next(lambda f: True, 5, "a frame about t1")
        self.assertEqual((f.event, f.data["Category"], f.data["ResourceId"]), ("audit", "RequestFailed", t1))
        self.assertEqual(reg.drain(0.8), [], "nothing about other resources")

    def test_bad_filters_and_positions_are_refused(self):
        for path, headers, field in (
            (STREAM + "?category=NoSuchCategory", {}, "category"),
            (STREAM + "?regarding=", {}, "regarding"),
            (STREAM, {"Last-Event-ID": "yesterday"}, "Last-Event-ID"),
            (STREAM, {"Last-Event-ID": "1" * 16}, "Last-Event-ID"),
        ):
            with self.subTest(path=path, headers=headers):
                r = self.api(self.node, "GET", path, headers=headers)
                self.assert_error(r, 400, "ValidationFailed", field)

    def test_readers_may_stream_and_strangers_may_not(self):
        reader = self.api(self.node, "POST", "/api/apikeys", expect=201,
                          body={"Name": unique_name("reader"), "Role": "Reader"}).json["ApiKey"]
        s = self.open(self.node, key=reader)
        self.assertEqual(s.status, 200)
        s = SseClient(self.node, key=None)
        self.assertEqual(s.status, 401)
        self.assertEqual(json.loads(s.body)["Code"], "ApiKeyMissing")

    def test_idle_streams_get_a_heartbeat(self):
        s = self.open(self.node, STREAM + "?regarding=ServerTasks-0")
        s.comments.get(timeout=5)
        t0 = time.monotonic()
        text, at = s.comments.get(timeout=5)
        self.assertEqual(text, "heartbeat")
        self.assertGreaterEqual(at - t0, 0.3, "not before stream-heartbeat-ms (500)")

    def test_resume_with_last_event_id(self):
        s = self.open(self.node)
        t1 = self.queue_task(self.node)
        last = s.next(is_task(t1, "Success"), 10, "t1 Success")
        s.close()
        t2 = self.queue_task(self.node)  # while nobody listens
        self.api(self.node, "GET", f"/api/tasks/{t2}?waitSeconds=10", expect=200)
        r = self.open(self.node, headers={"Last-Event-ID": last.id})
        q = r.next(is_audit("TaskQueued", t2), 5, "t2's TaskQueued, made while away")
        d = r.next(is_task(t2, "Success"), 5, "t2's end, made while away")
        self.assertLessEqual(int(q.id), int(d.id))
        # Nothing older than the resume point minus the 5 s a commit may lag.
        for f in r.drain(0.5):
            self.assertGreaterEqual(int(f.id), int(last.id) - 5000, f)

    def test_the_cap_answers_503_and_keeps_the_api_and_the_ping_going(self):
        # Other tests of the class may hold streams for a moment: wait until
        # this node serves none before taking every slot.
        held = []
        deadline = time.monotonic() + 10
        while len(held) < 3:
            c = SseClient(self.node)
            if c.status == 200:
                held.append(c)
                self.addCleanup(c.close)
                continue
            self.assertEqual(c.status, 503)
            self.assertLess(time.monotonic(), deadline, "slots never came free")
            time.sleep(0.2)
        extra = SseClient(self.node)
        self.assertEqual(extra.status, 503)
        body = json.loads(extra.body)
        self.assertEqual(body["Code"], "TooManyStreams")
        self.assertEqual(extra.headers["Retry-After"], "5")
        t0 = time.monotonic()
        self.assertEqual(self.node.ping(key=None).status, 200)
        self.api(self.node, "GET", "/api/cluster/topology", expect=200)
        self.assertLess(time.monotonic() - t0, 2.0, "the ping and the API answer beside full streams")
        # A client that leaves frees its slot by the next heartbeat.
        held[0].close()
        self.wait_until(lambda: SseClient(self.node).status == 200, 5, 0.2, "a slot came free")


class StreamShutdown(StreamCase):
    def test_sigterm_does_not_wait_for_streams(self):
        node = self.start_node(env=FAST)  # heartbeat 15 s: a stop waiting for it would show
        s = self.open(node)
        s.comments.get(timeout=5)
        s2 = self.open(node, STREAM + "?category=TaskQueued")
        s2.comments.get(timeout=5)
        t0 = time.monotonic()
        node.proc.send_signal(signal.SIGTERM)
        rc = node.wait_exit(10)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, node.log_tail())
        self.assertTrue(s.ended.wait(2), "the stream ended")
        self.assertTrue(s.raw.endswith(b"0\r\n\r\n") or s.ended.is_set())
        print(f"\n  SIGTERM with 2 streams open: exited in {took * 1000:.0f} ms", file=sys.stderr)
        self.assertLess(took, 5.0, "the stop did not wait for the streams (heartbeat 15 s)")

    def test_stream_max_must_leave_threads_for_the_api(self):
        node = harness.Node(env={"OCTOHA_HTTP_THREADS": "8", "OCTOHA_STREAM_MAX": "5"})
        self.track(node)
        node.start(wait=False)
        self.expect_exit(node, 2, "stream-max")


class StreamAcrossNodes(StreamCase):
    """A change made through node B reaches a client of node A."""

    @classmethod
    def setUpClass(cls):
        harness.require_postgres()
        cls.db = harness.cluster_db(need_empty=True)

    def test_a_drain_through_b_reaches_a_client_of_a_within_a_second(self):
        a = self.start_node(name=unique_name("a"), db=self.db, env=FAST)
        b = self.start_node(name=unique_name("b"), db=self.db, env=FAST)
        c = self.start_node(name=unique_name("c"), db=self.db, env=FAST)  # keeps the cluster taking work
        s = self.open(a, STREAM + "?regarding=" + b.id)
        s.comments.get(timeout=5)
        latencies = []
        for i in range(6):
            op = "drain" if i % 2 == 0 else "undrain"
            category = "NodeDrainRequested" if op == "drain" else "NodeUndrainRequested"
            t0 = time.monotonic()
            r = self.api(b, "POST", f"/api/octopusservernodes/{b.id}/{op}", expect=202,
                         body={"Reason": "stream test"} if op == "drain" else None)
            f = s.next(is_audit(category, b.id), 5, f"{category} of b on a's stream")
            latencies.append(f.at - t0)
            self.assertEqual(f.data["Operation"], op + "Node")
            self.api(b, "GET", f"/api/tasks/{r.json['Id']}?waitSeconds=20", expect=200)
        ms = [round(x * 1000) for x in latencies]
        print(f"\n  drain/undrain through b -> a's stream, ms: {ms}; median {statistics.median(ms):.0f}, "
              f"max {max(ms)}", file=sys.stderr)
        self.assertLess(statistics.median(latencies), 1.0, f"median over 1 s: {ms}")
        # The drain task b ran shows on a's stream as task changes of node b.
        t = self.open(a, STREAM + "?category=TaskStateChanged")
        t.comments.get(timeout=5)
        r = self.api(c, "POST", f"/api/octopusservernodes/{b.id}/drain", expect=202, body={})
        t.next(lambda f: f.data["Id"] == r.json["Id"] and f.data["IsCompleted"], 10, "the Drain task's end")
        self.assertTrue(c.running and b.running)


if __name__ == "__main__":
    harness.main()
