#!/usr/bin/env python3
"""The task queue, cancellation, task cap and drain on one node (embedded SQLite).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_tasks_sqlite.py

Every node runs on its own embedded SQLite database (OCTOHA_TEST_DB is
ignored: these tests are about one node on the embedded default) with fast
lease/heartbeat timings and a TaskLogs folder of its own.

TaskTestCase (helpers for tasks: create, wait, logs, overlap of run
intervals) is also used by test_tasks_pg.py.
"""

import datetime
import json
import os
import re
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING  # noqa: E402

TASKS = "/api/tasks"
TERMINAL = ("Success", "Failed", "Canceled", "TimedOut")
ACTIVE = ("Queued", "Executing", "Cancelling")
RUNNING = ("Executing", "Cancelling")
TASK_ID_RE = re.compile(r"^ServerTasks-[0-9a-f]+$")

LEASE_MS = 2000
HEARTBEAT_MS = 200
FAST = {
    "OCTOHA_HEARTBEAT_MS": str(HEARTBEAT_MS),
    "OCTOHA_OFFLINE_TIMEOUT_MS": "2000",
    "OCTOHA_LEASE_MS": str(LEASE_MS),
    "OCTOHA_HOUSEKEEPING_MS": "250",
    "OCTOHA_POLL_MS": "50",
}

# One line of a task log: "<timestamp> <LEVEL> <text>".
LOG_LINE_RE = re.compile(r"^(\S+)\s+([A-Z]+)\s+(.*)$")


def parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value)


def max_overlap(intervals) -> int:
    """Most half-open [start, end) intervals that cover one instant."""
    events = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, 0))  # at equal times an end comes before a start
    events.sort()
    cur = best = 0
    for _, kind in events:
        cur += 1 if kind else -1
        best = max(best, cur)
    return best


class TaskTestCase(harness.OctohaTestCase):
    """Helpers for the task API (no tests of its own)."""

    # -- requests
    def create_task(self, node, args=None, expect=202, headers=None, query="", **fields):
        """POST /api/tasks with a Diagnostic task; checks the 202 answer; returns the JSON."""
        body = {"Name": "Diagnostic"}
        if args is not None:
            body["Arguments"] = args
        body.update(fields)
        r = self.api(node, "POST", TASKS + query, expect=expect, body=body, headers=headers)
        if r.status == 202:
            self.assert_accepted(r, f"POST {TASKS}{query} to {node.name}")
        return r.json

    def assert_accepted(self, r, what):
        """A 202 carries the task and a Location header naming it."""
        self.assertEqual(r.status, 202, f"{what}: status; body {r.body[:400]!r}")
        t = r.json
        self.assert_task(t, what)
        self.assertEqual(r.header("Location"), f"{TASKS}/{t['Id']}",
                         f"{what}: the Location header is the task's URL")

    def assert_task(self, t, what="task"):
        """Field coherence of one task resource (the spec checker did the types)."""
        self.assertIsInstance(t, dict, f"{what}: a task object")
        self.assertRegex(t["Id"], TASK_ID_RE, f"{what}: Id form")
        self.assertEqual(t["Links"]["Self"], f"{TASKS}/{t['Id']}", f"{what}: Links.Self")
        self.assertEqual(t["Links"]["Raw"], f"{TASKS}/{t['Id']}/raw", f"{what}: Links.Raw")
        self.assertEqual(t["IsCompleted"], t["State"] in TERMINAL, f"{what}: IsCompleted goes with State {t['State']}")
        self.assertEqual(t["FinishedSuccessfully"], t["State"] == "Success",
                         f"{what}: FinishedSuccessfully goes with State {t['State']}")
        for k in ("QueueTime", "LastUpdatedTime"):
            self.assert_timestamp(t[k], f"{what}.{k}")
        if t["IsCompleted"]:
            self.assert_timestamp(t.get("CompletedTime"), f"{what}.CompletedTime of a completed task")
        if t["State"] in RUNNING:
            self.assert_timestamp(t.get("StartTime"), f"{what}.StartTime of a running task")
            self.assertTrue(t.get("ServerNode"), f"{what}: a running task names its ServerNode: {t}")
            self.assertGreaterEqual(t["Attempt"], 1, f"{what}: a running task has been claimed at least once")
        self.assertLessEqual(t["Attempt"], t["MaxAttempts"], f"{what}: Attempt <= MaxAttempts: {t}")

    def get_task(self, node, tid, wait=None):
        q = f"?waitSeconds={wait}" if wait is not None else ""
        r = self.api(node, "GET", f"{TASKS}/{tid}{q}", expect=200, timeout=15 + (wait or 0))
        self.assert_task(r.json, f"GET {TASKS}/{tid}{q} from {node.name}")
        return r.json

    def list_tasks(self, node, query=""):
        r = self.api(node, "GET", TASKS + query, expect=200)
        for t in r.json["Items"]:
            self.assert_task(t, f"item of GET {TASKS}{query}")
        return r.json

    def raw_log(self, node, tid) -> str:
        r = self.api(node, "GET", f"{TASKS}/{tid}/raw", expect=200)
        self.assertTrue((r.header("Content-Type") or "").startswith("text/plain"),
                        f"/raw Content-Type: {r.header('Content-Type')}")
        return r.body.decode("utf-8")

    def summary(self, node) -> dict:
        """Name -> summary record."""
        j = self.api(node, "GET", NODES + "/summary", expect=200).json
        return {n["Id"]: n for n in j["Nodes"]}

    def get_node(self, observer, nid) -> dict:
        n = self.api(observer, "GET", f"{NODES}/{nid}", expect=200).json
        self.assert_node_resource(n, f"node {nid}")
        return n

    def ping_status(self, node) -> int:
        r = node.ping(timeout=5)
        self.check_spec("GET", PING, r)
        return r.status

    # -- waiting
    def wait_until(self, fn, timeout, interval=0.05, msg="", nodes=()):
        """harness.wait_until; on timeout also the nodes' logs (without request lines)."""
        try:
            return harness.wait_until(fn, timeout, interval, msg)
        except AssertionError as e:
            if not nodes:
                raise
            raise AssertionError(f"{e}\n" + "\n".join(node_tail(n) for n in nodes)) from None

    def wait_task(self, node, tid, pred, timeout, what, nodes=()):
        """Poll the task until pred(task); returns it. Fails with the last task seen."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = self.get_task(node, tid)
            if pred(last):
                return last
            if time.monotonic() >= deadline:
                info = "\n".join(node_tail(n) for n in nodes)
                self.fail(f"timed out after {timeout:.1f}s waiting for task {tid}: {what}\nlast: {last}\n{info}")
            time.sleep(0.05)

    def wait_state(self, node, tid, states, timeout, nodes=()):
        states = (states,) if isinstance(states, str) else tuple(states)
        return self.wait_task(node, tid, lambda t: t["State"] in states, timeout, f"State in {states}", nodes)

    def wait_done(self, node, tid, timeout, nodes=()):
        return self.wait_task(node, tid, lambda t: t["IsCompleted"], timeout, "the task to end", nodes)

    def wait_all_done(self, node, ids, timeout, nodes=()):
        deadline = time.monotonic() + timeout
        out = {}
        for tid in ids:
            out[tid] = self.wait_done(node, tid, max(0.5, deadline - time.monotonic()), nodes)
        return out

    def wait_ping(self, node, status, timeout, since=None):
        """Wait until ping answers `status`; returns seconds since `since` (or now)."""
        t0 = time.monotonic() if since is None else since
        self.wait_until(lambda: self.ping_status(node) == status, timeout, interval=0.02,
                        msg=f"ping of {node.name} to answer {status}", nodes=[node])
        return time.monotonic() - t0

    # -- logs
    def log_entries(self, text):
        """[(datetime, level, text)] of a task log; every line must parse."""
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            m = LOG_LINE_RE.match(line)
            self.assertIsNotNone(m, f"task log line has the form '<time> <LEVEL> <text>': {line!r}")
            self.assertRegex(m.group(1), harness.TIMESTAMP_RE, f"task log timestamp: {line!r}")
            out.append((parse_time(m.group(1)), m.group(2), m.group(3)))
        return out

    def attempt_starts(self, entries):
        """[(attempt, max, node_id, time)] from 'Attempt N of M on node X' lines."""
        out = []
        for when, _, text in entries:
            m = re.match(r"^Attempt (\d+) of (\d+) on node (\S+)$", text)
            if m:
                out.append((int(m.group(1)), int(m.group(2)), m.group(3), when))
        return out

    def attempt_ends(self, entries):
        """[(attempt, outcome, time)] from 'Attempt N ended: X' lines."""
        out = []
        for when, _, text in entries:
            m = re.match(r"^Attempt (\d+) ended: (\w+)", text)
            if m:
                out.append((int(m.group(1)), m.group(2), when))
        return out

    def assert_one_success_log(self, node, t, what):
        """The log of a task that ended Success: one start line per attempt, one success end."""
        text = self.raw_log(node, t["Id"])
        entries = self.log_entries(text)
        starts = self.attempt_starts(entries)
        ends = self.attempt_ends(entries)
        self.assertEqual([a for a, _, _, _ in starts], list(range(1, t["Attempt"] + 1)),
                         f"{what}: one 'Attempt N of M on node' line per attempt\n{text}")
        for a, m, _, _ in starts:
            self.assertEqual(m, t["MaxAttempts"], f"{what}: 'Attempt {a} of M' names MaxAttempts\n{text}")
        self.assertEqual(starts[-1][2], t["ServerNode"], f"{what}: the last attempt ran on ServerNode\n{text}")
        successes = [e for e in ends if e[1] == "Success"]
        self.assertEqual(len(successes), 1, f"{what}: exactly one 'ended: Success' line\n{text}")
        self.assertEqual(successes[0][0], t["Attempt"], f"{what}: the success is the last attempt's\n{text}")
        return text, entries

    # -- nodes
    def logs_dir(self) -> Path:
        return harness.make_tmp_dir("tasklogs")


def node_tail(node, lines: int = 25) -> str:
    """The node's state and last stderr lines, without the per-request lines."""
    kept = [l for l in node.log.splitlines() if "msg=request" not in l][-lines:]
    return f"--- node {node.name} ({node.state}), stderr without requests ---\n" + "\n".join(kept)


