#!/usr/bin/env python3
"""Managed clusters: a control plane steering another cluster through Octopus's API.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_managed_clusters.py -v

The managed cluster is three octoha nodes on a PostgreSQL database of their
own; they speak Octopus's API for the endpoints the remote client uses (ping,
the node list and summary, GET/PUT of a node, the task list and cancel, a
space's machines), and the control plane reaches them only through those.
The control plane is a separate octoha node with its own database and
OCTOHA_OUTBOUND_ALLOW=127.0.0.0/8 (everything here is on loopback).  A
fourth cluster, one octoha node serving HTTPS with a self-signed
certificate, checks the pinned thumbprint.

Needs PostgreSQL (tests/pg.sh) and the openssl CLI; skips (77) without them.
"""

import hashlib
import os
import shutil
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_KEY, NODES, PING, node_id, unique_name  # noqa: E402

MC = "/api/managedclusters"
REMOTE_ENV = {"OCTOHA_HEARTBEAT_MS": "200", "OCTOHA_OFFLINE_TIMEOUT_MS": "3000",
              "OCTOHA_LEASE_MS": "2000", "OCTOHA_SHUTDOWN_GRACE_MS": "500"}
CP_ENV = {"OCTOHA_OUTBOUND_ALLOW": "127.0.0.0/8", "OCTOHA_HEARTBEAT_MS": "200"}
WRONG_KEY = "API-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def setUpModule():
    if TEST_DB_SET:
        raise unittest.SkipTest("needs two databases of its own; OCTOHA_TEST_DB is set")
    harness.require_postgres()
    if not shutil.which("openssl"):
        raise unittest.SkipTest("the openssl CLI is not installed")


TEST_DB_SET = bool(harness.TEST_DB)


def make_cert(directory):
    cert, key = directory / "cert.pem", directory / "key.pem"
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "2", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"openssl req failed: {r.stderr}")
    return cert, key


def thumbprint(cert_path) -> str:
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha1(der).hexdigest().upper()


