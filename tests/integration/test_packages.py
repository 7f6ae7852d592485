#!/usr/bin/env python3
"""The built-in package repository (issue 11) and the Octopus-shaped routes
around it: the root document, spaces, space-scoped tasks and task details,
Tentacles as machines.  One node on the embedded SQLite database; uploads
over real HTTP, checked against the Packages folder on disk.

The 2 GiB upload that checks the node's memory stays flat is
LargeUploadTests; the two-node race and cross-node download are in
test_packages_pg.py.
"""
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest
import zipfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import unique_name  # noqa: E402
from test_tasks_sqlite import FAST, TASKS, TaskTestCase  # noqa: E402

SPACE = "Spaces-1"
PACKAGES = f"/api/{SPACE}/packages"
UPLOAD = f"{PACKAGES}/raw"
BOUNDARY = "----octohaTestBoundary7MA4YWxkTrZu0gW"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def multipart(files=(), fields=(), boundary=BOUNDARY, close=True) -> bytes:
    """A multipart/form-data body: FILES are (field, filename, bytes)."""
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode())
        out.write(value.encode() + b"\r\n")
    for field, filename, data in files:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                  f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode())
        out.write(data + b"\r\n")
    if close:
        out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


def mp_headers(boundary=BOUNDARY) -> dict:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def nupkg(pkg_id: str, version: str, title="A title") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{pkg_id}.nuspec",
                   '<?xml version="1.0"?><package xmlns="http://schemas.microsoft.com/packaging/2013/05/'
                   f'nuspec.xsd"><metadata><id>{pkg_id}</id><version>{version}</version>'
                   f"<title>{title}</title><description>d</description>"
                   "<releaseNotes>notes</releaseNotes></metadata></package>")
        z.writestr("content/readme.txt", "hello")
    return buf.getvalue()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def sanitized(pid: int) -> bool:
    """True when process PID runs with AddressSanitizer's runtime."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


class PackageCase(TaskTestCase):
    """Helpers for package uploads (no tests of its own)."""

    def push(self, node, filename, data, expect=201, query="", key=harness.DEFAULT_KEY, body=None,
             headers=None):
        body = multipart([("fileToUpload", filename, data)]) if body is None else body
        r = self.api(node, "POST", UPLOAD + query, body=body, headers=headers or mp_headers(),
                     expect=expect, key=key, timeout=60)
        return r

    def packages_dir(self, node) -> Path:
        return Path(self.api(node, "GET", "/api/configuration/server-folders/values",
                             expect=200).json["PackagesDirectory"])

    def files(self, node) -> list:
        """Every file in the node's Packages folder, relative, sorted."""
        root = self.packages_dir(node)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def wait_no_temp(self, node, timeout=10.0):
        root = self.packages_dir(node) / ".uploads"
        self.wait_until(lambda: not root.exists() or not any(root.iterdir()), timeout,
                        msg="no temporary upload file left", nodes=[node])

    def listing(self, node, query="") -> dict:
        return self.api(node, "GET", PACKAGES + query, expect=200).json

    def assert_nothing_left(self, node, files_before, rows_before, what):
        self.wait_no_temp(node)
        self.assertEqual(self.files(node), files_before, f"{what}: no file left in the Packages folder")
        self.assertEqual(self.listing(node)["TotalResults"], rows_before, f"{what}: no package recorded")


