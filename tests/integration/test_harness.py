#!/usr/bin/env python3
"""Self-tests of harness.py and tests/pg.sh; none of them needs the server.

  python3 tests/integration/test_harness.py
"""

import os
import shutil
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SpecChecker, SpecError  # noqa: E402

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "servers": [{"url": "/api"}],
    "paths": {
        "/things/{id}": {
            "get": {
                "responses": {
                    200: {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                    "404": {"$ref": "#/components/responses/Error"},
                    "5XX": {"$ref": "#/components/responses/Error"},
                }
            },
            "delete": {"responses": {"204": {"description": "gone"}, "default": {"$ref": "#/components/responses/Error"}}},
        },
        "/things/all": {
            "get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                "type": "array", "items": {"$ref": "#/components/schemas/Thing"}}}}}}}
        },
        "/spec.yaml": {"get": {"responses": {"200": {"description": "y", "content": {"application/yaml": {"schema": {"type": "string"}}}}}}},
    },
    "components": {
        "responses": {
            "Error": {"description": "e", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
            "Thing": {
                "type": "object",
                "required": ["Id", "When", "Count", "Parent"],
                "additionalProperties": False,
                "properties": {
                    "Id": {"type": "string", "x-note": "ext"},
                    "When": {"type": "string", "format": "date-time"},
                    "Count": {"type": "integer", "format": "int32", "minimum": 0, "exclusiveMinimum": True},
                    "Kind": {"type": "string", "enum": ["a", "b"], "nullable": True},
                    "Parent": {"$ref": "#/components/schemas/Thing", "nullable": True},
                    "example": {"type": "string", "example": "property named like an OAS keyword"},
                },
            },
            "Error": {
                "type": "object",
                "required": ["ErrorMessage", "Errors", "Code"],
                "properties": {
                    "ErrorMessage": {"type": "string"},
                    "Errors": {"type": "array", "items": {"type": "string"}},
                    "Code": {"type": "string"},
                    "Field": {"type": "string"},
                },
            },
        },
    },
}

GOOD = {"Id": "x", "When": "2026-11-28T05:30:00.123+00:00", "Count": 1, "Parent": None, "Kind": None, "example": "e"}


class SpecCheckerTests(unittest.TestCase):
    def setUp(self):
        self.c = SpecChecker(SPEC)

    def test_valid_body_passes(self):
        self.c.check_response("GET", "/api/things/{id}", 200, GOOD)
        self.c.check_response("get", "/things/{id}", 200, dict(GOOD, Kind="a"))
        self.c.check_response("GET", "/api/things/all", 200, [GOOD])

    def test_schema_violations_fail(self):
        bad = [
            dict(GOOD, Count=0),  # exclusiveMinimum true with minimum 0
            dict(GOOD, Count=2**31),  # int32
            dict(GOOD, Count=True),  # boolean is no integer
            dict(GOOD, When="yesterday"),  # date-time
            dict(GOOD, When="2026-13-28T05:30:00.123+00:00"),
            dict(GOOD, Kind="c"),  # enum
            dict(GOOD, Extra=1),  # additionalProperties false
            {k: v for k, v in GOOD.items() if k != "Id"},  # required
            dict(GOOD, Parent={"Id": 5}),  # recursive ref is checked one level down
        ]
        for b in bad:
            with self.subTest(body=b):
                with self.assertRaises(SpecError, msg=f"should reject {b}"):
                    self.c.check_response("GET", "/api/things/{id}", 200, b)

    def test_undeclared_status_fails(self):
        with self.assertRaises(SpecError, msg="400 is not declared"):
            self.c.check_response("GET", "/api/things/{id}", 400, {"ErrorMessage": "x", "Errors": [], "Code": "c"})
        with self.assertRaises(SpecError, msg="'default' must not count as declaring 409"):
            self.c.check_response("DELETE", "/api/things/{id}", 409, {"ErrorMessage": "x", "Errors": [], "Code": "c"})

    def test_ranges_and_response_refs(self):
        err = {"ErrorMessage": "x", "Errors": ["y"], "Code": "DatabaseUnavailable"}
        self.c.check_response("GET", "/api/things/{id}", 503, err)
        self.c.check_response("GET", "/api/things/{id}", 404, err)
        with self.assertRaises(SpecError, msg="error body lacking Code"):
            self.c.check_response("GET", "/api/things/{id}", 404, {"ErrorMessage": "x", "Errors": []})

    def test_no_content(self):
        self.c.check_response("DELETE", "/api/things/{id}", 204, None)
        with self.assertRaises(SpecError, msg="204 declares no body"):
            self.c.check_response("DELETE", "/api/things/{id}", 204, {"a": 1})
        with self.assertRaises(SpecError, msg="200 declares a JSON body"):
            self.c.check_response("GET", "/api/things/{id}", 200, None)

    def test_content_type_selection(self):
        self.c.check_response("GET", "/api/things/{id}", 200, GOOD, "application/json; charset=utf-8")
        with self.assertRaises(SpecError, msg="text/html is not declared"):
            self.c.check_response("GET", "/api/things/{id}", 200, GOOD, "text/html")

    def test_unknown_path_and_method(self):
        with self.assertRaises(SpecError, msg="unknown path"):
            self.c.check_response("GET", "/api/nothing", 200, {})
        with self.assertRaises(SpecError, msg="unknown method"):
            self.c.check_response("POST", "/api/things/{id}", 200, {})

    def test_match_template(self):
        self.assertEqual(self.c.match_template("/api/things/all"), "/api/things/all", "literal beats {id}")
        self.assertEqual(self.c.match_template("/api/things/T-1?x=1"), "/api/things/{id}", "parameter match")
        self.assertIsNone(self.c.match_template("/api/things/a/b"), "no template spans two segments")
        self.assertIsNone(self.c.match_template("/other"), "unknown path")

    def test_error_schema(self):
        s = self.c.error_schema()
        self.assertIsNotNone(s, "error schema found by its properties")
        self.c.validate(s, {"ErrorMessage": "m", "Errors": [], "Code": "NotFound"}, "error")

    def test_nullable_without_type(self):
        conv = harness.to_json_schema({"allOf": [{"type": "string"}], "nullable": True}, {}, "3.0.0")
        self.c.validate(conv, None, "null")
        self.c.validate(conv, "s", "string")


class RepoSpecTests(unittest.TestCase):
    """The repository's openapi.yaml loads and every response schema converts."""

    def setUp(self):
        if not harness.SPEC_PATH.exists():
            self.skipTest(f"{harness.SPEC_PATH} does not exist yet")

    def test_every_response_schema_is_valid_json_schema(self):
        import jsonschema

        c = harness.spec_checker()
        self.assertTrue(c.paths, "openapi.yaml has paths")
        count = 0
        for template, item in c.paths.items():
            for method in ("get", "put", "post", "delete", "patch"):
                if method not in item:
                    continue
                for status in c.declared_statuses(method, template):
                    if not status.isdigit():
                        continue
                    media, schema = c.response_schema(method, template, int(status))
                    if schema is not None:
                        with self.subTest(op=f"{method.upper()} {template} {status}"):
                            c._validator_cls.check_schema(schema)
                            count += 1
        self.assertGreater(count, 0, "at least one response schema was checked")
        self.assertIsNotNone(c.error_schema(), "openapi.yaml has an error schema with ErrorMessage/Errors/Code")

    def test_examples_match_their_schemas(self):
        """Each response example in openapi.yaml passes check_response."""
        c = harness.spec_checker()
        checked = 0
        for template, item in c.paths.items():
            for method in ("get", "put", "post", "delete", "patch"):
                if method not in item:
                    continue
                for status in c.declared_statuses(method, template):
                    if not status.isdigit():
                        continue
                    resp = c.response(method, template, int(status))
                    for media, mobj in (resp.get("content") or {}).items():
                        mobj = harness.deref(mobj, c.spec)
                        if "example" not in mobj or "json" not in media:
                            continue
                        with self.subTest(op=f"{method.upper()} {template} {status}"):
                            c.check_response(method, template, int(status), mobj["example"], media)
                            checked += 1
        self.assertGreater(checked, 0, "openapi.yaml has response examples to check")

    def test_contract_paths_present(self):
        c = harness.spec_checker()
        for method, template in [
            ("GET", "/api/octopusservernodes/ping"),
            ("GET", "/api/octopusservernodes"),
            ("GET", "/api/octopusservernodes/all"),
            ("GET", "/api/octopusservernodes/summary"),
            ("GET", "/api/octopusservernodes/{id}"),
            ("DELETE", "/api/octopusservernodes/{id}"),
        ]:
            with self.subTest(op=f"{method} {template}"):
                path = template.replace("{id}", "OctopusServerNodes-x")
                found = c.match_template(path)
                self.assertIsNotNone(found, f"{path} matches a path in openapi.yaml")
                c.operation(method, found)


class UtilityTests(unittest.TestCase):
    def test_parse_logfmt(self):
        rec = harness.parse_logfmt('ts=2026-11-28T05:30:00.123Z level=info msg=request rid=ab12 method=GET '
                                   'path=/api/x status=200 dur_ms=0.42 err="a \\"quoted\\" thing" flag')
        self.assertEqual(rec["msg"], "request", "bare value")
        self.assertEqual(rec["dur_ms"], "0.42", "number stays a string")
        self.assertEqual(rec["err"], 'a "quoted" thing', "quoted value unescaped")
        self.assertIs(rec["flag"], True, "bare key")

    def test_free_port(self):
        ports = {harness.free_port() for _ in range(50)}
        self.assertEqual(len(ports), 50, "free_port never repeats itself")
        for p in list(ports)[:5]:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p))  # raises if it was not free

    def test_key_headers(self):
        self.assertRegex(harness.ADMIN_KEY, harness.API_KEY_RE, "ADMIN_KEY is API- and 32 of A-Z0-9")
        self.assertEqual(harness.key_headers(harness.ADMIN_KEY), {"X-Octopus-ApiKey": harness.ADMIN_KEY})
        self.assertEqual(harness.key_headers(None, {"A": "1"}), {"A": "1"}, "key=None sends no key")
        own = {"authorization": "Bearer API-X"}
        self.assertEqual(harness.key_headers(harness.ADMIN_KEY, own), own, "a caller's Authorization wins")
        own = {"x-octopus-apikey": ""}
        self.assertEqual(harness.key_headers(harness.ADMIN_KEY, own), own, "a caller's X-Octopus-ApiKey wins")
        node = harness.Node(create_data_dir=False)
        self.assertEqual(node.env["OCTOHA_BOOTSTRAP_ADMIN_KEY"], harness.ADMIN_KEY, "nodes seed ADMIN_KEY")
        self.assertNotIn("OCTOHA_BOOTSTRAP_ADMIN_KEY",
                         harness.Node(create_data_dir=False, env={"OCTOHA_BOOTSTRAP_ADMIN_KEY": None}).env,
                         "env None removes it")

    def test_child_env_drops_inherited_octoha(self):
        os.environ["OCTOHA_LEAK_TEST"] = "1"
        try:
            env = harness.child_env({"OCTOHA_TASK_CAP": 3, "PATH": None})
        finally:
            del os.environ["OCTOHA_LEAK_TEST"]
        self.assertNotIn("OCTOHA_LEAK_TEST", env, "inherited OCTOHA_* dropped")
        self.assertEqual(env.get("OCTOHA_TASK_CAP"), "3", "given values are strings")
        self.assertNotIn("PATH", env, "None removes a variable")

    def test_parse_schema_version(self):
        self.assertEqual(harness.parse_schema_version("schema version 12\n"), 12, "plain")
        self.assertIsNone(harness.parse_schema_version("nothing"), "absent")