def node_env(logs_dir, **extra) -> dict:
    env = dict(FAST, OCTOHA_TASK_LOGS_DIR=str(logs_dir))
    env.update({k: str(v) for k, v in extra.items()})
    return env


class SqliteTaskCase(TaskTestCase):
    def solo(self, cap=5, **extra):
        """A node of its own on embedded SQLite, stopped at the end of the test."""
        self.logs = self.logs_dir()
        return self.start_node(db=None, env=node_env(self.logs, OCTOHA_TASK_CAP=cap, **extra))


# ---------------------------------------------------------------------------


class DiagnosticTaskTests(SqliteTaskCase):
    """One node shared by the class (cap 5)."""

    @classmethod
    def setUpClass(cls):
        cls.logs = harness.make_tmp_dir("tasklogs")
        cls.node = cls.start_class_node(db=None, env=node_env(cls.logs, OCTOHA_TASK_CAP=5))

    def test_success_with_result_and_log(self):
        n = self.node
        t = self.create_task(n, {"WaitMs": 300, "LogLines": 3}, Description="hello queue")
        self.assertEqual(t["Name"], "Diagnostic", "Name")
        self.assertEqual(t["Description"], "hello queue", "Description as sent")
        self.assertEqual(t["Arguments"], {"WaitMs": 300, "LogLines": 3}, "Arguments as sent")
        self.assertEqual(t["MaxAttempts"], 3, "default MaxAttempts")
        self.assertIn(t["State"], ACTIVE + ("Success",), "a new task is queued, running or (fast) done")

        done = self.wait_done(n, t["Id"], 10, nodes=[n])
        self.assertEqual(done["State"], "Success", f"task ends Success: {done}")
        self.assertEqual(done["Attempt"], 1, "one attempt")
        self.assertEqual(done["ServerNode"], n.id, "ran on the only node")
        self.assertIsNone(done["TargetNode"], "no target")
        self.assertIs(done["HasBeenPickedUpByProcessor"], True, "picked up")
        self.assertEqual(done["Progress"], 100, "Progress 100 at the end")
        self.assertIsNone(done["ErrorMessage"], "no ErrorMessage on success")
        self.assertEqual(done["Result"], {"Node": n.id, "Attempt": 1}, "Result of a Diagnostic task")
        self.assertLessEqual(parse_time(done["QueueTime"]), parse_time(done["StartTime"]), "QueueTime <= StartTime")
        self.assertLessEqual(parse_time(done["StartTime"]), parse_time(done["CompletedTime"]), "StartTime <= CompletedTime")
        ran = (parse_time(done["CompletedTime"]) - parse_time(done["StartTime"])).total_seconds()
        self.assertGreaterEqual(ran, 0.29, "WaitMs 300 took at least 300 ms between StartTime and CompletedTime")

        text, entries = self.assert_one_success_log(n, done, "success log")
        self.assertEqual(entries[0][2], f"Attempt 1 of 3 on node {n.id}", f"first log line\n{text}")
        self.assertEqual(entries[-1][2], "Attempt 1 ended: Success", f"last log line\n{text}")
        lines = [x for _, _, x in entries if x.startswith("Diagnostic line")]
        self.assertEqual(lines, [f"Diagnostic line {i} of 3" for i in (1, 2, 3)], f"LogLines 3\n{text}")
        times = [w for w, _, _ in entries]
        self.assertEqual(times, sorted(times), f"log lines in time order\n{text}")
        # The log is a file in the TaskLogs folder, the same text /raw serves.
        files = [p.name for p in self.logs.iterdir()]
        self.assertTrue(any(done["Id"] in f for f in files), f"a file for {done['Id']} in TaskLogs {self.logs}: {files}")
        on_disk = [p for p in self.logs.iterdir() if done["Id"] in p.name][0].read_text()
        self.assertEqual(on_disk, text, "the TaskLogs file holds what /raw serves")

    def test_raw_of_unknown_task_is_404(self):
        r = self.api(self.node, "GET", f"{TASKS}/ServerTasks-0123456789abcdef0123/raw", expect=404)
        self.assert_error(r, 404, "NotFound", "id", what="/raw of an unknown task")

    def test_retries_then_success(self):
        n = self.node
        t0 = time.monotonic()
        t = self.create_task(n, {"FailAttempts": 2})
        self.assertEqual(t["MaxAttempts"], 3, "default MaxAttempts 3")
        done = self.wait_done(n, t["Id"], 15, nodes=[n])
        took = time.monotonic() - t0
        self.assertEqual(done["State"], "Success", f"FailAttempts 2 of 3 ends Success: {done}")
        self.assertEqual(done["Attempt"], 3, "third attempt succeeded")
        self.assertEqual(done["Result"], {"Node": n.id, "Attempt": 3}, "Result names the attempt")
        self.assertIsNone(done["ErrorMessage"], "a success clears the retry's ErrorMessage")
        self.assertGreaterEqual(took, 2.8, "backoff of 1 s then 2 s before the third attempt")

        text, entries = self.assert_one_success_log(n, done, "retry log")
        starts = {a: w for a, _, _, w in self.attempt_starts(entries)}
        ends = {a: (o, w) for a, o, w in self.attempt_ends(entries)}
        self.assertEqual(ends[1][0], "Retry", f"attempt 1 ends Retry\n{text}")
        self.assertEqual(ends[2][0], "Retry", f"attempt 2 ends Retry\n{text}")
        gap1 = (starts[2] - ends[1][1]).total_seconds()
        gap2 = (starts[3] - ends[2][1]).total_seconds()
        self.assertGreaterEqual(gap1, 0.9, f"~1 s backoff before attempt 2 (was {gap1:.3f}s)\n{text}")
        self.assertLess(gap1, 2.5, f"backoff before attempt 2 is about 1 s (was {gap1:.3f}s)\n{text}")
        self.assertGreaterEqual(gap2, 1.9, f"~2 s backoff before attempt 3 (was {gap2:.3f}s)\n{text}")
        self.assertLess(gap2, 3.5, f"backoff before attempt 3 is about 2 s (was {gap2:.3f}s)\n{text}")

    def test_retries_exhausted_then_failed(self):
        n = self.node
        t = self.create_task(n, {"FailAttempts": 5}, MaxAttempts=2)
        self.assertEqual(t["MaxAttempts"], 2, "MaxAttempts as sent")
        done = self.wait_done(n, t["Id"], 10, nodes=[n])
        self.assertEqual(done["State"], "Failed", f"out of attempts: Failed: {done}")
        self.assertEqual(done["Attempt"], 2, "both attempts used")
        self.assertIs(done["FinishedSuccessfully"], False, "not successful")
        self.assertIsInstance(done["ErrorMessage"], str, "a failure has an ErrorMessage")
        self.assertIn("attempt 2", done["ErrorMessage"], "the ErrorMessage is the last attempt's")
        text = self.raw_log(n, done["Id"])
        entries = self.log_entries(text)
        self.assertEqual([a for a, *_ in self.attempt_starts(entries)], [1, 2], f"two attempts in the log\n{text}")
        self.assertNotIn("Success", [o for _, o, _ in self.attempt_ends(entries)], f"no success in the log\n{text}")

    def test_log_of_last_failed_attempt_does_not_promise_a_retry(self):
        # The final attempt of a task that runs out of attempts ends the task
        # Failed; its log line should not say it will be retried.
        n = self.node
        t = self.create_task(n, {"FailAttempts": 5}, MaxAttempts=1)
        done = self.wait_done(n, t["Id"], 10, nodes=[n])
        self.assertEqual(done["State"], "Failed", f"one attempt, failed: {done}")
        text = self.raw_log(n, done["Id"])
        ends = self.attempt_ends(self.log_entries(text))
        self.assertEqual(len(ends), 1, f"one end line\n{text}")
        self.assertEqual(ends[0][1], "Failed",
                         f"the last attempt's log line says how the task ended (Failed), not 'Retry'\n{text}")

    def test_fail_for_good(self):
        n = self.node
        t = self.create_task(n, {"Fail": True})
        done = self.wait_done(n, t["Id"], 10, nodes=[n])
        self.assertEqual(done["State"], "Failed", f"Fail: true ends Failed: {done}")
        self.assertEqual(done["Attempt"], 1, "a non-retryable failure is not retried")
        self.assertIsNone(done["Result"], "no Result on failure")
        self.assertIn("as asked", done["ErrorMessage"] or "", "ErrorMessage says why")
        ends = self.attempt_ends(self.log_entries(self.raw_log(n, done["Id"])))
        self.assertEqual([(a, o) for a, o, _ in ends], [(1, "Failed")], "log ends 'Attempt 1 ended: Failed'")

    def test_cancel_executing_then_completed(self):
        n = self.node
        t = self.create_task(n, {"WaitMs": 20000, "LogLines": 200})
        self.wait_state(n, t["Id"], "Executing", 5, nodes=[n])
        r = self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=202)
        self.assert_accepted(r, "cancel of an executing task")
        self.assertIn(r.json["State"], ("Cancelling", "Canceled"), f"cancel moves an executing task to Cancelling: {r.json}")
        if r.json["State"] == "Cancelling":
            self.assertIs(r.json["IsCompleted"], False, "Cancelling is not completed")
        t_cancel = time.monotonic()
        done = self.wait_done(n, t["Id"], LEASE_MS / 1000 + 3, nodes=[n])
        self.assertEqual(done["State"], "Canceled", f"ends Canceled: {done}")
        self.assertLess(time.monotonic() - t_cancel, LEASE_MS / 1000 + 3, "the worker noticed within a lease renewal")
        self.assertIs(done["FinishedSuccessfully"], False, "not successful")
        self.assertIsNone(done["Result"], "no Result")
        ran = (parse_time(done["CompletedTime"]) - parse_time(done["StartTime"])).total_seconds()
        self.assertLess(ran, 15, "stopped well before its 20 s wait")
        ends = self.attempt_ends(self.log_entries(self.raw_log(n, done["Id"])))
        self.assertEqual([(a, o) for a, o, _ in ends], [(1, "Canceled")], "log ends 'Attempt 1 ended: Canceled'")
        # Now it has ended: cancel is refused.
        r = self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=409)
        self.assert_error(r, 409, "TaskAlreadyCompleted", what="cancel of a canceled task")

    def test_cancel_with_wait_seconds_answers_the_end(self):
        n = self.node
        t = self.create_task(n, {"WaitMs": 20000, "LogLines": 200})
        self.wait_state(n, t["Id"], "Executing", 5, nodes=[n])
        r = self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel?waitSeconds=10", expect=202, timeout=20)
        self.assert_accepted(r, "cancel?waitSeconds=10")
        self.assertEqual(r.json["State"], "Canceled", f"with waitSeconds the answer waits for the end: {r.json}")

    def test_cancel_of_finished_task_409(self):
        n = self.node
        t = self.create_task(n, {"WaitMs": 0})
        done = self.wait_done(n, t["Id"], 10, nodes=[n])
        self.assertEqual(done["State"], "Success", "the task ended")
        r = self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=409)
        self.assert_error(r, 409, "TaskAlreadyCompleted", what="cancel of a finished task")
        self.assertEqual(self.get_task(n, t["Id"])["State"], "Success", "still Success after the refused cancel")

    def test_idempotency_key(self):
        n = self.node
        key = f"idem-{uuid.uuid4().hex}"
        desc = f"idempotent {uuid.uuid4().hex[:8]}"
        a = self.create_task(n, {"WaitMs": 0}, headers={"Idempotency-Key": key}, Description=desc)
        # The same request again (same operation, path and body) is a replay.
        b = self.create_task(n, {"WaitMs": 0}, headers={"Idempotency-Key": key}, Description=desc)
        self.assertEqual(b["Id"], a["Id"], "the same request with the same key returns the first task")
        # The same JSON written in another key order is the same request.
        r = n.request("POST", TASKS, headers={"Idempotency-Key": key, "Content-Type": "application/json"},
                      body=json.dumps({"Description": desc, "Arguments": {"WaitMs": 0},
                                       "Name": "Diagnostic"}, indent=2))
        self.assertEqual((r.status, r.json["Id"]), (202, a["Id"]), "key order does not matter")
        # The key with another body is refused, and queues nothing.
        r = self.api(n, "POST", TASKS, expect=422, headers={"Idempotency-Key": key},
                     body={"Name": "Diagnostic", "Description": desc + " again", "Arguments": {"WaitMs": 5}})
        self.assert_error(r, 422, "IdempotencyKeyReused", field="Idempotency-Key",
                          what="a key reused with another body")
        c = self.create_task(n, {"WaitMs": 0}, headers={"Idempotency-Key": key + "-other"}, Description=desc + " other")
        self.assertNotEqual(c["Id"], a["Id"], "another key, another task")
        # The key belongs to its caller: another API key may use the same one.
        other = self.api(n, "POST", "/api/apikeys", body={"Name": f"idem-{key[-6:]}", "Role": "Operator"},
                         expect=201, check_spec=False).json["ApiKey"]
        r = self.api(n, "POST", TASKS, expect=202, headers={"Idempotency-Key": key}, key=other,
                     body={"Name": "Diagnostic", "Arguments": {"WaitMs": 0}, "Description": desc})
        d = r.json
        self.assertNotEqual(d["Id"], a["Id"], "another caller's key is another key")
        # Concurrent requests with one fresh key: one task; each answer is
        # that task (202) or 409 while the first was still being committed.
        key2 = f"idem-{uuid.uuid4().hex}"
        ids, errors = [], []

        def post():
            try:
                r = n.request("POST", TASKS, body={"Name": "Diagnostic", "Description": desc + " burst"},
                              headers={"Idempotency-Key": key2})
                ids.append((r.status, (r.json or {}).get("Id"), (r.json or {}).get("Code")))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=post) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        self.assertEqual(errors, [], "every concurrent POST was answered")
        self.assertTrue({s for s, _, _ in ids} <= {202, 409}, f"202 or 409 only: {ids}")
        self.assertTrue(all(c == "IdempotencyKeyInFlight" for s, _, c in ids if s == 409), ids)
        self.assertEqual(len({i for s, i, _ in ids if s == 202}), 1, f"one task for one key: {ids}")
        listed = self.list_tasks(n, "?name=Diagnostic&take=1000")["Items"]
        self.assertEqual(sum(1 for x in listed if x["Description"] == desc), 2,
                         "one task for the first key, one for the other caller's")
        self.assertEqual(sum(1 for x in listed if x["Description"] == desc + " burst"), 1,
                         "one task listed for the concurrent key")
        self.assertEqual(sum(1 for x in listed if x["Description"] == desc + " again"), 0,
                         "the refused request queued nothing")

    def test_idempotency_key_is_bound_to_the_operation(self):
        """Issue 9.5: a key used to queue a task and then to drain the node
        must not answer the drain with the old task (and leave the node
        undrained): it is refused, and nothing changes."""
        n = self.node
        key = f"same-{uuid.uuid4().hex[:8]}"
        t = self.create_task(n, {"WaitMs": 0}, headers={"Idempotency-Key": key})
        node_id = harness.node_id(n.name)
        r = self.api(n, "POST", f"{NODES}/{node_id}/drain", expect=422,
                     headers={"Idempotency-Key": key}, body={"Reason": "patching", "Force": True})
        self.assert_error(r, 422, "IdempotencyKeyReused", field="Idempotency-Key", what="a key reused on drain")
        self.assertNotEqual(r.json.get("Id"), t["Id"])
        node = self.api(n, "GET", f"{NODES}/{node_id}").json
        self.assertFalse(node["IsInMaintenanceMode"], "the node was not drained")
        self.assertEqual(n.ping().status, 200, "ping still 200")

    def test_validation_errors(self):
        n = self.node
        bad_bodies = [
            ({"Name": "Nope"}, "Name"),
            ({}, "Name"),
            ({"Name": "Diagnostic", "Arguments": {"WaitMs": 3600001}}, ("Arguments.WaitMs", "WaitMs")),
            ({"Name": "Diagnostic", "Arguments": {"WaitMs": -1}}, ("Arguments.WaitMs", "WaitMs")),
            ({"Name": "Diagnostic", "Arguments": {"LogLines": 1001}}, ("Arguments.LogLines", "LogLines")),
            ({"Name": "Diagnostic", "Arguments": {"WaitMs": "10"}}, ("Arguments.WaitMs", "WaitMs")),
            ({"Name": "Diagnostic", "Arguments": {"Bogus": 1}}, ("Arguments.Bogus", "Bogus")),
            ({"Name": "Diagnostic", "MaxAttempts": 0}, "MaxAttempts"),
            ({"Name": "Diagnostic", "MaxAttempts": 21}, "MaxAttempts"),
            ({"Name": "Diagnostic", "TargetNodeId": "not a node id"}, "TargetNodeId"),
            ({"Name": "Diagnostic", "Surprise": True}, "Surprise"),
        ]
        for body, field in bad_bodies:
            with self.subTest(body=body):
                r = self.api(n, "POST", TASKS, expect=400, body=body)
                self.assert_error(r, 400, "ValidationFailed", what=f"POST {body}")
                fields = field if isinstance(field, tuple) else (field,)
                self.assertIn(r.json.get("Field"), fields, f"Field names the culprit: {r.json}")
        r = self.api(n, "POST", TASKS, expect=404, body={"Name": "Diagnostic", "TargetNodeId": "OctopusServerNodes-nobody"})
        self.assert_error(r, 404, "NotFound", "TargetNodeId", what="TargetNodeId of no node")
        r = self.api(n, "POST", TASKS, expect=400, body="{nope", headers={"Content-Type": "application/json"})
        self.assert_error(r, 400, "InvalidJson", what="malformed JSON")
        r = self.api(n, "POST", TASKS, expect=415, body="hi", headers={"Content-Type": "text/plain"}, template=False)
        self.assert_error(r, 415, "UnsupportedMediaType", what="text/plain body")
        r = self.api(n, "POST", TASKS, expect=400, body={"Name": "Diagnostic"}, headers={"Idempotency-Key": "k" * 201})
        self.assert_error(r, 400, "ValidationFailed", "Idempotency-Key", what="Idempotency-Key too long")

        for bad in ("ServerTasks-XYZ", "ServerTasks-", "foo", "ServerTasks-12g4", "ServerTasks-ABCDEF",
                    "servertasks-0123456789abcdef"):
            for suffix, method in (("", "GET"), ("/cancel", "POST"), ("/raw", "GET")):
                with self.subTest(id=bad, op=suffix or "get"):
                    r = self.api(n, method, f"{TASKS}/{bad}{suffix}", expect=400)
                    self.assert_error(r, 400, "ValidationFailed", "id", what=f"{method} {TASKS}/{bad}{suffix}")
        for suffix, method in (("", "GET"), ("/cancel", "POST"), ("/raw", "GET")):
            with self.subTest(unknown=suffix or "get"):
                r = self.api(n, method, f"{TASKS}/ServerTasks-0123456789abcdef0123{suffix}", expect=404)
                self.assert_error(r, 404, "NotFound", what=f"{method} unknown task{suffix}")

        for query, field in (("states=Bogus", "states"), ("states=queued", "states"), ("states=Queued,", "states"),
                             ("states=", "states"), ("active=maybe", "active"), ("take=0", "take"),
                             ("take=1001", "take"), ("skip=-1", "skip"), ("skip=x", "skip"),
                             ("active=true&states=Success", "states")):
            with self.subTest(query=query):
                r = self.api(n, "GET", f"{TASKS}?{query}", expect=400)
                self.assert_error(r, 400, "ValidationFailed", field, what=f"GET {TASKS}?{query}")
        t = self.create_task(n, {"WaitMs": 0})
        for q in ("waitSeconds=301", "waitSeconds=-1", "waitSeconds=soon"):
            with self.subTest(wait=q):
                r = self.api(n, "GET", f"{TASKS}/{t['Id']}?{q}", expect=400)
                self.assert_error(r, 400, "ValidationFailed", "waitSeconds", what=f"GET task ?{q}")

    def test_wait_seconds_until_end(self):
        n = self.node
        t = self.create_task(n, {"WaitMs": 1500})
        t0 = time.monotonic()
        done = self.get_task(n, t["Id"], wait=20)
        took = time.monotonic() - t0
        self.assertEqual(done["State"], "Success", f"waitSeconds=20 answers once the task ended: {done}")
        self.assertGreaterEqual(took, 1.0, "it waited for the task")
        self.assertLess(took, 8, "it answered when the task ended, not at waitSeconds")
        # POST with waitSeconds answers the ended task too.
        t0 = time.monotonic()
        t2 = self.create_task(n, {"WaitMs": 500}, query="?waitSeconds=20")
        self.assertEqual(t2["State"], "Success", f"POST ?waitSeconds=20 answers the ended task: {t2}")
        self.assertLess(time.monotonic() - t0, 8, "and soon")

    def test_wait_seconds_honours_the_full_wait(self):
        # waitSeconds=N on a task that does not end in time answers after N
        # seconds, not earlier.
        n = self.node
        t = self.create_task(n, {"WaitMs": 60000, "LogLines": 600})
        self.wait_state(n, t["Id"], "Executing", 5, nodes=[n])
        try:
            for i in range(4):
                time.sleep(0.23 * i)  # different phases of the server's clock second
                t0 = time.monotonic()
                got = self.get_task(n, t["Id"], wait=1)
                took = time.monotonic() - t0
                self.assertEqual(got["State"], "Executing", "still running after the wait")
                self.assertGreaterEqual(took, 0.95, f"waitSeconds=1 answered after {took:.3f}s (round {i})")
                self.assertLess(took, 3, f"waitSeconds=1 answered after {took:.3f}s (round {i})")
        finally:
            self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=(202, 409))


