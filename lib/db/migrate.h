/* Schema migrations: migrations/<dialect>/NNNN_name.sql, embedded in the
 * binary at build time (tools/embed_migrations.py), applied in order inside
 * one transaction that first takes the dialect's migration lock, so two
 * nodes upgrading at once serialise and the second finds nothing to do. */
#ifndef DB_MIGRATE_H
#define DB_MIGRATE_H

#include "db.h"

typedef struct {
	int version;
	const char *name;
	const char *sql;
} db_migration_t;

/* The migrations built into this binary for DIALECT, in version order
 * (generated code).  *N receives their count. */
const db_migration_t *db_migrations(db_dialect_id_t dialect, size_t *n);

/* The highest version this binary knows. */
int db_migrations_latest(void);

/* Splits a migration script into statements.  A script containing a line
 * that is only `GO` is split on those lines (T-SQL batches); any other script
 * is split on semicolons outside quotes and comments.  Statements that hold
 * nothing but white space and comments are dropped.  Returns the count and
 * sets *OUT to a malloc'd array of malloc'd strings (free with
 * db_split_free); returns 0 with *OUT NULL for an empty script. */
size_t db_split_sql(const char *script, char ***out);
void db_split_free(char **stmts, size_t n);

/* Reads the schema version (0 for an empty database; creates the
 * SchemaVersions table when missing). */
db_status_t db_schema_version(db_pool_t *pool, int *version);

typedef struct {
	int from, to;       /* versions before and after */
	int failed_version; /* the migration that failed, 0 if none */
	char error[512];
} db_migrate_result_t;

/* Applies every pending migration.  Returns DB_OK (also when nothing was
 * pending), DB_ABORT when the database is newer than this binary (from >
 * latest; nothing changed), or the failure, with details in *RES. */
db_status_t db_migrate(db_pool_t *pool, db_migrate_result_t *res);

#endif
