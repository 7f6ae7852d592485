#!/usr/bin/env python3
"""What the node sends out and what Readers see of it (one SQLite node each).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_outbound.py

* The outbound policy: webhooks (and chat replies, Tentacle health checks)
  may not reach loopback, link-local or private addresses unless
  `outbound-allow` allows them; the address is judged where the connection
  is made, so a name that resolves to loopback is refused as well.  A
  refused delivery says "refused by policy", and the receiver never sees a
  connection.
* Readers see no webhook URL beyond its origin: not in the audit log, task
  Arguments, task logs or any other resource a Reader key may read.
* Refusals do not amplify: 200 requests without a key make at most a couple
  of AccessDenied events, and none of them is delivered to webhooks.
"""

import json
import os
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_webhooks as wh  # noqa: E402

SUBS = "/api/subscriptions"


class OutboundCase(wh.WebhookCase):
    def start(self, allow=None):
        env = dict(wh.FAST, OCTOHA_WEBHOOK_TIMEOUT_MS="1000",
                   OCTOHA_TASK_LOGS_DIR=str(harness.make_tmp_dir("tasklogs")))
        if allow is not None:
            env["OCTOHA_OUTBOUND_ALLOW"] = allow
        self.node = self.start_node(db=None, env=env)
        return self.node

    def first_delivery(self, sid, timeout=15):
        return self.wait_deliveries(sid, lambda d: len(d) >= 1, timeout, "a delivery attempt")[0]


class PolicyTests(OutboundCase):
    def test_loopback_is_refused_unless_allowed(self):
        self.start()
        recv = self.receiver()
        for url in (recv.url, f"http://localhost:{recv.port}/hook", f"http://[::1]:{recv.port}/hook",
                    f"http://127.1:{recv.port}/hook", f"http://169.254.169.254:{recv.port}/latest"):
            sub, _ = self.subscribe(url, ["TaskQueued"])
            self.create_task({"WaitMs": 0})
            d = self.first_delivery(sub["Id"])
            self.assertIs(d["Succeeded"], False, f"{url}: not delivered: {d}")
            self.assertIsNone(d["StatusCode"], f"{url}: no HTTP answer: {d}")
            self.assertEqual(d["Error"], "refused by policy", f"{url}: {d}")
            self.api(self.node, "DELETE", f"{SUBS}/{sub['Id']}", expect=204)
        time.sleep(0.5)
        self.assertEqual(recv.snapshot(), [], "the receiver never saw a request")
        log = self.node.all_output()
        self.assertIn("refused by policy", log, "the node's log says why")

    def test_allowed_range_is_delivered(self):
        self.start(allow="127.0.0.0/8")
        recv = self.receiver()
        sub, _ = self.subscribe(recv.url, ["TaskQueued"])
        self.create_task({"WaitMs": 0})
        recv.wait_count(1, 10)
        d = self.first_delivery(sub["Id"])
        self.assertIs(d["Succeeded"], True, f"delivered inside the allowed range: {d}")

    def test_allowed_host_name_is_delivered(self):
        self.start(allow="localhost")
        recv = self.receiver()
        sub, _ = self.subscribe(f"http://localhost:{recv.port}/hook", ["TaskQueued"])
        self.create_task({"WaitMs": 0})
        recv.wait_count(1, 10)
        self.assertIs(self.first_delivery(sub["Id"])["Succeeded"], True, "an allowed name")

    def test_bad_allow_list_is_refused_at_start(self):
        n = harness.Node(db=None, env=dict(wh.FAST, OCTOHA_OUTBOUND_ALLOW="10.0.0.0/33"))
        n.start(wait=False)
        rc = n.wait_exit(15)
        self.assertNotEqual(rc, 0, "a node with a bad outbound-allow does not start")
        self.assertIn("outbound-allow", n.all_output())