class QueuedTaskTests(SqliteTaskCase):
    """A node with task cap 0: nothing runs, so tasks stay Queued."""

    @classmethod
    def setUpClass(cls):
        cls.logs = harness.make_tmp_dir("tasklogs")
        cls.node = cls.start_class_node(db=None, env=node_env(cls.logs, OCTOHA_TASK_CAP=0))

    def test_cap_zero_runs_nothing(self):
        n = self.node
        self.assertEqual(self.ping_status(n), 200, "a cap-0 node is online")
        self.assertEqual(n.ping().json["MaxConcurrentTasks"], 0, "ping shows cap 0")
        t = self.create_task(n, {"WaitMs": 0})
        time.sleep(1.0)
        got = self.get_task(n, t["Id"])
        self.assertEqual(got["State"], "Queued", f"cap 0: the task stays Queued: {got}")
        self.assertEqual(got["Attempt"], 0, "never claimed")
        self.assertIs(got["HasBeenPickedUpByProcessor"], False, "not picked up")
        self.assertIsNone(got["StartTime"], "no StartTime")
        self.assertIsNone(got["ServerNode"], "no ServerNode")
        self.assertEqual(self.raw_log(n, t["Id"]), "", "the log is empty before the task starts")
        self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=202)

    def test_cancel_queued_is_immediate(self):
        n = self.node
        t = self.create_task(n, {"WaitMs": 0})
        self.assertEqual(t["State"], "Queued", "queued on a cap-0 node")
        r = self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=202)
        self.assert_accepted(r, "cancel of a queued task")
        self.assertEqual(r.json["State"], "Canceled", f"a queued task ends Canceled at once: {r.json}")
        self.assertIs(r.json["IsCompleted"], True, "completed")
        self.assert_timestamp(r.json["CompletedTime"], "CompletedTime")
        self.assertEqual(r.json["Attempt"], 0, "never ran")
        got = self.get_task(n, t["Id"])
        self.assertEqual(got["State"], "Canceled", "GET agrees")
        r = self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=409)
        self.assert_error(r, 409, "TaskAlreadyCompleted", "id", what="second cancel")

    def test_wait_seconds_on_a_queued_task(self):
        n = self.node
        t = self.create_task(n, {"WaitMs": 0})
        try:
            t0 = time.monotonic()
            got = self.get_task(n, t["Id"], wait=2)
            took = time.monotonic() - t0
            self.assertEqual(got["State"], "Queued", "still queued")
            self.assertGreaterEqual(took, 1.95, f"waitSeconds=2 waits 2 s for a task that does not end (took {took:.3f}s)")
            self.assertLess(took, 4, f"and answers then (took {took:.3f}s)")
            t0 = time.monotonic()
            got = self.get_task(n, t["Id"], wait=0)
            self.assertLess(time.monotonic() - t0, 1, "waitSeconds=0 answers at once")
        finally:
            self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=202)


