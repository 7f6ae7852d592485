#!/usr/bin/env python3
"""ChatOps: POST /api/chatops/command with an API key or as a signed Slack command.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_chatops.py

SQLite (one node): every command (help, status, nodes, drain, undrain,
taskcap, task, tentacles missing), text/plain answers, unknown and malformed
commands answered with the help text, roles (a Reader key or Reader chat
user is told no and nothing changes; an unmapped Slack user has no role),
Slack v0 signatures (wrong, stale, replayed → 401 SignatureInvalid; no
secret configured → 503 NotConfigured), the outcome posted to response_url.
PostgreSQL (two nodes, skipped without PostgreSQL): a successful chat drain
of one node, by name and by full Id, with its outcome posted.
"""

import hashlib
import hmac
import os
import sys
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_webhooks as wh  # noqa: E402  (the Receiver; its tests are not collected here)
from harness import NODES  # noqa: E402

CHAT = "/api/chatops/command"
TASKS = "/api/tasks"
SIGNING = "slack-signing-secret-0123456789"
USERS = "UOPER=Operator,UREAD=Reader"
COMMANDS = ("status", "nodes", "drain", "undrain", "taskcap", "task", "tentacles missing", "help")


def chat_env(**extra):
    env = dict(wh.FAST, OCTOHA_SLACK_SIGNING_SECRET=SIGNING, OCTOHA_CHATOPS_USERS=USERS,
               OCTOHA_TASK_LOGS_DIR=str(harness.make_tmp_dir("tasklogs")), **wh.LOOPBACK_ALLOWED)
    env.update(extra)
    return {k: v for k, v in env.items()}


def slack_sig(secret, ts, body: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), b"v0:" + str(ts).encode() + b":" + body, hashlib.sha256).hexdigest()


class ChatCase(harness.OctohaTestCase):
    """Helpers (no tests)."""

    def chat(self, node, text, key=harness.DEFAULT_KEY, accept=None):
        """JSON command with an API key; returns the 200 answer's JSON (or the Response for text)."""
        headers = {"Accept": accept} if accept else None
        r = self.api(node, "POST", CHAT, expect=200, body={"Text": text}, headers=headers, key=key)
        if accept == "text/plain":
            return r
        a = r.json
        self.assertIsInstance(a, dict, f"JSON answer to {text!r}: {r.body[:300]!r}")
        self.assertIn(a["response_type"], ("ephemeral", "in_channel"))
        self.assertIsInstance(a["text"], str)
        return a

    def slack(self, node, fields, secret=SIGNING, ts=None, sig=None, expect=200, accept=None):
        """A signed Slack form post; a unique trigger_id (as Slack sends) unless the
        caller gives one, so two equal commands in one second are not replays."""
        fields = dict(fields)
        fields.setdefault("trigger_id", uuid.uuid4().hex)
        body = urllib.parse.urlencode(fields).encode()
        ts = str(int(time.time())) if ts is None else str(ts)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig if sig is not None else slack_sig(secret, ts, body),
        }
        if accept:
            headers["Accept"] = accept
        return self.api(node, "POST", CHAT, expect=expect, body=body, headers=headers, key=None)

    def get_node(self, node, nid=None):
        return self.api(node, "GET", f"{NODES}/{nid or node.id}", expect=200).json

    def get_task(self, node, tid, wait=None):
        q = f"?waitSeconds={wait}" if wait else ""
        return self.api(node, "GET", f"{TASKS}/{tid}{q}", expect=200, timeout=20 + (wait or 0)).json

    def count_tasks(self, node, name):
        return self.api(node, "GET", f"{TASKS}?name={name}", expect=200).json["TotalResults"]

    def create_key(self, node, role):
        # The 201 body's spec conformance is test_auth.py's business.
        r = self.api(node, "POST", "/api/apikeys", expect=201, check_spec=False,
                     body={"Name": harness.unique_name(role.lower()), "Role": role})
        return r.json["ApiKey"]

    def assert_help(self, text, what):
        for c in COMMANDS:
            self.assertIn(c, text, f"{what}: the help text lists {c!r}: {text!r}")

    def receiver(self):
        r = wh.Receiver()
        self.addCleanup(r.stop)
        return r

    def assert_outcome_posted(self, recv, task_id, timeout=10):
        reqs = recv.wait_count(1, timeout)
        body = reqs[0]["json"]
        self.assertIsInstance(body, dict, f"JSON POSTed to response_url: {reqs[0]['body'][:300]!r}")
        self.assertEqual(body.get("response_type"), "in_channel", f"outcome post: {body}")
        self.assertIn(task_id, body.get("text", ""), f"the outcome names the task: {body}")
        self.assertIn("ended: Success", body.get("text", ""), f"the outcome says Success: {body}")
        time.sleep(0.5)
        self.assertEqual(len(recv.snapshot()), 1, "the outcome is posted once")
        return body


