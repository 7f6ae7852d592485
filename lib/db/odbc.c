/* Connections and statements over unixODBC.  Every statement is prepared
 * with its parameters bound (SQLBindParameter); no value is ever spliced into
 * SQL text.  Every ODBC failure goes through db_classify(), which maps the
 * driver's SQLSTATE, native code and message to a db_status_t; the codes
 * below were checked against the SQLite3 ODBC driver, psqlODBC, FreeTDS and
 * the SQL Server documentation. */
#include "db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dialect.h"

const char *db_status_name(db_status_t s)
{
	switch (s) {
	case DB_OK: return "ok";
	case DB_NO_ROWS: return "no_rows";
	case DB_DUPLICATE: return "duplicate";
	case DB_TRANSIENT: return "transient";
	case DB_CONN_LOST: return "conn_lost";
	case DB_ABORT: return "abort";
	case DB_ERROR: return "error";
	case DB_BUSY: return "busy";
	case DB_UNKNOWN: return "unknown";
	}
	return "?";
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}

/* The forms in which the drivers we ship say that the link to the server is
 * gone, when the SQLSTATE alone does not say so (class 08 always does).
 * Each was seen from the driver itself (tests/unit/test_dialects.c holds
 * the messages as the drivers printed them). */
typedef struct {
	int dialect;        /* db_dialect_id_t, or -1 for any */
	const char *state;  /* SQLSTATE, or NULL for any */
	long native;        /* native code, or -1 for any */
	const char *phrase; /* case-insensitive substring of the message, or NULL */
} conn_lost_form_t;

static const conn_lost_form_t conn_lost_forms[] = {
    /* PostgreSQL: admin shutdown, crash shutdown, cannot connect now,
     * session ended by idle_in_transaction_session_timeout. */
    {-1, "57P01", -1, NULL},
    {-1, "57P02", -1, NULL},
    {-1, "57P03", -1, NULL},
    {-1, "25P03", -1, NULL},
    /* psqlODBC: a statement prepared after the server dropped the session
     * ("HY000 1: The connection has been lost; Error while preparing
     * parameters"), a send on a dead socket, libpq-style texts. */
    {DB_DIALECT_POSTGRESQL, NULL, -1, "connection has been lost"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "connection lost"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "connection is down"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "no connection to the server"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "server closed the connection"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "could not send"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "could not receive"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "connection is closed"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "terminating connection"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "communication error"},
    {DB_DIALECT_POSTGRESQL, NULL, -1, "SSL SYSCALL error"},
    /* FreeTDS (SQL Server): its DB-Library codes for a dead socket. */
    {DB_DIALECT_SQLSERVER, NULL, 20003, NULL}, /* server connection timed out */
    {DB_DIALECT_SQLSERVER, NULL, 20004, NULL}, /* read from the server failed */
    {DB_DIALECT_SQLSERVER, NULL, 20006, NULL}, /* write to the server failed */
    {DB_DIALECT_SQLSERVER, NULL, 20047, NULL}, /* DBPROCESS is dead or not enabled */
    {DB_DIALECT_SQLSERVER, NULL, -1, "Communication link failure"},
    {DB_DIALECT_SQLSERVER, NULL, -1, "TCP Provider"},
    {DB_DIALECT_SQLSERVER, NULL, -1, "DBPROCESS is dead"},
};

