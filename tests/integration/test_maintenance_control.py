#!/usr/bin/env python3
"""Rolling maintenance runs: the refusals and the operator's controls.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_maintenance_control.py -v

Two octoha nodes on a PostgreSQL database of their own (no load balancer:
test_maintenance.py has HAProxy).  Runs are started with
BalancerDelaySeconds 0 and a short settle so each takes seconds.  Covered:
the capacity rule and the other refusals of POST /api/maintenance-runs
(nothing is created), one run per cluster at a time, continue, pause and
resume, abort leaving the node drained or undraining it, the roles, the
audit trail, and the same through ChatOps (`maintenance start|status|
continue|pause|abort`).

Needs PostgreSQL (tests/pg.sh); skips (77) without it.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import unique_name  # noqa: E402

RUNS = "/api/maintenance-runs"
NODES = "/api/octopusservernodes"
NODE_ENV = {"OCTOHA_HEARTBEAT_MS": "200", "OCTOHA_OFFLINE_TIMEOUT_MS": "3000", "OCTOHA_LEASE_MS": "2000"}
FAST = {"SettleSeconds": 1, "BalancerDelaySeconds": 0, "DrainDeadlineSeconds": 30}


def setUpModule():
    harness.require_postgres("each run drains this test's own nodes")


class MaintenanceControlTests(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        db = harness.fresh_pg_db()
        cls.n1 = cls.start_class_node(name=unique_name("mc1"), db=db, env=NODE_ENV)
        cls.n2 = cls.start_class_node(name=unique_name("mc2"), db=db, env=NODE_ENV)
        cls.db = db
        cls.reader, _ = harness.create_key_cli("maint-reader", "Reader", env={"OCTOHA_DB": db})
        cls.operator, _ = harness.create_key_cli("maint-op", "Operator", env={"OCTOHA_DB": db})

    def tearDown(self):
        # Every run ends and both nodes serve before the next test.
        for run in self.api(self.n1, "GET", RUNS, expect=200).json["Items"]:
            if run["State"] not in ("Completed", "Failed", "Aborted"):
                self.api(self.n1, "POST", f"{RUNS}/{run['Id']}/abort", body={"UndrainOnAbort": True})
                self.wait_until(lambda: self.get_run(run["Id"])["State"] == "Aborted", 20, msg="the run to end")
        for n in (self.n1, self.n2):
            if n.ping().status != 200:
                self.api(self.n1, "POST", f"{NODES}/{n.id}/undrain", expect=(200, 202))
                self.wait_until(lambda: n.ping().status == 200, 10, msg=f"{n.name} to serve again")

    # -- helpers
    def get_run(self, rid) -> dict:
        return self.api(self.n1, "GET", f"{RUNS}/{rid}", expect=200).json

    def start(self, **body) -> str:
        r = self.api(self.n1, "POST", RUNS, body=dict(FAST, **body), expect=202)
        self.assertEqual(r.json["Name"], "MaintenanceRun")
        return r.json["Arguments"]["MaintenanceRunId"]

    def wait_step(self, rid, pos, state, timeout=20) -> dict:
        def ok():
            run = self.get_run(rid)
            return run if run["Steps"][pos]["State"] == state else None
        try:
            return self.wait_until(ok, timeout, interval=0.1, msg=f"step {pos} to reach {state}")
        except AssertionError as e:
            raise AssertionError(f"{e}: {self.get_run(rid)}") from None

    def wait_state(self, rid, state, timeout=30) -> dict:
        return self.wait_until(lambda: (lambda r: r if r["State"] == state else None)(self.get_run(rid)), timeout,
                               interval=0.1, msg=f"the run to reach {state}")

    def control(self, rid, verb, expect=200, key=harness.DEFAULT_KEY, body=None):
        return self.api(self.n1, "POST", f"{RUNS}/{rid}/{verb}", expect=expect, key=key, body=body)

    def categories_of(self, rid) -> list:
        items = self.api(self.n1, "GET", "/api/events?take=500", expect=200).json["Items"]
        mine = [e for e in items if e.get("ResourceId") == rid
                or ((e.get("Details") or {}).get("MaintenanceRunId") == rid)]
        return [e["Category"] for e in reversed(mine)]

    # -- tests
    def test_refusals_create_nothing(self):
        before_runs = self.api(self.n1, "GET", RUNS, expect=200).json["TotalResults"]
        before_tasks = self.api(self.n1, "GET", "/api/tasks?take=1", expect=200).json["TotalResults"]
        # Two nodes serve: taking one out leaves one, fewer than MinOnlineNodes 2.
        r = self.api(self.n1, "POST", RUNS, body=dict(FAST, MinOnlineNodes=2))
        self.assert_error(r, 409, "InsufficientCapacity", "MinOnlineNodes")
        self.assertIn("2 node(s) serve", r.json["ErrorMessage"])
        self.assert_error(self.api(self.n1, "POST", RUNS, body=dict(FAST, NodeOrder=["nope"])), 400,
                          "ValidationFailed", "NodeOrder")
        self.assert_error(self.api(self.n1, "POST", RUNS, body=dict(FAST, NodeOrder=[self.n1.name, self.n1.name])),
                          400, "ValidationFailed", "NodeOrder")
        self.assert_error(self.api(self.n1, "POST", RUNS, body=dict(FAST, ClusterId="ManagedClusters-0")), 404,
                          "NotFound", "ClusterId")
        self.assert_error(self.api(self.n1, "POST", RUNS, body=FAST, key=self.reader), 403, "RoleNotAllowed")
        self.assert_error(self.api(self.n1, "GET", f"{RUNS}/MaintenanceRuns-0"), 404, "NotFound", "id")
        self.assert_error(self.api(self.n1, "POST", f"{RUNS}/MaintenanceRuns-0/pause"), 404, "NotFound", "id")
        self.assertEqual(self.api(self.n1, "GET", RUNS, expect=200).json["TotalResults"], before_runs)
        self.assertEqual(self.api(self.n1, "GET", "/api/tasks?take=1", expect=200).json["TotalResults"],
                         before_tasks)
        # With one node draining, one serves: no run may start.
        self.api(self.n1, "POST", f"{NODES}/{self.n2.id}/drain", expect=202)
        self.wait_until(lambda: self.n2.ping().status == 418, 10, msg="n2 draining")
        self.assert_error(self.api(self.n1, "POST", RUNS, body=FAST), 409, "InsufficientCapacity",
                          "MinOnlineNodes")
        self.assertEqual(self.api(self.n1, "GET", RUNS, expect=200).json["TotalResults"], before_runs)

    def test_continue_pause_resume(self):
        rid = self.start(NodeOrder=[self.n1.name, self.n2.name], Reason="patch Tuesday")
        self.assert_error(self.api(self.n1, "POST", RUNS, body=FAST), 409, "MaintenanceRunInProgress", "ClusterId")
        run = self.wait_step(rid, 0, "ReadyForMaintenance")
        self.assertEqual(run["State"], "Running")
        self.assertEqual(self.n1.ping().status, 418, "the first node is drained")
        self.assertEqual(self.n2.ping().status, 200, "the other one serves")
        self.assertEqual(run["Steps"][1]["State"], "Pending")
        # Pause: the operator says continue, but nothing is undrained while paused.
        self.assert_error(self.control(rid, "pause", expect=None, key=self.reader), 403, "RoleNotAllowed")
        self.assertEqual(self.control(rid, "pause", key=self.operator).json["State"], "Paused")
        self.assert_error(self.control(rid, "pause", expect=None), 409, "MaintenanceRunNotInThatState")
        run = self.control(rid, "continue").json
        self.assertTrue(run["Steps"][0]["ContinueRequested"])
        time.sleep(2)
        run = self.get_run(rid)
        self.assertEqual(run["State"], "Paused")
        self.assertIn(run["Steps"][0]["State"], ("ReadyForMaintenance", "Undraining"))
        self.assertEqual(self.n1.ping().status, 418, "still drained while paused")
        self.assertEqual(run["Steps"][1]["State"], "Pending")
        self.assertEqual(self.control(rid, "resume").json["State"], "Running")
        self.assert_error(self.control(rid, "resume", expect=None), 409, "MaintenanceRunNotInThatState")
        run = self.wait_step(rid, 1, "ReadyForMaintenance")
        self.assertEqual(run["Steps"][0]["State"], "Done")
        self.assertEqual(self.n1.ping().status, 200, "the first node is back")
        self.assertEqual(self.n2.ping().status, 418, "the second is drained")
        self.assertLess(harness.parse_timestamp(run["Steps"][0]["OnlineAt"]),
                        harness.parse_timestamp(run["Steps"][1]["DrainRequestedAt"]), "one node out at a time")
        self.control(rid, "continue", key=self.operator)
        run = self.wait_state(rid, "Completed")
        self.assertEqual([s["State"] for s in run["Steps"]], ["Done", "Done"])
        self.assertEqual(self.n2.ping().status, 200)
        self.assert_error(self.control(rid, "continue", expect=None), 409, "MaintenanceRunNotInThatState")
        self.assert_error(self.control(rid, "abort", expect=None), 409, "MaintenanceRunNotInThatState")
        task = self.api(self.n1, "GET", f"/api/tasks/{run['TaskId']}", expect=200).json
        self.assertEqual(task["State"], "Success")
        cats = self.categories_of(rid)
        for c in ("MaintenanceRunStarted", "MaintenanceRunPaused", "MaintenanceRunContinued",
                  "MaintenanceRunResumed", "MaintenanceRunCompleted"):
            self.assertIn(c, cats, f"audited: {cats}")
        self.assertEqual(cats.count("NodeReadyForMaintenance"), 2, cats)

    def test_abort_leaves_the_node_drained_or_undrains_it(self):
        rid = self.start(NodeOrder=[self.n2.name])
        self.wait_step(rid, 0, "ReadyForMaintenance")
        self.control(rid, "abort", key=self.operator)
        run = self.wait_state(rid, "Aborted")
        self.assertEqual(run["Steps"][0]["State"], "Aborted")
        self.assertIn("left drained", run["Message"])
        time.sleep(1)
        self.assertEqual(self.n2.ping().status, 418, "abort leaves the node drained")
        self.assertIn("MaintenanceRunAborted", self.categories_of(rid))
        self.api(self.n1, "POST", f"{NODES}/{self.n2.id}/undrain", expect=(200, 202))
        self.wait_until(lambda: self.n2.ping().status == 200, 10, msg="n2 undrained by hand")
        rid = self.start(NodeOrder=[self.n2.name])
        self.wait_step(rid, 0, "ReadyForMaintenance")
        self.control(rid, "abort", body={"UndrainOnAbort": True})
        run = self.wait_state(rid, "Aborted")
        self.assertIn("was undrained", run["Message"])
        self.wait_until(lambda: self.n2.ping().status == 200, 10, msg="UndrainOnAbort undrains the node")

    def chat(self, text, key=harness.DEFAULT_KEY) -> str:
        return self.api(self.n1, "POST", "/api/chatops/command", body={"Text": text}, key=key,
                        expect=200).json["text"]

    def test_chatops(self):
        text = self.chat("maintenance start")
        m = re.search(r"Maintenance run (MaintenanceRuns-[0-9a-f]+) started \(task (ServerTasks-[0-9a-f]+)\)", text)
        self.assertIsNotNone(m, text)
        rid = m.group(1)
        run = self.get_run(rid)
        self.assertEqual((run["ClusterId"], run["Reason"], run["TaskId"]), ("local", "Started from chat", m.group(2)))
        self.assertEqual(run["BalancerDelaySeconds"], 10, "the defaults")
        self.assertIn(f"Not started: Maintenance run {rid} of this cluster has not ended.",
                      self.chat("maintenance start"))
        status = self.chat("maintenance status")
        self.assertIn(f"Maintenance run {rid} of local:", status)
        for n in (self.n1, self.n2):
            self.assertIn(n.name, status)
        self.assertIn("not allowed", self.chat(f"maintenance pause {rid}", key=self.reader))
        self.assertIn(f"Maintenance run {rid}: pause asked (it is Paused).", self.chat(f"maintenance pause {rid}"))
        self.assertEqual(self.get_run(rid)["State"], "Paused")
        # No node waits for maintenance yet (BalancerDelaySeconds 10 after the drain).
        self.assertIn(f"Maintenance run {rid} is Paused: it cannot continue now.",
                      self.chat(f"maintenance continue {rid}"))
        self.assertIn("abort asked", self.chat(f"maintenance abort {rid}", key=self.operator))
        self.wait_state(rid, "Aborted")
        self.assertIn("There is no maintenance run MaintenanceRuns-0.", self.chat("maintenance status MaintenanceRuns-0"))
        cats = self.categories_of(rid)
        for c in ("MaintenanceRunStarted", "MaintenanceRunPaused", "MaintenanceRunAbortRequested",
                  "MaintenanceRunAborted"):
            self.assertIn(c, cats, f"audited: {cats}")

    def test_list_pages_by_cursor(self):
        # Two runs of this test, each aborted before it drains anything.
        for _ in range(2):
            rid = self.start(NodeOrder=[self.n2.name])
            self.control(rid, "abort", body={"UndrainOnAbort": True})
            self.wait_state(rid, "Aborted")
        full = self.api(self.n1, "GET", f"{RUNS}?take=1000", expect=200).json
        self.assertGreaterEqual(len(full["Items"]), 2)
        self.assertEqual(full["TotalResults"], len(full["Items"]))
        self.assertNotIn("Page.Next", full["Links"], "a short page is the last")
        # Newest first, Id ascending among runs created in the same millisecond.
        for a, b in zip(full["Items"], full["Items"][1:]):
            self.assertTrue(a["CreatedAt"] > b["CreatedAt"]
                            or (a["CreatedAt"] == b["CreatedAt"] and a["Id"] < b["Id"]), (a, b))
        # take=1 through Links.Page.Next: the same runs, in the same order,
        # none twice, each with its steps; the chain ends on an empty page.
        seen, path = [], f"{RUNS}?take=1"
        for _ in range(len(full["Items"]) + 1):
            page = self.api(self.n1, "GET", path, expect=200).json
            self.assertEqual(page["TotalResults"], len(full["Items"]))
            if not page["Items"]:
                self.assertNotIn("Page.Next", page["Links"], "no link past the end")
                break
            self.assertEqual(len(page["Items"]), 1)
            run = page["Items"][0]
            self.assertEqual(run["Steps"], self.get_run(run["Id"])["Steps"], "steps read with the page")
            seen.append(run["Id"])
            self.assertIn("Page.Next", page["Links"], "a full page links the next")
            path = page["Links"]["Page.Next"]
            self.assertTrue(path.startswith(f"{RUNS}?") and path.endswith(f"after={run['Id']}"), path)
        else:
            self.fail(f"the cursor never reached an empty page: {seen}")
        self.assertEqual(seen, [r["Id"] for r in full["Items"]])
        self.assertEqual(len(seen), len(set(seen)), "no run twice")
        skipped = self.api(self.n1, "GET", f"{RUNS}?take=1&skip=1", expect=200).json["Items"]
        self.assertEqual([r["Id"] for r in skipped], seen[1:2])
        self.assert_error(self.api(self.n1, "GET", f"{RUNS}?after=MaintenanceRuns-0"), 400,
                          "ValidationFailed", "after")
        self.assert_error(self.api(self.n1, "GET", f"{RUNS}?skip=10001"), 400, "SkipTooDeep", "skip")


if __name__ == "__main__":
    harness.main()
