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
	DB_STMT__COUNT
} db_stmt_id_t;

typedef struct {
	const char *name;      /* "sqlite", "postgresql", "sqlserver": the migrations folder */
	const char *dbms_name; /* prefix of SQLGetInfo(SQL_DBMS_NAME) */
	/* true: transactions are explicit BEGIN/COMMIT statements in autocommit
	 * mode (SQLite, so that writers take the lock up front with BEGIN
	 * IMMEDIATE); false: ODBC manual-commit mode with SQLEndTran. */
	bool explicit_txn;
	const char *stmts[DB_STMT__COUNT];
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

#endif