db_status_t db_classify(const char *state, long native, const char *msg, db_dialect_id_t d)
{
	if (strncmp(state, "08", 2) == 0)
		return DB_CONN_LOST;
	for (size_t i = 0; i < sizeof conn_lost_forms / sizeof conn_lost_forms[0]; i++) {
		const conn_lost_form_t *f = &conn_lost_forms[i];
		if ((f->dialect < 0 || f->dialect == (int)d) &&
		    (!f->state || strcmp(f->state, state) == 0) &&
		    (f->native < 0 || f->native == native) &&
		    (!f->phrase || contains_ci(msg, f->phrase)))
			return DB_CONN_LOST;
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "HYT00") == 0 || strcmp(state, "HYT01") == 0)
		return DB_TRANSIENT;
	if (strcmp(state, "23505") == 0)
		return DB_DUPLICATE;
	if (d == DB_DIALECT_SQLSERVER) {
		if (native == 2627 || native == 2601)
			return DB_DUPLICATE;
		if (native == 1205 || native == 1222)
			return DB_TRANSIENT;
	}
	if (d == DB_DIALECT_SQLITE) {
		/* The SQLite3 driver reports sqlite3 result codes as the native
		 * error: 5 BUSY, 6 LOCKED, 19 CONSTRAINT. */
		if (native == 5 || native == 6 || contains_ci(msg, "database is locked"))
			return DB_TRANSIENT;
		if (contains_ci(msg, "UNIQUE constraint failed") || contains_ci(msg, "not unique"))
			return DB_DUPLICATE;
	}
	if (strcmp(state, "23000") == 0 &&
	    (contains_ci(msg, "unique") || contains_ci(msg, "duplicate")))
		return DB_DUPLICATE;
	return DB_ERROR;
}

/* Asks the driver whether the link is dead (ODBC 3.5's
 * SQL_ATTR_CONNECTION_DEAD, answered from the driver's own state without a
 * round trip).  psqlODBC sometimes fails a call on a dead link with no
 * diagnostic, or with a generic one; this settles it. */
static bool link_dead(db_conn_t *c)
{
	if (!c->dbc)
		return false;
	SQLUINTEGER dead = SQL_CD_FALSE;
	SQLRETURN rc = SQLGetConnectAttr(c->dbc, SQL_ATTR_CONNECTION_DEAD, &dead, 0, NULL);
	return SQL_SUCCEEDED(rc) && dead == SQL_CD_TRUE;
}

db_status_t db_diag(db_conn_t *c, SQLSMALLINT htype, SQLHANDLE h, SQLRETURN rc)
{
	if (rc == SQL_INVALID_HANDLE) {
		snprintf(c->last_error, sizeof c->last_error, "invalid ODBC handle");
		return DB_ERROR;
	}
	SQLCHAR state[6] = "HY000";
	SQLINTEGER native = 0;
	SQLCHAR msg[400] = "";
	SQLSMALLINT len = 0;
	if (!SQL_SUCCEEDED(SQLGetDiagRec(htype, h, 1, state, &native, msg, sizeof msg, &len)))
		snprintf((char *)msg, sizeof msg, "no diagnostic (rc=%d)", (int)rc);
	snprintf(c->last_error, sizeof c->last_error, "%s %ld: %s", (const char *)state,
	         (long)native, (const char *)msg);
	db_status_t st =
	    db_classify((const char *)state, (long)native, (const char *)msg, c->dialect);
	if (st == DB_ERROR && link_dead(c))
		st = DB_CONN_LOST;
	if (st == DB_CONN_LOST)
		c->broken = true;
	return st;
}

const char *db_conn_last_error(const db_conn_t *c)
{
	return c->last_error;
}

db_dialect_id_t db_conn_dialect(const db_conn_t *c)
{
	return c->dialect;
}

void db_disconnect(db_conn_t *c)
{
	if (!c)
		return;
	for (int i = 0; i < DB_STMT_CACHE; i++) {
		if (c->cache[i].sql) {
			SQLFreeHandle(SQL_HANDLE_STMT, c->cache[i].st);
			free(c->cache[i].sql);
		}
	}
	if (c->dbc) {
		SQLDisconnect(c->dbc);
		SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
	}
	if (c->env)
		SQLFreeHandle(SQL_HANDLE_ENV, c->env);
	free(c->rowbuf);
	free(c);
}