class ManagedClusterTests(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        remote_db = harness.fresh_pg_db()
        cp_db = harness.fresh_pg_db()
        names = [unique_name(f"r{i}") for i in (1, 2, 3)]
        cls.remote = [cls.start_class_node(name=names[0], db=remote_db, env=REMOTE_ENV)]
        cls.remote += [cls.start_class_node(name=n, db=remote_db, env=REMOTE_ENV, wait=False)
                       for n in names[1:]]
        for n in cls.remote[1:]:
            n.wait_ready()
        cls.cp = cls.start_class_node(name=unique_name("cp"), db=cp_db, env=CP_ENV)

    # -- helpers
    def cluster_body(self, name=None, key=ADMIN_KEY, lb=None, **extra):
        body = {
            "Name": name or unique_name("mc"),
            "LoadBalancerUrl": lb or self.remote[0].url(),
            "ApiKey": key,
            "Nodes": [{"Name": n.name, "Url": n.url(), "CommunicationsAddress": f"{n.name}.corp"}
                      for n in self.remote],
        }
        if key is None:
            del body["ApiKey"]
        body.update(extra)
        return body

    def create(self, **kw) -> dict:
        r = self.api(self.cp, "POST", MC, body=self.cluster_body(**kw), expect=201)
        return r.json

    def task(self, method, path, body=None, wait=60, expect=202):
        sep = "&" if "?" in path else "?"
        r = self.api(self.cp, method, f"{path}{sep}waitSeconds={wait}", body=body, expect=expect)
        return r.json

    def remote_node(self, n) -> dict:
        return self.api(self.remote[0], "GET", f"{NODES}/{n.id}", expect=200).json

    def raw_log(self, tid) -> str:
        return self.api(self.cp, "GET", f"/api/tasks/{tid}/raw", expect=200).body.decode()

    def remote_diagnostic(self, target, wait_ms=60000):
        t = self.api(self.remote[0], "POST", "/api/tasks", expect=202, body={
            "Name": "Diagnostic", "TargetNodeId": target.id, "Arguments": {"WaitMs": wait_ms}}).json
        self.wait_until(lambda: self.api(self.remote[0], "GET", f"/api/tasks/{t['Id']}").json["State"]
                        == "Executing", 15, msg="the remote task to run")
        return t["Id"]

    def undrain_remote(self, n):
        self.api(self.remote[0], "POST", f"{NODES}/{n.id}/undrain", expect=(200, 202))
        self.wait_until(lambda: n.ping().status == 200, 10, msg=f"{n.name} back to 200")

    # -- configuration
    def test_create_read_rotate_and_refusals(self):
        body = self.cluster_body()
        r = self.api(self.cp, "POST", MC, body=body, expect=201)
        c = r.json
        self.assertEqual(r.header("Location"), f"{MC}/{c['Id']}")
        self.assertEqual(c["ApiKeyPrefix"], ADMIN_KEY[:8])
        self.assertTrue(c["VerifyTls"])
        self.assertEqual([n["Name"] for n in c["Nodes"]], [n.name for n in self.remote])
        self.assertEqual(c["Nodes"][0]["CommunicationsPort"], 10943)
        self.assertNotIn(ADMIN_KEY, r.body.decode(), "the key is never shown")
        got = self.api(self.cp, "GET", f"{MC}/{c['Id']}", expect=200)
        self.assertNotIn(ADMIN_KEY, got.body.decode())
        listed = self.api(self.cp, "GET", MC, expect=200).json
        self.assertIn(c["Id"], [i["Id"] for i in listed["Items"]])
        # Rotation: PUT with a key changes it; without one keeps it.
        body2 = dict(body, ApiKey=WRONG_KEY)
        self.assertEqual(self.api(self.cp, "PUT", f"{MC}/{c['Id']}", body=body2, expect=200).json["ApiKeyPrefix"],
                         WRONG_KEY[:8])
        body3 = dict(body)
        del body3["ApiKey"]
        self.assertEqual(self.api(self.cp, "PUT", f"{MC}/{c['Id']}", body=body3, expect=200).json["ApiKeyPrefix"],
                         WRONG_KEY[:8], "a PUT without ApiKey keeps the sealed one")
        # The key reaches no event and no log.
        ev = self.api(self.cp, "GET", f"/api/events?regarding={c['Id']}", expect=200).body.decode()
        self.assertNotIn(ADMIN_KEY, ev)
        self.assertNotIn(WRONG_KEY, ev)
        self.assertIn("ManagedClusterCreated", ev)
        self.assertNotIn(ADMIN_KEY[4:], self.cp.all_output())
        # One negative per rule; nothing is created.
        before = self.api(self.cp, "GET", MC, expect=200).json["TotalResults"]
        no_key = self.cluster_body(key=None)
        self.assert_error(self.api(self.cp, "POST", MC, body=no_key), 400, "ValidationFailed", "ApiKey")
        pin_http = self.cluster_body(Thumbprint="A" * 40)
        self.assert_error(self.api(self.cp, "POST", MC, body=pin_http), 400, "ValidationFailed", "Thumbprint")
        both = self.cluster_body(Thumbprint="A" * 40, CaFile="/etc/ssl/certs/ca-certificates.crt")
        self.assert_error(self.api(self.cp, "POST", MC, body=both), 400, "ValidationFailed", "CaFile")
        dup = self.cluster_body()
        dup["Nodes"].append(dict(dup["Nodes"][0]))
        self.assert_error(self.api(self.cp, "POST", MC, body=dup), 400, "ValidationFailed", "Nodes")
        bad_url = self.cluster_body(LoadBalancerUrl="ftp://x")
        self.assert_error(self.api(self.cp, "POST", MC, body=bad_url), 400, "ValidationFailed", "LoadBalancerUrl")
        self.assert_error(self.api(self.cp, "POST", MC, body=self.cluster_body(name=c["Name"])), 409,
                          "ManagedClusterNameInUse", "Name")
        self.assertEqual(self.api(self.cp, "GET", MC, expect=200).json["TotalResults"], before)
        # Admin to change, Reader to read.
        reader, _ = harness.create_key_cli("mc-reader", "Reader", env={"OCTOHA_DB": self.cp.db})
        op, _ = harness.create_key_cli("mc-op", "Operator", env={"OCTOHA_DB": self.cp.db})
        self.assertEqual(self.api(self.cp, "GET", f"{MC}/{c['Id']}", key=reader).status, 200)
        self.assert_error(self.api(self.cp, "POST", MC, body=self.cluster_body(), key=op), 403, "RoleNotAllowed")
        self.assert_error(self.api(self.cp, "DELETE", f"{MC}/{c['Id']}", key=op), 403, "RoleNotAllowed")
        self.api(self.cp, "DELETE", f"{MC}/{c['Id']}", expect=204)
        self.assert_error(self.api(self.cp, "GET", f"{MC}/{c['Id']}"), 404, "NotFound", "id")

    def test_discover_and_topology(self):
        c = self.create()
        t = self.task("POST", f"{MC}/{c['Id']}/discover")
        self.assertEqual(t["State"], "Success", t)
        self.assertEqual(sorted(m["OctopusNodeId"] for m in t["Result"]["Matched"]),
                         sorted(n.id for n in self.remote))
        self.assertEqual(t["Result"]["Missing"], [])
        self.assertEqual(t["Result"]["Unknown"], [])
        log = self.raw_log(t["Id"])
        self.assertIn("GET /api/octopusservernodes at http://127.0.0.1:", log)
        self.assertIn("GET /api/octopusservernodes/summary at", log)
        self.assertNotIn(ADMIN_KEY, log)
        self.assertRegex(log, r": 200 in \d+ ms")
        got = self.api(self.cp, "GET", f"{MC}/{c['Id']}", expect=200).json
        self.assertIsNotNone(got["DiscoveredAt"])
        self.assertEqual([n["OctopusNodeId"] for n in got["Nodes"]], [n.id for n in self.remote])
        topo = self.api(self.cp, "GET", f"{MC}/{c['Id']}/topology", expect=200).json
        self.assertTrue(topo["Api"]["Reachable"])
        self.assertEqual([n["State"] for n in topo["Nodes"]], ["Online"] * 3)
        self.assertEqual([n["Ping"] for n in topo["Nodes"]], [200] * 3)
        self.assertEqual(topo["TotalCapacity"], 15)
        self.assertEqual(topo["CapacityLostIfLargestNodeFailsPercent"], 33.3)
        self.assertEqual(topo["Warnings"], [])
        # A configured node the cluster does not have, one it has that is not configured.
        body = self.cluster_body()
        body["Nodes"] = body["Nodes"][:2] + [{"Name": "ghost", "Url": "http://127.0.0.1:1"}]
        c2 = self.api(self.cp, "POST", MC, body=body, expect=201).json
        t = self.task("POST", f"{MC}/{c2['Id']}/discover")
        self.assertEqual([m["Name"] for m in t["Result"]["Missing"]], ["ghost"])
        self.assertEqual([u["OctopusNodeId"] for u in t["Result"]["Unknown"]], [self.remote[2].id])
        topo = self.api(self.cp, "GET", f"{MC}/{c2['Id']}/topology", expect=200).json
        codes = sorted(w["Code"] for w in topo["Warnings"])
        self.assertEqual(codes, ["NodeNotInCluster", "NodeUnreachable", "UnknownNode"], topo["Warnings"])

    def test_drain_undrain_task_cap_and_last_node(self):
        c = self.create()
        n2 = self.remote[1]
        t = self.task("POST", f"{MC}/{c['Id']}/nodes/{n2.name}/drain", body={"Reason": "patch"})
        self.assertEqual(t["State"], "Success", t)
        self.assertTrue(t["Result"]["Drained"])
        self.assertEqual(n2.ping().status, 418)
        self.assertTrue(self.remote_node(n2)["IsInMaintenanceMode"])
        log = self.raw_log(t["Id"])
        self.assertIn(f"PUT /api/octopusservernodes/{n2.id} at", log)
        t = self.task("POST", f"{MC}/{c['Id']}/nodes/{n2.name}/undrain")
        self.assertEqual(t["State"], "Success", t)
        self.assertEqual(n2.ping().status, 200)
        self.assertFalse(self.remote_node(n2)["IsInMaintenanceMode"])
        t = self.task("PUT", f"{MC}/{c['Id']}/nodes/{n2.name}", body={"MaxConcurrentTasks": 7})
        self.assertEqual(t["State"], "Success", t)
        self.assertEqual(self.remote_node(n2)["MaxConcurrentTasks"], 7)
        self.task("PUT", f"{MC}/{c['Id']}/nodes/{n2.name}", body={"MaxConcurrentTasks": 5})
        self.assert_error(self.api(self.cp, "POST", f"{MC}/{c['Id']}/nodes/nope/drain"), 404, "NotFound", "node")
        # The last node taking work is refused unless forced.
        a, b, last = self.remote
        for n in (a, b):
            self.assertEqual(self.task("POST", f"{MC}/{c['Id']}/nodes/{n.name}/drain")["State"], "Success")
        try:
            t = self.task("POST", f"{MC}/{c['Id']}/nodes/{last.name}/drain")
            self.assertEqual(t["State"], "Failed", t)
            self.assertIn("LastNodeTakingWork", t["ErrorMessage"])
            self.assertEqual(last.ping().status, 200, "nothing changed on the last node")
            t = self.task("POST", f"{MC}/{c['Id']}/nodes/{last.name}/drain", body={"Force": True})
            self.assertEqual(t["State"], "Success", t)
        finally:
            for n in self.remote:
                self.undrain_remote(n)

    def test_deadline_cancel_and_leave_running(self):
        c = self.create()
        n3 = self.remote[2]
        try:
            tid = self.remote_diagnostic(n3)
            t = self.task("POST", f"{MC}/{c['Id']}/nodes/{n3.name}/drain",
                          body={"DeadlineSeconds": 1, "DeadlineAction": "Cancel"})
            self.assertEqual(t["State"], "Success", t)
            self.assertTrue(t["Result"]["Drained"])
            self.assertEqual(self.api(self.remote[0], "GET", f"/api/tasks/{tid}").json["State"], "Canceled")
            self.assertIn(f"POST /api/tasks/{tid}/cancel at", self.raw_log(t["Id"]))
            self.undrain_remote(n3)
            tid = self.remote_diagnostic(n3)
            t = self.task("POST", f"{MC}/{c['Id']}/nodes/{n3.name}/drain",
                          body={"DeadlineSeconds": 1, "DeadlineAction": "Requeue"})
            self.assertEqual(t["State"], "Success", t)
            self.assertFalse(t["Result"]["Drained"])
            self.assertEqual(t["Result"]["TasksLeftRunning"], [tid])
            self.assertEqual(self.api(self.remote[0], "GET", f"/api/tasks/{tid}").json["State"], "Executing",
                             "Requeue leaves an Octopus task running")
            self.api(self.remote[0], "POST", f"/api/tasks/{tid}/cancel", expect=202)
        finally:
            self.undrain_remote(n3)

    def test_node_unreachable_mid_drain(self):
        c = self.create()
        n3 = self.remote[2]
        self.remote_diagnostic(n3)
        r = self.api(self.cp, "POST", f"{MC}/{c['Id']}/nodes/{n3.name}/drain",
                     body={"UnreachableSeconds": 2}, expect=202)
        tid = r.json["Id"]
        self.wait_until(lambda: n3.ping().status == 418, 10, msg="the node to be draining")
        n3.kill()
        try:
            t = self.api(self.cp, "GET", f"/api/tasks/{tid}?waitSeconds=30", expect=200).json
            self.assertEqual(t["State"], "Failed", t)
            self.assertIn("stopped answering its ping", t["ErrorMessage"])
            self.assertIn(n3.name, t["ErrorMessage"])
        finally:
            n3.restart()
            self.undrain_remote(n3)

    def test_wrong_api_key_changes_nothing(self):
        c = self.create(key=WRONG_KEY)
        t = self.task("POST", f"{MC}/{c['Id']}/discover")
        self.assertEqual(t["State"], "Failed", t)
        self.assertIn("refused the API key (HTTP 401)", t["ErrorMessage"])
        n2 = self.remote[1]
        t = self.task("POST", f"{MC}/{c['Id']}/nodes/{n2.name}/drain")
        self.assertEqual(t["State"], "Failed", t)
        self.assertIn("401", t["ErrorMessage"])
        self.assertEqual(t["Attempt"], 1, "a refused key is not retried as if the cluster were away")
        self.assertEqual(n2.ping().status, 200)
        self.assertFalse(self.remote_node(n2)["IsInMaintenanceMode"])
        topo = self.api(self.cp, "GET", f"{MC}/{c['Id']}/topology", expect=200).json
        self.assertIn("ApiKeyRefused", [w["Code"] for w in topo["Warnings"]])

    def test_pinned_thumbprint(self):
        d = harness.make_tmp_dir("tls")
        cert, key = make_cert(d)
        tls = self.start_node(name=unique_name("tls"), db=harness.sqlite_db(d), tls=(cert, key))
        good = thumbprint(cert)
        bad = "0" * 40
        body = {"Name": unique_name("pin"), "LoadBalancerUrl": tls.url(), "ApiKey": ADMIN_KEY,
                "Thumbprint": good, "Nodes": [{"Name": tls.name, "Url": tls.url()}]}
        c = self.api(self.cp, "POST", MC, body=body, expect=201).json
        t = self.task("POST", f"{MC}/{c['Id']}/discover")
        self.assertEqual(t["State"], "Success", t)
        def served():
            return [r for r in harness.log_records(tls.log) if r.get("msg") == "request" and r.get("path") != PING]
        before = len(served())
        self.assertGreater(before, 0, "the pinned call reached the node")
        body["Thumbprint"] = bad
        self.api(self.cp, "PUT", f"{MC}/{c['Id']}", body=body, expect=200)
        t = self.task("POST", f"{MC}/{c['Id']}/discover")
        self.assertEqual(t["State"], "Failed", t)
        self.assertIn("refused before any request was sent", t["ErrorMessage"])
        self.assertIn("thumbprint mismatch", self.raw_log(t["Id"]))
        time.sleep(0.5)
        self.assertEqual(len(served()), before, "no request reached the node with the wrong pin")

    def test_tentacles_against_the_cluster(self):
        c = self.create()
        thumb = "AB" * 20
        sub = "poll://abcdefghjk23456789ab/"
        # The cluster has this Tentacle registered (octoha's own /api/tentacles).
        self.api(self.remote[0], "POST", "/api/tentacles", expect=202, body={
            "Name": unique_name("web"), "Thumbprint": thumb, "CommunicationStyle": "TentacleActive",
            "SubscriptionId": sub})
        t = self.task("POST", f"{MC}/{c['Id']}/tentacles", body={"Name": "web01", "Thumbprint": thumb.lower(),
                                                                 "SubscriptionId": sub})
        self.assertEqual(t["State"], "Success", t)
        self.assertTrue(t["Result"]["Tentacles"][0]["Registered"], t["Result"])
        self.assertIn("GET /api/Spaces-1/machines at", self.raw_log(t["Id"]))
        other = self.task("POST", f"{MC}/{c['Id']}/tentacles", body={"Name": "web02", "Thumbprint": "CD" * 20})
        self.assertFalse(other["Result"]["Tentacles"][0]["Registered"])
        self.assert_error(self.api(self.cp, "POST", f"{MC}/{c['Id']}/tentacles",
                                   body={"Name": "web01", "Thumbprint": thumb}), 409, "TentacleNameInUse", "Name")
        items = self.api(self.cp, "GET", f"{MC}/{c['Id']}/tentacles", expect=200).json["Items"]
        web01 = next(i for i in items if i["Name"] == "web01")
        self.assertTrue(web01["Registered"])
        self.assertEqual(web01["HealthStatus"], "Unknown")
        self.assertFalse(web01["NeedsReRegistration"])
        s = self.api(self.cp, "GET", f"{MC}/{c['Id']}/tentacles/{web01['Id']}/servers", expect=200).json
        self.assertEqual(len(s["Servers"]), 3)
        self.assertEqual(len(s["Commands"]), 3)
        for n, cmd in zip(self.remote, s["Commands"]):
            self.assertIn(f"--server-comms-address=https://{n.name}.corp:10943", cmd)
            self.assertIn("--apiKey=API-YOUR-API-KEY", cmd)
        self.assertEqual({e["SubscriptionId"] for e in s["TrustedOctopusServers"]}, {sub})
        # The cluster's nodes change: every Tentacle is marked.
        body = self.cluster_body(name=c["Name"])
        del body["ApiKey"]
        body["Nodes"][2]["CommunicationsPort"] = 10950
        self.api(self.cp, "PUT", f"{MC}/{c['Id']}", body=body, expect=200)
        items = self.api(self.cp, "GET", f"{MC}/{c['Id']}/tentacles", expect=200).json["Items"]
        self.assertTrue(all(i["NeedsReRegistration"] for i in items), items)
        topo = self.api(self.cp, "GET", f"{MC}/{c['Id']}/topology", expect=200).json
        self.assertIn("TentaclesNeedReRegistration", [w["Code"] for w in topo["Warnings"]])
        r = self.api(self.cp, "POST", f"{MC}/{c['Id']}/tentacles/{web01['Id']}/applied", expect=200).json
        self.assertFalse(r["NeedsReRegistration"])


    def walk(self, base) -> list:
        """Pages BASE with take=1 through Links.Page.Next; checks the chain
        against one page of everything (same items, same order, none twice,
        an empty last page without a link) and returns the items."""
        full = self.api(self.cp, "GET", f"{base}?take=1000", expect=200).json
        self.assertEqual(full["TotalResults"], len(full["Items"]))
        self.assertNotIn("Page.Next", full["Links"], "a short page is the last")
        seen, path = [], f"{base}?take=1"
        for _ in range(len(full["Items"]) + 1):
            page = self.api(self.cp, "GET", path, expect=200).json
            self.assertEqual(page["TotalResults"], len(full["Items"]))
            if not page["Items"]:
                self.assertNotIn("Page.Next", page["Links"], "no link past the end")
                break
            self.assertEqual(len(page["Items"]), 1)
            seen.append(page["Items"][0])
            self.assertIn("Page.Next", page["Links"], "a full page links the next")
            path = page["Links"]["Page.Next"]
            self.assertTrue(path.startswith(f"{base}?") and path.endswith(f"after={seen[-1]['Id']}"), path)
        else:
            self.fail(f"the cursor never reached an empty page: {[i['Id'] for i in seen]}")
        self.assertEqual([i["Id"] for i in seen], [i["Id"] for i in full["Items"]])
        self.assertEqual(len(seen), len({i["Id"] for i in seen}), "no item twice")
        self.assert_error(self.api(self.cp, "GET", f"{base}?skip=10001"), 400, "SkipTooDeep", "skip")
        return seen

    def test_lists_page_by_cursor(self):
        tag = unique_name("pg")
        mine = [self.create(name=f"{tag}-{x}")["Id"] for x in ("c", "a", "b")]
        clusters = self.walk(MC)
        # By Name; each with its nodes, as GET of one cluster shows them.
        self.assertEqual([c["Name"] for c in clusters if c["Id"] in mine], [f"{tag}-{x}" for x in "abc"])
        for c in clusters:
            self.assertEqual(c["Nodes"], self.api(self.cp, "GET", f"{MC}/{c['Id']}", expect=200).json["Nodes"])
        self.assertEqual([n["Name"] for n in clusters[[c["Id"] for c in clusters].index(mine[0])]["Nodes"]],
                         [n.name for n in self.remote], "nodes in their order")
        self.assert_error(self.api(self.cp, "GET", f"{MC}?after=ManagedClusters-0"), 400, "ValidationFailed",
                          "after")
        # A cluster's Tentacles by Name.
        base = f"{MC}/{mine[0]}/tentacles"
        for name in ("web-c", "web-a", "web-b"):
            self.api(self.cp, "POST", base, body={"Name": name, "Thumbprint": "EF" * 20}, expect=202)
        self.api(self.cp, "POST", f"{MC}/{mine[1]}/tentacles", body={"Name": "web-a", "Thumbprint": "EF" * 20},
                 expect=202)
        tentacles = self.walk(base)
        self.assertEqual([t["Name"] for t in tentacles], ["web-a", "web-b", "web-c"])
        self.assertEqual({t["ClusterId"] for t in tentacles}, {mine[0]})
        # A Tentacle of another cluster is no cursor in this one.
        other_id = self.api(self.cp, "GET", f"{MC}/{mine[1]}/tentacles", expect=200).json["Items"][0]["Id"]
        self.assert_error(self.api(self.cp, "GET", f"{base}?after={other_id}"), 400, "ValidationFailed", "after")


if __name__ == "__main__":
    harness.main()
