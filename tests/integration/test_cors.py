#!/usr/bin/env python3
"""CORS for portals: the preflights browsers send, and the answers after them.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_cors.py

The preflights are the ones Chromium sends (its header names lowercased and
sorted in Access-Control-Request-Headers).  A real browser calling the API
from a page of another origin is in test_portal_browser.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_KEY, OctohaTestCase  # noqa: E402

PORTAL = "https://portal.example.com"
DEV = "http://localhost:3000"
ALLOWED = f"{PORTAL}, {DEV}"
NEEDED_HEADERS = {"x-octopus-apikey", "authorization", "content-type", "idempotency-key"}
EXPOSED = {"location", "retry-after", "etag"}


def cors_headers(r):
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def split(v):
    return {x.strip().lower() for x in (v or "").split(",") if x.strip()}


class CorsTestCase(OctohaTestCase):
    def preflight(self, node, path, origin, method, req_headers=None):
        h = {"Origin": origin, "Access-Control-Request-Method": method,
             "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"}
        if req_headers:
            h["Access-Control-Request-Headers"] = req_headers
        return node.request("OPTIONS", path, headers=h, key=None)


class CorsConfigured(CorsTestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node(env={"OCTOHA_CORS_ORIGINS": ALLOWED})

    def assert_preflight_ok(self, r, origin, method):
        self.assertEqual(r.status, 204, f"a preflight answers 204: {r.describe()}")
        self.assertEqual(r.body, b"", "a preflight has no body")
        h = cors_headers(r)
        self.assertEqual(h.get("access-control-allow-origin"), origin, f"the origin itself, never *: {h}")
        self.assertIn(method.lower(), split(h.get("access-control-allow-methods")),
                      f"the method asked for is allowed: {h}")
        self.assertTrue(NEEDED_HEADERS <= split(h.get("access-control-allow-headers")),
                        f"Allow-Headers lists {NEEDED_HEADERS}: {h}")
        self.assertEqual(h.get("access-control-max-age"), "600", f"Max-Age: {h}")
        self.assertNotIn("access-control-allow-credentials", h, "keys are headers, not cookies")
        self.assertIn("origin", split(r.header("Vary")), "Vary: Origin")

    def test_preflight_of_a_drain_post_from_a_listed_origin(self):
        path = f"/api/octopusservernodes/{self.node.id}/drain"
        r = self.preflight(self.node, path, PORTAL, "POST", "content-type,idempotency-key,x-octopus-apikey")
        self.assert_preflight_ok(r, PORTAL, "POST")
        self.assertEqual(split(cors_headers(r)["access-control-allow-methods"]), {"post"},
                         "the drain path takes POST only")
        # Nothing was drained by the preflight.
        self.assertEqual(self.node.ping().status, 200)

    def test_preflight_with_a_bearer_token_from_the_other_listed_origin(self):
        r = self.preflight(self.node, "/api/cluster/topology", DEV, "GET", "authorization")
        self.assert_preflight_ok(r, DEV, "GET")

    def test_preflight_of_the_event_stream_resuming(self):
        r = self.preflight(self.node, "/api/events/stream", PORTAL, "GET", "last-event-id,x-octopus-apikey")
        self.assert_preflight_ok(r, PORTAL, "GET")
        self.assertIn("last-event-id", split(cors_headers(r)["access-control-allow-headers"]))

    def test_preflight_of_a_path_with_several_methods(self):
        r = self.preflight(self.node, f"/api/octopusservernodes/{self.node.id}", PORTAL, "PUT",
                           "content-type,x-octopus-apikey")
        self.assert_preflight_ok(r, PORTAL, "PUT")
        self.assertEqual(split(cors_headers(r)["access-control-allow-methods"]), {"get", "put", "delete"})

    def test_unlisted_origins_get_no_cors_headers(self):
        for origin in ("https://evil.example.com", "https://portal.example.com:8443",
                       "http://portal.example.com", "https://portal.example.com.evil.net", "null"):
            with self.subTest(origin=origin):
                r = self.preflight(self.node, "/api/tasks", origin, "POST", "content-type,x-octopus-apikey")
                self.assertEqual(cors_headers(r), {}, f"no CORS header for {origin}: {r.describe()}")
                self.assertIn("origin", split(r.header("Vary")), "the answer still varies by Origin")
                r = self.node.request("GET", "/api/cluster/topology", headers={"Origin": origin})
                self.assertEqual(r.status, 200)
                self.assertEqual(cors_headers(r), {}, f"no CORS header on the answer for {origin}")

    def test_preflight_of_an_unknown_path_is_not_allowed(self):
        r = self.preflight(self.node, "/api/no-such-thing", PORTAL, "GET", "x-octopus-apikey")
        self.assertEqual(r.status, 404, r.describe())
        self.assertNotIn("access-control-allow-methods", cors_headers(r))
        self.assert_error_shape(r, "OPTIONS unknown path")

    def test_answers_to_a_listed_origin_expose_the_headers_scripts_read(self):
        r = self.api(self.node, "GET", "/api/cluster/topology", expect=200, headers={"Origin": PORTAL})
        h = cors_headers(r)
        self.assertEqual(h.get("access-control-allow-origin"), PORTAL)
        self.assertTrue(EXPOSED <= split(h.get("access-control-expose-headers")), h)
        self.assertIn("origin", split(r.header("Vary")))
        # A 202 whose Location a script needs.
        r = self.api(self.node, "POST", "/api/tasks", expect=202, headers={"Origin": PORTAL},
                     body={"Name": "Diagnostic", "Arguments": {"WaitMs": 0, "LogLines": 1}})
        self.assertTrue(r.header("Location", "").startswith("/api/tasks/"))
        self.assertEqual(cors_headers(r).get("access-control-allow-origin"), PORTAL)

    def test_errors_reach_the_portal_too(self):
        r = self.api(self.node, "GET", "/api/cluster/topology", expect=401, headers={"Origin": PORTAL}, key=None)
        self.assertEqual(cors_headers(r).get("access-control-allow-origin"), PORTAL,
                         "a refusal is readable by the page, so it can say why")

    def test_the_event_stream_answers_with_cors_headers(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        try:
            conn.request("GET", "/api/events/stream", headers={"Origin": PORTAL, "X-Octopus-ApiKey": ADMIN_KEY})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Access-Control-Allow-Origin"), PORTAL)
            self.assertTrue(r.getheader("Content-Type", "").startswith("text/event-stream"))
        finally:
            conn.close()


class CorsNotConfigured(CorsTestCase):
    """No cors-origins: no page of another origin may call.  civetweb on its
    own answered every preflight with Access-Control-Allow-Origin: *."""

    @classmethod
    def setUpClass(cls):
        cls.node = cls.start_class_node()

    def test_no_preflight_is_granted(self):
        path = f"/api/octopusservernodes/{self.node.id}/drain"
        r = self.preflight(self.node, path, PORTAL, "POST", "content-type,x-octopus-apikey")
        self.assertEqual(cors_headers(r), {}, f"no CORS header at all: {r.describe()}")
        self.assertNotEqual(r.status, 200, "not civetweb's own preflight answer")
        self.assertIsNone(r.header("Vary"))

    def test_answers_carry_no_cors_headers(self):
        r = self.api(self.node, "GET", "/api/cluster/topology", expect=200, headers={"Origin": PORTAL})
        self.assertEqual(cors_headers(r), {})


class CorsSettings(OctohaTestCase):
    def test_wildcards_and_paths_are_refused_at_start(self):
        for value in ("*", "https://portal.example.com/", "portal.example.com", "https://a.example.com/app",
                      "ftp://a.example.com", "https://"):
            with self.subTest(value=value):
                node = harness.Node(env={"OCTOHA_CORS_ORIGINS": value})
                self.track(node)
                node.start(wait=False)
                self.expect_exit(node, 2, "cors-origins")


if __name__ == "__main__":
    harness.main()
