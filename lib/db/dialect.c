#include "dialect.h"

#include <string.h>
#include <strings.h>

static const char *const stmt_names[DB_STMT__COUNT] = {
    [DB_STMT_NOW_MS] = "now_ms",
    [DB_STMT_SESSION_SETUP] = "session_setup",
    [DB_STMT_MIGRATION_LOCK] = "migration_lock",
    [DB_STMT_SCHEMA_TABLE] = "schema_table",
};

static const db_dialect_t dialects[DB_DIALECT__COUNT] = {
    [DB_DIALECT_SQLITE] =
        {
            .name = "sqlite",
            .dbms_name = "SQLite",
            .explicit_txn = true,
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
                },
        },
    [DB_DIALECT_POSTGRESQL] =
        {
            .name = "postgresql",
            .dbms_name = "PostgreSQL",
            .explicit_txn = false,
            .stmts =
                {
                    [DB_STMT_NOW_MS] =
                        "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
                    [DB_STMT_SESSION_SETUP] = "SET statement_timeout = 30000",
                    /* A transaction-scoped advisory lock: released at commit
                     * or rollback, and by the server if this session dies. */
                    [DB_STMT_MIGRATION_LOCK] = "SELECT pg_advisory_xact_lock(7061636863)",
                    [DB_STMT_SCHEMA_TABLE] = "CREATE TABLE IF NOT EXISTS SchemaVersions ("
                                             "Version INTEGER NOT NULL PRIMARY KEY, "
                                             "Name VARCHAR(200) NOT NULL, "
                                             "AppliedAt TIMESTAMPTZ NOT NULL DEFAULT now())",
                },
        },
    [DB_DIALECT_SQLSERVER] =
        {
            .name = "sqlserver",
            .dbms_name = "Microsoft SQL Server",
            .explicit_txn = false,
            .stmts =
                {
                    [DB_STMT_NOW_MS] = "SELECT DATEDIFF_BIG(MILLISECOND, "
                                       "CAST('1970-01-01T00:00:00' AS DATETIME2), "
                                       "SYSUTCDATETIME())",
                    /* Any error rolls the whole transaction back. */
                    [DB_STMT_SESSION_SETUP] = "SET XACT_ABORT ON; SET LOCK_TIMEOUT 30000;",
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
                },
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