db_status_t db_connect(const char *connstr, int login_timeout_s, db_conn_t **out, char *errbuf,
                       size_t errlen)
{
	*out = NULL;
	db_conn_t *c = calloc(1, sizeof *c);
	if (!c)
		return DB_ERROR;
	c->slot = -1;
	db_status_t st = DB_ERROR;
	SQLRETURN rc = SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &c->env);
	if (!SQL_SUCCEEDED(rc))
		goto fail;
	SQLSetEnvAttr(c->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0);
	rc = SQLAllocHandle(SQL_HANDLE_DBC, c->env, &c->dbc);
	if (!SQL_SUCCEEDED(rc)) {
		st = db_diag(c, SQL_HANDLE_ENV, c->env, rc);
		goto fail;
	}
	SQLSetConnectAttr(c->dbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)(intptr_t)login_timeout_s, 0);
	/* psqlODBC wraps every statement in a SAVEPOINT by default ("statement
	 * level rollback"), two extra round trips per statement.  Every octoha
	 * transaction is rolled back whole on any error anyway, so ask for
	 * transaction-level rollback unless the connection string chose. */
	char *tuned = NULL;
	if (strcasestr(connstr, "postgres") && !strcasestr(connstr, "protocol=")) {
		size_t len = strlen(connstr) + 32;
		tuned = malloc(len);
		if (tuned)
			snprintf(tuned, len, "%s%sProtocol=7.4-1", connstr,
			         connstr[0] && connstr[strlen(connstr) - 1] != ';' ? ";" : "");
	}
	rc = SQLDriverConnect(c->dbc, NULL, (SQLCHAR *)(tuned ? tuned : connstr), SQL_NTS, NULL, 0,
	                      NULL, SQL_DRIVER_NOPROMPT);
	free(tuned);
	if (!SQL_SUCCEEDED(rc)) {
		st = db_diag(c, SQL_HANDLE_DBC, c->dbc, rc);
		/* Whatever the driver says, a failed connect is "cannot reach". */
		if (st != DB_ERROR || strncmp(c->last_error, "IM", 2) != 0)
			st = DB_CONN_LOST;
		SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
		c->dbc = NULL;
		goto fail;
	}
	char dbms[128] = "";
	SQLSMALLINT dlen = 0;
	SQLGetInfo(c->dbc, SQL_DBMS_NAME, dbms, sizeof dbms, &dlen);
	if (!db_dialect_from_dbms(dbms, &c->dialect)) {
		snprintf(c->last_error, sizeof c->last_error, "unsupported database '%s'", dbms);
		st = DB_ERROR;
		goto fail;
	}
	const db_dialect_t *d = db_dialect(c->dialect);
	if (!d->explicit_txn) {
		rc = SQLSetConnectAttr(c->dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER)SQL_AUTOCOMMIT_OFF,
		                       0);
		if (!SQL_SUCCEEDED(rc)) {
			st = db_diag(c, SQL_HANDLE_DBC, c->dbc, rc);
			goto fail;
		}
	}
	st = db_exec(c, d->stmts[DB_STMT_SESSION_SETUP], NULL, 0, NULL);
	if (st == DB_OK && !d->explicit_txn)
		st = db_end_txn(c, true);
	if (st != DB_OK)
		goto fail;
	*out = c;
	return DB_OK;
fail:
	if (errbuf && errlen)
		snprintf(errbuf, errlen, "%s", c->last_error[0] ? c->last_error : "cannot connect");
	db_disconnect(c);
	return st;
}

db_status_t db_limit_idle_txn(db_conn_t *c, int ms)
{
	const db_dialect_t *d = db_dialect(c->dialect);
	if (!d->idle_txn_limit)
		return DB_OK;
	char v[16];
	snprintf(v, sizeof v, "%d", ms > 0 ? ms : 0);
	db_param_t p[] = {DBP_TEXT(v)};
	db_status_t st = db_exec(c, d->idle_txn_limit, p, 1, NULL);
	if (!d->explicit_txn)
		st = st == DB_OK ? db_end_txn(c, true) : (db_end_txn(c, false), st);
	return st;
}

