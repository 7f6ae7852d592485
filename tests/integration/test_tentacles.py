#!/usr/bin/env python3
"""Polling and listening Tentacles on several nodes sharing one PostgreSQL database.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_tentacles.py

One throwaway PostgreSQL cluster (tests/pg.sh) serves the whole file; every
test class (or test) has a fresh database of its own, since the tests count
Tentacles, nodes and tasks.  With OCTOHA_TEST_DB set (a shared database) the
file skips.  Nodes get distinct communications addresses and ports
(--comms-address/--comms-port), an explicit --public-url and fast timings.

What is covered: registration and its validation, the server list with its
`Tentacle poll-server` commands and Tentacle.config entries in UniqueAddress
and UniquePort mode with the load balancer's NAT rules, explicit node ports
and their clashes, a node joining (RefreshTentacleServers from housekeeping,
re-registration and the polls that clear it, also when a Tentacle polls every
node at the same instant), one name registered on every node at once, poll
coverage in the topology, and the pinned HTTPS health check of listening
Tentacles (a self-signed certificate made with the openssl CLI, served by a
Python HTTPS server that counts connections and requests).

TentacleCase (helpers: nodes with comms settings, tasks waited for,
registration, server lists) is also used by test_topology.py.
"""

import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DEFAULT_KEY, unique_name  # noqa: E402

TENTACLES = "/api/tentacles"
POLLING = "/api/cluster/polling"
NAT_RULES = "/api/cluster/loadbalancer/nat-rules"
TOPOLOGY = "/api/cluster/topology"
TASKS = "/api/tasks"

FAST = {
    "OCTOHA_HEARTBEAT_MS": "200",
    "OCTOHA_OFFLINE_TIMEOUT_MS": "4000",
    "OCTOHA_HOUSEKEEPING_MS": "250",
    "OCTOHA_POLL_MS": "50",
    "OCTOHA_LEASE_MS": "2000",
}
TASK_WAIT_S = 20

# A Tentacle certificate thumbprint as clients send it (lower case) and as
# octoha stores it (upper case).
THUMB = "0123456789abcdef0123456789abcdef01234567"
THUMB_UPPER = THUMB.upper()
SERVER_THUMB = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
SUBSCRIPTION_RE = re.compile(r"^poll://[abcdefghjklmnpqrstuvwxyz23456789]{20}/$")
TENTACLE_ID_RE = re.compile(r"^Tentacles-[0-9a-f]+$")
KEY_PLACEHOLDER = "API-YOUR-API-KEY"


def setUpModule():
    harness.require_postgres(empty_because="counts Tentacles, nodes and tasks")


def make_node(db, name, comms_address, comms_port, cap=5, env=None) -> harness.Node:
    """A Node (not started) with its comms address and port, task cap and an
    explicit PublicUrl (http://127.0.0.1:PORT), remembered as attributes."""
    # Health checks reach the test's Tentacle stand-ins on loopback, which
    # the outbound policy refuses unless allowed.
    e = dict(FAST, OCTOHA_COMMS_ADDRESS=comms_address, OCTOHA_COMMS_PORT=str(comms_port),
             OCTOHA_TASK_CAP=str(cap), OCTOHA_OUTBOUND_ALLOW="127.0.0.0/8")
    e.update(env or {})
    n = harness.Node(name=name, db=db, env=e)
    n.extra_env.setdefault("OCTOHA_PUBLIC_URL", n.url())
    n.public_url = n.extra_env["OCTOHA_PUBLIC_URL"]
    n.comms_address = comms_address
    n.comms_port = comms_port
    n.cap = cap
    return n


def names_in_order(count: int, tag: str = "") -> list:
    """`count` node names that sort in the order given (a-…, b-…, …)."""
    suffix = uuid.uuid4().hex[:8]
    return [f"{chr(ord('a') + i)}{tag}-{suffix}" for i in range(count)]


def by_name(items, key="NodeName"):
    return sorted(items, key=lambda x: x[key])


