#!/usr/bin/env python3
"""Octopus's official TypeScript client (@octopusdeploy/api-client 3.11.0,
pinned in tests/client) against real octoha nodes (issue 11): one node on
SQLite, and two nodes on one PostgreSQL database with calls alternating
between them.  tests/client/drive.js makes the calls; nothing is stubbed.

Calls: Client.create (GET /api), space resolution by name (GET
/api/spaces?partialName=Default&skip=0&take=2147483647),
SpaceServerTaskRepository getById / getDetails / getRaw / getByIds (list),
ServerTaskRepository cancel, ServerTaskWaiter waitForServerTaskToComplete,
PackageRepository push (FailIfExists twice, IgnoreIfExists), list and get.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_tasks_sqlite import FAST, TaskTestCase  # noqa: E402

CLIENT_DIR = harness.REPO_ROOT / "tests" / "client"
CLIENT_READY = (CLIENT_DIR / "node_modules" / "@octopusdeploy" / "api-client" / "package.json").exists()
NOT_READY = ("Octopus's client is not installed: scripts/setup.sh test installs it "
             "(npm ci in tests/client)")


@unittest.skipUnless(CLIENT_READY and shutil.which("node"), NOT_READY)
class ClientCase(TaskTestCase):
    def drive(self, nodes) -> dict:
        done = self.create_task(nodes[0], {"WaitMs": 10, "LogLines": 2, "FailAttempts": 1})
        done = self.api(nodes[-1], "GET", f"/api/tasks/{done['Id']}?waitSeconds=30", expect=200).json
        self.assertEqual(done["State"], "Success", done)
        long = self.create_task(nodes[-1], {"WaitMs": 600000})
        self.wait_until(lambda: self.api(nodes[0], "GET", f"/api/tasks/{long['Id']}", expect=200)
                        .json["State"] == "Executing", 20, msg="the long task runs", nodes=nodes)
        pkg_dir = harness.make_tmp_dir("client-pkg")
        data = os.urandom(200_000)
        path = pkg_dir / "Client.Pushed.1.4.2-rc.1.zip"
        path.write_bytes(data)
        plan = {"urls": [n.url() for n in nodes], "apiKey": harness.ADMIN_KEY, "space": "Default",
                "doneTaskId": done["Id"], "longTaskId": long["Id"], "packagePath": str(path),
                "packageFilter": "client.pushed", "packageRecordId": "packages-Client.Pushed.1.4.2-rc.1"}
        p = subprocess.run(["node", str(CLIENT_DIR / "drive.js"), json.dumps(plan)], cwd=str(CLIENT_DIR),
                           capture_output=True, text=True, timeout=180)
        lines = p.stdout.strip().splitlines()
        self.assertTrue(lines, f"drive.js printed nothing; stderr: {p.stderr[-2000:]}")
        res = json.loads(lines[-1])
        self.assertNotIn("fatal", res, res)
        for name, r in res.items():
            self.assertTrue(r["ok"], f"client call {name} failed: {r}\nstderr: {p.stderr[-1500:]}")
        self.assertEqual(p.returncode, 0, p.stderr[-1500:])
        self.check(res, nodes, done, long, data)
        return res

    def check(self, res, nodes, done, long, data):
        install = self.api(nodes[0], "GET", "/api", expect=200).json["InstallationId"]
        for i in range(len(nodes)):
            self.assertEqual(res[f"create:{i}"]["value"]["installationId"], install,
                             "Client.create read the InstallationId of the cluster")
        self.assertEqual(res["getById"]["value"],
                         {"Id": done["Id"], "State": "Success", "IsCompleted": True, "SpaceId": "Spaces-1"})
        d = res["getDetails"]["value"]
        self.assertEqual(d["TaskId"], done["Id"])
        self.assertEqual([a["Status"] for a in d["Activities"]], ["Failed", "Success"],
                         "one activity per attempt: the first failed, the retry succeeded")
        self.assertGreater(d["PhysicalLogSize"], 0)
        self.assertEqual(d["Progress"], 100)
        raw = self.node_raw(nodes[-1], done["Id"])
        self.assertEqual(res["getRaw"]["value"]["length"], len(raw))
        self.assertTrue(res["getRaw"]["value"]["firstLine"].endswith(raw.split("\n")[0].split(" ", 1)[1]))
        self.assertEqual(res["list"]["value"], sorted([done["Id"], long["Id"]]))
        w = res["waiter"]["value"]
        self.assertEqual((w["Id"], w["State"], w["IsCompleted"]), (long["Id"], "Canceled", True),
                         "the waiter saw the cancelled task end")
        self.assertGreaterEqual(w["polled"], 1)
        self.assertIn("already exists", res["pushAgainFails"]["value"]["message"])
        listed = res["listPackages"]["value"]
        self.assertEqual(listed["TotalResults"], 1)
        self.assertEqual(listed["Items"][0], {"Id": "packages-Client.Pushed.1.4.2-rc.1",
                                              "PackageId": "Client.Pushed", "Version": "1.4.2-rc.1",
                                              "Hash": hashlib.sha1(data).hexdigest()})
        self.assertEqual(res["getPackage"]["value"]["PackageSizeBytes"], len(data))
        # What the client pushed through one node downloads from the other.
        r = nodes[-1].request("GET", "/api/Spaces-1/packages/packages-Client.Pushed.1.4.2-rc.1/raw")
        self.assertEqual((r.status, hashlib.sha1(r.body).hexdigest()), (200, hashlib.sha1(data).hexdigest()))

    def node_raw(self, node, task_id) -> str:
        r = node.request("GET", f"/api/tasks/{task_id}/raw")
        self.assertEqual(r.status, 200)
        return r.body.decode()


class SqliteClientTests(ClientCase):
    def test_client_calls_against_one_node(self):
        node = self.start_node(env=dict(FAST))
        self.drive([node])


class PgClientTests(ClientCase):
    def setUp(self):
        harness.require_postgres()
        self.db = harness.cluster_db(self, need_empty=True)

    def test_client_calls_alternate_between_two_nodes(self):
        shared = harness.make_tmp_dir("shared-packages")
        a = self.start_node(db=self.db, env=dict(FAST, OCTOHA_STORAGE_CHECK_MS="200"))
        b = self.start_node(db=self.db, env=dict(FAST, OCTOHA_STORAGE_CHECK_MS="200"))
        share_folders(self, a, [a, b], shared)
        self.drive([a, b])


def share_folders(case, via, nodes, shared: Path):
    """Makes SHARED/Packages and SHARED/TaskLogs the cluster's folders and
    waits until NODES use them."""
    want = {"Packages": str(shared / "Packages"), "TaskLogs": str(shared / "TaskLogs")}
    r = case.api(via, "PUT", "/api/configuration/storage?waitSeconds=30", body=want, expect=202, timeout=45)
    case.assertEqual(r.json["State"], "Success", r.json)
    for n in nodes:
        def used(n=n):
            j = case.api(n, "GET", "/api/configuration/server-folders/values", expect=200).json
            return j["PackagesDirectory"] == want["Packages"] and j["TaskLogsDirectory"] == want["TaskLogs"]
        case.wait_until(used, 10, msg=f"{n.name} uses the shared folders", nodes=nodes)


if __name__ == "__main__":
    harness.main()
