#!/usr/bin/env python3
"""Single sign-on: access tokens of an OIDC issuer as Authorization: Bearer.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_oidc.py [Class[.test]]

The issuer is oidc_issuer.Issuer, served by this test on 127.0.0.1
(discovery document, JWKS, authorization and token endpoints); the node
fetches its keys with libcurl as it would Entra ID's.  Every refusal is
checked over real HTTP: bad signature, another issuer or audience, expired,
not yet valid, an unknown kid, alg none, HS256 keyed with the public key,
and key rollover.
"""

import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_KEY, OctohaTestCase, unique_name  # noqa: E402

try:
    from oidc_issuer import Issuer  # noqa: E402
except ImportError as e:  # python3-cryptography missing
    Issuer = None
    IMPORT_ERROR = str(e)

ME = "/api/users/me"
ROLE_MAP = "octoha-readers=Reader,octoha-ops=Operator,octoha-admins=Admin"


def setUpModule():
    if Issuer is None:
        raise harness.unittest.SkipTest(f"python3-cryptography is needed to make keys: {IMPORT_ERROR}")


def oidc_env(iss, **extra):
    env = {"OCTOHA_OIDC_ISSUER": iss.url, "OCTOHA_OIDC_AUDIENCE": iss.audience,
           "OCTOHA_OIDC_REFRESH_MIN_MS": "0", "OCTOHA_OIDC_CLIENT_ID": iss.client_id}
    env.update(extra)
    return env


class OidcCase(OctohaTestCase):
    def bearer(self, node, token, method="GET", path=ME, expect=None, body=None):
        return self.api(node, method, path, expect=expect, key=None, body=body,
                        headers={"Authorization": "Bearer " + token})

    def assert_refused(self, node, token, why, status=401, code="TokenInvalid"):
        r = self.bearer(node, token)
        self.assert_error(r, status, code, what=why)
        if status == 401:
            self.assertIn('error="invalid_token"', r.header("WWW-Authenticate", ""), why)
        return r


class TokensAccepted(OidcCase):
    @classmethod
    def setUpClass(cls):
        cls.iss = Issuer().start()
        cls.addClassCleanup(cls.iss.stop)
        cls.rsa = cls.iss.add_key("RS256")
        cls.ec = cls.iss.add_key("ES256")
        cls.node = cls.start_class_node(env=oidc_env(cls.iss))

    def test_an_rs256_token_signs_in_with_its_role(self):
        r = self.bearer(self.node, self.iss.token(self.rsa, sub="alice", name="Alice Example", roles=["Operator"]),
                        expect=200)
        self.assertEqual(r.json["Id"], "oidc:alice")
        self.assertEqual(r.json["DisplayName"], "Alice Example")
        self.assertEqual(r.json["Role"], "Operator")
        self.assertEqual(r.json["AuthenticatedBy"], "Token")

    def test_an_es256_token_signs_in(self):
        r = self.bearer(self.node, self.iss.token(self.ec, sub="bob", name="Bob", roles=["Reader"]), expect=200)
        self.assertEqual((r.json["Id"], r.json["Role"]), ("oidc:bob", "Reader"))

    def test_the_highest_mapped_role_wins_and_roles_decide(self):
        tok = self.iss.token(self.rsa, sub="carol", roles=["Reader", "Admin", "Unknown"])
        self.assertEqual(self.bearer(self.node, tok, expect=200).json["Role"], "Admin")
        reader = self.iss.token(self.rsa, sub="dave", roles=["Reader"])
        r = self.bearer(self.node, reader, "POST", "/api/tasks", body={"Name": "Diagnostic"})
        self.assert_error(r, 403, "RoleNotAllowed")
        self.assertIn("token has Reader", r.json["ErrorMessage"])

    def test_an_operator_token_drains_and_the_audit_names_the_subject(self):
        name = unique_name("Operator Olga")
        tok = self.iss.token(self.rsa, sub="olga-42", name=name, roles=["Operator"])
        r = self.bearer(self.node, tok, "POST", "/api/tasks", expect=202,
                        body={"Name": "Diagnostic", "Arguments": {"WaitMs": 0}})
        self.assertEqual(r.json["RequestedBy"], f"{name} (oidc:olga-42)")
        ev = self.api(self.node, "GET", f"/api/events?regarding={r.json['Id']}&category=TaskQueued", expect=200).json
        self.assertEqual(len(ev["Items"]), 1, ev)
        self.assertEqual((ev["Items"][0]["UserId"], ev["Items"][0]["Username"]), ("oidc:olga-42", name))

    def test_small_clock_skew_is_allowed(self):
        now = int(time.time())
        self.bearer(self.node, self.iss.token(self.rsa, exp=now - 30), expect=200)  # leeway 60 s
        self.bearer(self.node, self.iss.token(self.rsa, nbf=now + 30), expect=200)

    def test_an_audience_list_that_names_this_api(self):
        tok = self.iss.token(self.rsa, aud=["https://graph.example.com", self.iss.audience])
        self.bearer(self.node, tok, expect=200)

    def test_api_keys_keep_working_as_bearer(self):
        r = self.api(self.node, "GET", ME, expect=200, key=None, headers={"Authorization": "Bearer " + ADMIN_KEY})
        self.assertEqual((r.json["AuthenticatedBy"], r.json["Role"]), ("ApiKey", "Admin"))

    def test_sign_in_settings_for_the_status_page(self):
        r = self.api(self.node, "GET", "/api/authentication/oidc", expect=200, key=None)
        self.assertEqual(r.json, {
            "Enabled": True, "Issuer": self.iss.url, "ClientId": self.iss.client_id, "Scopes": "openid profile",
            "AuthorizationEndpoint": self.iss.url + "/authorize", "TokenEndpoint": self.iss.url + "/token",
            "EndSessionEndpoint": None})
        page = self.node.request("GET", "/app/", key=None)
        self.assertIn("connect-src 'self' " + self.iss.url + ";", page.header("Content-Security-Policy"),
                      "the page may post the code to the token endpoint, and nowhere else")