db_status_t db_end_txn(db_conn_t *c, bool commit)
{
	const db_dialect_t *d = db_dialect(c->dialect);
	if (d->explicit_txn)
		return db_exec(c, commit ? "COMMIT" : "ROLLBACK", NULL, 0, NULL);
	SQLRETURN rc = SQLEndTran(SQL_HANDLE_DBC, c->dbc, commit ? SQL_COMMIT : SQL_ROLLBACK);
	if (!SQL_SUCCEEDED(rc))
		return db_diag(c, SQL_HANDLE_DBC, c->dbc, rc);
	return DB_OK;
}

db_status_t db_begin_txn(db_conn_t *c, bool write)
{
	const db_dialect_t *d = db_dialect(c->dialect);
	if (d->explicit_txn)
		return db_exec(c, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, 0, NULL);
	return DB_OK; /* manual-commit mode: the first statement opens it */
}

/* Drops statement ST from the cache (it failed: its state is unknown). */
static void forget(db_conn_t *c, SQLHSTMT st)
{
	for (int i = 0; i < DB_STMT_CACHE; i++)
		if (c->cache[i].sql && c->cache[i].st == st) {
			free(c->cache[i].sql);
			c->cache[i].sql = NULL;
		}
	SQLFreeHandle(SQL_HANDLE_STMT, st);
}

/* Ends the use of ST: closes its cursor and keeps it prepared. */
static void done_with(SQLHSTMT st)
{
	SQLFreeStmt(st, SQL_CLOSE);
	SQLFreeStmt(st, SQL_RESET_PARAMS);
}

/* Returns a prepared statement for SQL, from the cache or newly prepared
 * (and cached, evicting the least recently used). */
static db_status_t prepared(db_conn_t *c, const char *sql, SQLHSTMT *out)
{
	int victim = 0;
	for (int i = 0; i < DB_STMT_CACHE; i++) {
		if (c->cache[i].sql && strcmp(c->cache[i].sql, sql) == 0) {
			c->cache[i].used = ++c->clock;
			*out = c->cache[i].st;
			return DB_OK;
		}
		if (!c->cache[i].sql ||
		    (c->cache[victim].sql && c->cache[i].used < c->cache[victim].used))
			victim = i;
	}
	SQLHSTMT st = SQL_NULL_HSTMT;
	SQLRETURN rc = SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st);
	if (!SQL_SUCCEEDED(rc))
		return db_diag(c, SQL_HANDLE_DBC, c->dbc, rc);
	if (c->query_timeout_s > 0)
		SQLSetStmtAttr(st, SQL_ATTR_QUERY_TIMEOUT, (SQLPOINTER)(intptr_t)c->query_timeout_s,
		               0);
	rc = SQLPrepare(st, (SQLCHAR *)sql, SQL_NTS);
	if (!SQL_SUCCEEDED(rc)) {
		db_status_t s = db_diag(c, SQL_HANDLE_STMT, st, rc);
		SQLFreeHandle(SQL_HANDLE_STMT, st);
		return s;
	}
	char *key = strdup(sql);
	if (key) {
		if (c->cache[victim].sql) {
			SQLFreeHandle(SQL_HANDLE_STMT, c->cache[victim].st);
			free(c->cache[victim].sql);
		}
		c->cache[victim] = (db_cached_stmt_t){key, st, ++c->clock};
	}
	*out = st;
	return DB_OK;
}

/* Prepares SQL (or takes it from the cache) and binds the parameters.  The
 * indicator array LENS must outlive execution. */
