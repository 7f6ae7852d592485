#include "dialect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const stmt_names[DB_STMT__COUNT] = {
    [DB_STMT_NOW_MS] = "now_ms",
    [DB_STMT_SESSION_SETUP] = "session_setup",
    [DB_STMT_MIGRATION_LOCK] = "migration_lock",
    [DB_STMT_SCHEMA_TABLE] = "schema_table",
    [DB_STMT_CLAIM_TASKS] = "claim_tasks",
    [DB_STMT_PAGE] = "page",
    [DB_STMT_NODE_FLAGS_LOCKED] = "node_flags_locked",
};

/* The candidates of a claim, as two ordered ranges of IX_ServerTasks_Claim
 * (State, IsSystem, TargetNodeId, NextRunAt, QueueTime, Id): tasks for any
 * node, and tasks targeted at this node.  One range with "TargetNodeId IS
 * NULL OR TargetNodeId = ?" read past every due task targeted at another
 * node (2,000 targeted at offline nodes: 2,000 rows per claim).
 * TargetNodeId leads each ORDER BY (it is one value per range): PostgreSQL
 * does not take "IS NULL" as fixing a column's order, and would otherwise
 * sort every due task instead of reading the index in order. */
#define CLAIM_RANGE_ANY                                                                            \
	"SELECT Id, NextRunAt, QueueTime FROM ServerTasks WHERE State = 'Queued' "                 \
	"AND IsSystem = ? AND TargetNodeId IS NULL AND NextRunAt <= ? "                            \
	"ORDER BY TargetNodeId, NextRunAt, QueueTime, Id LIMIT ?"
#define CLAIM_RANGE_MINE                                                                           \
	"SELECT Id, NextRunAt, QueueTime FROM ServerTasks WHERE State = 'Queued' "                 \
	"AND IsSystem = ? AND TargetNodeId = ? AND NextRunAt <= ? "                                \
	"ORDER BY TargetNodeId, NextRunAt, QueueTime, Id LIMIT ?"
#define CLAIM_MERGED(a, b)                                                                         \
	"SELECT Id FROM (SELECT Id, NextRunAt, QueueTime FROM " a " UNION ALL "                    \
	"SELECT Id, NextRunAt, QueueTime FROM " b ") c ORDER BY NextRunAt, QueueTime, Id LIMIT ?"
#define CLAIM_CANDIDATES CLAIM_MERGED("(" CLAIM_RANGE_ANY ") a", "(" CLAIM_RANGE_MINE ") b")
#define CLAIM_PG_MERGED  CLAIM_MERGED("a", "b")
#define CLAIM_UPDATE                                                                               \
	"UPDATE ServerTasks SET State = 'Executing', ServerNodeId = ?, LeaseOwner = ?, "           \
	"LeaseExpiresAt = ?, ClaimToken = ?, Attempt = Attempt + 1, "                              \
	"StartTime = COALESCE(StartTime, ?), LastUpdatedTime = ? "

