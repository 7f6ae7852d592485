#!/usr/bin/env python3
"""Audit event archiving to <data-dir>/EventExports (one SQLite node).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_archive.py

Nodes run with event-retention-hours 0 (every event older than "now" is due)
and archive-every-ms at its maximum, so housekeeping's only own
ArchiveEvents task is the one right after start; the tests wait for it.
Checked: POST /api/events/archives?waitSeconds=10 moves events into
events-YYYY-MM-DD.jsonl (one JSON object per line) with a matching .sha256
file, deletes them from the database, archiving twice adds no duplicates,
GET /api/events/archives lists the files with their checksum; and a crash
(OCTOHA_FAULT_INJECT=archive-after-write, exit 70) between the write and
the delete loses nothing and duplicates nothing once the node is restarted.
"""

import collections
import datetime
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_webhooks as wh  # noqa: E402  (FAST timings; its tests are not collected here)

ARCHIVES = "/api/events/archives"
EVENTS = "/api/events"
TASKS = "/api/tasks"
FILE_RE = re.compile(r"^events-(\d{4}-\d{2}-\d{2})\.jsonl$")


def archive_env(**extra):
    env = dict(wh.FAST, OCTOHA_EVENT_RETENTION_HOURS="0", OCTOHA_ARCHIVE_EVERY_MS="86400000",
               OCTOHA_TASK_LOGS_DIR=str(harness.make_tmp_dir("tasklogs")))
    env.update(extra)
    return env