class TokensRefused(OidcCase):
    @classmethod
    def setUpClass(cls):
        cls.iss = Issuer().start()
        cls.addClassCleanup(cls.iss.stop)
        cls.rsa = cls.iss.add_key("RS256")
        cls.ec = cls.iss.add_key("ES256")
        cls.stranger = Issuer()  # never started: its keys sign what our issuer never published
        cls.addClassCleanup(cls.stranger.server.server_close)
        cls.other_key = cls.stranger.add_key("RS256")
        cls.node = cls.start_class_node(env=oidc_env(cls.iss))

    def test_bad_signature(self):
        tok = self.iss.token(self.rsa)
        head, body, sig = tok.split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
        raw[10] ^= 0x01
        flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
        self.assert_refused(self.node, f"{head}.{body}.{flipped}", "a flipped signature bit")
        # A key of the same kid that the issuer never published.
        self.other_key.kid = self.rsa.kid
        forged = self.iss.token(self.other_key)
        r = self.assert_refused(self.node, forged, "signed with another key under the issuer's kid")
        self.assertIn("signature", r.json["ErrorMessage"])
        # Claims changed after signing.
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        claims["roles"] = ["Admin"]
        tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        self.assert_refused(self.node, f"{head}.{tampered}.{sig}", "claims changed after signing")

    def test_wrong_issuer(self):
        r = self.assert_refused(self.node, self.iss.token(self.rsa, iss="https://login.example.com/other"), "iss")
        self.assertIn("another issuer", r.json["ErrorMessage"])

    def test_wrong_audience(self):
        r = self.assert_refused(self.node, self.iss.token(self.rsa, aud="api://someone-else"), "aud")
        self.assertIn("audience", r.json["ErrorMessage"])
        self.assert_refused(self.node, self.iss.token(self.rsa, aud=None), "no aud")

    def test_expired(self):
        r = self.assert_refused(self.node, self.iss.token(self.rsa, exp=int(time.time()) - 120), "exp past the leeway")
        self.assertIn("expired", r.json["ErrorMessage"])
        self.assert_refused(self.node, self.iss.token(self.rsa, exp=None), "no exp at all")

    def test_not_yet_valid(self):
        r = self.assert_refused(self.node, self.iss.token(self.rsa, nbf=int(time.time()) + 300), "nbf ahead")
        self.assertIn("not valid yet", r.json["ErrorMessage"])

    def test_unknown_kid(self):
        self.stranger.keys[0].kid = "never-published"
        before = self.iss.jwks_fetches
        r = self.assert_refused(self.node, self.iss.token(self.stranger.keys[0]), "unknown kid")
        self.assertIn("key the issuer does not publish", r.json["ErrorMessage"])
        self.assertGreater(self.iss.jwks_fetches, before, "an unknown kid fetches the key set again")

    def test_alg_none(self):
        r = self.assert_refused(self.node, self.iss.unsigned(self.rsa, roles=["Admin"]), "alg none")
        self.assertIn("algorithm", r.json["ErrorMessage"])

    def test_hs256_keyed_with_the_public_key(self):
        r = self.assert_refused(self.node, self.iss.hs256_with_public_key(self.rsa, roles=["Admin"]), "HS256")
        self.assertIn("algorithm", r.json["ErrorMessage"])

    def test_an_algorithm_that_does_not_fit_the_key(self):
        # ES256 in the header, the RSA key's kid: never verified with it.
        tok = self.iss.token(self.rsa, header={"alg": "ES256"})
        self.assert_refused(self.node, tok, "ES256 under an RSA kid")
        self.assert_refused(self.node, self.iss.token(self.rsa, header={"alg": "RS512"}), "RS512")
        self.assert_refused(self.node, self.iss.token(self.rsa, header={"crit": ["exp"]}), "crit header")

    def test_malformed_tokens(self):
        for tok in ("e30.e30.", "abc.def.ghi", "e30.bm90IGpzb24.c2ln", "e30.e30.e30.e30"):
            with self.subTest(token=tok):
                r = self.bearer(self.node, tok)
                self.assertEqual(r.status, 401, tok)
                self.assertIn(r.json["Code"], ("TokenInvalid", "ApiKeyInvalid"), tok)
        # Three parts: a token, refused as one; anything else is not a key either.
        self.assert_refused(self.node, "e30.e30.", "an empty header and claims")
        self.assert_error(self.bearer(self.node, "..x"), 401, "ApiKeyInvalid")

    def test_no_mapped_role_is_forbidden_and_recorded_with_the_subject(self):
        tok = self.iss.token(self.rsa, sub="nobody-7", name="No Body", roles=["Visitors"])
        r = self.bearer(self.node, tok)
        self.assert_error(r, 403, "RoleNotAllowed")
        ev = self.api(self.node, "GET", "/api/events?category=AccessDenied&user=oidc:nobody-7", expect=200).json
        self.assertGreaterEqual(ev["TotalResults"], 1, ev)
        self.assertEqual(ev["Items"][0]["Username"], "No Body")
        self.assertIn("no role mapped", ev["Items"][0]["Message"])

    def test_refusals_are_audited_without_the_token(self):
        tok = self.iss.token(self.rsa, exp=int(time.time()) - 3600)
        self.assert_refused(self.node, tok, "expired")
        ev = self.api(self.node, "GET", "/api/events?category=AccessDenied&take=50", expect=200).json
        msgs = [e["Message"] for e in ev["Items"]]
        self.assertTrue(any("TokenInvalid (the token has expired)" in m for m in msgs), msgs)
        self.assertNotIn(tok.split(".")[2], json.dumps(ev))
        self.assertNotIn(tok.split(".")[2], self.node.all_output(), "tokens never reach the log")


