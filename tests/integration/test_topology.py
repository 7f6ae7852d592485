#!/usr/bin/env python3
"""The cluster topology, Octopus's health summary, the cluster probe and
the roles of the new endpoints, on several nodes sharing PostgreSQL.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_topology.py

One throwaway PostgreSQL cluster (tests/pg.sh) serves the whole file, with a
fresh database per test (the numbers are about exactly the test's nodes;
with OCTOHA_TEST_DB set the file skips).  Nodes run with distinct
communications ports unless a test wants them to clash, an explicit
--public-url and fast timings (offline timeout 2 s unless said otherwise).
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING, unique_name  # noqa: E402
from test_tentacles import (  # noqa: E402
    NAT_RULES, POLLING, TASKS, TENTACLES, THUMB, TOPOLOGY, TentacleCase, names_in_order,
)

HEALTH = "/api/serverstatus/health"
PROBE = "/api/cluster/probe"
OFFLINE_MS = 2000
FAST_OFFLINE = {"OCTOHA_OFFLINE_TIMEOUT_MS": str(OFFLINE_MS)}


def setUpModule():
    harness.require_postgres(empty_because="counts the nodes of the cluster")


class TopologyCase(TentacleCase):
    def cluster(self, caps, tag, env=None, comms=None):
        """Nodes with the given task caps on a fresh database, named in order
        (a…, b…, …), each on comms port 11001, 11002, … unless `comms` gives
        (address, port) per node."""
        db = harness.cluster_db(self, need_empty=True)
        names = names_in_order(len(caps), tag)
        nodes = []
        for i, (name, cap) in enumerate(zip(names, caps)):
            addr, port = comms[i] if comms else (f"{name}.comms.test", 11001 + i)
            nodes.append(self.node(db, name, addr, port, cap=cap, env=env))
        return db, nodes

    def assert_capacity(self, observer, total, largest, lost, what):
        topo = self.topology(observer)
        got = (topo["TotalCapacity"], topo["LargestNodeCapacity"], topo["CapacityLostIfLargestNodeFailsPercent"])
        self.assertEqual(got, (total, largest, lost),
                         f"{what}: TotalCapacity, LargestNodeCapacity, CapacityLostIfLargestNodeFailsPercent")
        self.assertNotIsInstance(topo["TotalCapacity"], bool)
        return topo

    def node_rows(self, topo):
        return {n["Name"]: n for n in topo["Nodes"]}

    def states(self, observer):
        return {n["Name"]: (n["State"], n["MaxConcurrentTasks"], n["RunningTasks"])
                for n in self.topology(observer)["Nodes"]}

    def wait_states(self, observer, want, timeout, what, nodes=()):
        """Wait until the topology's (State, MaxConcurrentTasks, RunningTasks)
        per node name equals `want`."""
        last = {}

        def check():
            last["v"] = self.states(observer)
            return last["v"] == want

        try:
            self.wait_until(check, timeout, 0.1, what)
        except AssertionError:
            self.fail(f"{what}: topology nodes {last.get('v')}, expected {want}\n"
                      + "\n".join(n.log_tail(15) for n in nodes))

    def codes(self, topo):
        return [w["Code"] for w in topo["Warnings"]]

    def health(self, node, key=harness.DEFAULT_KEY):
        h = self.api(node, "GET", HEALTH, expect=200, key=key).json
        self.assertEqual(h["Id"], "ServerHealth")
        self.assertIs(h["IsEntireClusterReadOnly"], False, "octoha has no read-only mode")
        return h

    def drain(self, observer, node, force=None, expect=202, wait=True):
        body = {} if force is None else {"Force": force}
        q = "?waitSeconds=20" if wait else ""
        r = self.api(observer, "POST", f"{NODES}/{node.id}/drain{q}", body=body, expect=expect, timeout=40)
        return r

    def undrain(self, observer, node):
        return self.api(observer, "POST", f"{NODES}/{node.id}/undrain?waitSeconds=20", expect=(200, 202), timeout=40)

    def diagnostic(self, node, target, wait_ms):
        r = self.api(node, "POST", TASKS, expect=202,
                     body={"Name": "Diagnostic", "TargetNodeId": target.id, "Arguments": {"WaitMs": wait_ms}})
        return r.json["Id"]


# ---------------------------------------------------------------------------


class CapacityTests(TopologyCase):
    def test_one_two_three_nodes(self):
        db, (a,) = self.cluster([5], "cap")
        topo = self.assert_capacity(a, 5, 5, 100.0, "one node of 5")
        self.assertEqual(self.codes(topo).count("SingleNode"), 1, f"SingleNode warning: {topo['Warnings']}")
        self.assertEqual(self.node_rows(topo)[a.name]["State"], "Online")

        names = sorted([a.name, unique_name("b-cap"), unique_name("c-cap")])
        b = self.node(db, names[1], comms_port=11002, cap=5)
        topo = self.assert_capacity(b, 10, 5, 50.0, "caps 5, 5")
        self.assertNotIn("SingleNode", self.codes(topo), "two nodes online: no SingleNode warning")
        self.assertEqual({n["Name"]: (n["State"], n["MaxConcurrentTasks"], n["RunningTasks"]) for n in topo["Nodes"]},
                         {a.name: ("Online", 5, 0), b.name: ("Online", 5, 0)}, "nodes of caps 5, 5")
        c = self.node(db, names[2], comms_port=11003, cap=10)
        topo = self.assert_capacity(a, 20, 10, 50.0, "caps 5, 5, 10")
        self.assertEqual({n["Name"]: (n["State"], n["MaxConcurrentTasks"]) for n in topo["Nodes"]},
                         {a.name: ("Online", 5), b.name: ("Online", 5), c.name: ("Online", 10)})
        names_seen = [n["Name"] for n in topo["Nodes"]]
        self.assertEqual(names_seen, sorted(names_seen), "topology nodes ordered by Name")
        for row, node in ((self.node_rows(topo)[n.name], n) for n in (a, b, c)):
            self.assertEqual((row["Id"], row["PublicUrl"], row["CommunicationsAddress"], row["CommunicationsPort"]),
                             (node.id, node.public_url, node.comms_address, node.comms_port), f"{node.name} row")
            self.assertEqual(row["Platform"], "linux")
            self.assert_timestamp(row["LastSeen"], "LastSeen")
        self.assertNotIn("CommsPortClash", self.codes(topo), "distinct comms ports: no clash")
        self.assertNotIn("NoCapacity", self.codes(topo))

    def test_two_large_versus_four_small(self):
        _, large = self.cluster([8, 8], "large")
        self.assert_capacity(large[0], 16, 8, 50.0, "two nodes of 8: half the capacity goes with one")
        _, small = self.cluster([4, 4, 4, 4], "small")
        self.assert_capacity(small[0], 16, 4, 25.0, "four nodes of 4: a quarter goes with one")

    def test_four_nodes_drain_cap_change_and_offline(self):
        _, nodes = self.cluster([2, 2, 2, 10], "four", env=FAST_OFFLINE)
        a, b, c, d = nodes
        topo = self.assert_capacity(a, 16, 10, 62.5, "caps 2, 2, 2, 10")
        self.assertEqual(self.states(b), {a.name: ("Online", 2, 0), b.name: ("Online", 2, 0),
                                          c.name: ("Online", 2, 0), d.name: ("Online", 10, 0)})
        self.assertNotIn("SingleNode", self.codes(topo))

        # A new cap applies without a restart: 5, 2, 2, 10 = 19 -> 10/19 = 52.6 %.
        r = self.api(b, "PUT", f"{NODES}/{a.id}?waitSeconds=20", body={"MaxConcurrentTasks": 5}, expect=202, timeout=40)
        self.assertEqual(r.json["State"], "Success", f"SetTaskCap task: {r.json}")
        self.wait_until(lambda: self.topology(c)["TotalCapacity"] == 19, 5, 0.1, "the new cap in the topology")
        self.assert_capacity(c, 19, 10, 52.6, "caps 5, 2, 2, 10")

        # A drained node takes no work: 5, 2, 2 = 9 -> 5/9 = 55.6 %.
        self.drain(a, d)
        self.wait_states(b, {a.name: ("Online", 5, 0), b.name: ("Online", 2, 0), c.name: ("Online", 2, 0),
                             d.name: ("Drained", 10, 0)}, 5, "the largest node drained", nodes)
        topo = self.assert_capacity(c, 9, 5, 55.6, "caps 5, 2, 2 with the 10 drained")

        # Running tasks, and a node draining while they run: 5, 2 -> 5/7 = 71.4 %.
        ids = [self.diagnostic(a, b, 4000) for _ in range(2)]
        self.wait_states(a, {a.name: ("Online", 5, 0), b.name: ("Online", 2, 2), c.name: ("Online", 2, 0),
                             d.name: ("Drained", 10, 0)}, 5, "two tasks running on the second node", nodes)
        self.drain(a, b, wait=False)
        self.wait_states(c, {a.name: ("Online", 5, 0), b.name: ("Draining", 2, 2), c.name: ("Online", 2, 0),
                             d.name: ("Drained", 10, 0)}, 3, "the second node draining its tasks", nodes)
        self.assert_capacity(d, 7, 5, 71.4, "caps 5, 2 while the second node drains")
        for tid in ids:
            t = self.api(a, "GET", f"{TASKS}/{tid}?waitSeconds=15", expect=200, timeout=30).json
            self.assertEqual(t["State"], "Success", f"the drained node's tasks finished: {t}")
        self.wait_states(c, {a.name: ("Online", 5, 0), b.name: ("Drained", 2, 0), c.name: ("Online", 2, 0),
                             d.name: ("Drained", 10, 0)}, 5, "the second node drained once idle", nodes)

        for n in (b, d):
            self.undrain(a, n)
        self.wait_states(a, {a.name: ("Online", 5, 0), b.name: ("Online", 2, 0), c.name: ("Online", 2, 0),
                             d.name: ("Online", 10, 0)}, 5, "every node back online", nodes)
        self.assert_capacity(b, 19, 10, 52.6, "caps 5, 2, 2, 10 after the undrain")
        self.assertIs(self.health(a)["IsOperatingNormally"], True)

        # An offline node counts for nothing: 5, 2, 10 = 17 -> 10/17 = 58.8 %.
        c.kill()
        self.wait_until(lambda: self.node_rows(self.topology(a))[c.name]["State"] == "Offline",
                        OFFLINE_MS / 1000 + 4, 0.1, "the killed node to show Offline", nodes=[a])
        self.assert_capacity(d, 17, 10, 58.8, "caps 5, 2, 10 with one offline")
        h = self.health(b)
        self.assertIs(h["IsOperatingNormally"], False, f"a node is offline: {h}")
        self.assertIs(h["IsEntireClusterDrainingTasks"], False)
        self.assertEqual(h["Description"], "Not operating normally: 1 node(s) offline.")

    def test_one_decimal_in_the_json_text(self):
        _, nodes = self.cluster([3, 3, 3], "dec")
        r = self.api(nodes[0], "GET", TOPOLOGY, expect=200)
        self.assertEqual(r.json["CapacityLostIfLargestNodeFailsPercent"], 33.3, "3/9 -> 33.3")
        m = re.search(rb'"CapacityLostIfLargestNodeFailsPercent":\s*([-0-9.eE+]+)', r.body)
        self.assertIsNotNone(m, "the percentage is in the body")
        self.assertEqual(m.group(1).decode(), "33.3",
                         "the contract gives the percentage with one decimal: the JSON text should say 33.3")


class CommsClashTests(TopologyCase):
    def test_comms_port_clash_warning(self):
        _, (x, y, z) = self.cluster([5, 5, 5], "clash", comms=[("shared.example", 10943), ("shared.example", 10943),
                                                               ("z.example", 10943)])
        topo = self.topology(z)
        clash = self.warnings(topo, "CommsPortClash")
        self.assertEqual(clash, [{"Code": "CommsPortClash", "NodeId": y.id,
                                  "Message": f"{x.name} and {y.name} both listen for Tentacles on shared.example:10943."}],
                         "one clash: the two nodes on one address and port (same port, other address is fine)")
        self.assertEqual(y.terminate(), 0, f"SIGTERM exits 0\n{y.log_tail()}")
        self.wait_until(lambda: not self.warnings(self.topology(x), "CommsPortClash"), 5, 0.1,
                        "the clash to clear once one of the two nodes stopped", nodes=[x])


# ---------------------------------------------------------------------------


class HealthTests(TopologyCase):
    def test_health_through_drain_of_every_node(self):
        _, (a, b) = self.cluster([5, 5], "health")
        for observer in (a, b):
            h = self.health(observer)
            self.assertEqual((h["IsOperatingNormally"], h["IsEntireClusterDrainingTasks"]), (True, False),
                             f"all online: {h}")
            self.assertEqual(h["Description"], "2 node(s) online, 2 taking work (capacity 10).")

        self.drain(b, a)
        h = self.health(b)
        self.assertEqual((h["IsOperatingNormally"], h["IsEntireClusterDrainingTasks"]), (True, False),
                         f"one of two drained: {h}")
        self.assertEqual(h["Description"], "2 node(s) online, 1 taking work (capacity 5).")

        r = self.drain(a, b, expect=409)
        self.assert_error(r, 409, "LastNodeTakingWork", what="draining the last node without Force")
        self.assertEqual(self.states(a)[b.name][0], "Online", "the refused drain changed nothing")
        self.drain(a, b, force=True)
        for observer in (a, b):
            h = self.health(observer)
            self.assertEqual((h["IsOperatingNormally"], h["IsEntireClusterDrainingTasks"]), (False, True),
                             f"every node drained: {h}")
            self.assertEqual(h["Description"], "Not operating normally: every online node is draining.")
        topo = self.assert_capacity(a, 0, 0, 100.0, "every node drained")
        self.assertIn("NoCapacity", self.codes(topo))
        self.assertEqual({n["Name"]: n["State"] for n in topo["Nodes"]}, {a.name: "Drained", b.name: "Drained"})

        self.undrain(b, a)
        h = self.health(a)
        self.assertEqual((h["IsOperatingNormally"], h["IsEntireClusterDrainingTasks"]), (True, False),
                         f"one node undrained: {h}")
        self.undrain(a, b)
        h = self.health(b)
        self.assertEqual((h["IsOperatingNormally"], h["IsEntireClusterDrainingTasks"]), (True, False),
                         f"both undrained: {h}")
        self.assertEqual(h["Description"], "2 node(s) online, 2 taking work (capacity 10).")
        self.assertNotIn("NoCapacity", self.codes(self.topology(a)))


# ---------------------------------------------------------------------------


class ProbeTests(TopologyCase):
    def test_probe_finds_node_alive_but_unreachable(self):
        # A long offline timeout: the killed node stays "online" in the database.
        slow = {"OCTOHA_OFFLINE_TIMEOUT_MS": "60000", "OCTOHA_HEARTBEAT_MS": "200"}
        _, (a, b, c, d) = self.cluster([5, 5, 5, 5], "probe", env=slow)
        self.assertEqual(d.terminate(), 0, f"SIGTERM exits 0\n{d.log_tail()}")
        self.assertIs(self.api(a, "GET", f"{NODES}/{d.id}", expect=200).json["IsOffline"], True,
                      "a cleanly stopped node is offline at once")
        self.drain(a, c)
        self.wait_until(lambda: c.ping().status == 418, 2, 0.05, "the drained node's ping to answer 418 (within a second)")
        b.kill()
        self.assertIs(self.api(a, "GET", f"{NODES}/{b.id}", expect=200).json["IsOffline"], False,
                      "the killed node still counts as online in the database")

        t = self.task_request(a, "POST", PROBE, None, "ClusterProbe")
        res = t["Result"]
        rows = {x["NodeName"]: x for x in res["Nodes"]}
        self.assertEqual(sorted(rows), sorted([a.name, b.name, c.name, d.name]), f"every registered node probed: {res}")
        for n in (a, b, c, d):
            self.assertEqual(rows[n.name]["NodeId"], n.id)
            self.assertEqual(rows[n.name]["Url"], f"{n.public_url}{PING}", "the node's PublicUrl + ping")
            self.assertIs(rows[n.name]["IsOffline"], n is d, f"IsOffline of {n.name}")
        self.assertEqual((rows[d.name]["Reachable"], rows[d.name]["StatusCode"]), (False, None),
                         f"the stopped node: {rows[d.name]}")
        self.assertEqual((rows[a.name]["Reachable"], rows[a.name]["StatusCode"], rows[a.name]["Error"]),
                         (True, 200, None), f"the live node: {rows[a.name]}")
        self.assertEqual((rows[c.name]["Reachable"], rows[c.name]["StatusCode"]), (True, 418),
                         f"the drained node answers 418: {rows[c.name]}")
        self.assertEqual((rows[b.name]["Reachable"], rows[b.name]["StatusCode"]), (False, None),
                         f"the killed node: {rows[b.name]}")
        self.assertTrue(rows[b.name]["Error"], f"the killed node's row says why: {rows[b.name]}")
        self.assertEqual((res["Reachable"], res["AliveButUnreachable"]), (2, 1),
                         f"probe totals: the stopped node is offline, only the killed one is alive but unreachable: {res}")


# ---------------------------------------------------------------------------


class RoleTests(TopologyCase):
    def create_key(self, node, role):
        r = self.api(node, "POST", "/api/apikeys", body={"Name": unique_name(role.lower()), "Role": role}, expect=201)
        return r.json["ApiKey"]

    def test_reader_reads_but_cannot_change(self):
        _, (a, b) = self.cluster([5, 5], "roles")
        reader, operator = self.create_key(a, "Reader"), self.create_key(a, "Operator")
        poller, _ = self.register(a, unique_name("poller"))
        polling_before = self.polling(a)
        count_before = self.tentacles(a)["TotalResults"]

        for path in (TOPOLOGY, HEALTH, TENTACLES, f"{TENTACLES}/{poller}", f"{TENTACLES}/{poller}/servers",
                     POLLING, NAT_RULES):
            with self.subTest(path=path):
                self.api(b, "GET", path, expect=200, key=reader)

        refused = [
            ("POST", TENTACLES, {"Name": unique_name("r"), "Thumbprint": THUMB, "CommunicationStyle": "TentacleActive"}),
            ("PUT", POLLING, {"Mode": "UniquePort", "LoadBalancerAddress": "lb.example", "BasePort": 10950}),
            ("POST", PROBE, None),
            ("POST", f"{TENTACLES}/healthcheck", None),
            ("POST", f"{TENTACLES}/{poller}/polls", None),
            ("DELETE", f"{TENTACLES}/{poller}", None),
        ]
        for method, path, body in refused:
            with self.subTest(method=method, path=path):
                r = self.api(b, method, path, body=body, expect=403, key=reader)
                self.assert_error(r, 403, "RoleNotAllowed", what=f"Reader {method} {path}")
        # Changing the polling mode is for Admins only.
        r = self.api(a, "PUT", POLLING, body=refused[1][2], expect=403, key=operator)
        self.assert_error(r, 403, "RoleNotAllowed", what="Operator PUT polling")

        self.assertEqual(self.polling(b), polling_before, "the refused PUTs changed nothing")
        self.assertEqual(self.tentacles(b)["TotalResults"], count_before, "the refused POST registered nothing")
        t = self.tentacle(b, poller)
        self.assertEqual([p for p in t["Polls"] if p["LastPollAt"]], [], "the refused poll was not recorded")

        # An Operator may register, poll, check and probe.
        self.register(b, unique_name("op"), key=operator)
        self.api(a, "POST", f"{TENTACLES}/{poller}/polls", expect=200, key=operator)
        self.task_request(b, "POST", PROBE, None, "ClusterProbe", key=operator)
        self.task_request(a, "POST", f"{TENTACLES}/healthcheck", None, "TentacleHealthCheck", key=operator)


if __name__ == "__main__":
    harness.main()
