#!/usr/bin/env python3
"""Parses every statement that can reach SQL Server with a real T-SQL grammar.

No SQL Server runs on the development machines, so this is what keeps the
production dialect honest: Debian's sqlfluff (`sqlfluff parse --dialect
tsql`) parses

  * each batch of migrations/sqlserver/*.sql (split on GO lines);
  * the SQL Server entries of the dialect table (lib/db/dialect.c);
  * every portable statement of the store modules (lib/db/*.c): the string
    literals the compiler sees (after the preprocessor joins adjacent ones)
    that begin with a statement keyword.  A statement built around "%s" (a
    WHERE clause of fixed fragments) is parsed without it; one ending in an
    ORDER BY is also parsed paged, as db_query_page sends it to SQL Server.
    A literal handed to the statement builder (db_sql_add, lib/db/keyset.h)
    is a fragment, not a statement: it is parsed as part of
  * every statement the stores assemble from fragments, as built for SQL
    Server (`tsql_page --built`).

Parameter markers (?) become @p1, @p2, … as SQL Server sees them.  A tree
with an "unparsable" segment fails.  Two canaries keep the check honest: the
claim's CTE with table hints and OUTPUT must parse, a LIMIT must not.

Usage: check_tsql.py SOURCE_DIR BUILD_GEN_DIR TSQL_PAGE
(TSQL_PAGE: the tests' tsql_page program, which pages a query as the dialect
table does.)  Exit 0 ok, 1 failures, 77 when sqlfluff is not installed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

KEYWORDS = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|ALTER|MERGE|EXEC|SET|IF)\b",
                      re.I)
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S)')
GO_LINE = re.compile(r"^\s*GO\s*$", re.I | re.M)

CANARY_OK = ("WITH c AS (SELECT TOP (@p1) Id, State FROM dbo.ServerTasks WITH (UPDLOCK, READPAST, "
             "ROWLOCK) WHERE State = N'Queued' ORDER BY NextRunAt) UPDATE c SET State = N'Executing' "
             "OUTPUT INSERTED.Id, INSERTED.State;")
CANARY_BAD = "SELECT Id FROM ServerTasks ORDER BY Id LIMIT @p1"


def preprocess(src_dir, path, gen_dir):
    cmd = ["cc", "-E", "-P", "-D_GNU_SOURCE", f"-I{src_dir}/lib"]
    if gen_dir:
        cmd.append(f"-I{gen_dir}")
    cmd.append(path)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"check_tsql: cannot preprocess {path}:\n{r.stderr}")
    return r.stdout


# A builder call's last argument: the literal after it is a fragment.
FRAGMENT_CALL = re.compile(r"\bdb_sql_add\s*\(\s*[&\w>.-]+\s*,\s*$")


def literal_runs(text, skip_fragments=False):
    """Adjacent string literals joined, in order of appearance (without
    those passed to the statement builder when SKIP_FRAGMENTS)."""
    runs, cur, start = [], None, 0
    for m in LITERAL.finditer(text):
        if m.group(1) is not None:
            s = m.group(1).encode("utf-8").decode("unicode_escape")
            if cur is None:
                start = m.start()
            cur = (cur or "") + s
        elif cur is not None:
            if not (skip_fragments and FRAGMENT_CALL.search(text[max(0, start - 200):start])):
                runs.append(cur)
            cur = None
    if cur is not None:
        runs.append(cur)
    return runs


def sqlserver_block(text):
    """The preprocessed text of the dialect table's SQL Server entry."""
    start = text.find("[DB_DIALECT_SQLSERVER]")
    if start < 0:
        sys.exit("check_tsql: no [DB_DIALECT_SQLSERVER] entry in lib/db/dialect.c")
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += text[j] == "{"
        depth -= text[j] == "}"
        if depth == 0:
            return text[start:j + 1]
    sys.exit("check_tsql: unbalanced dialect table")


def markers(sql):
    n = [0]

    def repl(_m):
        n[0] += 1
        return f"@p{n[0]}"
    return re.sub(r"\?", repl, sql)