class KeyRollover(OidcCase):
    def test_a_new_key_is_fetched_when_a_token_names_it(self):
        with Issuer() as iss:
            old = iss.add_key("RS256")
            node = self.start_node(env=oidc_env(iss))
            self.bearer(node, iss.token(old), expect=200)
            fetches = iss.jwks_fetches
            new = iss.add_key("RS256")  # published beside the old one
            self.bearer(node, iss.token(new, sub="after-rollover"), expect=200)
            self.assertEqual(iss.jwks_fetches, fetches + 1, "one fetch for the new kid")
            self.bearer(node, iss.token(old), expect=200)  # both are published
            iss.publish_only(new)  # the old key is retired
            self.bearer(node, iss.token(new), expect=200)
            # The node still holds the old key until something makes it
            # fetch: a token naming an unknown kid, or the set's max age.
            unknown = iss.add_key("RS256", publish=False)
            self.assert_refused(node, iss.token(unknown), "not published")
            self.assert_refused(node, iss.token(old), "retired key, gone after the fetch")

    def test_unknown_kids_fetch_at_most_once_per_refresh_period(self):
        with Issuer() as iss:
            k = iss.add_key("RS256")
            node = self.start_node(env=oidc_env(iss, OCTOHA_OIDC_REFRESH_MIN_MS="60000"))
            self.bearer(node, iss.token(k), expect=200)
            fetches = iss.jwks_fetches
            stray = iss.add_key("RS256", publish=False)
            for _ in range(5):
                self.assert_refused(node, iss.token(stray), "unknown kid")
            self.assertLessEqual(iss.jwks_fetches - fetches, 1, "a flood of unknown kids cannot flood the issuer")

    def test_an_issuer_that_cannot_be_reached(self):
        with Issuer() as iss:
            k = iss.add_key("RS256")
        # stopped: nothing listens at its address any more
        node = self.start_node(env=oidc_env(iss))
        r = self.bearer(node, iss.token(k))
        self.assert_error(r, 503, "IdentityProviderUnavailable")
        self.assertEqual(r.header("Retry-After"), "5")
        self.api(node, "GET", ME, expect=200)  # keys do not need the issuer
        r = self.api(node, "GET", "/api/authentication/oidc", expect=200, key=None)
        self.assertFalse(r.json["Enabled"])


