#!/usr/bin/env python3
"""The package repository across two nodes on one PostgreSQL database with
a shared Packages folder (issue 11): uploads of one version racing on both
nodes with FailIfExists give exactly one 201, one 409 and one file; with
OverwriteExisting one 201 and one 200, one file; a package uploaded
through one node is listed and downloaded through the other."""
import hashlib
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_octopus_client import share_folders  # noqa: E402
from test_packages import PACKAGES, SPACE, PackageCase, multipart, mp_headers  # noqa: E402
from test_tasks_sqlite import FAST  # noqa: E402

ROUNDS = 5


class TwoNodePackageTests(PackageCase):
    def setUp(self):
        harness.require_postgres()
        self.db = harness.cluster_db(self, need_empty=True)
        env = dict(FAST, OCTOHA_STORAGE_CHECK_MS="200")
        self.a = self.start_node(db=self.db, env=env)
        self.b = self.start_node(db=self.db, env=env)
        self.shared = harness.make_tmp_dir("shared")
        share_folders(self, self.a, [self.a, self.b], self.shared)

    def test_racing_uploads_one_wins_one_file(self):
        for rnd in range(ROUNDS):
            name = f"Race.{rnd}.0.0.zip"
            bodies = [multipart([("fileToUpload", name, os.urandom(4 * 1024 * 1024))]) for _ in range(2)]
            results = [None, None]
            gate = threading.Barrier(2)

            def upload(i, node):
                gate.wait()
                results[i] = node.request("POST", f"{PACKAGES}/raw?overwriteMode=FailIfExists",
                                          body=bodies[i], headers=mp_headers(), timeout=60)
            threads = [threading.Thread(target=upload, args=(i, n)) for i, n in enumerate((self.a, self.b))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            statuses = sorted(r.status for r in results)
            self.assertEqual(statuses, [201, 409], f"round {rnd}: {[r.describe(300) for r in results]}")
            loser = [r for r in results if r.status == 409][0]
            self.assert_error(loser, 409, "PackageExists", what=f"round {rnd}")
            winner = [r for r in results if r.status == 201][0].json
            self.wait_no_temp(self.a)
            files = [f for f in self.files(self.a) if f.startswith(f"{SPACE}/Race/Race.{rnd}.0.0_")]
            self.assertEqual(len(files), 1, f"round {rnd}: exactly one file: {files}")
            stored = (self.packages_dir(self.a) / files[0]).read_bytes()
            self.assertEqual(hashlib.sha1(stored).hexdigest(), winner["Hash"], "the file is the winner's")
            listed = self.listing(self.b, f"?nuGetPackageId=Race&filter=Race")
            self.assertEqual(len([i for i in listed["Items"] if i["Version"] == f"{rnd}.0.0"]), 1)

    def test_racing_overwrites_both_succeed_one_file(self):
        """OverwriteExisting on both nodes at once: one creates (201), the
        other replaces it (200); one file, the row's.  (Before the fix the
        second insert's duplicate was answered 409.)"""
        for rnd in range(ROUNDS):
            name = f"Over.{rnd}.0.0.zip"
            bodies = [multipart([("fileToUpload", name, os.urandom(2 * 1024 * 1024))]) for _ in range(2)]
            results = [None, None]
            gate = threading.Barrier(2)

            def upload(i, node):
                gate.wait()
                results[i] = node.request("POST", f"{PACKAGES}/raw?overwriteMode=OverwriteExisting",
                                          body=bodies[i], headers=mp_headers(), timeout=60)
            threads = [threading.Thread(target=upload, args=(i, n)) for i, n in enumerate((self.a, self.b))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(sorted(r.status for r in results), [200, 201],
                             f"round {rnd}: {[r.describe(300) for r in results]}")
            self.wait_no_temp(self.a)
            files = [f for f in self.files(self.a) if f.startswith(f"{SPACE}/Over/Over.{rnd}.0.0_")]
            self.assertEqual(len(files), 1, f"round {rnd}: one file: {files}")
            row = self.api(self.b, "GET", f"{PACKAGES}/packages-Over.{rnd}.0.0", expect=200).json
            stored = (self.packages_dir(self.a) / files[0]).read_bytes()
            self.assertEqual(hashlib.sha1(stored).hexdigest(), row["Hash"], "the file is the row's")

    def test_uploaded_through_one_node_served_by_the_other(self):
        data = os.urandom(2 * 1024 * 1024 + 17)
        p = self.push(self.a, "Shared.Pkg.2.1.0.tgz", data, expect=201).json
        listed = self.listing(self.b, "?filter=shared.pkg")
        self.assertEqual([i["Id"] for i in listed["Items"]], [p["Id"]])
        r = self.b.request("GET", f"{PACKAGES}/{p['Id']}/raw", timeout=30)
        self.assertEqual((r.status, len(r.body)), (200, len(data)))
        self.assertEqual(r.body, data)
        r = self.b.request("GET", f"{PACKAGES}/{p['Id']}/raw", headers={"Range": "bytes=1000-1999"})
        self.assertEqual((r.status, r.body), (206, data[1000:2000]))
        self.api(self.b, "DELETE", f"{PACKAGES}/{p['Id']}", expect=200)
        self.api(self.a, "GET", f"{PACKAGES}/{p['Id']}", expect=404)
        self.assertEqual([f for f in self.files(self.a) if "Shared.Pkg" in f], [])


if __name__ == "__main__":
    harness.main()