static const db_dialect_t dialects[DB_DIALECT__COUNT] = {
    [DB_DIALECT_SQLITE] =
        {
            .name = "sqlite",
            .dbms_name = "SQLite",
            .explicit_txn = true,
            /* The SQLite3 ODBC driver returns no rows from UPDATE … RETURNING;
             * BEGIN IMMEDIATE already makes select-then-update safe. */
            .claim_is_select = true,
            .stmts =
                {
                    [DB_STMT_NOW_MS] =
                        "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
                    /* WAL lets readers run beside the single writer; the busy
                     * timeout makes writers queue instead of failing. */
                    [DB_STMT_SESSION_SETUP] = "PRAGMA busy_timeout = 10000",
                    /* BEGIN IMMEDIATE already holds the only write lock. */
                    [DB_STMT_MIGRATION_LOCK] = "SELECT 1",
                    [DB_STMT_SCHEMA_TABLE] = "CREATE TABLE IF NOT EXISTS SchemaVersions ("
                                             "Version INTEGER NOT NULL PRIMARY KEY, "
                                             "Name VARCHAR(200) NOT NULL, "
                                             "AppliedAt TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
                    [DB_STMT_CLAIM_TASKS] = CLAIM_CANDIDATES,
                    [DB_STMT_PAGE] = " LIMIT ? OFFSET ?",
                    /* The immediate transaction already excludes a drain. */
                    [DB_STMT_NODE_FLAGS_LOCKED] = "SELECT IsInMaintenanceMode, MaxConcurrentTasks "
                                                  "FROM OctopusServerNodes WHERE Id = ?",
                },
            .maps = {[DB_STMT_CLAIM_TASKS] = "4,3,5,4,0,3,5,5"},
        },
    [DB_DIALECT_POSTGRESQL] =
        {
            .name = "postgresql",
            .dbms_name = "PostgreSQL",
            .explicit_txn = false,
            .idle_txn_limit = "SELECT set_config('idle_in_transaction_session_timeout', ?, false)",
            .stmts =
                {
                    [DB_STMT_NOW_MS] =
                        "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
                    /* No JIT: octoha's statements are short, and a plan
                     * whose estimate passes jit_above_cost (a LIMIT bound
                     * far above the rows it reads) paid 10-400 ms of LLVM
                     * compilation per execution, the first in a session
                     * the most. */
                    [DB_STMT_SESSION_SETUP] = "SELECT set_config('statement_timeout', '30000', "
                                              "false), set_config('jit', 'off', false)",
                    /* A transaction-scoped advisory lock: released at commit
                     * or rollback, and by the server if this session dies. */
                    [DB_STMT_MIGRATION_LOCK] = "SELECT pg_advisory_xact_lock(7061636863)",
                    [DB_STMT_SCHEMA_TABLE] = "CREATE TABLE IF NOT EXISTS SchemaVersions ("
                                             "Version INTEGER NOT NULL PRIMARY KEY, "
                                             "Name VARCHAR(200) NOT NULL, "
                                             "AppliedAt TIMESTAMPTZ NOT NULL DEFAULT now())",
                    /* SKIP LOCKED: concurrent claimers pass over each other's
                     * rows instead of queueing behind them. */
                    [DB_STMT_CLAIM_TASKS] =
                        "WITH a AS (" CLAIM_RANGE_ANY " FOR UPDATE SKIP LOCKED), "
                        "b AS (" CLAIM_RANGE_MINE " FOR UPDATE SKIP LOCKED) " CLAIM_UPDATE
                        "WHERE Id IN (" CLAIM_PG_MERGED ") "
                        "RETURNING Id, Name, Arguments, Attempt, MaxAttempts, IsSystem",
                    [DB_STMT_PAGE] = " LIMIT ? OFFSET ?",
                    [DB_STMT_NODE_FLAGS_LOCKED] = "SELECT IsInMaintenanceMode, MaxConcurrentTasks "
                                                  "FROM OctopusServerNodes WHERE Id = ? FOR SHARE",
                },
            .maps = {[DB_STMT_CLAIM_TASKS] = "4,3,5,4,0,3,5,0,1,2,6,3,3,5"},
        },
    [DB_DIALECT_SQLSERVER] =
        {
            .name = "sqlserver",
            .dbms_name = "Microsoft SQL Server",
            .explicit_txn = false,
            .top_limit = true,
            .stmts =
                {
                    [DB_STMT_NOW_MS] = "SELECT DATEDIFF_BIG(MILLISECOND, "
                                       "CAST('1970-01-01T00:00:00' AS DATETIME2), "
                                       "SYSUTCDATETIME())",
                    /* Any error rolls the whole transaction back.  Lock
                     * waits are bounded by the statement timeout every
                     * prepared statement carries (SQL_ATTR_QUERY_TIMEOUT,
                     * 15 s), as on the other databases. */
                    [DB_STMT_SESSION_SETUP] = "SET XACT_ABORT ON;",
                    [DB_STMT_MIGRATION_LOCK] =
                        "EXEC sp_getapplock @Resource = N'octoha-migrations', "
                        "@LockMode = N'Exclusive', @LockOwner = N'Transaction', "
                        "@LockTimeout = 60000;",
                    [DB_STMT_SCHEMA_TABLE] =
                        "IF OBJECT_ID(N'dbo.SchemaVersions', N'U') IS NULL "
                        "CREATE TABLE dbo.SchemaVersions ("
                        "Version INT NOT NULL CONSTRAINT PK_SchemaVersions PRIMARY KEY, "
                        "Name NVARCHAR(200) NOT NULL, "
                        "AppliedAt DATETIME2 NOT NULL CONSTRAINT DF_SchemaVersions_AppliedAt "
                        "DEFAULT SYSUTCDATETIME());",
                    /* UPDLOCK holds the rows to the UPDATE, READPAST skips
                     * rows other claimers hold, ROWLOCK keeps it to rows. */
                    [DB_STMT_CLAIM_TASKS] =
                        "WITH a AS (SELECT TOP (?) Id FROM dbo.ServerTasks "
                        "WITH (UPDLOCK, READPAST, ROWLOCK) WHERE State = N'Queued' "
                        "AND IsSystem = ? AND TargetNodeId IS NULL AND NextRunAt <= ? "
                        "ORDER BY TargetNodeId, NextRunAt, QueueTime, Id), "
                        "b AS (SELECT TOP (?) Id FROM dbo.ServerTasks "
                        "WITH (UPDLOCK, READPAST, ROWLOCK) WHERE State = N'Queued' "
                        "AND IsSystem = ? AND TargetNodeId = ? AND NextRunAt <= ? "
                        "ORDER BY TargetNodeId, NextRunAt, QueueTime, Id), "
                        "c AS (SELECT TOP (?) Id, Name, Arguments, State, IsSystem, "
                        "ServerNodeId, LeaseOwner, LeaseExpiresAt, ClaimToken, Attempt, "
                        "MaxAttempts, "
                        "StartTime, LastUpdatedTime FROM dbo.ServerTasks "
                        "WHERE Id IN (SELECT Id FROM a UNION ALL SELECT Id FROM b) "
                        "ORDER BY NextRunAt, QueueTime, Id) "
                        "UPDATE c SET State = N'Executing', ServerNodeId = ?, LeaseOwner = ?, "
                        "LeaseExpiresAt = ?, ClaimToken = ?, Attempt = Attempt + 1, "
                        "StartTime = COALESCE(StartTime, ?), LastUpdatedTime = ? "
                        "OUTPUT INSERTED.Id, INSERTED.Name, INSERTED.Arguments, "
                        "INSERTED.Attempt, INSERTED.MaxAttempts, INSERTED.IsSystem;",
                    /* Rows numbered in the query's order, then the page by
                     * number (SQL Server 2005+; OFFSET … FETCH would do on
                     * 2012+, but the T-SQL grammar the tests parse with does
                     * not know it).  %1 the select list, %2 the ORDER BY
                     * terms, %3 the rest of the query; parameters: the
                     * first and the last row number of the page. */
                    [DB_STMT_PAGE] = "SELECT * FROM (SELECT %1, ROW_NUMBER() OVER (ORDER BY %2) "
                                     "AS oh_rn FROM %3) AS oh_page WHERE oh_rn > ? AND oh_rn <= ? "
                                     "ORDER BY oh_rn",
                    /* HOLDLOCK keeps the shared lock to the end of the
                     * transaction (serializable for this row). */
                    [DB_STMT_NODE_FLAGS_LOCKED] =
                        "SELECT IsInMaintenanceMode, MaxConcurrentTasks "
                        "FROM dbo.OctopusServerNodes WITH (HOLDLOCK, ROWLOCK) WHERE Id = ?;",
                },
            .page_wraps = true,
            .maps = {[DB_STMT_CLAIM_TASKS] = "5,4,3,5,4,0,3,5,0,1,2,6,3,3"},
        },
};

