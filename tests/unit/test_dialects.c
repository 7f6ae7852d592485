/* The dialect check: every dialect statement and migration exists for all
 * three databases, the embedded migrations are the files in migrations/,
 * and no dialect borrows another's syntax (T-SQL gets no LIMIT, RETURNING,
 * SERIAL, BOOLEAN, now(), ON CONFLICT …; PostgreSQL and SQLite get no
 * NVARCHAR, TOP, table hints, SYSUTCDATETIME …).  No T-SQL parser installs
 * here, so this is the guard that keeps the SQL Server target honest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "db/dialect.h"
#include "db/migrate.h"

typedef struct {
	const char *what, *pattern;
} construct_t;

#define P(word) "(^|[^A-Za-z0-9_])" word
#define W(word) P(word) "([^A-Za-z0-9_]|$)"

/* Constructs SQL Server does not have (or that mean something else there). */
static const construct_t not_tsql[] = {
    {"LIMIT", W("LIMIT")},
    {"OFFSET without ROWS", "OFFSET[[:space:]]+[?0-9]+[[:space:]]*($|[^RO ])"},
    {"RETURNING", W("RETURNING")},
    {"SERIAL", W("(BIG|SMALL)?SERIAL")},
    {"BOOLEAN", W("BOOL(EAN)?")},
    {"now()", P("now") "[[:space:]]*\\("},
    {"ON CONFLICT", W("ON[[:space:]]+CONFLICT")},
    {"AUTOINCREMENT", W("AUTO_?INCREMENT")},
    {"TEXT type", W("TEXT")},
    {"ILIKE", W("ILIKE")},
    {":: cast", "::"},
    {"|| concatenation", "\\|\\|"},
    {"CREATE TABLE IF NOT EXISTS", "CREATE[[:space:]]+TABLE[[:space:]]+IF"},
    {"TRUE/FALSE literal", W("(TRUE|FALSE)")},
    {"TIMESTAMPTZ", W("TIMESTAMPTZ")},
    {"PRAGMA", W("PRAGMA")},
    {"julianday", W("julianday")},
    {"pg_ function", W("pg_[a-z_]+")},
    {"FOR UPDATE", W("FOR[[:space:]]+UPDATE")},
    {"INSERT OR", W("INSERT[[:space:]]+OR")},
};

/* Constructs only SQL Server has. */
static const construct_t only_tsql[] = {
    {"NVARCHAR", W("NVARCHAR")},
    {"TOP", W("TOP")},
    {"table hint",
     P("WITH") "[[:space:]]*\\([[:space:]]*(UPDLOCK|READPAST|ROWLOCK|NOLOCK|HOLDLOCK)"},
    {"SYSUTCDATETIME", W("SYSUTCDATETIME")},
    {"DATETIME2", W("DATETIME2")},
    {"OUTPUT INSERTED/DELETED", W("OUTPUT[[:space:]]+(INSERTED|DELETED)")},
    {"sp_ procedure", W("sp_[a-z_]+")},
    {"GO separator", "(^|\n)[[:space:]]*GO[[:space:]]*(\n|$)"},
    {"N'' literal", W("N'")},
    {"DATEDIFF_BIG", W("DATEDIFF_BIG")},
    {"BIT type", W("BIT")},
    {"dbo. schema", W("dbo\\.")},
};

/* Returns SQL with comments and string literals blanked out. */
static char *strip(const char *sql)
{
	char *s = strdup(sql);
	assert_non_null(s);
	for (char *p = s; *p;) {
		if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				*p++ = ' ';
		} else if (p[0] == '/' && p[1] == '*') {
			while (*p && !(p[0] == '*' && p[1] == '/'))
				*p++ = ' ';
			if (*p)
				p[0] = p[1] = ' ';
		} else if (*p == '\'') {
			p++;
			while (*p && *p != '\'')
				*p++ = ' ';
			if (*p)
				p++;
		} else {
			p++;
		}
	}
	return s;
}