class RootAndSpacesTests(PackageCase):
    """GET /api, spaces and the space root."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(env=dict(FAST))

    def test_root_document_needs_no_key_and_has_the_links(self):
        r = self.api(self.node, "GET", "/api", key=None, expect=200)
        j = r.json
        self.assertEqual(j["Application"], "octoha")
        self.assertRegex(j["InstallationId"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        for link in ("Self", "Spaces", "Tasks", "OctopusServerNodes", "OctopusServerClusterSummary",
                     "ServerStatus", "ServerHealthStatus", "Events", "Packages", "PackageUpload"):
            self.assertIn(link, j["Links"], f"root document links {link}")
        self.assertIn("{spaceId}", j["Links"]["PackageUpload"], "space-scoped links are templates")
        # Every link that is not a template resolves on this node.
        for name, href in j["Links"].items():
            if name == "PackageUpload":  # POST only
                continue
            path = href.replace("{spaceId}", SPACE).split("{", 1)[0]
            with self.subTest(link=name):
                resp = self.node.request("GET", path)
                self.assertEqual(resp.status, 200, f"link {name} -> GET {path}: {resp.describe(200)}")

    def test_installation_id_is_stable(self):
        node = self.start_node(env=dict(FAST))
        first = self.api(node, "GET", "/api", expect=200).json["InstallationId"]
        node.terminate()
        node.restart()
        self.assertEqual(self.api(node, "GET", "/api", expect=200).json["InstallationId"], first,
                         "the same database keeps its InstallationId across a restart")
        other = self.api(self.node, "GET", "/api", expect=200).json["InstallationId"]
        self.assertNotEqual(other, first, "another database has another InstallationId")

    def test_spaces_as_the_client_asks(self):
        j = self.api(self.node, "GET", "/api/spaces?partialName=Default&skip=0&take=2147483647",
                     expect=200).json
        self.assertEqual(j["TotalResults"], 1)
        space = j["Items"][0]
        self.assertEqual((space["Id"], space["Name"], space["IsDefault"]), (SPACE, "Default", True))
        self.assertEqual(self.api(self.node, "GET", "/api/spaces?partialName=efa", expect=200).json["TotalResults"], 1)
        self.assertEqual(self.api(self.node, "GET", "/api/spaces?partialName=Other", expect=200).json["TotalResults"], 0)
        self.assertEqual(self.api(self.node, "GET", f"/api/spaces/{SPACE}", expect=200).json["Name"], "Default")
        r = self.api(self.node, "GET", "/api/spaces/Spaces-2", expect=404)
        self.assert_error(r, 404, "NotFound", "id")
        r = self.api(self.node, "GET", "/api/spaces?take=0", expect=400)
        self.assert_error(r, 400, "ValidationFailed", "take")
        r = self.api(self.node, "GET", "/api/spaces", key=None, expect=401)

    def test_space_root_and_unknown_spaces(self):
        j = self.api(self.node, "GET", f"/api/{SPACE}", expect=200).json
        self.assertTrue(j["Links"]["PackageUpload"].startswith(f"/api/{SPACE}/packages/raw"))
        for path in ("/api/Spaces-2", "/api/Spaces-2/tasks", "/api/Spaces-2/machines", "/api/Spaces-2/packages",
                     "/api/Spaces-2/tasks/ServerTasks-0abc/details"):
            with self.subTest(path=path):
                r = self.api(self.node, "GET", path, expect=404)
                self.assert_error(r, 404, "NotFound", "spaceId")


class SpaceTaskTests(PackageCase):
    """Space-scoped task routes and task details."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(env=dict(FAST))

    def test_scoped_routes_details_and_ids(self):
        t = self.create_task(self.node, {"WaitMs": 10, "LogLines": 3, "FailAttempts": 1})
        tid = t["Id"]
        got = self.api(self.node, "GET", f"/api/{SPACE}/tasks/{tid}?waitSeconds=30", expect=200).json
        self.assertEqual(got["State"], "Success", got)
        self.assertEqual(got["SpaceId"], SPACE)
        other = self.create_task(self.node, {"WaitMs": 10})
        listed = self.api(self.node, "GET", f"/api/{SPACE}/tasks?skip=0&take=300&ids={tid},{other['Id']},"
                                            "ServerTasks-0ff", expect=200).json
        self.assertEqual(sorted(i["Id"] for i in listed["Items"]), sorted([tid, other["Id"]]),
                         "ids selects those tasks; unknown ids are left out")
        raw = self.node.request("GET", f"/api/{SPACE}/tasks/{tid}/raw")
        self.assertEqual(raw.status, 200)
        self.assertIn(b"Attempt 2 of", raw.body)
        d = self.api(self.node, "GET", f"/api/{SPACE}/tasks/{tid}/details", expect=200).json
        self.assertEqual(d["Task"]["Id"], tid)
        self.assertEqual(len(d["ActivityLogs"]), 2, "one activity per attempt")
        first, second = d["ActivityLogs"]
        self.assertEqual((first["Status"], second["Status"]), ("Failed", "Success"))
        self.assertTrue(first["Name"].startswith("Attempt 1 of"), first["Name"])
        self.assertTrue(all(e["Category"] in ("Info", "Warning", "Error") for e in second["LogElements"]))
        texts = [e["MessageText"] for e in second["LogElements"]]
        self.assertEqual(len([x for x in texts if x.startswith("Diagnostic line ")]), 3, f"the 3 log lines: {texts}")
        self.assertEqual(texts[-1], "Attempt 2 ended: Success")
        self.assertEqual(d["PhysicalLogSize"], len(raw.body))
        self.assertEqual(d["Progress"]["ProgressPercentage"], 100)
        tail = self.api(self.node, "GET", f"/api/tasks/{tid}/details?tail=1", expect=200).json
        self.assertTrue(all(len(a["LogElements"]) <= 1 for a in tail["ActivityLogs"]))
        r = self.api(self.node, "GET", f"/api/tasks/ServerTasks-0aaa/details", expect=404)
        self.assert_error(r, 404, "NotFound", "id")
        part = self.api(self.node, "GET", f"/api/tasks?partialName=DIAGNOSTIC&take=100", expect=200).json
        self.assertGreaterEqual(part["TotalResults"], 2, "partialName matches the description, any case")
        none = self.api(self.node, "GET", f"/api/tasks?partialName=no-such-task", expect=200).json
        self.assertEqual(none["TotalResults"], 0)
        r = self.api(self.node, "GET", f"/api/{SPACE}/tasks?ids=nope", expect=400)
        self.assert_error(r, 400, "ValidationFailed", "ids")


