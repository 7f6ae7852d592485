#!/usr/bin/env python3
"""One node on the embedded SQLite database (the default, no OCTOHA_DB).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_single_node_sqlite.py

These tests are about the embedded default, so they ignore OCTOHA_TEST_DB.
"""

import os
import socket
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING, STORAGE_FOLDERS, Node, node_id, unique_name  # noqa: E402

import yaml  # noqa: E402

FAR_FUTURE_VERSION = 999999


class EmbeddedNodeTests(harness.OctohaTestCase):
    """One node started with only OCTOHA_DATA_DIR, OCTOHA_LISTEN and OCTOHA_NODE_NAME."""

    @classmethod
    def setUpClass(cls):
        cls.name = unique_name("solo")
        # No OCTOHA_DB, no log level; the data dir does not exist beforehand.
        cls.node = cls.start_class_node(name=cls.name, db=None, log_level=None, create_data_dir=False)

    # -- process and data dir

    def test_environment_is_minimal(self):
        self.assertEqual(
            set(self.node.env),
            {"OCTOHA_DATA_DIR", "OCTOHA_LISTEN", "OCTOHA_NODE_NAME", "OCTOHA_BOOTSTRAP_ADMIN_KEY"},
            "the node runs with nothing but data dir, listen address, name and the bootstrap Admin key",
        )

    def test_data_dir_layout(self):
        d = self.node.data_dir
        self.assertTrue((d / "octoha.db").is_file(), f"embedded database {d / 'octoha.db'} created")
        for folder in STORAGE_FOLDERS:
            self.assertTrue((d / folder).is_dir(), f"storage folder {folder} created in {d}")
        with sqlite3.connect(f"file:{d / 'octoha.db'}?mode=ro", uri=True) as con:
            tables = {r[0].lower() for r in con.execute("select name from sqlite_master where type='table'")}
        self.assertIn("schemaversions", tables, f"octoha.db holds the migrations journal (tables: {sorted(tables)})")

    # -- ping

    def test_ping(self):
        # As a load balancer asks: without an API key (ping needs none).
        r = self.api(self.node, "GET", PING, expect=200, key=None)
        j = r.json
        self.assertIsInstance(j, dict, "ping body is a JSON object")
        self.assertEqual(
            set(j),
            {"Id", "Name", "IsInMaintenanceMode", "IsOffline", "LastSeen", "MaxConcurrentTasks", "Version"},
            "ping body has exactly the contract's fields",
        )
        self.assertEqual(j["Name"], self.name, "ping Name is OCTOHA_NODE_NAME")
        self.assertEqual(j["Id"], node_id(self.name), "ping Id")
        self.assertIs(j["IsInMaintenanceMode"], False, "not in maintenance mode")
        self.assertIs(j["IsOffline"], False, "online")
        self.assert_timestamp(j["LastSeen"], "ping LastSeen")
        self.assertIsInstance(j["MaxConcurrentTasks"], int, "MaxConcurrentTasks is an integer")
        self.assertNotIsInstance(j["MaxConcurrentTasks"], bool, "MaxConcurrentTasks is not a boolean")
        self.assertEqual(j["MaxConcurrentTasks"], 5, "default task cap")
        self.assertIsInstance(j["Version"], str, "Version is a string")
        self.assertTrue(j["Version"], "Version is not empty")
        self.assertTrue(
            (r.header("Content-Type") or "").startswith("application/json"), f"ping Content-Type: {r.header('Content-Type')}"
        )

    # -- collection

    def test_list_default_page(self):
        r = self.api(self.node, "GET", NODES, expect=200)
        j = r.json
        self.assertEqual(j["ItemType"], "OctopusServerNode", "ItemType")
        self.assertEqual(j["TotalResults"], 1, "one node registered")
        self.assertEqual(j["ItemsPerPage"], 30, "default take is 30")
        self.assertEqual(j["NumberOfPages"], 1, "one page")
        self.assertEqual(j["LastPageNumber"], 0, "last page number is zero-based")
        self.assertEqual(len(j["Items"]), 1, "one item")
        self.assertIsInstance(j["Links"].get("Self"), str, "collection Links.Self")
        self.assert_node_resource(j["Items"][0], "Items[0]")
        self.assertEqual(j["Items"][0]["Name"], self.name, "the node lists itself")

    def test_list_paging_values(self):
        cases = [
            ("?skip=0&take=1", 1, 1, 1),
            ("?take=1000", 1000, 1, 1),
            ("?skip=1", 30, 0, 1),
            ("?skip=2147483647&take=5", 5, 0, 1),
        ]
        for query, per_page, n_items, pages in cases:
            with self.subTest(query=query):
                j = self.api(self.node, "GET", NODES + query, expect=200).json
                self.assertEqual(j["ItemsPerPage"], per_page, f"{query}: ItemsPerPage is the effective take")
                self.assertEqual(len(j["Items"]), n_items, f"{query}: items on the page")
                self.assertEqual(j["TotalResults"], 1, f"{query}: TotalResults counts all pages")
                self.assertEqual(j["NumberOfPages"], pages, f"{query}: NumberOfPages")
                self.assertEqual(j["LastPageNumber"], pages - 1, f"{query}: LastPageNumber")

    def test_list_paging_bounds(self):
        cases = [
            ("?skip=-1", "skip"),
            ("?skip=abc", "skip"),
            ("?skip=1.5", "skip"),
            ("?skip=2147483648", "skip"),
            ("?take=0", "take"),
            ("?take=1001", "take"),
            ("?take=-5", "take"),
            ("?take=abc", "take"),
            ("?skip=0&take=99999999999999999999", "take"),
        ]
        for query, field in cases:
            with self.subTest(query=query):
                r = self.api(self.node, "GET", NODES + query, expect=400)
                self.assert_error(r, 400, "ValidationFailed", field, f"GET {NODES}{query}")

    def test_all(self):
        r = self.api(self.node, "GET", NODES + "/all", expect=200)
        self.assertIsInstance(r.json, list, "/all is a JSON array")
        self.assertEqual([n["Name"] for n in r.json], [self.name], "/all lists exactly this node")
        self.assert_node_resource(r.json[0], "/all[0]")

    def test_summary(self):
        r = self.api(self.node, "GET", NODES + "/summary", expect=200)
        nodes = r.json.get("Nodes")
        self.assertIsInstance(nodes, list, "summary.Nodes is a list")
        self.assertEqual(len(nodes), 1, "one node in the summary")
        s = nodes[0]
        self.assertEqual(
            set(s),
            {"Id", "Name", "MaxConcurrentTasks", "IsInMaintenanceMode", "LastSeen", "IsOffline", "RunningTaskCount", "Version"},
            "summary item fields",
        )
        self.assertEqual(s["Name"], self.name, "summary Name")
        self.assertEqual(s["Id"], node_id(self.name), "summary Id")
        self.assertEqual(s["RunningTaskCount"], 0, "no tasks running")
        self.assertIs(s["IsOffline"], False, "summary IsOffline")
        self.assert_timestamp(s["LastSeen"], "summary LastSeen")

    def test_get_by_id(self):
        r = self.api(self.node, "GET", f"{NODES}/{node_id(self.name)}", expect=200)
        n = r.json
        self.assert_node_resource(n, "node")
        self.assertEqual(n["Name"], self.name, "Name")
        self.assertEqual(n["Platform"], "linux", "default platform")
        self.assertEqual(n["CommunicationsPort"], 10943, "default comms port")
        self.assertEqual(n["MaxConcurrentTasks"], 5, "default task cap")
        self.assertIs(n["IsOffline"], False, "IsOffline")
        self.assertIs(n["IsInMaintenanceMode"], False, "IsInMaintenanceMode")
        host = socket.gethostname()
        self.assertEqual(n["CommunicationsAddress"], host, "default comms address is the host name")
        self.assertEqual(n["PublicUrl"], f"http://{host}:{self.node.port}", "default public URL")
        self.assertEqual(n["Links"]["Self"], f"{NODES}/{node_id(self.name)}", "Links.Self is the resource's path")
        ping = self.api(self.node, "GET", PING, expect=200).json
        self.assertEqual(n["Version"], ping["Version"], "same Version in ping and node")

    def test_get_unknown_id(self):
        r = self.api(self.node, "GET", f"{NODES}/{node_id('no-such-node')}", expect=404)
        self.assert_error(r, 404, "NotFound", what="unknown node id")

    def test_malformed_ids(self):
        for bad in (
            "Machines-1",
            "OctopusServerNodes-",
            "OctopusServerNodes--dash-first",
            "OctopusServerNodes-" + "a" * 65,
            "OctopusServerNodes-a%20b",
            "OctopusServerNodes-a*b",
        ):
            for method in ("GET", "DELETE"):
                with self.subTest(id=bad, method=method):
                    r = self.api(self.node, method, f"{NODES}/{bad}", expect=400)
                    self.assert_error(r, 400, "ValidationFailed", "id", f"{method} malformed id {bad}")

    def test_delete_live_node_conflicts(self):
        r = self.api(self.node, "DELETE", f"{NODES}/{node_id(self.name)}", expect=409)
        self.assert_error(r, 409, "NodeIsOnline", what="DELETE live node")
        self.api(self.node, "GET", f"{NODES}/{node_id(self.name)}", expect=200)

    def test_delete_unknown_id(self):
        r = self.api(self.node, "DELETE", f"{NODES}/{node_id('no-such-node')}", expect=404)
        self.assert_error(r, 404, "NotFound", what="DELETE unknown node")

    # -- routing

    def test_unknown_routes(self):
        for path in ("/api/nosuch", "/nosuch", "/api/octopusservernodes/ping/extra", "/api/octopusservernodes/x/y"):
            with self.subTest(path=path):
                r = self.api(self.node, "GET", path, expect=404)
                self.assert_error(r, 404, "NotFound", what=f"GET {path}")

    def test_wrong_methods(self):
        cases = [
            ("POST", PING, {"GET"}),
            ("PUT", NODES, {"GET"}),
            ("POST", NODES + "/summary", {"GET"}),
            ("PATCH", f"{NODES}/{node_id(self.name)}", {"GET", "DELETE"}),
            ("POST", "/api/openapi.yaml", {"GET"}),
        ]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                r = self.api(self.node, method, path, expect=405)
                self.assert_error(r, 405, "MethodNotAllowed", what=f"{method} {path}")
                allow = r.header("Allow")
                self.assertIsNotNone(allow, f"{method} {path}: 405 carries an Allow header")
                methods = {m.strip().upper() for m in allow.split(",")}
                self.assertTrue(allowed <= methods, f"{method} {path}: Allow {allow!r} lists {sorted(allowed)}")
                self.assertNotIn(method, methods, f"{method} {path}: Allow {allow!r} does not list the refused method")

    def test_openapi_yaml_served(self):
        r = self.node.request("GET", "/api/openapi.yaml")
        self.assertEqual(r.status, 200, f"GET /api/openapi.yaml: {r.describe(200)}")
        self.assertTrue(
            (r.header("Content-Type") or "").startswith("application/yaml"),
            f"Content-Type is application/yaml, got {r.header('Content-Type')!r}",
        )
        served = yaml.safe_load(r.body.decode("utf-8"))
        with open(harness.SPEC_PATH, encoding="utf-8") as f:
            repo = yaml.safe_load(f)
        self.assertEqual(served, repo, "served spec equals the repository's openapi.yaml")

    # -- logs

    def test_request_log_lines(self):
        self.api(self.node, "GET", PING, expect=200)  # info level: must not be logged
        marker = f"{NODES}/{node_id('log-marker-' + unique_name('x'))}"
        self.api(self.node, "GET", marker, expect=404)
        self.api(self.node, "GET", NODES + "/summary", expect=200)

        def records():
            recs = [r for r in harness.log_records(self.node.log) if r.get("msg") == "request"]
            return recs if any(r.get("path") == NODES + "/summary" for r in recs) else None

        recs = self.wait_until(records, 10, msg="request log line for /summary on stderr")
        by_path = {r.get("path"): r for r in recs}
        for path, status in ((marker, "404"), (NODES + "/summary", "200")):
            rec = by_path.get(path)
            self.assertIsNotNone(rec, f"request to {path} logged; request records: {recs[-5:]}")
            for key in ("ts", "level", "rid", "method", "path", "status", "dur_ms"):
                self.assertIn(key, rec, f"request log line for {path} has {key}: {rec}")
            self.assertEqual(rec["method"], "GET", f"method logged for {path}")
            self.assertEqual(rec["status"], status, f"status logged for {path}")
            self.assertTrue(isinstance(rec["rid"], str) and rec["rid"], f"rid is not empty: {rec}")
            self.assertGreaterEqual(float(rec["dur_ms"]), 0.0, f"dur_ms is a number: {rec}")
        self.assertNotEqual(by_path[marker]["rid"], by_path[NODES + "/summary"]["rid"], "each request has its own rid")
        self.assertFalse(
            [r for r in recs if r.get("path") == PING],
            "ping requests are not logged at the default (info) level",
        )

    def test_ready_line(self):
        ready = [r for r in harness.log_records(self.node.log) if r.get("msg") == "ready"]
        self.assertEqual(len(ready), 1, f"exactly one msg=ready line\n{self.node.log_tail()}")


