#!/usr/bin/env python3
"""A black-box negative suite generated from openapi.yaml (issue 10).

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_negative_suite.py

For every operation of the spec, the cases are derived from its schemas:

* every field of its JSON body, at any depth (array items and map values
  included): a value of the wrong type, null where null is not allowed, a
  value outside its enum, a string one character over maxLength, a string
  its pattern refuses, numbers just outside minimum and maximum, arrays
  outside minItems and maxItems, each required field missing, an unknown
  field where none is allowed, and no body where one is required;
* every query and header parameter: the wrong type, out of range, out of
  enum, over-long, refused by its pattern or format, and values that
  decode to bytes that are not UTF-8 or to a NUL;
* every path parameter: traversal and injection strings (percent-encoded,
  so they stay one path segment), over-long ids, ids its pattern refuses.

Each must answer 400 (404 is allowed for path parameters) with the one error
body, ValidationFailed with Field naming the field for body and query cases,
and must change nothing: lists of every resource (nodes, tasks, keys,
subscriptions, Tentacles, storage, polling, events other than the refusals
themselves) are compared before and after each operation's cases.  Bodies are
built from the spec too; a value a pattern needs comes from
tests/pattern_examples.json.  Run once normally and once under ASan+UBSan by
scripts/test.sh.  Uses OCTOHA_TEST_DB when set, else SQLite.
"""

import copy
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import unique_name  # noqa: E402

EXAMPLES = json.loads((harness.REPO_ROOT / "tests" / "pattern_examples.json").read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "patch")
# Events a refused request records; every other event means a change.
REFUSALS = ("RequestFailed", "AccessDenied")

# Traversal and injection strings for path parameters, sent percent-encoded
# so each stays one segment.
HOSTILE_IDS = [
    "../../etc/passwd",
    "..",
    "%2e%2e%2f",
    "..\\..\\windows\\win.ini",
    "' OR '1'='1",
    "1; DROP TABLE Tasks;--",
    "\" OR \"\"=\"",
    "<script>alert(1)</script>",
    "${jndi:ldap://x/a}",
    "{{7*7}}",
    "a\x00b",
    "\xff\xfe",
    "\u202e\u0000",
    "%00",
    "*",
    "/",
    " ",
    "x" * 300,
]


def resolve(node, root, depth=0):
    """NODE with every local $ref replaced by a copy of its target."""
    if depth > 64:
        raise AssertionError("$refs nest too deeply")
    if isinstance(node, dict):
        if "$ref" in node:
            return resolve(harness.deref(node, root), root, depth + 1)
        return {k: resolve(v, root, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, root, depth + 1) for v in node]
    return node


def field_name(loc) -> str:
    out = ""
    for k in loc:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else k)
    return out


def valid_value(s):
    """A value the schema S accepts."""
    if "enum" in s:
        return next(v for v in s["enum"] if v is not None)
    for comb in ("oneOf", "anyOf", "allOf"):
        if comb in s:
            return valid_value(s[comb][0])
    t = s.get("type")
    if t == "string":
        if "pattern" in s:
            for v in EXAMPLES[s["pattern"]]["match"]:
                if s.get("minLength", 0) <= len(v) <= s.get("maxLength", 10**9):
                    return v
            raise AssertionError(f"no example of {s['pattern']} fits the lengths of {s}")
        if s.get("format") == "date-time":
            return "2026-11-28T05:30:00.123+00:00"
        return "x" * max(s.get("minLength", 1), 1)
    if t == "integer":
        return s.get("minimum", 1) if "minimum" in s else min(1, s.get("maximum", 1))
    if t == "number":
        return s.get("minimum", 1)
    if t == "boolean":
        return True
    if t == "array":
        return [valid_value(s.get("items", {}))] * max(s.get("minItems", 0), 1)
    if t == "object" or "properties" in s:
        return {k: valid_value(s["properties"][k]) for k in s.get("required", [])}
    return "x"


def wrong_type(s):
    t = s.get("type")
    if t is None and ("oneOf" in s or "anyOf" in s):
        t = (s.get("oneOf") or s.get("anyOf"))[0].get("type")
    return {"string": 12345, "integer": "12", "number": "1.5", "boolean": "yes", "array": {"a": 1},
            "object": [1]}.get(t, 12345)


def set_at(body, loc, value):
    """Sets BODY at LOC (keys and indexes), making missing parents."""
    node = body
    for i, k in enumerate(loc[:-1]):
        nxt = loc[i + 1]
        if isinstance(node, list):
            node = node[k]
            continue
        if k not in node or not isinstance(node[k], (dict, list)):
            node[k] = [] if isinstance(nxt, int) else {}
        node = node[k]
    if isinstance(node, list):
        while len(node) <= loc[-1]:
            node.append(None)
        node[loc[-1]] = value
    else:
        node[loc[-1]] = value


