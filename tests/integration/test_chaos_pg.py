#!/usr/bin/env python3
"""Chaos on a three-node PostgreSQL cluster (issue 9): nothing lost, nothing
done twice, no 500, killed nodes back at once.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_chaos_pg.py

Three nodes (cap 4, lease 2 s) take 300 Diagnostic tasks posted by four
clients over about 20 s, each task with its own Idempotency-Key; a client that gets no
answer, or a 503, tries the next node with the same key, as a client behind
a load balancer would.  Meanwhile a chaos thread, every 2-3 s, kills a node
with SIGKILL and restarts it at once on its data directory, ends every
database session twice (pg_terminate_backend), and restarts PostgreSQL once.

Then it checks, in the database and through the API:
  * 300 tasks, one per key, every one ended Success;
  * the completion each records is its last claim's (Result.Attempt is the
    task's Attempt, Result.Node its ServerNode): none completed twice;
  * no HTTP 500; 503s only while PostgreSQL was down (and a second after);
  * every killed node served its ping within 2 s of its restart.
"""

import os
import random
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import unique_name  # noqa: E402
from test_tasks_sqlite import TASKS, TaskTestCase, node_env  # noqa: E402

N_TASKS = 300


def setUpModule():
    harness.require_postgres()


class ChaosTests(TaskTestCase):
    def setUp(self):
        if harness.TEST_DB:
            self.skipTest("restarts its own PostgreSQL: needs the suite's cluster")
        self.pg = harness.shared_pg()
        self.db = self.pg.fresh_db()
        self.logs = self.logs_dir()

    def test_chaos(self):
        nodes = [self.start_node(name=unique_name("c"), db=self.db,
                                 env=node_env(self.logs, OCTOHA_TASK_CAP=4)) for _ in range(3)]
        lock = threading.Lock()
        statuses, answers_503, io_errors = {}, [], [0]
        created = {}
        pg_down = []  # (from, to) monotonic
        restarts = []  # seconds from restart to a 200 ping
        stop = threading.Event()
        keys = [f"chaos-{i}-{uuid.uuid4().hex[:8]}" for i in range(N_TASKS)]
        todo = list(range(N_TASKS))
        random.seed(7)

        def client(cid):
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                body = {"Name": "Diagnostic", "Description": f"chaos {i}",
                        "Arguments": {"WaitMs": random.randint(50, 400)}}
                for attempt in range(200):
                    n = nodes[(cid + attempt) % len(nodes)]
                    try:
                        r = n.request("POST", TASKS, body=body, headers={"Idempotency-Key": keys[i]},
                                      timeout=30)
                    except OSError:
                        with lock:
                            io_errors[0] += 1
                        time.sleep(0.05)
                        continue
                    with lock:
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                        if r.status == 503:
                            answers_503.append(time.monotonic())
                    if r.status == 202:
                        with lock:
                            created[i] = r.json["Id"]
                        time.sleep(0.25)  # spread the load over the chaos (~20 s)
                        break
                    if r.status not in (409, 503):
                        break  # counted; the checks below fail on it
                    time.sleep(0.1)

        def chaos():
            actions = ["kill", "cut", "kill", "pg", "kill", "cut", "kill"]
            for a in actions:
                if stop.wait(random.uniform(2.0, 3.0)):
                    return
                if a == "kill":
                    n = random.choice(nodes)
                    n.kill()
                    t0 = time.monotonic()
                    n.start(wait=True, timeout=20)
                    restarts.append(time.monotonic() - t0)
                elif a == "cut":
                    harness.psql_db(self.db, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) "
                                             "FROM pg_stat_activity WHERE datname = current_database() "
                                             "AND pid <> pg_backend_pid()) x")
                else:
                    t0 = time.monotonic()
                    self.pg.stop()
                    time.sleep(1.0)
                    self.pg.start()
                    pg_down.append((t0, time.monotonic()))

        clients = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        chaos_thread = threading.Thread(target=chaos)
        t_start = time.monotonic()
        chaos_thread.start()
        for c in clients:
            c.start()
        for c in clients:
            c.join(240)
        chaos_thread.join(120)
        stop.set()
        # Everything ends.
        deadline = time.monotonic() + 90
        while True:
            left = int(harness.psql_db(self.db, "SELECT count(*) FROM ServerTasks WHERE Name = 'Diagnostic' "
                                                "AND State NOT IN ('Success', 'Failed', 'Canceled')").strip())
            if left == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        took = time.monotonic() - t_start
        rows = harness.psql_db(
            self.db,
            "SELECT Id, State, Attempt, ServerNodeId, Result FROM ServerTasks WHERE Name = 'Diagnostic'")
        tasks = [line.split("|", 4) for line in rows.strip().splitlines()]
        print(f"\n  {len(tasks)} tasks in {took:.1f} s; answers {statuses}, {io_errors[0]} refused "
              f"connections; restarts ready in {[round(r, 2) for r in restarts]} s; "
              f"PostgreSQL down {[round(b - a, 1) for a, b in pg_down]} s; attempts "
              f"{sorted({int(t[2]) for t in tasks})}", file=sys.stderr)
        self.assertEqual(len(created), N_TASKS, "every client got its 202")
        self.assertEqual(len(tasks), N_TASKS, "one task per key, none twice")
        self.assertEqual(len({created[i] for i in created}), N_TASKS)
        not_ok = [t for t in tasks if t[1] != "Success"]
        self.assertEqual(not_ok, [], "every task ended Success")
        for tid, _, attempt, node, result in tasks:
            self.assertIn(f'"Attempt":{attempt}', result.replace(" ", ""),
                          f"{tid}: its recorded completion is its last claim's ({attempt}): {result}")
            self.assertIn(f'"Node":"{node}"', result.replace(" ", ""), f"{tid}: {result} on {node}")
        self.assertEqual(statuses.get(500, 0), 0, f"no 500: {statuses}")
        for at in answers_503:
            self.assertTrue(any(a - 0.5 <= at <= b + 1.0 for a, b in pg_down),
                            f"a 503 {at - t_start:.1f} s in, outside the database outage {pg_down}")
        self.assertTrue(restarts, "nodes were killed")
        self.assertLess(max(restarts), 2.0, f"every killed node served again within 2 s: {restarts}")


if __name__ == "__main__":
    harness.main()
