#!/usr/bin/env python3
"""Shared storage folders (issue 4): /api/configuration/storage (GET, PUT),
/api/configuration/server-folders/values and `octoha-server path`.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_storage.py

Single-node tests run on the embedded SQLite database (OCTOHA_TEST_DB is
ignored: the storage paths are cluster-wide state, so every test starts from
a database of its own).  The two-node tests use one throwaway PostgreSQL
cluster (tests/pg.sh) with a fresh database per test and skip when PostgreSQL
is not installed or OCTOHA_TEST_DB is set.  The test that needs a node which
cannot write a folder runs that node as uid/gid 65534 through setpriv, so it
needs root; it skips (loudly) otherwise.

Every node runs with storage-check-ms 200 (it re-reads the cluster's paths
five times a second) unless a test says otherwise.
"""

import json
import os
import re
import signal
import shutil
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, unique_name  # noqa: E402
from test_tasks_sqlite import FAST as TASK_FAST  # noqa: E402
from test_tasks_sqlite import TASKS, TaskTestCase  # noqa: E402

STORAGE = "/api/configuration/storage"
SERVER_FOLDERS = "/api/configuration/server-folders/values"
EVENTS = "/api/events"

FOLDERS = harness.STORAGE_FOLDERS  # Artifacts, TaskLogs, Packages, Imports, EventExports
OPTIONS = {
    "Artifacts": "artifacts",
    "TaskLogs": "taskLogs",
    "Packages": "nugetRepository",
    "Imports": "imports",
    "EventExports": "eventExports",
}
OCTOPUS_FIELDS = {f: f + "Directory" for f in FOLDERS}

NOT_MOVED = "Files already in the old folders were not moved."
STORAGE_CHECK_MS = 200
FAST = dict(TASK_FAST, OCTOHA_STORAGE_CHECK_MS=str(STORAGE_CHECK_MS))
SWITCH_TIMEOUT_S = 5.0  # storage-check-ms plus scheduling slack

NOBODY = 65534
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
HAVE_SETPRIV = shutil.which("setpriv") is not None
CAN_DROP = IS_ROOT and HAVE_SETPRIV  # can start a node as uid/gid 65534
NOT_ROOT_REASON = (
    "needs root and setpriv (util-linux): a second node must run as uid 65534 so that it "
    "cannot write a folder root can; run this file as root to cover the refusal path"
    if not IS_ROOT else "needs setpriv (util-linux) to run a node as uid 65534"
)


def mkdir_mode(path: Path, mode: int) -> Path:
    """mkdir -p PATH, then chmod MODE (not masked by the umask)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def probe_files(folder: Path) -> list:
    """Probe files left behind in FOLDER (there should be none)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".octoha-probe-"))


class UnprivilegedNode(harness.Node):
    """A node whose process runs as uid/gid 65534 with no supplementary groups.

    The harness starts `server_bin() run ...`; this node points
    OCTOHA_SERVER_BIN at a wrapper script (`exec setpriv ... octoha-server "$@"`)
    for the time of the start, so the wrapper is what runs.  The data
    directory is chowned to 65534 so the node can start.
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        real = harness.server_bin()
        wrap_dir = harness.make_tmp_dir("setpriv")
        self.wrapper = wrap_dir / "octoha-server-as-nobody"
        self.wrapper.write_text(
            "#!/bin/sh\n"
            f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --pdeathsig KILL "
            f"'{real}' \"$@\"\n"
        )
        os.chmod(self.wrapper, 0o755)
        os.chown(self.data_dir, NOBODY, NOBODY)

    def start(self, wait=True, timeout=None):
        saved = os.environ.get("OCTOHA_SERVER_BIN")
        os.environ["OCTOHA_SERVER_BIN"] = str(self.wrapper)
        try:
            super().start(wait=False)
        finally:
            if saved is None:
                os.environ.pop("OCTOHA_SERVER_BIN", None)
            else:
                os.environ["OCTOHA_SERVER_BIN"] = saved
        if wait:
            self.wait_ready(timeout)
        return self

    def uid(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
        raise AssertionError("no Uid line")


class StorageCase(TaskTestCase):
    """Helpers for the storage API (no tests of its own)."""

    maxDiff = None

    # -- nodes
    def solo(self, **extra) -> harness.Node:
        """A node of its own on embedded SQLite (default local folders)."""
        env = dict(FAST)
        env.update({k: str(v) for k, v in extra.items()})
        return self.start_node(db=None, env=env)

    # -- requests
    def storage(self, node) -> dict:
        return self.api(node, "GET", STORAGE, expect=200).json

    def folder(self, j: dict, name: str) -> dict:
        found = [f for f in j["Folders"] if f["Name"] == name]
        self.assertEqual(len(found), 1, f"exactly one {name} in {j}")
        return found[0]

    def check_of(self, folder: dict, node) -> dict:
        found = [c for c in folder["Nodes"] if c["NodeId"] == node.id]
        self.assertEqual(len(found), 1, f"one check of {folder['Name']} by {node.name}: {folder}")
        return found[0]

    def server_folders(self, node) -> dict:
        return self.api(node, "GET", SERVER_FOLDERS, expect=200).json

    def put_storage(self, node, body, wait=None, expect=202, headers=None):
        q = f"?waitSeconds={wait}" if wait is not None else ""
        r = self.api(node, "PUT", STORAGE + q, expect=expect, body=body, headers=headers,
                     timeout=15 + (wait or 0))
        if r.status == 202:
            self.assert_accepted(r, f"PUT {STORAGE}{q}")
            self.assertEqual(r.json["Name"], "SetStoragePaths", "the change is a SetStoragePaths task")
        return r

    def task_count(self, node, query="") -> int:
        return self.list_tasks(node, query)["TotalResults"]

    def events(self, node, category) -> list:
        return self.api(node, "GET", f"{EVENTS}?category={category}", expect=200).json["Items"]

    def wait_checks(self, node, n_nodes=1, timeout=10.0) -> dict:
        """GET storage once every folder has a check by each of N_NODES nodes."""
        def ready():
            j = self.storage(node)
            return j if all(len(f["Nodes"]) >= n_nodes for f in j["Folders"]) else None
        return self.wait_until(ready, timeout, interval=0.1,
                               msg=f"every folder checked by {n_nodes} node(s)", nodes=[node])

    def wait_in_use(self, node, folder, path, timeout=SWITCH_TIMEOUT_S) -> dict:
        """Wait until NODE's server-folders shows PATH for FOLDER; returns it."""
        field = OCTOPUS_FIELDS[folder]
        return self.wait_until(lambda: (lambda j: j if j[field] == path else None)(self.server_folders(node)),
                               timeout, interval=0.05, msg=f"{node.name} to use {path} as {folder}",
                               nodes=[node])

    def assert_result(self, result, paths, nodes_ok, activated, message, created=None):
        """Exact Result of a SetStoragePaths task.

        nodes_ok: [(node, {folder: error or None})] in any order.
        created: {(node, folder): the folder its check created}; None elsewhere.
        """
        created = {(n.id, f): c for (n, f), c in (created or {}).items()}
        self.assertIsInstance(result, dict, "a SetStoragePaths task has a Result")
        fields = {"Paths", "Nodes", "FilesMoved", "Activated", "Message"}
        if activated:
            # An activated change ends once every node uses it: none lags.
            fields.add("NodesNotSwitched")
            self.assertEqual(result.get("NodesNotSwitched"), [], f"every node switched: {result}")
        self.assertEqual(set(result), fields, f"Result fields: {result}")
        self.assertEqual(result["Paths"], paths, "Result.Paths is the change asked for")
        self.assertIs(result["FilesMoved"], False, "Result.FilesMoved: files are never moved")
        self.assertIs(result["Activated"], activated, f"Result.Activated: {result}")
        self.assertEqual(result["Message"], message, "Result.Message")
        want = []
        for node, errors in nodes_ok:
            folders = sorted(
                ({"Folder": f, "Path": paths[f], "Ok": errors.get(f) is None, "Error": errors.get(f),
                  "CreatedFolder": created.get((node.id, f))}
                 for f in paths),
                key=lambda x: x["Folder"])
            want.append({"NodeId": node.id, "NodeName": node.name,
                         "Ok": all(e is None for e in errors.values()), "Folders": folders})
        got = [dict(n, Folders=sorted(n["Folders"], key=lambda x: x["Folder"])) for n in result["Nodes"]]
        self.assertEqual(sorted(got, key=lambda n: n["NodeId"]), sorted(want, key=lambda n: n["NodeId"]),
                         "Result.Nodes: each online node's finding per folder")

    def assert_local_defaults(self, j: dict, nodes):
        """GET storage of a cluster with no paths: every folder local and verified."""
        self.assertEqual([f["Name"] for f in j["Folders"]], list(FOLDERS), "the five folders, in order")
        for f in j["Folders"]:
            name = f["Name"]
            self.assertEqual(f["Option"], OPTIONS[name], f"{name}.Option")
            for k in ("Path", "ChangedAt", "ChangedBy", "TaskId"):
                self.assertIsNone(f[k], f"{name}.{k} is null while the cluster has no path: {f}")
            self.assertEqual(sorted(c["NodeId"] for c in f["Nodes"]), sorted(n.id for n in nodes),
                             f"{name}: one check per node: {f}")
            for n in nodes:
                c = self.check_of(f, n)
                self.assertEqual(c["NodeName"], n.name, f"{name}: NodeName")
                self.assertEqual(c["Path"], str(n.data_dir / name), f"{name}: {n.name} checked its local folder")
                self.assertIs(c["Verified"], True, f"{name}: {n.name} verified: {c}")
                self.assertIs(c["IsCurrent"], True, f"{name}: {n.name}'s check is current: {c}")
                self.assertIsNone(c["Error"], f"{name}: no error: {c}")
                self.assert_timestamp(c["VerifiedAt"], f"{name}.VerifiedAt")
        self.assertIs(j["AllVerified"], True, "AllVerified at start")

    def cli_path(self, node, *args, timeout=90):
        """`octoha-server path ARGS` with the node's database, data dir and name."""
        opts = [f"--data-dir={node.data_dir}", f"--node-name={node.name}", "--offline-timeout-ms=2000"]
        if node.db:
            opts.append(f"--db={node.db}")
        return harness.run_cli(["path", *args, *opts], timeout=timeout)


