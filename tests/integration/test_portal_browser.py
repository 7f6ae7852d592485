#!/usr/bin/env python3
"""The status page in a real browser (Debian's chromium, puppeteer-core).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_portal_browser.py

Starts two nodes on one PostgreSQL database, the local OIDC issuer
(oidc_issuer.py) and a page of another origin, then runs
tests/browser/portal.js: sign in with a key and through the issuer, see two
nodes, a drain made through node B shown by the page on node A within 2 s
without a reload, drain and undrain and cancel from the page, a Reader
without controls, a cross-origin page calling the API through CORS.  A
console error or a failed request fails it.  Screenshots of every view go to
<build>/test-artifacts/portal (printed at the end).

Skips (77) when chromium or tests/browser/node_modules is missing;
scripts/setup.sh test installs both.
"""

import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_KEY, OctohaTestCase, unique_name  # noqa: E402

BROWSER_DIR = harness.REPO_ROOT / "tests" / "browser"
CHROMIUM = os.environ.get("OCTOHA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
THUMB = "A" * 40
FAST = {"OCTOHA_HEARTBEAT_MS": "200", "OCTOHA_OFFLINE_TIMEOUT_MS": "4000", "OCTOHA_POLL_MS": "50",
        "OCTOHA_LEASE_MS": "2000", "OCTOHA_HOUSEKEEPING_MS": "250"}

CROSS_ORIGIN_HTML = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A portal of another origin</title>
<script src="portal.js" defer></script></head>
<body><h1>Another origin</h1><pre id="result"></pre></body></html>
"""

# Reads the node through CORS: a GET and a POST that need a preflight
# (X-Octopus-ApiKey, JSON), and the exposed Location header.
CROSS_ORIGIN_JS = """
'use strict';
(async () => {
  const out = document.getElementById('result');
  try {
    const h = { 'X-Octopus-ApiKey': %(key)r };
    const topo = await fetch(%(node)r + '/api/cluster/topology', { headers: h }).then((r) => r.json());
    const r = await fetch(%(node)r + '/api/tasks', {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/json', 'Idempotency-Key': 'cors-' + Date.now() }, h),
      body: JSON.stringify({ Name: 'Diagnostic', Arguments: { WaitMs: 0 } }),
    });
    out.textContent = JSON.stringify({ ok: r.status === 202 && topo.Nodes.length === 2,
                                        status: r.status, location: r.headers.get('Location') });
  } catch (e) {
    out.textContent = JSON.stringify({ ok: false, error: String(e) });
  }
})();
"""


def artifacts_dir() -> Path:
    """A folder under the build tree of the binary under test."""
    override = os.environ.get("OCTOHA_ARTIFACTS_DIR")
    base = Path(override) if override else Path(harness.server_bin()).resolve().parent / "test-artifacts"
    return base / "portal"


class CrossOriginSite:
    """A page of another origin (its own port), serving two files."""

    def __init__(self, node_url, key):
        files = {"/": (CROSS_ORIGIN_HTML, "text/html; charset=utf-8"),
                 "/portal.js": ((CROSS_ORIGIN_JS % {"key": key, "node": node_url}).encode(),
                                "text/javascript; charset=utf-8"),
                 "/favicon.ico": (b"", "image/x-icon")}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                body, ctype = files.get(self.path, (None, None))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def setUpModule():
    if not os.access(CHROMIUM, os.X_OK):
        raise harness.unittest.SkipTest(f"chromium not installed ({CHROMIUM}); scripts/setup.sh test installs it")
    if not (BROWSER_DIR / "node_modules" / "puppeteer-core").is_dir():
        raise harness.unittest.SkipTest("tests/browser/node_modules missing; scripts/setup.sh test runs npm ci there")
    if not shutil.which("node"):
        raise harness.unittest.SkipTest("node (Node.js) not installed")
    harness.require_postgres()


class StatusPageInABrowser(OctohaTestCase):
    def test_the_status_page(self):
        from oidc_issuer import Issuer

        iss = Issuer().start()
        self.addCleanup(iss.stop)
        iss.add_key("RS256")
        iss.next_login = {"sub": "portal-user", "name": "Portal User", "roles": ["Operator"]}
        db = harness.cluster_db(need_empty=True)
        # The page of another origin needs node A's address, and node A its
        # origin: reserve A's port first.
        port_a = harness.free_port()
        site = CrossOriginSite(f"http://127.0.0.1:{port_a}", ADMIN_KEY)
        self.addCleanup(site.stop)
        env = dict(FAST, OCTOHA_CORS_ORIGINS=site.origin, OCTOHA_OIDC_ISSUER=iss.url,
                   OCTOHA_OIDC_AUDIENCE=iss.audience, OCTOHA_OIDC_CLIENT_ID=iss.client_id,
                   OCTOHA_TASK_LOGS_DIR=str(harness.make_tmp_dir("tasklogs")))
        a = self.start_node(name=unique_name("a"), db=db, env=env, port=port_a)
        b = self.start_node(name=unique_name("b"), db=db, env=env)

        operator = self.api(a, "POST", "/api/apikeys", expect=201,
                            body={"Name": "browser-operator", "Role": "Operator"}).json["ApiKey"]
        reader = self.api(a, "POST", "/api/apikeys", expect=201,
                          body={"Name": "browser-reader", "Role": "Reader"}).json["ApiKey"]
        # Two polling Tentacles: one polls both nodes, one polls neither, and
        # sorts after it by name: the page must put it first.
        for name, nodes in (("a-polls-every-node", (a, b)), ("z-polls-no-node", ())):
            t = self.api(a, "POST", "/api/tentacles?waitSeconds=30", expect=202,
                         body={"Name": name, "Thumbprint": THUMB, "CommunicationStyle": "TentacleActive"}).json
            tid = t["Arguments"]["TentacleId"]
            for n in nodes:
                self.api(n, "POST", f"/api/tentacles/{tid}/polls", expect=200)
        # One finished task, so that the task views have rows from the start.
        t = self.api(a, "POST", "/api/tasks?waitSeconds=30", expect=202,
                     body={"Name": "Diagnostic", "Arguments": {"WaitMs": 100, "LogLines": 3}}).json
        self.assertEqual(t["State"], "Success")

        out = artifacts_dir()
        if out.exists():
            shutil.rmtree(out)
        env = dict(os.environ, OCTOHA_A_URL=a.url(), OCTOHA_B_URL=b.url(), OCTOHA_A_ID=a.id,
                   OCTOHA_B_ID=b.id, OCTOHA_OPERATOR_KEY=operator, OCTOHA_READER_KEY=reader,
                   OCTOHA_ADMIN_KEY=ADMIN_KEY, OCTOHA_CROSS_ORIGIN_URL=site.origin + "/",
                   OCTOHA_ARTIFACTS=str(out), OCTOHA_CHROMIUM=CHROMIUM)
        r = subprocess.run(["node", str(BROWSER_DIR / "portal.js")], cwd=str(BROWSER_DIR), env=env,
                           capture_output=True, text=True, timeout=300)
        sys.stderr.write("\n" + r.stdout + r.stderr)
        sys.stderr.write(f"screenshots of the status page: {out}\n")
        self.assertEqual(r.returncode, 0, "the browser checks failed (see above)\n" + a.log_tail(15))
        shots = sorted(p.name for p in out.glob("*.png"))
        self.assertGreaterEqual(len(shots), 14, f"a screenshot of every view: {shots}")


if __name__ == "__main__":
    harness.main()
