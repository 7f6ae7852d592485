#!/usr/bin/env python3
"""GET /metrics: the Prometheus text exposition (format 0.0.4), black-box.

  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_metrics.py
  OCTOHA_SERVER_BIN=build/octoha-server python3 tests/integration/test_metrics.py MetricsPgTests

Every scrape is read by a strict parser written here (parse_exposition):
each line is a HELP, a TYPE or a sample `name{labels} value`; every family
has one HELP and one TYPE before its samples, which are contiguous; label
values use only the format's escapes; no series repeats; histogram buckets
rise in `le`, are cumulative and end with +Inf equal to _count.
ParserSelfTests feeds it broken texts so that it is known to refuse them.

SQLite (embedded, one node per class or test; OCTOHA_TEST_DB is ignored,
the tests count tasks): requests counted by route and status exactly,
the HTTP layer's own refusals, 401 without a key, a Reader key allowed,
tasks by state against the task list, the due queue on a node that takes
no work.  PostgreSQL (tests/pg.sh): two nodes, per-node running tasks and
drain state seen from the other node, a stopped node offline; and a scrape
while the database is down answers 200 with octoha_db_up 0 (the key is
kept in the node's auth cache for 60 s so it can still be checked).
"""

import math
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NODES, unique_name  # noqa: E402
from test_tasks_sqlite import TASKS, TaskTestCase, node_env  # noqa: E402

METRICS = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATES = ("Queued", "Executing", "Cancelling", "Success", "Failed", "Canceled", "TimedOut")
FAMILIES = {
    "octoha_http_requests_total": "counter",
    "octoha_http_request_duration_seconds": "histogram",
    "octoha_db_transactions_total": "counter",
    "octoha_db_retries_total": "counter",
    "octoha_db_reconnects_total": "counter",
    "octoha_db_failures_total": "counter",
    "octoha_db_up": "gauge",
    "octoha_tasks": "gauge",
    "octoha_task_queue_depth": "gauge",
    "octoha_node_running_tasks": "gauge",
    "octoha_node_max_concurrent_tasks": "gauge",
    "octoha_node_draining": "gauge",
    "octoha_node_online": "gauge",
}
CLUSTER_FAMILIES = {"octoha_tasks", "octoha_task_queue_depth", "octoha_node_running_tasks",
                    "octoha_node_max_concurrent_tasks", "octoha_node_draining", "octoha_node_online"}
BUCKETS = ("0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
           "5", "+Inf")

