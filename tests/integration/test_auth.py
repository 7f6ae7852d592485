#!/usr/bin/env python3
"""API keys, roles and the audit log (black-box, over HTTP).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_auth.py
  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_auth.py AuthPgTests

Every node the harness starts seeds harness.ADMIN_KEY as its cluster's
"bootstrap" Admin key (OCTOHA_BOOTSTRAP_ADMIN_KEY), and the request helpers
send it unless given key=None (no key) or key="API-..." (another key).

SQLite (one node, embedded database): the role matrix read from
openapi.yaml's x-octoha-role, header and Bearer keys, keys refused in the
query string, malformed/unknown/revoked keys, creation shows the key once,
LastUsedAt, the admin CLI, the bootstrap key seeded once per database, keys
never in the node's output nor in /api/events, audit events for changes,
refusals and failed requests, X-Forwarded-For only from a trusted proxy, and
the event filters.  PostgreSQL (two nodes on one database): revocation seen
by the other node within 2 s, bootstrap once per database across nodes, the
admin CLI with --db, NodeDeleted in the audit log.
"""

import datetime
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_KEY, NODES, PING, unique_name  # noqa: E402

APIKEYS = "/api/apikeys"
EVENTS = "/api/events"
TASKS = "/api/tasks"
ROLES = ("Reader", "Operator", "Admin")
RANK = {r: i for i, r in enumerate(ROLES)}
# Well formed (API- and 32 of A-Z0-9) but never created anywhere.
UNKNOWN_KEY = "API-ZZZZ0000UNKNOWN0KEY000000000000Q"
OTHER_BOOTSTRAP_KEY = "API-OTHERB00TSTRAPKEY000000000000009"
assert harness.API_KEY_RE.match(UNKNOWN_KEY) and harness.API_KEY_RE.match(OTHER_BOOTSTRAP_KEY)