static db_status_t prepare(db_conn_t *c, const char *sql, const db_param_t *p, size_t n,
                           SQLLEN *lens, SQLHSTMT *out)
{
	SQLHSTMT st = SQL_NULL_HSTMT;
	db_status_t ps = prepared(c, sql, &st);
	if (ps != DB_OK)
		return ps;
	SQLRETURN rc;
	for (size_t i = 0; i < n; i++) {
		SQLUSMALLINT pos = (SQLUSMALLINT)(i + 1);
		switch (p[i].type) {
		case DB_P_TEXT: {
			size_t len = strlen(p[i].text);
			lens[i] = (SQLLEN)len;
			rc = SQLBindParameter(st, pos, SQL_PARAM_INPUT, SQL_C_CHAR, SQL_VARCHAR,
			                      len ? len : 1, 0, (SQLPOINTER)p[i].text, (SQLLEN)len,
			                      &lens[i]);
			break;
		}
		case DB_P_INT:
			lens[i] = 0;
			rc = SQLBindParameter(st, pos, SQL_PARAM_INPUT, SQL_C_SBIGINT, SQL_BIGINT,
			                      0, 0, (SQLPOINTER)&p[i].num, 0, &lens[i]);
			break;
		default:
			lens[i] = SQL_NULL_DATA;
			rc = SQLBindParameter(st, pos, SQL_PARAM_INPUT, SQL_C_CHAR, SQL_VARCHAR, 1,
			                      0, NULL, 0, &lens[i]);
			break;
		}
		if (!SQL_SUCCEEDED(rc)) {
			db_status_t s = db_diag(c, SQL_HANDLE_STMT, st, rc);
			forget(c, st);
			return s;
		}
	}
	*out = st;
	return DB_OK;
}

#define DB_MAX_PARAMS 64

/* Prepares (or reuses) SQL, binds P and executes it.  Returns DB_OK with
 * *ST ready and *RC the driver's answer (success or SQL_NO_DATA), or the
 * classified failure with the statement already dropped. */
static db_status_t run(db_conn_t *c, const char *sql, const db_param_t *p, size_t n, SQLLEN *lens,
                       SQLHSTMT *st, SQLRETURN *rc)
{
	if (n > DB_MAX_PARAMS)
		return DB_ERROR;
	db_status_t s = prepare(c, sql, p, n, lens, st);
	if (s != DB_OK)
		return s;
	*rc = SQLExecute(*st);
	if (*rc != SQL_NO_DATA && !SQL_SUCCEEDED(*rc)) {
		s = db_diag(c, SQL_HANDLE_STMT, *st, *rc);
		forget(c, *st);
		return s;
	}
	return DB_OK;
}

db_status_t db_exec(db_conn_t *c, const char *sql, const db_param_t *p, size_t n, int64_t *rows)
{
	SQLLEN lens[DB_MAX_PARAMS];
	SQLHSTMT st = SQL_NULL_HSTMT;
	SQLRETURN rc = SQL_SUCCESS;
	db_status_t s = run(c, sql, p, n, lens, &st, &rc);
	if (s != DB_OK)
		return s;
	if (rows) {
		SQLLEN count = 0;
		if (rc != SQL_NO_DATA)
			SQLRowCount(st, &count);
		*rows = count;
	}
	done_with(st);
	return DB_OK;
}

db_status_t db_query(db_conn_t *c, const char *sql, const db_param_t *p, size_t n, db_row_fn fn,
                     void *ctx)
{
	SQLLEN lens[DB_MAX_PARAMS];
	SQLHSTMT st = SQL_NULL_HSTMT;
	SQLRETURN rc = SQL_SUCCESS;
	db_status_t s = run(c, sql, p, n, lens, &st, &rc);
	if (s != DB_OK)
		return s;
	if (rc == SQL_NO_DATA) {
		/* A data-changing statement (UPDATE … RETURNING) matched nothing:
		 * there is no cursor to fetch from. */
		done_with(st);
		return DB_NO_ROWS;
	}
	db_row_t row = {.conn = c, .st = st};
	size_t count = 0;
	for (;;) {
		rc = SQLFetch(st);
		if (rc == SQL_NO_DATA)
			break;
		if (!SQL_SUCCEEDED(rc)) {
			s = db_diag(c, SQL_HANDLE_STMT, st, rc);
			break;
		}
		count++;
		s = fn ? fn(ctx, &row) : DB_OK;
		if (s != DB_OK || row.failed) {
			if (row.failed && s == DB_OK)
				s = row.failed;
			break;
		}
	}
	/* A callback's own verdict leaves the statement usable; a driver
	 * failure does not. */
	if (s == DB_OK || s == DB_ABORT || s == DB_NO_ROWS || !row.failed)
		done_with(st);
	else
		forget(c, st);
	if (s == DB_OK && count == 0)
		s = DB_NO_ROWS;
	return s;
}