class MachineTests(PackageCase):
    """Tentacles as Octopus machines."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(env=dict(FAST))

    def test_tentacles_are_machines(self):
        thumb = "AB" * 20
        poll = self.api(self.node, "POST", "/api/tentacles", expect=202,
                        body={"Name": "web-01", "Thumbprint": thumb, "CommunicationStyle": "TentacleActive"}).json
        listen = self.api(self.node, "POST", "/api/tentacles", expect=202,
                          body={"Name": "db-01", "Thumbprint": "CD" * 20, "CommunicationStyle": "TentaclePassive",
                                "Uri": "https://db-01:10933/"}).json
        del poll, listen
        j = self.api(self.node, "GET", f"/api/{SPACE}/machines", expect=200).json
        self.assertEqual(j["TotalResults"], 2)
        by_name = {m["Name"]: m for m in j["Items"]}
        web = by_name["web-01"]
        self.assertEqual(web["Endpoint"]["CommunicationStyle"], "TentacleActive")
        self.assertTrue(web["Endpoint"]["Uri"].startswith("poll://"), web)
        self.assertEqual(web["Endpoint"]["Thumbprint"], thumb)
        self.assertEqual((web["HealthStatus"], web["Status"]), ("Unknown", "Unknown"))
        self.assertEqual(by_name["db-01"]["Endpoint"]["Uri"], "https://db-01:10933/")
        one = self.api(self.node, "GET", f"/api/{SPACE}/machines?thumbprint={thumb.lower()}", expect=200).json
        self.assertEqual([m["Name"] for m in one["Items"]], ["web-01"], "thumbprint matches in any case")
        self.assertEqual([m["Name"] for m in self.api(self.node, "GET", f"/api/{SPACE}/machines?partialName=DB",
                                                      expect=200).json["Items"]], ["db-01"])
        self.assertEqual([m["Name"] for m in self.api(self.node, "GET", f"/api/{SPACE}/machines?commStyles="
                                                      "TentaclePassive", expect=200).json["Items"]], ["db-01"])
        self.assertEqual(len(self.api(self.node, "GET", f"/api/{SPACE}/machines?skip=1&take=1",
                                      expect=200).json["Items"]), 1)
        # Pages by name, the next one by cursor (Links.Page.Next), as every list.
        first = self.api(self.node, "GET", f"/api/{SPACE}/machines?take=1", expect=200).json
        self.assertEqual([m["Name"] for m in first["Items"]], ["db-01"])
        nxt = first["Links"]["Page.Next"]
        self.assertIn(f"after={by_name['db-01']['Id']}", nxt)
        self.assertEqual([m["Name"] for m in self.api(self.node, "GET", nxt, expect=200).json["Items"]],
                         ["web-01"])
        r = self.api(self.node, "GET", f"/api/{SPACE}/machines?after=Tentacles-gone", expect=400)
        self.assert_error(r, 400, "ValidationFailed", "after")
        r = self.api(self.node, "GET", f"/api/{SPACE}/machines?skip=10001", expect=400)
        self.assert_error(r, 400, "SkipTooDeep", "skip")
        got = self.api(self.node, "GET", f"/api/{SPACE}/machines/{web['Id']}", expect=200).json
        self.assertEqual(got["Name"], "web-01")
        r = self.api(self.node, "GET", f"/api/{SPACE}/machines/Tentacles-0abc", expect=404)
        self.assert_error(r, 404, "NotFound", "id")
        r = self.api(self.node, "GET", f"/api/{SPACE}/machines?commStyles=Ssh", expect=400)
        self.assert_error(r, 400, "ValidationFailed", "commStyles")


class PackageTests(PackageCase):
    """Uploads, listing, download, deletion and every refusal, on one node."""

    def setUp(self):
        self.node = self.start_node(env=dict(FAST))

    def test_push_then_exists_ignore_overwrite(self):
        data = os.urandom(300_000)
        r = self.push(self.node, "Acme.Web.1.2.3.zip", data, expect=201)
        p = r.json
        self.assertEqual((p["Id"], p["PackageId"], p["Version"], p["FileExtension"]),
                         ("packages-Acme.Web.1.2.3", "Acme.Web", "1.2.3", ".zip"))
        self.assertEqual(p["Hash"], hashlib.sha1(data).hexdigest())
        self.assertEqual(p["Sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(p["PackageSizeBytes"], len(data))
        self.assertEqual(r.header("Location"), f"{PACKAGES}/{p['Id']}")
        files = self.files(self.node)
        self.assertEqual(len(files), 1, files)
        self.assertTrue(files[0].startswith(f"{SPACE}/Acme.Web/Acme.Web.1.2.3_"), files)
        stored = (self.packages_dir(self.node) / files[0]).read_bytes()
        self.assertEqual(stored, data, "the stored file is the upload, byte for byte")

        r = self.push(self.node, "Acme.Web.1.2.3.zip", os.urandom(10), expect=409)
        self.assert_error(r, 409, "PackageExists", "fileToUpload")
        r = self.push(self.node, "acme.web.1.2.3.zip", os.urandom(10), expect=409)
        self.assert_error(r, 409, "PackageExists", what="package ids are case-insensitive")
        r = self.push(self.node, "Acme.Web.1.2.3.0.zip", os.urandom(10), expect=409,
                      query="?overwriteMode=FailIfExists")
        self.assert_error(r, 409, "PackageExists", what="1.2.3.0 is 1.2.3")
        self.assertEqual(self.files(self.node), files, "refused uploads leave no file")
        r = self.push(self.node, "Acme.Web.1.2.3.zip", os.urandom(10), expect=200,
                      query="?overwriteMode=IgnoreIfExists")
        self.assertEqual(r.json["Hash"], p["Hash"], "IgnoreIfExists keeps the first")
        self.assertEqual(self.files(self.node), files)
        new = os.urandom(1000)
        r = self.push(self.node, "Acme.Web.1.2.3.zip", new, expect=200, query="?overwriteMode=OverwriteExisting")
        self.assertEqual(r.json["Hash"], hashlib.sha1(new).hexdigest())
        after = self.files(self.node)
        self.assertEqual(len(after), 1, f"the replaced file is gone: {after}")
        self.assertNotEqual(after, files)
        newer = os.urandom(1000)
        r = self.push(self.node, "Acme.Web.1.2.3.zip", newer, expect=200, query="?replace=true")
        self.assertEqual(r.json["Hash"], hashlib.sha1(newer).hexdigest(), "replace=true overwrites")
        self.assertEqual(len(self.files(self.node)), 1)
        self.wait_no_temp(self.node)
        events = self.api(self.node, "GET", "/api/events?category=PackagePushed", expect=200).json["Items"]
        self.assertEqual(len(events), 3, "each stored upload is audited")
        self.assertEqual(events[0]["ResourceId"], "packages-Acme.Web.1.2.3")

    def test_list_get_download_ranges_delete(self):
        blobs = {}
        for name in ("Acme.Web.1.0.0.zip", "Acme.Web.1.10.0.zip", "Acme.Web.1.2.0-beta.1.zip",
                     "Acme.Web.1.2.0.zip", "Other.Svc.3.0.0.tar.gz"):
            blobs[name] = os.urandom(5000)
            self.push(self.node, name, blobs[name], expect=201)
        j = self.listing(self.node)
        self.assertEqual(j["TotalResults"], 5)
        self.assertEqual([i["Version"] for i in j["Items"] if i["PackageId"] == "Acme.Web"],
                         ["1.10.0", "1.2.0", "1.2.0-beta.1", "1.0.0"], "newest version first, SemVer order")
        latest = self.listing(self.node, "?latest=true")
        self.assertEqual(sorted((i["PackageId"], i["Version"]) for i in latest["Items"]),
                         [("Acme.Web", "1.10.0"), ("Other.Svc", "3.0.0")])
        self.assertEqual(self.listing(self.node, "?filter=svc")["TotalResults"], 1)
        self.assertEqual(self.listing(self.node, "?filter=%25")["TotalResults"], 0, "LIKE wildcards are literal")
        self.assertEqual(self.listing(self.node, "?nuGetPackageId=acme.web")["TotalResults"], 4)
        page = self.listing(self.node, "?skip=1&take=2")
        self.assertEqual((page["TotalResults"], len(page["Items"])), (5, 2))
        # Page by page with the cursor (Links.Page.Next), in the list's order,
        # the filters kept: the same versions as the whole list.
        seen, url = [], f"{PACKAGES}?nuGetPackageId=acme.web&take=3"
        while url:
            p = self.api(self.node, "GET", url, expect=200).json
            self.assertEqual(p["TotalResults"], 4, "the total counts the whole list")
            seen += [i["Version"] for i in p["Items"]]
            url = p["Links"].get("Page.Next")
        self.assertEqual(seen, ["1.10.0", "1.2.0", "1.2.0-beta.1", "1.0.0"])
        r = self.api(self.node, "GET", f"{PACKAGES}?after=packages-Nothing.1.0.0", expect=400)
        self.assert_error(r, 400, "ValidationFailed", "after")
        r = self.api(self.node, "GET", f"{PACKAGES}?skip=10001", expect=400)
        self.assert_error(r, 400, "SkipTooDeep", "skip")
        pid = "packages-Acme.Web.1.2.0"
        got = self.api(self.node, "GET", f"{PACKAGES}/{pid}", expect=200).json
        self.assertEqual(got["Version"], "1.2.0")
        body = blobs["Acme.Web.1.2.0.zip"]
        d = self.node.request("GET", f"{PACKAGES}/{pid}/raw")
        self.assertEqual(d.status, 200)
        self.assertEqual(d.body, body)
        self.assertEqual(int(d.header("Content-Length")), len(body))
        etag = d.header("ETag")
        self.assertEqual(etag, f'"{hashlib.sha1(body).hexdigest()}"')
        self.assertEqual(d.header("Accept-Ranges"), "bytes")
        r = self.node.request("GET", f"{PACKAGES}/{pid}/raw", headers={"Range": "bytes=10-19"})
        self.assertEqual((r.status, r.body, r.header("Content-Range")), (206, body[10:20], f"bytes 10-19/{len(body)}"))
        r = self.node.request("GET", f"{PACKAGES}/{pid}/raw", headers={"Range": "bytes=-7"})
        self.assertEqual((r.status, r.body), (206, body[-7:]))
        r = self.node.request("GET", f"{PACKAGES}/{pid}/raw", headers={"Range": "bytes=4990-"})
        self.assertEqual((r.status, r.body), (206, body[4990:]))
        r = self.node.request("GET", f"{PACKAGES}/{pid}/raw", headers={"Range": f"bytes={len(body)}-"})
        self.assertEqual(r.status, 416)
        self.assert_error(r, 416, "RangeNotSatisfiable", "Range")
        self.assertEqual(r.header("Content-Range"), f"bytes */{len(body)}")
        r = self.node.request("GET", f"{PACKAGES}/{pid}/raw", headers={"If-None-Match": etag})
        self.assertEqual((r.status, r.body), (304, b""))
        r = self.node.request("GET", f"{PACKAGES}/{pid}/raw", headers={"Range": "bytes=0-0", "If-Range": '"x"'})
        self.assertEqual((r.status, r.body), (200, body), "If-Range with another ETag: the whole file")

        reader, _ = harness.create_key_cli("reader", "Reader", env={"OCTOHA_DATA_DIR": str(self.node.data_dir)})
        self.assertIsNotNone(reader)
        self.assertEqual(self.node.request("GET", f"{PACKAGES}/{pid}/raw", key=reader).status, 200)
        r = self.api(self.node, "DELETE", f"{PACKAGES}/{pid}", key=reader, expect=403)
        self.assert_error(r, 403, "RoleNotAllowed")
        r = self.push(self.node, "Acme.Web.9.0.0.zip", b"x", key=reader, expect=403)
        before = self.files(self.node)
        r = self.api(self.node, "DELETE", f"{PACKAGES}/{pid}", expect=200)
        self.assertEqual(r.json["Id"], pid)
        self.assertEqual(len(self.files(self.node)), len(before) - 1, "its file is gone")
        self.api(self.node, "GET", f"{PACKAGES}/{pid}", expect=404)
        self.api(self.node, "GET", f"{PACKAGES}/{pid}/raw", expect=404)
        self.api(self.node, "DELETE", f"{PACKAGES}/{pid}", expect=404)
        ev = self.api(self.node, "GET", "/api/events?category=PackageDeleted", expect=200).json["Items"]
        self.assertEqual([e["ResourceId"] for e in ev], [pid])

    def test_nupkg_identity_comes_from_its_nuspec(self):
        r = self.push(self.node, "anything.9.9.9.nupkg", nupkg("Acme.Lib", "2.0.0-rc.1"), expect=201)
        self.assertEqual((r.json["PackageId"], r.json["Version"], r.json["Title"], r.json["ReleaseNotes"]),
                         ("Acme.Lib", "2.0.0-rc.1", "A title", "notes"))
        r = self.push(self.node, "Acme.Lib.1.0.0.nupkg", b"not a zip", expect=400)
        self.assert_error(r, 400, "InvalidPackage", "fileToUpload")
        r = self.push(self.node, "Acme.Lib.1.0.0.nupkg", nupkg("bad id!", "1.0"), expect=400)
        self.assert_error(r, 400, "InvalidPackage", "fileToUpload")
        self.wait_no_temp(self.node)
        self.assertEqual(len(self.files(self.node)), 1)

    def test_every_refusal_leaves_nothing(self):
        self.push(self.node, "Keep.1.0.0.zip", b"keep", expect=201)
        files, rows = self.files(self.node), 1
        one = multipart([("fileToUpload", "Acme.1.0.0.zip", b"data")])
        cases = [
            ("no multipart", dict(body=b"{}", headers={"Content-Type": "application/json"}), 415,
             "UnsupportedMediaType", None),
            ("no boundary", dict(body=one, headers={"Content-Type": "multipart/form-data"}), 415,
             "UnsupportedMediaType", None),
            ("no file part", dict(body=multipart(fields=[("a", "b")])), 400, "InvalidPackage", "fileToUpload"),
            ("two files", dict(body=multipart([("f", "A.1.0.zip", b"1"), ("g", "B.1.0.zip", b"2")])), 400,
             "InvalidPackage", "fileToUpload"),
            ("bad name", dict(body=multipart([("fileToUpload", "NoVersion.zip", b"x")])), 400,
             "InvalidPackage", "fileToUpload"),
            ("bad extension", dict(body=multipart([("fileToUpload", "Acme.1.0.0.exe", b"x")])), 400,
             "InvalidPackage", "fileToUpload"),
            ("empty file", dict(body=multipart([("fileToUpload", "Acme.1.0.0.zip", b"")])), 400,
             "InvalidPackage", "fileToUpload"),
            ("no close delimiter", dict(body=multipart([("fileToUpload", "Acme.1.0.0.zip", b"x" * 5000)],
                                                       close=False)), 400, "BadRequest", None),
            ("bad part headers", dict(body=f"--{BOUNDARY}\r\nno colon\r\n\r\nx\r\n--{BOUNDARY}--".encode()),
             400, "InvalidPackage", None),
            ("bad overwriteMode", dict(body=one, query="?overwriteMode=Sometimes"), 400, "ValidationFailed",
             "overwriteMode"),
            ("unknown space", dict(body=one, path="/api/Spaces-7/packages/raw"), 404, "NotFound", "spaceId"),
            ("no key", dict(body=one, key=None), 401, "ApiKeyMissing", None),
        ]
        for what, kw, status, code, field in cases:
            with self.subTest(what):
                path = kw.pop("path", UPLOAD) + kw.pop("query", "")
                r = self.api(self.node, "POST", path, body=kw.pop("body"), headers=kw.pop("headers", mp_headers()),
                             key=kw.pop("key", harness.DEFAULT_KEY), expect=status)
                self.assert_error(r, status, code, field, what)
                self.assert_nothing_left(self.node, files, rows, what)
        self.assertEqual(self.node.ping().status, 200)

    def test_chunked_upload_and_expect_continue(self):
        data = os.urandom(700_000)
        body = multipart([("fileToUpload", "Chunky.1.0.0.zip", data)])
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=30)
        headers = dict(mp_headers(), **{harness.API_KEY_HEADER: harness.ADMIN_KEY})
        conn.request("POST", UPLOAD, body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                     headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        j = json.loads(resp.read())
        conn.close()
        self.assertEqual(resp.status, 201, j)
        self.assertEqual(j["Hash"], hashlib.sha1(data).hexdigest())
        # curl sends Expect: 100-continue for large bodies: it gets its 100 at once.
        src = harness.make_tmp_dir("curl") / "Curly.1.0.0.zip"
        src.write_bytes(data)
        t0 = time.monotonic()
        out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "%{http_code}", "-H", f"X-Octopus-ApiKey: {harness.ADMIN_KEY}",
                              "-H", "Expect: 100-continue", "--expect100-timeout", "20",
                              "-F", f"fileToUpload=@{src}", self.node.url(UPLOAD)],
                             capture_output=True, text=True, timeout=60)
        self.assertTrue(out.stdout.endswith("201"), out.stdout[-300:] + out.stderr)
        self.assertLess(time.monotonic() - t0, 15, "curl did not wait out its expect timeout")

    def test_cut_upload_leaves_no_row_and_no_file(self):
        files = self.files(self.node)
        head = multipart([("fileToUpload", "Cut.1.0.0.zip", b"")], close=False)[:-2]
        for cut_at in (0, 3 * 1024 * 1024):
            with self.subTest(cut_at=cut_at):
                s = socket.create_connection(("127.0.0.1", self.node.port), timeout=10)
                total = len(head) + 10 * 1024 * 1024
                s.sendall((f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\n{harness.API_KEY_HEADER}: {harness.ADMIN_KEY}\r\n"
                           f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                           f"Content-Length: {total}\r\n\r\n").encode() + head)
                chunk = os.urandom(256 * 1024)
                sent = 0
                while sent < cut_at:
                    s.sendall(chunk)
                    sent += len(chunk)
                time.sleep(0.3)
                s.close()  # the client goes away halfway
                self.wait_no_temp(self.node)
                self.assertEqual(self.files(self.node), files, "no file")
                self.assertEqual(self.listing(self.node)["TotalResults"], 0, "no row")
        self.assertEqual(self.node.ping().status, 200)

    def test_stale_temp_and_unnamed_files_are_swept_and_retention_keeps_newest(self):
        node = self.start_node(env=dict(FAST, OCTOHA_PACKAGE_RETENTION_EVERY_MS="300",
                                        OCTOHA_PACKAGE_RETENTION_VERSIONS="2"))
        for v in ("1.0.0", "1.1.0", "2.0.0-beta", "2.0.0"):
            self.push(node, f"Ret.{v}.zip", os.urandom(100), expect=201)
        self.push(node, "Single.1.0.0.zip", b"one", expect=201)
        root = self.packages_dir(node)
        (root / ".uploads").mkdir(exist_ok=True)
        stale, fresh = root / ".uploads" / "dead.part", root / ".uploads" / "live.part"
        orphan = root / SPACE / "Ret" / "Ret.0.1.0_deadbeef.zip"
        for f in (stale, fresh, orphan):
            f.write_bytes(b"x")
        old = time.time() - 3600
        os.utime(stale, (old, old))
        os.utime(orphan, (old, old))
        self.wait_until(lambda: not stale.exists() and not orphan.exists(), 20,
                        msg="the dead upload's temporary file and the unnamed file are swept", nodes=[node])
        self.assertTrue(fresh.exists(), "a recent temporary file (a live upload) is left alone")
        fresh.unlink()
        self.wait_until(lambda: self.listing(node, "?nuGetPackageId=Ret")["TotalResults"] == 2, 20,
                        msg="retention keeps two versions", nodes=[node])
        self.assertEqual([i["Version"] for i in self.listing(node, "?nuGetPackageId=Ret")["Items"]],
                         ["2.0.0", "2.0.0-beta"])
        self.assertEqual(self.listing(node, "?nuGetPackageId=Single")["TotalResults"], 1)
        self.assertEqual(len([f for f in self.files(node) if f.startswith(f"{SPACE}/Ret/")]), 2,
                         "the older versions' files are deleted too")
        tasks = self.api(node, "GET", f"{TASKS}?name=PackageRetention&states=Success", expect=200).json
        self.assertGreaterEqual(tasks["TotalResults"], 1, "retention ran as a task")

    def test_max_package_bytes(self):
        node = self.start_node(env=dict(FAST, OCTOHA_MAX_PACKAGE_BYTES="100000"))
        self.push(node, "Small.1.0.0.zip", os.urandom(100_000), expect=201)
        files = self.files(node)
        r = self.push(node, "Big.1.0.0.zip", os.urandom(300_000), expect=413)
        self.assert_error(r, 413, "PayloadTooLarge")
        # Chunked: no Content-Length, so it is found out while streaming.
        body = multipart([("fileToUpload", "Big.1.0.0.zip", os.urandom(150_000))])
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
        conn.request("POST", UPLOAD, body=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
                     headers=dict(mp_headers(), **{harness.API_KEY_HEADER: harness.ADMIN_KEY}),
                     encode_chunked=True)
        resp = conn.getresponse()
        err = json.loads(resp.read())
        conn.close()
        self.assertEqual((resp.status, err["Code"]), (413, "PayloadTooLarge"), err)
        self.assert_nothing_left(node, files, 1, "over max-package-bytes")

    @unittest.skipUnless(IS_ROOT and shutil.which("mount"), "needs root to mount a small tmpfs as the Packages folder")
    def test_disk_full_is_507_and_leaves_nothing(self):
        node = harness.Node(env=dict(FAST))
        pkgs = node.data_dir / "Packages"
        pkgs.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "octoha-test", str(pkgs)], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", str(pkgs)])
        self.track(node)
        node.start()
        self.push(node, "Fits.1.0.0.zip", os.urandom(1_000_000), expect=201)
        files = self.files(node)
        r = self.push(node, "TooBig.1.0.0.zip", os.urandom(12 * 1024 * 1024), expect=507)
        self.assert_error(r, 507, "InsufficientStorage")
        self.assert_nothing_left(node, files, 1, "disk full")
        self.push(node, "Fits.2.0.0.zip", os.urandom(1_000_000), expect=201)
        self.assertEqual(node.ping().status, 200)


class LargeUploadTests(PackageCase):
    """A 2 GiB upload streamed from generated data: the node's RSS stays flat."""

    SIZE = int(os.environ.get("OCTOHA_TEST_LARGE_UPLOAD_BYTES", str(2 * 1024 ** 3)))

    def test_two_gib_upload_keeps_memory_flat(self):
        node = self.start_node(env=dict(FAST))
        block = os.urandom(1024 * 1024)
        head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"fileToUpload\"; "
                f"filename=\"Huge.1.0.0.zip\"\r\n\r\n").encode()
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        sha1 = hashlib.sha1()
        peak = [0]
        base = rss_kib(node.pid)
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(node.pid))
                time.sleep(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
        conn.putrequest("POST", UPLOAD)
        conn.putheader(harness.API_KEY_HEADER, harness.ADMIN_KEY)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        conn.putheader("Content-Length", str(len(head) + self.SIZE + len(tail)))
        conn.endheaders()
        conn.send(head)
        sent = 0
        while sent < self.SIZE:
            piece = block[: min(len(block), self.SIZE - sent)]
            conn.send(piece)
            sha1.update(piece)
            sent += len(piece)
        conn.send(tail)
        resp = conn.getresponse()
        j = json.loads(resp.read())
        conn.close()
        stop.set()
        sampler.join()
        self.assertEqual(resp.status, 201, j)
        self.assertEqual((j["PackageSizeBytes"], j["Hash"]), (self.SIZE, sha1.hexdigest()))
        growth_mib = (peak[0] - base) / 1024
        print(f"\n{self.SIZE / 2**30:.2f} GiB upload: node RSS {base / 1024:.1f} MiB before, "
              f"peak {peak[0] / 1024:.1f} MiB (growth {growth_mib:.1f} MiB)", file=sys.stderr)
        # Under AddressSanitizer the RSS holds its shadow memory and the
        # quarantine of freed blocks, not the node's: there only a body held
        # in memory (2 GiB) would show, so the bound is looser.
        limit = 256 if sanitized(node.pid) else 48
        self.assertLess(growth_mib, limit, "the upload streams: RSS does not grow with the body")
        self.api(node, "DELETE", f"{PACKAGES}/{j['Id']}", expect=200)  # the disk use is cleaned
        self.assertEqual(self.files(node), [])


if __name__ == "__main__":
    harness.main()