def parse_ts(s: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def q(**params) -> str:
    """A query string (with '?'), values URL-encoded ('+' of +00:00 included)."""
    return "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


class AuthHelpers(harness.OctohaTestCase):
    """Key and event helpers shared by the SQLite and PostgreSQL tests."""

    def create_key(self, node, role, name=None, key=harness.DEFAULT_KEY, check_spec=False):
        """POST /api/apikeys; returns the 201 body (with ApiKey).

        check_spec is off here on purpose: whether the 201 body matches the
        spec is test_create_answer_matches_spec's business, so that a
        mismatch there does not hide every other result.
        """
        name = name or unique_name(f"key-{role.lower()}")
        r = self.api(node, "POST", APIKEYS, body={"Name": name, "Role": role}, expect=201, key=key,
                     check_spec=check_spec)
        j = r.json
        self.assertIsInstance(j, dict, f"201 body is an object: {r.body[:300]!r}")
        self.assertEqual((j.get("Name"), j.get("Role")), (name, role), f"created key echoes Name and Role: {j}")
        self.assertRegex(j.get("ApiKey") or "", harness.API_KEY_RE, f"ApiKey is API- and 32 of A-Z0-9: {j}")
        return j

    def list_keys(self, node, key=harness.DEFAULT_KEY):
        return self.api(node, "GET", APIKEYS, expect=200, key=key).json["Items"]

    def key_by_name(self, node, name):
        found = [k for k in self.list_keys(node) if k["Name"] == name]
        self.assertEqual(len(found), 1, f"exactly one key named {name!r}: {found}")
        return found[0]

    def events(self, node, key=harness.DEFAULT_KEY, **filters):
        """GET /api/events with filters (take 1000 unless given); the whole body."""
        filters.setdefault("take", 1000)
        return self.api(node, "GET", EVENTS + q(**filters), expect=200, key=key).json

    def find_events(self, node, **match):
        """Events (newest first) whose fields equal `match`, from the last 1000."""
        items = self.events(node)["Items"]
        return [e for e in items if all(e.get(k) == v for k, v in match.items())]

    def one_event(self, node, what, **match):
        found = self.find_events(node, **match)
        self.assertEqual(len(found), 1, f"{what}: exactly one event with {match}; got {found}")
        return found[0]

    def assert_refused(self, r, status, code, sent_key=None, what=""):
        self.assert_error(r, status, code, what=what)
        if status == 401:
            self.assertTrue(r.header("WWW-Authenticate"), f"{what}: 401 carries WWW-Authenticate")
        if sent_key:
            self.assertNotIn(sent_key.encode(), r.body, f"{what}: the refusal does not echo the key")

    def assert_actor(self, ev, key_id, key_name, what):
        self.assertEqual(ev["UserId"], key_id, f"{what}: UserId is the key's Id: {ev}")
        self.assertEqual(ev["Username"], key_name, f"{what}: Username is the key's name: {ev}")
        self.assertEqual(ev["RemoteAddress"], "127.0.0.1", f"{what}: RemoteAddress is the peer: {ev}")
        self.assert_timestamp(ev["Occurred"], f"{what}: Occurred")


def representative_requests(node_id: str, missing_node_id: str):
    """One harmless request per operation (operationId -> method, path, body,
    status when allowed).  Their roles come from openapi.yaml."""
    return {
        "listNodes": ("GET", NODES, None, 200),
        "getNodesSummary": ("GET", NODES + "/summary", None, 200),
        "listTasks": ("GET", TASKS, None, 200),
        "listEvents": ("GET", EVENTS, None, 200),
        "createTask": ("POST", TASKS, {"Name": "Diagnostic", "Description": "role matrix"}, 202),
        "updateNode": ("PUT", f"{NODES}/{node_id}", {"MaxConcurrentTasks": 5}, (200, 202)),
        "undrainNode": ("POST", f"{NODES}/{node_id}/undrain", None, (200, 202)),
        "listApiKeys": ("GET", APIKEYS, None, 200),
        "listSubscriptions": ("GET", "/api/subscriptions", None, 200),
        "deleteNode": ("DELETE", f"{NODES}/{missing_node_id}", None, 404),  # allowed, but no such node
    }


class AuthSqliteTests(AuthHelpers):
    """One node on the embedded SQLite database, shared by the class."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(name=unique_name("auth"), db=harness.default_db(harness.make_tmp_dir("auth-db")))
        cls.keys = {}
        for role in ROLES:
            r = cls.node.request("POST", APIKEYS, body={"Name": unique_name(f"cls-{role.lower()}"), "Role": role})
            if r.status != 201:
                raise AssertionError(f"setUpClass: POST {APIKEYS} {role}: {r.describe()}\n{cls.node.log_tail()}")
            cls.keys[role] = r.json

    # -- what needs no key

    def test_ping_and_spec_need_no_key(self):
        r = self.api(self.node, "GET", PING, expect=200, key=None)
        self.assertEqual(r.json["Name"], self.node.name, "ping answers without a key")
        r = self.api(self.node, "GET", "/api/openapi.yaml", expect=200, key=None)
        self.assertIn(b"openapi:", r.body, "the spec is served without a key")

    def test_spec_marks_only_root_ping_and_spec_public(self):
        checker = harness.spec_checker()
        public = []
        for path, item in checker.paths.items():
            for method, op in item.items():
                if method not in ("get", "put", "post", "delete", "patch"):
                    continue
                if op.get("security") == []:
                    public.append((method.upper(), path))
                else:
                    self.assertIn(op.get("x-octoha-role"), ROLES, f"{method.upper()} {path} declares its role")
        # The root document is public as in Octopus (its clients read it before anything else).
        self.assertEqual(sorted(public), [("GET", "/api"), ("GET", "/api/authentication/oidc"),
                                          ("GET", "/api/octopusservernodes/ping"),
                                          ("GET", "/api/openapi.yaml"), ("GET", "/app"), ("GET", "/app/"),
                                          ("GET", "/app/{asset}")],
                         "only the root document, ping, the spec, the sign-in settings and the status "
                         "page's files are public")

    # -- refusals

    def test_missing_key_401(self):
        for method, path in (("GET", NODES), ("GET", EVENTS), ("POST", TASKS), ("GET", APIKEYS)):
            with self.subTest(method=method, path=path):
                body = {"Name": "Diagnostic"} if method == "POST" else None
                r = self.api(self.node, method, path, body=body, key=None)
                self.assert_refused(r, 401, "ApiKeyMissing", what=f"{method} {path} without a key")

    def test_empty_headers_are_missing_key(self):
        for headers in ({"X-Octopus-ApiKey": ""}, {"Authorization": "Bearer "}):
            with self.subTest(headers=headers):
                r = self.api(self.node, "GET", NODES, headers=headers, key=None)
                self.assertEqual(r.status, 401, f"{headers}: {r.describe()}")
                self.assertIn(r.json.get("Code"), ("ApiKeyMissing", "ApiKeyInvalid"), f"{headers}: {r.json}")

    def test_malformed_keys_401_invalid(self):
        good = self.keys["Admin"]["ApiKey"]
        malformed = [
            "API-short",
            good.lower(),  # lowercase
            "XYZ-" + good[4:],  # wrong prefix
            good[4:],  # no prefix
            good[:-1] + "-",  # a character outside A-Z0-9
            "API-" + "A" * 200,  # too long
            "API-ÄÖÜ" + good[7:],  # not ASCII
        ]
        for bad in malformed:
            with self.subTest(key=bad[:40]):
                r = self.api(self.node, "GET", NODES, headers={"X-Octopus-ApiKey": bad.encode("utf-8").decode("latin-1")}, key=None)
                self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=bad, what=f"malformed key {bad[:40]!r}")

    def test_unknown_key_401_invalid(self):
        r = self.api(self.node, "GET", NODES, key=UNKNOWN_KEY)
        self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=UNKNOWN_KEY, what="well-formed unknown key")
        r = self.api(self.node, "GET", NODES, headers={"Authorization": f"Bearer {UNKNOWN_KEY}"}, key=None)
        self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=UNKNOWN_KEY, what="unknown Bearer key")

    def test_bearer_key(self):
        reader = self.keys["Reader"]["ApiKey"]
        r = self.api(self.node, "GET", NODES, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, key=None, expect=200)
        self.assertTrue(any(n["Name"] == self.node.name for n in r.json["Items"]), "Bearer Admin key lists the nodes")
        self.api(self.node, "GET", APIKEYS, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, key=None, expect=200)
        r = self.api(self.node, "GET", NODES, headers={"Authorization": f"Bearer {reader}"}, key=None, expect=200)
        r = self.api(self.node, "GET", APIKEYS, headers={"Authorization": f"Bearer {reader}"}, key=None)
        self.assert_refused(r, 403, "RoleNotAllowed", sent_key=reader, what="Bearer Reader key on listApiKeys")

    def test_key_in_query_string_400(self):
        reader = self.keys["Reader"]["ApiKey"]
        cases = [
            (f"{NODES}?apikey={ADMIN_KEY}", None),  # the query alone
            (f"{NODES}?apikey={ADMIN_KEY}", harness.DEFAULT_KEY),  # also a valid header: still refused
            (f"{NODES}?ApiKey={reader}", harness.DEFAULT_KEY),
            (f"{NODES}?take=5&x={UNKNOWN_KEY}", harness.DEFAULT_KEY),  # anything with API- in it
            (f"{EVENTS}?user={urllib.parse.quote(ADMIN_KEY)}", harness.DEFAULT_KEY),
            (f"{PING}?apikey={ADMIN_KEY}", None),
        ]
        for path, key in cases:
            with self.subTest(path=path, header=key is not None):
                r = self.api(self.node, "GET", path, key=key)
                if path.startswith(PING):
                    # Ping needs no key; whatever it answers, it must not echo one.
                    self.assertNotIn(ADMIN_KEY.encode(), r.body, "ping does not echo a key")
                    continue
                self.assert_error(r, 400, "ApiKeyInQueryString", what=f"GET {path}")
                for k in (ADMIN_KEY, reader, UNKNOWN_KEY):
                    self.assertNotIn(k.encode(), r.body, f"GET {path}: the answer does not echo the key")
        r = self.api(self.node, "POST", f"{TASKS}?apikey={ADMIN_KEY}", body={"Name": "Diagnostic"}, key=None)
        self.assert_error(r, 400, "ApiKeyInQueryString", what="POST with the key in the query")

    # -- roles

    def test_role_matrix_from_spec(self):
        checker = harness.spec_checker()
        missing = harness.node_id(unique_name("gone"))
        reqs = representative_requests(self.node.id, missing)
        classes = {}
        for op_id, (method, path, body, ok) in reqs.items():
            template = checker.match_template(path)
            op = checker.operation(method, template)
            self.assertEqual(op.get("operationId"), op_id, f"{method} {path} is {op_id} in the spec")
            role = op.get("x-octoha-role")
            self.assertIn(role, ROLES, f"{op_id} has an x-octoha-role")
            classes.setdefault(role, []).append(op_id)
        self.assertEqual(set(classes), set(ROLES), f"the sample covers every role class: {classes}")
        keys = {role: self.keys[role]["ApiKey"] for role in ROLES}
        cap_before = self.api(self.node, "GET", f"{NODES}/{self.node.id}", expect=200).json["MaxConcurrentTasks"]
        for op_id, (method, path, body, ok) in reqs.items():
            need = next(r for r, ops in classes.items() if op_id in ops)
            ok = ok if isinstance(ok, tuple) else (ok,)
            with self.subTest(op=op_id, key="none"):
                r = self.api(self.node, method, path, body=body, key=None)
                self.assert_refused(r, 401, "ApiKeyMissing", what=f"{op_id} without a key")
            with self.subTest(op=op_id, key="unknown"):
                r = self.api(self.node, method, path, body=body, key=UNKNOWN_KEY)
                self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=UNKNOWN_KEY, what=f"{op_id} with an unknown key")
            for role in ROLES:
                with self.subTest(op=op_id, needs=need, key=role):
                    r = self.api(self.node, method, path, body=body, key=keys[role])
                    if RANK[role] >= RANK[need]:
                        self.assertIn(r.status, ok, f"{op_id} (needs {need}) with a {role} key: allowed; {r.describe()}")
                    else:
                        self.assert_refused(r, 403, "RoleNotAllowed", sent_key=keys[role],
                                            what=f"{op_id} (needs {need}) with a {role} key")
        # A refused change changed nothing: the Reader's PUT did not run.
        self.api(self.node, "PUT", f"{NODES}/{self.node.id}", body={"MaxConcurrentTasks": 9}, key=keys["Reader"], expect=403)
        time.sleep(0.3)
        cap = self.api(self.node, "GET", f"{NODES}/{self.node.id}", expect=200).json["MaxConcurrentTasks"]
        self.assertIn(cap, (cap_before, 5), "a refused PUT does not change MaxConcurrentTasks")
        self.assertNotEqual(cap, 9, "a refused PUT does not change MaxConcurrentTasks")

    # -- keys

    def test_create_answer_matches_spec(self):
        """The 201 answer validated against ApiKeyCreated in openapi.yaml."""
        r = self.api(self.node, "POST", APIKEYS, body={"Name": unique_name("spec"), "Role": "Reader"}, expect=201)
        self.assertRegex(r.json["ApiKey"], harness.API_KEY_RE)

    def test_key_shown_once(self):
        made = self.create_key(self.node, "Operator")
        key = made["ApiKey"]
        self.assertTrue(made["Id"].startswith("ApiKeys-"), f"Id is ApiKeys-…: {made}")
        self.assertTrue(key.startswith(made["Prefix"]) and 4 < len(made["Prefix"]) < len(key),
                        f"Prefix is the first characters of the key, not all of it: {made['Prefix']!r}")
        self.assertIsNone(made["LastUsedAt"], "a new key was never used")
        self.assert_timestamp(made["CreatedAt"], "CreatedAt")
        r = self.api(self.node, "GET", APIKEYS, expect=200)
        for k in (key, key[4:]):
            self.assertNotIn(k.encode(), r.body, "GET /api/apikeys never shows a key")
        listed = [k for k in r.json["Items"] if k["Id"] == made["Id"]]
        self.assertEqual(len(listed), 1, "the new key is listed")
        self.assertNotIn("ApiKey", listed[0], "the listing has no ApiKey field")
        for f in ("Name", "Role", "Prefix", "CreatedAt", "CreatedBy"):
            self.assertEqual(listed[0][f], made[f], f"listing agrees on {f}")
        self.assertIn("bootstrap", made["CreatedBy"], "CreatedBy names the creating key")
        # The key works, with its role.
        self.api(self.node, "POST", TASKS, body={"Name": "Diagnostic"}, key=key, expect=202)
        self.assertEqual(self.api(self.node, "GET", APIKEYS, key=key).status, 403, "an Operator key cannot list keys")

    def test_create_validation(self):
        for body in ({"Name": "x", "Role": "Root"}, {"Name": "x"}, {"Role": "Reader"}, {"Name": "", "Role": "Reader"},
                     {"Name": "x", "Role": "Reader", "ApiKey": UNKNOWN_KEY}):
            with self.subTest(body=body):
                r = self.api(self.node, "POST", APIKEYS, body=body, expect=400)
                self.assertEqual(r.json["Code"], "ValidationFailed", f"{body}: {r.json}")
        self.assertNotIn("x", [k["Name"] for k in self.list_keys(self.node)], "no refused body created a key")

    def test_last_used_at(self):
        made = self.create_key(self.node, "Reader")
        before = next(k for k in self.list_keys(self.node) if k["Id"] == made["Id"])
        self.assertIsNone(before["LastUsedAt"], "never used yet")
        self.api(self.node, "GET", NODES, key=made["ApiKey"], expect=200)
        after = next(k for k in self.list_keys(self.node) if k["Id"] == made["Id"])
        self.assertIsNotNone(after["LastUsedAt"], f"LastUsedAt is set after a use: {after}")
        self.assert_timestamp(after["LastUsedAt"], "LastUsedAt")
        used = parse_ts(after["LastUsedAt"])
        created = parse_ts(made["CreatedAt"])
        self.assertGreaterEqual(used, created.replace(second=0, microsecond=0), "LastUsedAt (to the minute) not before creation")
        self.assertLess(used - created, datetime.timedelta(minutes=2), "LastUsedAt is about now")

    def test_revoke(self):
        made = self.create_key(self.node, "Operator")
        key = made["ApiKey"]
        self.api(self.node, "GET", NODES, key=key, expect=200)  # cached on this node now
        r = self.api(self.node, "DELETE", f"{APIKEYS}/{made['Id']}", expect=204)
        self.assertEqual(r.body, b"", "204 has no body")
        t0 = time.monotonic()
        self.wait_until(lambda: self.node.request("GET", NODES, key=key).status == 401, 2.0,
                        msg="the revoked key refused within 2 s", nodes=[self.node])
        sys.stderr.write(f"\ntest_revoke: refused {time.monotonic() - t0:.2f}s after the revocation on the same node\n")
        r = self.api(self.node, "GET", NODES, key=key)
        self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=key, what="revoked key")
        self.assertNotIn(made["Id"], [k["Id"] for k in self.list_keys(self.node)], "revoked key no longer listed")
        r = self.api(self.node, "DELETE", f"{APIKEYS}/{made['Id']}", expect=404)
        self.assert_error(r, 404, "NotFound", what="revoking twice")
        r = self.api(self.node, "DELETE", f"{APIKEYS}/not-a-key-id", expect=400)
        self.assert_error(r, 400, "ValidationFailed", what="malformed key Id")

    def test_admin_cannot_be_locked_out_by_reader(self):
        reader = self.keys["Reader"]["ApiKey"]
        admin_id = self.key_by_name(self.node, "bootstrap")["Id"]
        r = self.api(self.node, "DELETE", f"{APIKEYS}/{admin_id}", key=reader)
        self.assert_refused(r, 403, "RoleNotAllowed", sent_key=reader, what="Reader revoking the Admin key")
        self.api(self.node, "GET", APIKEYS, expect=200)  # the Admin key still works

    # -- audit

    def test_refusals_audited(self):
        # A node of its own: refusals are recorded from a bucket of 10 per
        # source, which the class node's other tests may have emptied.
        node = self.start_node(name=unique_name("refusals"),
                               db=harness.default_db(harness.make_tmp_dir("refusals-db")))
        r = node.request("POST", APIKEYS, body={"Name": unique_name("cls-reader"), "Role": "Reader"})
        self.assertEqual(r.status, 201, r.describe())
        reader = r.json
        r = self.api(node, "PUT", f"{NODES}/{node.id}", body={"MaxConcurrentTasks": 4}, key=reader["ApiKey"])
        self.assert_refused(r, 403, "RoleNotAllowed", what="Reader PUT")
        ev = self.find_events(node, Category="AccessDenied", UserId=reader["Id"], StatusCode=403)
        self.assertTrue(ev, "the 403 is in the audit log")
        ev = ev[0]
        self.assert_actor(ev, reader["Id"], reader["Name"], "403 event")
        self.assertEqual(ev["Result"], "Refused", f"403 event Result: {ev}")
        self.assertEqual(ev["Operation"], "updateNode", f"403 event Operation: {ev}")
        self.assertEqual(ev["ResourceId"], node.id, f"403 event ResourceId: {ev}")

        marker = unique_name("nokey")
        r = self.api(node, "GET", f"{NODES}/{harness.node_id(marker)}", key=None)
        self.assert_refused(r, 401, "ApiKeyMissing", what="no key")
        ev = self.one_event(node, "401 without a key", Category="AccessDenied", ResourceId=harness.node_id(marker))
        self.assertEqual((ev["Result"], ev["StatusCode"], ev["UserId"]), ("Refused", 401, None), f"401 event: {ev}")
        self.assertEqual(ev["RemoteAddress"], "127.0.0.1", f"401 event RemoteAddress: {ev}")
        self.assertEqual(ev["Operation"], "getNode", f"401 event Operation: {ev}")

        marker = unique_name("badkey")
        r = self.api(node, "GET", f"{NODES}/{harness.node_id(marker)}", key=UNKNOWN_KEY)
        self.assert_refused(r, 401, "ApiKeyInvalid", what="unknown key")
        ev = self.one_event(node, "401 with an unknown key", Category="AccessDenied", ResourceId=harness.node_id(marker))
        self.assertEqual((ev["Result"], ev["StatusCode"], ev["UserId"]), ("Refused", 401, None), f"401 event: {ev}")

    def test_failed_change_audited_but_not_failed_get(self):
        op = self.keys["Operator"]
        before = len(self.find_events(self.node, Category="RequestFailed", UserId=op["Id"]))
        r = self.api(self.node, "POST", TASKS, body={"Name": "NoSuchTask"}, key=op["ApiKey"], expect=400)
        self.assertEqual(r.json["Code"], "ValidationFailed")
        failed = self.find_events(self.node, Category="RequestFailed", UserId=op["Id"])
        self.assertEqual(len(failed), before + 1, "one RequestFailed event for the failed POST")
        ev = failed[0]
        self.assert_actor(ev, op["Id"], op["Name"], "RequestFailed")
        self.assertEqual((ev["Result"], ev["StatusCode"]), ("Failed", 400), f"RequestFailed event: {ev}")
        self.api(self.node, "GET", NODES + "?take=0", key=op["ApiKey"], expect=400)
        self.assertEqual(len(self.find_events(self.node, Category="RequestFailed", UserId=op["Id"])), before + 1,
                         "a failed GET is not a failed change: no event")

    def test_forwarded_for_not_recorded_without_trusted_proxy(self):
        marker = unique_name("xff")
        r = self.api(self.node, "POST", TASKS, body={"Name": "Diagnostic", "Description": marker},
                     headers={"X-Forwarded-For": "203.0.113.7"}, expect=202)
        ev = self.one_event(self.node, "TaskQueued", Category="TaskQueued", ResourceId=r.json["Id"])
        self.assertIsNone(ev["ForwardedFor"], f"X-Forwarded-For from an untrusted peer is not recorded: {ev}")
        self.assertEqual(ev["RemoteAddress"], "127.0.0.1", f"RemoteAddress is the peer: {ev}")

    def test_events_spec_and_order(self):
        body = self.events(self.node)
        self.assertEqual(body["ItemType"], "Event")
        items = body["Items"]
        self.assertGreater(len(items), 0, "there are events")
        times = [parse_ts(e["Occurred"]) for e in items]
        self.assertEqual(times, sorted(times, reverse=True), "events newest first")
        bootstrap_id = self.key_by_name(self.node, "bootstrap")["Id"]
        boot = self.find_events(self.node, Category="ApiKeyCreated", ResourceId=bootstrap_id)
        self.assertEqual(len(boot), 1, f"the bootstrap seeding is one ApiKeyCreated event: {boot}")
        self.assertEqual(boot[0]["Result"], "Success")

    def test_bad_event_filters_400(self):
        for query in ("category=NoSuchCategory", "from=yesterday", "to=2026-13-45T00:00:00Z", "take=0", "skip=-1",
                      "user="):
            with self.subTest(query=query):
                r = self.api(self.node, "GET", f"{EVENTS}?{query}", expect=400)
                self.assertEqual(r.json["Code"], "ValidationFailed", f"{query}: {r.json}")


class AuthSqliteOwnNodeTests(AuthHelpers):
    """Tests that need a node (and its log, or its events) to themselves."""

    def node(self, **kw):
        kw.setdefault("db", None)  # the embedded SQLite database in its data dir
        return self.start_node(**kw)

    def test_change_events(self):
        n = self.node()
        admin = self.key_by_name(n, "bootstrap")
        op = self.create_key(n, "Operator", name=unique_name("ops"))
        created = self.one_event(n, "ApiKeyCreated", Category="ApiKeyCreated", ResourceId=op["Id"])
        self.assert_actor(created, admin["Id"], "bootstrap", "ApiKeyCreated")
        self.assertEqual(created["Result"], "Success")
        okey = op["ApiKey"]

        t = self.api(n, "POST", TASKS, body={"Name": "Diagnostic", "Arguments": {"WaitMs": 60000}}, key=okey, expect=202).json
        self.api(n, "POST", f"{TASKS}/{t['Id']}/cancel", key=okey, expect=202)
        self.api(n, "PUT", f"{NODES}/{n.id}", body={"MaxConcurrentTasks": 3}, key=okey, expect=(200, 202))
        self.api(n, "POST", f"{NODES}/{n.id}/drain", body={"Reason": "audit test", "Force": True}, key=okey, expect=202)
        self.api(n, "POST", f"{NODES}/{n.id}/undrain", key=okey, expect=(200, 202))
        doomed = self.create_key(n, "Reader")
        self.api(n, "DELETE", f"{APIKEYS}/{doomed['Id']}", expect=204)

        expected = [
            ("TaskQueued", t["Id"], op),
            ("TaskCanceled", t["Id"], op),
            ("NodeTaskCapChanged", n.id, op),
            ("NodeDrainRequested", n.id, op),
            ("NodeUndrainRequested", n.id, op),
            ("ApiKeyCreated", doomed["Id"], None),
            ("ApiKeyRevoked", doomed["Id"], None),
        ]
        for category, resource, who in expected:
            with self.subTest(category=category):
                ev = self.one_event(n, category, Category=category, ResourceId=resource)
                if who is None:
                    self.assert_actor(ev, admin["Id"], "bootstrap", category)
                else:
                    self.assert_actor(ev, who["Id"], who["Name"], category)
                self.assertEqual(ev["Result"], "Success", f"{category} Result: {ev}")
                self.assertTrue(ev["Message"], f"{category} has a message: {ev}")
                self.assertIsNone(ev["ForwardedFor"], f"{category}: no proxy, no ForwardedFor: {ev}")
        cap = self.one_event(n, "NodeTaskCapChanged", Category="NodeTaskCapChanged", ResourceId=n.id)
        self.assertIn("3", str(cap["Details"]) + cap["Message"], f"the cap change says what changed: {cap}")

    def test_forwarded_for_from_trusted_proxy(self):
        n = self.node(env={"OCTOHA_TRUSTED_PROXIES": "10.9.8.7, 127.0.0.1"})
        r = self.api(n, "POST", TASKS, body={"Name": "Diagnostic"}, headers={"X-Forwarded-For": "203.0.113.7"}, expect=202)
        ev = self.one_event(n, "TaskQueued", Category="TaskQueued", ResourceId=r.json["Id"])
        self.assertEqual(ev["ForwardedFor"], "203.0.113.7", f"X-Forwarded-For from a trusted proxy is recorded: {ev}")
        self.assertEqual(ev["RemoteAddress"], "127.0.0.1", f"RemoteAddress stays the peer: {ev}")
        # A refusal through the proxy carries it too.
        marker = harness.node_id(unique_name("xff"))
        self.api(n, "GET", f"{NODES}/{marker}", headers={"X-Forwarded-For": "198.51.100.4"}, key=None, expect=401)
        ev = self.one_event(n, "AccessDenied", Category="AccessDenied", ResourceId=marker)
        self.assertEqual(ev["ForwardedFor"], "198.51.100.4", f"refusal through a trusted proxy: {ev}")

    def test_forwarded_for_from_untrusted_proxy_list(self):
        n = self.node(env={"OCTOHA_TRUSTED_PROXIES": "10.9.8.7"})
        r = self.api(n, "POST", TASKS, body={"Name": "Diagnostic"}, headers={"X-Forwarded-For": "203.0.113.7"}, expect=202)
        ev = self.one_event(n, "TaskQueued", Category="TaskQueued", ResourceId=r.json["Id"])
        self.assertIsNone(ev["ForwardedFor"], f"127.0.0.1 is not in the trusted list: not recorded: {ev}")

    def test_event_filters(self):
        n = self.node()
        a = self.create_key(n, "Operator", name=unique_name("alice"))
        b = self.create_key(n, "Operator", name=unique_name("bob"))
        tasks = {"a": [], "b": []}
        for i in range(3):
            for who, k in (("a", a), ("b", b)):
                tasks[who].append(self.api(n, "POST", TASKS, body={"Name": "Diagnostic", "Description": f"{who}{i}"},
                                           key=k["ApiKey"], expect=202).json["Id"])
                time.sleep(0.01)
        self.api(n, "GET", APIKEYS, key=a["ApiKey"], expect=403)  # one refusal of a's
        all_items = self.events(n)["Items"]

        # user: by Id and by name
        for user in (a["Id"], a["Name"]):
            with self.subTest(user=user):
                body = self.events(n, user=user)
                want = [e["Id"] for e in all_items if e["UserId"] == a["Id"]]
                self.assertEqual([e["Id"] for e in body["Items"]], want, f"user={user}: exactly a's events")
                self.assertEqual(body["TotalResults"], len(want), "TotalResults counts the filtered events")
                self.assertEqual(len(want), 4, f"a queued 3 tasks and was refused once: {body['Items']}")
        # regarding
        got = self.events(n, regarding=tasks["b"][1])["Items"]
        self.assertEqual([(e["Category"], e["ResourceId"]) for e in got], [("TaskQueued", tasks["b"][1])],
                         "regarding= gives the events about that resource only")
        # category
        got = self.events(n, category="AccessDenied")["Items"]
        self.assertEqual({e["Category"] for e in got}, {"AccessDenied"}, "category= filters")
        self.assertIn(a["Id"], [e["UserId"] for e in got], "a's refusal is among them")
        got = self.events(n, category="TaskQueued", user=b["Id"])["Items"]
        self.assertEqual(sorted(e["ResourceId"] for e in got), sorted(tasks["b"]), "category and user combine")
        # operation: whatever the TaskQueued events say, filtering by it keeps exactly those
        queued = [e for e in all_items if e["Category"] == "TaskQueued" and e["UserId"] in (a["Id"], b["Id"])]
        opname = queued[0]["Operation"]
        got = self.events(n, operation=opname)["Items"]
        self.assertEqual([e["Id"] for e in got], [e["Id"] for e in all_items if e["Operation"] == opname],
                         f"operation={opname} filters")
        # from / to, on a's and b's six TaskQueued events
        mine = [e for e in all_items if e["Category"] == "TaskQueued" and e["UserId"] in (a["Id"], b["Id"])]
        self.assertEqual(len(mine), 6)
        pivot = mine[2]["Occurred"]  # the fourth oldest
        t = parse_ts(pivot)
        got_from = self.events(n, category="TaskQueued", **{"from": pivot})["Items"]
        got_to = self.events(n, category="TaskQueued", to=pivot)["Items"]
        all_q = [e for e in all_items if e["Category"] == "TaskQueued"]
        self.assertEqual([e["Id"] for e in got_from], [e["Id"] for e in all_q if parse_ts(e["Occurred"]) >= t],
                         "from= is inclusive")
        self.assertEqual([e["Id"] for e in got_to], [e["Id"] for e in all_q if parse_ts(e["Occurred"]) < t],
                         "to= is exclusive")
        self.assertIn(mine[2]["Id"], [e["Id"] for e in got_from], "the pivot event is in from=")
        self.assertNotIn(mine[2]["Id"], [e["Id"] for e in got_to], "the pivot event is not in to=")
        self.assertEqual(len(got_from) + len(got_to), len(all_q), "from= and to= split the events")
        # paging
        full = [e["Id"] for e in all_items]
        page = self.events(n, skip=1, take=2)
        self.assertEqual([e["Id"] for e in page["Items"]], full[1:3], "skip=1&take=2 is the second and third")
        self.assertEqual(page["TotalResults"], len(full), "TotalResults is the whole count")
        self.assertEqual(page["ItemsPerPage"], 2)
        self.assertEqual(self.events(n, skip=len(full), take=5)["Items"], [], "a page past the end is empty")
        self.assertEqual(self.events(n, user=unique_name("nobody"))["Items"], [], "unknown user: nothing")

    def test_keys_never_in_output_or_events(self):
        n = self.node()  # debug log level: request lines included
        used = [ADMIN_KEY, UNKNOWN_KEY]
        reader = self.create_key(n, "Reader")
        op = self.create_key(n, "Operator")
        revoked = self.create_key(n, "Operator")
        used += [reader["ApiKey"], op["ApiKey"], revoked["ApiKey"]]
        self.api(n, "GET", NODES, key=reader["ApiKey"], expect=200)
        self.api(n, "GET", NODES, headers={"Authorization": f"Bearer {op['ApiKey']}"}, key=None, expect=200)
        self.api(n, "GET", APIKEYS, key=reader["ApiKey"], expect=403)
        self.api(n, "POST", TASKS, body={"Name": "Diagnostic"}, key=op["ApiKey"], expect=202)
        self.api(n, "POST", TASKS, body={"Name": "Nope"}, key=op["ApiKey"], expect=400)
        self.api(n, "GET", NODES, key=UNKNOWN_KEY, expect=401)
        self.api(n, "GET", f"{NODES}?apikey={reader['ApiKey']}", key=None, expect=400)
        self.api(n, "GET", f"{NODES}?take=3&k={op['ApiKey']}", expect=400)
        self.api(n, "DELETE", f"{APIKEYS}/{revoked['Id']}", expect=204)
        self.wait_until(lambda: n.request("GET", NODES, key=revoked["ApiKey"]).status == 401, 2.0, msg="revoked")
        malformed = "API-" + reader["ApiKey"][4:].lower()
        self.api(n, "GET", NODES, key=malformed, expect=401)
        used.append(malformed)
        cli_key, cli = harness.create_key_cli(unique_name("cli"), "Reader", {"OCTOHA_DATA_DIR": str(n.data_dir)})
        self.assertIsNotNone(cli_key, f"admin --create-api-key printed a key: {cli.stdout!r} {cli.stderr!r}")
        self.api(n, "GET", NODES, key=cli_key, expect=200)
        used.append(cli_key)

        events = self.api(n, "GET", f"{EVENTS}?take=1000", expect=200)
        keys_list = self.api(n, "GET", APIKEYS, expect=200)
        n.terminate()
        output = n.all_output()
        self.assertIn("msg=ready", output, "the node's output was captured")
        self.assertIn("msg=request", output, "its request log lines too (debug level)")
        for k in used:
            for needle in (k, k[4:]):
                with self.subTest(key=k[:8]):
                    self.assertNotIn(needle, output, f"a key ({k[:8]}…) appears in the node's stdout/stderr")
                    self.assertNotIn(needle.encode(), events.body, f"a key ({k[:8]}…) appears in /api/events")
                    self.assertNotIn(needle.encode(), keys_list.body, f"a key ({k[:8]}…) appears in /api/apikeys")
        self.assertNotIn(cli_key, cli.stderr, "the CLI prints the key on stdout only")

    def test_admin_cli_prints_working_key(self):
        n = self.node()
        name = unique_name("cli-op")
        key, r = harness.create_key_cli(name, "Operator", {"OCTOHA_DATA_DIR": str(n.data_dir)})
        self.assertEqual(r.returncode, 0, f"admin --create-api-key exit code; stderr: {r.stderr}")
        self.assertIsNotNone(key, f"the last line of stdout is the key alone: {r.stdout!r}")
        self.assertEqual(r.stdout.rstrip("\n").splitlines()[-1], key, "the key alone on the last line")
        self.api(n, "GET", NODES, key=key, expect=200)
        self.api(n, "POST", TASKS, body={"Name": "Diagnostic"}, key=key, expect=202)
        r2 = self.api(n, "GET", APIKEYS, key=key)
        self.assert_refused(r2, 403, "RoleNotAllowed", sent_key=key, what="CLI Operator key on listApiKeys")
        listed = self.key_by_name(n, name)
        self.assertEqual(listed["Role"], "Operator")
        self.assertTrue(key.startswith(listed["Prefix"]), "the listed Prefix is the CLI key's")
        # a bad role: no key printed, non-zero exit
        bad, r3 = harness.create_key_cli(unique_name("cli"), "Root", {"OCTOHA_DATA_DIR": str(n.data_dir)})
        self.assertNotEqual(r3.returncode, 0, f"--role Root is refused: {r3.stdout!r} {r3.stderr!r}")
        self.assertIsNone(bad, "no key printed for a refused role")

    def test_admin_cli_on_a_fresh_data_directory(self):
        """Issue 9.6: the first key of a cluster, made before any node ran,
        failed with 'no such table: ApiKeys'."""
        fresh = harness.make_tmp_dir("fresh-data")
        key, r = harness.create_key_cli(unique_name("first"), "Admin", {"OCTOHA_DATA_DIR": str(fresh)})
        self.assertEqual(r.returncode, 0, f"exit code; stderr: {r.stderr}")
        self.assertIsNotNone(key, f"a key: {r.stdout!r} {r.stderr!r}")
        n = self.start_node(db=None, data_dir=fresh)
        self.api(n, "GET", APIKEYS, key=key, expect=200)

    def test_admin_cli_creation_audited(self):
        n = self.node()
        key, r = harness.create_key_cli(unique_name("cli-audit"), "Reader", {"OCTOHA_DATA_DIR": str(n.data_dir)})
        self.assertIsNotNone(key, f"admin --create-api-key printed a key: {r.stdout!r} {r.stderr!r}")
        made = next(k for k in self.list_keys(n) if key.startswith(k["Prefix"]) and k["Name"].startswith("cli-audit"))
        ev = self.one_event(n, "ApiKeyCreated by the CLI", Category="ApiKeyCreated", ResourceId=made["Id"])
        self.assertEqual(ev["Result"], "Success")
        self.assertNotIn(key, str(ev), "the event does not hold the key")

    def test_bootstrap_seeded_once(self):
        n = self.node()
        boot = self.key_by_name(n, "bootstrap")
        self.assertEqual(boot["Role"], "Admin", "the bootstrap key is an Admin key")
        self.assertTrue(ADMIN_KEY.startswith(boot["Prefix"]), "its Prefix is the configured key's")
        self.assertEqual(n.terminate(), 0, f"SIGTERM exits 0\n{n.log_tail()}")
        n.extra_env["OCTOHA_BOOTSTRAP_ADMIN_KEY"] = OTHER_BOOTSTRAP_KEY
        n.restart()
        r = self.api(n, "GET", NODES, key=OTHER_BOOTSTRAP_KEY)
        self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=OTHER_BOOTSTRAP_KEY,
                            what="a second bootstrap key on an already seeded database")
        keys = self.list_keys(n)  # the first bootstrap key still works
        self.assertEqual([k["Id"] for k in keys if k["Name"] == "bootstrap"], [boot["Id"]], "still one bootstrap key")
        self.assertEqual(len(keys), 1, f"no key was added: {keys}")
        # Even after the bootstrap key is revoked, a restart does not seed again.
        other_admin = self.create_key(n, "Admin")
        self.api(n, "DELETE", f"{APIKEYS}/{boot['Id']}", key=other_admin["ApiKey"], expect=204)
        self.assertEqual(n.terminate(), 0)
        n.extra_env["OCTOHA_BOOTSTRAP_ADMIN_KEY"] = ADMIN_KEY
        n.restart()
        r = self.api(n, "GET", NODES, key=ADMIN_KEY)
        self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=ADMIN_KEY, what="the revoked bootstrap key after a restart")
        self.assertEqual([k["Name"] for k in self.list_keys(n, key=other_admin["ApiKey"])], [other_admin["Name"]])

    def test_malformed_bootstrap_key_refused_at_start(self):
        bad = "API-notakey"
        node = harness.Node(db=None, env={"OCTOHA_BOOTSTRAP_ADMIN_KEY": bad})
        self.track(node)
        node.start(wait=False)
        self.expect_exit(node, 2, "bootstrap")


class AuthPgTests(AuthHelpers):
    """Two nodes on one PostgreSQL database."""

    FAST = {"OCTOHA_HEARTBEAT_MS": "200", "OCTOHA_OFFLINE_TIMEOUT_MS": "3000"}

    def setUp(self):
        self.db = harness.cluster_db(self, need_empty=True)

    def pg_node(self, env=None, wait=True):
        return self.start_node(db=self.db, env=dict(self.FAST, **(env or {})), wait=wait)

    def test_revocation_reaches_other_node_within_2s(self):
        a, b = self.pg_node(), self.pg_node()
        made = self.create_key(a, "Operator")
        key = made["ApiKey"]
        # b has seen (and cached) the key
        for _ in range(3):
            self.api(b, "GET", NODES, key=key, expect=200)
        self.api(a, "DELETE", f"{APIKEYS}/{made['Id']}", expect=204)
        t0 = time.monotonic()
        self.wait_until(lambda: b.request("GET", NODES, key=key).status == 401, 2.0,
                        interval=0.02, msg="the other node refuses the revoked key within 2 s", nodes=[a, b])
        dt = time.monotonic() - t0
        sys.stderr.write(f"\ntest_revocation: node b refused the revoked key {dt:.2f}s after the revocation\n")
        r = self.api(b, "GET", NODES, key=key)
        self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=key, what="revoked key on the other node")
        r = self.api(a, "GET", NODES, key=key)
        self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=key, what="revoked key on the revoking node")
        # It stays refused (no cache resurrects it).
        time.sleep(1.2)
        self.assertEqual(b.request("GET", NODES, key=key).status, 401, "still refused a cache period later")

    def test_key_created_on_one_node_works_on_the_other(self):
        a, b = self.pg_node(), self.pg_node()
        made = self.create_key(a, "Reader")
        self.api(b, "GET", NODES, key=made["ApiKey"], expect=200)
        r = self.api(b, "POST", TASKS, body={"Name": "Diagnostic"}, key=made["ApiKey"])
        self.assert_refused(r, 403, "RoleNotAllowed", sent_key=made["ApiKey"], what="Reader POST on the other node")

    def test_bootstrap_once_per_database(self):
        a = self.pg_node()
        b = self.pg_node(env={"OCTOHA_BOOTSTRAP_ADMIN_KEY": OTHER_BOOTSTRAP_KEY})
        r = self.api(b, "GET", NODES, key=OTHER_BOOTSTRAP_KEY)
        self.assert_refused(r, 401, "ApiKeyInvalid", sent_key=OTHER_BOOTSTRAP_KEY,
                            what="the second node's bootstrap key on a seeded database")
        self.api(b, "GET", APIKEYS, expect=200)  # the first node's key works on b
        keys = self.list_keys(a)
        self.assertEqual([k["Name"] for k in keys], ["bootstrap"], f"one key in the database: {keys}")
        self.assertTrue(ADMIN_KEY.startswith(keys[0]["Prefix"]), "it is the first node's key")
        for n in (a, b):
            self.assertNotIn(OTHER_BOOTSTRAP_KEY, n.all_output(), f"{n.name}'s output has no key")
            self.assertNotIn(ADMIN_KEY, n.all_output(), f"{n.name}'s output has no key")

    def test_admin_cli_with_db_option(self):
        a = self.pg_node()
        name = unique_name("cli-pg")
        key, r = harness.create_key_cli(name, "Admin", args=["--db", self.db])
        self.assertEqual(r.returncode, 0, f"admin --create-api-key --db exit code; stderr: {r.stderr}")
        self.assertIsNotNone(key, f"the last line of stdout is the key: {r.stdout!r}")
        self.api(a, "GET", APIKEYS, key=key, expect=200)
        self.assertEqual(self.key_by_name(a, name)["Role"], "Admin")

    def test_node_delete_audited(self):
        a, b = self.pg_node(), self.pg_node()
        self.assertEqual(b.terminate(), 0, f"SIGTERM exits 0\n{b.log_tail()}")
        self.wait_until(lambda: self.api(a, "GET", f"{NODES}/{b.id}", expect=200).json["IsOffline"], 5,
                        msg="b offline", nodes=[a])
        op = self.create_key(a, "Operator")
        r = self.api(a, "DELETE", f"{NODES}/{b.id}", key=op["ApiKey"])
        self.assert_refused(r, 403, "RoleNotAllowed", what="Operator deleting a node")
        self.api(a, "DELETE", f"{NODES}/{b.id}", expect=204)
        admin = self.key_by_name(a, "bootstrap")
        ev = self.one_event(a, "NodeDeleted", Category="NodeDeleted", ResourceId=b.id)
        self.assert_actor(ev, admin["Id"], "bootstrap", "NodeDeleted")
        self.assertEqual(ev["Result"], "Success")
        denied = self.one_event(a, "AccessDenied for the Operator's DELETE", Category="AccessDenied", UserId=op["Id"])
        self.assertEqual((denied["ResourceId"], denied["Operation"], denied["StatusCode"]), (b.id, "deleteNode", 403))


if __name__ == "__main__":
    harness.main()
