#!/usr/bin/env python3
"""HTTPS on the listen port when OCTOHA_TLS_CERT and OCTOHA_TLS_KEY are both set.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_https.py

Makes a self-signed certificate with the openssl CLI and talks to the node
with the curl CLI (and with Python's ssl module).
"""

import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, PING, Node, node_id, unique_name  # noqa: E402


def make_cert(directory):
    cert, key = directory / "cert.pem", directory / "key.pem"
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "2", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, text=True, timeout=120,
    )
    if r.returncode != 0:
        raise RuntimeError(f"openssl req failed: {r.stderr}")
    return cert, key


def curl(url, *extra, timeout=10):
    """(exit code, HTTP status (0 if none), body bytes, headers text) from the curl CLI."""
    out_dir = harness.make_tmp_dir("curl")
    body_file, head_file = out_dir / "body", out_dir / "headers"
    r = subprocess.run(
        ["curl", "-sS", "--max-time", str(timeout), "-o", str(body_file), "-D", str(head_file),
         "-w", "%{http_code}", *extra, url],
        capture_output=True, text=True, timeout=timeout + 10,
    )
    status = int(r.stdout.strip() or 0) if r.stdout.strip().isdigit() else 0
    body = body_file.read_bytes() if body_file.exists() else b""
    head = head_file.read_text(errors="replace") if head_file.exists() else ""
    return r.returncode, status, body, head, r.stderr


class HttpsTests(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("openssl", "curl"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"the {tool} CLI is not installed")
        d = harness.make_tmp_dir("tls")
        cls.cert, cls.key = make_cert(d)
        cls.name = unique_name("tls")
        cls.node = cls.start_class_node(
            name=cls.name,
            db=harness.default_db(harness.make_tmp_dir("tls-db")),
            tls=(cls.cert, cls.key),
            ca_file=cls.cert,
        )
        cls.base = f"https://127.0.0.1:{cls.node.port}"

    def curl_json(self, path, template, key=harness.ADMIN_KEY):
        extra = ["-H", f"{harness.API_KEY_HEADER}: {key}"] if key else []
        rc, status, body, head, err = curl(self.base + path, "--cacert", str(self.cert), *extra)
        self.assertEqual(rc, 0, f"curl --cacert {path}: exit {rc}: {err}")
        self.assertEqual(status, 200, f"curl {path}: HTTP {status}: {body[:300]!r}")
        self.assertRegex(head.lower(), r"content-type:\s*application/json", f"curl {path}: Content-Type\n{head}")
        j = json.loads(body)
        harness.check_response("GET", template, status, j)
        return j

    def test_ping_with_curl(self):
        j = self.curl_json(PING, PING, key=None)  # ping needs no key
        self.assertEqual(j["Name"], self.name, "ping over HTTPS names the node")
        self.assertIs(j["IsOffline"], False, "online")

    def test_nodes_with_curl(self):
        j = self.curl_json(NODES, NODES)
        mine = [n for n in j["Items"] if n["Name"] == self.name]
        self.assertEqual(len(mine), 1, f"the node lists itself over HTTPS: {[n['Name'] for n in j['Items']]}")
        self.assertTrue(mine[0]["PublicUrl"].startswith("https://"), f"default PublicUrl is https: {mine[0]['PublicUrl']}")
        self.assertTrue(mine[0]["PublicUrl"].endswith(f":{self.node.port}"), f"PublicUrl port: {mine[0]['PublicUrl']}")

    def test_nodes_without_key_refused_over_https(self):
        rc, status, body, head, err = curl(self.base + NODES, "--cacert", str(self.cert))
        self.assertEqual((rc, status), (0, 401), f"curl {NODES} without a key: exit {rc}, HTTP {status}: {err} {body[:300]!r}")
        j = json.loads(body)
        harness.check_response("GET", NODES, status, j)
        self.assertEqual(j.get("Code"), "ApiKeyMissing", f"401 Code: {j}")
        self.assertRegex(head.lower(), r"www-authenticate:", f"401 carries WWW-Authenticate\n{head}")

    def test_bearer_key_with_curl(self):
        rc, status, body, head, err = curl(self.base + NODES, "--cacert", str(self.cert),
                                           "-H", f"Authorization: Bearer {harness.ADMIN_KEY}")
        self.assertEqual((rc, status), (0, 200), f"curl {NODES} with a Bearer key: exit {rc}, HTTP {status}: {err}")
        harness.check_response("GET", NODES, status, json.loads(body))

    def test_curl_insecure_flag(self):
        rc, status, body, _, err = curl(self.base + PING, "-k")
        self.assertEqual((rc, status), (0, 200), f"curl -k ping: exit {rc}, HTTP {status}: {err}")

    def test_curl_rejects_unknown_ca(self):
        rc, status, _, _, err = curl(self.base + PING)  # system CAs only
        self.assertNotEqual(rc, 0, "a self-signed certificate is not trusted without --cacert (the node really serves TLS)")

    def test_python_client_verifies_certificate(self):
        r = self.api(self.node, "GET", f"{NODES}/{node_id(self.name)}", expect=200)
        self.assertEqual(r.json["Name"], self.name, "verified TLS request returns the node")

    def test_plain_http_is_not_served(self):
        rc, status, body, _, err = curl(f"http://127.0.0.1:{self.node.port}{PING}", timeout=5)
        self.assertNotEqual(status, 200, f"plain HTTP to the HTTPS port must not succeed (curl exit {rc}, HTTP {status})")
        self.assertIsNone(self.node.proc.poll(), f"node survives a plain HTTP request\n{self.node.log_tail()}")
        rc, status, _, _, err = curl(self.base + PING, "--cacert", str(self.cert))
        self.assertEqual(status, 200, f"HTTPS still works after a plain HTTP request: {err}")

    def test_missing_certificate_file_refused(self):
        missing = harness.make_tmp_dir("tls-missing") / "nope.pem"
        node = Node(db=harness.default_db(harness.make_tmp_dir("tls-db2")), tls=(missing, self.key))
        self.track(node)
        node.start(wait=False)
        rc = node.wait_exit(20)
        if rc is None:
            node.kill()
        self.assertIn(rc, (1, 2), f"a missing certificate file stops the start (exit 1 or 2), got {rc}\n{node.log_tail()}")


if __name__ == "__main__":
    harness.main()