def del_at(body, loc):
    node = body
    for k in loc[:-1]:
        node = node[k]
    del node[loc[-1]]


def body_cases(s, loc, base):
    """(what, body, expected Field) for the schema S at LOC of BASE."""
    out = []
    name = field_name(loc)

    def with_value(value, what):
        b = copy.deepcopy(base)
        if loc:
            # A value inside an array the base body lacks gets a valid array.
            set_at(b, loc, value)
        else:
            b = value
        out.append((what, b, name or None))

    if loc:
        with_value(wrong_type(s), "wrong type")
        if not s.get("nullable"):
            with_value(None, "null")
    if "enum" in s and any(isinstance(v, str) for v in s["enum"]):
        with_value("NoSuchValue", "out of enum")
    elif "enum" in s:
        with_value(987654, "out of enum")
    if s.get("type") == "string" or "maxLength" in s:
        if "maxLength" in s:
            with_value("y" * (s["maxLength"] + 1), "over-long")
        if s.get("minLength", 0) > 1:
            with_value("y" * (s["minLength"] - 1), "too short")
        if "pattern" in s:
            bad = next(v for v in EXAMPLES[s["pattern"]]["refuse"] if v and len(v) <= s.get("maxLength", 10**9))
            with_value(bad, "bad pattern")
        if s.get("format") == "date-time":
            with_value("yesterday", "bad date-time")
    if s.get("type") in ("integer", "number"):
        if "minimum" in s:
            with_value(s["minimum"] - 1, "below minimum")
        if "maximum" in s:
            with_value(s["maximum"] + 1, "above maximum")
        if s.get("type") == "integer":
            with_value(1.5, "not whole")
    if s.get("type") == "array":
        if s.get("minItems", 0) > 0:
            with_value([], "too few items")
        if "maxItems" in s:
            with_value([valid_value(s["items"])] * (s["maxItems"] + 1), "too many items")
        items = s.get("items", {})
        item_base = copy.deepcopy(base)
        arr = [valid_value(items)]
        if loc:
            set_at(item_base, loc, arr)
        else:
            item_base = arr
        out += body_cases(items, loc + [0], item_base)
    for comb in ("oneOf", "anyOf"):
        if comb in s and loc:
            with_value("NoSuchValue", f"{comb} matches nothing")
    if s.get("type") == "object" or "properties" in s:
        obj_base = copy.deepcopy(base)
        if loc:
            set_at(obj_base, loc, valid_value(s))
        for req in s.get("required", []):
            b = copy.deepcopy(obj_base)
            del_at(b, loc + [req])
            out.append((f"missing required {req}", b, field_name(loc + [req])))
        if s.get("additionalProperties") is False:
            b = copy.deepcopy(obj_base)
            set_at(b, loc + ["NoSuchField"], 1)
            out.append(("unknown field", b, field_name(loc + ["NoSuchField"])))
        elif isinstance(s.get("additionalProperties"), dict):
            out += body_cases(s["additionalProperties"], loc + ["somekey"], obj_base)
        for prop, ps in (s.get("properties") or {}).items():
            out += body_cases(ps, loc + [prop], obj_base)
    return out


def param_cases(p):
    """(what, raw percent-encoded value) for query or header parameter P."""
    s = p.get("schema", {})
    out = []
    t = s.get("type")
    if t == "integer":
        out += [("not a number", "abc"), ("not whole", "1.5"), ("signed", "%2B1"), ("huge", "9" * 30)]
        if "minimum" in s:
            out.append(("below minimum", str(s["minimum"] - 1)))
        if "maximum" in s:
            out.append(("above maximum", str(s["maximum"] + 1)))
    elif t == "boolean":
        out += [("not a boolean", "maybe"), ("not a boolean", "1")]
    if "enum" in s:
        out.append(("out of enum", "NoSuchValue"))
    if "maxLength" in s:
        out.append(("over-long", "y" * (s["maxLength"] + 1)))
    if s.get("minLength", 0) >= 1:
        out.append(("empty", ""))
    if "pattern" in s:
        bad = next(v for v in EXAMPLES[s["pattern"]]["refuse"] if v)
        out.append(("bad pattern", urllib.parse.quote(bad, safe="")))
    if s.get("format") == "date-time":
        out += [("bad date-time", "yesterday"), ("bad date-time", "2026-13-45T00:00:00Z")]
    if p["in"] == "query":
        out += [("not UTF-8", "%FF"), ("overlong UTF-8", "%C0%AF"), ("NUL", "x%00y")]
    return out