static int violations(const char *origin, const char *sql, const construct_t *list, size_t n)
{
	int bad = 0;
	char *code = strip(sql);
	for (size_t i = 0; i < n; i++) {
		regex_t re;
		assert_int_equal(
		    regcomp(&re, list[i].pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB), 0);
		if (regexec(&re, code, 0, NULL, 0) == 0) {
			fprintf(stderr, "%s uses %s\n", origin, list[i].what);
			bad++;
		}
		regfree(&re);
	}
	free(code);
	return bad;
}

/* Checks one piece of SQL written for dialect D. */
static int check_sql(db_dialect_id_t d, const char *origin, const char *sql)
{
	if (d == DB_DIALECT_SQLSERVER)
		return violations(origin, sql, not_tsql, sizeof not_tsql / sizeof not_tsql[0]);
	/* PostgreSQL and SQLite may use their own constructs, but none of
	 * SQL Server's. */
	return violations(origin, sql, only_tsql, sizeof only_tsql / sizeof only_tsql[0]);
}

static void every_statement_exists_for_every_dialect(void **state)
{
	(void)state;
	for (int d = 0; d < DB_DIALECT__COUNT; d++)
		for (int s = 0; s < DB_STMT__COUNT; s++) {
			const char *sql = db_dialect((db_dialect_id_t)d)->stmts[s];
			if (!sql || !*sql)
				fail_msg("%s has no %s statement",
				         db_dialect_name((db_dialect_id_t)d),
				         db_stmt_name((db_stmt_id_t)s));
		}
}

static void dialect_statements_keep_to_their_dialect(void **state)
{
	(void)state;
	int bad = 0;
	for (int d = 0; d < DB_DIALECT__COUNT; d++)
		for (int s = 0; s < DB_STMT__COUNT; s++) {
			char origin[128];
			snprintf(origin, sizeof origin, "dialect %s/%s",
			         db_dialect_name((db_dialect_id_t)d),
			         db_stmt_name((db_stmt_id_t)s));
			bad += check_sql((db_dialect_id_t)d, origin,
			                 db_dialect((db_dialect_id_t)d)->stmts[s]);
		}
	assert_int_equal(bad, 0);
}

static void migrations_exist_for_every_dialect(void **state)
{
	(void)state;
	size_t n0;
	const db_migration_t *m0 = db_migrations(DB_DIALECT_SQLITE, &n0);
	assert_true(n0 > 0);
	assert_int_equal(m0[n0 - 1].version, db_migrations_latest());
	for (int d = 1; d < DB_DIALECT__COUNT; d++) {
		size_t n;
		const db_migration_t *m = db_migrations((db_dialect_id_t)d, &n);
		assert_int_equal(n, n0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(m[i].version, m0[i].version);
			assert_string_equal(m[i].name, m0[i].name);
		}
	}
}

static void migrations_keep_to_their_dialect(void **state)
{
	(void)state;
	int bad = 0;
	for (int d = 0; d < DB_DIALECT__COUNT; d++) {
		size_t n;
		const db_migration_t *m = db_migrations((db_dialect_id_t)d, &n);
		for (size_t i = 0; i < n; i++) {
			char origin[160];
			snprintf(origin, sizeof origin, "migrations/%s/%04d_%s.sql",
			         db_dialect_name((db_dialect_id_t)d), m[i].version, m[i].name);
			bad += check_sql((db_dialect_id_t)d, origin, m[i].sql);
		}
	}
	assert_int_equal(bad, 0);
}

static void embedded_migrations_are_the_files(void **state)
{
	(void)state;
	const char *src = getenv("OCTOHA_SOURCE_DIR");
	if (!src)
		skip();
	for (int d = 0; d < DB_DIALECT__COUNT; d++) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/migrations/%s", src,
		         db_dialect_name((db_dialect_id_t)d));
		DIR *dh = opendir(dir);
		assert_non_null(dh);
		size_t files = 0;
		struct dirent *e;
		while ((e = readdir(dh)))
			if (strstr(e->d_name, ".sql"))
				files++;
		closedir(dh);
		size_t n;
		db_migrations((db_dialect_id_t)d, &n);
		assert_int_equal(files, n);
	}
}