class TentacleCase(harness.OctohaTestCase):
    """Helpers for Tentacles, polling and cluster tasks (no tests of its own)."""

    # -- nodes
    def node(self, db, name, comms_address=None, comms_port=10943, cap=5, env=None):
        """A started node, stopped at the end of the test."""
        n = make_node(db, name, comms_address or f"{name}.comms.test", comms_port, cap, env)
        self.track(n)
        n.start()
        return n

    @classmethod
    def class_node(cls, db, name, comms_address=None, comms_port=10943, cap=5, env=None):
        """A started node shared by the class, stopped after its last test."""
        n = make_node(db, name, comms_address or f"{name}.comms.test", comms_port, cap, env)
        cls.addClassCleanup(n.cleanup)
        n.start()
        return n

    # -- tasks
    def task_request(self, node, method, path, body=None, name=None, key=DEFAULT_KEY,
                     wait=TASK_WAIT_S, state="Success"):
        """A request answered 202 with a task; waits for the task (waitSeconds)
        and asserts its Name and final State.  Returns the task."""
        sep = "&" if "?" in path else "?"
        r = self.api(node, method, f"{path}{sep}waitSeconds={wait}", expect=202, body=body,
                     key=key, timeout=wait + 20)
        t = r.json
        self.assertEqual(r.header("Location"), f"{TASKS}/{t['Id']}",
                         f"{method} {path}: Location names the task")
        if name is not None:
            self.assertEqual(t["Name"], name, f"{method} {path}: task kind; task {t}")
        if state is not None:
            if t["State"] != state:
                log = node.request("GET", f"{TASKS}/{t['Id']}/raw").body.decode("utf-8", "replace")
                self.fail(f"{method} {path}: task ended {t['State']}, expected {state}\n"
                          f"task: {t}\nlog:\n{log}")
            self.assertIs(t["IsCompleted"], True, f"{method} {path}: the task ended: {t}")
        return t

    def tasks_named(self, node, kind):
        items = self.api(node, "GET", f"{TASKS}?take=1000", expect=200).json["Items"]
        return [t for t in items if t["Name"] == kind]

    # -- Tentacles
    def register(self, node, name=None, polling=True, thumbprint=THUMB, key=DEFAULT_KEY, **fields):
        """Registers a Tentacle (waiting for RegisterTentacle); returns (id, task)."""
        body = {"Name": name or unique_name("tentacle"), "Thumbprint": thumbprint,
                "CommunicationStyle": "TentacleActive" if polling else "TentaclePassive"}
        body.update(fields)
        t = self.task_request(node, "POST", TENTACLES, body, "RegisterTentacle", key=key)
        tid = t["Arguments"].get("TentacleId")
        self.assertRegex(tid or "", TENTACLE_ID_RE, f"RegisterTentacle Arguments carry the TentacleId: {t}")
        self.assertEqual(t["Result"]["TentacleId"], tid, f"RegisterTentacle Result names the Tentacle: {t}")
        return tid, t

    def tentacle(self, node, tid):
        return self.api(node, "GET", f"{TENTACLES}/{tid}", expect=200).json

    def tentacles(self, node, query=""):
        return self.api(node, "GET", TENTACLES + query, expect=200).json

    def rereg_ids(self, node):
        j = self.tentacles(node, "?needsReRegistration=true&take=1000")
        self.assertEqual(j["TotalResults"], len(j["Items"]), "TotalResults counts only the filtered Tentacles")
        for t in j["Items"]:
            self.assertIs(t["NeedsReRegistration"], True, f"only flagged Tentacles are listed: {t}")
        return sorted(t["Id"] for t in j["Items"])

    def servers(self, node, tid):
        return self.api(node, "GET", f"{TENTACLES}/{tid}/servers", expect=200).json

    def poll(self, node, tid):
        """POST /polls to `node` (the poll counts for the node that answers)."""
        p = self.api(node, "POST", f"{TENTACLES}/{tid}/polls", expect=200).json
        self.assertEqual(p["TentacleId"], tid, f"poll answer names the Tentacle: {p}")
        self.assertEqual(p["NodeId"], node.id, f"the poll is recorded for the node that answered: {p}")
        self.assert_timestamp(p["PolledAt"], "PolledAt")
        return p

    def polling(self, node):
        return self.api(node, "GET", POLLING, expect=200).json

    def nat_rules(self, node):
        return self.api(node, "GET", NAT_RULES, expect=200).json

    def topology(self, node, key=DEFAULT_KEY):
        return self.api(node, "GET", TOPOLOGY, expect=200, key=key).json

    def set_polling(self, node, body):
        """PUT the polling settings; asserts the RefreshTentacleServers task succeeded."""
        return self.task_request(node, "PUT", POLLING, body, "RefreshTentacleServers")

    def warnings(self, topo, code):
        return [w for w in topo["Warnings"] if w["Code"] == code]

    # -- expected server lists
    def expected_servers(self, nodes, answering, subscription, mode, lb=None, ports=None,
                         server_url=None, server_thumb=None):
        """[(server entry, command, TrustedOctopusServers entry)] sorted by node name.

        UniqueAddress: every node at its own comms address and port.
        UniquePort: the load balancer `lb` on the node's port `ports[name]`.
        The --server of the commands is ServerUrl, else the answering node's PublicUrl.
        """
        out = []
        server = server_url or answering.public_url
        for n in sorted(nodes, key=lambda x: x.name):
            if mode == "UniqueAddress":
                addr, port = n.comms_address, n.comms_port
            else:
                addr, port = lb, ports[n.name]
            uri = f"https://{addr}:{port}"
            cmd = f"Tentacle poll-server --server={server} --apiKey={KEY_PLACEHOLDER} --server-comms-port={port}"
            if mode == "UniqueAddress":
                cmd += f" --server-comms-address={uri}"
            out.append((
                {"NodeId": n.id, "NodeName": n.name, "Address": addr, "Port": port, "Uri": uri},
                cmd,
                {"Thumbprint": server_thumb, "CommunicationStyle": 2, "Address": uri, "Squid": None,
                 "SubscriptionId": subscription},
            ))
        return out

    def assert_servers(self, observer, tid, tname, nodes, subscription, mode, what, **kw):
        """GET /servers from `observer` equals the expected list (order by node name
        need not be kept, but Servers, Commands and TrustedOctopusServers must
        correspond index by index)."""
        s = self.servers(observer, tid)
        self.assertEqual((s["TentacleId"], s["TentacleName"], s["Mode"]), (tid, tname, mode),
                         f"{what}: TentacleId, TentacleName, Mode")
        n = len(s["Servers"])
        self.assertEqual((len(s["Commands"]), len(s["TrustedOctopusServers"])), (n, n),
                         f"{what}: one command and one Tentacle.config entry per server: {s}")
        got = sorted(zip(s["Servers"], s["Commands"], s["TrustedOctopusServers"]),
                     key=lambda x: x[0]["NodeName"])
        want = self.expected_servers(nodes, observer, subscription, mode, **kw)
        self.assertEqual([list(x) for x in got], [list(x) for x in want],
                         f"{what}: server entries, commands and trusted servers (as seen from {observer.name})")
        for cmd in s["Commands"]:
            self.assertNotIn(harness.ADMIN_KEY, cmd, f"{what}: no stored key in a command")
        return s


# ---------------------------------------------------------------------------