# ---------------------------------------------------------------------------
# One node on SQLite: reading and changing the folders.


class SingleNodeStorageTests(StorageCase):
    """A fresh node on its own SQLite database per test."""

    def test_start_every_folder_local_and_verified(self):
        n = self.solo()
        j = self.wait_checks(n)
        self.assertEqual(j["Platform"], "linux", "Platform of a linux cluster")
        self.assert_local_defaults(j, [n])
        sf = self.server_folders(n)
        want = {"Id": "server-folders", "LogsDirectory": None}
        want.update({OCTOPUS_FIELDS[f]: str(n.data_dir / f) for f in FOLDERS})
        self.assertEqual(sf, want, "server-folders/values: the node's local folders")
        self.assertEqual(self.task_count(n, "?name=SetStoragePaths"), 0, "no change has been made")
        self.assertEqual(self.events(n, "StorageChanged"), [], "no StorageChanged event yet")

    def test_change_task_logs_and_artifacts_without_restart(self):
        n = self.solo()
        self.wait_checks(n)
        old_logs = n.data_dir / "TaskLogs"
        shared = harness.make_tmp_dir("shared")
        new_logs, new_art = shared / "TaskLogs", shared / "Artifacts"
        paths = {"Artifacts": str(new_art), "TaskLogs": str(new_logs)}

        # A task that runs before the change logs into the old folder.
        old = self.create_task(n, {"LogLines": 2}, Description="before the change")
        old = self.wait_done(n, old["Id"], 10, nodes=[n])
        self.assertEqual(old["State"], "Success", f"the task before the change: {old}")
        old_file = old_logs / f"{old['Id']}.log"
        self.assertTrue(old_file.is_file(), f"the old task's log is {old_file}")
        old_text = old_file.read_text()
        self.assertIn("Diagnostic line 2 of 2", old_text, "the old log's content")

        r = self.put_storage(n, paths, wait=20)
        t = r.json
        self.assertEqual(t["Arguments"]["Paths"], paths, "the task's Arguments.Paths is the change")
        self.assertEqual(t["State"], "Success", f"waitSeconds=20: the change ended Success: {t}")
        self.assertIsNone(t["ErrorMessage"], "no ErrorMessage")
        self.assertIsNone(t["TargetNode"], "the change itself is not targeted")
        self.assert_result(t["Result"], paths, [(n, {"Artifacts": None, "TaskLogs": None})],
                           activated=True, message=NOT_MOVED,
                           created={(n, "Artifacts"): str(new_art), (n, "TaskLogs"): str(new_logs)})
        tid = t["Id"]

        # The node proved the folders in a VerifyStorage task targeted at it.
        checks = self.list_tasks(n, "?name=VerifyStorage")["Items"]
        self.assertEqual(len(checks), 1, f"one VerifyStorage task for one node: {checks}")
        c = checks[0]
        self.assertEqual((c["State"], c["TargetNode"], c["ServerNode"]), ("Success", n.id, n.id),
                         f"VerifyStorage targeted at and run on the node: {c}")
        self.assertEqual(c["Arguments"], {"Paths": paths, "NodeId": n.id, "ParentTaskId": tid},
                         "VerifyStorage arguments")
        self.assertEqual(c["MaxAttempts"], 1, "a check is not retried")
        self.assertEqual(c["Result"]["Ok"], True, f"VerifyStorage Result.Ok: {c['Result']}")
        self.assertEqual(probe_files(new_logs) + probe_files(new_art), [], "no probe file left behind")

        # The cluster's paths, who changed them and with which task.
        j = self.storage(n)
        for name in FOLDERS:
            f = self.folder(j, name)
            if name in paths:
                self.assertEqual(f["Path"], paths[name], f"{name}.Path")
                self.assertEqual(f["ChangedBy"], t["RequestedBy"], f"{name}.ChangedBy is the requester")
                self.assertTrue(f["ChangedBy"].startswith("bootstrap"), f"{name}.ChangedBy names the key: {f}")
                self.assertEqual(f["TaskId"], tid, f"{name}.TaskId")
                self.assert_timestamp(f["ChangedAt"], f"{name}.ChangedAt")
                ck = self.check_of(f, n)
                self.assertEqual((ck["Path"], ck["Verified"], ck["IsCurrent"], ck["Error"]),
                                 (paths[name], True, True, None), f"{name}: the node's check of the new path")
            else:
                self.assertEqual((f["Path"], f["ChangedBy"], f["TaskId"]), (None, None, None),
                                 f"{name} was not part of the change: {f}")
        self.assertIs(j["AllVerified"], True, "AllVerified after the change")

        # The node switches without a restart.
        sf = self.wait_in_use(n, "TaskLogs", str(new_logs))
        self.assertEqual(sf["ArtifactsDirectory"], str(new_art), "ArtifactsDirectory switched")
        for name in ("Packages", "Imports", "EventExports"):
            self.assertEqual(sf[OCTOPUS_FIELDS[name]], str(n.data_dir / name), f"{name} still local")

        # A task queued now logs into the new folder; /raw reads it there.
        new = self.create_task(n, {"LogLines": 3}, Description="after the change")
        new = self.wait_done(n, new["Id"], 10, nodes=[n])
        self.assertEqual(new["State"], "Success", f"the task after the change: {new}")
        text = self.raw_log(n, new["Id"])
        self.assertIn("Diagnostic line 3 of 3", text, "/raw of the new task")
        new_file = new_logs / f"{new['Id']}.log"
        self.assertTrue(new_file.is_file(), f"the new task's log is in the new folder: {sorted(os.listdir(new_logs))}")
        self.assertEqual(new_file.read_text(), text, "the file in the new folder is what /raw serves")
        self.assertFalse((old_logs / f"{new['Id']}.log").exists(), "nothing written to the old folder")

        # Files are not moved: the old task's log stays in the old folder.
        self.assertEqual(old_file.read_text(), old_text, "the old log is still in the old folder, unchanged")
        self.assertFalse((new_logs / old_file.name).exists(), "the old log was not copied/moved")
        # The change's own log started before the switch: it is in the old folder.
        own = (old_logs / f"{tid}.log").read_text()
        self.assertIn(f"Storage paths changed: Artifacts={new_art} TaskLogs={new_logs}. {NOT_MOVED}", own,
                      f"the SetStoragePaths log line\n{own}")

        # The audit log.
        ev = self.events(n, "StorageChanged")
        self.assertEqual(len(ev), 1, f"one StorageChanged event: {ev}")
        e = ev[0]
        self.assertEqual((e["Operation"], e["ResourceId"], e["Result"], e["Username"]),
                         ("SetStoragePaths", tid, "Success", "system"), f"StorageChanged event: {e}")
        self.assertEqual(e["Message"], f"Storage paths changed: Artifacts={new_art} TaskLogs={new_logs}",
                         "StorageChanged message")
        self.assertEqual(e["Details"], paths, "StorageChanged details: the paths")
        req = self.events(n, "StorageChangeRequested")
        self.assertEqual(len(req), 1, f"one StorageChangeRequested event: {req}")
        self.assertEqual((req[0]["Operation"], req[0]["ResourceId"], req[0]["Username"], req[0]["Result"]),
                         ("setStorage", tid, "bootstrap", "Success"), f"StorageChangeRequested: {req[0]}")
        self.assertEqual(req[0]["Details"], paths, "StorageChangeRequested details")

    def test_task_queued_right_after_the_change_logs_to_the_new_folder(self):
        # Default storage-check-ms (2000): the answer to PUT ?waitSeconds says
        # Activated; a task queued right then must log into the new folder
        # (else its log lands in the old folder, and /raw, which reads the new
        # one, no longer finds it).
        n = self.solo(OCTOHA_STORAGE_CHECK_MS=2000)
        self.wait_checks(n)
        new_logs = harness.make_tmp_dir("shared") / "TaskLogs"
        r = self.put_storage(n, {"TaskLogs": str(new_logs)}, wait=20)
        self.assertEqual(r.json["State"], "Success", f"the change: {r.json}")
        self.assertIs(r.json["Result"]["Activated"], True, "activated")
        sf = self.server_folders(n)
        t = self.create_task(n, {"LogLines": 1}, Description="right after the change")
        t = self.wait_done(n, t["Id"], 10, nodes=[n])
        where = [str(p.parent) for p in (new_logs / f"{t['Id']}.log", n.data_dir / "TaskLogs" / f"{t['Id']}.log")
                 if p.exists()]
        self.assertTrue((new_logs / f"{t['Id']}.log").is_file(),
                        f"a task queued after PUT answered Success/Activated logs into the new TaskLogs "
                        f"{new_logs}; found the log in {where or 'no folder'}; server-folders answered "
                        f"TaskLogsDirectory={sf['TaskLogsDirectory']!r} right after the change")
        self.assertIn("Diagnostic line 1 of 1", self.raw_log(n, t["Id"]), "/raw of that task")

    def test_raw_of_a_task_logged_before_the_change_is_not_silently_empty(self):
        # The spec: /raw is "empty while the task has not started".  A
        # finished task whose log stayed in the old folder must not read as
        # an empty log: either its text or an error that says why.
        n = self.solo()
        self.wait_checks(n)
        old = self.create_task(n, {"LogLines": 2})
        old = self.wait_done(n, old["Id"], 10, nodes=[n])
        self.assertNotEqual(self.raw_log(n, old["Id"]), "", "/raw before the change")
        new_logs = harness.make_tmp_dir("shared") / "TaskLogs"
        r = self.put_storage(n, {"TaskLogs": str(new_logs)}, wait=20)
        self.assertEqual(r.json["State"], "Success", f"the change: {r.json}")
        self.wait_in_use(n, "TaskLogs", str(new_logs))
        self.assertTrue((n.data_dir / "TaskLogs" / f"{old['Id']}.log").is_file(), "the old log is still on disk")
        r = self.api(n, "GET", f"{TASKS}/{old['Id']}/raw")
        self.assertFalse(r.status == 200 and r.body == b"",
                         f"GET /raw of completed task {old['Id']} (State {old['State']}) whose log is in the old "
                         f"TaskLogs folder answered 200 with an empty body, as if the task had never started")
        if r.status == 200:
            self.assertIn("Diagnostic line 2 of 2", r.body.decode(), "/raw serves the old log")


    def test_reverify_notices_a_folder_that_stopped_working(self):
        # storage-reverify-ms 1000: the node proves every folder again each
        # second; a folder that fails is retried every storage-check-ms, and
        # meanwhile the node takes only system tasks.
        n = self.solo(OCTOHA_STORAGE_REVERIFY_MS=1000)
        self.wait_checks(n)
        art = harness.make_tmp_dir("shared") / "Artifacts"
        r = self.put_storage(n, {"Artifacts": str(art)}, wait=20)
        self.assertEqual(r.json["State"], "Success", f"the change: {r.json}")
        self.wait_in_use(n, "Artifacts", str(art))

        shutil.rmtree(art)
        art.write_text("a file where the folder was\n")
        err = f"cannot create the folder {art}: Not a directory"

        def failed():
            c = self.check_of(self.folder(self.storage(n), "Artifacts"), n)
            return c if c["Verified"] is False else None
        c = self.wait_until(failed, 5, interval=0.1, msg="the re-proof to fail", nodes=[n])
        self.assertEqual((c["Path"], c["IsCurrent"], c["Error"]), (str(art), True, err), f"the failed check: {c}")
        self.assertIs(self.storage(n)["AllVerified"], False, "AllVerified false")
        t = self.create_task(n, {"LogLines": 1})
        time.sleep(1.0)
        self.assertEqual(self.get_task(n, t["Id"])["State"], "Queued",
                         "a node that cannot use a folder takes no ordinary task")

        art.unlink()  # the probe can create the folder again
        done = self.wait_done(n, t["Id"], SWITCH_TIMEOUT_S, nodes=[n])
        self.assertEqual(done["State"], "Success", f"the task ran once the folder worked again: {done}")
        j = self.storage(n)
        self.assertIs(j["AllVerified"], True, "AllVerified again")
        self.assertEqual(self.check_of(self.folder(j, "Artifacts"), n)["Error"], None, "no error any more")

    def test_one_change_at_a_time(self):
        # Changes queued together used to fill the node's system task slots
        # and starve the checks they waited for; and the last to finish,
        # not the last asked, won.  One change runs at a time: the others
        # are refused with 409 naming it, and accepted once it has ended.
        n = self.solo(OCTOHA_TASK_CAP=0)
        self.wait_checks(n)
        shared = harness.make_tmp_dir("shared")
        first = self.put_storage(n, {"Imports": str(shared / "Imports0"), "VerifyTimeoutSeconds": 3}).json
        events_before = self.api(n, "GET", "/api/events?category=StorageChangeRequested", expect=200).json
        for i in range(1, 4):
            r = self.put_storage(n, {"Imports": str(shared / f"Imports{i}")}, expect=409)
            self.assertEqual(r.json["Code"], "StorageChangeInProgress", f"change {i}: {r.json}")
            self.assertIn(first["Id"], r.json["ErrorMessage"], "the refusal names the change under way")
        self.assertEqual(self.task_count(n, "?name=SetStoragePaths"), 1, "only the first was queued")
        events_after = self.api(n, "GET", "/api/events?category=StorageChangeRequested", expect=200).json
        self.assertEqual(events_after["TotalResults"], events_before["TotalResults"],
                         "refused requests queue nothing")
        r = self.api(n, "PUT", f"{NODES}/{n.id}", body={"MaxConcurrentTasks": 5}, expect=202)
        self.assertEqual(r.json["Name"], "SetTaskCap", "the cap change")
        done = self.wait_done(n, first["Id"], 20, nodes=[n])
        self.assertEqual((done["State"], done["ErrorMessage"]), ("Success", None), f"the first change: {done}")
        last = self.put_storage(n, {"Imports": str(shared / "Imports3")}, wait=20).json
        self.assertEqual(last["State"], "Success", f"a change after the first ended: {last}")
        self.assertEqual(self.folder(self.storage(n), "Imports")["Path"], str(shared / "Imports3"),
                         "the last change asked is the one active")

    def test_null_goes_back_to_each_nodes_own_folder(self):
        n = self.solo()
        self.wait_checks(n)
        shared = harness.make_tmp_dir("shared")
        own = self.check_of(self.folder(self.storage(n), "Imports"), n)["Path"]
        t = self.put_storage(n, {"Imports": str(shared / "Imports")}, wait=20).json
        self.assertEqual(t["State"], "Success", f"set: {t}")
        self.assertEqual(self.folder(self.storage(n), "Imports")["Path"], str(shared / "Imports"))
        t = self.put_storage(n, {"Imports": None}, wait=20).json
        self.assertEqual(t["State"], "Success", f"back to the node's own: {t}")
        self.assertEqual(t["Arguments"]["Paths"], {"Imports": None}, "the change asked")
        self.assertEqual(self.task_count(n, "?name=VerifyStorage"), 1,
                         "nothing to prove for a folder going back to the node's own")
        deadline = time.time() + 10
        while True:
            f = self.folder(self.storage(n), "Imports")
            c = self.check_of(f, n)
            if c["Path"] == own or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertIsNone(f["Path"], f"Imports has no cluster path again: {f}")
        self.assertEqual(c["Path"], own, f"the node checks its own Imports folder again: {c}")
        vals = self.api(n, "GET", "/api/configuration/server-folders/values", expect=200).json
        self.assertEqual(vals["ImportsDirectory"], own, "server-folders shows the node's own folder")

    def test_idempotency_key_returns_the_first_change(self):
        n = self.solo()
        self.wait_checks(n)
        shared = harness.make_tmp_dir("shared")
        h = {"Idempotency-Key": "storage-change-1"}
        first = self.put_storage(n, {"Imports": str(shared / "one")}, wait=20, headers=h).json
        again = self.put_storage(n, {"Imports": str(shared / "one")}, headers=h).json
        self.assertEqual(again["Id"], first["Id"], "the same key answers the first task")
        self.assertEqual(self.task_count(n, "?name=SetStoragePaths"), 1, "one SetStoragePaths task")
        self.assertEqual(self.folder(self.storage(n), "Imports")["Path"], str(shared / "one"), "Imports")


