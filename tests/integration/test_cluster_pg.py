#!/usr/bin/env python3
"""Several nodes on one PostgreSQL database (or on OCTOHA_TEST_DB when set).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_cluster_pg.py

One throwaway PostgreSQL cluster (tests/pg.sh) serves the whole file, with a
fresh database per test; the database-outage test runs its own cluster.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING, Node, node_id, unique_name  # noqa: E402

HEARTBEAT_MS = 250
OFFLINE_MS = 2000
FAST = {"OCTOHA_HEARTBEAT_MS": str(HEARTBEAT_MS), "OCTOHA_OFFLINE_TIMEOUT_MS": str(OFFLINE_MS)}
MARGIN_S = 3.0  # scheduling slack on top of the offline timeout


def setUpModule():
    harness.require_postgres()


class ClusterTestCase(harness.OctohaTestCase):
    def setUp(self):
        self.db = harness.cluster_db(self)
        self.fresh = not harness.TEST_DB  # a database with no other nodes in it

    def node(self, name=None, env=None, wait=True, **kw):
        """Start a node on this test's database with fast heartbeat settings."""
        return self.start_node(name=name or unique_name("n"), db=self.db, env=dict(FAST, **(env or {})), wait=wait, **kw)

    def get_node(self, observer, name, expect=200):
        return self.api(observer, "GET", f"{NODES}/{node_id(name)}", expect=expect).json

    def names(self, items):
        return [n["Name"] for n in items]

    def wait_offline(self, observer, name, timeout):
        return self.wait_until(
            lambda: self.get_node(observer, name)["IsOffline"] is True,
            timeout,
            interval=0.05,
            msg=f"{observer.name} to see {name} offline",
            nodes=[observer],
        )


class MembershipTests(ClusterTestCase):
    def test_nodes_see_each_other(self):
        a, b = self.node(), self.node()
        mine = sorted([a.name, b.name])
        for observer in (a, b):
            with self.subTest(observer=observer.name):
                all_nodes = self.api(observer, "GET", NODES + "/all", expect=200).json
                names = self.names(all_nodes)
                self.assertEqual(names, sorted(names), f"/all is ordered by Name: {names}")
                self.assertEqual([n for n in names if n in mine], mine, f"/all from {observer.name} lists both nodes")
                for n in all_nodes:
                    if n["Name"] in mine:
                        self.assert_node_resource(n, f"/all item {n['Name']}")
                        self.assertIs(n["IsOffline"], False, f"{n['Name']} online in /all of {observer.name}")
                summary = self.api(observer, "GET", NODES + "/summary", expect=200).json["Nodes"]
                snames = self.names(summary)
                self.assertEqual(snames, sorted(snames), f"/summary is ordered by Name: {snames}")
                self.assertEqual([n for n in snames if n in mine], mine, f"/summary from {observer.name} lists both nodes")
                other = b if observer is a else a
                n = self.get_node(observer, other.name)
                self.assertEqual(n["PublicUrl"], f"http://{socket.gethostname()}:{other.port}",
                                 f"{observer.name} sees {other.name}'s own PublicUrl")

    def test_paging_across_nodes(self):
        if not self.fresh:
            self.skipTest("exact paging counts need an empty database; OCTOHA_TEST_DB is set")
        a, b, c = self.node(), self.node(), self.node()
        mine = sorted([a.name, b.name, c.name])
        j = self.api(a, "GET", NODES + "?skip=0&take=2", expect=200).json
        self.assertEqual((j["TotalResults"], j["ItemsPerPage"], j["NumberOfPages"], j["LastPageNumber"]), (3, 2, 2, 1),
                         "TotalResults, ItemsPerPage, NumberOfPages, LastPageNumber for 3 nodes, take=2")
        self.assertEqual(self.names(j["Items"]), mine[:2], "first page ordered by Name")
        j = self.api(b, "GET", NODES + "?skip=2&take=2", expect=200).json
        self.assertEqual(self.names(j["Items"]), mine[2:], "second page")
        j = self.api(c, "GET", NODES + "?skip=1&take=1", expect=200).json
        self.assertEqual(self.names(j["Items"]), mine[1:2], "skip=1&take=1")
        self.assertEqual((j["NumberOfPages"], j["LastPageNumber"]), (3, 2), "3 pages of one")

    def test_heartbeat_moves_last_seen(self):
        a, b = self.node(), self.node()
        first = self.get_node(a, b.name)["LastSeen"]
        self.wait_until(lambda: self.get_node(a, b.name)["LastSeen"] > first, 4 * HEARTBEAT_MS / 1000 + MARGIN_S,
                        msg=f"{b.name}'s LastSeen to advance (heartbeat {HEARTBEAT_MS} ms)")


