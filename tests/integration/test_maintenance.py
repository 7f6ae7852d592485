#!/usr/bin/env python3
"""Rolling maintenance through HAProxy under steady client load.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_maintenance.py -v

HAProxy (docker/haproxy.cfg, unchanged) stands in front of three nodes and a
steady stream of GETs goes through it (test_haproxy.py's Stream).  A rolling
maintenance run is started; a webhook receiver subscribed to
NodeReadyForMaintenance restarts each node when it is announced (the
"patch").  Every node is drained, restarted and undrained in turn; no client
request fails; HAProxy never has two servers out of rotation at once (its
stats socket is sampled every 50 ms).

  * the local cluster: the three nodes are the cluster the run belongs to
    (the node driving the run may be the one restarted: another takes the
    run over);
  * a managed cluster: the three nodes are reached through HAProxy and their
    own URLs by a control plane of two nodes with a database of their own;
    halfway through, the control-plane node driving the run is killed with
    SIGKILL and the other one takes the run over at the step it had reached.

Needs haproxy and PostgreSQL; skips (77) without them.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_haproxy as th  # noqa: E402
from harness import ADMIN_KEY, NODES, unique_name  # noqa: E402
from test_webhooks import Receiver  # noqa: E402

RUNS = "/api/maintenance-runs"
NODE_ENV = {"OCTOHA_HEARTBEAT_MS": "200", "OCTOHA_OFFLINE_TIMEOUT_MS": "3000",
            "OCTOHA_LEASE_MS": "2000", "OCTOHA_SHUTDOWN_GRACE_MS": "500",
            "OCTOHA_OUTBOUND_ALLOW": "127.0.0.0/8"}
# Settle past HAProxy's `rise 2` after `downinter 2s`: a node is back in
# rotation before the next one leaves it.  BalancerDelaySeconds is 2 x
# `inter 1s` x `fall 1`: a node is out of rotation when it is announced.
RUN_BODY = {"SettleSeconds": 5, "DrainDeadlineSeconds": 30, "MinOnlineNodes": 1,
            "BalancerDelaySeconds": 2, "Reason": "monthly patching"}
RUN_TIMEOUT_S = 150
th.STREAM_CAP_S = RUN_TIMEOUT_S + 30  # the stream lasts the whole run


def setUpModule():
    th.setUpModule()


def shared_secrets_key() -> str:
    """A secrets key file for every node of one cluster, as copied to each
    node in production: what one node seals (webhook secrets, a managed
    cluster's API key) the others open."""
    path = harness.make_tmp_dir("secrets") / "secrets.key"
    path.write_text(os.urandom(32).hex() + "\n")
    os.chmod(path, 0o600)
    return str(path)


class Sampler:
    """Samples HAProxy's server states every 50 ms: (t, servers not UP)."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(10)

    def _run(self):
        while not self._stop.is_set():
            try:
                st = self.proxy.stat()
                self.samples.append((time.monotonic(), sorted(s for s, r in st.items() if r["status"] != "UP")))
            except OSError:
                pass
            self._stop.wait(0.05)

    def most_out(self):
        return max((len(out) for _, out in self.samples), default=0)


class RollingMaintenanceTests(harness.OctohaTestCase):
    def setUp(self):
        self.db = harness.cluster_db(self, need_empty=True)

    def start_three(self, db, prefix, env=NODE_ENV):
        """Three nodes on DB, each with a health listener for HAProxy's
        checks (node.health_port); the first applies the migrations."""
        env = dict(env, OCTOHA_SECRETS_KEY_FILE=shared_secrets_key())
        names = [unique_name(f"{prefix}{i}") for i in (1, 2, 3)]
        ports = [harness.free_port() for _ in names]
        envs = [dict(env, OCTOHA_HEALTH_LISTEN=f"127.0.0.1:{p}") for p in ports]
        first = self.start_node(name=names[0], db=db, env=envs[0])
        rest = [self.start_node(name=n, db=db, env=e, wait=False) for n, e in zip(names[1:], envs[1:])]
        for n in rest:
            n.wait_ready()
        nodes = [first] + rest
        for n, p in zip(nodes, ports):
            n.health_port = p
        return nodes

    def start_proxy(self, nodes):
        proxy = th.HAProxy([f"127.0.0.1:{n.port}" for n in nodes], [n.health_port for n in nodes])
        self.addCleanup(proxy.stop)
        proxy.start()
        self.wait_until(lambda: all(r["status"] == "UP" and r.get("check_status") == "L7OK"
                                    for r in proxy.stat().values()) and len(proxy.stat()) == 3,
                        15, msg=f"HAProxy to see the three nodes UP: {proxy.state()}")
        return proxy

    def assert_out_of_rotation(self, proxy, i):
        """HAProxy's server I (node1..node3 of docker/haproxy.cfg) is out of
        rotation: NodeReadyForMaintenance came after the balancer acted."""
        server = th.SERVERS[i]
        self.assertNotEqual(proxy.stat()[server]["status"], "UP",
                            f"{server} is out of rotation when announced ready: {proxy.state()}")

    def lb(self, proxy, method, path, body=None, expect=None):
        r = harness.http_request("http", proxy.port, method, path, body=body, timeout=15)
        if expect is not None:
            self.assertIn(r.status, expect if isinstance(expect, tuple) else (expect,),
                          f"{method} {path}: {r.describe()}")
        if r.json is not None:
            harness.check_response(method, harness.spec_checker().match_template(path), r.status, r.json,
                                   r.header("Content-Type"))
        return r

    def subscribe(self, node, url):
        self.api(node, "POST", "/api/subscriptions", expect=201, body={
            "Name": "maintenance", "Url": url, "EventTypes": ["NodeReadyForMaintenance", "MaintenanceRunCompleted"],
            "Secret": "s3cret-s3cret-s3cret"})

    def roll(self, proxy, start_call, run_get, restart, on_event=None):
        """Starts the run with START_CALL(), restarts each node announced
        ready, and waits for the run to end.  Returns (run, events)."""
        recv = self.recv
        stream = th.Stream(proxy.port).start()
        sampler = Sampler(proxy).start()
        self.addCleanup(stream.stop)
        self.addCleanup(sampler.stop)
        self.wait_until(lambda: len(stream.records) > 50, 15, msg="the client stream to run")
        run_id = start_call()
        handled = set()
        deadline = time.monotonic() + RUN_TIMEOUT_S
        run = None
        while time.monotonic() < deadline:
            for r in recv.snapshot():
                ev = (r["json"] or {}).get("Event") or {}
                if ev.get("Category") != "NodeReadyForMaintenance" or ev["Id"] in handled:
                    continue
                if (ev.get("Details") or {}).get("MaintenanceRunId") != run_id:
                    continue
                handled.add(ev["Id"])
                if on_event:
                    on_event(ev, run_id)
                restart(ev["Details"]["Node"])
            run = run_get(run_id)
            if run and run["State"] in ("Completed", "Failed", "Aborted"):
                break
            time.sleep(0.1)
        stream.stop()
        sampler.stop()
        fails = [rec for rec in stream.records if rec[6] is not None or rec[4] != 200]
        summary = (f"{len(stream.records)} requests, {len(fails)} failed; at most {sampler.most_out()} "
                   f"server(s) out of rotation at once; run {run and run['State']}")
        sys.stderr.write(f"\ntest_maintenance: {summary}\n")
        self.assertIsNotNone(run)
        got = [((r["json"] or {}).get("Event") or {}).get("Category") for r in recv.snapshot()]
        self.assertEqual(run["State"], "Completed", f"{run}\nwebhooks: {got}\n{proxy.log_tail()}")
        self.assertEqual(fails[:10], [], f"every request through HAProxy answered 200: {summary}")
        self.assertEqual(sampler.most_out(), 1, f"exactly one node out at a time: {summary}")
        events = [r["json"]["Event"] for r in recv.snapshot()
                  if (r["json"] or {}).get("Event", {}).get("Category") == "NodeReadyForMaintenance"
                  and r["json"]["Event"]["Details"]["MaintenanceRunId"] == run_id]
        return run, events, stream

    def check_steps(self, run, keys):
        steps = run["Steps"]
        self.assertEqual([s["Node"] for s in steps], keys)
        for s in steps:
            self.assertEqual(s["State"], "Done", s)
            for f in ("DrainRequestedAt", "DrainedAt", "ReadyAt", "RestartedAt", "UndrainRequestedAt",
                      "OnlineAt", "DoneAt"):
                self.assertIsNotNone(s[f], f"{s['NodeName']}.{f}")
            self.assertFalse(s["ContinueRequested"], "the restart, not an operator, moved it on")
        # Never two nodes out: each node's time out of service (drain
        # request to back online) ends before the next one's begins.
        for a, b in zip(steps, steps[1:]):
            self.assertLess(harness.parse_timestamp(a["OnlineAt"]), harness.parse_timestamp(b["DrainRequestedAt"]),
                            f"{a['NodeName']} was back before {b['NodeName']} was drained")

    def test_local_cluster(self):
        nodes = self.start_three(self.db, "lm")
        proxy = self.start_proxy(nodes)
        self.recv = Receiver()
        self.addCleanup(self.recv.stop)
        self.subscribe(nodes[0], self.recv.url)
        started = {n.id: self.api(n, "GET", f"{NODES}/{n.id}", expect=200).json["StartedAt"] for n in nodes}
        by_id = {n.id: n for n in nodes}

        def start_call():
            r = self.lb(proxy, "POST", RUNS, body=RUN_BODY, expect=202)
            self.assertEqual(r.json["Name"], "MaintenanceRun")
            return r.json["Arguments"]["MaintenanceRunId"]

        def run_get(rid):
            r = self.lb(proxy, "GET", f"{RUNS}/{rid}")
            return r.json if r.status == 200 else None

        def restart(node_id):
            n = by_id[node_id]
            self.assertEqual(n.ping().status, 418, f"{n.name} is drained when announced")
            self.assert_out_of_rotation(proxy, nodes.index(n))
            n.terminate()
            n.restart()

        run, events, _ = self.roll(proxy, start_call, run_get, restart)
        self.check_steps(run, sorted(started, key=lambda i: by_id[i].name))
        self.assertEqual(len(events), 3, "one NodeReadyForMaintenance per node")
        for n in nodes:
            now = self.api(n, "GET", f"{NODES}/{n.id}", expect=200).json
            self.assertNotEqual(now["StartedAt"], started[n.id], f"{n.name} was restarted")
            self.assertFalse(now["IsInMaintenanceMode"])
            self.assertEqual(n.ping().status, 200)

    def test_managed_cluster_with_takeover(self):
        remote = self.start_three(self.db, "mm", env={k: v for k, v in NODE_ENV.items()
                                                      if k != "OCTOHA_OUTBOUND_ALLOW"})
        proxy = self.start_proxy(remote)
        cp_db = harness.fresh_pg_db()
        cp_env = dict(NODE_ENV, OCTOHA_SECRETS_KEY_FILE=shared_secrets_key())
        cp = [self.start_node(name=unique_name("cp1"), db=cp_db, env=cp_env)]
        cp.append(self.start_node(name=unique_name("cp2"), db=cp_db, env=cp_env))
        self.recv = Receiver()
        self.addCleanup(self.recv.stop)
        self.subscribe(cp[0], self.recv.url)
        c = self.api(cp[0], "POST", "/api/managedclusters", expect=201, body={
            "Name": unique_name("prod"), "LoadBalancerUrl": f"http://127.0.0.1:{proxy.port}", "ApiKey": ADMIN_KEY,
            "Nodes": [{"Name": n.name, "Url": n.url()} for n in remote]}).json
        disc = self.api(cp[0], "POST", f"/api/managedclusters/{c['Id']}/discover?waitSeconds=30", expect=202).json
        self.assertEqual(disc["State"], "Success", disc)
        by_name = {n.name: n for n in remote}
        alive = list(cp)
        killed = {}

        def api_cp(method, path, **kw):
            return self.api(alive[0], method, path, **kw)

        def start_call():
            r = api_cp("POST", RUNS, body=dict(RUN_BODY, ClusterId=c["Id"]), expect=202)
            return r.json["Arguments"]["MaintenanceRunId"]

        def run_get(rid):
            run = api_cp("GET", f"{RUNS}/{rid}", expect=200).json
            steps = run["Steps"]
            if not killed and steps[0]["State"] == "Done" and steps[1]["State"] == "Draining" \
                    and steps[1]["DrainTaskId"]:
                # Halfway: kill the control-plane node driving the run.
                task = api_cp("GET", f"/api/tasks/{run['TaskId']}", expect=200).json
                driver = next(n for n in cp if n.id == task["ServerNode"])
                killed.update(node=driver, attempt=task["Attempt"], step0=steps[0],
                              drain=steps[1]["DrainTaskId"], at=time.monotonic())
                driver.kill()
                alive.remove(driver)
            return run

        def restart(name):
            n = by_name[name]
            self.assertEqual(n.ping().status, 418, f"{n.name} is drained when announced")
            self.assert_out_of_rotation(proxy, remote.index(n))
            n.terminate()
            n.restart()

        run, events, _ = self.roll(proxy, start_call, run_get, restart)
        self.assertTrue(killed, "the driver was killed halfway")
        self.check_steps(run, [n.name for n in sorted(remote, key=lambda n: n.name)])
        self.assertEqual(len(events), 3, "one NodeReadyForMaintenance per node, none repeated by the takeover")
        self.assertEqual(run["Steps"][0]["DoneAt"], killed["step0"]["DoneAt"], "the first node was not redone")
        self.assertEqual(run["Steps"][1]["DrainTaskId"], killed["drain"], "the takeover resumed the same drain")
        task = api_cp("GET", f"/api/tasks/{run['TaskId']}", expect=200).json
        self.assertGreater(task["Attempt"], killed["attempt"], "another node took the driving task over")
        self.assertEqual(task["ServerNode"], alive[0].id)
        log = api_cp("GET", f"/api/tasks/{run['TaskId']}/raw", expect=200).body.decode()
        self.assertIn(f"attempt {task['Attempt']}", log)
        self.assertNotIn(ADMIN_KEY, log)
        for n in remote:
            self.assertEqual(n.ping().status, 200)


if __name__ == "__main__":
    harness.main()