class RegistrationTests(TentacleCase):
    """Two nodes on one database, shared by the class."""

    @classmethod
    def setUpClass(cls):
        cls.db = harness.cluster_db()
        a, b = names_in_order(2, "reg")
        cls.a = cls.class_node(cls.db, a, comms_port=10943)
        cls.b = cls.class_node(cls.db, b, comms_port=10944)

    def test_polling_without_subscription_id_gets_one(self):
        name = unique_name("poller")
        tid, task = self.register(self.a, name)
        self.assertEqual(task["Result"], {"TentacleId": tid, "ServerCount": 2},
                         "RegisterTentacle recorded one server entry per node")
        self.assertEqual(task["MaxAttempts"], 5, "RegisterTentacle MaxAttempts")
        for observer in (self.a, self.b):
            t = self.tentacle(observer, tid)
            with self.subTest(observer=observer.name):
                self.assertRegex(t["SubscriptionId"], SUBSCRIPTION_RE,
                                 "generated SubscriptionId: poll:// and 20 of Tentacle's alphabet")
                self.assertEqual(t["Id"], tid)
                self.assertEqual(t["Name"], name)
                self.assertEqual(t["Thumbprint"], THUMB_UPPER, "Thumbprint stored upper-cased")
                self.assertEqual(t["CommunicationStyle"], "TentacleActive")
                self.assertIsNone(t["Uri"], "a polling Tentacle has no Uri")
                self.assertEqual(t["ServerCount"], 2, "one server entry per node")
                self.assertIs(t["NeedsReRegistration"], False, "a new Tentacle has nothing to re-apply")
                self.assertIs(t["PollsEveryNode"], False, "it has not polled yet")
                self.assertEqual(by_name(t["Polls"]), [
                    {"NodeId": n.id, "NodeName": n.name, "LastPollAt": None, "WithinWindow": False}
                    for n in (self.a, self.b)], "one poll state per online node, none polled")
                self.assertIsNone(t["HealthStatus"])
                self.assertIsNone(t["HealthCheckedAt"])
                self.assertIsNone(t["HealthDetail"])
                self.assertTrue(t["RegisteredBy"] and t["RegisteredBy"].startswith("bootstrap"),
                                f"RegisteredBy names the bootstrap key: {t['RegisteredBy']!r}")
                self.assert_timestamp(t["RegisteredAt"], "RegisteredAt")
                self.assertEqual(t["Links"]["Self"], f"{TENTACLES}/{tid}")
        first = self.tentacle(self.a, tid)["SubscriptionId"]
        tid2, _ = self.register(self.b)
        second = self.tentacle(self.a, tid2)["SubscriptionId"]
        self.assertRegex(second, SUBSCRIPTION_RE)
        self.assertNotEqual(first, second, "every polling Tentacle gets a SubscriptionId of its own")
        # Recorded in the audit log against the Tentacle.
        evs = self.api(self.a, "GET", f"/api/events?category=TentacleRegistered&regarding={tid}",
                       expect=200).json["Items"]
        self.assertEqual(len(evs), 1, f"one TentacleRegistered event about {tid}: {evs}")

    def test_given_subscription_id_kept(self):
        sub = f"poll://{uuid.uuid4().hex[:24]}/"
        tid, _ = self.register(self.b, SubscriptionId=sub, thumbprint=THUMB_UPPER)
        for observer in (self.a, self.b):
            t = self.tentacle(observer, tid)
            self.assertEqual(t["SubscriptionId"], sub, f"the given SubscriptionId is kept ({observer.name})")
            self.assertEqual(t["Thumbprint"], THUMB_UPPER)
        s = self.servers(self.a, tid)
        self.assertEqual({x["SubscriptionId"] for x in s["TrustedOctopusServers"]}, {sub},
                         "Tentacle.config entries carry the given SubscriptionId")

    def test_listening_registration(self):
        uri = "https://web01.example:10933/"
        name = unique_name("listener")
        tid, task = self.register(self.a, name, polling=False, Uri=uri)
        self.assertEqual(task["Result"], {"TentacleId": tid, "ServerCount": 0},
                         "a listening Tentacle gets no server entries")
        t = self.tentacle(self.b, tid)
        self.assertEqual((t["Name"], t["CommunicationStyle"], t["Uri"], t["SubscriptionId"]),
                         (name, "TentaclePassive", uri, None), "listening Tentacle fields")
        self.assertEqual(t["Thumbprint"], THUMB_UPPER)
        self.assertEqual(t["ServerCount"], 0)
        self.assertIsNone(t["PollsEveryNode"], "PollsEveryNode is null for a listening Tentacle")
        self.assertEqual(t["Polls"], [], "no poll states for a listening Tentacle")

    def test_listening_tentacle_has_no_servers_or_polls(self):
        tid, _ = self.register(self.a, polling=False, Uri="https://web02.example:10933/")
        for observer in (self.a, self.b):
            r = self.api(observer, "GET", f"{TENTACLES}/{tid}/servers", expect=409)
            self.assert_error(r, 409, "NotAPollingTentacle", what=f"/servers of a listening Tentacle ({observer.name})")
            r = self.api(observer, "POST", f"{TENTACLES}/{tid}/polls", expect=409)
            self.assert_error(r, 409, "NotAPollingTentacle", what=f"/polls of a listening Tentacle ({observer.name})")
        self.assertEqual(self.tentacle(self.a, tid)["Polls"], [], "the refused poll was not recorded")
        missing = "Tentacles-0123456789abcdef"
        for method, path in (("GET", f"{TENTACLES}/{missing}"), ("GET", f"{TENTACLES}/{missing}/servers"),
                             ("POST", f"{TENTACLES}/{missing}/polls"), ("DELETE", f"{TENTACLES}/{missing}")):
            r = self.api(self.b, method, path, expect=404)
            self.assert_error(r, 404, "NotFound", what=f"{method} {path}")

    def test_invalid_registrations_change_nothing(self):
        taken = unique_name("taken")
        self.register(self.a, taken)
        before = self.tentacles(self.a, "?take=1000")
        tasks_before = len(self.tasks_named(self.a, "RegisterTentacle"))
        polling = {"Name": unique_name("bad"), "Thumbprint": THUMB, "CommunicationStyle": "TentacleActive"}
        listening = {"Name": unique_name("bad"), "Thumbprint": THUMB, "CommunicationStyle": "TentaclePassive"}
        cases = [
            ("listening without Uri", dict(listening), 400, "ValidationFailed", "Uri"),
            ("polling with Uri", dict(polling, Uri="https://web01:10933/"), 400, "ValidationFailed", "Uri"),
            ("listening with SubscriptionId",
             dict(listening, Uri="https://web01:10933/", SubscriptionId="poll://abcdefghjk/"),
             400, "ValidationFailed", "SubscriptionId"),
            ("thumbprint of 39 hex characters", dict(polling, Thumbprint=THUMB[:39]), 400, "ValidationFailed", "Thumbprint"),
            ("thumbprint of 40 non-hex characters", dict(polling, Thumbprint="g" * 40), 400, "ValidationFailed", "Thumbprint"),
            ("thumbprint of 41 hex characters", dict(polling, Thumbprint=THUMB + "a"), 400, "ValidationFailed", "Thumbprint"),
            ("malformed SubscriptionId", dict(polling, SubscriptionId="poll://ABC/"), 400, "ValidationFailed", "SubscriptionId"),
            ("http Uri", dict(listening, Uri="http://web01:10933/"), 400, "ValidationFailed", "Uri"),
            ("duplicate Name", dict(polling, Name=taken), 409, "TentacleNameInUse", "Name"),
        ]
        for what, body, status, code, field in cases:
            for node in (self.a, self.b):
                with self.subTest(what=what, node=node.name):
                    r = self.api(node, "POST", f"{TENTACLES}?waitSeconds=5", body=body, expect=status)
                    self.assert_error(r, status, code, field, what=what)
        after = self.tentacles(self.b, "?take=1000")
        self.assertEqual(after["TotalResults"], before["TotalResults"], "no refused registration was recorded")
        self.assertEqual([t["Id"] for t in after["Items"]], [t["Id"] for t in before["Items"]],
                         "the Tentacle list is unchanged")
        self.assertEqual(len(self.tasks_named(self.a, "RegisterTentacle")), tasks_before,
                         "no RegisterTentacle task was queued for a refused registration")

    def test_idempotent_registration(self):
        body = {"Name": unique_name("idem"), "Thumbprint": THUMB, "CommunicationStyle": "TentacleActive"}
        hdr = {"Idempotency-Key": unique_name("key")}
        before = self.tentacles(self.a, "?take=1000")["TotalResults"]
        r1 = self.api(self.a, "POST", f"{TENTACLES}?waitSeconds=10", body=body, headers=hdr, expect=202)
        r2 = self.api(self.b, "POST", f"{TENTACLES}?waitSeconds=10", body=body, headers=hdr, expect=202)
        self.assertEqual(r2.json["Id"], r1.json["Id"], "the same Idempotency-Key answers the first task")
        self.assertEqual(r2.json["Arguments"], r1.json["Arguments"], "and the same TentacleId")
        self.assertEqual(self.tentacles(self.a, "?take=1000")["TotalResults"], before + 1,
                         "one Tentacle registered for two requests with one key")

    def test_list_order_paging_and_delete(self):
        for _ in range(2):
            self.register(self.b)
        full = self.tentacles(self.a, "?take=1000")
        names = [t["Name"] for t in full["Items"]]
        self.assertEqual(names, sorted(names), "GET /api/tentacles is ordered by Name")
        self.assertEqual(full["TotalResults"], len(full["Items"]))
        self.assertGreaterEqual(full["TotalResults"], 2)
        page = self.tentacles(self.b, "?skip=1&take=1")
        self.assertEqual([t["Id"] for t in page["Items"]], [full["Items"][1]["Id"]], "skip=1&take=1")
        self.assertEqual((page["TotalResults"], page["ItemsPerPage"]), (full["TotalResults"], 1))
        doomed = full["Items"][0]["Id"]
        r = self.api(self.b, "DELETE", f"{TENTACLES}/{doomed}", expect=204)
        self.assertEqual(r.body, b"", "204 has no body")
        for observer in (self.a, self.b):
            r = self.api(observer, "GET", f"{TENTACLES}/{doomed}", expect=404)
            self.assert_error(r, 404, "NotFound", what="GET of a deleted Tentacle")
        r = self.api(self.a, "DELETE", f"{TENTACLES}/{doomed}", expect=404)
        self.assert_error(r, 404, "NotFound", what="DELETE of a deleted Tentacle")
        after = self.tentacles(self.a, "?take=1000")
        self.assertEqual(after["TotalResults"], full["TotalResults"] - 1)
        self.assertNotIn(doomed, [t["Id"] for t in after["Items"]])
        # The name is free again.
        again, _ = self.register(self.a, full["Items"][0]["Name"])
        self.assertNotEqual(again, doomed, "a new Tentacle with the freed name")