class OfflineTests(ClusterTestCase):
    def test_kill9_goes_offline_then_delete(self):
        a, b = self.node(), self.node()
        r = self.api(a, "DELETE", f"{NODES}/{node_id(b.name)}", expect=409)
        self.assert_error(r, 409, "NodeIsOnline", what="DELETE of a live peer")

        b.kill()
        t_kill = time.monotonic()
        first = self.get_node(a, b.name)
        if time.monotonic() - t_kill < 1.0:
            self.assertIs(first["IsOffline"], False,
                          "right after kill -9 the peer still counts as online (only the offline timeout can tell)")
        self.wait_offline(a, b.name, OFFLINE_MS / 1000 + MARGIN_S)
        elapsed = time.monotonic() - t_kill
        self.assertLessEqual(elapsed, OFFLINE_MS / 1000 + MARGIN_S, f"offline after {elapsed:.2f}s")

        summary = {n["Name"]: n for n in self.api(a, "GET", NODES + "/summary", expect=200).json["Nodes"]}
        self.assertIs(summary[b.name]["IsOffline"], True, "summary agrees that the killed node is offline")
        self.assertIs(summary[a.name]["IsOffline"], False, "the observer itself is online")

        r = self.api(a, "DELETE", f"{NODES}/{node_id(b.name)}", expect=204)
        self.assertEqual(r.body, b"", "204 has no body")
        r = self.api(a, "GET", f"{NODES}/{node_id(b.name)}", expect=404)
        self.assert_error(r, 404, "NotFound", what="GET deleted node")
        r = self.api(a, "DELETE", f"{NODES}/{node_id(b.name)}", expect=404)
        self.assert_error(r, 404, "NotFound", what="DELETE deleted node again")
        names = self.names(self.api(a, "GET", NODES + "/all", expect=200).json)
        self.assertNotIn(b.name, names, "deleted node gone from /all")
        self.assertIn(a.name, names, "observer still in /all")

    def test_sigterm_goes_offline_immediately(self):
        slow = {"OCTOHA_OFFLINE_TIMEOUT_MS": "10000"}  # so "immediately" is unmistakable
        a, b = self.node(env=slow), self.node(env=slow)
        self.assertIs(self.get_node(a, b.name)["IsOffline"], False, "peer online before SIGTERM")
        rc = b.terminate()
        t_exit = time.monotonic()
        self.assertEqual(rc, 0, f"SIGTERM exits 0\n{b.log_tail()}")
        self.wait_offline(a, b.name, 2.0)
        self.assertLess(time.monotonic() - t_exit, 2.0, "offline well before the 10 s offline timeout")
        # A cleanly stopped node can be removed, and its name is free at once.
        c = self.node(name=b.name, env=slow)
        self.assertIs(self.get_node(a, c.name)["IsOffline"], False, "same name started again after a clean stop")
        self.assertEqual(c.terminate(), 0, f"SIGTERM exits 0\n{c.log_tail()}")
        self.wait_offline(a, c.name, 2.0)
        self.api(a, "DELETE", f"{NODES}/{node_id(c.name)}", expect=204)


class StartRefusalTests(ClusterTestCase):
    def test_duplicate_name_refused_while_live(self):
        name = unique_name("dup")
        first = self.node(name=name)
        observer = self.node()
        second = self.node(name=name, wait=False)
        self.expect_exit(second, 3, "in use")
        r = self.api(first, "GET", PING, expect=200)
        self.assertEqual(r.json["Name"], name, "the first node still serves")
        before = self.get_node(observer, name)
        self.assertIs(before["IsOffline"], False, "the first node is still online")

        first.kill()
        self.wait_offline(observer, name, OFFLINE_MS / 1000 + MARGIN_S)
        third = self.node(name=name)
        after = self.get_node(observer, name)
        self.assertIs(after["IsOffline"], False, "the name is taken again by the new node")
        self.assertGreater(after["StartedAt"], before["StartedAt"], "StartedAt is the new node's")
        self.assertEqual(after["PublicUrl"].rsplit(":", 1)[-1], str(third.port), "the row now describes the new node")

    def test_platform_mismatch_refused(self):
        linux = self.node()
        windows = self.node(env={"OCTOHA_PLATFORM": "windows"}, wait=False)
        self.expect_exit(windows, 3, "platform")
        self.api(linux, "GET", PING, expect=200)
        names = self.names(self.api(linux, "GET", NODES + "/all", expect=200).json)
        self.assertNotIn(windows.name, names, "the refused node did not register")