/* Counts parameter markers outside string literals. */
static int markers(const char *sql)
{
	int n = 0;
	bool quoted = false;
	for (const char *p = sql; *p; p++) {
		if (*p == '\'')
			quoted = !quoted;
		else if (*p == '?' && !quoted)
			n++;
	}
	return n;
}

/* Statements whose markers take reordered parameters must have a map entry
 * for each marker (the T-SQL ones cannot be run here, so this is where a
 * miscounted map is caught). */
static void parameter_maps_fit_their_statements(void **state)
{
	(void)state;
	for (int s = 0; s < DB_STMT__COUNT; s++) {
		for (int d = 0; d < DB_DIALECT__COUNT; d++) {
			const db_dialect_t *dl = db_dialect((db_dialect_id_t)d);
			int n = markers(dl->stmts[s]);
			const char *map = dl->maps[s];
			int entries = 0;
			if (map) {
				for (const char *m = map; *m;) {
					char *end;
					long v = strtol(m, &end, 10);
					assert_true(end != m && v >= 0);
					entries++;
					m = *end == ',' ? end + 1 : end;
				}
				if (entries != n)
					fail_msg("%s/%s: %d markers but a map of %d", dl->name,
					         db_stmt_name((db_stmt_id_t)s), n, entries);
			}
		}
	}
}

/* The checker itself must catch what it claims to. */
static void checker_catches_foreign_constructs(void **state)
{
	(void)state;
	assert_int_equal(check_sql(DB_DIALECT_SQLSERVER, "probe", "SELECT x FROM t LIMIT 1"), 1);
	assert_int_equal(check_sql(DB_DIALECT_SQLSERVER, "probe", "INSERT INTO t VALUES (now())"),
	                 1);
	assert_int_equal(check_sql(DB_DIALECT_SQLSERVER, "probe",
	                           "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING"),
	                 1);
	assert_int_equal(
	    check_sql(DB_DIALECT_SQLSERVER, "probe", "-- LIMIT in a comment\nSELECT 1"), 0);
	assert_int_equal(check_sql(DB_DIALECT_POSTGRESQL, "probe", "SELECT TOP 1 x FROM t"), 1);
	assert_int_equal(
	    check_sql(DB_DIALECT_SQLITE, "probe", "SELECT x FROM t WITH (UPDLOCK, READPAST)"), 1);
	assert_int_equal(check_sql(DB_DIALECT_POSTGRESQL, "probe", "SELECT x FROM t WITH(ROWLOCK)"),
	                 1);
}

/* Diagnostics as each driver printed them (SQLSTATE, native code, message),
 * and what they must mean.  The psqlODBC lines were captured from psqlODBC
 * 13 against PostgreSQL 15 by ending the server session
 * (pg_terminate_backend) before a statement, a prepare or a COMMIT; the
 * FreeTDS ones are its DB-Library codes for a dead socket. */