# ---------------------------------------------------------------------------


class PollingModeTests(TentacleCase):
    def test_both_modes_on_two_then_three_nodes(self):
        db = harness.cluster_db(self, need_empty=True)
        an, bn, cn = names_in_order(3, "pm")
        a = self.node(db, an, "a-comms.example", 10943)
        b = self.node(db, bn, "b-comms.example", 10944)
        two = [a, b]

        # Defaults: UniqueAddress, each node on its own address and port.
        p = self.polling(a)
        self.assertEqual({k: v for k, v in p.items() if k != "NodePorts"},
                         {"Mode": "UniqueAddress", "LoadBalancerAddress": None, "BasePort": 10943,
                          "ServerUrl": None, "ServerThumbprint": None, "PollWindowSeconds": 300},
                         "default polling settings")
        self.assertEqual(by_name(p["NodePorts"]), [{"NodeId": n.id, "NodeName": n.name, "Port": n.comms_port}
                                                   for n in two], "UniqueAddress: NodePorts are the comms ports")
        self.assertEqual(self.nat_rules(b), {"Mode": "UniqueAddress", "LoadBalancerAddress": None, "Rules": []},
                         "no NAT rules in UniqueAddress mode")

        tname = unique_name("poller")
        tid, _ = self.register(a, tname)
        sub = self.tentacle(a, tid)["SubscriptionId"]
        for observer in two:
            self.assert_servers(observer, tid, tname, two, sub, "UniqueAddress", "UniqueAddress, 2 nodes")

        # Refused changes change nothing.
        before = self.polling(a)
        r = self.api(a, "PUT", POLLING, body={"Mode": "UniquePort"}, expect=400)
        self.assert_error(r, 400, "ValidationFailed", "LoadBalancerAddress", "UniquePort without LoadBalancerAddress")
        r = self.api(a, "PUT", POLLING, body={"Mode": "UniqueAddress", "NodePorts": {an: 11000}}, expect=400)
        self.assert_error(r, 400, "ValidationFailed", "NodePorts", "NodePorts in UniqueAddress mode")
        r = self.api(b, "PUT", POLLING, body={"Mode": "UniqueAddress", "PollWindowSeconds": 9}, expect=400)
        self.assert_error(r, 400, "ValidationFailed", "PollWindowSeconds", "PollWindowSeconds below 10")
        for field, body in (
                ("BasePort", {"Mode": "UniquePort", "LoadBalancerAddress": "lb.example", "BasePort": 0}),
                ("BasePort", {"Mode": "UniquePort", "LoadBalancerAddress": "lb.example", "BasePort": 65536}),
                ("LoadBalancerAddress", {"Mode": "UniquePort", "LoadBalancerAddress": "lb example"}),
                ("ServerUrl", {"Mode": "UniqueAddress", "ServerUrl": "ftp://octopus.example"}),
                ("ServerThumbprint", {"Mode": "UniqueAddress", "ServerThumbprint": SERVER_THUMB[:39]}),
                ("Mode", {"Mode": "RoundRobin"}),
                ("NodePorts.%s" % an, {"Mode": "UniquePort", "LoadBalancerAddress": "lb.example", "NodePorts": {an: 0}})):
            r = self.api(b, "PUT", POLLING, body=body, expect=400)
            self.assert_error(r, 400, "ValidationFailed", what=f"PUT polling {body}")
            self.assertIn(r.json.get("Field"), (field, field.split(".")[0]), f"Field of the refusal of {body}: {r.json}")
        self.assertEqual(self.polling(b), before, "refused PUTs left the polling settings as they were")

        # UniquePort: the load balancer's address, a port per node from BasePort by name.
        t = self.set_polling(b, {"Mode": "UniquePort", "LoadBalancerAddress": "lb.example", "BasePort": 10950})
        self.assertEqual(t["Result"], {"TentaclesChanged": 1}, "the one polling Tentacle got a new list")
        ports = {an: 10950, bn: 10951}
        p = self.polling(a)
        self.assertEqual((p["Mode"], p["LoadBalancerAddress"], p["BasePort"]), ("UniquePort", "lb.example", 10950))
        self.assertEqual(by_name(p["NodePorts"]), [{"NodeId": n.id, "NodeName": n.name, "Port": ports[n.name]}
                                                   for n in two], "ports from BasePort in order of name")
        for observer in two:
            self.assert_servers(observer, tid, tname, two, sub, "UniquePort", "UniquePort, 2 nodes",
                                lb="lb.example", ports=ports)
        self.assert_nat(a, two, ports, "UniquePort, 2 nodes")
        topo = self.topology(b)
        self.assertEqual({n["Name"]: n["PollingPort"] for n in topo["Nodes"]}, ports, "topology PollingPort")
        self.assertEqual(topo["Polling"], self.nat_rules(b), "topology Polling is the NAT rules")
        self.assertIs(self.tentacle(a, tid)["NeedsReRegistration"], True,
                      "a changed server list must be applied again")

        # Explicit ports: a clash with another node, a clash inside the request,
        # an unknown node; then a port set by hand and a swap.
        r = self.api(a, "PUT", POLLING, body={"Mode": "UniquePort", "NodePorts": {an: 10951}}, expect=409)
        self.assert_error(r, 409, "CommsPortClash", f"NodePorts.{an}", "a port another node has")
        r = self.api(a, "PUT", POLLING, body={"Mode": "UniquePort", "NodePorts": {an: 11000, bn: 11000}},
                     expect=409)
        self.assert_error(r, 409, "CommsPortClash", what="one port for two nodes in NodePorts")
        self.assertTrue((r.json.get("Field") or "").startswith("NodePorts"), f"Field names NodePorts: {r.json}")
        r = self.api(a, "PUT", POLLING, body={"Mode": "UniquePort", "NodePorts": {"zz-no-such-node": 11000}},
                     expect=404)
        self.assert_error(r, 404, "NotFound", "NodePorts.zz-no-such-node", "unknown node in NodePorts")
        self.assert_nat(b, two, ports, "after the refused NodePorts")

        self.set_polling(a, {"Mode": "UniquePort", "NodePorts": {an: 11000}})
        ports = {an: 11000, bn: 10951}
        self.assert_nat(b, two, ports, "NodePorts set by hand")
        self.assert_servers(a, tid, tname, two, sub, "UniquePort", "NodePorts set by hand", lb="lb.example", ports=ports)
        self.set_polling(b, {"Mode": "UniquePort", "NodePorts": {an: 10951, bn: 11000}})
        ports = {an: 10951, bn: 11000}
        self.assert_nat(a, two, ports, "two nodes swapped their ports")
        self.assert_servers(b, tid, tname, two, sub, "UniquePort", "swapped ports", lb="lb.example", ports=ports)

        # A third node joins: it gets the lowest free port from BasePort.
        c = self.node(db, cn, "c-comms.example", 10945)
        three = [a, b, c]
        ports = {an: 10951, bn: 11000, cn: 10950}
        self.wait_until(lambda: len(self.servers(a, tid)["Servers"]) == 3, 10, 0.2,
                        "the joining node to reach the Tentacle's server list", nodes=three)
        for observer in three:
            self.assert_servers(observer, tid, tname, three, sub, "UniquePort", "UniquePort, 3 nodes",
                                lb="lb.example", ports=ports)
        self.assert_nat(c, three, ports, "UniquePort, 3 nodes")

        # ServerUrl and ServerThumbprint reach the commands and Tentacle.config.
        self.set_polling(c, {"Mode": "UniquePort", "ServerUrl": "https://octopus.example",
                             "ServerThumbprint": SERVER_THUMB})
        self.assert_servers(a, tid, tname, three, sub, "UniquePort", "with ServerUrl", lb="lb.example", ports=ports,
                            server_url="https://octopus.example", server_thumb=SERVER_THUMB)

        # Back to UniqueAddress: every node at its own address again, no NAT rules.
        t = self.set_polling(a, {"Mode": "UniqueAddress"})
        self.assertEqual(t["Result"], {"TentaclesChanged": 1})
        for observer in three:
            self.assert_servers(observer, tid, tname, three, sub, "UniqueAddress", "UniqueAddress, 3 nodes",
                                server_url="https://octopus.example", server_thumb=SERVER_THUMB)
        self.assertEqual(self.nat_rules(b), {"Mode": "UniqueAddress", "LoadBalancerAddress": "lb.example", "Rules": []},
                         "no NAT rules in UniqueAddress mode (the address is kept for later)")
        topo = self.topology(c)
        self.assertEqual({n["Name"]: n["PollingPort"] for n in topo["Nodes"]}, {n.name: None for n in three},
                         "no PollingPort in UniqueAddress mode")
        self.assertEqual({n["Name"]: (n["CommunicationsAddress"], n["CommunicationsPort"]) for n in topo["Nodes"]},
                         {n.name: (n.comms_address, n.comms_port) for n in three}, "topology comms address and port")

    def assert_nat(self, observer, nodes, ports, what):
        nat = self.nat_rules(observer)
        self.assertEqual((nat["Mode"], nat["LoadBalancerAddress"]), ("UniquePort", "lb.example"), f"{what}: NAT mode")
        self.assertEqual(
            sorted(nat["Rules"], key=lambda r: r["ListenPort"]),
            sorted(({"ListenPort": ports[n.name], "NodeId": n.id, "NodeName": n.name,
                     "TargetAddress": n.comms_address, "TargetPort": n.comms_port} for n in nodes),
                   key=lambda r: r["ListenPort"]),
            f"{what}: one NAT rule per node, load balancer port -> node comms address and port")