class ConcurrentUpgradeTests(harness.OctohaTestCase):
    def test_two_upgrades_at_once(self):
        for round_no in range(3):
            db = harness.cluster_db(self, need_empty=True)
            env = {"OCTOHA_DB": db}
            procs = []
            for _ in range(2):
                env_i = dict(env, OCTOHA_DATA_DIR=str(harness.make_tmp_dir("upgrade")))
                procs.append(harness.spawn_cli(["database", "--upgrade"], env_i))
            results = []
            for p in procs:
                try:
                    out, err = p.communicate(timeout=120)
                except Exception:
                    p.kill()
                    raise
                results.append((p.returncode, out, err))
            versions = []
            for i, (rc, out, err) in enumerate(results):
                self.assertEqual(rc, 0, f"round {round_no}: upgrade #{i} exit code; stdout {out!r} stderr {err!r}")
                v = harness.parse_schema_version(out)
                self.assertIsNotNone(v, f"round {round_no}: upgrade #{i} prints the schema version: {out!r}")
                versions.append(v)
            self.assertEqual(versions[0], versions[1], f"round {round_no}: both report the same schema version")
            st = harness.run_cli(["database", "--status"], env)
            self.assertEqual(st.returncode, 0, f"database --status: {st.stderr}")
            self.assertEqual(harness.parse_schema_version(st.stdout), versions[0], f"--status agrees: {st.stdout!r}")
        # The concurrently migrated schema is complete: a node runs on it without upgrading.
        node = self.start_node(db=db, env=dict(FAST, OCTOHA_DB_UPGRADE="never"))
        self.api(node, "GET", PING, expect=200)


class DatabaseOutageTests(harness.OctohaTestCase):
    """Stops and restarts PostgreSQL under a node: needs a cluster of its own."""

    def setUp(self):
        if harness.TEST_DB:
            self.skipTest("stops the database server; not done to the shared OCTOHA_TEST_DB")
        self.pg = harness.PgCluster().start()
        self.addCleanup(self.pg.stop, quiet=True)

    def test_database_down_then_back(self):
        name = unique_name("outage")
        node = self.start_node(name=name, db=self.pg.fresh_db(), env=FAST)
        self.api(node, "GET", PING, expect=200)
        self.api(node, "GET", NODES, expect=200)

        self.pg.stop()
        t_stop = time.monotonic()
        r = self.wait_until(lambda: (lambda r: r if r.status == 503 else None)(node.ping()), 10,
                            msg="ping to answer 503 once the database is down")
        self.check_spec("GET", PING, r)
        self.assertEqual(r.json["Name"], name, "a 503 ping still describes the node")
        r = self.wait_until(lambda: (lambda r: r if r.status == 503 else None)(node.get(NODES)), 10,
                            msg="/api/octopusservernodes to answer 503 while the database is down")
        self.check_spec("GET", NODES, r)
        self.assert_error(r, 503, "DatabaseUnavailable", what="list while the database is down")
        r = self.api(node, "GET", NODES + "/all", expect=503)
        self.assert_error(r, 503, "DatabaseUnavailable", what="/all while the database is down")
        self.assertLess(time.monotonic() - t_stop, 20, "the outage was noticed within a few seconds")
        self.assertIsNone(node.proc.poll(), f"the node did not exit during the outage\n{node.log_tail()}")

        self.pg.start()
        self.wait_until(lambda: node.ping().status == 200, 30, interval=0.1,
                        msg="ping back to 200 after PostgreSQL restarts")

        def back_online():
            r = node.get(NODES + "/all")
            if r.status != 200:
                return None
            me = [n for n in r.json if n["Name"] == name]
            return me if me and me[0]["IsOffline"] is False else None

        me = self.wait_until(back_online, 30, interval=0.1,
                             msg="/all back to 200 and listing the node online after PostgreSQL restarts")
        self.assertEqual(len(me), 1, "the node's row survived the outage")
        self.api(node, "GET", NODES, expect=200)
        self.assertEqual(node.terminate(), 0, f"SIGTERM exits 0 after the outage\n{node.log_tail()}")


if __name__ == "__main__":
    harness.main()
