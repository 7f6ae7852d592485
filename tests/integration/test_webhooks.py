#!/usr/bin/env python3
"""Webhook subscriptions: signed deliveries, retries, slow receivers (one SQLite node).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_webhooks.py

A local receiver (http.server in a thread on a free port) records every POST
the node makes.  Checked: the body ({"text", "Event"}) and its headers
(X-Octoha-Timestamp, X-Octoha-Signature v1 = HMAC-SHA-256(secret,
"TS.BODY"), X-Octoha-Event, X-Octoha-Delivery), retries with backoff after
500s and after no answer at all (then the task fails), GET
/api/subscriptions/{id}/deliveries, a slow receiver bounded by
webhook-timeout-ms without blocking other tasks, category filtering, DELETE
stopping deliveries, and the secret never shown (API, events, node log).

Receiver is also used by test_chatops.py (response_url).
"""

import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SUBS = "/api/subscriptions"
TASKS = "/api/tasks"
EVENTS = "/api/events"
TASK_ID_RE = re.compile(r"^ServerTasks-[0-9a-f]+$")
SUB_ID_RE = re.compile(r"^Subscriptions-[0-9a-f]+$")

FAST = {
    "OCTOHA_HEARTBEAT_MS": "200",
    "OCTOHA_OFFLINE_TIMEOUT_MS": "2000",
    "OCTOHA_LEASE_MS": "2000",
    "OCTOHA_HOUSEKEEPING_MS": "250",
    "OCTOHA_POLL_MS": "50",
    "OCTOHA_TASK_CAP": "5",
}


# ---------------------------------------------------------------------------
# The receiver