const db_dialect_t *db_dialect(db_dialect_id_t id)
{
	if ((unsigned)id >= DB_DIALECT__COUNT)
		id = DB_DIALECT_SQLITE;
	return &dialects[id];
}

bool db_dialect_from_dbms(const char *dbms, db_dialect_id_t *out)
{
	for (int i = 0; i < DB_DIALECT__COUNT; i++) {
		size_t n = strlen(dialects[i].dbms_name);
		if (strncasecmp(dbms, dialects[i].dbms_name, n) == 0) {
			*out = (db_dialect_id_t)i;
			return true;
		}
	}
	return false;
}

const char *db_stmt_name(db_stmt_id_t id)
{
	return (unsigned)id < DB_STMT__COUNT ? stmt_names[id] : "?";
}

const char *db_dialect_name(db_dialect_id_t id)
{
	return db_dialect(id)->name;
}

#define DB_MAX_MAPPED 32

/* Reorders P by MAP into OUT; returns the count, or -1 when MAP is bad. */
static int remap(const char *map, const db_param_t *p, size_t n, db_param_t *out)
{
	if (!map) {
		if (n > DB_MAX_MAPPED)
			return -1;
		for (size_t i = 0; i < n; i++)
			out[i] = p[i];
		return (int)n;
	}
	int k = 0;
	for (const char *m = map; *m;) {
		char *end;
		long idx = strtol(m, &end, 10);
		if (end == m || idx < 0 || (size_t)idx >= n || k == DB_MAX_MAPPED)
			return -1;
		out[k++] = p[idx];
		m = *end == ',' ? end + 1 : end;
	}
	return k;
}