# ---------------------------------------------------------------------------


class NodeJoinTests(TentacleCase):
    def test_joining_node_reaches_every_tentacle(self):
        db = harness.cluster_db(self, need_empty=True)
        an, bn, cn = names_in_order(3, "join")
        a = self.node(db, an, comms_port=10943)
        b = self.node(db, bn, comms_port=10944)
        t1, _ = self.register(a, unique_name("t1"))
        t2, _ = self.register(b, unique_name("t2"))
        listener, _ = self.register(a, polling=False, Uri="https://web03.example:10933/")
        for tid in (t1, t2):
            self.assertEqual(self.tentacle(a, tid)["ServerCount"], 2)
        self.assertEqual(self.rereg_ids(a), [], "nothing to re-register before the join")
        subs = {tid: self.tentacle(a, tid)["SubscriptionId"] for tid in (t1, t2)}
        names = {tid: self.tentacle(a, tid)["Name"] for tid in (t1, t2)}

        c = self.node(db, cn, comms_port=10945)
        three = [a, b, c]
        t0 = time.monotonic()
        self.wait_until(lambda: all(len(self.servers(a, tid)["Servers"]) == 3 for tid in (t1, t2)), 10, 0.2,
                        "housekeeping to give every polling Tentacle the new node", nodes=three)
        took = time.monotonic() - t0
        self.assertLess(took, 10, "within a few seconds")
        for tid in (t1, t2):
            self.assert_servers(c, tid, names[tid], three, subs[tid], "UniqueAddress", f"after the join ({tid})")
            t = self.tentacle(b, tid)
            self.assertEqual(t["ServerCount"], 3)
            self.assertIs(t["NeedsReRegistration"], True, f"{tid} must apply its new server list")
            self.assert_timestamp(t["ServersChangedAt"], "ServersChangedAt")
        self.assertEqual(self.rereg_ids(c), sorted([t1, t2]),
                         "?needsReRegistration=true lists the polling Tentacles, not the listening one")
        self.assertIs(self.tentacle(a, listener)["NeedsReRegistration"], False)
        refresh = [t for t in self.tasks_named(a, "RefreshTentacleServers") if t["RequestedBy"] == "housekeeping"
                   and (t.get("Result") or {}).get("TentaclesChanged") == 2]
        self.assertEqual(len(refresh), 1, f"one housekeeping RefreshTentacleServers changed both Tentacles: {refresh}")
        topo = self.topology(a)
        self.assertEqual(topo["Tentacles"]["NeedReRegistration"], 2)
        self.assertEqual(len(self.warnings(topo, "TentaclesNeedReRegistration")), 1,
                         f"a TentaclesNeedReRegistration warning: {topo['Warnings']}")
        evs = self.api(a, "GET", "/api/events?category=TentacleServersChanged", expect=200).json["Items"]
        self.assertGreaterEqual(len(evs), 1, "the changed server lists are recorded as an event")

        # Polls clear the flag once every node on the list has been polled.
        self.assertIs(self.poll(a, t1)["NeedsReRegistration"], True, "polled 1 of 3 nodes")
        self.assertIs(self.poll(b, t1)["NeedsReRegistration"], True, "polled 2 of 3 nodes")
        self.assertIs(self.tentacle(c, t1)["NeedsReRegistration"], True, "still flagged before the last node")
        self.assertIs(self.poll(c, t1)["NeedsReRegistration"], False, "polled every node on its list")
        self.assertIs(self.tentacle(a, t1)["NeedsReRegistration"], False)
        self.assertEqual(self.rereg_ids(b), [t2], f"{t1} left the re-registration list")
        for n in three:
            self.poll(n, t2)
        self.assertEqual(self.rereg_ids(a), [], "both Tentacles re-registered")
        topo = self.topology(b)
        self.assertEqual(topo["Tentacles"]["NeedReRegistration"], 0)
        self.assertEqual(self.warnings(topo, "TentaclesNeedReRegistration"), [], "the warning cleared")
        t = self.tentacle(c, t1)
        self.assertEqual(sorted(p["NodeName"] for p in t["Polls"] if p["LastPollAt"]), sorted(n.name for n in three),
                         "a poll recorded for every node")
        self.assertIs(t["PollsEveryNode"], True)