const char *db_row_text(db_row_t *row, int col)
{
	db_conn_t *c = row->conn;
	if (!c->rowbuf) {
		c->rowcap = 1024;
		c->rowbuf = malloc(c->rowcap);
		if (!c->rowbuf) {
			fputs("fatal: out of memory reading a row\n", stderr);
			abort();
		}
	}
	SQLLEN ind = 0;
	size_t have = 0;
	for (;;) {
		SQLRETURN rc = SQLGetData(row->st, (SQLUSMALLINT)(col + 1), SQL_C_CHAR,
		                          c->rowbuf + have, (SQLLEN)(c->rowcap - have), &ind);
		if (rc == SQL_NO_DATA)
			break;
		if (!SQL_SUCCEEDED(rc)) {
			row->failed = db_diag(c, SQL_HANDLE_STMT, row->st, rc);
			return NULL;
		}
		if (ind == SQL_NULL_DATA)
			return NULL;
		if (rc == SQL_SUCCESS_WITH_INFO &&
		    (ind == SQL_NO_TOTAL || (size_t)ind >= c->rowcap - have)) {
			/* Truncated: the driver wrote rowcap-have-1 bytes plus NUL. */
			have = c->rowcap - 1;
			size_t ncap = c->rowcap * 2;
			if (ind != SQL_NO_TOTAL && (size_t)ind + have + 1 > ncap)
				ncap = (size_t)ind + have + 1;
			char *nb = realloc(c->rowbuf, ncap);
			if (!nb) {
				fputs("fatal: out of memory reading a row\n", stderr);
				abort();
			}
			c->rowbuf = nb;
			c->rowcap = ncap;
			continue;
		}
		break;
	}
	return c->rowbuf;
}

int64_t db_row_int(db_row_t *row, int col, bool *is_null)
{
	SQLBIGINT v = 0;
	SQLLEN ind = 0;
	SQLRETURN rc = SQLGetData(row->st, (SQLUSMALLINT)(col + 1), SQL_C_SBIGINT, &v, 0, &ind);
	if (!SQL_SUCCEEDED(rc)) {
		row->failed = db_diag(row->conn, SQL_HANDLE_STMT, row->st, rc);
		v = 0;
	}
	bool null = SQL_SUCCEEDED(rc) && ind == SQL_NULL_DATA;
	if (is_null)
		*is_null = null;
	return null ? 0 : (int64_t)v;
}

void db_row_copy(db_row_t *row, int col, char *buf, size_t size)
{
	const char *s = db_row_text(row, col);
	snprintf(buf, size, "%s", s ? s : "");
}

static db_status_t first_int(void *ctx, db_row_t *row)
{
	*(int64_t *)ctx = db_row_int(row, 0, NULL);
	return DB_ABORT; /* one row is all we want */
}

db_status_t db_query_int(db_conn_t *c, const char *sql, const db_param_t *p, size_t n, int64_t *out)
{
	*out = 0;
	db_status_t s = db_query(c, sql, p, n, first_int, out);
	return s == DB_ABORT ? DB_OK : s;
}

db_status_t db_now_ms(db_conn_t *c, int64_t *out)
{
	return db_query_int(c, db_dialect(c->dialect)->stmts[DB_STMT_NOW_MS], NULL, 0, out);
}