class LifecycleTests(harness.OctohaTestCase):
    """Each test runs its own node(s) on an embedded database."""

    def test_sigterm_and_restart(self):
        name = unique_name("restart")
        node = self.start_node(name=name, db=None)
        first = self.api(node, "GET", f"{NODES}/{node_id(name)}", expect=200).json
        rc = node.terminate()
        self.assertEqual(rc, 0, f"SIGTERM exits 0\n{node.log_tail()}")
        self.assertFalse(harness.port_open(node.port), "listen port closed after exit")
        node.restart()
        all_nodes = self.api(node, "GET", NODES + "/all", expect=200).json
        self.assertEqual([n["Name"] for n in all_nodes], [name], "restarted node sees its own single row")
        again = all_nodes[0]
        self.assertIs(again["IsOffline"], False, "restarted node is online")
        self.assertGreater(again["StartedAt"], first["StartedAt"], "StartedAt moves on at restart")
        self.assertEqual(node.terminate(), 0, f"second SIGTERM exits 0\n{node.log_tail()}")

    def test_database_cli(self):
        name = unique_name("cli")
        node = self.start_node(name=name, db=None)
        self.assertEqual(node.terminate(), 0, f"SIGTERM exits 0\n{node.log_tail()}")
        env = {"OCTOHA_DATA_DIR": str(node.data_dir)}
        up = harness.run_cli(["database", "--upgrade"], env)
        self.assertEqual(up.returncode, 0, f"database --upgrade exit code; stderr: {up.stderr}")
        v = harness.parse_schema_version(up.stdout)
        self.assertIsNotNone(v, f"database --upgrade prints 'schema version N': {up.stdout!r}")
        self.assertGreaterEqual(v, 1, "a migrated database has a positive schema version")
        st = harness.run_cli(["database", "--status"], env)
        self.assertEqual(st.returncode, 0, f"database --status exit code; stderr: {st.stderr}")
        self.assertEqual(harness.parse_schema_version(st.stdout), v, f"--status agrees with --upgrade: {st.stdout!r}")
        again = harness.run_cli(["database", "--upgrade"], env)
        self.assertEqual(again.returncode, 0, f"second --upgrade exit code; stderr: {again.stderr}")
        self.assertEqual(harness.parse_schema_version(again.stdout), v, "upgrade is idempotent")
        node.restart()  # still starts on the upgraded database

    def test_help_and_version(self):
        for args in (["--help"], ["run", "--help"]):
            with self.subTest(args=args):
                r = harness.run_cli(args)
                self.assertEqual(r.returncode, 0, f"{args} exit code; stderr: {r.stderr}")
                self.assertTrue((r.stdout + r.stderr).strip(), f"{args} prints something")
        r = harness.run_cli(["run", "--help"])
        self.assertIn("--listen", r.stdout + r.stderr, "run --help lists the flags")
        ver = harness.run_cli(["version"])
        self.assertEqual(ver.returncode, 0, f"version exit code; stderr: {ver.stderr}")
        node = self.start_node(db=None)
        pv = self.api(node, "GET", PING, expect=200).json["Version"]
        self.assertIn(pv, ver.stdout, f"`version` prints the Version that ping reports ({pv!r})")

    def _migrated_data_dir(self):
        d = harness.make_tmp_dir("migrated") / "data"
        d.mkdir()
        r = harness.run_cli(["database", "--upgrade"], {"OCTOHA_DATA_DIR": str(d)})
        self.assertEqual(r.returncode, 0, f"database --upgrade on a fresh data dir; stderr: {r.stderr}")
        self.assertTrue((d / "octoha.db").is_file(), "database --upgrade creates the embedded database")
        return d

    def test_schema_newer_than_binary_refused(self):
        d = self._migrated_data_dir()
        with sqlite3.connect(d / "octoha.db") as con:
            con.execute("insert into SchemaVersions (Version, Name) values (?, ?)", (FAR_FUTURE_VERSION, "from-the-future"))
        node = Node(db=None, data_dir=d)
        self.track(node)
        node.start(wait=False)
        self.expect_exit(node, 3, "newer")

    def test_schema_older_with_upgrade_never_refused(self):
        node = Node(db=None, env={"OCTOHA_DB_UPGRADE": "never"})
        self.track(node)
        node.start(wait=False)
        self.expect_exit(node, 3, "upgrade")

    def test_upgrade_never_on_current_schema_starts(self):
        d = self._migrated_data_dir()
        node = self.start_node(db=None, data_dir=d, env={"OCTOHA_DB_UPGRADE": "never"})
        self.api(node, "GET", PING, expect=200)

    def test_task_cap(self):
        name = unique_name("cap")
        node = self.start_node(name=name, db=None, env={"OCTOHA_TASK_CAP": "17"})
        self.assertEqual(self.api(node, "GET", PING, expect=200).json["MaxConcurrentTasks"], 17, "ping MaxConcurrentTasks")
        n = self.api(node, "GET", f"{NODES}/{node_id(name)}", expect=200).json
        self.assertEqual(n["MaxConcurrentTasks"], 17, "node MaxConcurrentTasks")
        s = self.api(node, "GET", NODES + "/summary", expect=200).json["Nodes"][0]
        self.assertEqual(s["MaxConcurrentTasks"], 17, "summary MaxConcurrentTasks")

    def test_configured_values_reflected(self):
        name = unique_name("custom")
        env = {
            "OCTOHA_PUBLIC_URL": "https://octo.example.test:8443",
            "OCTOHA_COMMS_ADDRESS": "comms.example.test",
            "OCTOHA_COMMS_PORT": "10944",
            "OCTOHA_PLATFORM": "windows",
            "OCTOHA_DRAINING_STATUS": "503",
            "OCTOHA_HTTP_THREADS": "4",
            "OCTOHA_DB_POOL_SIZE": "2",
            "OCTOHA_HEARTBEAT_MS": "200",
            "OCTOHA_OFFLINE_TIMEOUT_MS": "5000",
        }
        node = self.start_node(name=name, db=None, env=env)
        n = self.api(node, "GET", f"{NODES}/{node_id(name)}", expect=200).json
        self.assertEqual(n["PublicUrl"], env["OCTOHA_PUBLIC_URL"], "PublicUrl from OCTOHA_PUBLIC_URL")
        self.assertEqual(n["CommunicationsAddress"], env["OCTOHA_COMMS_ADDRESS"], "CommunicationsAddress")
        self.assertEqual(n["CommunicationsPort"], 10944, "CommunicationsPort")
        self.assertEqual(n["Platform"], "windows", "Platform")
        self.assertIs(n["IsOffline"], False, "online")

    def test_config_precedence(self):
        """flags > environment > config file > defaults."""
        cfg = harness.make_tmp_dir("cfg") / "octoha.conf"
        cfg.write_text("# comment\ntask-cap = 9\ncomms-port = 12000\n")
        cases = [
            ({}, [], 9),
            ({"OCTOHA_TASK_CAP": "11"}, [], 11),
            ({"OCTOHA_TASK_CAP": "11"}, ["--task-cap", "13"], 13),
        ]
        for env, args, want in cases:
            with self.subTest(env=env, args=args):
                name = unique_name("cfg")
                node = self.start_node(name=name, db=None, env=dict(env, OCTOHA_CONFIG=str(cfg)), args=args)
                n = self.api(node, "GET", f"{NODES}/{node_id(name)}", expect=200).json
                self.assertEqual(n["MaxConcurrentTasks"], want, f"task cap with env={env} args={args}")
                self.assertEqual(n["CommunicationsPort"], 12000, "comms-port from the config file")
                node.terminate()
        name = unique_name("flag")
        node = self.start_node(name=name, db=None, args=["--config", str(cfg), "--comms-port", "12001"])
        n = self.api(node, "GET", f"{NODES}/{node_id(name)}", expect=200).json
        self.assertEqual(n["CommunicationsPort"], 12001, "--comms-port flag beats the config file")
        self.assertEqual(n["MaxConcurrentTasks"], 9, "--config flag names the config file")

    def test_debug_level_logs_ping(self):
        node = self.start_node(db=None, log_level="debug")
        self.api(node, "GET", PING, expect=200)
        self.wait_until(
            lambda: [r for r in harness.log_records(node.log) if r.get("msg") == "request" and r.get("path") == PING],
            10,
            msg="ping request logged at debug level",
        )

    def test_bad_configuration_exits_2(self):
        bad_env = [
            {"OCTOHA_DRAINING_STATUS": "7"},
            {"OCTOHA_DRAINING_STATUS": "200"},
            {"OCTOHA_TASK_CAP": "abc"},
            {"OCTOHA_TASK_CAP": "-1"},
            {"OCTOHA_PLATFORM": "beos"},
            {"OCTOHA_LISTEN": "not-an-address"},
            {"OCTOHA_LISTEN": "127.0.0.1:99999"},
            {"OCTOHA_DB_UPGRADE": "sometimes"},
            {"OCTOHA_LOG_LEVEL": "loud"},
            {"OCTOHA_NODE_NAME": "-starts-with-dash"},
            {"OCTOHA_NODE_NAME": "has space"},
            {"OCTOHA_NODE_NAME": "n" * 65},
            {"OCTOHA_HEARTBEAT_MS": "abc"},
            {"OCTOHA_OFFLINE_TIMEOUT_MS": "soon"},
            {"OCTOHA_MAX_BODY_BYTES": "big"},
            {"OCTOHA_COMMS_PORT": "70000"},
            {"OCTOHA_HTTP_THREADS": "many"},
            {"OCTOHA_DB_POOL_SIZE": "x"},
            {"OCTOHA_CONFIG": "/nonexistent/octoha.conf"},
        ]
        for env in bad_env:
            with self.subTest(env=env):
                name = env.get("OCTOHA_NODE_NAME", unique_name("bad"))
                node = Node(name=name, db=None, env=env)
                self.track(node)
                node.start(wait=False)
                self.expect_exit(node, 2, timeout=20)
                self.assertTrue(node.log.strip(), f"{env}: a configuration error says why on stderr")
        for args in (["--no-such-flag"], ["--task-cap"], ["--task-cap", "x"], ["--draining-status", "7"]):
            with self.subTest(args=args):
                node = Node(db=None, args=args)
                self.track(node)
                node.start(wait=False)
                self.expect_exit(node, 2, timeout=20)
        r = harness.run_cli(["no-such-command"])
        self.assertEqual(r.returncode, 2, f"unknown subcommand exits 2; stderr: {r.stderr}")


if __name__ == "__main__":
    harness.main()