def statements(src_dir, gen_dir, tsql_page):
    out = []  # (origin, sql)
    mig = os.path.join(src_dir, "migrations", "sqlserver")
    for name in sorted(os.listdir(mig)):
        if name.endswith(".sql"):
            with open(os.path.join(mig, name), encoding="utf-8") as f:
                for i, batch in enumerate(GO_LINE.split(f.read())):
                    if batch.strip() and re.search(r"[A-Za-z]", re.sub(r"--[^\n]*", "", batch)):
                        out.append((f"migrations/sqlserver/{name} batch {i + 1}", batch))
    db = os.path.join(src_dir, "lib", "db")
    dialect = sqlserver_block(preprocess(src_dir, os.path.join(db, "dialect.c"), gen_dir))
    for s in literal_runs(dialect):
        if KEYWORDS.match(s) and "%1" not in s:
            out.append(("lib/db/dialect.c (sqlserver)", s))
    paged = []
    for name in sorted(os.listdir(db)):
        if not name.endswith(".c") or name == "dialect.c":
            continue
        for s in literal_runs(preprocess(src_dir, os.path.join(db, name), gen_dir), True):
            if not KEYWORDS.match(s):
                continue
            # A statement built around "%s" (a WHERE, or FROM and WHERE, of
            # fixed fragments) is parsed without it: the rest must stand.
            s = s.replace("%s", "")
            if "%" in s.replace("%'", "").replace("'%", ""):
                continue  # a format for a number of fragments, checked by its pieces
            out.append((f"lib/db/{name}", s))
            if (re.search(r"ORDER BY [^()]*$", s, re.I) and not re.search(r"\bTOP\b", s, re.I)
                    and re.search(r"\sFROM\s", s, re.I)):
                paged.append((f"lib/db/{name} (paged)", s))
    r = subprocess.run([tsql_page], input="".join(s + "\n" for _, s in paged), capture_output=True,
                       text=True)
    lines = r.stdout.split("\n")
    if r.returncode != 0 or len(lines) < len(paged):
        sys.exit(f"check_tsql: {tsql_page} failed:\n{r.stderr}")
    out += [(origin, lines[i]) for i, (origin, _) in enumerate(paged)]
    r = subprocess.run([tsql_page, "--built"], capture_output=True, text=True)
    built = [line for line in r.stdout.split("\n") if line.strip()]
    if r.returncode != 0 or not built:
        sys.exit(f"check_tsql: {tsql_page} --built failed:\n{r.stderr}")
    out += [(f"built by the stores (tsql_page --built, #{i + 1})", sql) for i, sql in enumerate(built)]
    return out


def unparsable(node):
    if isinstance(node, dict):
        return any(k == "unparsable" or unparsable(v) for k, v in node.items())
    if isinstance(node, list):
        return any(unparsable(v) for v in node)
    return False


def parse_all(items):
    tmp = tempfile.mkdtemp(prefix="octoha-tsql-")
    try:
        names = {}
        for i, (origin, sql) in enumerate(items):
            fn = f"s{i:04d}.sql"
            with open(os.path.join(tmp, fn), "w", encoding="utf-8") as f:
                f.write(markers(sql).strip() + "\n")
            names[fn] = (origin, sql)
        r = subprocess.run(["sqlfluff", "parse", "--dialect", "tsql", "--format", "json", "--nofail", tmp],
                           capture_output=True, text=True)
        try:
            trees = json.loads(r.stdout)
        except ValueError:
            sys.exit(f"check_tsql: sqlfluff gave no JSON:\n{r.stdout[:2000]}\n{r.stderr[:2000]}")
        bad = {}
        for t in trees:
            fn = os.path.basename(t["filepath"])
            bad[fn] = t.get("segments") is None or unparsable(t.get("segments"))
        return {names[fn]: bad.get(fn, True) for fn in names}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if not shutil.which("sqlfluff"):
        print("check_tsql: sqlfluff is not installed (scripts/setup.sh test installs it)")
        return 77
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    src_dir, gen_dir, tsql_page = sys.argv[1], sys.argv[2], sys.argv[3]
    items = statements(src_dir, gen_dir, tsql_page)
    canaries = [("canary: the claim's CTE", CANARY_OK), ("canary: LIMIT", CANARY_BAD)]
    verdict = parse_all(items + canaries)
    if verdict[canaries[0]] or not verdict[canaries[1]]:
        print("check_tsql: the grammar no longer tells T-SQL from other SQL (canaries)")
        return 1
    failed = [(o, s) for (o, s), bad in verdict.items() if bad and not o.startswith("canary")]
    for origin, sql in failed:
        print(f"not T-SQL: {origin}:\n  {markers(sql).strip()}\n")
    print(f"check_tsql: {len(items) - len(failed)} of {len(items)} statements parse as T-SQL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