static void driver_diagnostics_are_classified(void **state)
{
	(void)state;
	static const struct {
		db_dialect_id_t d;
		const char *state;
		long native;
		const char *msg;
		db_status_t want;
	} cases[] = {
	    /* psqlODBC: a new statement prepared on a dropped session. */
	    {DB_DIALECT_POSTGRESQL, "HY000", 1,
	     "The connection has been lost;\nError while preparing parameters", DB_CONN_LOST},
	    /* psqlODBC: a cached statement executed on a dropped session. */
	    {DB_DIALECT_POSTGRESQL, "08S01", 35,
	     "The connection has been lost;\nThe connection has been lost", DB_CONN_LOST},
	    {DB_DIALECT_POSTGRESQL, "08S01", 35, "SQLExecute unable due to the connection lost",
	     DB_CONN_LOST},
	    {DB_DIALECT_POSTGRESQL, "08S01", 26,
	     "The connection is down\nFailed to send 'SELECT 1'", DB_CONN_LOST},
	    /* psqlODBC: COMMIT on a session the server ended. */
	    {DB_DIALECT_POSTGRESQL, "57P01", 108,
	     "FATAL: terminating connection due to administrator command", DB_CONN_LOST},
	    {DB_DIALECT_POSTGRESQL, "25P03", 7,
	     "FATAL: terminating connection due to idle-in-transaction timeout", DB_CONN_LOST},
	    {DB_DIALECT_POSTGRESQL, "HY000", 7, "server closed the connection unexpectedly",
	     DB_CONN_LOST},
	    {DB_DIALECT_POSTGRESQL, "08001", 101, "connection to server at \"127.0.0.1\" failed",
	     DB_CONN_LOST},
	    {DB_DIALECT_POSTGRESQL, "40P01", 7, "ERROR: deadlock detected", DB_TRANSIENT},
	    {DB_DIALECT_POSTGRESQL, "40001", 7, "ERROR: could not serialize access", DB_TRANSIENT},
	    {DB_DIALECT_POSTGRESQL, "23505", 7,
	     "ERROR: duplicate key value violates unique constraint", DB_DUPLICATE},
	    {DB_DIALECT_POSTGRESQL, "42P01", 7, "ERROR: relation \"nope\" does not exist",
	     DB_ERROR},
	    {DB_DIALECT_POSTGRESQL, "HY000", 0, "no diagnostic (rc=-1)", DB_ERROR},
	    /* FreeTDS against SQL Server. */
	    {DB_DIALECT_SQLSERVER, "08S01", 20004, "Read from the server failed", DB_CONN_LOST},
	    {DB_DIALECT_SQLSERVER, "HY000", 20006, "Write to the server failed", DB_CONN_LOST},
	    {DB_DIALECT_SQLSERVER, "HY000", 20047, "DBPROCESS is dead or not enabled",
	     DB_CONN_LOST},
	    {DB_DIALECT_SQLSERVER, "40001", 1205, "Transaction was deadlocked", DB_TRANSIENT},
	    {DB_DIALECT_SQLSERVER, "HYT00", 1222, "Lock request time out period exceeded",
	     DB_TRANSIENT},
	    {DB_DIALECT_SQLSERVER, "23000", 2627, "Violation of PRIMARY KEY constraint",
	     DB_DUPLICATE},
	    {DB_DIALECT_SQLSERVER, "42S02", 208, "Invalid object name 'nope'", DB_ERROR},
	    /* The SQLite3 ODBC driver: sqlite3 result codes as native codes. */
	    {DB_DIALECT_SQLITE, "HY000", 5, "database is locked", DB_TRANSIENT},
	    {DB_DIALECT_SQLITE, "23000", 19, "UNIQUE constraint failed: ServerTasks.Id",
	     DB_DUPLICATE},
	    {DB_DIALECT_SQLITE, "HY000", 1, "no such table: Nope", DB_ERROR},
	    /* A dialect's phrases do not leak into another's. */
	    {DB_DIALECT_SQLITE, "HY000", 1, "connection has been lost", DB_ERROR},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		db_status_t got =
		    db_classify(cases[i].state, cases[i].native, cases[i].msg, cases[i].d);
		if (got != cases[i].want)
			fail_msg("%s %ld '%s' on %s: %s, want %s", cases[i].state, cases[i].native,
			         cases[i].msg, db_dialect_name(cases[i].d), db_status_name(got),
			         db_status_name(cases[i].want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(driver_diagnostics_are_classified),
	    cmocka_unit_test(every_statement_exists_for_every_dialect),
	    cmocka_unit_test(dialect_statements_keep_to_their_dialect),
	    cmocka_unit_test(migrations_exist_for_every_dialect),
	    cmocka_unit_test(migrations_keep_to_their_dialect),
	    cmocka_unit_test(embedded_migrations_are_the_files),
	    cmocka_unit_test(checker_catches_foreign_constructs),
	    cmocka_unit_test(parameter_maps_fit_their_statements),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
