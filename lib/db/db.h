/* The database layer: ODBC connections from a small pool, statements with
 * bound parameters only, every diagnostic classified, and one transaction
 * runner that retries transient failures.  One code path for SQLite,
 * PostgreSQL and SQL Server; what must differ lives in dialect.c.
 *
 * Nothing here knows HTTP.  Callers never see an ODBC handle. */
#ifndef DB_H
#define DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Outcome of every database call.  Callers switch on it; only DB_OK and
 * DB_NO_ROWS are successes of a query. */
typedef enum {
	DB_OK = 0,
	DB_NO_ROWS,   /* a statement matched nothing (as the caller defines it) */
	DB_DUPLICATE, /* unique or primary key violation */
	DB_TRANSIENT, /* deadlock, serialization failure, busy: retry the txn */
	DB_CONN_LOST, /* connection unusable or cannot be made: reconnect */
	DB_ABORT,     /* the transaction body chose to roll back */
	DB_ERROR,     /* anything else: a bug or a schema problem */
	DB_BUSY,      /* no pooled connection came free in time: try again later */
	DB_UNKNOWN    /* the link dropped during COMMIT: whether it took effect is unknown */
} db_status_t;

typedef enum {
	DB_DIALECT_SQLITE = 0,
	DB_DIALECT_POSTGRESQL,
	DB_DIALECT_SQLSERVER,
	DB_DIALECT__COUNT
} db_dialect_id_t;

typedef struct db_conn db_conn_t;
typedef struct db_pool db_pool_t;
typedef struct db_row db_row_t;

typedef enum { DB_P_NULL = 0, DB_P_TEXT, DB_P_INT } db_param_type_t;

/* A bound parameter.  Text is borrowed for the duration of the call. */
typedef struct {
	db_param_type_t type;
	const char *text;
	int64_t num;
} db_param_t;

#define DBP_TEXT(s) ((db_param_t){.type = DB_P_TEXT, .text = (s)})
#define DBP_INT(n)  ((db_param_t){.type = DB_P_INT, .num = (int64_t)(n)})
#define DBP_NULL    ((db_param_t){.type = DB_P_NULL})

/* Returns a short name for STATUS ("ok", "duplicate", …), for logs. */
const char *db_status_name(db_status_t status);

/* ---- connections ------------------------------------------------------ */

/* Connects with the ODBC connection string CONNSTR, detects the dialect and
 * runs the dialect's session set-up.  LOGIN_TIMEOUT_S bounds the connect.
 * Returns DB_OK and sets *OUT (owned; release with db_disconnect), or
 * DB_CONN_LOST when the database cannot be reached, DB_ERROR for an unknown
 * DBMS.  ERRBUF (may be NULL) receives the driver's message. */
db_status_t db_connect(const char *connstr, int login_timeout_s, db_conn_t **out, char *errbuf,
                       size_t errlen);
void db_disconnect(db_conn_t *c);

/* Asks the server to end this session when one of its transactions sits
 * idle for MS milliseconds (0: no limit), releasing its locks; the client
 * then sees DB_CONN_LOST.  DB_OK without effect where the database has no
 * such limit (SQLite is one process; SQL Server has none). */
db_status_t db_limit_idle_txn(db_conn_t *c, int ms);

db_dialect_id_t db_conn_dialect(const db_conn_t *c);

/* The last diagnostic of C, for logs ("SQLSTATE native: message"); never NULL. */
const char *db_conn_last_error(const db_conn_t *c);

/* ---- statements ------------------------------------------------------- */

/* Executes SQL with the N parameters P (at most 64).  *ROWS (may be NULL) receives the
 * affected row count.  Returns DB_OK or a classified failure. */
db_status_t db_exec(db_conn_t *c, const char *sql, const db_param_t *p, size_t n, int64_t *rows);

/* Called once per result row; returns DB_OK to go on, anything else stops
 * the query and becomes its result. */
typedef db_status_t (*db_row_fn)(void *ctx, db_row_t *row);

/* Runs the query SQL and calls FN for each row.  Returns DB_NO_ROWS when the
 * result is empty, DB_OK after at least one row, or the first failure. */
db_status_t db_query(db_conn_t *c, const char *sql, const db_param_t *p, size_t n, db_row_fn fn,
                     void *ctx);