# --------------------------------------------------------------------------
# A strict parser of the text exposition format 0.0.4

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE_RE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_VALUE_RE = re.compile(r"^(?:[+-]?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|Inf)|NaN)$")
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ExpositionError(AssertionError):
    """The text does not follow the exposition format (a test failure)."""


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def _labels(text: str, line: str) -> dict:
    out, pos = {}, 0
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        if not m:
            raise ExpositionError(f"bad label set at {text[pos:pos + 40]!r} in {line!r}")
        if m.group(1) in out:
            raise ExpositionError(f"label {m.group(1)} twice in {line!r}")
        out[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ExpositionError(f"labels not separated by ',' in {line!r}")
            pos += 1
            if pos == len(text):
                raise ExpositionError(f"trailing ',' in {line!r}")
    return out


class Exposition:
    """A parsed scrape: families (name -> type), help, samples."""

    def __init__(self):
        self.types = {}
        self.help = {}
        self.samples = {}  # (name, ((label, value), ...) sorted) -> float
        self.order = []  # sample keys in the order they came

    def get(self, name, default=None, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def series(self, name):
        """{labels tuple: value} of every sample called NAME."""
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}

    def requests(self, route, code):
        """octoha_http_requests_total for ROUTE and CODE (an absent series is 0)."""
        return self.get("octoha_http_requests_total", 0, route=route, code=str(code))

    def durations_count(self, route):
        return self.get("octoha_http_request_duration_seconds_count", 0, route=route)


def _family_of(name: str, types: dict):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return None


def parse_exposition(text: str) -> Exposition:
    """Parse TEXT strictly; ExpositionError on the first thing out of place."""
    if not text.endswith("\n"):
        raise ExpositionError("the text does not end with a line feed")
    e = Exposition()
    done = set()  # families whose samples have ended
    current = None
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            m = re.match(rf"^# (HELP|TYPE) ({_NAME}) (.*)$", line)
            if not m:
                raise ExpositionError(f"a comment other than HELP or TYPE: {line!r}")
            kind, name, rest = m.groups()
            if name in done or current == name:
                raise ExpositionError(f"{kind} of {name} after its samples: {line!r}")
            if kind == "HELP":
                if name in e.help:
                    raise ExpositionError(f"second HELP for {name}")
                if re.search(r"\\[^\\n]", rest):
                    raise ExpositionError(f"bad escape in HELP of {name}: {line!r}")
                e.help[name] = rest
            else:
                if name in e.types:
                    raise ExpositionError(f"second TYPE for {name}")
                if name not in e.help:
                    raise ExpositionError(f"TYPE of {name} before its HELP")
                if rest not in _TYPES:
                    raise ExpositionError(f"unknown type {rest!r} for {name}")
                e.types[name] = rest
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ExpositionError(f"not a sample line `name{{labels}} value`: {line!r}")
        name, label_text, value = m.groups()
        if not _VALUE_RE.match(value):
            raise ExpositionError(f"bad value {value!r} in {line!r}")
        labels = _labels(label_text or "", line)
        fam = _family_of(name, e.types)
        if fam is None:
            raise ExpositionError(f"sample {name} without HELP and TYPE: {line!r}")
        if fam != current:
            if current is not None:
                done.add(current)
            if fam in done:
                raise ExpositionError(f"samples of {fam} are not contiguous: {line!r}")
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in e.samples:
            raise ExpositionError(f"series repeated: {line!r}")
        v = float(value)
        if e.types[fam] == "counter" and (v < 0 or v != math.floor(v)):
            raise ExpositionError(f"a counter that is negative or not whole: {line!r}")
        e.samples[key] = v
        e.order.append(key)
    for name, t in e.types.items():
        if t == "histogram":
            _check_histogram(e, name)
    return e


def _check_histogram(e: Exposition, name: str) -> None:
    groups = {}
    for key in e.order:
        sname, labels = key
        if sname == name + "_bucket":
            rest = tuple(kv for kv in labels if kv[0] != "le")
            le = dict(labels).get("le")
            if le is None:
                raise ExpositionError(f"{name}_bucket without le: {labels}")
            groups.setdefault(rest, []).append((le, e.samples[key]))
        elif sname not in (name + "_sum", name + "_count"):
            if _family_of(sname, e.types) == name:
                raise ExpositionError(f"{sname} in histogram {name}")
    for rest, buckets in groups.items():
        les = [float(le) for le, _ in buckets]
        if les != sorted(les) or len(set(les)) != len(les):
            raise ExpositionError(f"{name}{dict(rest)}: le not rising: {[le for le, _ in buckets]}")
        if buckets[-1][0] != "+Inf":
            raise ExpositionError(f"{name}{dict(rest)}: the last bucket is not +Inf")
        counts = [c for _, c in buckets]
        if counts != sorted(counts):
            raise ExpositionError(f"{name}{dict(rest)}: buckets not cumulative: {counts}")
        count = e.samples.get((name + "_count", rest))
        if count is None or (name + "_sum", rest) not in e.samples:
            raise ExpositionError(f"{name}{dict(rest)}: _sum or _count missing")
        if count != counts[-1]:
            raise ExpositionError(f"{name}{dict(rest)}: +Inf bucket {counts[-1]} != _count {count}")
    for sname, labels in e.order:
        if sname in (name + "_sum", name + "_count") and labels not in groups:
            raise ExpositionError(f"{sname}{dict(labels)} without buckets")


class ParserSelfTests(unittest.TestCase):
    """The parser refuses what the format does not allow (no server needed)."""

    GOOD = (
        "# HELP a_total Things.\n# TYPE a_total counter\n"
        'a_total{route="x",code="200"} 3\na_total{route="q\\"\\\\\\n",code="other"} 1\n'
        "# HELP h Latency.\n# TYPE h histogram\n"
        'h_bucket{route="x",le="0.5"} 1\nh_bucket{route="x",le="1"} 2\nh_bucket{route="x",le="+Inf"} 2\n'
        'h_sum{route="x"} 0.75\nh_count{route="x"} 2\n'
        "# HELP g Level.\n# TYPE g gauge\ng 0\n"
    )

    def test_accepts_well_formed(self):
        e = parse_exposition(self.GOOD)
        self.assertEqual(e.types, {"a_total": "counter", "h": "histogram", "g": "gauge"})
        self.assertEqual(e.get("a_total", route="x", code="200"), 3)
        self.assertEqual(e.get("a_total", route='q"\\\n', code="other"), 1, "escapes undone")
        self.assertEqual(e.get("h_count", route="x"), 2)
        self.assertEqual(e.get("g"), 0)

    def test_rejects_malformed(self):
        bad = {
            "no final line feed": self.GOOD[:-1],
            "sample without TYPE": self.GOOD + "z 1\n",
            "TYPE without HELP": self.GOOD + "# TYPE z gauge\nz 1\n",
            "second TYPE": self.GOOD + "# TYPE g gauge\n",
            "unknown type": self.GOOD + "# HELP z Z.\n# TYPE z meter\nz 1\n",
            "other comment": "# hello\n" + self.GOOD,
            "blank line": self.GOOD + "\n",
            "timestamp": self.GOOD.replace("g 0\n", "g 0 1700000000\n"),
            "bad value": self.GOOD.replace("g 0\n", "g zero\n"),
            "bad escape": self.GOOD.replace('route="x",code="200"', 'route="\\t",code="200"'),
            "raw quote": self.GOOD.replace('route="x",code="200"', 'route="a"b",code="200"'),
            "trailing comma": self.GOOD.replace('code="200"}', 'code="200",}'),
            "repeated label": self.GOOD.replace('code="200"}', 'code="200",code="201"}'),
            "repeated series": self.GOOD + "# HELP y Y.\n# TYPE y gauge\ny 1\ny 2\n",
            "interleaved family": self.GOOD + 'a_total{route="y",code="200"} 1\n',
            "negative counter": self.GOOD.replace("} 3\n", "} -3\n"),
            "not cumulative": self.GOOD.replace('le="1"} 2', 'le="1"} 0'),
            "+Inf not last": self.GOOD.replace('h_bucket{route="x",le="+Inf"} 2\n', ""),
            "+Inf != _count": self.GOOD.replace('h_count{route="x"} 2', 'h_count{route="x"} 3'),
            "le not rising": self.GOOD.replace('le="0.5"', 'le="2"'),
            "no _sum": self.GOOD.replace('h_sum{route="x"} 0.75\n', ""),
        }
        for what, text in bad.items():
            with self.subTest(what=what):
                with self.assertRaises(ExpositionError, msg=what):
                    parse_exposition(text)


# --------------------------------------------------------------------------


class MetricsCase(TaskTestCase):
    def scrape(self, node, key=harness.DEFAULT_KEY, headers=None) -> Exposition:
        """GET /metrics (200), its Content-Type, and its text parsed strictly."""
        r = self.api(node, "GET", METRICS, expect=200, key=key, headers=headers)
        self.assertEqual(r.header("Content-Type"), CONTENT_TYPE, "Content-Type of a scrape")
        media, _ = harness.spec_checker().response_schema("GET", METRICS, 200, r.header("Content-Type"))
        self.assertEqual(media, "text/plain", "openapi.yaml declares the 200 as text/plain")
        e = parse_exposition(r.body.decode("utf-8"))
        for fam, t in FAMILIES.items():
            if fam in CLUSTER_FAMILIES and e.get("octoha_db_up") == 0:
                continue
            self.assertEqual(e.types.get(fam), t, f"{fam} is announced as a {t}")
        self.assertEqual(set(e.types) - set(FAMILIES), set(), "no family beyond the documented ones")
        return e

    def assert_tasks_match_the_list(self, node, e: Exposition):
        """octoha_tasks of every state equals the task list's TotalResults."""
        for state in STATES:
            listed = self.list_tasks(node, f"?states={state}&take=1")["TotalResults"]
            self.assertEqual(e.get("octoha_tasks", state=state), listed, f"octoha_tasks{{state={state}}}")

    def tasks(self, e: Exposition) -> dict:
        got = {dict(k)["state"]: v for k, v in e.series("octoha_tasks").items()}
        self.assertEqual(set(got), set(STATES), "octoha_tasks lists every state, zeros included")
        return got


class MetricsSqliteTests(MetricsCase):
    """One node on its embedded SQLite database (cap 5), shared by the class."""

    @classmethod
    def setUpClass(cls):
        cls.logs = harness.make_tmp_dir("metrics-logs")
        cls.node = cls.start_class_node(name=unique_name("metrics"), db=None,
                                        env=node_env(cls.logs, OCTOHA_TASK_CAP=5))

    def test_exposition_is_well_formed_and_complete(self):
        e = self.scrape(self.node)
        self.assertEqual(e.get("octoha_db_up"), 1, "the database answered")
        self.tasks(e)
        me = self.node.name
        self.assertEqual(e.get("octoha_node_online", node=me), 1, "this node is online")
        self.assertEqual(e.get("octoha_node_draining", node=me), 0, "this node is not draining")
        self.assertEqual(e.get("octoha_node_max_concurrent_tasks", node=me), 5, "its cap")
        self.assertIsNotNone(e.get("octoha_node_running_tasks", node=me), "its running tasks")
        self.assertIsNotNone(e.get("octoha_task_queue_depth"), "the queue depth")
        for fam in ("octoha_db_transactions_total", "octoha_db_retries_total",
                    "octoha_db_reconnects_total", "octoha_db_failures_total"):
            self.assertIsNotNone(e.get(fam), f"{fam} has its sample")
        self.assertGreater(e.get("octoha_db_transactions_total"), 0, "transactions were counted")
        # Routes are the spec's operationIds, or "unmatched".
        op_ids = {op["operationId"] for item in harness.spec_checker().paths.values()
                  for m, op in item.items() if isinstance(op, dict) and "operationId" in op}
        self.assertIn("getMetrics", op_ids)
        routes = {dict(k)["route"] for k in e.series("octoha_http_requests_total")}
        self.assertTrue(routes, "some requests were counted (at least the ping at start)")
        self.assertLessEqual(routes, op_ids | {"unmatched"}, "route labels are operationIds")
        self.assertGreaterEqual(e.requests("getNodePing", 200), 1, "the readiness ping was counted")
        for k in e.series("octoha_http_request_duration_seconds_bucket"):
            self.assertIn(dict(k)["le"], BUCKETS, "documented bucket bounds only")

    def test_requests_counted_exactly(self):
        before = self.scrape(self.node)
        for _ in range(2):
            self.api(self.node, "GET", NODES, expect=200)
        # /api/{spaceId} is a route (the space root), so /api/nope/x is the unmatched one.
        for path in ("/api/nope/x", "/metrics/x", "/"):
            self.api(self.node, "GET", path, expect=404)
        self.api(self.node, "POST", harness.PING, expect=405)
        self.api(self.node, "POST", TASKS, body={"Name": 5}, expect=400)  # not a string
        self.api(self.node, "POST", TASKS, body=b"{not json", headers={"Content-Type": "application/json"},
                 expect=400)
        after = self.scrape(self.node)
        expected = {
            ("listNodes", 200): 2,
            ("unmatched", 404): 3,
            ("unmatched", 405): 1,
            ("createTask", 400): 2,
            ("getMetrics", 200): 1,  # the first scrape, counted as its answer left
        }
        for (route, code), n in expected.items():
            with self.subTest(route=route, code=code):
                self.assertEqual(after.requests(route, code) - before.requests(route, code), n,
                                 f"octoha_http_requests_total{{route={route},code={code}}} rose by {n}")
        for route, n in (("listNodes", 2), ("unmatched", 4), ("createTask", 2), ("getMetrics", 1)):
            with self.subTest(histogram=route):
                self.assertEqual(after.durations_count(route) - before.durations_count(route), n,
                                 f"{route}'s latency histogram counted {n} more")
        self.assertGreater(after.get("octoha_http_request_duration_seconds_sum", route="listNodes"),
                           before.get("octoha_http_request_duration_seconds_sum", 0, route="listNodes"),
                           "the listNodes latency sum grew")
        # Nothing else moved: every other series is where it was.
        moved = {k for k in after.series("octoha_http_requests_total")
                 if after.series("octoha_http_requests_total")[k]
                 != before.series("octoha_http_requests_total").get(k, 0)}
        self.assertEqual({(dict(k)["route"], int(dict(k)["code"])) for k in moved}, set(expected),
                         "only the requests made moved their counters")

    def test_http_layer_refusals_counted(self):
        """What civetweb refuses itself (on_http_error) counts as unmatched."""
        before = self.scrape(self.node)
        for payload in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.node.port), timeout=5) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 400 "), f"{payload!r} answered {data[:60]!r}")
        after = self.scrape(self.node)
        self.assertEqual(after.requests("unmatched", 400) - before.requests("unmatched", 400), 2,
                         "two refusals of the HTTP layer counted as unmatched 400")
        self.assertEqual(after.durations_count("unmatched") - before.durations_count("unmatched"), 0,
                         "they have no duration, so the histogram does not count them")

    def test_missing_key_401(self):
        before = self.scrape(self.node)
        r = self.api(self.node, "GET", METRICS, key=None)
        self.assert_error(r, 401, "ApiKeyMissing", what="a scrape without a key")
        self.assertTrue(r.header("WWW-Authenticate"), "a 401 carries WWW-Authenticate")
        r = self.api(self.node, "GET", METRICS, key="API-ZZZZ0000UNKNOWN0KEY000000000000Q")
        self.assert_error(r, 401, "ApiKeyInvalid", what="a scrape with an unknown key")
        after = self.scrape(self.node)
        self.assertEqual(after.requests("getMetrics", 401) - before.requests("getMetrics", 401), 2,
                         "the refused scrapes are counted under getMetrics 401")

    def test_reader_key_allowed(self):
        r = self.api(self.node, "POST", "/api/apikeys", body={"Name": unique_name("prom"), "Role": "Reader"},
                     expect=201, check_spec=False)
        reader = r.json["ApiKey"]
        e = self.scrape(self.node, key=None, headers={"Authorization": f"Bearer {reader}"})
        self.assertEqual(e.get("octoha_db_up"), 1, "a Bearer Reader key scrapes (as Prometheus sends it)")
        e = self.scrape(self.node, key=reader)
        self.assertEqual(e.get("octoha_db_up"), 1, "an X-Octopus-ApiKey Reader key scrapes")

    def test_tasks_by_state(self):
        me = self.node.name
        before = self.tasks(self.scrape(self.node))
        done = self.create_task(self.node, {"WaitMs": 0}, query="?waitSeconds=20")
        self.assertEqual(done["State"], "Success", f"a quick task ends Success: {done}")
        long = self.create_task(self.node, {"WaitMs": 20000, "LogLines": 200})["Id"]
        self.wait_state(self.node, long, "Executing", 10, nodes=[self.node])
        e = self.scrape(self.node)
        mid = self.tasks(e)
        self.assertEqual(mid["Success"] - before["Success"], 1, "one more Success")
        self.assertEqual(mid["Executing"] - before["Executing"], 1, "one more Executing")
        self.assertEqual(e.get("octoha_node_running_tasks", node=me), 1, "the long task runs on this node")

        self.api(self.node, "POST", f"{TASKS}/{long}/cancel", expect=202)
        self.wait_state(self.node, long, "Canceled", 15, nodes=[self.node])
        e = self.scrape(self.node)
        end = self.tasks(e)
        self.assertEqual(end["Canceled"] - before["Canceled"], 1, "one more Canceled")
        self.assertEqual(end["Executing"], before["Executing"], "Executing back where it was")
        self.assertEqual(e.get("octoha_node_running_tasks", node=me), 0, "nothing runs any more")
        self.assert_tasks_match_the_list(self.node, e)

    def test_queue_depth_on_a_node_taking_no_work(self):
        node = self.start_node(db=None, env=node_env(harness.make_tmp_dir("metrics-logs"), OCTOHA_TASK_CAP=0))
        e = self.scrape(node)
        self.assertEqual(e.get("octoha_node_max_concurrent_tasks", node=node.name), 0, "cap 0")
        before_q, before_depth = self.tasks(e)["Queued"], e.get("octoha_task_queue_depth")
        ids = [self.create_task(node, {"WaitMs": 0})["Id"] for _ in range(3)]
        e = self.scrape(node)
        self.assertEqual(self.tasks(e)["Queued"] - before_q, 3, "three more Queued")
        self.assertEqual(e.get("octoha_task_queue_depth") - before_depth, 3, "all three are due")
        self.assertEqual(e.get("octoha_node_running_tasks", node=node.name), 0, "cap 0 runs nothing")
        self.api(node, "POST", f"{TASKS}/{ids[0]}/cancel", expect=(200, 202))
        e = self.scrape(node)
        got = self.tasks(e)
        self.assertEqual(got["Queued"] - before_q, 2, "a canceled task leaves the queue")
        self.assertEqual(e.get("octoha_task_queue_depth") - before_depth, 2, "and the due queue")
        self.assertGreaterEqual(got["Canceled"], 1, "it is Canceled")
        self.assert_tasks_match_the_list(node, e)