class ChatopsSqliteTests(ChatCase):
    """One node (embedded SQLite, cap 5) shared by the class."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(db=None, env=chat_env())

    # -- commands with a key
    def test_help_unknown_and_malformed(self):
        n = self.node
        a = self.chat(n, "help")
        self.assert_help(a["text"], "help")
        self.assertEqual(a["response_type"], "ephemeral")
        self.assertNotIn("TaskId", a)
        for text in ("frobnicate the cluster", "", "drain", "undrain", "taskcap " + n.name,
                     "task", "tentacles", "status now please", "taskcap " + n.name + " lots"):
            got = self.chat(n, text)
            self.assert_help(got["text"], f"answer to {text!r}")
            self.assertNotIn("TaskId", got, f"{text!r} queues nothing")
        self.assertEqual(self.count_tasks(n, "SetTaskCap"), 0, "a malformed taskcap changes nothing")

    def test_status(self):
        a = self.chat(self.node, "status")
        self.assertRegex(a["text"], r"\b1 node", f"status counts one node: {a}")
        self.assertIn("1 online", a["text"], f"status: {a}")
        self.assertNotIn("octoha commands", a["text"], "not the help text")

    def test_nodes_and_text_plain(self):
        n = self.node
        a = self.chat(n, "nodes")
        self.assertIn(n.name, a["text"], f"nodes lists this node: {a}")
        self.assertIn("cap 5", a["text"], f"nodes shows the task cap: {a}")
        r = self.chat(n, "nodes", accept="text/plain")
        self.assertTrue((r.header("Content-Type") or "").startswith("text/plain"),
                        f"Accept: text/plain gets text/plain: {r.header('Content-Type')}")
        self.assertIsNone(r.json, "plain text, not JSON")
        self.assertIn(n.name, r.body.decode(), "the same answer as text")

    def test_task(self):
        n = self.node
        t = self.api(n, "POST", TASKS, expect=202,
                     body={"Name": "Diagnostic", "Description": "chat probe", "Arguments": {"WaitMs": 0}}).json
        self.assertEqual(self.get_task(n, t["Id"], wait=5)["State"], "Success")
        a = self.chat(n, f"task {t['Id']}")
        self.assertIn(t["Id"], a["text"], f"task answer: {a}")
        self.assertIn("Success", a["text"], f"task answer gives the state: {a}")
        a = self.chat(n, "task ServerTasks-00000000000000000000")
        self.assertIn("ServerTasks-00000000000000000000", a["text"])
        self.assertIn("no task", a["text"].lower(), f"an unknown task is said so: {a}")

    def test_tentacles_missing(self):
        n = self.node
        name = harness.unique_name("chat-tentacle")
        r = self.api(n, "POST", "/api/tentacles?waitSeconds=10", expect=202,
                     body={"Name": name, "Thumbprint": "AB" * 20,
                           "CommunicationStyle": "TentacleActive"})
        self.assertEqual(r.json["State"], "Success", f"registration task: {r.json}")
        tid = r.json["Arguments"]["TentacleId"]
        a = self.chat(n, "tentacles missing")
        self.assertNotIn("octoha commands", a["text"], "not the help text")
        self.assertIn(f"{name} ({tid}) has not polled: {n.name}", a["text"],
                      f"the Tentacle that never polled is listed with the node it missed: {a}")
        self.api(n, "POST", f"/api/tentacles/{tid}/polls", expect=200)
        a = self.chat(n, "tentacles missing")
        self.assertNotIn(name, a["text"], f"after its poll the Tentacle is no longer listed: {a}")
        self.assertRegex(a["text"], r"All \d+ polling Tentacle\(s\) polled every online node",
                         f"and the answer says all poll: {a}")
        self.api(n, "DELETE", f"/api/tentacles/{tid}", expect=204)

    def test_taskcap_by_name_and_by_id(self):
        n = self.node
        a = self.chat(n, f"taskcap {n.name} 7")
        self.assertRegex(a.get("TaskId", ""), wh.TASK_ID_RE, f"taskcap answers with its task: {a}")
        self.assertIn(a["TaskId"], a["text"])
        t = self.get_task(n, a["TaskId"], wait=5)
        self.assertEqual(t["State"], "Success", f"the task cap task: {t}")
        self.assertEqual(self.get_node(n)["MaxConcurrentTasks"], 7, "cap changed by chat")
        a = self.chat(n, f"TASKCAP {n.id} 5")
        self.assertRegex(a.get("TaskId", ""), wh.TASK_ID_RE, f"by full Id: {a}")
        self.get_task(n, a["TaskId"], wait=5)
        self.assertEqual(self.get_node(n)["MaxConcurrentTasks"], 5, "cap changed back by full Id")
        a = self.chat(n, "taskcap no-such-node 3")
        self.assertNotIn("TaskId", a)
        self.assertIn("no-such-node", a["text"], f"unknown node said so: {a}")

    def test_drain_of_the_only_node_refused(self):
        n = self.node
        before = self.count_tasks(n, "Drain")
        a = self.chat(n, f"drain {n.name} patching the kernel")
        self.assertNotIn("TaskId", a, f"no drain task: {a}")
        self.assertIn("last node", a["text"].lower(), f"the refusal says why: {a}")
        self.assertEqual(self.count_tasks(n, "Drain"), before, "no Drain task queued")
        self.assertIs(self.get_node(n)["IsInMaintenanceMode"], False, "not draining")
        self.assertEqual(n.ping().status, 200)

    def test_undrain_of_a_node_not_draining(self):
        n = self.node
        a = self.chat(n, f"undrain {n.name}")
        self.assertNotIn("TaskId", a, f"nothing to undrain: {a}")
        self.assertIn(n.name, a["text"])
        self.assertIs(self.get_node(n)["IsInMaintenanceMode"], False)

    def test_reader_key_not_allowed_to_change(self):
        n = self.node
        reader = self.create_key(n, "Reader")
        a = self.chat(n, "status", key=reader)
        self.assertIn("1 online", a["text"], "a Reader may ask for status")
        cap = self.get_node(n)["MaxConcurrentTasks"]
        drains, caps = self.count_tasks(n, "Drain"), self.count_tasks(n, "SetTaskCap")
        for text in (f"drain {n.name} please", f"undrain {n.name}", f"taskcap {n.name} 2"):
            a = self.chat(n, text, key=reader)
            self.assertIn("not allowed", a["text"].lower(), f"Reader {text!r}: {a}")
            self.assertNotIn("TaskId", a)
        self.assertEqual(self.count_tasks(n, "Drain"), drains, "no Drain task")
        self.assertEqual(self.count_tasks(n, "SetTaskCap"), caps, "no SetTaskCap task")
        node = self.get_node(n)
        self.assertEqual(node["MaxConcurrentTasks"], cap, "cap unchanged")
        self.assertIs(node["IsInMaintenanceMode"], False, "not draining")
        evs = self.api(n, "GET", "/api/events?category=AccessDenied&take=100", expect=200).json["Items"]
        self.assertTrue(any(e["Operation"] == "chatopsCommand" for e in evs), "the refusals are audited")

    # -- Slack
    def test_slack_signed_commands_and_roles(self):
        n = self.node
        r = self.slack(n, {"text": "status", "user_id": "UREAD"})
        self.assertIn("1 online", r.json["text"], f"signed status from a Reader: {r.json}")
        r = self.slack(n, {"text": "nodes", "user_id": "UREAD"}, accept="text/plain")
        self.assertTrue((r.header("Content-Type") or "").startswith("text/plain"))
        self.assertIn(n.name, r.body.decode())
        r = self.slack(n, {"text": f"drain {n.name} now", "user_id": "UREAD"})
        self.assertIn("not allowed", r.json["text"].lower(), f"Reader chat user drain: {r.json}")
        self.assertNotIn("TaskId", r.json)
        r = self.slack(n, {"text": "status", "user_id": "UNOBODY"})
        self.assertIn("not allowed", r.json["text"].lower(), f"an unmapped user has no role: {r.json}")
        self.assertNotIn("online", r.json["text"])
        r = self.slack(n, {"text": "bogus", "user_id": "UNOBODY"})
        self.assert_help(r.json["text"], "unknown command over Slack")
        self.assertIs(self.get_node(n)["IsInMaintenanceMode"], False)

    def test_slack_taskcap_outcome_posted_to_response_url(self):
        n = self.node
        recv = self.receiver()
        r = self.slack(n, {"text": f"taskcap {n.name} 6", "user_id": "UOPER", "response_url": recv.url})
        a = r.json
        self.assertRegex(a.get("TaskId", ""), wh.TASK_ID_RE, f"the Operator's taskcap queued a task: {a}")
        self.assertEqual(a["response_type"], "in_channel")
        t = self.get_task(n, a["TaskId"], wait=5)
        self.assertEqual(t["State"], "Success")
        self.assertEqual(self.get_node(n)["MaxConcurrentTasks"], 6)
        self.assert_outcome_posted(recv, a["TaskId"])
        self.slack(n, {"text": f"taskcap {n.id} 5", "user_id": "UOPER"})
        self.wait_until(lambda: self.get_node(n)["MaxConcurrentTasks"] == 5, 5, 0.1, "cap back to 5")

    def test_slack_bad_signatures_401(self):
        n = self.node
        fields = {"text": f"taskcap {n.name} 9", "user_id": "UOPER", "trigger_id": "t1"}
        body = urllib.parse.urlencode(fields).encode()
        caps_before = self.count_tasks(n, "SetTaskCap")
        now = int(time.time())
        cases = {
            "wrong secret": dict(secret=SIGNING + "x"),
            "garbage signature": dict(sig="v0=" + "0" * 64),
            "no v0 prefix": dict(sig=slack_sig(SIGNING, now, body)[3:], ts=now),
            "stale timestamp": dict(ts=now - 301),
            "future timestamp": dict(ts=now + 301),
            "signature of another timestamp": dict(ts=now, sig=slack_sig(SIGNING, now - 1, body)),
        }
        for what, kw in cases.items():
            r = self.slack(n, fields, expect=401, **kw)
            self.assert_error(r, 401, "SignatureInvalid", what=what)
        r = self.api(n, "POST", CHAT, expect=401, body=body, key=None,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assert_error(r, 401, "SignatureInvalid", what="no Slack headers")
        self.assertEqual(self.count_tasks(n, "SetTaskCap"), caps_before, "no task queued by a refused command")
        self.assertNotEqual(self.get_node(n)["MaxConcurrentTasks"], 9, "nothing changed")

    def test_slack_replay_401(self):
        n = self.node
        fields = {"text": "status", "user_id": "UREAD", "trigger_id": uuid.uuid4().hex}
        body = urllib.parse.urlencode(fields).encode()
        ts = str(int(time.time()))
        sig = slack_sig(SIGNING, ts, body)
        r = self.slack(n, fields, ts=ts, sig=sig)
        self.assertIn("online", r.json["text"])
        r = self.slack(n, fields, ts=ts, sig=sig, expect=401)
        self.assert_error(r, 401, "SignatureInvalid", what="the same signed request again")


class ChatopsOwnNodeTests(ChatCase):
    """Tests that need a node of their own."""

    def test_slack_not_configured_503(self):
        n = self.start_node(db=None, env=chat_env(OCTOHA_SLACK_SIGNING_SECRET=None))
        r = self.slack(n, {"text": "status", "user_id": "UOPER"}, expect=503)
        self.assert_error(r, 503, "NotConfigured", what="Slack command without a signing secret")
        a = self.chat(n, "status")  # API keys still work
        self.assertIn("1 online", a["text"])

    def test_undrain_by_chat_with_outcome(self):
        n = self.start_node(db=None, env=chat_env())
        r = self.api(n, "POST", f"{NODES}/{n.id}/drain", expect=202, body={"Force": True, "Reason": "test"})
        self.assertEqual(self.get_task(n, r.json["Id"], wait=5)["State"], "Success")
        self.assertIs(self.get_node(n)["IsInMaintenanceMode"], True)
        recv = self.receiver()
        r = self.slack(n, {"text": f"undrain {n.id}", "user_id": "UOPER", "response_url": recv.url})
        a = r.json
        self.assertRegex(a.get("TaskId", ""), wh.TASK_ID_RE, f"undrain queued a task: {a}")
        t = self.get_task(n, a["TaskId"], wait=5)
        self.assertEqual((t["Name"], t["State"]), ("Undrain", "Success"), f"{t}")
        self.assertIs(self.get_node(n)["IsInMaintenanceMode"], False, "undrained by chat")
        self.assert_outcome_posted(recv, a["TaskId"])


class ChatopsPgTests(ChatCase):
    """Two nodes on one PostgreSQL database: a chat drain that succeeds."""

    def test_drain_and_undrain_by_chat(self):
        if harness.TEST_DB is None and harness.postgres_available():
            self.skipTest(harness.postgres_available())
        db = harness.cluster_db(self)
        n1 = self.start_node(db=db, env=chat_env())
        n2 = self.start_node(db=db, env=chat_env())
        recv = self.receiver()
        r = self.slack(n1, {"text": f"drain {n2.name} kernel patching", "user_id": "UOPER",
                            "response_url": recv.url})
        a = r.json
        self.assertRegex(a.get("TaskId", ""), wh.TASK_ID_RE, f"drain queued a task: {a}")
        self.assertEqual(a["response_type"], "in_channel")
        t = self.get_task(n1, a["TaskId"], wait=10)
        self.assertEqual((t["Name"], t["State"]), ("Drain", "Success"), f"{t}")
        node = self.get_node(n1, n2.id)
        self.assertIs(node["IsInMaintenanceMode"], True, "drained by chat")
        self.assertEqual(node["DrainReason"], "kernel patching", "the rest of the line is the reason")
        self.wait_until(lambda: n2.ping().status == 418, 5, 0.1, "ping 418 on the drained node")
        self.assert_outcome_posted(recv, a["TaskId"])
        # Draining n1 now would leave no node taking work.
        a = self.chat(n1, f"drain {n1.name}")
        self.assertNotIn("TaskId", a)
        self.assertIn("last node", a["text"].lower())
        a = self.chat(n1, f"undrain {n2.id}")
        self.assertRegex(a.get("TaskId", ""), wh.TASK_ID_RE, f"undrain by full Id: {a}")
        self.assertEqual(self.get_task(n1, a["TaskId"], wait=10)["State"], "Success")
        self.assertIs(self.get_node(n1, n2.id)["IsInMaintenanceMode"], False)


if __name__ == "__main__":
    harness.main()
