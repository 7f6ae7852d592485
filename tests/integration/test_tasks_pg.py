#!/usr/bin/env python3
"""The shared task queue and drain across several nodes on PostgreSQL.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_tasks_pg.py

One throwaway PostgreSQL cluster (tests/pg.sh) serves the whole file, with a
fresh database per test.  Every node of a test shares one TaskLogs folder
(OCTOHA_TASK_LOGS_DIR) and runs with fast timings: heartbeat 200 ms, offline
timeout 2 s, lease 2 s, housekeeping 250 ms.  The tests count the tasks and
nodes of their database, so with OCTOHA_TEST_DB (a shared database) they skip.
"""

import os
import signal
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, unique_name  # noqa: E402
from test_tasks_sqlite import (  # noqa: E402
    LEASE_MS, TASKS, TaskTestCase, max_overlap, node_env, node_tail, parse_time,
)

OFFLINE_S = 2.0
TAKEOVER_SLACK_S = 3.0  # housekeeping period, poll, scheduling on top of the lease


def setUpModule():
    harness.require_postgres()


class PgTaskCase(TaskTestCase):
    def setUp(self):
        self.db = harness.cluster_db(self, need_empty=True)
        self.logs = self.logs_dir()
        self.nodes = []

    def node(self, cap=3, name=None, wait=True, **extra):
        """A node on this test's database, sharing the test's TaskLogs folder."""
        n = self.start_node(name=name or unique_name("t"), db=self.db,
                            env=node_env(self.logs, OCTOHA_TASK_CAP=cap, **extra), wait=wait)
        self.nodes.append(n)
        return n

    def running_on(self, observer, nid, name="Diagnostic"):
        return self.list_tasks(observer, f"?states=Executing,Cancelling&node={nid}&name={name}")["TotalResults"]

    def wait_executing_on(self, observer, ids, node, timeout=10):
        for tid in ids:
            self.wait_task(observer, tid, lambda t: t["State"] == "Executing" and t["ServerNode"] == node.id, timeout,
                           f"Executing on {node.name}", nodes=self.nodes)

    def start_busy_node(self, n_tasks, wait_ms):
        """Node a alone runs n_tasks long tasks; then node b starts. Returns (a, b, ids)."""
        a = self.node(cap=n_tasks)
        ids = [self.create_task(a, {"WaitMs": wait_ms, "LogLines": wait_ms // 100})["Id"] for _ in range(n_tasks)]
        self.wait_executing_on(a, ids, a)
        b = self.node(cap=n_tasks + 1)
        for tid in ids:
            t = self.get_task(b, tid)
            self.assertEqual((t["State"], t["ServerNode"]), ("Executing", a.id),
                             f"still running on a when b is up: {t} (machine too slow for WaitMs {wait_ms}?)")
        return a, b, ids

    def assert_moved(self, t, a, b, what):
        self.assertEqual(t["State"], "Success", f"{what}: Success: {t}")
        self.assertEqual(t["Attempt"], 2, f"{what}: Attempt 2 after the move: {t}")
        self.assertEqual(t["ServerNode"], b.id, f"{what}: ServerNode is the node that took over: {t}")
        self.assertEqual(t["Result"], {"Node": b.id, "Attempt": 2}, f"{what}: Result")
        text, entries = self.assert_one_success_log(b, t, what)
        self.assertEqual([(x, nid) for x, _, nid, _ in self.attempt_starts(entries)], [(1, a.id), (2, b.id)],
                         f"{what}: attempt 1 on a, attempt 2 on b\n{text}")
        self.assertEqual([(x, o) for x, o, _ in self.attempt_ends(entries)], [(2, "Success")],
                         f"{what}: only attempt 2 recorded an end\n{text}")

    def cancel_all(self, observer, ids):
        for tid in ids:
            self.api(observer, "POST", f"{TASKS}/{tid}/cancel", expect=(202, 409))


# ---------------------------------------------------------------------------


class QueueTests(PgTaskCase):
    def test_tasks_spread_and_no_node_exceeds_its_cap(self):
        caps = {}
        for cap in (1, 2, 3):
            n = self.node(cap=cap)
            caps[n.id] = cap
        a, b, c = self.nodes
        ids = [self.create_task(self.nodes[i % 3], {"WaitMs": 1000}, Description=f"spread {i}")["Id"]
               for i in range(18)]
        max_seen = {nid: 0 for nid in caps}
        samples = 0
        deadline = time.monotonic() + 25
        while True:
            observer = self.nodes[samples % 3]
            summary = self.summary(observer)
            samples += 1
            for nid, cap in caps.items():
                s = summary[nid]
                self.assertEqual(s["MaxConcurrentTasks"], cap, f"summary cap of {nid}")
                self.assertLessEqual(s["RunningTaskCount"], cap,
                                     f"{nid} runs {s['RunningTaskCount']} > cap {cap} (sample {samples})")
                max_seen[nid] = max(max_seen[nid], s["RunningTaskCount"])
            if samples % 3 == 0:
                for nid, cap in caps.items():
                    running = self.running_on(observer, nid)
                    self.assertLessEqual(running, cap, f"Executing on {nid}: {running} > cap {cap} (sample {samples})")
            if self.list_tasks(observer, "?active=true")["TotalResults"] == 0:
                break
            self.assertLess(time.monotonic(), deadline,
                            "18 tasks of 1 s on 6 slots end within 25 s\n" + "\n".join(node_tail(n) for n in self.nodes))
            time.sleep(0.02)
        self.assertGreaterEqual(samples, 20, "sampled many times")
        for nid, cap in caps.items():
            self.assertEqual(max_seen[nid], cap, f"{nid} was seen running its full cap {cap} at once: {max_seen}")

        done = [self.get_task(self.nodes[i % 3], tid) for i, tid in enumerate(ids)]
        self.assertEqual({t["State"] for t in done}, {"Success"}, "every task succeeded")
        self.assertEqual({t["Attempt"] for t in done}, {1}, "each task was claimed exactly once")
        per_node = {nid: [t for t in done if t["ServerNode"] == nid] for nid in caps}
        self.assertEqual(sum(len(v) for v in per_node.values()), 18, "every task ran on one of the nodes")
        for nid, cap in caps.items():
            self.assertGreaterEqual(len(per_node[nid]), 1, f"{nid} ran some of the tasks: { {k: len(v) for k, v in per_node.items()} }")
            intervals = [(parse_time(t["StartTime"]), parse_time(t["CompletedTime"])) for t in per_node[nid]]
            self.assertLessEqual(max_overlap(intervals), cap, f"{nid}: run intervals overlap at most {cap}")
        for i, t in enumerate(done):
            self.assertEqual(t["Result"], {"Node": t["ServerNode"], "Attempt": 1}, "Result names the node that ran it")
            # Read the log through a node that did not run the task: shared TaskLogs.
            reader = next(n for n in self.nodes if n.id != t["ServerNode"])
            self.assert_one_success_log(reader, t, f"log of {t['Id']} read on {reader.name}")
        summary = self.summary(a)
        self.assertEqual({nid: summary[nid]["RunningTaskCount"] for nid in caps}, {nid: 0 for nid in caps}, "all idle")

    def test_targeted_task_runs_only_on_its_target(self):
        a, b, c = self.node(cap=3), self.node(cap=2), self.node(cap=3)
        ids = [self.create_task((a, c)[i % 2], {"WaitMs": 300}, TargetNodeId=b.id)["Id"] for i in range(6)]
        free = [self.create_task(a, {"WaitMs": 300})["Id"] for _ in range(4)]
        for tid in ids:
            self.assertEqual(self.get_task(a, tid)["TargetNode"], b.id, "TargetNode is shown")
        max_b = 0
        deadline = time.monotonic() + 15
        while self.list_tasks(a, "?active=true")["TotalResults"]:
            max_b = max(max_b, self.summary(c)[b.id]["RunningTaskCount"])
            self.assertLessEqual(max_b, 2, "the target's cap holds for targeted tasks")
            self.assertLess(time.monotonic(), deadline, "all tasks end within 15 s")
            time.sleep(0.03)
        for tid in ids:
            t = self.get_task(c, tid)
            self.assertEqual((t["State"], t["ServerNode"], t["TargetNode"]), ("Success", b.id, b.id),
                             f"a targeted task ran on its target only: {t}")
            self.assert_one_success_log(a, t, f"log of targeted {tid}")
        for tid in free:
            self.assertEqual(self.get_task(b, tid)["State"], "Success", "untargeted tasks ran too")

    def test_idempotency_key_across_nodes(self):
        a, b = self.node(), self.node()
        key = f"k-{uuid.uuid4().hex}"
        t1 = self.create_task(a, {"WaitMs": 0}, headers={"Idempotency-Key": key}, Description="idem A")
        t2 = self.create_task(b, {"WaitMs": 0}, headers={"Idempotency-Key": key}, Description="idem A")
        self.assertEqual(t2["Id"], t1["Id"], "the same request through another node returns the same task")
        r = self.api(b, "POST", TASKS, expect=422, headers={"Idempotency-Key": key},
                     body={"Name": "Diagnostic", "Arguments": {"WaitMs": 0}, "Description": "idem B"})
        self.assert_error(r, 422, "IdempotencyKeyReused", field="Idempotency-Key",
                          what="the key with another body, through another node")

        key2 = f"k-{uuid.uuid4().hex}"
        got, errors = [], []
        barrier = threading.Barrier(10)

        def post(node):
            try:
                barrier.wait(10)
                r = node.request("POST", TASKS, body={"Name": "Diagnostic", "Description": "idem burst"},
                                 headers={"Idempotency-Key": key2})
                got.append((node.name, r.status, (r.json or {}).get("Id"), (r.json or {}).get("Code")))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=post, args=((a, b)[i % 2],)) for i in range(10)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        self.assertEqual(errors, [], "every concurrent POST was answered")
        self.assertTrue({s for _, s, _, _ in got} <= {202, 409}, f"202, or 409 while in flight: {got}")
        self.assertTrue(all(c == "IdempotencyKeyInFlight" for _, s, _, c in got if s == 409), got)
        self.assertEqual(len({i for _, s, i, _ in got if s == 202}), 1, f"one task for one key across nodes: {got}")
        items = self.list_tasks(a, "?take=1000")["Items"]
        self.assertEqual(sum(1 for t in items if t["Description"] == "idem burst"), 1, "one task in the list")
        self.assertEqual(sum(1 for t in items if t["Description"] == "idem B"), 0, "the refused body queued nothing")
        self.assertEqual(self.get_task(b, t1["Id"], wait=10)["State"], "Success", "and it runs once")

    def test_idempotency_key_in_flight_is_409(self):
        """A request with the key of another that is still being committed
        is told so (409), not given a second task; retried after, it gets
        the first one's task."""
        a, b = self.node(), self.node()
        key = f"k-{uuid.uuid4().hex}"
        body = {"Name": "Diagnostic", "Arguments": {"WaitMs": 0}, "Description": "in flight"}
        # Hold the audit table: the first request takes the key, queues its
        # task and then waits on its TaskQueued event until the lock goes.
        locker = harness.psql_spawn(self.db, "BEGIN; LOCK TABLE Events IN ACCESS EXCLUSIVE MODE; "
                                             "SELECT pg_sleep(3); COMMIT;")
        time.sleep(0.5)
        answers = {}

        def post(name, node):
            r = node.request("POST", TASKS, body=body, headers={"Idempotency-Key": key}, timeout=30)
            answers[name] = (r.status, r.json)

        first = threading.Thread(target=post, args=("first", a))
        first.start()
        time.sleep(0.8)
        second = threading.Thread(target=post, args=("second", b))
        second.start()
        first.join(30)
        second.join(30)
        locker.communicate(timeout=30)
        self.assertEqual(answers["first"][0], 202, answers)
        self.assertEqual(answers["second"][0], 409, answers)
        self.assertEqual(answers["second"][1]["Code"], "IdempotencyKeyInFlight", answers)
        r = self.api(b, "POST", TASKS, expect=202, body=body, headers={"Idempotency-Key": key})
        self.assertEqual(r.json["Id"], answers["first"][1]["Id"], "the retry gets the first request's task")
        items = self.list_tasks(a, "?take=1000")["Items"]
        self.assertEqual(sum(1 for t in items if t["Description"] == "in flight"), 1, "one task")

    def test_cap_change_through_another_node(self):
        a, b = self.node(cap=3), self.node(cap=1)
        ids = [self.create_task(a, {"WaitMs": 4000, "LogLines": 40}, TargetNodeId=b.id)["Id"] for _ in range(5)]
        try:
            self.wait_executing_on(a, ids[:1], b)
            time.sleep(0.4)
            self.assertEqual(self.running_on(a, b.id), 1, "cap 1: one running on b")
            pid = b.pid
            r = self.api(a, "PUT", f"{NODES}/{b.id}", expect=202, body={"MaxConcurrentTasks": 3})
            self.assert_accepted(r, "PUT b's cap through a")
            self.assertEqual(r.json["Name"], "SetTaskCap", "a SetTaskCap task")
            t_put = time.monotonic()
            self.wait_until(lambda: self.running_on(a, b.id) == 3, 3, msg="3 running on b after its cap went to 3",
                            nodes=self.nodes)
            self.assertLess(time.monotonic() - t_put, 3, "applied within a few heartbeats, without restart")
            self.assertEqual(b.pid, pid, "b was not restarted")
            self.wait_until(lambda: b.ping().json["MaxConcurrentTasks"] == 3, 2, msg="b's ping shows cap 3")
            self.assertEqual(self.get_node(b, b.id)["MaxConcurrentTasks"], 3, "node resource shows cap 3")
            for _ in range(10):
                self.assertLessEqual(self.summary(a)[b.id]["RunningTaskCount"], 3, "b never runs more than 3")
                time.sleep(0.05)
            self.assertEqual(self.wait_done(a, r.json["Id"], 15, nodes=self.nodes)["State"], "Success",
                             "the SetTaskCap task succeeds")
        finally:
            self.cancel_all(a, ids)


class TakeoverTests(PgTaskCase):
    def test_kill9_tasks_requeued_and_run_elsewhere_once(self):
        a, b, ids = self.start_busy_node(3, 4000)
        # a is full, so these go to b and must not be disturbed by the takeover.
        own = [self.create_task(b, {"WaitMs": 3000, "LogLines": 30})["Id"] for _ in range(2)]
        self.wait_executing_on(b, own, b)
        a.kill()
        t_kill = time.monotonic()
        taken = {}
        for tid in ids:
            t = self.wait_task(b, tid, lambda t: t["ServerNode"] == b.id and t["Attempt"] == 2,
                               LEASE_MS / 1000 + TAKEOVER_SLACK_S, "taken over by b with Attempt 2", nodes=[b])
            taken[tid] = time.monotonic() - t_kill
        self.assertLessEqual(max(taken.values()), LEASE_MS / 1000 + TAKEOVER_SLACK_S,
                             f"takeover within lease + slack: {taken}")
        done = self.wait_all_done(b, ids, 15, nodes=[b])
        for tid, t in done.items():
            self.assert_moved(t, a, b, f"task {tid} after kill -9 of its node")
        for tid, t in self.wait_all_done(b, own, 10, nodes=[b]).items():
            self.assertEqual((t["State"], t["Attempt"], t["ServerNode"]), ("Success", 1, b.id),
                             f"a task that was on the surviving node ran once there: {t}")
            self.assert_one_success_log(b, t, f"log of {tid}")
        s = self.summary(b)
        self.assertEqual(s[a.id]["RunningTaskCount"], 0, "the dead node runs nothing")
        self.assertEqual(s[b.id]["RunningTaskCount"], 0, "b is idle at the end")

    def test_stalled_node_cannot_complete_a_task_taken_over(self):
        # SIGSTOP: the node is not dead, only silent past its lease.  When it
        # wakes, its attempt must not count (completion fenced by lease).
        a, b, ids = self.start_busy_node(2, 4000)
        os.kill(a.pid, signal.SIGSTOP)
        resumed = False
        try:
            for tid in ids:
                self.wait_task(b, tid, lambda t: t["ServerNode"] == b.id and t["Attempt"] == 2,
                               LEASE_MS / 1000 + TAKEOVER_SLACK_S, "taken over by b", nodes=[b])
            os.kill(a.pid, signal.SIGCONT)
            resumed = True
            done = self.wait_all_done(b, ids, 15, nodes=[a, b])
            time.sleep(1.5)  # let a's late workers try to record something
            for tid, t in done.items():
                again = self.get_task(a, tid)
                for k in ("State", "Attempt", "ServerNode", "Result", "CompletedTime", "ErrorMessage", "Progress"):
                    self.assertEqual(again[k], t[k], f"{tid}.{k} unchanged after the stalled node woke up")
                self.assert_moved(t, a, b, f"task {tid} taken over from a stalled node")
            self.assertTrue(a.running, f"the stalled node lives on\n{a.log_tail()}")
        finally:
            if not resumed and a.running:
                os.kill(a.pid, signal.SIGCONT)


    def test_targeted_task_of_a_dead_node_waits_for_it(self):
        a, b = self.node(cap=2), self.node(cap=2)
        tid = self.create_task(b, {"WaitMs": 3000, "LogLines": 30}, TargetNodeId=a.id)["Id"]
        self.wait_executing_on(b, [tid], a)
        a.kill()
        t = self.wait_task(b, tid, lambda t: t["State"] == "Queued", LEASE_MS / 1000 + TAKEOVER_SLACK_S,
                           "requeued after its node died", nodes=[b])
        self.assertEqual(t["Attempt"], 1, f"requeued, not yet claimed again: {t}")
        time.sleep(1.5)
        t = self.get_task(b, tid)
        self.assertEqual((t["State"], t["Attempt"]), ("Queued", 1), f"b does not run a task targeted at a: {t}")
        self.wait_until(lambda: self.get_node(b, a.id)["IsOffline"], OFFLINE_S + 3, msg="a offline", nodes=[b])
        a.restart()
        t = self.wait_done(b, tid, 10, nodes=self.nodes)
        self.assertEqual((t["State"], t["Attempt"], t["ServerNode"]), ("Success", 2, a.id),
                         f"the task ran on its target once it was back: {t}")
        text, entries = self.assert_one_success_log(b, t, "log of the targeted task")
        self.assertEqual([nid for _, _, nid, _ in self.attempt_starts(entries)], [a.id, a.id],
                         f"both attempts on the target\n{text}")


class DrainTests(PgTaskCase):
    def drain(self, via, target, expect=202, **body):
        r = self.api(via, "POST", f"{NODES}/{target.id}/drain", expect=expect, body=body or None)
        if expect == 202:
            self.assert_accepted(r, f"drain {target.name} via {via.name}")
            self.assertEqual(r.json["Name"], "Drain", "a Drain task")
        return r

    def undrain(self, via, target, expect=202):
        r = self.api(via, "POST", f"{NODES}/{target.id}/undrain", expect=expect)
        if expect == 202:
            self.assert_accepted(r, f"undrain {target.name} via {via.name}")
            self.assertEqual(r.json["Name"], "Undrain", "an Undrain task")
        return r

    def test_drain_with_running_tasks_then_undrain(self):
        a, b = self.node(cap=3), self.node(cap=3)
        running = [self.create_task(b, {"WaitMs": 3000, "LogLines": 30}, TargetNodeId=a.id)["Id"] for _ in range(2)]
        self.wait_executing_on(b, running, a)

        r = self.drain(b, a, Reason="kernel patch")
        t_resp = time.monotonic()
        drain = r.json
        took = self.wait_ping(a, 418, 1.0, since=t_resp)
        self.assertLess(took, 1.0, f"a's ping answers 418 within 1 s of the drain answer ({took:.3f}s)")
        self.assertEqual(self.ping_status(b), 200, "b still answers 200")

        # New work after the drain goes elsewhere; a targeted task waits.
        fresh = [self.create_task(b, {"WaitMs": 300})["Id"] for _ in range(4)]
        pinned = self.create_task(b, {"WaitMs": 0}, TargetNodeId=a.id)["Id"]

        for observer in (a, b):
            n = self.get_node(observer, a.id)
            self.assertIs(n["IsInMaintenanceMode"], True, f"{observer.name} sees a in maintenance")
            self.assertEqual(n["DrainReason"], "kernel patch", "DrainReason")
            self.assertIsInstance(n["DrainRequestedBy"], str, "DrainRequestedBy is set")
            self.assert_timestamp(n["DrainRequestedAt"], "DrainRequestedAt")
        self.assertIs(self.get_node(a, b.id)["IsInMaintenanceMode"], False, "b is not draining")

        again = self.drain(a, a, Reason="again")
        self.assertEqual(again.json["Id"], drain["Id"], "draining a draining node (via itself) returns the same task")
        again = self.drain(b, a, DeadlineSeconds=5)
        self.assertEqual(again.json["Id"], drain["Id"], "draining a draining node (via b) returns the same task")
        self.assertEqual(self.get_node(b, a.id)["DrainReason"], "kernel patch", "the first drain's reason stays")

        d = self.wait_task(b, drain["Id"], lambda t: t["State"] == "Executing" and t["ProgressMessage"], 5,
                           "the Drain task reports progress", nodes=self.nodes)
        self.assertIn("2", d["ProgressMessage"], f"ProgressMessage counts the 2 tasks still running: {d['ProgressMessage']!r}")
        self.assertEqual(self.summary(b)[a.id]["RunningTaskCount"], 2, "summary: a still runs 2")

        for tid in fresh:
            t = self.wait_done(b, tid, 10, nodes=self.nodes)
            self.assertEqual((t["State"], t["ServerNode"]), ("Success", b.id), f"new work ran on b, not the draining a: {t}")
        done = [self.wait_done(b, tid, 10, nodes=self.nodes) for tid in running]
        for t in done:
            self.assertEqual((t["State"], t["ServerNode"], t["Attempt"]), ("Success", a.id, 1),
                             f"running tasks finish on the draining node: {t}")
        d = self.wait_done(b, drain["Id"], 5, nodes=self.nodes)
        self.assertEqual(d["State"], "Success", f"the drain ends Success once a is idle: {d}")
        self.assertEqual(d["Result"], {"NodeId": a.id, "Drained": True}, "Drain Result")
        self.assertGreaterEqual(parse_time(d["CompletedTime"]), max(parse_time(t["CompletedTime"]) for t in done),
                                "the drain ended after the tasks")
        self.assertEqual(self.get_task(a, pinned)["State"], "Queued", "a task for the drained node waits")

        r = self.undrain(b, a)
        t_resp = time.monotonic()
        took = self.wait_ping(a, 200, 1.0, since=t_resp)
        self.assertLess(took, 1.0, f"a's ping answers 200 within 1 s of the undrain ({took:.3f}s)")
        self.assertIs(self.get_node(a, a.id)["IsInMaintenanceMode"], False, "out of maintenance")
        t = self.wait_done(b, pinned, 5, nodes=self.nodes)
        self.assertEqual((t["State"], t["ServerNode"]), ("Success", a.id), "a takes work again")
        self.assertEqual(self.wait_done(b, r.json["Id"], 5)["State"], "Success", "the Undrain task succeeds")
        r = self.undrain(b, a, expect=200)
        self.assert_node_resource(r.json, "undrain of a node that is not draining")

    def test_drained_node_claims_nothing_from_the_drain_answer_on(self):
        # The spec: from the moment the drain answers, the node claims no new
        # task -- also when the drain went through another node.  A 1 s
        # heartbeat (still "418 within a second") makes a late pick-up of the
        # drain through the heartbeat show reliably.
        slow = {"OCTOHA_HEARTBEAT_MS": 1000, "OCTOHA_OFFLINE_TIMEOUT_MS": 5000}
        a, b = self.node(cap=5, **slow), self.node(cap=5, **slow)
        self.drain(b, a)
        # Queue through a itself, which wakes a's dispatcher at once.
        ids = [self.create_task(a, {"WaitMs": 200})["Id"] for _ in range(4)]
        done = self.wait_all_done(b, ids, 10, nodes=self.nodes)
        on_a = [t["Id"] for t in done.values() if t["ServerNode"] == a.id]
        self.assertEqual(on_a, [], f"tasks queued after the drain answered ran on the draining node: {on_a}")

    def test_undrain_before_idle_cancels_the_drain(self):
        a, b = self.node(cap=3), self.node(cap=3)
        tid = self.create_task(b, {"WaitMs": 3000, "LogLines": 30}, TargetNodeId=a.id)["Id"]
        self.wait_executing_on(b, [tid], a)
        drain = self.drain(b, a).json
        self.wait_ping(a, 418, 1.0)
        self.wait_state(b, drain["Id"], "Executing", 5, nodes=self.nodes)
        self.undrain(a, a)
        self.assertEqual(self.ping_status(a), 200, "undrain through the node itself: ping 200 at once")
        d = self.wait_done(b, drain["Id"], 5, nodes=self.nodes)
        self.assertEqual(d["State"], "Canceled", f"a drain overtaken by an undrain ends Canceled: {d}")
        self.assertEqual(self.wait_done(b, tid, 10)["State"], "Success", "the task was never disturbed")

    def test_deadline_requeue_moves_tasks_to_the_other_node(self):
        a, b, ids = self.start_busy_node(2, 5000)
        r = self.drain(b, a, DeadlineSeconds=1)
        self.assertEqual(r.json["Arguments"].get("DeadlineAction"), "Requeue", "Requeue is the default DeadlineAction")
        t_resp = time.monotonic()
        moved = {}
        for tid in ids:
            self.wait_task(b, tid, lambda t: t["ServerNode"] == b.id and t["Attempt"] == 2, 1 + 4,
                           "requeued at the deadline and claimed by b", nodes=self.nodes)
            moved[tid] = time.monotonic() - t_resp
        self.assertGreaterEqual(min(moved.values()), 0.9, f"not before the 1 s deadline: {moved}")
        done = self.wait_all_done(b, ids, 15, nodes=self.nodes)
        for tid, t in done.items():
            self.assert_moved(t, a, b, f"task {tid} requeued at the drain deadline")
        d = self.wait_done(b, r.json["Id"], 10, nodes=self.nodes)
        self.assertEqual(d["State"], "Success", f"the drain ends Success: {d}")
        self.assertIn("Deadline", self.raw_log(b, d["Id"]), "the drain's log tells about the deadline")
        self.assertEqual(self.summary(b)[a.id]["RunningTaskCount"], 0, "a runs nothing")
        self.assertEqual(self.ping_status(a), 418, "a stays drained")

    def test_deadline_cancel_cancels_remaining_tasks(self):
        a, b = self.node(cap=3), self.node(cap=3)
        ids = [self.create_task(b, {"WaitMs": 20000, "LogLines": 200}, TargetNodeId=a.id)["Id"] for _ in range(2)]
        try:
            self.wait_executing_on(b, ids, a)
            r = self.drain(b, a, DeadlineSeconds=1, DeadlineAction="Cancel")
            t_resp = time.monotonic()
            for tid in ids:
                t = self.wait_done(b, tid, 1 + LEASE_MS / 1000 + 3, nodes=self.nodes)
                self.assertEqual((t["State"], t["ServerNode"], t["Attempt"]), ("Canceled", a.id, 1),
                                 f"cancelled at the deadline on a: {t}")
                ends = self.attempt_ends(self.log_entries(self.raw_log(b, tid)))
                self.assertEqual([(x, o) for x, o, _ in ends], [(1, "Canceled")], "log: 'Attempt 1 ended: Canceled'")
            self.assertGreaterEqual(time.monotonic() - t_resp, 0.9, "not before the deadline")
            d = self.wait_done(b, r.json["Id"], 10, nodes=self.nodes)
            self.assertEqual(d["State"], "Success", f"the drain ends Success: {d}")
        finally:
            self.cancel_all(b, ids)

    def test_deadline_when_every_node_is_at_its_cap(self):
        # Drains happen when nodes are busy.  With every slot taken, the
        # deadline must still requeue/cancel a's tasks on time.
        a, b = self.node(cap=1), self.node(cap=1)
        ta = self.create_task(b, {"WaitMs": 30000, "LogLines": 300}, TargetNodeId=a.id)["Id"]
        tb = self.create_task(a, {"WaitMs": 30000, "LogLines": 300}, TargetNodeId=b.id)["Id"]
        try:
            self.wait_executing_on(a, [ta], a)
            self.wait_executing_on(a, [tb], b)
            r = self.drain(b, a, DeadlineSeconds=1, DeadlineAction="Cancel")
            try:
                t = self.wait_done(b, ta, 1 + LEASE_MS / 1000 + 4, nodes=self.nodes)
                self.assertEqual(t["State"], "Canceled", f"cancelled at the deadline: {t}")
            except AssertionError as e:
                d = self.get_task(b, r.json["Id"])
                raise AssertionError(f"{e}\nDrain task: State={d['State']} Attempt={d['Attempt']} "
                                     f"ProgressMessage={d['ProgressMessage']!r}") from None
        finally:
            self.cancel_all(b, [ta, tb])

    def test_put_maintenance_mode_drains_and_undrains(self):
        a, b = self.node(cap=3), self.node(cap=3)
        body = dict(self.get_node(b, a.id), IsInMaintenanceMode=True)  # as Octopus clients PUT it back
        r = self.api(b, "PUT", f"{NODES}/{a.id}", expect=202, body=body)
        t_resp = time.monotonic()
        self.assert_accepted(r, "PUT IsInMaintenanceMode true")
        self.assertEqual(r.json["Name"], "Drain", "turning maintenance on is a drain")
        self.assertLess(self.wait_ping(a, 418, 1.0, since=t_resp), 1.0, "ping 418 within 1 s")
        self.assertIs(self.get_node(a, a.id)["IsInMaintenanceMode"], True, "in maintenance")
        self.assertEqual(self.wait_done(b, r.json["Id"], 10, nodes=self.nodes)["State"], "Success",
                         "an idle node's drain ends Success")
        r2 = self.api(b, "PUT", f"{NODES}/{a.id}", expect=202, body=body)
        self.assertEqual(r2.json["Id"], r.json["Id"], "PUT maintenance on a drained node returns its drain task")
        body["IsInMaintenanceMode"] = False
        r = self.api(b, "PUT", f"{NODES}/{a.id}", expect=202, body=body)
        t_resp = time.monotonic()
        self.assert_accepted(r, "PUT IsInMaintenanceMode false")
        self.assertEqual(r.json["Name"], "Undrain", "turning maintenance off is an undrain")
        self.assertLess(self.wait_ping(a, 200, 1.0, since=t_resp), 1.0, "ping 200 within 1 s")
        r = self.api(b, "PUT", f"{NODES}/{a.id}", expect=200, body=body)
        self.assert_node_resource(r.json, "PUT with nothing to change")
        tid = self.create_task(b, {"WaitMs": 0}, TargetNodeId=a.id)["Id"]
        self.assertEqual(self.wait_done(b, tid, 5, nodes=self.nodes)["State"], "Success", "a takes work again")

    def test_last_node_taking_work(self):
        a, c = self.node(cap=2), self.node(cap=0)
        r = self.drain(c, a, expect=409)
        self.assert_error(r, 409, "LastNodeTakingWork", what="drain a while the only other node has cap 0")
        b = self.node(cap=2)
        self.drain(c, a)
        r = self.drain(c, b, expect=409, Reason="b too")
        self.assert_error(r, 409, "LastNodeTakingWork", what="drain b while a is draining")
        self.assertEqual(self.ping_status(b), 200, "the refused drain left b alone")
        r = self.api(c, "PUT", f"{NODES}/{b.id}", expect=409, body={"IsInMaintenanceMode": True})
        self.assert_error(r, 409, "LastNodeTakingWork", what="PUT IsInMaintenanceMode on the last node")
        forced = self.drain(c, b, Force=True)
        self.wait_ping(b, 418, 1.0)
        self.undrain(c, b)
        self.undrain(c, a)
        self.wait_ping(a, 200, 1.0)
        self.wait_ping(b, 200, 1.0)
        self.assertIn(self.get_task(c, forced.json["Id"], wait=5)["State"], ("Success", "Canceled"),
                      "the forced drain ended")
        # An offline node takes no work.
        b.kill()
        self.wait_until(lambda: self.get_node(a, b.id)["IsOffline"], OFFLINE_S + 3, msg="b offline", nodes=[a])
        r = self.drain(c, a, expect=409)
        self.assert_error(r, 409, "LastNodeTakingWork", what="drain a while b is offline and c has cap 0")


if __name__ == "__main__":
    harness.main()