# ---------------------------------------------------------------------------


class ConcurrencyTests(TentacleCase):
    """Three nodes on one database, shared by the class.  A real polling
    Tentacle polls every node at the same time, and registrations can reach
    several nodes at once through a load balancer."""

    ROUNDS = 40

    @classmethod
    def setUpClass(cls):
        cls.db = harness.cluster_db()
        names = names_in_order(3, "conc")
        cls.nodes = [cls.class_node(cls.db, n, comms_port=10943 + i) for i, n in enumerate(names)]

    def at_once(self, requests):
        """Sends (node, method, path, body) requests at the same instant, each on a
        connection opened beforehand; returns [(status, json)] in order."""
        conns = []
        for node, _, _, _ in requests:
            c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=15)
            c.connect()
            conns.append(c)
        barrier = threading.Barrier(len(requests))
        out = [None] * len(requests)

        def send(i):
            node, method, path, body = requests[i]
            headers = {harness.API_KEY_HEADER: harness.ADMIN_KEY}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            barrier.wait()
            try:
                conns[i].request(method, path, body=data, headers=headers)
                resp = conns[i].getresponse()
                raw = resp.read()
                out[i] = (resp.status, json.loads(raw) if raw else None)
            except (OSError, http.client.HTTPException, ValueError) as e:
                out[i] = (None, repr(e))
            finally:
                conns[i].close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return out

    def test_polls_of_every_node_at_once_clear_reregistration(self):
        a = self.nodes[0]
        tid, _ = self.register(a, unique_name("simul"))
        stuck = []
        for rnd in range(self.ROUNDS):
            # Flip the mode: every polling Tentacle gets a new list to apply.
            mode = ({"Mode": "UniquePort", "LoadBalancerAddress": "lb.example", "BasePort": 10950}
                    if rnd % 2 == 0 else {"Mode": "UniqueAddress"})
            self.set_polling(a, mode)
            before = self.tentacle(a, tid)
            self.assertIs(before["NeedsReRegistration"], True, f"round {rnd}: the new list must be applied")
            answers = self.at_once([(n, "POST", f"{TENTACLES}/{tid}/polls", None) for n in self.nodes])
            for (status, body), n in zip(answers, self.nodes):
                self.assertEqual(status, 200, f"round {rnd}: poll of {n.name}: {body}")
                self.check_spec("POST", f"{TENTACLES}/{tid}/polls",
                                harness.Response(status, {"Content-Type": "application/json"}, b"", body))
            after = self.tentacle(a, tid)
            changed = before["ServersChangedAt"]
            polled = {p["NodeName"]: p["LastPollAt"] for p in after["Polls"]}
            self.assertTrue(all(polled[n.name] and polled[n.name] >= changed for n in self.nodes),
                            f"round {rnd}: every node recorded a poll after the change at {changed}: {polled}")
            if after["NeedsReRegistration"]:
                stuck.append((rnd, [b["NeedsReRegistration"] for _, b in answers]))
        self.assertEqual(stuck, [],
                         f"every node on the list was polled after the change, so NeedsReRegistration must be "
                         f"false; it stayed true in {len(stuck)} of {self.ROUNDS} rounds "
                         f"(round, NeedsReRegistration of the three poll answers): {stuck}")

    def test_one_name_registered_at_once_on_every_node(self):
        for rnd in range(5):
            name = unique_name(f"race{rnd}")
            body = {"Name": name, "Thumbprint": THUMB, "CommunicationStyle": "TentacleActive"}
            answers = self.at_once([(n, "POST", TENTACLES, body) for n in self.nodes])
            statuses = sorted(s for s, _ in answers)
            self.assertEqual(statuses, [202, 409, 409], f"round {rnd}: one registration wins: {answers}")
            for status, body_json in answers:
                if status == 409:
                    self.assertEqual(body_json.get("Code"), "TentacleNameInUse", f"round {rnd}: {body_json}")
            items = [t for t in self.tentacles(self.nodes[1], "?take=1000")["Items"] if t["Name"] == name]
            self.assertEqual(len(items), 1, f"round {rnd}: one Tentacle named {name}: {items}")