/* Column accessors, 0-based, valid during the row callback.  Text is borrowed
 * until the next accessor call on the same row; NULL when the value is SQL
 * NULL.  db_row_int returns 0 for NULL and sets *IS_NULL when given. */
const char *db_row_text(db_row_t *row, int col);
int64_t db_row_int(db_row_t *row, int col, bool *is_null);

/* Copies column COL into BUF (size SIZE), truncating; "" for NULL. */
void db_row_copy(db_row_t *row, int col, char *buf, size_t size);

/* Convenience for single-value queries: the first column of the first row. */
db_status_t db_query_int(db_conn_t *c, const char *sql, const db_param_t *p, size_t n,
                         int64_t *out);

/* The database server's clock in milliseconds since the epoch: every node
 * uses it for LastSeen and leases so node clocks never need to agree. */
db_status_t db_now_ms(db_conn_t *c, int64_t *out);

/* ---- pool and transactions --------------------------------------------- */

typedef struct {
	const char *connstr;
	unsigned size;          /* connections at most */
	int login_timeout_s;    /* per connect attempt */
	int acquire_timeout_ms; /* waiting for a free connection */
	int max_retries;        /* transient failures retried per transaction */
	int idle_txn_limit_ms;  /* see db_limit_idle_txn; 0: none */
} db_pool_opts_t;

/* Creates a pool; connections are opened lazily.  Returns NULL on OOM. */
db_pool_t *db_pool_new(const db_pool_opts_t *opts);
void db_pool_free(db_pool_t *pool);

/* Opens one connection to check the database and learn its dialect.
 * Returns DB_OK or DB_CONN_LOST/DB_ERROR with the reason in ERRBUF. */
db_status_t db_pool_probe(db_pool_t *pool, db_dialect_id_t *dialect, char *errbuf, size_t errlen);

/* A transaction body.  It runs inside BEGIN … COMMIT; returning anything but
 * DB_OK rolls back.  It may run more than once (after a transient failure),
 * so it must not have effects outside the database — no response sent, no
 * shared state changed — before the runner returns. */
typedef db_status_t (*db_txn_fn)(db_conn_t *c, void *ctx);

typedef enum {
	/* A change whose replay would do it twice (a new row, an event).  When
	 * the link drops during its COMMIT the runner does not run it again: it
	 * returns DB_UNKNOWN, or asks the verify function (db_txn_verified). */
	DB_TXN_WRITE = 0,
	DB_TXN_READ,
	/* A change that may safely be applied twice (set a flag, renew a lease,
	 * a write fenced so that a replay matches nothing): after a dropped
	 * COMMIT it is simply run again. */
	DB_TXN_WRITE_IDEMPOTENT
} db_txn_mode_t;

/* Runs FN in a transaction on a pooled connection, retrying transient
 * failures and lost connections (reconnecting) up to max_retries times.
 * Returns FN's result if it was not DB_OK, else the commit's outcome:
 * DB_BUSY when no connection came free within the pool's acquire timeout
 * (not retried: the pool is saturated), DB_UNKNOWN when a DB_TXN_WRITE's
 * COMMIT lost its link (the change may or may not have been made). */
db_status_t db_txn(db_pool_t *pool, db_txn_mode_t mode, db_txn_fn fn, void *ctx);

/* Says, in a transaction of its own, whether the change a DB_TXN_WRITE body
 * made was committed: DB_OK when it was (found by a key the caller chose
 * before the transaction: a new row's Id, a claim token), DB_NO_ROWS when it
 * was not, or a failure. */
typedef db_status_t (*db_verify_fn)(db_conn_t *c, void *ctx);

/* As db_txn with DB_TXN_WRITE, but a COMMIT whose outcome is unknown is
 * resolved by VERIFY instead of returned: DB_OK when it was committed (the
 * body's outputs in CTX stand), or FN runs again when it was not. */
db_status_t db_txn_verified(db_pool_t *pool, db_txn_fn fn, db_verify_fn verify, void *ctx);

/* Counters for metrics and tests. */
typedef struct {
	uint64_t txns, retries, reconnects, failures, busy, unknown;
} db_pool_stats_t;
void db_pool_stats(db_pool_t *pool, db_pool_stats_t *out);

#endif
