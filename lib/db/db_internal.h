/* Internals shared by the files of lib/db: the connection and row structs
 * and the ODBC helpers.  Only lib/db includes this (and so ODBC headers). */
#ifndef DB_INTERNAL_H
#define DB_INTERNAL_H

#include <sql.h>
#include <sqlext.h>

#include "db.h"

/* Prepared statements kept per connection, so a statement run again costs
 * one execute instead of a prepare and an execute (on PostgreSQL, one round
 * trip instead of two). */
#define DB_STMT_CACHE 48

typedef struct {
	char *sql; /* malloc'd text, the cache key */
	SQLHSTMT st;
	uint64_t used; /* LRU clock */
} db_cached_stmt_t;

struct db_conn {
	SQLHENV env;
	SQLHDBC dbc;
	db_dialect_id_t dialect;
	bool broken;         /* set when a diagnostic says the link is gone */
	int slot;            /* index in its pool, -1 when not pooled */
	int query_timeout_s; /* 0 = driver default */
	char *rowbuf;        /* db_row_text's buffer, reused across rows */
	size_t rowcap;
	char last_error[512];
	db_cached_stmt_t cache[DB_STMT_CACHE];
	uint64_t clock;
};

struct db_row {
	db_conn_t *conn;
	SQLHSTMT st;
	db_status_t failed; /* first accessor failure, DB_OK if none */
};

/* Maps one diagnostic record (SQLSTATE, native code, message) of a driver
 * for dialect D to a status.  Pure, for the unit tests. */
db_status_t db_classify(const char *state, long native, const char *msg, db_dialect_id_t d);

/* Reads the first diagnostic of H into C->last_error and classifies it; a
 * plain error on a link the driver knows is dead counts as DB_CONN_LOST. */
db_status_t db_diag(db_conn_t *c, SQLSMALLINT htype, SQLHANDLE h, SQLRETURN rc);
db_status_t db_begin_txn(db_conn_t *c, bool write);
db_status_t db_end_txn(db_conn_t *c, bool commit);

#endif
