#!/usr/bin/env python3
"""Storage paths are judged where they really lead (issue 10), on one node.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_storage_links.py

`PUT /api/configuration/storage {"Imports": "/tmp/rootlink"}` with
/tmp/rootlink -> / was accepted, verified (the probe file written to /) and
activated, while "/" itself was refused.  Now the answering node follows
every link before it judges a path (400 InvalidStoragePath naming the folder
when it leads to / or a system folder, nothing changed), and every node's own
check does the same, since a link can differ from node to node: a path that
passed and was later pointed at / fails the node's next proof.

SQLite (OCTOHA_TEST_DB is ignored: the paths are cluster-wide state).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_storage import FAST, STORAGE, StorageCase, probe_files  # noqa: E402


class StorageLinkTests(StorageCase):
    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(db=None, env=dict(FAST))
        cls.dir = harness.make_tmp_dir("links")

    def link(self, name, target):
        path = self.dir / name
        if path.is_symlink() or path.exists():
            path.unlink()
        os.symlink(target, path)
        return str(path)

    def snapshot(self):
        n = self.node
        return (self.storage(n), self.server_folders(n), self.task_count(n),
                self.events(n, "StorageChangeRequested"))

    def test_links_to_system_folders_are_refused_by_the_api(self):
        n = self.node
        self.wait_checks(n)
        cases = [
            ("Imports", self.link("rootlink", "/"), "which is the root folder /"),
            ("Artifacts", self.link("etclink", "/etc"), "inside the system folder /etc"),
            ("TaskLogs", self.link("proclink", "/proc") + "/self", "inside the system folder /proc"),
            ("Packages", self.link("usrlink", "/usr/share") + "/octoha-packages", "inside the system folder /usr"),
            ("EventExports", self.link("rel", "../../../../../../../../dev"), "inside the system folder /dev"),
            ("Imports", "/etc/octoha", "is inside the system folder /etc"),
            ("Imports", "/usr/local/octopus/Imports", "is inside the system folder /usr"),
        ]
        before = self.snapshot()
        for folder, path, words in cases:
            with self.subTest(folder=folder, path=path):
                r = self.api(n, "PUT", STORAGE, body={folder: path})
                self.assert_error(r, 400, "InvalidStoragePath", folder, f"PUT {folder}={path}")
                self.assertIn(words, r.json["ErrorMessage"], r.json)
                self.assertTrue(r.json["ErrorMessage"].startswith(folder), r.json)
        time.sleep(0.3)  # a task or switch would show within storage-check-ms
        self.assertEqual(self.snapshot(), before, "nothing changed: storage, folders, tasks, events")
        self.assertEqual(probe_files(harness.Path("/")), [], "no probe file was written to /")

    def test_an_ordinary_link_is_accepted(self):
        n = self.node
        real = harness.make_tmp_dir("shared")
        path = self.link("shared", str(real)) + "/Imports"
        r = self.put_storage(n, {"Imports": path}, wait=20)
        self.assertEqual(r.json["State"], "Success", f"a link to an ordinary folder is fine: {r.json}")
        self.wait_in_use(n, "Imports", path)
        self.assertTrue((real / "Imports").is_dir(), "the folder was made at the link's target")

    def test_path_command_judges_links_too(self):
        n = self.node
        r = self.cli_path(n, "--imports", self.link("cli-root", "/"))
        self.assertEqual(r.returncode, 2, f"refused as a usage error: {r.stdout}{r.stderr}")
        self.assertIn("which is the root folder /", r.stderr)


class NodeCheckTests(StorageCase):
    def test_a_path_pointed_at_root_later_fails_the_nodes_own_check(self):
        # A link that passed when the path was set is pointed at / later (on
        # one machine, as links differ between machines): the node's next
        # proof judges it again and refuses it without writing through it.
        n = self.solo(OCTOHA_STORAGE_REVERIFY_MS=1000)
        self.wait_checks(n)
        d = harness.make_tmp_dir("links-later")
        real = d / "real"
        real.mkdir()
        link = d / "imports"
        os.symlink(real, link)
        r = self.put_storage(n, {"Imports": str(link)}, wait=20)
        self.assertEqual(r.json["State"], "Success", f"the change: {r.json}")
        self.wait_in_use(n, "Imports", str(link))

        link.unlink()
        os.symlink("/", link)

        def failed():
            c = self.check_of(self.folder(self.storage(n), "Imports"), n)
            return c if c["Verified"] is False else None
        c = self.wait_until(failed, 10, interval=0.1, msg="the node's re-proof to refuse the link", nodes=[n])
        self.assertEqual(c["Path"], str(link))
        self.assertIn("leads to /, which is the root folder /", c["Error"] or "", c)
        self.assertIs(self.storage(n)["AllVerified"], False)
        self.assertEqual(probe_files(harness.Path("/")), [], "no probe file was written to /")


if __name__ == "__main__":
    harness.main()