class ListTaskTests(SqliteTaskCase):
    def test_filters_and_paging(self):
        n = self.solo(cap=0)
        ids = []
        for i in range(5):
            ids.append(self.create_task(n, {"WaitMs": 0}, Description=f"list {i}")["Id"])
            time.sleep(0.01)  # distinct QueueTimes: the list is newest first
        for tid in ids[:2]:
            self.api(n, "POST", f"{TASKS}/{tid}/cancel", expect=202)

        j = self.list_tasks(n)
        self.assertEqual(j["ItemType"], "ServerTask", "ItemType")
        self.assertEqual((j["TotalResults"], j["ItemsPerPage"], j["NumberOfPages"], j["LastPageNumber"]), (5, 30, 1, 0),
                         "TotalResults, ItemsPerPage, NumberOfPages, LastPageNumber of 5 tasks")
        self.assertEqual([t["Id"] for t in j["Items"]], ids[::-1], "newest first")
        self.assertEqual(j["Links"]["Self"], f"{TASKS}?skip=0&take=30", "Links.Self names the page")

        def ids_of(query):
            return {t["Id"] for t in self.list_tasks(n, query)["Items"]}

        def total(query):
            return self.list_tasks(n, query)["TotalResults"]

        self.assertEqual(ids_of("?states=Queued"), set(ids[2:]), "states=Queued")
        self.assertEqual(ids_of("?states=Canceled"), set(ids[:2]), "states=Canceled")
        self.assertEqual(ids_of("?states=Queued,Canceled"), set(ids), "two states")
        self.assertEqual(ids_of("?states=Success"), set(), "no Success yet")
        self.assertEqual(total("?states=Queued"), 3, "TotalResults follows the filter")
        self.assertEqual(ids_of("?active=true"), set(ids[2:]), "active=true: the queued ones")
        self.assertEqual(ids_of("?active=false"), set(ids), "active=false filters nothing")
        self.assertEqual(ids_of("?active=true&states=Queued,Success"), set(ids[2:]), "active and states combine")
        self.assertEqual(ids_of("?name=Diagnostic"), set(ids), "name=Diagnostic")
        self.assertEqual(ids_of("?name=Drain"), set(), "name=Drain")
        self.assertEqual(ids_of(f"?node={n.id}"), set(), "nothing ran on the node yet")

        # Paging.
        p = self.list_tasks(n, "?take=2")
        self.assertEqual((p["TotalResults"], p["ItemsPerPage"], p["NumberOfPages"], p["LastPageNumber"]), (5, 2, 3, 2),
                         "5 tasks, take=2")
        self.assertEqual(p["Links"]["Self"], f"{TASKS}?skip=0&take=2", "Links.Self")
        pages = []
        for skip in (0, 2, 4):
            pages += [t["Id"] for t in self.list_tasks(n, f"?skip={skip}&take=2")["Items"]]
        self.assertEqual(pages, ids[::-1], "the pages together are the whole list, in order, once each")
        self.assertEqual(self.list_tasks(n, "?skip=4&take=2")["Items"][0]["Id"], ids[0], "last page holds the oldest")
        self.assertEqual(self.list_tasks(n, "?skip=10&take=2")["Items"], [], "past the end: empty page")
        q = self.list_tasks(n, "?states=Queued&take=1&skip=1")
        self.assertEqual((q["TotalResults"], len(q["Items"]), q["NumberOfPages"]), (3, 1, 3), "filter and paging combine")
        self.assertEqual(q["Items"][0]["Id"], ids[3], "second newest queued task")

        # Let them run: the node filter then finds them.
        r = self.api(n, "PUT", f"{NODES}/{n.id}", expect=202, body={"MaxConcurrentTasks": 2})
        self.assert_accepted(r, "PUT cap 2")
        self.wait_all_done(n, ids[2:], 10, nodes=[n])
        self.assertEqual(ids_of(f"?node={n.id}&name=Diagnostic"), set(ids[2:]), "node= filter: the tasks that ran there")
        self.assertEqual(ids_of("?states=Success&name=Diagnostic"), set(ids[2:]), "states=Success")
        self.assertEqual(ids_of("?name=SetTaskCap"), {r.json["Id"]}, "name=SetTaskCap: the PUT's task")
        self.assertEqual(ids_of("?active=true&name=Diagnostic"), set(), "nothing active any more")

    def test_cursor_pages_and_deep_skip(self):
        """Pages by cursor (Links.Page.Next, after=) cover the list in order;
        a skip past 10000 is refused rather than read row by row."""
        n = self.solo(cap=0)
        ids = []
        for i in range(5):
            ids.append(self.create_task(n, {"WaitMs": 0}, Description=f"cursor {i}")["Id"])
            time.sleep(0.01)
        seen, path = [], f"{TASKS}?take=2"
        for _ in range(5):
            page = self.list_tasks(n, path[len(TASKS):])
            seen += [t["Id"] for t in page["Items"]]
            nxt = page["Links"].get("Page.Next")
            if not nxt:
                break
            self.assertTrue(nxt.startswith(f"{TASKS}?take=2&after="), f"Page.Next: {nxt}")
            path = nxt
        self.assertEqual(seen, ids[::-1], "the cursor pages are the whole list, newest first, once each")
        self.assertNotIn("Page.Next", page["Links"], "a short page is the last: no Page.Next")
        # The cursor keeps the filters, and skip counts from it.
        q = self.list_tasks(n, f"?states=Queued&take=1&after={ids[4]}")
        self.assertEqual([t["Id"] for t in q["Items"]], [ids[3]], "after the newest: the next one")
        self.assertEqual(q["TotalResults"], 5, "TotalResults counts the whole filtered list")
        self.assertIn("states=Queued", q["Links"]["Page.Next"], "Page.Next keeps the filter")
        q = self.list_tasks(n, f"?after={ids[4]}&skip=2&take=1")
        self.assertEqual([t["Id"] for t in q["Items"]], [ids[1]], "skip counts from the cursor")
        # An unknown cursor and a deep skip are the client's mistakes.
        r = self.api(n, "GET", f"{TASKS}?after=ServerTasks-0000000000000000dead", expect=400)
        self.assert_error(r, 400, "ValidationFailed", "after", "after names no task")
        r = self.api(n, "GET", f"{TASKS}?skip=10001", expect=400)
        self.assert_error(r, 400, "SkipTooDeep", "skip", "skip past 10000")
        self.assertEqual(self.list_tasks(n, "?skip=10000")["Items"], [], "skip=10000 is still served")
        r = self.api(n, "GET", "/api/events?skip=10001", expect=400)
        self.assert_error(r, 400, "SkipTooDeep", "skip", "events: skip past 10000")
        ev = self.api(n, "GET", "/api/events?take=2", expect=200).json
        nxt = ev["Links"]["Page.Next"]
        ev2 = self.api(n, "GET", nxt, expect=200).json
        self.assertNotIn(ev2["Items"][0]["Id"], [e["Id"] for e in ev["Items"]], "events: the next page")
        self.assertEqual(self.api(n, "GET", f"/api/events?take=1&after={ev['Items'][0]['Id']}",
                                  expect=200).json["Items"][0]["Id"], ev["Items"][1]["Id"],
                         "events: after the newest, the second newest")