class NegativeSuite(harness.OctohaTestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = harness.load_spec()
        cls.node = cls.start_class_node(name=unique_name("negative"),
                                        db=harness.default_db(harness.make_tmp_dir("negative-db")),
                                        log_level="info")
        cls.counts = {"requests": 0}
        cls.t0 = time.monotonic()

    @classmethod
    def tearDownClass(cls):
        sys.stderr.write(f"\ntest_negative_suite: {cls.counts['requests']} refused requests in "
                         f"{time.monotonic() - cls.t0:.1f}s\n")
        super().tearDownClass()

    # -- the state that must not change

    def snapshot(self):
        n = self.node

        def get(path):
            return self.api(n, "GET", path, expect=200).json

        nodes = [{k: v for k, v in x.items() if k != "LastSeen"} for x in get("/api/octopusservernodes/all")]
        tasks = sorted(t["Id"] for t in get("/api/tasks?take=1000")["Items"])
        keys = sorted(k["Id"] for k in get("/api/apikeys")["Items"])
        subs = sorted(s["Id"] for s in get("/api/subscriptions")["Items"])
        tentacles = sorted(t["Id"] for t in get("/api/tentacles?take=1000")["Items"])
        storage = [{k: f[k] for k in ("Name", "Path", "ChangedAt", "TaskId")}
                   for f in get("/api/configuration/storage")["Folders"]]
        polling = get("/api/cluster/polling")
        # Refusals are recorded (RequestFailed, AccessDenied) and soon push
        # older events off any one page, and totals stop at 1,000: the
        # newest event of any other category, found by paging, stands for
        # them (a new one would take its place).
        events, cursor = None, ""
        while events is None:
            page = get("/api/events?take=200" + cursor)["Items"]
            events = next((e["Id"] for e in page if e["Category"] not in REFUSALS), None)
            if events is None and len(page) < 200:
                events = "none"
            elif page:
                cursor = "&after=" + page[-1]["Id"]
        managed = get("/api/managedclusters?take=1000")["Items"]
        runs = sorted(r["Id"] for r in get("/api/maintenance-runs?take=1000")["Items"])
        return {"nodes": nodes, "tasks": tasks, "keys": keys, "subscriptions": subs, "tentacles": tentacles,
                "storage": storage, "polling": polling, "events": events, "managedclusters": managed,
                "maintenance-runs": runs}

    # -- sending and checking one case

    def refused(self, method, path, template, what, body=None, raw=None, headers=None, field=None,
                allow_404=False):
        """Sends one case; asserts 400 (or 404) with the error body and FIELD."""
        hdrs = dict(headers or {})
        if raw is not None:
            hdrs.setdefault("Content-Type", "application/json")
            r = self.api(self.node, method, path, body=raw, headers=hdrs, template=template)
        else:
            r = self.api(self.node, method, path, body=body, headers=hdrs, template=template)
        self.counts["requests"] += 1
        allowed = (400, 404) if allow_404 else (400,)
        self.assertIn(r.status, allowed, f"{method} {template} {what}: {r.describe()}")
        self.assert_error_shape(r, f"{method} {template} {what}")
        if field is not False and r.status == 400:
            self.assertEqual(r.json["Code"], "ValidationFailed", f"{method} {template} {what}: {r.json}")
            self.assertEqual(r.json.get("Field"), field, f"{method} {template} {what}: {r.json}")
        return r

    def operations(self):
        for template, item in self.spec["paths"].items():
            for m in METHODS:
                if m in item:
                    op = resolve(item[m], self.spec)
                    params = resolve(item.get("parameters", []), self.spec) + op.get("parameters", [])
                    yield m.upper(), template, op, params

    def concrete(self, template, params, override=None, only=None):
        """TEMPLATE with valid path parameters, or OVERRIDE in parameter
        ONLY (every one when ONLY is None)."""
        path = template
        for p in params:
            if p["in"] == "path":
                if override is not None and (only is None or p["name"] == only):
                    value = override
                else:
                    value = urllib.parse.quote(valid_value(p["schema"]), safe="")
                path = path.replace("{" + p["name"] + "}", value)
        return path

    def other_resource(self, template, path):
        """The template of another resource PATH reaches once its dot
        segments are removed (RFC 3986 5.2.4, as the server does), or None."""
        segs = path.split("/")
        out = []
        for seg in segs:
            if seg == "..":
                if len(out) > 1:
                    out.pop()
            elif seg != ".":
                out.append(seg)
        if segs[-1] in (".", ".."):
            out.append("")
        resolved = "/".join(out)
        if resolved == path:
            return None
        other = harness.spec_checker().match_template(resolved)
        return None if other is None or other == template else other

    def test_every_operation_and_field(self):
        ops = list(self.operations())
        self.assertGreaterEqual(len(ops), 35, "the spec's operations were found")
        n_cases = 0
        for method, template, op, params in ops:
            body_schema = (((op.get("requestBody") or {}).get("content") or {}).get("application/json")
                           or {}).get("schema")
            body_required = (op.get("requestBody") or {}).get("required", False)
            base_body = valid_value(body_schema) if body_schema else None
            path = self.concrete(template, params)
            cases = []
            # The body, field by field.
            if body_schema:
                for what, body, field in body_cases(body_schema, [], base_body):
                    cases.append((f"body {field or '(root)'}: {what}", path, body, None, {}, field))
                cases.append(("body of the wrong type", path, [base_body], None, {}, None))
            if body_required and body_schema:
                # (A multipart upload without a body is 415, tested with
                # the package repository in test_packages.py.)
                cases.append(("no body", path, None, None, {}, None))
            # Query and header parameters.
            for p in params:
                if p["in"] not in ("query", "header"):
                    continue
                for what, raw in param_cases(p):
                    if p["in"] == "query":
                        sep = "&" if "?" in path else "?"
                        cases.append((f"query {p['name']}: {what}", f"{path}{sep}{p['name']}={raw}", base_body,
                                      None, {}, p["name"]))
                    else:
                        value = urllib.parse.unquote(raw, encoding="latin-1")
                        if "\x00" in value or "%" in raw:
                            continue  # headers cannot carry a NUL; bytes below
                        cases.append((f"header {p['name']}: {what}", path, base_body, None,
                                      {p["name"]: value}, p["name"]))
                if p["in"] == "header":
                    cases.append((f"header {p['name']}: not UTF-8", path, base_body, None,
                                  {p["name"]: "\xff\xfe"}, p["name"]))
            with self.subTest(operation=f"{method} {template}"):
                before = self.snapshot()
                for what, target, body, raw, headers, field in cases:
                    self.refused(method, target, template, what, body=body, raw=raw, headers=headers,
                                 field=field)
                # Path parameters: traversal and injection.
                for p in params:
                    if p["in"] != "path":
                        continue
                    s = p["schema"]
                    values = list(HOSTILE_IDS)
                    if "pattern" in s:
                        values += [v for v in EXAMPLES[s["pattern"]]["refuse"] if v]
                    values.append(valid_value(s) + "0" * (s.get("maxLength", 50) + 1))
                    for v in values:
                        enc = urllib.parse.quote(v, safe="", encoding="utf-8", errors="surrogateescape")
                        if v == "\xff\xfe":
                            enc = "%FF%FE"
                        target = self.concrete(template, params, enc, only=p["name"])
                        other = self.other_resource(template, target)
                        if other:
                            # ".." as a nested resource's parent Id reaches
                            # another resource: its answer must not be a 5xx
                            # (404 or 405 when it has no such method), and the
                            # snapshot below shows it changed nothing.
                            has = method.lower() in self.spec["paths"][other]
                            r = self.api(self.node, method, target, body=base_body, template=other,
                                         check_spec=has)
                            self.assertLess(r.status, 500, f"{method} {target}: {r.describe()}")
                            if not has:
                                self.assertIn(r.status, (404, 405), f"{method} {target}: {r.describe()}")
                            n_cases += 1
                            continue
                        r = self.refused(method, target, template,
                                         f"path {p['name']}={v[:40]!r}", body=base_body, field=False,
                                         allow_404=True)
                        if r.status == 400:
                            self.assertEqual(r.json.get("Field"), p["name"],
                                             f"{method} {template} id={v[:40]!r}: {r.json}")
                        n_cases += 1
                n_cases += len(cases)
                time.sleep(0.05)
                after = self.snapshot()
                for k in before:
                    if k == "events" and after[k] != before[k]:
                        recent = [e for e in self.api(self.node, "GET", "/api/events?take=200").json["Items"]
                                  if e["Category"] not in REFUSALS]
                        self.fail(f"{method} {template}: an event was recorded (newest {before[k]} -> "
                                  f"{after[k]}); latest: {recent[:3]}")
                    self.assertEqual(after[k], before[k], f"{method} {template}: {k} changed")
        sys.stderr.write(f"\ntest_negative_suite: {n_cases} cases over {len(ops)} operations\n")
        self.assertGreater(n_cases, 300, "the suite generated a real number of cases")
        self.assertIsNone(self.node.proc.poll(), f"the node is still running\n{self.node.log_tail()}")
        self.assertEqual(self.node.ping().status, 200)
        self.assertNotIn("status=500", self.node.log, "the node never answered 500")


if __name__ == "__main__":
    harness.main()