db_status_t db_exec_dialect(db_conn_t *c, db_stmt_id_t id, const db_param_t *p, size_t n,
                            int64_t *rows)
{
	const db_dialect_t *d = db_dialect(db_conn_dialect(c));
	db_param_t q[DB_MAX_MAPPED];
	int k = remap(d->maps[id], p, n, q);
	if (k < 0)
		return DB_ERROR;
	return db_exec(c, d->stmts[id], q, (size_t)k, rows);
}

db_status_t db_query_dialect(db_conn_t *c, db_stmt_id_t id, const db_param_t *p, size_t n,
                             db_row_fn fn, void *ctx)
{
	const db_dialect_t *d = db_dialect(db_conn_dialect(c));
	db_param_t q[DB_MAX_MAPPED];
	int k = remap(d->maps[id], p, n, q);
	if (k < 0)
		return DB_ERROR;
	return db_query(c, d->stmts[id], q, (size_t)k, fn, ctx);
}

/* The first top-level occurrence of WORD (" FROM ") in SQL, outside
 * parentheses and quotes; NULL when none. */
static const char *top_level(const char *sql, const char *word)
{
	int depth = 0;
	bool quoted = false;
	size_t n = strlen(word);
	for (const char *p = sql; *p; p++) {
		if (*p == '\'')
			quoted = !quoted;
		else if (!quoted && *p == '(')
			depth++;
		else if (!quoted && *p == ')')
			depth--;
		else if (!quoted && depth == 0 && strncasecmp(p, word, n) == 0)
			return p;
	}
	return NULL;
}

char *db_page_sql(db_dialect_id_t id, const char *base_sql)
{
	const db_dialect_t *d = db_dialect(id);
	const char *page = d->stmts[DB_STMT_PAGE];
	if (!d->page_wraps) {
		size_t len = strlen(base_sql) + strlen(page) + 1;
		char *sql = malloc(len);
		if (sql)
			snprintf(sql, len, "%s%s", base_sql, page);
		return sql;
	}
	/* SELECT <list> FROM <rest> ORDER BY <terms>: the last top-level
	 * ORDER BY is the query's own. */
	const char *from = top_level(base_sql, " FROM ");
	const char *order = NULL;
	for (const char *p = from; p && (p = top_level(p + 1, " ORDER BY "));)
		order = p;
	if (strncasecmp(base_sql, "SELECT ", 7) != 0 || !from || !order)
		return NULL;
	const char *list = base_sql + 7, *rest = from + 6, *terms = order + 10;
	char *out = NULL;
	size_t cap = 0;
	FILE *f = open_memstream(&out, &cap);
	if (!f)
		return NULL;
	for (const char *p = page; *p; p++) {
		if (p[0] == '%' && p[1] >= '1' && p[1] <= '3') {
			if (p[1] == '1')
				fwrite(list, 1, (size_t)(from - list), f);
			else if (p[1] == '2')
				fputs(terms, f);
			else
				fwrite(rest, 1, (size_t)(order - rest), f);
			p++;
		} else {
			fputc(*p, f);
		}
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

db_status_t db_query_page(db_conn_t *c, const char *base_sql, const db_param_t *p, size_t n,
                          int64_t limit, int64_t offset, db_row_fn fn, void *ctx)
{
	const db_dialect_t *d = db_dialect(db_conn_dialect(c));
	/* Appended paging takes (limit, offset); wrapped paging (numbered rows)
	 * the first and last row number. */
	db_param_t page[2] = {DBP_INT(limit), DBP_INT(offset)};
	if (d->page_wraps) {
		page[0] = DBP_INT(offset);
		page[1] = DBP_INT(offset + limit);
	}
	db_param_t q[DB_MAX_MAPPED];
	int k = remap(d->maps[DB_STMT_PAGE], page, 2, q);
	if (k < 0 || n + (size_t)k > DB_MAX_MAPPED)
		return DB_ERROR;
	db_param_t all[DB_MAX_MAPPED];
	for (size_t i = 0; i < n; i++)
		all[i] = p[i];
	for (int i = 0; i < k; i++)
		all[n + (size_t)i] = q[i];
	char *sql = db_page_sql(db_conn_dialect(c), base_sql);
	if (!sql)
		return DB_ERROR;
	db_status_t s = db_query(c, sql, all, n + (size_t)k, fn, ctx);
	free(sql);
	return s;
}

void db_like_pattern(const char *text, char *out, size_t outlen)
{
	size_t n = 0;
	if (outlen < 3) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	out[n++] = '%';
	for (const char *p = text; *p && n + 3 < outlen; p++) {
		char ch = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
		if (ch == '%' || ch == '_' || ch == '!')
			out[n++] = '!';
		out[n++] = ch;
	}
	out[n++] = '%';
	out[n] = '\0';
}