class PostgresFixtureTests(unittest.TestCase):
    """tests/pg.sh through the harness: start, createdb, connect."""

    @classmethod
    def setUpClass(cls):
        if harness.TEST_DB:
            raise unittest.SkipTest("OCTOHA_TEST_DB is set; the PostgreSQL fixture is not used")
        cls.pg = harness.shared_pg()

    def test_listens_on_loopback_only(self):
        self.assertTrue(harness.port_open(self.pg.port), "cluster accepts TCP on 127.0.0.1")
        conf = self.pg.psql("show listen_addresses")
        self.assertEqual(conf.strip(), "127.0.0.1", "listen_addresses")
        self.assertEqual(self.pg.psql("show unix_socket_directories").strip(), "", "no unix sockets")

    def test_fresh_databases_are_distinct_and_empty(self):
        a = self.pg.createdb()
        b = self.pg.createdb()
        self.assertNotEqual(a, b, "each call makes a new database")
        n = self.pg.psql("select count(*) from information_schema.tables where table_schema='public'", a)
        self.assertEqual(n.strip(), "0", "a fresh database has no tables")

    def test_odbc_connection_string(self):
        if not shutil.which("isql"):
            self.skipTest("isql (unixodbc) not installed")
        db = self.pg.createdb()
        for driver in (harness.PG_ODBC_DRIVER, "PostgreSQL ANSI"):
            with self.subTest(driver=driver):
                cs = self.pg.conn_str(db, driver)
                r = subprocess.run(["isql", "-b", "-v", "-k", cs], input="select 40+2\n",
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, f"isql via {cs!r}: {r.stdout} {r.stderr}")
                self.assertIn("42", r.stdout, f"query result through ODBC: {r.stdout}")

    def test_stop_and_start_again(self):
        pg = harness.PgCluster().start()
        db = pg.createdb("keepme")
        pg.stop()
        self.assertFalse(harness.port_open(pg.port), "port closed after stop")
        pg.start()
        self.assertEqual(pg.psql("select 1", db).strip(), "1", "data survives a restart")
        pg.stop()


if __name__ == "__main__":
    harness.main()