class CapTests(SqliteTaskCase):
    def test_cap_is_respected(self):
        n = self.solo(cap=2)
        ids = [self.create_task(n, {"WaitMs": 1000})["Id"] for _ in range(6)]
        max_summary = max_listed = samples = 0
        deadline = time.monotonic() + 15
        while True:
            s = self.summary(n)[n.id]
            self.assertEqual(s["MaxConcurrentTasks"], 2, "summary shows the cap")
            running = self.list_tasks(n, "?states=Executing,Cancelling")["TotalResults"]
            samples += 1
            max_summary = max(max_summary, s["RunningTaskCount"])
            max_listed = max(max_listed, running)
            self.assertLessEqual(s["RunningTaskCount"], 2, f"RunningTaskCount never exceeds the cap (sample {samples})")
            self.assertLessEqual(running, 2, f"Executing tasks never exceed the cap (sample {samples})")
            if self.list_tasks(n, "?active=true")["TotalResults"] == 0:
                break
            self.assertLess(time.monotonic(), deadline, f"6 tasks of 1 s at cap 2 end within 15 s\n{n.log_tail()}")
            time.sleep(0.03)
        self.assertGreaterEqual(samples, 20, "sampled many times")
        self.assertEqual(max_summary, 2, "the node did run 2 at once (RunningTaskCount reached the cap)")
        self.assertEqual(max_listed, 2, "2 Executing at once at most and at least")
        done = [self.get_task(n, i) for i in ids]
        self.assertEqual({t["State"] for t in done}, {"Success"}, "all succeed")
        intervals = [(parse_time(t["StartTime"]), parse_time(t["CompletedTime"])) for t in done]
        self.assertEqual(max_overlap(intervals), 2, f"run intervals overlap 2 at most (StartTime..CompletedTime): {intervals}")
        self.assertEqual(self.summary(n)[n.id]["RunningTaskCount"], 0, "idle at the end")

    def test_tasks_claimed_together_run_together(self):
        # Tasks claimed in one batch by a node that has never run any must
        # run at once, not one after another on the same worker thread.
        n = self.solo(cap=0)
        ids = [self.create_task(n, {"WaitMs": 1500})["Id"] for _ in range(4)]
        node = self.get_node(n, n.id)
        t0 = time.monotonic()
        r = self.api(n, "PUT", f"{NODES}/{n.id}", expect=202, body=dict(node, MaxConcurrentTasks=4))
        self.assert_accepted(r, "PUT MaxConcurrentTasks 4")
        done = [self.wait_done(n, i, 15, nodes=[n]) for i in ids]
        took = time.monotonic() - t0
        self.assertEqual({t["State"] for t in done}, {"Success"}, "all succeed")
        self.assertLess(took, 4.5, f"4 tasks of 1.5 s at cap 4 run side by side (took {took:.2f}s)\n{n.log_tail()}")
        # Each log's second line is written when the task starts running.
        starts = []
        for i in ids:
            lines = self.raw_log(n, i).splitlines()
            self.assertGreaterEqual(len(lines), 2, f"the log of {i} has its start lines")
            starts.append(parse_time(lines[1].split()[0]))
        spread = (max(starts) - min(starts)).total_seconds()
        self.assertLess(spread, 1.0, f"the 4 tasks started within 1 s of each other (spread {spread:.2f}s)")

    def test_cap_change_applies_without_restart(self):
        n = self.solo(cap=1)
        pid = n.pid
        ids = [self.create_task(n, {"WaitMs": 4000, "LogLines": 40})["Id"] for _ in range(5)]
        self.wait_state(n, ids[0], "Executing", 5, nodes=[n])
        time.sleep(0.5)
        running = self.list_tasks(n, "?states=Executing&name=Diagnostic")["TotalResults"]
        self.assertEqual(running, 1, "cap 1: one task runs")

        node_before = self.get_node(n, n.id)
        r = self.api(n, "PUT", f"{NODES}/{n.id}", expect=202,
                     body=dict(node_before, MaxConcurrentTasks=3, Name="ignored", PublicUrl="http://ignored:1"))
        self.assert_accepted(r, "PUT MaxConcurrentTasks 3")
        self.assertEqual(r.json["Name"], "SetTaskCap", "the change is a SetTaskCap task")
        t_put = time.monotonic()
        self.wait_until(lambda: self.list_tasks(n, "?states=Executing&name=Diagnostic")["TotalResults"] == 3, 3,
                        msg="3 Diagnostic tasks running after the cap went to 3", nodes=[n])
        self.assertLess(time.monotonic() - t_put, 3, "applied within a few heartbeats")
        self.assertEqual(n.pid, pid, "no restart")
        self.assertTrue(n.running, "node still running")
        after = self.get_node(n, n.id)
        self.assertEqual(after["MaxConcurrentTasks"], 3, "node resource shows the new cap")
        self.assertEqual(after["Name"], node_before["Name"], "other fields of the PUT body are ignored")
        self.assertEqual(after["PublicUrl"], node_before["PublicUrl"], "PublicUrl unchanged by the PUT")
        self.wait_until(lambda: n.ping().json["MaxConcurrentTasks"] == 3, 2, msg="ping shows cap 3", nodes=[n])
        self.assertLessEqual(self.summary(n)[n.id]["RunningTaskCount"], 3, "never more than the new cap")
        cap_task = self.wait_done(n, r.json["Id"], 15, nodes=[n])
        self.assertEqual(cap_task["State"], "Success", f"the SetTaskCap task succeeds: {cap_task}")
        # Same value again: nothing changes, 200 with the node.
        r = self.api(n, "PUT", f"{NODES}/{n.id}", expect=200, body={"MaxConcurrentTasks": 3})
        self.assert_node_resource(r.json, "PUT with no change")
        r = self.api(n, "PUT", f"{NODES}/{n.id}", expect=200, body={"Name": "whatever"})
        self.assert_node_resource(r.json, "PUT of ignored fields only")
        r = self.api(n, "PUT", f"{NODES}/{n.id}", expect=400, body={"MaxConcurrentTasks": -1})
        self.assert_error(r, 400, "ValidationFailed", "MaxConcurrentTasks", what="negative cap")
        self.wait_all_done(n, ids, 20, nodes=[n])


