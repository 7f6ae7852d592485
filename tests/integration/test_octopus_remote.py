#!/usr/bin/env python3
"""The remote Octopus client against a scripted Octopus: retries, backoff,
the answers' shapes, the key.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_octopus_remote.py -v

test_managed_clusters.py runs the client against real octoha nodes, which
always answer well.  Here a small HTTP server in the test answers the
documented calls as the test scripts them: 503 twice before a 200 (the
client retries with a doubling backoff and logs each attempt), node
resources with fields the contract does not have and without optional
ones, a refused key (401, not retried), and an address nobody listens on
(retried, then "unreachable").  The control plane is a real octoha node
on SQLite with OCTOHA_OUTBOUND_ALLOW=127.0.0.0/8.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_KEY, unique_name  # noqa: E402

MC = "/api/managedclusters"
GOOD_KEY = "API-GOODGOODGOODGOODGOODGOODGOOD12"


class FakeOctopus:
    """Answers Octopus's documented node calls; FAIL_FIRST answers of the
    node list are 503.  Records (time, method, path, key) per request."""

    def __init__(self, fail_first=0):
        self.fail_first = fail_first
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def send_json(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                key = self.headers.get("X-Octopus-ApiKey")
                path = self.path.split("?", 1)[0]
                outer.requests.append((time.monotonic(), "GET", self.path, key))
                if path == "/api/octopusservernodes/ping":
                    return self.send_json(200, {"IsInMaintenanceMode": False})
                if key != GOOD_KEY:
                    return self.send_json(401, {"ErrorMessage": "You must be logged in."})
                if path == "/api/octopusservernodes":
                    lists = [r for r in outer.requests if r[2].split("?")[0] == path]
                    if len(lists) <= outer.fail_first:
                        return self.send_json(503, {"ErrorMessage": "busy"})
                    return self.send_json(200, {
                        "ItemType": "OctopusServerNode", "TotalResults": 2, "ItemsPerPage": 30,
                        "SomethingNew": {"Deep": [1, 2, 3]},
                        "Items": [
                            {"Id": "OctopusServerNodes-OCTO1", "Name": "OCTO1", "MaxConcurrentTasks": 5,
                             "IsInMaintenanceMode": False, "Rank": "Leader", "Future": {"x": None},
                             "Links": {"Self": "/api/octopusservernodes/OctopusServerNodes-OCTO1"}},
                            # Optional fields left out.
                            {"Id": "OctopusServerNodes-OCTO2", "Name": "OCTO2"},
                        ],
                        "Links": {}})
                if path == "/api/octopusservernodes/summary":
                    return self.send_json(200, {"Nodes": [
                        {"Id": "OctopusServerNodes-OCTO1", "Name": "OCTO1", "RunningTaskCount": 0,
                         "IsOffline": False, "Extra": True}], "Unknown": 1})
                return self.send_json(404, {"ErrorMessage": "not here"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class RemoteClientTests(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cp = cls.start_class_node(name=unique_name("cp"), db=harness.default_db(harness.make_tmp_dir("cp-db")),
                                      env={"OCTOHA_OUTBOUND_ALLOW": "127.0.0.0/8"})

    def cluster(self, url, key=GOOD_KEY) -> dict:
        return self.api(self.cp, "POST", MC, expect=201, body={
            "Name": unique_name("fake"), "LoadBalancerUrl": url, "ApiKey": key,
            "Nodes": [{"Name": "OCTO1", "Url": url}, {"Name": "OCTO2", "Url": url}]}).json

    def discover(self, c) -> dict:
        return self.api(self.cp, "POST", f"{MC}/{c['Id']}/discover?waitSeconds=60", expect=202).json

    def raw_log(self, tid) -> str:
        return self.api(self.cp, "GET", f"/api/tasks/{tid}/raw", expect=200).body.decode()

    def test_retries_with_backoff_and_tolerant_reading(self):
        fake = FakeOctopus(fail_first=2)
        self.addCleanup(fake.stop)
        t = self.discover(self.cluster(fake.url))
        self.assertEqual(t["State"], "Success", t)
        self.assertEqual(sorted(m["OctopusNodeId"] for m in t["Result"]["Matched"]),
                         ["OctopusServerNodes-OCTO1", "OctopusServerNodes-OCTO2"])
        self.assertEqual((t["Result"]["Missing"], t["Result"]["Unknown"]), ([], []))
        lists = [r for r in fake.requests if r[2].split("?")[0] == "/api/octopusservernodes"]
        self.assertEqual(len(lists), 3, "two 503s, then the 200")
        gaps = [b[0] - a[0] for a, b in zip(lists, lists[1:])]
        self.assertGreaterEqual(gaps[0], 0.25, f"a backoff before the second try: {gaps}")
        self.assertGreaterEqual(gaps[1], 1.8 * gaps[0] - 0.1, f"the backoff doubles: {gaps}")
        self.assertTrue(all(r[3] == GOOD_KEY for r in fake.requests if "ping" not in r[2]),
                        "X-Octopus-ApiKey on every API call")
        self.assertTrue(all(r[3] is None for r in fake.requests if "ping" in r[2]),
                        "the ping is asked without a key, as a balancer asks")
        log = self.raw_log(t["Id"])
        origin = f"at http://127.0.0.1:{fake.port}"
        self.assertIn(f"GET /api/octopusservernodes {origin}: 503 in", log)
        self.assertIn("(attempt 1 of 3)", log)
        self.assertIn("(attempt 3 of 3)", log)
        self.assertRegex(log, r"GET /api/octopusservernodes at [^ ]+: 200 in \d+ ms \(attempt 3 of 3\)")
        self.assertNotIn(GOOD_KEY, log)
        self.assertNotIn("skip=", log, "no query string in the log")

    def test_refused_key_is_not_retried(self):
        fake = FakeOctopus()
        self.addCleanup(fake.stop)
        t = self.discover(self.cluster(fake.url, key=ADMIN_KEY))
        self.assertEqual(t["State"], "Failed", t)
        self.assertIn("refused the API key (HTTP 401)", t["ErrorMessage"])
        api_calls = [r for r in fake.requests if "ping" not in r[2]]
        self.assertEqual(len(api_calls), 1, f"a 401 is not retried: {api_calls}")

    def test_nobody_listening_is_retried_then_unreachable(self):
        port = harness.free_port()
        c = self.cluster(f"http://127.0.0.1:{port}")
        tid = self.api(self.cp, "POST", f"{MC}/{c['Id']}/discover", expect=202).json["Id"]
        line = f"GET /api/octopusservernodes at http://127.0.0.1:{port}: no answer"
        def tries_logged():
            r = self.api(self.cp, "GET", f"/api/tasks/{tid}/raw", expect=(200, 404))
            return r.status == 200 and r.body.decode().count(line) >= 3  # 404: not started yet
        self.wait_until(tries_logged, 20, msg="three tries of the call")
        tries = [ln for ln in self.raw_log(tid).splitlines() if line in ln][:3]
        for i, ln in enumerate(tries, 1):
            self.assertIn(f"(attempt {i} of 3)", ln)
        # An absent cluster is retried by the queue too (a refused key is not),
        # then the task fails saying so.
        deadline = time.monotonic() + 90
        t = None
        while time.monotonic() < deadline:
            t = self.api(self.cp, "GET", f"/api/tasks/{tid}?waitSeconds=10", expect=200, timeout=20).json
            if t["IsCompleted"]:
                break
        self.assertEqual(t["State"], "Failed", t)
        self.assertGreater(t["Attempt"], 1, "retried by the queue")
        self.assertIn("unreachable", t["ErrorMessage"].lower())

if __name__ == "__main__":
    harness.main()