class Receiver:
    """A local HTTP server recording POSTs.

    statuses: the status of the 1st, 2nd, ... request (then 200).
    delays: seconds to wait before answering the 1st, 2nd, ... request (then 0).
    Each recorded request: {"path", "headers" (lower-case keys), "body"
    (raw bytes), "json", "at" (time.monotonic() on arrival), "wall" (time.time())}.
    """

    def __init__(self, statuses=(), delays=()):
        self.statuses = list(statuses)
        self.delays = list(delays)
        self.requests = []
        self.cond = threading.Condition()
        self.port = harness.free_port()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                try:
                    parsed = json.loads(body.decode("utf-8"))
                except ValueError:
                    parsed = None
                with recv.cond:
                    i = len(recv.requests)
                    recv.requests.append({
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "json": parsed,
                        "at": time.monotonic(),
                        "wall": time.time(),
                    })
                    recv.cond.notify_all()
                    status = recv.statuses[i] if i < len(recv.statuses) else 200
                    delay = recv.delays[i] if i < len(recv.delays) else 0
                if delay:
                    time.sleep(delay)
                try:
                    out = b'{"ok":true}'
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass  # the node gave up waiting

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self):
        with self.cond:
            return list(self.requests)

    def wait_for(self, pred, timeout, msg=""):
        """Wait until pred(requests) is truthy; returns the requests; fails on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver: timed out after {timeout}s waiting for {msg}; got "
                        f"{[(r['path'], r['body'][:200]) for r in self.requests]}"
                    )
                self.cond.wait(left)
            return list(self.requests)

    def wait_count(self, n, timeout):
        return self.wait_for(lambda rs: len(rs) >= n, timeout, f"{n} request(s)")


def sign(secret: str, ts: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------


# The receivers listen on loopback, which the outbound policy refuses unless
# allowed: these nodes allow it (test_outbound.py tests the refusal).
LOOPBACK_ALLOWED = {"OCTOHA_OUTBOUND_ALLOW": "127.0.0.0/8"}


def node_env():
    return dict(FAST, OCTOHA_WEBHOOK_TIMEOUT_MS="1000",
                OCTOHA_TASK_LOGS_DIR=str(harness.make_tmp_dir("tasklogs")), **LOOPBACK_ALLOWED)


class WebhookCase(harness.OctohaTestCase):
    """Helpers (no tests); self.node is the node under test."""

    def receiver(self, **kw) -> Receiver:
        r = Receiver(**kw)
        self.addCleanup(r.stop)
        return r

    def subscribe(self, url, types, secret=None, name=None):
        secret = secret or "s3cret-" + uuid.uuid4().hex
        body = {"Name": name or harness.unique_name("sub"), "Url": url, "EventTypes": types, "Secret": secret}
        r = self.api(self.node, "POST", SUBS, expect=201, body=body)
        s = r.json
        self.assertRegex(s["Id"], SUB_ID_RE, "subscription Id")
        self.assertEqual(s["Url"], url, "Url as sent")
        self.assertEqual(s["EventTypes"], types, "EventTypes as sent")
        self.assertEqual(r.header("Location"), f"{SUBS}/{s['Id']}", "Location of the new subscription")
        self.addCleanup(self._delete_quietly, s["Id"])
        return s, secret

    def _delete_quietly(self, sid):
        try:
            self.node.request("DELETE", f"{SUBS}/{sid}")
        except OSError:
            pass

    def create_task(self, args=None, **fields):
        body = {"Name": "Diagnostic", **fields}
        if args is not None:
            body["Arguments"] = args
        r = self.api(self.node, "POST", TASKS, expect=202, body=body)
        return r.json

    def get_task(self, tid, wait=None):
        q = f"?waitSeconds={wait}" if wait else ""
        return self.api(self.node, "GET", f"{TASKS}/{tid}{q}", expect=200, timeout=20 + (wait or 0)).json

    def deliveries(self, sid):
        return self.api(self.node, "GET", f"{SUBS}/{sid}/deliveries", expect=200).json["Items"]

    def wait_deliveries(self, sid, pred, timeout, msg):
        return self.wait_until(lambda: (lambda d: d if pred(d) else None)(self.deliveries(sid)),
                               timeout, 0.1, msg, nodes=[self.node])

    def categories(self, reqs):
        return [r["json"]["Event"]["Category"] for r in reqs]



class WebhookTests(WebhookCase):
    """One node (embedded SQLite) shared by the class; webhook-timeout-ms 1000."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(db=None, env=node_env())

    def test_delivery_is_signed_and_carries_the_event(self):
        recv = self.receiver()
        sub, secret = self.subscribe(recv.url, ["TaskQueued"])
        t0 = time.time()
        task = self.create_task({"WaitMs": 0})
        reqs = recv.wait_count(1, 10)
        time.sleep(0.3)
        reqs = recv.snapshot()
        self.assertEqual(len(reqs), 1, "one TaskQueued event, one delivery")
        q = reqs[0]
        self.assertEqual(q["path"], "/hook", "POSTed to the subscription's URL")
        self.assertTrue(q["headers"].get("content-type", "").startswith("application/json"),
                        f"Content-Type: {q['headers']}")
        ts = q["headers"].get("x-octoha-timestamp")
        self.assertRegex(ts or "", r"^\d+$", f"X-Octoha-Timestamp is Unix seconds: {q['headers']}")
        self.assertLess(abs(int(ts) - t0), 30, "X-Octoha-Timestamp is now")
        self.assertEqual(q["headers"].get("x-octoha-signature"), sign(secret, ts, q["body"]),
                         "X-Octoha-Signature = v1=HMAC-SHA256(secret, TS.BODY) over the raw body")
        self.assertNotEqual(q["headers"].get("x-octoha-signature"), sign(secret + "x", ts, q["body"]),
                            "the signature depends on the secret")
        body = q["json"]
        self.assertIsInstance(body, dict, f"JSON body: {q['body'][:300]!r}")
        self.assertIsInstance(body.get("text"), str, "text field")
        self.assertIn("TaskQueued", body["text"], "text names the category")
        ev = body.get("Event")
        self.assertIsInstance(ev, dict, "Event object")
        self.assertEqual(ev["Category"], "TaskQueued", "the event's category")
        self.assertEqual(ev.get("ResourceId"), task["Id"], "the event is about the created task")
        self.assertEqual(q["headers"].get("x-octoha-event"), ev["Id"], "X-Octoha-Event is the event Id")
        # The event is the one of the audit log.
        evs = self.api(self.node, "GET", f"{EVENTS}?category=TaskQueued&take=100", expect=200).json["Items"]
        logged = [e for e in evs if e["Id"] == ev["Id"]]
        self.assertEqual(len(logged), 1, "the delivered event is in /api/events")
        self.assertEqual(logged[0]["ResourceId"], task["Id"])
        # The delivery task.
        did = q["headers"].get("x-octoha-delivery")
        self.assertRegex(did or "", TASK_ID_RE, "X-Octoha-Delivery is a task Id")
        dt = self.get_task(did, wait=5)
        self.assertEqual(dt["Name"], "WebhookDelivery", "a WebhookDelivery task")
        self.assertEqual(dt["State"], "Success", f"the delivery task succeeded: {dt}")
        self.assertEqual(dt["Attempt"], 1)
        d = self.wait_deliveries(sub["Id"], lambda d: len(d) >= 1, 5, "one delivery recorded")
        self.assertEqual(len(d), 1, f"deliveries: {d}")
        self.assertEqual(d[0]["EventId"], ev["Id"])
        self.assertEqual(d[0]["TaskId"], did)
        self.assertEqual(d[0]["Attempt"], 1)
        self.assertEqual(d[0]["StatusCode"], 200)
        self.assertIs(d[0]["Succeeded"], True)
        self.assertIsNone(d[0]["Error"])
        self.assertGreaterEqual(d[0]["DurationMs"], 0)

    def test_retries_after_500_with_backoff(self):
        recv = self.receiver(statuses=[500, 500, 200])
        sub, secret = self.subscribe(recv.url, ["TaskQueued"])
        self.create_task({"WaitMs": 0})
        reqs = recv.wait_count(3, 20)
        time.sleep(1.5)
        reqs = recv.snapshot()
        self.assertEqual(len(reqs), 3, "500, 500, then 200: three POSTs and no more")
        gaps = [b["at"] - a["at"] for a, b in zip(reqs, reqs[1:])]
        self.assertGreaterEqual(gaps[0], 0.8, f"backoff ~1 s before attempt 2: {gaps}")
        self.assertGreaterEqual(gaps[1], 1.7, f"backoff ~2 s before attempt 3: {gaps}")
        self.assertLess(gaps[1], 6, f"backoff before attempt 3 is not much more than 2 s: {gaps}")
        for q in reqs:
            ts = q["headers"]["x-octoha-timestamp"]
            self.assertEqual(q["headers"].get("x-octoha-signature"), sign(secret, ts, q["body"]),
                             "every attempt is signed")
        self.assertEqual(len({q["headers"]["x-octoha-delivery"] for q in reqs}), 1, "one delivery task")
        self.assertEqual(len({q["headers"]["x-octoha-event"] for q in reqs}), 1, "one event")
        did = reqs[0]["headers"]["x-octoha-delivery"]
        t = self.get_task(did, wait=5)
        self.assertEqual((t["State"], t["Attempt"]), ("Success", 3), f"delivery task: {t}")
        d = self.wait_deliveries(sub["Id"], lambda d: len(d) >= 3, 5, "three attempts recorded")
        d = sorted(d, key=lambda x: x["Attempt"])
        self.assertEqual([x["Attempt"] for x in d], [1, 2, 3], f"deliveries: {d}")
        self.assertEqual([x["StatusCode"] for x in d], [500, 500, 200])
        self.assertEqual([x["Succeeded"] for x in d], [False, False, True])
        self.assertIsInstance(d[0]["Error"], str)
        self.assertTrue(d[0]["Error"])
        self.assertIsNone(d[2]["Error"])
        self.assertEqual({x["TaskId"] for x in d}, {did})

    def test_slow_receiver_does_not_block_other_tasks(self):
        # The first POST sleeps 3 s, beyond webhook-timeout-ms (1000).
        recv = self.receiver(delays=[3])
        sub, _ = self.subscribe(recv.url, ["TaskQueued"])
        self.create_task({"WaitMs": 0})
        recv.wait_count(1, 10)
        t0 = time.monotonic()
        other = self.create_task({"WaitMs": 0})
        got = self.get_task(other["Id"], wait=5)
        took = time.monotonic() - t0
        self.assertEqual(got["State"], "Success", f"the other task ran: {got}")
        self.assertLess(took, 1.5, "a task queued while a delivery hangs still completes fast")
        # The hanging attempt is cut at about 1 s and recorded without a status.
        d = self.wait_deliveries(sub["Id"], lambda d: any(x["StatusCode"] is None for x in d), 5,
                                 "the timed-out attempt recorded")
        slow = [x for x in d if x["StatusCode"] is None][0]
        self.assertIs(slow["Succeeded"], False)
        self.assertEqual(slow["Attempt"], 1)
        self.assertTrue(slow["Error"], f"timeout error text: {slow}")
        self.assertGreaterEqual(slow["DurationMs"], 800, f"bounded by webhook-timeout-ms: {slow}")
        self.assertLess(slow["DurationMs"], 2500, f"bounded by webhook-timeout-ms: {slow}")
        # ... and retried: both events eventually delivered with a 200.
        self.wait_deliveries(sub["Id"], lambda d: sum(1 for x in d if x["StatusCode"] == 200) >= 2, 10,
                             "both events delivered")

    def test_delete_stops_deliveries(self):
        recv = self.receiver()
        sub, _ = self.subscribe(recv.url, ["TaskQueued"])
        sid = sub["Id"]
        self.create_task({"WaitMs": 0})
        recv.wait_count(1, 10)
        listed = self.api(self.node, "GET", SUBS, expect=200).json["Items"]
        self.assertIn(sid, [s["Id"] for s in listed], "listed before deletion")
        r = self.api(self.node, "DELETE", f"{SUBS}/{sid}", expect=204)
        self.assertEqual(r.body, b"", "204 has no body")
        self.api(self.node, "GET", f"{SUBS}/{sid}", expect=404)
        self.api(self.node, "GET", f"{SUBS}/{sid}/deliveries", expect=404)
        self.api(self.node, "DELETE", f"{SUBS}/{sid}", expect=404)
        listed = self.api(self.node, "GET", SUBS, expect=200).json["Items"]
        self.assertNotIn(sid, [s["Id"] for s in listed], "not listed after deletion")
        before = len(recv.snapshot())
        t = self.create_task({"WaitMs": 0})
        self.get_task(t["Id"], wait=5)
        time.sleep(1.5)
        self.assertEqual(len(recv.snapshot()), before, "no delivery after DELETE")
        evs = self.api(self.node, "GET", f"{EVENTS}?category=SubscriptionDeleted", expect=200).json["Items"]
        self.assertIn(sid, [e["ResourceId"] for e in evs], "SubscriptionDeleted event")

    def test_secret_never_shown(self):
        recv = self.receiver()
        secret = "TopSecret-" + uuid.uuid4().hex
        sub, _ = self.subscribe(recv.url, ["TaskQueued"], secret=secret)
        sid = sub["Id"]
        self.create_task({"WaitMs": 0})
        reqs = recv.wait_count(1, 10)
        did = reqs[0]["headers"]["x-octoha-delivery"]
        self.get_task(did, wait=5)
        bodies = {}
        for path in (SUBS, f"{SUBS}/{sid}", f"{SUBS}/{sid}/deliveries", f"{TASKS}/{did}",
                     f"{TASKS}?name=WebhookDelivery", f"{EVENTS}?take=100", f"{TASKS}/{did}/raw"):
            r = self.api(self.node, "GET", path, expect=200)
            bodies[path] = r.body
            self.assertNotIn(secret.encode(), r.body, f"secret shown by GET {path}")
        for s in self.api(self.node, "GET", SUBS, expect=200).json["Items"]:
            self.assertNotIn("Secret", s, "no Secret field in the listing")
        self.assertNotIn("Secret", self.api(self.node, "GET", f"{SUBS}/{sid}", expect=200).json)
        evs = self.api(self.node, "GET", f"{EVENTS}?category=SubscriptionCreated&take=100",
                       expect=200).json["Items"]
        mine = [e for e in evs if e["ResourceId"] == sid]
        self.assertEqual(len(mine), 1, f"one SubscriptionCreated event about {sid}: {evs}")
        details = mine[0]["Details"]
        self.assertIsInstance(details, dict, f"the event records the request fields: {mine[0]}")
        self.assertEqual(details.get("Secret"), "********", f"Secret masked in Details: {details}")
        self.assertNotIn(secret, json.dumps(mine[0]))
        out = self.node.all_output()
        self.assertIn(sid, out + json.dumps(evs), "sanity")
        self.assertNotIn(secret, out, "secret in the node's log")
        # Too short a secret is refused.
        r = self.api(self.node, "POST", SUBS, expect=400,
                     body={"Name": "short", "Url": recv.url, "EventTypes": ["*"], "Secret": "x" * 15})
        self.assert_error(r, 400, "ValidationFailed", what="15-character secret")
        self.assertNotIn(b"x" * 15, r.body, "the refused secret is not echoed")