def _need_pg():
    if harness.TEST_DB:
        raise unittest.SkipTest("counts the nodes and tasks of its database; not done on OCTOHA_TEST_DB")
    reason = harness.postgres_available()
    if reason:
        raise unittest.SkipTest(reason)


class MetricsPgTests(MetricsCase):
    """Two nodes on one fresh PostgreSQL database."""

    def setUp(self):
        _need_pg()
        self.db = harness.cluster_db(self, need_empty=True)
        self.logs = self.logs_dir()

    def node(self, cap=3):
        return self.start_node(name=unique_name("m"), db=self.db, env=node_env(self.logs, OCTOHA_TASK_CAP=cap))

    def test_running_and_drain_seen_from_the_other_node(self):
        a, b = self.node(cap=3), self.node(cap=4)
        e = self.scrape(b)
        for n, cap in ((a, 3), (b, 4)):
            self.assertEqual(e.get("octoha_node_online", node=n.name), 1, f"{n.name} online")
            self.assertEqual(e.get("octoha_node_draining", node=n.name), 0, f"{n.name} not draining")
            self.assertEqual(e.get("octoha_node_max_concurrent_tasks", node=n.name), cap, f"{n.name} cap")
        self.assertEqual(len(e.series("octoha_node_online")), 2, "two nodes in the cluster")

        tid = self.create_task(b, {"WaitMs": 20000, "LogLines": 200}, TargetNodeId=a.id)["Id"]
        self.wait_state(b, tid, "Executing", 10, nodes=[a, b])
        e = self.scrape(b)
        self.assertEqual(e.get("octoha_node_running_tasks", node=a.name), 1, "the task runs on a")
        self.assertEqual(e.get("octoha_node_running_tasks", node=b.name), 0, "nothing on b")
        self.assertEqual(self.tasks(e)["Executing"], 1, "one task Executing in the cluster")

        r = self.api(b, "POST", f"{NODES}/{a.id}/drain", body={"Reason": "metrics"}, expect=202)
        self.assertEqual(r.json["Name"], "Drain")
        for observer in (b, a):
            e = self.scrape(observer)
            self.assertEqual(e.get("octoha_node_draining", node=a.name), 1, f"{observer.name} sees a draining")
            self.assertEqual(e.get("octoha_node_draining", node=b.name), 0, f"{observer.name} sees b not draining")

        self.api(b, "POST", f"{NODES}/{a.id}/undrain", expect=(200, 202))
        self.wait_until(lambda: self.scrape(b).get("octoha_node_draining", node=a.name) == 0, 10,
                        msg="octoha_node_draining of a back to 0 after the undrain", nodes=[a, b])

        self.api(b, "POST", f"{TASKS}/{tid}/cancel", expect=202)
        self.wait_state(b, tid, "Canceled", 15, nodes=[a, b])
        self.assertEqual(b.terminate(), 0, "b stops cleanly")
        e = self.scrape(a)
        self.assertEqual(e.get("octoha_node_online", node=b.name), 0, "a stopped node is offline at once")
        self.assertEqual(e.get("octoha_node_online", node=a.name), 1, "a is still online")


