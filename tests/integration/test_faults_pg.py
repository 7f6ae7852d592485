#!/usr/bin/env python3
"""Faults of the database and of nodes, on PostgreSQL (issues 9 and 15).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_faults_pg.py

Each test gets a fresh database in this file's own PostgreSQL cluster (some
stop it or end its sessions), nodes with fast timings (lease 2 s, heartbeat
200 ms) and one shared TaskLogs folder.

* An end that cannot be recorded while the database is away is recorded
  within a second of its return, and the task does not run again.
* Sessions ended under a POST load give 503s, never a 500.
* A COMMIT whose answer is lost (a proxy forwards it and cuts the client)
  makes one task, not two; a claim whose answer is lost leaves no orphan.
* A task taken over from a killed node keeps its place before a backlog.
* A node killed and restarted at once on its data directory takes its
  registration and its tasks over at once; a second process on the same
  directory is refused.
* Crossed drains end; concurrent drains never leave zero nodes taking work.
* 64 slow reads do not cost a node its heartbeat.
* A cancel that meets a retry ends the task Canceled.
* SIGTERM and SIGHUP stop a node within its deadline, answering a pending
  waitSeconds request at once.
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
from pgproxy import PgProxy  # noqa: E402
from test_tasks_sqlite import TASKS, TaskTestCase, node_env  # noqa: E402

PING = "/api/octopusservernodes/ping"


def setUpModule():
    harness.require_postgres()


class FaultCase(TaskTestCase):
    def setUp(self):
        self.pg = harness.shared_pg()
        if harness.TEST_DB:
            self.skipTest("stops and cuts its own PostgreSQL: needs the suite's cluster")
        self.db = self.pg.fresh_db()
        self.logs = self.logs_dir()
        self.nodes = []

    def node(self, cap=3, name=None, wait=True, db=None, data_dir=None, **extra):
        n = self.start_node(name=name or unique_name("f"), db=db or self.db, data_dir=data_dir,
                            env=node_env(self.logs, OCTOHA_TASK_CAP=cap, **extra), wait=wait)
        self.nodes.append(n)
        return n

    def sql(self, q: str) -> str:
        return harness.psql_db(self.db, q).strip()

    def wait_state(self, node, tid, states, timeout, what):
        return self.wait_task(node, tid, lambda t: t["State"] in states, timeout, what, nodes=self.nodes)


# ---------------------------------------------------------------------------


class DatabaseOutageTests(FaultCase):
    def test_end_is_recorded_when_the_database_returns(self):
        """Issue 9.1: the end of a short task that finished while PostgreSQL
        was down used to stay unrecorded until the node's last task ended,
        and the task then ran again."""
        a = self.node(cap=2)
        long_t = self.create_task(a, {"WaitMs": 12000})["Id"]
        short_t = self.create_task(a, {"WaitMs": 2500})["Id"]
        self.wait_state(a, short_t, ("Executing",), 10, "the short task runs")
        self.wait_state(a, long_t, ("Executing",), 10, "the long task runs")
        time.sleep(1.0)
        self.pg.stop()
        try:
            time.sleep(3.5)  # the short task ends meanwhile; every lease (2 s) expires
        finally:
            self.pg.start()
        back = time.monotonic()
        # Until its pool has reconnected (within about a second) the node
        # may answer 503 DatabaseUnavailable with Retry-After: not yet.
        t, answers = None, {}
        while time.monotonic() - back < 10:
            r = self.api(a, "GET", f"/api/tasks/{short_t}")
            answers[r.status] = answers.get(r.status, 0) + 1
            if r.status == 503:
                self.assertEqual(r.json["Code"], "DatabaseUnavailable", r.describe())
                self.assertIsNotNone(r.header("Retry-After"), "503 says when to retry")
            else:
                self.assertEqual(r.status, 200, r.describe())
                if r.json["State"] == "Success":
                    t = r.json
                    break
            time.sleep(0.05)
        took = time.monotonic() - back
        self.assertIsNotNone(t, f"the short task's end is recorded within 10 s; answers {answers}")
        print(f"\n  end recorded {took:.2f} s after the database came back", file=sys.stderr)
        # Measured 0.2 s on a quiet machine; the long task (12 s) is the
        # old bound this must beat by far.
        self.assertLess(took, 5.0, "recorded soon after the database returned, not after the long task")
        self.assertEqual(t["Attempt"], 1, f"it did not run again: {t}")
        lt = self.get_task(a, long_t)
        self.assertIn(lt["State"], ("Executing", "Success"), f"the long task carries on: {lt}")
        self.assertEqual(lt["Attempt"], 1, "the long task was not taken over")

    def test_sessions_ended_under_load_give_no_500(self):
        """Issue 9.2: with connections cut every 0.3 s, 58 of 2,112 POSTs
        once answered 500 (psqlODBC's 'connection lost' forms were read as
        plain errors)."""
        a = self.node(cap=4)
        stop = threading.Event()
        statuses = {}
        lock = threading.Lock()

        def load():
            while not stop.is_set():
                try:
                    r = a.request("POST", TASKS, body={"Name": "Diagnostic", "Arguments": {"WaitMs": 0}},
                                  timeout=30)
                    code = r.status
                except OSError as e:
                    code = f"io:{e.__class__.__name__}"
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        cuts = 0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            self.sql("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()) x")
            cuts += 1
            time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(60)
        print(f"\n  {cuts} rounds of cuts; answers {statuses}", file=sys.stderr)
        self.assertEqual(statuses.get(500, 0), 0, f"no 500: {statuses}")
        self.assertGreater(statuses.get(202, 0), 50, f"the load went on: {statuses}")
        self.assertEqual({k for k in statuses if k not in (202, 503)}, set(), f"only 202 and 503: {statuses}")
        self.assertEqual(a.ping().status, 200, "the node is fine")


class LostCommitTests(FaultCase):
    def proxied_node(self, proxy, cap=3):
        # The schema is migrated straight to the database: the proxy reads
        # every message in Python, and a fresh schema's hundreds of
        # statements through it once took longer than a node's start allows.
        up = harness.run_cli(["database", "--upgrade"], {"OCTOHA_DB": self.db})
        self.assertEqual(up.returncode, 0, up.stderr)
        port = harness.conn_field(self.db, "Port")
        db = self.db.replace(f"Port={port}", f"Port={proxy.port}")
        return self.node(cap=cap, db=db)

    def test_a_lost_commit_answer_makes_one_task(self):
        """Issue 15.1: a POST whose COMMIT was applied but not acknowledged
        was run again: two tasks, two TaskQueued events."""
        proxy = PgProxy(int(harness.conn_field(self.db, "Port")))
        self.addCleanup(proxy.stop)
        a = self.proxied_node(proxy)
        desc = f"lost-commit {uuid.uuid4().hex[:8]}"
        proxy.arm("INSERT INTO ServerTasks", 1)
        r = self.api(a, "POST", TASKS, expect=202,
                     body={"Name": "Diagnostic", "Description": desc, "Arguments": {"WaitMs": 0}})
        self.assertEqual(proxy.cuts, 1, "the COMMIT's answer was lost once")
        n = int(self.sql(f"SELECT count(*) FROM ServerTasks WHERE Description = '{desc}'"))
        self.assertEqual(n, 1, "one task for one request")
        ev = int(self.sql(f"SELECT count(*) FROM Events WHERE Category = 'TaskQueued' "
                          f"AND ResourceId = '{r.json['Id']}'"))
        self.assertEqual(ev, 1, "one TaskQueued event")
        self.assertEqual(self.wait_state(a, r.json["Id"], ("Success",), 15, "it runs")["Attempt"], 1)

    def test_a_lost_claim_answer_leaves_no_orphan(self):
        """Issue 15.1: a claim whose COMMIT's answer was lost was claimed
        again, leaving the first batch Executing under the node's lease and
        never run."""
        proxy = PgProxy(int(harness.conn_field(self.db, "Port")))
        self.addCleanup(proxy.stop)
        a = self.proxied_node(proxy)
        proxy.arm("ClaimToken", 1)
        ids = [self.create_task(a, {"WaitMs": 200})["Id"] for _ in range(3)]
        for tid in ids:
            t = self.wait_state(a, tid, ("Success", "Failed", "Canceled"), 20, "every task ends")
            self.assertEqual(t["State"], "Success", f"{t}")
        self.assertGreaterEqual(proxy.cuts, 1, "a claim's answer was lost")
        orphans = self.sql("SELECT count(*) FROM ServerTasks WHERE State = 'Executing'")
        self.assertEqual(int(orphans), 0, "nothing left Executing")


class TakeoverTests(FaultCase):
    def test_taken_over_task_keeps_its_place(self):
        """Issue 9.3: a task requeued after its node died went behind every
        task queued after it."""
        a = self.node(cap=1)
        victim = self.create_task(a, {"WaitMs": 30000})["Id"]
        self.wait_state(a, victim, ("Executing",), 10, "the victim runs on a")
        b = self.node(cap=1)
        backlog = [self.create_task(b, {"WaitMs": 300}, TargetNodeId=b.id)["Id"] for _ in range(30)]
        a.kill()
        t = self.wait_task(b, victim, lambda x: x["State"] in ("Executing", "Success") and x["Attempt"] == 2,
                           20, "the victim runs again on b", nodes=self.nodes)
        started_after = [x for x in (self.get_task(b, i) for i in backlog) if x["StartTime"]]
        print(f"\n  backlog tasks started before the victim's takeover ran: {len(started_after)} of 30",
              file=sys.stderr)
        self.assertLessEqual(len(started_after), 12,
                             "the victim ran before most of the backlog queued after it "
                             f"({len(started_after)} started): {t}")


class RejoinTests(FaultCase):
    def test_killed_node_rejoins_at_once(self):
        """Issue 9.4: a node restarted at once after kill -9 was refused
        ('in use') until its old row went offline."""
        data = harness.make_tmp_dir("rejoin-data")
        name = unique_name("rj")
        a = self.node(cap=2, name=name, data_dir=data, OCTOHA_OFFLINE_TIMEOUT_MS="10000",
                      OCTOHA_LEASE_MS="5000")
        ids = [self.create_task(a, {"WaitMs": 1500})["Id"] for _ in range(2)]
        for tid in ids:
            self.wait_state(a, tid, ("Executing",), 10, "running on a")
        a.kill()
        t0 = time.monotonic()
        a.start(wait=True, timeout=15)
        ready = time.monotonic() - t0
        print(f"\n  serving again {ready:.2f} s after the restart", file=sys.stderr)
        self.assertLess(ready, 5.0, "ready well before the old row would go offline (10 s)")
        for tid in ids:
            t = self.wait_state(a, tid, ("Success",), 10, "taken over and run again")
            self.assertEqual(t["Attempt"], 2, f"attempt 2 after the crash: {t}")
        starts = [self.get_task(a, tid)["StartTime"] for tid in ids]
        self.assertTrue(all(starts), starts)
        self.assertIn("took over the tasks of this node's previous process", a.log)
        # A second live process on the same directory is refused at once.
        twin = harness.Node(name=name, db=self.db, data_dir=data, env=node_env(self.logs))
        self.track(twin)
        twin.start(wait=False)
        self.assertEqual(twin.wait_exit(15), 3, "refused: one process per data directory")
        self.assertIn("another octoha-server process uses this data directory", twin.log)
        self.assertEqual(a.ping().status, 200, "the live node is untouched")


class DrainRaceTests(FaultCase):
    def test_crossed_drains_both_end(self):
        """Issue 15.2: Drain(a) running on b and Drain(b) running on a each
        waited for the other, for ever."""
        a, b = self.node(cap=2), self.node(cap=2)
        crossed = 0
        for rnd in range(4):
            # A task on each node keeps both drains waiting, so both are
            # running at once wherever they were claimed.
            for n in (a, b):
                w = self.create_task(n, {"WaitMs": 2500}, TargetNodeId=n.id)["Id"]
                self.wait_state(n, w, ("Executing",), 10, "a task runs on the node")
            # Each drain is asked through the other node, which is woken at
            # once and so most often claims it: the drains run crossed.
            da = self.api(b, "POST", f"{NODES}/{a.id}/drain", expect=202, body={"Force": True}).json["Id"]
            db_ = self.api(a, "POST", f"{NODES}/{b.id}/drain", expect=202, body={"Force": True}).json["Id"]
            ta = self.wait_state(a, da, ("Success",), 20, f"round {rnd}: drain of a ends")
            tb = self.wait_state(a, db_, ("Success",), 20, f"round {rnd}: drain of b ends")
            crossed += ta["ServerNode"] == b.id and tb["ServerNode"] == a.id
            for n in (a, b):
                u = self.api(n, "POST", f"{NODES}/{n.id}/undrain", expect=202).json["Id"]
                self.wait_state(n, u, ("Success",), 15, "undrained")
        print(f"\n  {crossed} of 4 rounds ran the drains crossed", file=sys.stderr)

    def test_concurrent_drains_keep_a_node_taking_work(self):
        """Issue 15.5: two simultaneous drains of a two-node cluster without
        Force both succeeded in 8 of 10 trials."""
        a, b = self.node(cap=2), self.node(cap=2)
        both = 0
        for rnd in range(20):
            barrier = threading.Barrier(2)
            out = {}

            def drain(n, via):
                barrier.wait(5)
                out[n.id] = via.request("POST", f"{NODES}/{n.id}/drain", body={"Reason": "race"}).status

            ts = [threading.Thread(target=drain, args=(a, b)), threading.Thread(target=drain, args=(b, a))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            codes = sorted(out.values())
            self.assertIn(codes, ([202, 409], [409, 409]), f"round {rnd}: {out}")
            both += codes == [202, 202]
            for n in (a, b):
                node = self.api(n, "GET", f"{NODES}/{n.id}", expect=200).json
                if node["IsInMaintenanceMode"]:
                    u = self.api(n, "POST", f"{NODES}/{n.id}/undrain", expect=202).json["Id"]
                    self.wait_state(n, u, ("Success",), 15, "undrained")
        self.assertEqual(both, 0)


class SlowReaderTests(FaultCase):
    def test_slow_reads_do_not_stop_the_heartbeat(self):
        """Issue 15.3: 64 slow reads once held every pooled connection; the
        heartbeat failed, ping answered 503 and the other node took the
        node's tasks over."""
        # The balancer checks a's ping on its health port: the 64 readers
        # come from the test's one address, which the API port lets hold
        # 32 connections (issue 10's per-client cap; its 503s to the
        # readers are allowed below).
        hp = harness.free_port()
        a = self.node(cap=2, OCTOHA_HEALTH_LISTEN=f"127.0.0.1:{hp}")
        b = self.node(cap=2)
        reader = self.api(a, "POST", "/api/apikeys", expect=201,
                          body={"Name": unique_name("reader"), "Role": "Reader"}).json["ApiKey"]
        long_t = self.create_task(a, {"WaitMs": 9000}, TargetNodeId=a.id)["Id"]
        self.wait_state(a, long_t, ("Executing",), 10, "a runs a task")
        # Hold the audit table: every events read waits on it.
        locker = harness.psql_spawn(self.db, "BEGIN; LOCK TABLE Events IN ACCESS EXCLUSIVE MODE; "
                                             "SELECT pg_sleep(10); COMMIT;")
        self.wait_until(lambda: self.sql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = "
                                         "l.relation WHERE c.relname = 'events' AND l.mode = "
                                         "'AccessExclusiveLock' AND l.granted") == "1",
                        10, 0.1, "the lock is held")
        answers = {}
        lock = threading.Lock()

        def slow():
            r = a.request("GET", "/api/events?user=nobody", key=reader, timeout=60)
            with lock:
                answers[r.status] = answers.get(r.status, 0) + 1

        threads = [threading.Thread(target=slow) for _ in range(64)]
        for t in threads:
            t.start()
        pings, offline_seen, seen = [], False, set()
        end = time.monotonic() + 9
        while time.monotonic() < end:
            pings.append(harness.http_request("http", hp, "GET", PING, key=None, timeout=5).status)
            node = b.get(f"{NODES}/{a.id}").json
            offline_seen |= bool(node and node.get("IsOffline"))
            seen.add((node or {}).get("LastSeen"))
            time.sleep(0.1)
        for t in threads:
            t.join(60)
        locker.communicate(timeout=30)
        print(f"\n  {len(pings)} pings: {sorted(set(pings))}; slow reads answered {answers}; "
              f"{len(seen)} distinct LastSeen of a seen from b", file=sys.stderr)
        self.assertGreater(len(seen), 20, "a's heartbeat went on (LastSeen moved every 200 ms)")
        self.assertEqual(set(pings), {200}, "ping stayed 200")
        self.assertFalse(offline_seen, "the other node never saw a offline")
        self.assertEqual(set(answers) - {200, 503}, set(), f"503 at worst, never 500: {answers}")
        t = self.wait_state(a, long_t, ("Success",), 20, "a's task ends")
        self.assertEqual(t["Attempt"], 1, f"not taken over: {t}")
        self.assertNotIn("heartbeat failed", a.log)