class ReaderSeesNoSecretsTests(OutboundCase):
    def test_no_part_of_a_webhook_path_reaches_a_reader(self):
        """Issue 15.7: the URL of a Slack or Teams webhook is its credential."""
        self.start(allow="127.0.0.0/8")
        recv = self.receiver()
        secret_path = "T0SECRET/B0SECRET/" + uuid.uuid4().hex
        token = "tok" + uuid.uuid4().hex[:12]
        url = f"http://127.0.0.1:{recv.port}/services/{secret_path}?token={token}"
        self.subscribe(url, ["*"])
        task = self.create_task({"WaitMs": 0})
        recv.wait_count(1, 10)
        reader = self.api(self.node, "POST", "/api/apikeys", expect=201,
                          body={"Name": harness.unique_name("reader"), "Role": "Reader"}).json["ApiKey"]
        # Every GET a Reader may make, with the ids this test made.
        tasks = self.api(self.node, "GET", "/api/tasks?take=100", key=reader, expect=200).json["Items"]
        seen = [json.dumps(tasks)]
        for t in tasks:
            seen.append(self.api(self.node, "GET", f"/api/tasks/{t['Id']}", key=reader, expect=200).body.decode())
            r = self.node.request("GET", f"/api/tasks/{t['Id']}/raw", key=reader)
            seen.append(r.body.decode("utf-8", "replace"))
        self.assertTrue(any(t["Name"] == "WebhookDelivery" for t in tasks), "a delivery task was read")
        readable = [p for p in spec_reader_gets() if "{" not in p]
        for path in readable:
            if path == "/api/events/stream":
                seen.append(self.read_stream(path, reader))
                continue
            r = self.node.request("GET", path, key=reader)
            self.assertLess(r.status, 500, f"GET {path}")
            seen.append(r.body.decode("utf-8", "replace"))
        everything = "\n".join(seen)
        for part in (secret_path, "T0SECRET", "B0SECRET", token):
            at = everything.find(part)
            self.assertEqual(at, -1, f"a Reader can read {part!r} of the webhook URL: "
                                     f"...{everything[max(0, at - 300):at + 100]}...")
        self.assertIn(f"127.0.0.1:{recv.port}", everything, "the origin is still shown")
        self.assertEqual(self.get_task(task["Id"], wait=5)["State"], "Success")


    def read_stream(self, path, key, seconds=2.0):
        """What the event stream sends a Reader in SECONDS, from a minute
        back (Last-Event-ID): it never ends by itself."""
        since = int(time.time() * 1000) - 60000
        sock = socket.create_connection(("127.0.0.1", self.node.port), timeout=seconds)
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Octopus-ApiKey: {key}\r\n"
                      f"Last-Event-ID: {since}\r\n\r\n").encode())
        data, end = b"", time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        finally:
            sock.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), f"the stream opened: {data[:200]!r}")
        self.assertIn(b"event: audit", data, "the stream sent the events of the last minute")
        return data.decode("utf-8", "replace")


def spec_reader_gets():
    spec = harness.spec_checker().spec
    return [p for p, item in spec["paths"].items()
            if (item.get("get") or {}).get("x-octoha-role") == "Reader"]


class RefusalTests(OutboundCase):
    def test_refusals_do_not_fan_out(self):
        """Issue 15.9: 200 requests without a key once made 200 AccessDenied
        events and 200 webhook deliveries."""
        self.start(allow="127.0.0.0/8")
        recv = self.receiver()
        self.subscribe(recv.url, ["*"])
        for _ in range(200):
            r = self.node.request("GET", "/api/tasks", key=None)
            self.assertEqual(r.status, 401)
        time.sleep(3)
        events = self.api(self.node, "GET", "/api/events?category=AccessDenied&take=1000",
                          expect=200).json["Items"]
        self.assertGreaterEqual(len(events), 10, "a burst of 10 refusals is recorded")
        # A bucket of 10 per source that refills by one every 6 s, and at
        # most one summary: far from one event per refusal.
        self.assertLessEqual(len(events), 12, f"a bounded number of events, not one each: {len(events)}")
        delivered = [q for q in recv.snapshot()
                     if (q["json"] or {}).get("Event", {}).get("Category") == "AccessDenied"]
        self.assertEqual(delivered, [], "individual refusals are not sent to webhooks")
        tasks = self.api(self.node, "GET", "/api/tasks?name=WebhookDelivery&take=1000", expect=200).json
        self.assertLessEqual(tasks["TotalResults"], 3, f"no delivery per refusal: {tasks['TotalResults']}")


if __name__ == "__main__":
    harness.main()
