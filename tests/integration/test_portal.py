#!/usr/bin/env python3
"""The status page's files under /app/, and what the page reads about its
caller, over HTTP (the page in a browser is test_portal_browser.py).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_portal.py
"""

import os
import sys
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import OctohaTestCase, unique_name  # noqa: E402

APP_DIR = harness.REPO_ROOT / "api" / "app"
TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


class InlineFinder(HTMLParser):
    """Collects what a strict Content-Security-Policy would block."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and not a.get("src"):
            self.found.append("an inline <script>")
        if tag == "style":
            self.found.append("a <style> element")
        for name, _ in attrs:
            if name.startswith("on"):
                self.found.append(f"an event handler attribute {name} on <{tag}>")
            if name == "style":
                self.found.append(f"a style attribute on <{tag}>")
        for name in ("src", "href"):
            v = a.get(name) or ""
            if "://" in v or v.startswith("//"):
                self.found.append(f"{tag} {name}={v} loads from elsewhere")


class StatusPageFiles(OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node()

    def assert_security_headers(self, r, what):
        csp = r.header("Content-Security-Policy") or ""
        self.assertIn("default-src 'self'", csp, what)
        self.assertIn("script-src 'self';", csp, what)
        self.assertNotIn("unsafe-inline", csp, what)
        self.assertNotIn("unsafe-eval", csp, what)
        self.assertIn("frame-ancestors 'none'", csp, what)
        self.assertEqual(r.header("X-Frame-Options"), "DENY", what)
        self.assertEqual(r.header("Referrer-Policy"), "no-referrer", what)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", what)

    def test_every_file_is_served_with_its_type_and_headers_and_no_key(self):
        files = sorted(p.name for p in APP_DIR.iterdir())
        self.assertIn("index.html", files)
        for name in files:
            with self.subTest(name=name):
                r = self.node.request("GET", "/app/" + name, key=None)
                self.assertEqual(r.status, 200, r.describe())
                self.assertTrue(r.header("Content-Type").startswith(TYPES[os.path.splitext(name)[1]]),
                                r.header("Content-Type"))
                self.assertEqual(r.body, (APP_DIR / name).read_bytes(), "served as written, byte for byte")
                self.assert_security_headers(r, name)
        r = self.node.request("GET", "/app/", key=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, (APP_DIR / "index.html").read_bytes())
        self.assert_security_headers(r, "/app/")

    def test_the_page_has_nothing_a_strict_policy_blocks(self):
        f = InlineFinder()
        f.feed((APP_DIR / "index.html").read_text(encoding="utf-8"))
        self.assertEqual(f.found, [])
        js = (APP_DIR / "app.js").read_text(encoding="utf-8")
        for needle in ("innerHTML", "eval(", "new Function", "localStorage.setItem", ".style."):
            self.assertNotIn(needle, js, f"app.js uses {needle}")

    def test_unknown_files_and_bad_names(self):
        r = self.api(self.node, "GET", "/app/nope.js", key=None)
        self.assert_error(r, 404, "NotFound", "asset")
        self.assert_security_headers(r, "404 under /app/")
        for bad in ("/app/.env", "/app/-x.js", "/app/a%20b.js"):
            with self.subTest(path=bad):
                r = self.api(self.node, "GET", bad, key=None)
                self.assert_error(r, 400, "ValidationFailed", "asset")
        r = self.api(self.node, "GET", "/app/x/y.js", key=None)
        self.assert_error(r, 404, "NotFound")

    def test_app_without_slash_redirects(self):
        r = self.node.request("GET", "/app", key=None)
        self.assertEqual(r.status, 308)
        self.assertEqual(r.header("Location"), "/app/")

    def test_who_am_i(self):
        r = self.api(self.node, "GET", "/api/users/me", expect=200)
        self.assertEqual((r.json["Username"], r.json["Role"], r.json["AuthenticatedBy"]), ("bootstrap", "Admin", "ApiKey"))
        key = self.api(self.node, "POST", "/api/apikeys", expect=201,
                       body={"Name": unique_name("viewer"), "Role": "Reader"}).json
        r = self.api(self.node, "GET", "/api/users/me", expect=200, key=key["ApiKey"])
        self.assertEqual((r.json["Id"], r.json["Role"]), (key["Id"], "Reader"))
        self.assert_error(self.api(self.node, "GET", "/api/users/me", key=None), 401, "ApiKeyMissing")

    def test_sign_in_settings_without_an_issuer(self):
        r = self.api(self.node, "GET", "/api/authentication/oidc", expect=200, key=None)
        self.assertFalse(r.json["Enabled"])
        self.assertIsNone(r.json["AuthorizationEndpoint"])


if __name__ == "__main__":
    harness.main()