class WebhookFailedTaskTests(WebhookCase):
    """Tests where a task ends Failed: a node of their own each (a node crash
    there must not take the other tests down with it)."""

    def setUp(self):
        self.node = self.start_node(db=None, env=node_env())

    def test_no_answer_retried_five_times_then_failed(self):
        dead_url = f"http://127.0.0.1:{harness.free_port()}/nobody"
        sub, _ = self.subscribe(dead_url, ["TaskQueued"])
        self.create_task({"WaitMs": 0})
        # Backoff 1 + 2 + 4 + 8 s between the 5 attempts.
        d = self.wait_deliveries(sub["Id"], lambda d: len(d) >= 5, 25, "five attempts recorded")
        time.sleep(0.5)
        d = sorted(self.deliveries(sub["Id"]), key=lambda x: x["Attempt"])
        self.assertEqual([x["Attempt"] for x in d], [1, 2, 3, 4, 5], f"5 attempts at most: {d}")
        for x in d:
            self.assertIsNone(x["StatusCode"], f"no answer: StatusCode null: {x}")
            self.assertIs(x["Succeeded"], False)
            self.assertIsInstance(x["Error"], str)
            self.assertTrue(x["Error"], f"the error says why: {x}")
        tid = d[0]["TaskId"]
        t = self.wait_until(lambda: (lambda t: t if t["IsCompleted"] else None)(self.get_task(tid)),
                            5, 0.1, "the delivery task to end", nodes=[self.node])
        self.assertEqual(t["State"], "Failed", f"after 5 failed attempts the task is Failed: {t}")
        self.assertEqual(t["Attempt"], 5)
        self.assertEqual(t["MaxAttempts"], 5)

    def test_subscription_gets_only_its_categories(self):
        ra, rb, rc = self.receiver(), self.receiver(), self.receiver()
        sa, _ = self.subscribe(ra.url, ["TaskFailed"])
        sb, _ = self.subscribe(rb.url, ["TaskQueued"])
        sc, _ = self.subscribe(rc.url, ["*"])
        t = self.create_task({"Fail": True}, MaxAttempts=1)
        done = self.get_task(t["Id"], wait=5)
        self.assertEqual(done["State"], "Failed", f"Diagnostic Fail ends Failed: {done}")
        ra.wait_count(1, 10)
        rb.wait_count(1, 10)
        rc.wait_for(lambda rs: {"TaskQueued", "TaskFailed"} <= set(self.categories(rs)), 10,
                    "TaskQueued and TaskFailed on the '*' subscription")
        time.sleep(1.0)
        self.assertEqual(self.categories(ra.snapshot()), ["TaskFailed"], "TaskFailed subscription")
        self.assertEqual(ra.snapshot()[0]["json"]["Event"]["ResourceId"], t["Id"], "about the failed task")
        self.assertEqual(self.categories(rb.snapshot()), ["TaskQueued"], "TaskQueued subscription")
        cats = self.categories(rc.snapshot())
        self.assertEqual(cats.count("TaskQueued"), 1, f"'*' subscription: {cats}")
        self.assertEqual(cats.count("TaskFailed"), 1, f"'*' subscription: {cats}")


if __name__ == "__main__":
    harness.main()