class NoIssuer(OidcCase):
    def test_tokens_are_refused_without_an_issuer(self):
        with Issuer() as iss:
            k = iss.add_key("RS256")
            node = self.start_node()
            r = self.assert_refused(node, iss.token(k, roles=["Admin"]), "no issuer configured")
            self.assertIn("no OIDC issuer", r.json["ErrorMessage"])
            r = self.api(node, "GET", "/api/authentication/oidc", expect=200, key=None)
            self.assertFalse(r.json["Enabled"])
            self.assertIsNone(r.json["Issuer"])

    def test_settings_are_checked_at_start(self):
        for env, needle in (
            ({"OCTOHA_OIDC_ISSUER": "http://login.example.com/tenant", "OCTOHA_OIDC_AUDIENCE": "x"}, "oidc-issuer"),
            ({"OCTOHA_OIDC_ISSUER": "https://login.example.com/tenant"}, "oidc-audience"),
            ({"OCTOHA_OIDC_ISSUER": "https://login.example.com/t", "OCTOHA_OIDC_AUDIENCE": "x",
              "OCTOHA_OIDC_ROLES": "admins=Root"}, "oidc-roles"),
        ):
            with self.subTest(env=env):
                node = harness.Node(env=env)
                self.track(node)
                node.start(wait=False)
                self.expect_exit(node, 2, needle)


class GroupsClaim(OidcCase):
    def test_groups_map_to_roles(self):
        with Issuer() as iss:
            k = iss.add_key("RS256")
            node = self.start_node(env=oidc_env(iss, OCTOHA_OIDC_ROLE_CLAIM="groups", OCTOHA_OIDC_ROLES=ROLE_MAP))
            ops = iss.token(k, sub="g1", roles=None, groups=["everyone", "octoha-ops"])
            self.assertEqual(self.bearer(node, ops, expect=200).json["Role"], "Operator")
            self.bearer(node, ops, "POST", f"/api/octopusservernodes/{node.id}/drain", expect=202,
                        body={"Reason": "sso", "Force": True})
            r = self.bearer(node, ops, "POST", "/api/apikeys", body={"Name": "x", "Role": "Reader"})
            self.assert_error(r, 403, "RoleNotAllowed")
            # The roles claim means nothing when groups are configured.
            r = self.bearer(node, iss.token(k, sub="g2", roles=["Admin"]))
            self.assert_error(r, 403, "RoleNotAllowed")


if __name__ == "__main__":
    harness.main()