class ArchiveTests(harness.OctohaTestCase):

    # -- helpers
    def exports(self, node):
        return node.data_dir / "EventExports"

    def wait_no_active_archive(self, node):
        def idle():
            j = self.api(node, "GET", f"{TASKS}?name=ArchiveEvents", expect=200).json
            return j["TotalResults"] >= 1 and all(t["IsCompleted"] for t in j["Items"])
        self.wait_until(idle, 10, 0.05, "housekeeping's start-up ArchiveEvents task to end", nodes=[node])

    def make_events(self, node, k=3):
        """Queue k Diagnostic tasks (k TaskQueued events) and refused requests
        (AccessDenied events); returns the Ids of every event now in the database."""
        for i in range(k):
            self.api(node, "POST", TASKS, expect=202, body={"Name": "Diagnostic", "Arguments": {"WaitMs": 0}})
            self.api(node, "GET", TASKS, expect=401, key=None)
        return self.event_ids(node)

    def event_ids(self, node):
        j = self.api(node, "GET", f"{EVENTS}?take=1000", expect=200).json
        self.assertLessEqual(j["TotalResults"], 1000, "few enough events for one page")
        return [e["Id"] for e in j["Items"]]

    def archive(self, node):
        r = self.api(node, "POST", f"{ARCHIVES}?waitSeconds=10", expect=202, timeout=30)
        t = r.json
        self.assertEqual(t["Name"], "ArchiveEvents", f"the archive task: {t}")
        self.assertEqual(t["State"], "Success", f"the archive ended within waitSeconds: {t}")
        self.assertEqual(r.header("Location"), f"{TASKS}/{t['Id']}")
        return t

    def read_files(self, node):
        """{file name: [ids]} of the day files; checks lines, .sha256 files and the listing."""
        d = self.exports(node)
        out = {}
        if not d.exists():
            return out
        for p in sorted(d.iterdir()):
            if p.name == ".archive.lock":
                # Archive runs of every node take turns by this file's lock.
                self.assertEqual(p.stat().st_size, 0, "the lock file holds nothing")
                continue
            if not FILE_RE.match(p.name):
                self.assertTrue(p.name.endswith(".jsonl.sha256"), f"unexpected file in EventExports: {p.name}")
                continue
            data = p.read_bytes()
            ids = []
            for line in data.decode("utf-8").splitlines():
                self.assertTrue(line.strip(), f"{p.name}: no blank lines")
                obj = json.loads(line)
                self.assertIsInstance(obj, dict, f"{p.name}: one JSON object per line")
                self.assertIsInstance(obj.get("Id"), str, f"{p.name}: each line has an Id: {line[:200]}")
                self.assertIn("Category", obj)
                day = FILE_RE.match(p.name).group(1)
                self.assertTrue(obj["Occurred"].startswith(day), f"{p.name}: the event is of that UTC day: {obj}")
                ids.append(obj["Id"])
            self.assertTrue(data.endswith(b"\n"), f"{p.name} ends with a newline")
            sum_text = (d / (p.name + ".sha256")).read_text()
            self.assertEqual(sum_text.strip(), f"{hashlib.sha256(data).hexdigest()}  {p.name}",
                             f"{p.name}.sha256 holds the file's SHA-256 and its name")
            out[p.name] = ids
        listing = self.api(node, "GET", ARCHIVES, expect=200).json
        items = {i["Name"]: i for i in listing["Items"]}
        self.assertEqual(set(items), set(out), f"the listing names the day files: {listing}")
        for name, item in items.items():
            data = (d / name).read_bytes()
            self.assertEqual(item["Sha256"], hashlib.sha256(data).hexdigest(), f"Sha256 of {name}")
            self.assertIs(item["ChecksumOk"], True, f"ChecksumOk of {name}")
            self.assertEqual(item["SizeBytes"], len(data), f"SizeBytes of {name}")
            self.assertEqual(item["Day"], FILE_RE.match(name).group(1), f"Day of {name}")
        self.assertEqual([i["Day"] for i in listing["Items"]], sorted(i["Day"] for i in listing["Items"]),
                         "oldest day first")
        return out

    def all_archived(self, files):
        return [i for ids in files.values() for i in ids]

    def assert_no_duplicates(self, files):
        c = collections.Counter(self.all_archived(files))
        dups = {k: v for k, v in c.items() if v > 1}
        self.assertEqual(dups, {}, "every event is archived once")

    # -- tests
    def test_archive_moves_events_once(self):
        n = self.start_node(db=None, env=archive_env())
        self.wait_no_active_archive(n)
        ids = self.make_events(n)
        self.assertGreaterEqual(len(ids), 6, f"events to archive: {ids}")
        time.sleep(0.05)  # strictly older than the archive's "now"
        t = self.archive(n)
        self.assertGreaterEqual(t["Result"]["Archived"], len(ids), f"the task's result: {t}")
        files = self.read_files(n)
        self.assertTrue(files, "a day file was written")
        today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        self.assertIn(f"events-{today}.jsonl", files, f"today's file: {list(files)}")
        archived = self.all_archived(files)
        for i in ids:
            self.assertEqual(archived.count(i), 1, f"event {i} archived exactly once")
        left = set(self.event_ids(n))
        self.assertEqual(left & set(ids), set(), "archived events are gone from /api/events")
        evs = self.api(n, "GET", f"{EVENTS}?category=EventsArchived", expect=200).json["Items"]
        self.assertTrue(evs, "an EventsArchived event records the run")
        # Twice: only the new events are added.
        new = set(self.make_events(n, 1)) - set(archived)
        time.sleep(0.05)
        self.archive(n)
        files2 = self.read_files(n)
        self.assert_no_duplicates(files2)
        archived2 = self.all_archived(files2)
        self.assertTrue(set(archived) <= set(archived2), "nothing archived before is lost")
        self.assertTrue(new <= set(archived2), "the new events are archived too")
        self.archive(n)
        self.assert_no_duplicates(self.read_files(n))

    def test_crash_between_write_and_delete_loses_and_duplicates_nothing(self):
        n = self.start_node(db=None, env=archive_env())
        self.wait_no_active_archive(n)
        ids = self.make_events(n)
        self.assertEqual(n.terminate(), 0, "clean stop")
        time.sleep(0.05)

        # A node that dies right after writing the file.  (Housekeeping's
        # periodic archive is cluster-wide and ran at the first start, so
        # this one is queued through the API.)
        n.extra_env["OCTOHA_FAULT_INJECT"] = "archive-after-write"
        n.start()
        try:
            r = n.request("POST", ARCHIVES, timeout=10)
            self.assertEqual(r.status, 202, f"archive queued: {r.describe()}")
        except (OSError, harness.http.client.HTTPException):
            pass  # the node may die before it answers
        self.expect_exit(n, 70, timeout=15)
        # The crashed run still looks live until offline-timeout-ms (2000) passes.
        time.sleep(2.3)
        d = self.exports(n)
        crashed_files = {p.name: p.read_bytes() for p in d.glob("events-*.jsonl")}
        self.assertTrue(crashed_files, "the crash came after the day file was written")
        written = [json.loads(l)["Id"] for b in crashed_files.values() for l in b.decode().splitlines()]
        for i in ids:
            self.assertEqual(written.count(i), 1, f"event {i} in the file written before the crash")

        # With the default retention nothing is due: the events are still in the database.
        n.extra_env.pop("OCTOHA_FAULT_INJECT")
        n.extra_env["OCTOHA_EVENT_RETENTION_HOURS"] = "2160"
        n.start()
        self.wait_no_active_archive(n)
        still = set(self.event_ids(n))
        self.assertTrue(set(ids) <= still, "the crash came before the delete: the events are still there")
        self.assertEqual(n.terminate(), 0)

        # Restarted with retention 0: its start-up archive and ours finish the job.
        n.extra_env["OCTOHA_EVENT_RETENTION_HOURS"] = "0"
        n.start()
        self.wait_no_active_archive(n)
        time.sleep(0.05)
        self.archive(n)
        files = self.read_files(n)
        self.assert_no_duplicates(files)
        archived = self.all_archived(files)
        for i in still:
            self.assertEqual(archived.count(i), 1, f"event {i} archived exactly once after the crash")
        left = set(self.event_ids(n))
        self.assertEqual(left & still, set(), "no archived event remains in /api/events")
        after = set(self.make_events(n, 1)) - set(archived)
        self.assertTrue(after, "events created after the archive")
        self.assertTrue(after <= set(self.event_ids(n)), "newer events stay until the next archive")


if __name__ == "__main__":
    harness.main()