# ---------------------------------------------------------------------------
# Refused forms: 400, and nothing changes.


class BadPathTests(StorageCase):
    """One node (SQLite, linux) shared by the class; every request is refused."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(db=None, env=dict(FAST))

    def snapshot(self):
        n = self.node
        return (self.storage(n), self.server_folders(n), self.task_count(n), self.events(n, "StorageChangeRequested"))

    def refuse(self, body, code, field, message=None, raw=None):
        """PUT BODY (or the raw JSON text RAW); assert the error and that nothing changed."""
        n = self.node
        self.wait_checks(n)
        before = self.snapshot()
        if raw is not None:
            r = self.api(n, "PUT", STORAGE, body=raw, headers={"Content-Type": "application/json"})
        else:
            r = self.api(n, "PUT", STORAGE, body=body)
        self.assert_error(r, 400, code, field, what=f"PUT {STORAGE} {raw or json.dumps(body)[:80]}")
        if message is not None:
            self.assertEqual(r.json["ErrorMessage"], message, "ErrorMessage")
        time.sleep(0.3)  # a task or path switch would show within storage-check-ms
        after = self.snapshot()
        self.assertEqual(after[0], before[0], "GET storage is identical before and after")
        self.assertEqual(after[1], before[1], "server-folders is identical before and after")
        self.assertEqual(after[2], before[2], "no task was queued")
        self.assertEqual(after[3], before[3], "no StorageChangeRequested event")
        return r

    def test_relative_path(self):
        self.refuse({"TaskLogs": "mnt/x"}, "InvalidStoragePath", "TaskLogs",
                    "TaskLogs must be an absolute path (start with /) on linux.")
        self.refuse({"TaskLogs": "./x"}, "InvalidStoragePath", "TaskLogs")

    def test_dot_dot_segment(self):
        self.refuse({"Artifacts": "/mnt/../etc"}, "InvalidStoragePath", "Artifacts",
                    "Artifacts has a '.' or '..' segment; give the folder itself.")

    def test_dot_segment_and_empty_segment_and_root(self):
        self.refuse({"Imports": "/mnt/./x"}, "InvalidStoragePath", "Imports")
        self.refuse({"EventExports": "/mnt//x"}, "InvalidStoragePath", "EventExports",
                    "EventExports has an empty segment (two separators in a row).")
        self.refuse({"Packages": "/"}, "InvalidStoragePath", "Packages",
                    "Packages must not be the root folder.")

    def test_backslash_on_linux(self):
        self.refuse({"Packages": "/mnt\\octopus"}, "InvalidStoragePath", "Packages",
                    "Packages mixes separators: use / only on linux.")

    def test_control_character(self):
        self.refuse(None, "InvalidStoragePath", "Imports", "Imports contains a control character.",
                    raw='{"Imports": "/mnt/a\\u0001b"}')
        self.refuse({"TaskLogs": "/mnt/a\tb"}, "InvalidStoragePath", "TaskLogs")

    def test_empty_string_fails_the_schema(self):
        self.refuse({"TaskLogs": ""}, "ValidationFailed", "TaskLogs")

    def test_unknown_field(self):
        self.refuse({"Logs": "/mnt/x"}, "ValidationFailed", "Logs")
        self.refuse({"TaskLogsDirectory": "/mnt/x"}, "ValidationFailed", "TaskLogsDirectory")

    def test_empty_body(self):
        self.refuse({}, "ValidationFailed", None)
        self.refuse({"VerifyTimeoutSeconds": 10}, "ValidationFailed", None)

    def test_non_string(self):
        self.refuse({"TaskLogs": 5}, "ValidationFailed", "TaskLogs")
        self.refuse({"TaskLogs": ["/mnt/x"]}, "ValidationFailed", "TaskLogs")

    def test_too_long(self):
        # 401 characters: the schema's maxLength 400 refuses it first.
        self.refuse({"TaskLogs": "/" + "a" * 400}, "ValidationFailed", "TaskLogs")
        # 201 two-byte characters (402 bytes) pass the schema but not the
        # path rule, which counts bytes.
        self.refuse({"TaskLogs": "/" + "\u00e9" * 200}, "InvalidStoragePath", "TaskLogs",
                    "TaskLogs is longer than 400 bytes.")

    def test_one_bad_folder_refuses_the_whole_change(self):
        good = str(harness.make_tmp_dir("shared") / "Artifacts")
        self.refuse({"Artifacts": good, "TaskLogs": "relative"}, "InvalidStoragePath", "TaskLogs")
        self.assertFalse(os.path.exists(good), "nothing was created for the good folder")


class WindowsPlatformTests(StorageCase):
    """A node started with --platform windows (SQLite): Windows path forms."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(db=None, env=dict(FAST, OCTOHA_PLATFORM="windows"))

    def test_a_platform_and_refused_linux_and_mixed_forms(self):
        n = self.node
        self.wait_checks(n)
        before = self.storage(n)
        self.assertEqual(before["Platform"], "windows", "Platform of a windows cluster")
        n_tasks = self.task_count(n)
        cases = [
            ({"TaskLogs": "/mnt/x"}, "TaskLogs"),
            ({"Artifacts": "X:/mixed\\sep"}, "Artifacts"),
            ({"Packages": "X:"}, "Packages"),
            ({"Imports": "X:\\"}, "Imports"),
            ({"EventExports": "\\\\server"}, "EventExports"),
            ({"TaskLogs": "Octopus\\x"}, "TaskLogs"),
            ({"TaskLogs": "X:\\Octo|pus"}, "TaskLogs"),
            ({"TaskLogs": "X:\\Octopus \\x"}, "TaskLogs"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                r = self.api(n, "PUT", STORAGE, body=body)
                self.assert_error(r, 400, "InvalidStoragePath", field, what=f"PUT {body}")
        r = self.api(n, "PUT", STORAGE, body={"TaskLogs": "X:/mixed\\sep"})
        self.assertEqual(r.json["ErrorMessage"], "TaskLogs mixes separators: use \\ only on windows.", "message")
        self.assertEqual(self.storage(n), before, "nothing changed")
        self.assertEqual(self.task_count(n), n_tasks, "no task queued")

    def test_b_drive_and_unc_forms_are_accepted(self):
        # The forms are accepted (202).  The task then probes a Windows path
        # on Linux, so how it ends is not asserted.
        n = self.node
        for body in ({"TaskLogs": "X:\\share\\TaskLogs"}, {"Artifacts": "\\\\server\\share\\Artifacts"}):
            with self.subTest(body=body):
                r = self.api(n, "PUT", STORAGE, body=body)
                self.assertNotEqual(r.status, 400, f"{body} has an accepted windows form: {r.describe()}")
                self.assertEqual(r.status, 202, f"{body}: {r.describe()}")
                self.assertEqual(r.json["Arguments"]["Paths"], body, "Arguments.Paths")
                self.wait_done(n, r.json["Id"], 20, nodes=[n])


# ---------------------------------------------------------------------------
# Two nodes on PostgreSQL.


class PgStorageTests(StorageCase):
    """Two nodes on a fresh PostgreSQL database per test."""

    def setUp(self):
        if not harness.TEST_DB:
            reason = harness.postgres_available()
            if reason:
                self.skipTest(reason)
        self.db = harness.cluster_db(self, need_empty=True)

    def pg_node(self, unprivileged=False) -> harness.Node:
        kw = dict(name=unique_name("s"), db=self.db, env=dict(FAST))
        node = UnprivilegedNode(**kw) if unprivileged else harness.Node(**kw)
        self.track(node)
        node.start()
        if unprivileged:
            self.assertEqual(node.uid(), NOBODY, f"{node.name} runs as uid {NOBODY}")
        return node

    def two_nodes(self, unprivileged_second: bool):
        a = self.pg_node()
        b = self.pg_node(unprivileged=unprivileged_second)
        self.wait_until(lambda: len([x for x in self.api(a, "GET", NODES, expect=200).json["Items"]
                                     if not x["IsOffline"]]) == 2,
                        10, msg="both nodes online", nodes=[a, b])
        self.wait_checks(a, 2)
        return a, b

    def test_change_accepted_when_every_node_can_write(self):
        # As root, node b runs as 65534: the folders are made writable for all.
        a, b = self.two_nodes(unprivileged_second=CAN_DROP)
        self.assert_local_defaults(self.storage(b), [a, b])
        shared = harness.make_tmp_dir("shared")
        paths = {"TaskLogs": str(mkdir_mode(shared / "TaskLogs", 0o777)),
                 "Packages": str(mkdir_mode(shared / "Packages", 0o777))}
        r = self.put_storage(b, paths, wait=30)
        t = r.json
        self.assertEqual(t["State"], "Success", f"both nodes can write: Success: {t}")
        self.assert_result(t["Result"], paths, [(a, {"TaskLogs": None, "Packages": None}),
                                                (b, {"TaskLogs": None, "Packages": None})],
                           activated=True, message=NOT_MOVED)
        checks = self.list_tasks(a, "?name=VerifyStorage")["Items"]
        self.assertEqual(sorted((c["TargetNode"], c["ServerNode"], c["State"]) for c in checks),
                         sorted([(a.id, a.id, "Success"), (b.id, b.id, "Success")]),
                         f"one VerifyStorage per node, targeted at it and run on it: {checks}")
        for c in checks:
            self.assertEqual(c["Arguments"], {"Paths": paths, "NodeId": c["TargetNode"], "ParentTaskId": t["Id"]},
                             "VerifyStorage arguments")
        for observer in (a, b):
            j = self.storage(observer)
            self.assertIs(j["AllVerified"], True, f"AllVerified seen from {observer.name}")
            for name in FOLDERS:
                f = self.folder(j, name)
                if name not in paths:
                    self.assertIsNone(f["Path"], f"{name} unchanged")
                    continue
                self.assertEqual((f["Path"], f["TaskId"]), (paths[name], t["Id"]), f"{name} from {observer.name}")
                for n in (a, b):
                    c = self.check_of(f, n)
                    self.assertEqual((c["Path"], c["Verified"], c["IsCurrent"], c["Error"]),
                                     (paths[name], True, True, None), f"{name}: {n.name}'s check")
        for n in (a, b):
            sf = self.wait_in_use(n, "TaskLogs", paths["TaskLogs"])
            self.assertEqual(sf["PackagesDirectory"], paths["Packages"], f"{n.name} uses the new Packages")
            self.assertEqual(sf["ArtifactsDirectory"], str(n.data_dir / "Artifacts"), f"{n.name} Artifacts local")
        # Either node serves a log written by the other (the folder is shared).
        tb = self.create_task(a, {"LogLines": 1}, TargetNodeId=b.id)
        tb = self.wait_done(a, tb["Id"], 10, nodes=[a, b])
        self.assertEqual((tb["State"], tb["ServerNode"]), ("Success", b.id), f"task on b: {tb}")
        self.assertIn("Diagnostic line 1 of 1", self.raw_log(a, tb["Id"]), "a serves b's log from the shared folder")

    @unittest.skipUnless(CAN_DROP, NOT_ROOT_REASON)
    def test_change_refused_when_one_node_cannot_write(self):
        a, b = self.two_nodes(unprivileged_second=True)
        shared = harness.make_tmp_dir("shared")
        bad = mkdir_mode(shared / "TaskLogs", 0o755)  # root's: b (65534) cannot write it
        good = mkdir_mode(shared / "Artifacts", 0o777)
        paths = {"Artifacts": str(good), "TaskLogs": str(bad)}
        before = self.storage(a)
        before_sf = {n.name: self.server_folders(n) for n in (a, b)}

        r = self.put_storage(a, paths, wait=30)
        t = r.json
        err = f"cannot create a file in {bad}: Permission denied"
        message = f"Storage paths unchanged: {b.name} TaskLogs: {err}."
        self.assertEqual(t["State"], "Failed", f"b cannot write TaskLogs: Failed: {t}")
        self.assertEqual(t["ErrorMessage"], message, "ErrorMessage names the node, the folder and the OS error")
        self.assertEqual(t["Attempt"], 1, "a refusal is not retried")
        self.assert_result(t["Result"], paths, [(a, {"Artifacts": None, "TaskLogs": None}),
                                                (b, {"Artifacts": None, "TaskLogs": err})],
                           activated=False, message=message)
        checks = self.list_tasks(a, "?name=VerifyStorage")["Items"]
        self.assertEqual(sorted(c["TargetNode"] for c in checks), sorted([a.id, b.id]), "both nodes checked")

        time.sleep(STORAGE_CHECK_MS / 1000 * 3)
        self.assertEqual(self.storage(a), before, "GET storage: the old paths, unchanged (Artifacts too)")
        for n in (a, b):
            self.assertEqual(self.server_folders(n), before_sf[n.name], f"{n.name} still uses its old folders")
        self.assertEqual(self.events(a, "StorageChanged"), [], "no StorageChanged event")
        self.assertEqual(probe_files(bad) + probe_files(good), [], "no probe file left behind")

    @unittest.skipUnless(CAN_DROP, NOT_ROOT_REASON)
    def test_node_that_cannot_use_a_path_activated_while_it_was_offline_reports_it(self):
        a, b = self.two_nodes(unprivileged_second=True)
        bad = mkdir_mode(harness.make_tmp_dir("shared") / "TaskLogs", 0o755)
        self.assertEqual(b.terminate(), 0, f"b stops cleanly\n{b.log_tail()}")
        self.wait_until(lambda: self.api(a, "GET", f"{NODES}/{b.id}", expect=200).json["IsOffline"],
                        10, msg="b offline", nodes=[a])
        r = self.cli_path(a, "--taskLogs", str(bad))
        self.assertEqual(r.returncode, 0, f"only a is online and can write: exit 0\n{r.stdout}\n{r.stderr}")
        self.assertIn(f"  {a.name} TaskLogs {bad}: ok", r.stdout.splitlines(), r.stdout)

        b.start()
        self.assertEqual(b.uid(), NOBODY, "b still runs as 65534")

        def b_failed():
            f = self.folder(self.storage(a), "TaskLogs")
            c = [c for c in f["Nodes"] if c["NodeId"] == b.id]
            return f if c and c[0]["Path"] == str(bad) else None
        f = self.wait_until(b_failed, 10, interval=0.1, msg="b's check of the new TaskLogs", nodes=[a, b])
        self.assertEqual(f["Path"], str(bad), "the cluster's TaskLogs")
        cb = self.check_of(f, b)
        self.assertEqual((cb["Verified"], cb["IsCurrent"], cb["Error"]),
                         (False, True, f"cannot create a file in {bad}: Permission denied"),
                         f"b reports that it cannot use the folder: {cb}")
        ca = self.check_of(f, a)
        self.assertEqual((ca["Verified"], ca["IsCurrent"]), (True, True), f"a's check: {ca}")
        self.assertIs(self.storage(b)["AllVerified"], False, "AllVerified is false while b cannot use TaskLogs")

        # b takes no ordinary task while it cannot use a folder; a still does.
        on_b = self.create_task(a, {"LogLines": 1}, TargetNodeId=b.id)
        on_a = self.create_task(a, {"LogLines": 1}, TargetNodeId=a.id)
        self.assertEqual(self.wait_done(a, on_a["Id"], 10, nodes=[a])["State"], "Success", "a runs its task")
        time.sleep(1.0)
        self.assertEqual(self.get_task(a, on_b["Id"])["State"], "Queued", "b does not take an ordinary task")

        # Once b can write the folder, it notices within storage-check-ms and runs it.
        os.chmod(bad, 0o777)
        done = self.wait_done(a, on_b["Id"], 10, nodes=[a, b])
        self.assertEqual((done["State"], done["ServerNode"]), ("Success", b.id), f"b took its task: {done}")
        self.wait_until(lambda: self.storage(a)["AllVerified"] is True, SWITCH_TIMEOUT_S, msg="AllVerified again",
                        nodes=[a, b])


    def test_node_with_task_cap_0_fails_the_change_at_once(self):
        # A node with task cap 0 runs no task at all, not even its check:
        # the change fails at once naming it, and queues no check.
        a = self.pg_node()
        b = self.track(harness.Node(name=unique_name("cap0"), db=self.db, env=dict(FAST, OCTOHA_TASK_CAP=0)))
        b.start()
        self.wait_checks(a, 2)
        before = self.storage(a)
        imports = str(harness.make_tmp_dir("shared") / "Imports")
        t0 = time.monotonic()
        t = self.put_storage(a, {"Imports": imports, "VerifyTimeoutSeconds": 20}, wait=30).json
        took = time.monotonic() - t0
        self.assertEqual(t["State"], "Failed", f"Failed: {t}")
        self.assertEqual(t["ErrorMessage"],
                         f"Storage paths unchanged: {b.name} has task cap 0, so it cannot run its "
                         "check; give it a cap above 0, or stop it, and try again.", "ErrorMessage")
        self.assertLess(took, 10, "at once, not after VerifyTimeoutSeconds")
        self.assertEqual(self.list_tasks(a, "?name=VerifyStorage")["TotalResults"], 0, "no check queued")
        self.assertEqual(self.storage(a), before, "nothing changed")

    def test_node_that_runs_no_check_in_time_fails_the_change(self):
        # A node that is registered and online but does not run its check
        # (here stopped with SIGSTOP; its heartbeat is not yet stale under a
        # long offline timeout) fails the change after VerifyTimeoutSeconds,
        # naming it, and its VerifyStorage task is canceled.
        env = dict(FAST, OCTOHA_OFFLINE_TIMEOUT_MS=60000)
        a = self.track(harness.Node(name=unique_name("s"), db=self.db, env=env))
        a.start()
        b = self.track(harness.Node(name=unique_name("stuck"), db=self.db, env=env))
        b.start()
        self.wait_checks(a, 2)
        before = self.storage(a)
        imports = str(harness.make_tmp_dir("shared") / "Imports")
        os.kill(b.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = self.put_storage(a, {"Imports": imports, "VerifyTimeoutSeconds": 2}, wait=30)
            took = time.monotonic() - t0
        finally:
            os.kill(b.pid, signal.SIGCONT)
        t = r.json
        why = "the node did not run its check within 2 s (is it stuck, or is its task cap 0?)"
        message = f"Storage paths unchanged: {b.name} Imports: {why}."
        self.assertEqual(t["State"], "Failed", f"b never checks: Failed: {t}")
        self.assertEqual(t["Arguments"]["TimeoutSeconds"], 2, "VerifyTimeoutSeconds reaches the task")
        self.assertEqual(t["ErrorMessage"], message, "ErrorMessage")
        self.assert_result(t["Result"], {"Imports": imports}, [(a, {"Imports": None}), (b, {"Imports": why})],
                           activated=False, message=message, created={(a, "Imports"): imports})
        # a's check made the folder; the refused change leaves it (b might
        # still be checking the same share) and says so.
        self.assertTrue(os.path.isdir(imports), f"{imports} is left in place")
        self.assertIn(f"Left in place: {a.name} created {imports} for Imports.", self.raw_log(a, t["Id"]),
                      "the change's log names the folder a created")
        self.assertGreaterEqual(took, 1.9, "it waited VerifyTimeoutSeconds")
        self.assertLess(took, 15, "and not much longer")
        checks = {c["TargetNode"]: c["State"] for c in self.list_tasks(a, "?name=VerifyStorage")["Items"]}
        self.assertEqual(checks, {a.id: "Success", b.id: "Canceled"}, "b's check was canceled, a's ran")
        self.assertEqual(self.storage(a), before, "nothing changed")


# ---------------------------------------------------------------------------
# `octoha-server path`.


class PathCommandTests(StorageCase):
    """`octoha-server path` against a node on SQLite (same --data-dir, name)."""

    def test_with_the_node_online(self):
        n = self.solo()
        self.wait_checks(n)
        shared = harness.make_tmp_dir("shared")
        logs, pkgs = shared / "TaskLogs", shared / "Packages"
        r = self.cli_path(n, "--taskLogs", str(logs), "--nugetRepository", str(pkgs))
        out = r.stdout.splitlines()
        self.assertEqual(r.returncode, 0, f"exit 0\n{r.stdout}\n{r.stderr}")
        m = re.match(r"^(ServerTasks-[0-9a-f]+) queued: 1 online node\(s\) check the folders$", out[0] if out else "")
        self.assertIsNotNone(m, f"first line names the task\n{r.stdout}")
        tid = m.group(1)
        self.assertIn(f"{tid} Success", out, f"the outcome line\n{r.stdout}")
        self.assertIn(f"  {n.name} TaskLogs {logs}: ok; created {logs}", out, f"per-node line for TaskLogs\n{r.stdout}")
        self.assertIn(f"  {n.name} Packages {pkgs}: ok; created {pkgs}", out, f"per-node line for Packages\n{r.stdout}")
        self.assertEqual(out[-1], NOT_MOVED, f"last line\n{r.stdout}")

        j = self.storage(n)
        for name, p in (("TaskLogs", logs), ("Packages", pkgs)):
            f = self.folder(j, name)
            self.assertEqual((f["Path"], f["TaskId"], f["ChangedBy"]),
                             (str(p), tid, f"octoha-server path on {n.name}"), f"{name} after `path`")
        for name in ("Artifacts", "Imports", "EventExports"):
            self.assertIsNone(self.folder(j, name)["Path"], f"{name} unchanged")
        t = self.get_task(n, tid)
        self.assertEqual((t["Name"], t["State"]), ("SetStoragePaths", "Success"), "the CLI's task")
        self.assertEqual(t["Arguments"]["Paths"], {"TaskLogs": str(logs), "Packages": str(pkgs)}, "its paths")
        req = self.events(n, "StorageChangeRequested")
        self.assertEqual(len(req), 1, f"one StorageChangeRequested event: {req}")
        self.assertEqual((req[0]["Operation"], req[0]["ResourceId"], req[0]["Result"]), ("path", tid, "Success"),
                         f"the shell request's event: {req[0]}")
        self.assertEqual(req[0]["Details"], {"TaskLogs": str(logs), "Packages": str(pkgs)}, "its details")
        sf = self.wait_in_use(n, "TaskLogs", str(logs))
        self.assertEqual(sf["PackagesDirectory"], str(pkgs), "PackagesDirectory switched")

    def test_bad_form_exits_2(self):
        n = self.solo()
        before = self.wait_checks(n)
        r = self.cli_path(n, "--taskLogs", "relative/TaskLogs")
        self.assertEqual(r.returncode, 2, f"a usage error\n{r.stdout}\n{r.stderr}")
        self.assertEqual(r.stderr, "path: --taskLogs must be an absolute path (start with /) on linux.\n",
                         "stderr names --taskLogs and the rule")
        self.assertEqual(r.stdout, "", "nothing on stdout")
        r = self.cli_path(n, "--artifacts", "/mnt/../x")
        self.assertEqual(r.returncode, 2, f"'..': usage error\n{r.stderr}")
        self.assertIn("--artifacts", r.stderr, "names --artifacts")
        self.assertEqual(self.storage(n), before, "nothing changed")
        self.assertEqual(self.task_count(n), 0, "no task queued")

    def test_usage_errors(self):
        for args in ([], ["--wait=0"], ["--wait=5"], ["--taskLogs=/x", "--wait=abc"]):
            with self.subTest(args=args):
                r = harness.run_cli(["path", *args], timeout=30)
                self.assertEqual(r.returncode, 2, f"path {args}: exit 2\n{r.stdout}\n{r.stderr}")
                self.assertIn("path", r.stderr, f"path {args}: says what is wrong")

    def test_folder_that_cannot_be_created_exits_1(self):
        n = self.solo()
        before = self.wait_checks(n)
        shared = harness.make_tmp_dir("shared")
        (shared / "a-file").write_text("not a folder\n")
        target = shared / "a-file" / "Imports"
        r = self.cli_path(n, "--imports", str(target))
        out = r.stdout.splitlines()
        err = f"cannot create the folder {target}: Not a directory"
        self.assertEqual(r.returncode, 1, f"exit 1\n{r.stdout}\n{r.stderr}")
        self.assertTrue(any(re.match(r"^ServerTasks-[0-9a-f]+ Failed$", l) for l in out), f"Failed line\n{r.stdout}")
        self.assertIn(f"  {n.name} Imports {target}: {err}", out, f"per-node line with the error\n{r.stdout}")
        self.assertEqual(out[-1], f"Storage paths unchanged: {n.name} Imports: {err}.", f"last line\n{r.stdout}")
        time.sleep(STORAGE_CHECK_MS / 1000 * 3)
        self.assertEqual(self.storage(n), before, "nothing changed")
        self.assertEqual(self.server_folders(n)["ImportsDirectory"], str(n.data_dir / "Imports"), "Imports local")

    def test_with_no_node_online(self):
        n = self.solo()
        self.wait_checks(n)
        self.assertEqual(n.terminate(), 0, f"the node stops cleanly\n{n.log_tail()}")
        self.assertIn("node marked offline", n.log, "a clean stop marks the node offline at once")
        shared = harness.make_tmp_dir("shared")
        (shared / "a-file").write_text("x")

        # A folder this machine cannot create: exit 1, nothing recorded.
        bad = shared / "a-file" / "Artifacts"
        r = self.cli_path(n, "--artifacts", str(bad))
        self.assertEqual(r.returncode, 1, f"exit 1\n{r.stdout}\n{r.stderr}")
        self.assertEqual(r.stdout.splitlines(),
                         [f"  {n.name} Artifacts {bad}: cannot create the folder {bad}: Not a directory",
                          "Storage paths unchanged."], "output")

        # Two levels missing: the topmost folder made is the one reported.
        art = shared / "new" / "Artifacts"
        r = self.cli_path(n, "--artifacts", str(art))
        self.assertEqual(r.returncode, 0, f"exit 0\n{r.stdout}\n{r.stderr}")
        self.assertEqual(r.stdout.splitlines(), [
            f"  {n.name} Artifacts {art}: ok; created {shared / 'new'}",
            "No node is online: checked from this machine and activated. Every node proves the folders "
            "again when it starts. Files already in the old folders were not moved.",
        ], "output")
        self.assertTrue(art.is_dir(), "the folder was created by the check")
        self.assertEqual(probe_files(art), [], "no probe file left behind")

        n.start()
        sf = self.wait_in_use(n, "Artifacts", str(art))
        self.assertEqual(sf["TaskLogsDirectory"], str(n.data_dir / "TaskLogs"), "TaskLogs still local")
        j = self.storage(n)
        f = self.folder(j, "Artifacts")
        self.assertEqual((f["Path"], f["TaskId"], f["ChangedBy"]), (str(art), None, f"octoha-server path on {n.name}"),
                         f"Artifacts after `path` with no node online: {f}")
        c = self.check_of(f, n)
        self.assertEqual((c["Path"], c["Verified"], c["IsCurrent"]), (str(art), True, True), f"the node's check: {c}")
        ev = self.events(n, "StorageChanged")
        self.assertEqual(len(ev), 1, f"one StorageChanged event: {ev}")
        self.assertEqual((ev[0]["Operation"], ev[0]["Details"]), ("path", {"Artifacts": str(art)}),
                         f"StorageChanged from the shell: {ev[0]}")


if __name__ == "__main__":
    harness.main()