class SlowDiskTests(FaultCase):
    def test_slow_fdatasync_does_not_cost_leases(self):
        """Issue 15.4: lease renewal ran on the dispatcher, which also wrote
        and fdatasynced every ended task's last log line: with fdatasync
        slowed to 40 ms, a burst of 150 ending tasks let another node take
        over live tasks."""
        shim = os.environ.get("OCTOHA_TEST_SLOWSYNC") or os.path.join(
            os.path.dirname(harness.server_bin()), "libslowsync.so")
        if not os.path.exists(shim):
            self.skipTest(f"no {shim} (built by CMake beside the server)")
        a = self.node(cap=200, LD_PRELOAD=shim, ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0")
        self.node(cap=20)  # b: would take a's tasks over if its leases lapsed
        long_ids = [self.create_task(a, {"WaitMs": 8000}, TargetNodeId=a.id)["Id"] for _ in range(5)]
        for tid in long_ids:
            self.wait_state(a, tid, ("Executing",), 10, "a long task runs on a")
        burst = [self.create_task(a, {"WaitMs": 0, "LogLines": 1}, TargetNodeId=a.id)["Id"]
                 for _ in range(150)]
        for tid in burst:
            self.wait_state(a, tid, ("Success",), 60, "the burst ends")
        for tid in long_ids:
            t = self.wait_state(a, tid, ("Success",), 20, "the long task ends")
            self.assertEqual((t["Attempt"], t["ServerNode"]), (1, a.id), f"never taken over: {t}")
        self.assertNotIn("took over the tasks", "".join(n.log for n in self.nodes))


class CancelRetryTests(FaultCase):
    def test_cancel_wins_over_a_retry(self):
        """Issue 15.6: a cancel just before a retryable failure left the task
        Cancelling for good."""
        a = self.node(cap=2)
        # Another task keeps the node renewing its leases throughout, as a
        # busy node does (an idle one let the orphan's lease lapse).
        self.create_task(a, {"WaitMs": 60000}, TargetNodeId=a.id)
        for rnd in range(5):
            t = self.create_task(a, {"WaitMs": 1500, "FailAttempts": 3}, MaxAttempts=3)["Id"]
            run = self.wait_state(a, t, ("Executing",), 10, "running")
            # Cancel 150 ms before the attempt ends with a retryable
            # failure: the worker learns of a cancel only at its next lease
            # renewal (every 500 ms here), so most rounds end the attempt
            # with the cancel unseen.
            started = harness.parse_timestamp(run["StartTime"])
            time.sleep(max(0.0, started + 1.35 - time.time()))
            self.api(a, "POST", f"{TASKS}/{t}/cancel", expect=(202, 409))
            done = self.wait_state(a, t, ("Canceled", "Failed", "Success"), 5, f"round {rnd}: it ends")
            self.assertEqual(done["State"], "Canceled", f"round {rnd}: {done}")
            self.assertNotIn("stopped answering", done["ErrorMessage"] or "", f"round {rnd}: {done}")


class StopTests(FaultCase):
    def test_sigterm_is_bounded_and_answers_waiting_requests(self):
        """Issue 15.10: an open waitSeconds=60 request held the exit for 64 s."""
        a = self.node(cap=2, OCTOHA_SHUTDOWN_GRACE_MS="1000")
        other = self.node(cap=2)
        t = self.create_task(a, {"WaitMs": 60000}, TargetNodeId=a.id)["Id"]
        self.wait_state(a, t, ("Executing",), 10, "a long task runs")
        answer = {}

        def wait_req():
            t0 = time.monotonic()
            try:
                r = a.request("GET", f"{TASKS}/{t}?waitSeconds=60", timeout=90)
                answer["status"] = r.status
            except OSError as e:
                answer["error"] = repr(e)
            answer["took"] = time.monotonic() - t0

        th = threading.Thread(target=wait_req)
        th.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        rc = a.wait_exit(30)
        took = time.monotonic() - t0
        th.join(30)
        print(f"\n  stopped in {took:.2f} s; the waiting request answered {answer}", file=sys.stderr)
        self.assertEqual(rc, 0)
        self.assertLess(took, 1.0 + 5.0 + 1.5, "within the grace and the stop's slack")
        self.assertIn(answer.get("status"), (200, 503), answer)
        self.assertLess(answer.get("took", 99), 2 + took, "the waiting request was answered at once")
        moved = self.wait_state(other, t, ("Queued", "Executing"), 10, "requeued for the others")
        self.assertNotEqual(moved.get("ServerNode"), a.id)

    def test_sighup_stops_cleanly(self):
        a, b = self.node(), self.node()
        a.proc.send_signal(signal.SIGHUP)
        self.assertEqual(a.wait_exit(20), 0, "SIGHUP stops the node cleanly")
        self.assertIn("node marked offline", a.log)
        node = self.api(b, "GET", f"{NODES}/{a.id}", expect=200).json
        self.assertTrue(node["IsOffline"], "marked offline at once, not after the timeout")


if __name__ == "__main__":
    harness.main()