# ---------------------------------------------------------------------------


# Where the topology's Tentacle summary points for the whole lists.
COVERAGE_LINKS = {"NotPollingEveryNode": "/api/tentacles?notPollingEveryNode=true",
                  "NeedReRegistration": "/api/tentacles?needsReRegistration=true"}


class CoverageTests(TentacleCase):
    WINDOW_S = 10

    def test_tentacle_not_polling_every_node(self):
        db = harness.cluster_db(self, need_empty=True)
        an, bn = names_in_order(2, "cov")
        a = self.node(db, an, comms_port=10943)
        b = self.node(db, bn, comms_port=10944)
        self.set_polling(a, {"Mode": "UniqueAddress", "PollWindowSeconds": self.WINDOW_S})
        self.assertEqual(self.polling(b)["PollWindowSeconds"], self.WINDOW_S)
        tname = unique_name("cov")
        tid, _ = self.register(b, tname)

        self.poll(a, tid)
        topo = self.topology(b)
        self.assertEqual(topo["Tentacles"], {
            "Total": 1, "Polling": 1, "Listening": 0, "PollingEveryNode": 0,
            "NotPollingEveryNode": [{"Id": tid, "Name": tname, "MissingNodes": [bn]}],
            "NotPollingEveryNodeTotal": 1, "NeedReRegistration": 0, "Links": COVERAGE_LINKS},
            "polled only the first node")
        w = self.warnings(topo, "TentaclesNotPollingAllNodes")
        self.assertEqual(len(w), 1, f"one TentaclesNotPollingAllNodes warning: {topo['Warnings']}")
        self.assertEqual(w[0]["TentacleId"], tid)
        missing = self.api(b, "GET", COVERAGE_LINKS["NotPollingEveryNode"], expect=200).json
        self.assertEqual(([t["Id"] for t in missing["Items"]], missing["TotalResults"]), ([tid], 1),
                         "the paged list behind the summary")
        self.assertEqual(w[0]["Message"], f"Tentacle {tname} has not polled 1 online node(s) within {self.WINDOW_S} s.")
        t = self.tentacle(a, tid)
        self.assertIs(t["PollsEveryNode"], False)
        polls = {p["NodeName"]: p for p in t["Polls"]}
        self.assertIs(polls[an]["WithinWindow"], True)
        self.assert_timestamp(polls[an]["LastPollAt"], "LastPollAt of the polled node")
        self.assertEqual((polls[bn]["LastPollAt"], polls[bn]["WithinWindow"]), (None, False))

        self.poll(b, tid)
        polled_all = time.monotonic()
        topo = self.topology(a)
        self.assertEqual(topo["Tentacles"], {
            "Total": 1, "Polling": 1, "Listening": 0, "PollingEveryNode": 1,
            "NotPollingEveryNode": [], "NotPollingEveryNodeTotal": 0, "NeedReRegistration": 0,
            "Links": COVERAGE_LINKS}, "polled both nodes")
        self.assertEqual(self.warnings(topo, "TentaclesNotPollingAllNodes"), [], "the warning cleared")
        self.assertIs(self.tentacle(b, tid)["PollsEveryNode"], True)
        self.assertEqual(self.api(a, "GET", COVERAGE_LINKS["NotPollingEveryNode"], expect=200).json["Items"],
                         [], "the poll took it off the list at once")

        # Past the window without polls, both nodes are missing again.
        time.sleep(max(0.0, self.WINDOW_S + 1.0 - (time.monotonic() - polled_all)))
        topo = self.topology(b)
        self.assertEqual(topo["Tentacles"]["NotPollingEveryNode"],
                         [{"Id": tid, "Name": tname, "MissingNodes": [an, bn]}],
                         "no poll within PollWindowSeconds: every node missing")
        self.assertEqual(len(self.warnings(topo, "TentaclesNotPollingAllNodes")), 1)
        t = self.tentacle(a, tid)
        self.assertEqual({p["NodeName"]: p["WithinWindow"] for p in t["Polls"]}, {an: False, bn: False})
        # Housekeeping records it once the Tentacle has had a whole window.
        def events():
            return self.api(a, "GET", f"/api/events?category=TentacleNotPollingAllNodes&regarding={tid}",
                            expect=200).json["Items"]

        self.wait_until(events, 5, 0.25, "a TentacleNotPollingAllNodes event from housekeeping", nodes=[a, b])
        time.sleep(1.5)  # six housekeeping periods
        evs = events()
        self.assertEqual(len(evs), 1, f"one event while the Tentacle keeps missing nodes, not one per period: {evs}")
        self.assertEqual((evs[0]["Result"], evs[0]["ResourceId"]), ("Failed", tid))
        # Housekeeping may see the first node's poll expire a moment before the second's.
        self.assertIn(evs[0]["Message"],
                      (f"Tentacle {tname} has not polled 2 online node(s) within {self.WINDOW_S} s: {an} {bn}",
                       f"Tentacle {tname} has not polled 1 online node(s) within {self.WINDOW_S} s: {an}"),
                      "the event names the Tentacle, the window and the missing nodes")