class MetricsDatabaseDownTests(MetricsCase):
    """Stops PostgreSQL under a node: needs a cluster of its own."""

    def setUp(self):
        _need_pg()
        self.pg = harness.PgCluster().start()
        self.addCleanup(self.pg.stop, quiet=True)

    def test_scrape_answers_200_with_db_up_0(self):
        # The key is believed for 60 s after a check, so it can be checked
        # while the database is down; the scrape itself must not fail.
        node = self.start_node(db=self.pg.fresh_db(), env=node_env(self.logs_dir(), OCTOHA_AUTH_CACHE_MS=60000))
        e = self.scrape(node)
        self.assertEqual(e.get("octoha_db_up"), 1, "up while the database runs")
        failures = e.get("octoha_db_failures_total")
        self.pg.stop()
        t0 = time.monotonic()
        e = self.scrape(node)
        self.assertLess(time.monotonic() - t0, 20, "the scrape answered within 20 s")
        self.assertEqual(e.get("octoha_db_up"), 0, "octoha_db_up 0 while the database is down")
        self.assertEqual(set(e.types) & CLUSTER_FAMILIES, set(), "no cluster figures without the database")
        self.assertGreaterEqual(e.requests("getMetrics", 200), 1, "the in-process counters are still there")
        self.assertGreater(e.get("octoha_db_failures_total"), failures, "the failed read is counted")
        self.assertIsNone(node.proc.poll(), f"the node is still running\n{node.log_tail()}")


if __name__ == "__main__":
    harness.main()
