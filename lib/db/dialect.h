/* The dialect table: the few statements that cannot be written once for
 * SQLite, PostgreSQL and SQL Server.  Every other statement in the store
 * modules is portable SQL.  The T-SQL here and in migrations/sqlserver is the
 * only T-SQL in the project; tests/unit/test_dialects.c checks that every
 * statement exists for every dialect and that none borrows another's syntax. */
#ifndef DB_DIALECT_H
#define DB_DIALECT_H

#include "db.h"

typedef enum {
	DB_STMT_NOW_MS = 0,     /* one row, one BIGINT: server clock, epoch ms */
	DB_STMT_SESSION_SETUP,  /* run once on every new connection */
	DB_STMT_MIGRATION_LOCK, /* serialises concurrent upgrades (inside the txn) */
	DB_STMT_SCHEMA_TABLE,   /* creates SchemaVersions when missing */
	/* Claims queued tasks for a node.  Parameters: 0 node id, 1 lease
	 * owner, 2 lease expiry, 3 now, 4 which kind (IsSystem: 1 system
	 * tasks, 0 the others), 5 how many at most, 6 the claim's token.
	 * Returns Id, Name, Arguments, Attempt, MaxAttempts, IsSystem of each
	 * claimed task (or, with claim_is_select, the Ids of the candidates). */
	DB_STMT_CLAIM_TASKS,
	/* Pages an ORDER BY query: appended to it (parameters: 0 limit, 1
	 * offset), or, with page_wraps, a template around it (see db_page_sql;
	 * parameters: 0 the first row number, 1 the last). */
	DB_STMT_PAGE,
	/* Reads a node's IsInMaintenanceMode and MaxConcurrentTasks (parameter:
	 * its Id) holding a shared lock to the end of the transaction, so a
	 * claim and a concurrent drain of that node serialise. */
	DB_STMT_NODE_FLAGS_LOCKED,
	DB_STMT__COUNT
} db_stmt_id_t;

typedef struct {
	const char *name;      /* "sqlite", "postgresql", "sqlserver": the migrations folder */
	const char *dbms_name; /* prefix of SQLGetInfo(SQL_DBMS_NAME) */
	/* true: transactions are explicit BEGIN/COMMIT statements in autocommit
	 * mode (SQLite, so that writers take the lock up front with BEGIN
	 * IMMEDIATE); false: ODBC manual-commit mode with SQLEndTran. */
	bool explicit_txn;
	/* true: DB_STMT_CLAIM_TASKS only selects the candidate Ids (the
	 * driver cannot return rows from an UPDATE) and the store claims them
	 * one by one inside the same transaction. */
	bool claim_is_select;
	/* true: a row limit is "TOP (n)" after SELECT, and rows past an offset
	 * are counted with ROW_NUMBER() (SQL Server; lib/db/keyset.c); false:
	 * "LIMIT n OFFSET m" at the end. */
	bool top_limit;
	/* true: DB_STMT_PAGE wraps the query (%1 its select list, %2 its ORDER
	 * BY terms, %3 the rest) instead of being appended to it. */
	bool page_wraps;
	const char *stmts[DB_STMT__COUNT];
	/* Sets how long the server lets a transaction of this session sit idle
	 * before it ends the session, so a client that stalls (a paused VM, a
	 * stopped process) cannot hold row locks for the rest of the cluster.
	 * One parameter: the limit in milliseconds, as text.  NULL where the
	 * database has no such limit. */
	const char *idle_txn_limit;
	/* Per statement, the order in which its markers take the canonical
	 * parameters ("0,1,1,2"); NULL when they are taken as given. */
	const char *maps[DB_STMT__COUNT];
} db_dialect_t;

/* Returns the dialect ID's table entry; never NULL for a valid ID. */
const db_dialect_t *db_dialect(db_dialect_id_t id);

/* Finds the dialect whose dbms_name prefixes DBMS (case-insensitive).
 * Returns false when none does. */
bool db_dialect_from_dbms(const char *dbms, db_dialect_id_t *out);

/* The dialect's short name ("sqlite", …). */
const char *db_dialect_name(db_dialect_id_t id);

/* The name of statement ID, for diagnostics and the dialect check. */
const char *db_stmt_name(db_stmt_id_t id);

/* Runs dialect statement ID on C with the canonical parameters P, reordered
 * by the dialect's map.  As db_exec. */
db_status_t db_exec_dialect(db_conn_t *c, db_stmt_id_t id, const db_param_t *p, size_t n,
                            int64_t *rows);

/* As db_query, for dialect statement ID. */
db_status_t db_query_dialect(db_conn_t *c, db_stmt_id_t id, const db_param_t *p, size_t n,
                             db_row_fn fn, void *ctx);

/* The statement that pages BASE_SQL ("SELECT … FROM … ORDER BY …") in
 * dialect ID (malloc'd; NULL on OOM, or when BASE_SQL has not that shape
 * and the dialect must rewrite it). */
char *db_page_sql(db_dialect_id_t id, const char *base_sql);

/* Runs BASE_SQL (ending in ORDER BY) with its N parameters P, limited to
 * LIMIT rows from OFFSET with the dialect's paging clause.  As db_query. */
db_status_t db_query_page(db_conn_t *c, const char *base_sql, const db_param_t *p, size_t n,
                          int64_t limit, int64_t offset, db_row_fn fn, void *ctx);

/* Writes into OUT (OUTLEN bytes) a LIKE pattern matching values that
 * contain TEXT, lower-cased, with LIKE's wildcards escaped by '!' (use
 * "LIKE ? ESCAPE '!'" on a LOWER()ed or lower-case column). */
void db_like_pattern(const char *text, char *out, size_t outlen);

#endif