# ---------------------------------------------------------------------------


class _TentacleHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):  # noqa: N802 - http.server's naming
        with self.server.lock:
            self.server.requests.append(self.path)
        body = b"octoha test tentacle\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


class FakeTentacle(http.server.ThreadingHTTPServer):
    """An HTTPS server with a given certificate that counts TCP connections,
    failed TLS handshakes and HTTP requests."""

    daemon_threads = True

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.failed_handshakes = 0
        super().__init__(("127.0.0.1", harness.free_port()), _TentacleHandler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def get_request(self):
        sock, addr = self.socket.accept()
        with self.lock:
            self.connections += 1
        sock.settimeout(10)
        try:
            return self.ctx.wrap_socket(sock, server_side=True), addr
        except OSError:
            with self.lock:
                self.failed_handshakes += 1
            sock.close()
            raise

    def stop(self):
        self.shutdown()
        self.server_close()


def make_cert(directory):
    """A self-signed certificate made with the openssl CLI; (cert, key, SHA-1 thumbprint)."""
    cert, key = directory / "tentacle.crt", directory / "tentacle.key"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "2", "-subj", "/CN=tentacle.octoha.test"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl req failed: {r.stderr}")
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    thumb = hashlib.sha1(der).hexdigest().upper()
    r = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha1"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode == 0 and "=" in r.stdout:
        assert r.stdout.strip().split("=", 1)[1].replace(":", "").upper() == thumb, (r.stdout, thumb)
    return cert, key, thumb


class HealthCheckTests(TentacleCase):
    def setUp(self):
        if not shutil.which("openssl"):
            self.skipTest("the openssl CLI is not installed")
        self.dir = harness.make_tmp_dir("tentacle-cert")
        self.cert, self.key, self.thumb = make_cert(self.dir)
        self.good = FakeTentacle(self.cert, self.key)
        self.addCleanup(self.good.stop)
        self.bad = FakeTentacle(self.cert, self.key)
        self.addCleanup(self.bad.stop)

    def test_pinned_health_check(self):
        db = harness.cluster_db(self, need_empty=True)
        an, bn = names_in_order(2, "hc")
        a = self.node(db, an, comms_port=10943)
        b = self.node(db, bn, comms_port=10944)
        wrong = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"
        closed = harness.free_port()
        right_id, _ = self.register(a, unique_name("right"), polling=False, thumbprint=self.thumb.lower(),
                                    Uri=f"https://127.0.0.1:{self.good.port}/")
        wrong_id, _ = self.register(a, unique_name("wrong"), polling=False, thumbprint=wrong,
                                    Uri=f"https://127.0.0.1:{self.bad.port}/")
        closed_id, _ = self.register(b, unique_name("closed"), polling=False, thumbprint=self.thumb,
                                     Uri=f"https://127.0.0.1:{closed}/")
        poller, _ = self.register(b, unique_name("poller"))

        # Only the Tentacles asked for.
        t = self.task_request(b, "POST", f"{TENTACLES}/healthcheck", {"TentacleIds": [wrong_id]},
                              "TentacleHealthCheck")
        self.assertEqual([x["TentacleId"] for x in t["Result"]["Tentacles"]], [wrong_id],
                         f"only the Tentacle named in TentacleIds is checked: {t['Result']}")
        self.assertIsNone(self.tentacle(a, right_id)["HealthStatus"], "an unnamed Tentacle was not checked")
        self.assertEqual(self.good.connections, 0, "nothing connected to the unnamed Tentacle")

        # Every listening Tentacle.
        t = self.task_request(a, "POST", f"{TENTACLES}/healthcheck", None, "TentacleHealthCheck")
        res = {x["TentacleId"]: x for x in t["Result"]["Tentacles"]}
        self.assertEqual(sorted(res), sorted([right_id, wrong_id, closed_id]),
                         f"every listening Tentacle checked, the polling one not: {t['Result']}")
        self.assertEqual({k: v["Status"] for k, v in res.items()},
                         {right_id: "Reachable", wrong_id: "ThumbprintMismatch", closed_id: "Unreachable"},
                         f"task Result statuses: {t['Result']}")

        for observer in (a, b):
            right = self.tentacle(observer, right_id)
            self.assertEqual(right["HealthStatus"], "Reachable", f"right thumbprint: {right}")
            self.assertEqual(right["HealthDetail"], "TLS handshake with the registered certificate")
            self.assert_timestamp(right["HealthCheckedAt"], "HealthCheckedAt")
            mism = self.tentacle(observer, wrong_id)
            self.assertEqual(mism["HealthStatus"], "ThumbprintMismatch", f"wrong thumbprint: {mism}")
            # What a Reader sees says whether the registered Tentacle answered,
            # not what else listens there (issue 15.8): no certificate of
            # another service, no transport error telling ports apart.
            self.assertEqual(mism["HealthDetail"], "the certificate presented is not the registered one")
            self.assertNotIn(self.thumb.lower(), json.dumps(mism).lower(), "the presented thumbprint is not shown")
            self.assert_timestamp(mism["HealthCheckedAt"], "HealthCheckedAt")
            unre = self.tentacle(observer, closed_id)
            self.assertEqual(unre["HealthStatus"], "Unreachable", f"closed port: {unre}")
            self.assertEqual(unre["HealthDetail"], "unreachable", f"no transport error: {unre}")
            self.assert_timestamp(unre["HealthCheckedAt"], "HealthCheckedAt")
            self.assertIsNone(self.tentacle(observer, poller)["HealthStatus"], "a polling Tentacle is not checked")

        self.assertGreaterEqual(len(self.good.requests), 1, "the pinned certificate matched: the request was sent")
        self.assertEqual(set(self.good.requests), {"/"}, "the request went to the registered Uri's path")
        self.assertGreaterEqual(self.bad.connections, 2, "both checks connected to the mismatching Tentacle")
        self.assertEqual(self.bad.requests, [], "on a thumbprint mismatch no HTTP request is sent")
        self.assertGreaterEqual(self.bad.failed_handshakes, 2, "the handshake was refused by the node")


if __name__ == "__main__":
    harness.main()
