"""A local OpenID Connect issuer for the tests: discovery document, JWKS,
an authorization endpoint that signs in whoever the test says (no login
page) and a token endpoint that checks PKCE (S256) before it hands out an
access token.  Keys are made here with python3-cryptography (Debian's
package, installed by scripts/setup.sh test); tokens are signed RS256 or
ES256 by hand so the tests can also make every kind of bad token.

    with Issuer() as iss:
        k = iss.add_key("RS256")
        token = iss.token(k, sub="alice", roles=["Operator"])
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(obj) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def int_bytes(n: int, length: int = 0) -> bytes:
    return n.to_bytes(length or (n.bit_length() + 7) // 8, "big")


class Key:
    """A signing key with its kid; jwk() is its public JWK."""

    def __init__(self, alg: str, kid: str):
        self.alg, self.kid = alg, kid
        if alg == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(alg)

    def jwk(self) -> dict:
        pub = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": b64url(int_bytes(pub.n)), "e": b64url(int_bytes(pub.e))}
        return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": b64url(int_bytes(pub.x, 32)), "y": b64url(int_bytes(pub.y, 32))}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data: bytes) -> bytes:
        if self.alg == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = utils.decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return int_bytes(r, 32) + int_bytes(s, 32)


def jwt(header: dict, claims: dict, sign) -> str:
    """A compact JWS of HEADER and CLAIMS; SIGN(signing input) gives the
    signature bytes (b"" for none)."""
    signing_input = (b64url_json(header) + "." + b64url_json(claims)).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url(sign(signing_input))


class Issuer:
    def __init__(self, audience="api://octoha", client_id="octoha-status-page"):
        self.audience = audience
        self.client_id = client_id
        self.keys = []          # signing keys we hold
        self.published = []     # kids in the JWKS
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.next_login = {"sub": "portal-user", "name": "Portal User", "roles": ["Operator"]}
        self.codes = {}
        self.token_requests = []
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, status, obj, extra=None):
                body = json.dumps(obj).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path == "/.well-known/openid-configuration":
                    with issuer._lock:
                        issuer.discovery_fetches += 1
                    self._json(200, {
                        "issuer": issuer.url,
                        "jwks_uri": issuer.url + "/jwks",
                        "authorization_endpoint": issuer.url + "/authorize",
                        "token_endpoint": issuer.url + "/token",
                        "response_types_supported": ["code"],
                        "code_challenge_methods_supported": ["S256"],
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    })
                elif u.path == "/jwks":
                    with issuer._lock:
                        issuer.jwks_fetches += 1
                        keys = [k.jwk() for k in issuer.keys if k.kid in issuer.published]
                    self._json(200, {"keys": keys})
                elif u.path == "/authorize":
                    q = dict(urllib.parse.parse_qsl(u.query))
                    code = secrets.token_urlsafe(24)
                    with issuer._lock:
                        issuer.codes[code] = dict(q, login=dict(issuer.next_login))
                    target = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self):
                u = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode("utf-8")))
                cors = {"Access-Control-Allow-Origin": self.headers.get("Origin") or "*"}
                if u.path != "/token":
                    self._json(404, {"error": "not_found"}, cors)
                    return
                with issuer._lock:
                    issuer.token_requests.append(form)
                    grant = issuer.codes.pop(form.get("code", ""), None)
                if not grant or form.get("grant_type") != "authorization_code":
                    self._json(400, {"error": "invalid_grant"}, cors)
                    return
                challenge = b64url(hashlib.sha256(form.get("code_verifier", "").encode("ascii")).digest())
                if (grant.get("code_challenge_method") != "S256" or challenge != grant.get("code_challenge")
                        or form.get("redirect_uri") != grant.get("redirect_uri")
                        or form.get("client_id") != issuer.client_id):
                    self._json(400, {"error": "invalid_grant", "error_description": "PKCE or client check failed"}, cors)
                    return
                login = grant["login"]
                token = issuer.token(issuer.keys[0], sub=login["sub"], name=login["name"], roles=login["roles"])
                self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}, cors)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add_key(self, alg="RS256", publish=True) -> Key:
        k = Key(alg, f"{alg.lower()}-{secrets.token_hex(4)}")
        with self._lock:
            self.keys.append(k)
            if publish:
                self.published.append(k.kid)
        return k

    def publish_only(self, *keys):
        with self._lock:
            self.published = [k.kid for k in keys]

    def claims(self, sub="alice", name="Alice Example", roles=("Reader",), lifetime=600, **over) -> dict:
        now = int(time.time())
        c = {"iss": self.url, "aud": self.audience, "sub": sub, "name": name,
             "iat": now, "nbf": now - 5, "exp": now + lifetime}
        if roles is not None:
            c["roles"] = list(roles)
        for k, v in over.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def token(self, key: Key, header=None, **claims) -> str:
        h = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
        h.update(header or {})
        return jwt(h, self.claims(**claims), key.sign)

    def hs256_with_public_key(self, key: Key, **claims) -> str:
        """The algorithm confusion attack: HMAC keyed with the public key's PEM."""
        pem = key.public_pem()
        return jwt({"alg": "HS256", "typ": "JWT", "kid": key.kid}, self.claims(**claims),
                   lambda data: hmac.new(pem, data, hashlib.sha256).digest())

    def unsigned(self, key: Key, **claims) -> str:
        return jwt({"alg": "none", "typ": "JWT", "kid": key.kid}, self.claims(**claims), lambda data: b"")