class RestartTests(SqliteTaskCase):
    def test_killed_node_takes_its_tasks_over_at_once(self):
        """Issue 9.4 on the embedded database: the node restarted at once
        after kill -9 runs its own unfinished task again at once, not after
        the offline timeout and the lease."""
        n = self.solo(cap=2, OCTOHA_OFFLINE_TIMEOUT_MS="10000", OCTOHA_LEASE_MS="8000")
        t = self.create_task(n, {"WaitMs": 3000})["Id"]
        self.wait_task(n, t, lambda x: x["State"] == "Executing", 10, "running", nodes=[n])
        n.kill()
        t0 = time.monotonic()
        n.start(wait=True, timeout=15)
        done = self.wait_task(n, t, lambda x: x["State"] == "Success", 15, "run again", nodes=[n])
        took = time.monotonic() - t0
        self.assertEqual(done["Attempt"], 2, f"attempt 2: {done}")
        self.assertLess(took, 3.0 + 4.0, f"restarted, rerun and done in {took:.1f} s, before the 8 s lease")


class DrainSingleNodeTests(SqliteTaskCase):
    def test_cap_zero_on_the_only_node_needs_force(self):
        """Issue 9.6: a cap of 0 on the only node stopped the cluster, and its
        SetTaskCap task later reported the cap of another change."""
        n = self.solo(cap=3)
        url = f"{NODES}/{n.id}"
        r = self.api(n, "PUT", url, expect=409, body={"MaxConcurrentTasks": 0})
        self.assert_error(r, 409, "LastNodeTakingWork", what="cap 0 on the only node")
        self.assertEqual(self.get_node(n, n.id)["MaxConcurrentTasks"], 3, "the refusal changed nothing")
        self.assertEqual(self.list_tasks(n, "?name=SetTaskCap")["TotalResults"], 0, "nothing queued")
        zero = self.api(n, "PUT", url, expect=202, body={"MaxConcurrentTasks": 0, "Force": True}).json
        self.assertEqual(self.get_node(n, n.id)["MaxConcurrentTasks"], 0, "Force sets it")
        five = self.api(n, "PUT", url, expect=202, body={"MaxConcurrentTasks": 5}).json
        for t, cap in ((zero, 0), (five, 5)):
            done = self.wait_task(n, t["Id"], lambda x: x["State"] == "Success", 15, "SetTaskCap ends",
                                  nodes=[n])
            self.assertEqual(done["Result"]["MaxConcurrentTasks"], cap,
                             f"each SetTaskCap reports the cap its request set: {done}")

    def test_drain_only_node_needs_force_then_undrain(self):
        n = self.solo(cap=3)
        drain_url = f"{NODES}/{n.id}/drain"
        r = self.api(n, "POST", drain_url, expect=409, body={"Reason": "no force"})
        self.assert_error(r, 409, "LastNodeTakingWork", what="drain of the only node")
        r = self.api(n, "POST", drain_url, expect=409)
        self.assert_error(r, 409, "LastNodeTakingWork", what="drain of the only node, no body")
        r = self.api(n, "PUT", f"{NODES}/{n.id}", expect=409, body={"IsInMaintenanceMode": True})
        self.assert_error(r, 409, "LastNodeTakingWork", what="PUT IsInMaintenanceMode on the only node")
        self.assertEqual(self.ping_status(n), 200, "refused drains change nothing")
        self.assertIs(self.get_node(n, n.id)["IsInMaintenanceMode"], False, "not in maintenance")
        self.assertEqual(self.list_tasks(n, "?name=Drain")["TotalResults"], 0, "no Drain task queued by a refusal")

        r = self.api(n, "POST", drain_url, expect=202, body={"Reason": "patching", "Force": True})
        t_resp = time.monotonic()
        self.assert_accepted(r, "forced drain")
        drain = r.json
        self.assertEqual(drain["Name"], "Drain", "a Drain task")
        self.assertEqual(drain["Arguments"].get("NodeId"), n.id, "the Drain task names the node")
        took = self.wait_ping(n, 418, 1.0, since=t_resp)
        self.assertLess(took, 1.0, "ping 418 within 1 s")
        p = n.ping().json
        self.assertIs(p["IsInMaintenanceMode"], True, "ping body says maintenance")
        node = self.get_node(n, n.id)
        self.assertIs(node["IsInMaintenanceMode"], True, "node in maintenance")
        self.assertEqual(node["DrainReason"], "patching", "DrainReason")
        self.assertIsInstance(node["DrainRequestedBy"], str, "DrainRequestedBy")
        self.assertTrue(node["DrainRequestedBy"], "DrainRequestedBy not empty")
        self.assert_timestamp(node["DrainRequestedAt"], "DrainRequestedAt")

        d = self.wait_done(n, drain["Id"], 10, nodes=[n])
        self.assertEqual(d["State"], "Success", f"an idle node drains at once: {d}")
        self.assertIn("0", d["ProgressMessage"] or "", f"ProgressMessage says no task still runs: {d}")
        r = self.api(n, "POST", drain_url, expect=202, body={"Force": True})
        self.assertEqual(r.json["Id"], drain["Id"], "draining a drained node returns the same drain task")
        self.assertEqual(self.list_tasks(n, "?name=Drain")["TotalResults"], 1, "one Drain task")

        # A drained node claims no new work.
        t = self.create_task(n, {"WaitMs": 0})
        time.sleep(1.0)
        self.assertEqual(self.get_task(n, t["Id"])["State"], "Queued", "a drained node claims nothing new")

        r = self.api(n, "POST", f"{NODES}/{n.id}/undrain", expect=202)
        t_resp = time.monotonic()
        self.assert_accepted(r, "undrain")
        self.assertEqual(r.json["Name"], "Undrain", "an Undrain task")
        self.assertLess(self.wait_ping(n, 200, 1.0, since=t_resp), 1.0, "ping 200 within 1 s of the undrain")
        self.assertIs(self.get_node(n, n.id)["IsInMaintenanceMode"], False, "out of maintenance")
        got = self.wait_done(n, t["Id"], 5, nodes=[n])
        self.assertEqual(got["State"], "Success", "after undrain the node takes work again")
        u = self.wait_done(n, r.json["Id"], 5, nodes=[n])
        self.assertEqual(u["State"], "Success", f"the Undrain task succeeds: {u}")
        r = self.api(n, "POST", f"{NODES}/{n.id}/undrain", expect=200)
        self.assert_node_resource(r.json, "undrain of a node that is not draining")
        r = self.api(n, "PUT", f"{NODES}/{n.id}", expect=200, body={"IsInMaintenanceMode": False})
        self.assert_node_resource(r.json, "PUT IsInMaintenanceMode false on an undrained node")

    def test_drain_with_running_task_waits_for_it(self):
        n = self.solo(cap=3)
        t = self.create_task(n, {"WaitMs": 2500, "LogLines": 25})
        self.wait_state(n, t["Id"], "Executing", 5, nodes=[n])
        r = self.api(n, "POST", f"{NODES}/{n.id}/drain", expect=202, body={"Force": True})
        drain = r.json
        d = self.wait_task(n, drain["Id"], lambda x: x["State"] == "Executing" and x["ProgressMessage"], 5,
                           "the Drain task to report progress", nodes=[n])
        self.assertIn("1", d["ProgressMessage"], f"ProgressMessage counts the running task: {d['ProgressMessage']!r}")
        self.assertEqual(self.get_task(n, t["Id"])["State"], "Executing", "the running task keeps running")
        d = self.wait_done(n, drain["Id"], 10, nodes=[n])
        task = self.get_task(n, t["Id"])
        self.assertEqual(task["State"], "Success", "the running task finished")
        self.assertEqual(d["State"], "Success", f"drain ends Success once idle: {d}")
        self.assertGreaterEqual(parse_time(d["CompletedTime"]), parse_time(task["CompletedTime"]),
                                "the drain ended after the task")
        self.api(n, "POST", f"{NODES}/{n.id}/undrain", expect=202)

    def test_drain_deadline_cancel_when_node_is_at_its_cap(self):
        # The node runs as many tasks as its cap allows when it is drained
        # with a deadline: at the deadline the tasks are cancelled all the same.
        n = self.solo(cap=1)
        t = self.create_task(n, {"WaitMs": 30000, "LogLines": 300})
        self.wait_state(n, t["Id"], "Executing", 5, nodes=[n])
        r = self.api(n, "POST", f"{NODES}/{n.id}/drain", expect=202,
                     body={"Force": True, "DeadlineSeconds": 1, "DeadlineAction": "Cancel"})
        drain = r.json
        try:
            got = self.wait_done(n, t["Id"], 1 + LEASE_MS / 1000 + 4, nodes=[n])
            self.assertEqual(got["State"], "Canceled", f"cancelled at the deadline: {got}")
            d = self.wait_done(n, drain["Id"], 5, nodes=[n])
            self.assertEqual(d["State"], "Success", f"the drain then ends Success: {d}")
        except AssertionError as e:
            d = self.get_task(n, drain["Id"])
            raise AssertionError(f"{e}\nDrain task: State={d['State']} Attempt={d['Attempt']} "
                                 f"ProgressMessage={d['ProgressMessage']!r}") from None
        finally:
            self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", expect=(202, 409))


if __name__ == "__main__":
    harness.main()
